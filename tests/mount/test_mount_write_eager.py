"""A large file written from its start sends its parts while it is being written (-o eager_upload,
on by default): once the written prefix holds a whole 16 MiB part (or reaches -o
multipart_threshold, when lower) the mount creates the presigned multipart upload, and each part the
writer has moved past is PUT from the staged file in the background; the close sends only the tail
(and any part written again since it went up) and completes, in parts even when the file ends below
the threshold. Nothing is visible on the branch before the close. A truncate that cuts the written
prefix, unlink, rename or a failed part abort that upload (a truncate that grows the file or keeps
the prefix does not); the close then takes the ordinary path (test_mount_write_multipart.py).
Every test works on a fresh repository and checks the bytes lakeFS holds and the exact requests."""
import hashlib
import os

import pytest

from mountlib import (MIB, api_get, api_get_or_none, api_stat, data_upload_calls, pattern, poll,
                      sha256 as sha)

PART = 16 * MIB  # upload.h UPLOAD_DEFAULT_PART_SIZE
THRESHOLD = ["multipart_threshold=8M"]
THREE_AND_TAIL = 3 * PART + 5 * MIB + 321  # three whole parts go up while written, the tail at close
EAGER = {"createPresignMultipartUpload": 1, "presignedPut": 4, "completePresignMultipartUpload": 1}


def branch(mount, repo, *options):
    return mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"] + THRESHOLD + list(options))


def s3_multipart_etag(data, part_size):
    digests = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return hashlib.md5(b"".join(digests)).hexdigest() + "-%d" % len(digests)


def mpu_dirs(server):
    """Upload ids whose parts the bundled server still holds (empty elsewhere)."""
    root = os.path.join(getattr(server, "data_dir", "/nonexistent"), "objects", "mpu")
    return set(os.listdir(root)) if os.path.isdir(root) else set()


def write_all(fd, data, chunk=MIB):
    for i in range(0, len(data), chunk):
        assert os.write(fd, data[i:i + chunk]) == len(data[i:i + chunk])


def parts_sent(server, n):
    """Polls (bounded) until the server has taken n part PUTs; the counts then."""
    return poll(lambda: server.counts() if server.counts().get("presignedPut", 0) >= n else None, timeout=60)


def write_parts_before_close(server, repo, m, name, data, parts, at_close):
    """Writes data to a new file and checks, before its close, that `parts` whole parts went up in
    one multipart upload while nothing is on the branch; then closes it and checks the data calls
    (at_close, no abort) and the object's bytes."""
    server.reset_counts()
    fd = os.open(m.join(name), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
        counted = parts_sent(server, parts)
        assert counted, server.counts()
        assert data_upload_calls(counted) == {"createPresignMultipartUpload": 1, "presignedPut": parts}, counted
        assert api_get_or_none(server, repo, "main", name) is None
    finally:
        os.close(fd)
    counted = server.counts()
    assert data_upload_calls(counted) == at_close, counted
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert sha(api_get(server, repo, "main", name)) == sha(data)


@pytest.mark.presign(multipart=True)
def test_parts_go_up_before_the_close(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(THREE_AND_TAIL, 1)
    before = mpu_dirs(server)
    # Still open: the three whole parts went up, nothing is on the branch; the close sends the tail
    # and completes.
    write_parts_before_close(server, repo, m, "big.bin", data, 3, EAGER)
    st = api_stat(server, repo, "main", "big.bin")
    assert st["size_bytes"] == len(data)
    if mpu_dirs(server) or before:
        assert mpu_dirs(server) == before
    if server.__class__.__name__ == "LakeFSServer":  # the bundled store's ETag of parts in order
        assert st["checksum"] == s3_multipart_etag(data, PART)


@pytest.mark.presign(multipart=True)
def test_cp_of_a_large_file_costs_the_same_requests(server, repo, mount, tmp_path):
    """What the benchmark does (shutil.copyfile: sendfile in 64 KiB pieces), counted exactly."""
    import shutil
    m = branch(mount, repo)
    src = tmp_path / "src.bin"
    data = pattern(THREE_AND_TAIL, 2)
    src.write_bytes(data)
    server.reset_counts()
    shutil.copyfile(str(src), m.join("copy.bin"))
    counted = server.counts()
    assert data_upload_calls(counted) == EAGER, counted
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert sha(api_get(server, repo, "main", "copy.bin")) == sha(data)
    src.unlink()


def change_a_sent_part(server, repo, m, name, seed, change):
    """Writes a new file of three parts and a tail, waits for the three parts to go up, lets
    change(fd, data) change bytes inside part 2 (on the descriptor and in the bytearray data), then
    closes: the close sends part 2 once more (no abort) and lakeFS holds the changed bytes."""
    data = bytearray(pattern(THREE_AND_TAIL, seed))
    server.reset_counts()
    fd = os.open(m.join(name), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, bytes(data))
        assert parts_sent(server, 3), server.counts()
        change(fd, data)
    finally:
        os.close(fd)
    counted = server.counts()
    assert data_upload_calls(counted) == dict(EAGER, presignedPut=5), counted  # part 2 once more
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert sha(api_get(server, repo, "main", name)) == sha(bytes(data))


@pytest.mark.presign(multipart=True)
def test_part_written_again_after_it_went_up_is_sent_again(server, repo, mount):
    def rewrite(fd, data):
        patch = pattern(3 * MIB, 4)
        at = PART + 7 * MIB + 5  # inside part 2, already sent
        assert os.pwrite(fd, patch, at) == len(patch)
        data[at:at + len(patch)] = patch
    change_a_sent_part(server, repo, branch(mount, repo), "mid.bin", 3, rewrite)


@pytest.mark.presign(multipart=True)
def test_hole_punched_into_a_part_that_went_up_sends_it_again(server, repo, mount):
    """fallocate(PUNCH_HOLE | KEEP_SIZE) into a part already sent is a write of zeros there."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    punch = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE

    def punch_hole(fd, data):
        at, length = PART + 3 * MIB + 7, 2 * MIB  # inside part 2, already sent
        rc = libc.fallocate(fd, punch, ctypes.c_int64(at), ctypes.c_int64(length))
        assert rc == 0, os.strerror(ctypes.get_errno())
        data[at:at + length] = bytes(length)
        assert os.fstat(fd).st_size == len(data)
    change_a_sent_part(server, repo, branch(mount, repo), "holed.bin", 5, punch_hole)


@pytest.mark.presign(multipart=True)
def test_truncate_during_the_write_aborts(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(2 * PART + MIB, 5)
    before = mpu_dirs(server)
    server.reset_counts()
    fd = os.open(m.join("cut.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
        assert parts_sent(server, 2), server.counts()
        os.ftruncate(fd, 5 * MIB)
        counted = server.counts()
        assert counted.get("abortPresignMultipartUpload") == 1, counted  # at once, not at close
        assert mpu_dirs(server) == before
        assert api_get_or_none(server, repo, "main", "cut.bin") is None
        server.reset_counts()
    finally:
        os.close(fd)
    counted = server.counts()  # 5 MiB: one presigned PUT, the way a small file goes
    assert data_upload_calls(counted) == {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}, counted
    assert counted.get("completePresignMultipartUpload", 0) == 0, counted
    assert sha(api_get(server, repo, "main", "cut.bin")) == sha(data[:5 * MIB])


@pytest.mark.presign(multipart=True)
def test_unlink_during_the_write_aborts_and_uploads_nothing(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(2 * PART + MIB, 6)
    before = mpu_dirs(server)
    server.reset_counts()
    fd = os.open(m.join("gone.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
        assert parts_sent(server, 2), server.counts()
        os.unlink(m.join("gone.bin"))
        counted = server.counts()
        assert counted.get("abortPresignMultipartUpload") == 1, counted
        assert mpu_dirs(server) == before
    finally:
        os.close(fd)
    counted = server.counts()
    assert counted.get("completePresignMultipartUpload", 0) == 0, counted
    assert counted.get("linkPhysicalAddress", 0) == 0, counted
    assert api_get_or_none(server, repo, "main", "gone.bin") is None


@pytest.mark.presign(multipart=True)
def test_rename_during_the_write_uploads_to_the_new_name(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(THREE_AND_TAIL, 7)
    server.reset_counts()
    fd = os.open(m.join("old.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
        assert parts_sent(server, 3), server.counts()
        os.rename(m.join("old.bin"), m.join("new.bin"))
        server.reset_counts()
    finally:
        os.close(fd)
    counted = server.counts()
    # The upload made for the old name is aborted; the close sends the file in parts afresh.
    assert counted.get("abortPresignMultipartUpload") == 1, counted
    assert data_upload_calls(counted) == EAGER, counted
    assert sha(api_get(server, repo, "main", "new.bin")) == sha(data)
    assert api_get_or_none(server, repo, "main", "old.bin") is None


@pytest.mark.presign(multipart=True)
def test_failed_part_falls_back_to_the_close(server, repo, mount):
    """The first part's PUT fails while the file is written: the close aborts that upload and sends
    the whole file in parts, with the right bytes."""
    m = branch(mount, repo)
    data = pattern(THREE_AND_TAIL, 8)
    before = mpu_dirs(server)
    server.add_fault(operation="presignedPut", status=500, message="store broke", count=1)
    try:
        server.reset_counts()
        fd = os.open(m.join("retry.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        counted = server.counts()
    finally:
        server.clear_faults()
    assert counted.get("abortPresignMultipartUpload") == 1, counted
    assert counted.get("createPresignMultipartUpload") == 2, counted
    assert counted.get("completePresignMultipartUpload") == 1, counted
    assert sha(api_get(server, repo, "main", "retry.bin")) == sha(data)
    if mpu_dirs(server) or before:
        assert mpu_dirs(server) == before


@pytest.mark.presign(multipart=True)
def test_failed_part_at_the_close_is_an_honest_eio(server, repo, mount):
    """Every part PUT fails: the close reports EIO, nothing reaches the branch, the bytes stay
    staged, and a later fsync with the store back sends them."""
    import errno
    from mountlib import expect_errno, staged_files
    m = branch(mount, repo)
    data = pattern(2 * PART + MIB, 9)
    server.reset_counts()
    server.add_fault(operation="presignedPut", status=500, message="store broke", count=1000)
    fd = os.open(m.join("eio.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        try:
            write_all(fd, data)
            expect_errno(errno.EIO, os.fsync, fd)
            counted = server.counts()
            assert counted.get("completePresignMultipartUpload", 0) == 0, counted
            assert counted.get("abortPresignMultipartUpload", 0) == 2, counted  # eager's, the close's
            assert api_get_or_none(server, repo, "main", "eio.bin") is None
            assert data in staged_files(m.cache_dir).values()
        finally:
            server.clear_faults()
        os.fsync(fd)
    finally:
        os.close(fd)
    assert sha(api_get(server, repo, "main", "eio.bin")) == sha(data)


@pytest.mark.presign(multipart=True)
def test_small_file_starts_no_upload_in_parts(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(8 * MIB - 1, 10)
    server.reset_counts()
    with open(m.join("small.bin"), "wb") as f:
        f.write(data)
    counted = server.counts()
    assert data_upload_calls(counted) == {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}, counted
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert api_get(server, repo, "main", "small.bin") == data


@pytest.mark.presign(multipart=True)
def test_memory_stays_bounded(server, repo, mount):
    """Parts stream from the staged file: writing 96 MiB grows the daemon's peak RSS by far less."""
    m = branch(mount, repo)

    def hwm():
        with open("/proc/%d/status" % m.proc.pid) as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    start = hwm()
    data = pattern(6 * PART, 11)
    server.reset_counts()
    with open(m.join("mem.bin"), "wb") as f:
        for i in range(0, len(data), MIB):
            f.write(data[i:i + MIB])
    assert data_upload_calls(server.counts()) == dict(EAGER, presignedPut=6)
    assert hwm() - start < 32 * MIB, (start, hwm())
    assert sha(api_get(server, repo, "main", "mem.bin")) == sha(data)


@pytest.mark.presign(multipart=True)
def test_writes_out_of_order_end_with_the_right_bytes(server, repo, mount):
    """In order, then past the end (a hole), back into a sent part, then on from the prefix: what
    lakeFS holds after the close is the staged file, zeros in the hole."""
    m = branch(mount, repo)
    want = bytearray(4 * PART + 100 + MIB)
    server.reset_counts()
    fd = os.open(m.join("mixed.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        head = pattern(2 * PART, 12)
        write_all(fd, head)
        want[:len(head)] = head
        assert parts_sent(server, 2), server.counts()
        far = pattern(MIB, 13)
        assert os.pwrite(fd, far, 4 * PART + 100) == len(far)
        want[4 * PART + 100:] = far
        back = pattern(MIB // 2, 14)
        assert os.pwrite(fd, back, 3 * MIB) == len(back)
        want[3 * MIB:3 * MIB + len(back)] = back
        third = pattern(PART, 15)
        assert os.pwrite(fd, third, 2 * PART) == len(third)
        want[2 * PART:3 * PART] = third
    finally:
        os.close(fd)
    counted = server.counts()
    assert counted.get("createPresignMultipartUpload") == 1, counted
    assert counted.get("completePresignMultipartUpload") == 1, counted
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert sha(api_get(server, repo, "main", "mixed.bin")) == sha(bytes(want))


def default_threshold(mount, repo):
    """-o multipart_threshold at its default (64 MiB): the eager upload starts at the first part."""
    return mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"])


@pytest.mark.presign(multipart=True)
def test_file_between_one_part_and_the_threshold_completes_in_parts(server, repo, mount):
    """20 MiB with the default 64 MiB threshold: the first part goes up once written, before the
    close; the close sends the 4 MiB tail and completes (no second upload of the file)."""
    m = default_threshold(mount, repo)
    data = pattern(20 * MIB + 99, 16)
    write_parts_before_close(server, repo, m, "mid.bin", data, 1, dict(EAGER, presignedPut=2))
    if server.__class__.__name__ == "LakeFSServer":
        assert api_stat(server, repo, "main", "mid.bin")["checksum"] == s3_multipart_etag(data, PART)


@pytest.mark.presign(multipart=True)
def test_file_below_one_part_takes_one_put_at_the_default_threshold(server, repo, mount):
    m = default_threshold(mount, repo)
    data = pattern(PART - 1, 17)
    server.reset_counts()
    with open(m.join("under.bin"), "wb") as f:
        write_all(f.fileno(), data)
    counted = server.counts()
    assert data_upload_calls(counted) == {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}, counted
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert sha(api_get(server, repo, "main", "under.bin")) == sha(data)


@pytest.mark.presign(multipart=True)
def test_truncate_that_keeps_the_written_prefix_keeps_the_upload(server, repo, mount):
    """ftruncate to the current size, then a grow past the end, then the writer goes on: the parts
    already sent stay (no abort, one create), and lakeFS gets the staged file, zeros included."""
    m = branch(mount, repo)
    head = pattern(2 * PART + MIB, 18)
    server.reset_counts()
    fd = os.open(m.join("grow.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, head)
        assert parts_sent(server, 2), server.counts()
        os.ftruncate(fd, len(head))  # the size it has
        os.ftruncate(fd, len(head) + 3 * MIB)  # a grow: zeros
        assert server.counts().get("abortPresignMultipartUpload", 0) == 0, server.counts()
        more = pattern(PART, 19)
        assert os.pwrite(fd, more, len(head) + 3 * MIB) == len(more)
    finally:
        os.close(fd)
    want = head + bytes(3 * MIB) + more  # 3 parts and a tail of 4 MiB
    counted = server.counts()
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert data_upload_calls(counted) == dict(EAGER, presignedPut=4), counted
    assert sha(api_get(server, repo, "main", "grow.bin")) == sha(want)
