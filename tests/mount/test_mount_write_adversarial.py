"""Adversarial cases of the write paths added together: eager uploads of large files, -o
async_close, and write-only descriptors opened with direct_io. Each checks the bytes lakeFS holds
(sha256) against what the program wrote: nothing handed to the mount is lost or replaced by older
bytes, through two descriptors, a crash, a server that fails, or a close that only queues."""
import mmap
import os

import pytest

from mountlib import (MIB, api_get, api_get_or_none, call_through_gate, fsync_path, kill_mount, pattern, poll,
                      read_file, read_status, run, sha256 as sha)

PART = 16 * MIB
THRESHOLD = ["multipart_threshold=8M"]


def branch(mount, repo, *options):
    return mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"] + THRESHOLD + list(options))


def write_all(fd, data, chunk=MIB):
    for i in range(0, len(data), chunk):
        assert os.write(fd, data[i:i + chunk]) == len(data[i:i + chunk])


def parts_sent(server, n):
    return poll(lambda: server.counts() if server.counts().get("presignedPut", 0) >= n else None, timeout=60)


def pread_all(fd, size):
    out = bytearray()
    while len(out) < size:
        chunk = os.pread(fd, size - len(out), len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def test_direct_write_is_seen_by_a_cached_reader_of_the_same_file(server, repo, mount):
    """An O_RDWR descriptor (page cache) has read the file; an O_WRONLY one (direct_io) writes over
    it: a read through the first shows the new bytes, and so does lakeFS after both close."""
    m = branch(mount, repo)
    path = m.join("two.bin")
    old = pattern(2 * MIB, 1)
    rw = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        assert os.write(rw, old) == len(old)
        assert pread_all(rw, len(old)) == old  # now in the page cache
        wo = os.open(path, os.O_WRONLY)
        try:
            new = pattern(64 * 1024, 2)
            assert os.pwrite(wo, new, MIB) == len(new)
        finally:
            os.close(wo)
        want = old[:MIB] + new + old[MIB + len(new):]
        assert sha(pread_all(rw, len(want))) == sha(want)
    finally:
        os.close(rw)
    assert sha(api_get(server, repo, "main", "two.bin")) == sha(want)


def test_direct_write_beside_a_shared_mapping_keeps_the_newer_bytes(server, repo, mount):
    """A shared mapping of an O_RDWR descriptor dirties a page (not yet synced); an O_WRONLY
    (direct) descriptor writes another range of the same page; the mapping is dirtied again and
    synced: neither the direct bytes nor the mapped ones are replaced by an older copy of the page."""
    m = branch(mount, repo)
    path = m.join("mapped.bin")
    base = pattern(64 * 1024, 3)
    with open(path, "wb") as f:
        f.write(base)
    rw = os.open(path, os.O_RDWR)
    try:
        mm = mmap.mmap(rw, len(base))
        try:
            mm[0:4] = b"MMAP"
            wo = os.open(path, os.O_WRONLY)
            try:
                assert os.pwrite(wo, b"DIRECT", 100) == 6
            finally:
                os.close(wo)
            assert mm[100:106] == b"DIRECT"  # the mapping sees the direct write
            mm[8:12] = b"MAP2"  # dirties the page again
            mm.flush()
        finally:
            mm.close()
    finally:
        os.close(rw)
    want = bytearray(base)
    want[0:4] = b"MMAP"
    want[100:106] = b"DIRECT"
    want[8:12] = b"MAP2"
    assert sha(api_get(server, repo, "main", "mapped.bin")) == sha(bytes(want))


def test_o_append_on_a_write_only_descriptor_appends(server, repo, mount):
    m = branch(mount, repo)
    path = m.join("log.txt")
    with open(path, "wb") as f:
        f.write(b"first\n")
    a = os.open(path, os.O_WRONLY | os.O_APPEND)
    b = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        assert os.write(a, b"a1\n") == 3
        assert os.write(b, b"b1\n") == 3
        assert os.pwrite(a, b"a2\n", 0) == 3  # O_APPEND: the offset is ignored (Linux)
    finally:
        os.close(a)
        os.close(b)
    assert api_get(server, repo, "main", "log.txt") == b"first\na1\nb1\na2\n"


@pytest.mark.presign(multipart=True)
def test_written_in_order_then_truncated_bigger_keeps_the_hole(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(2 * PART + 3 * MIB, 4)
    fd = os.open(m.join("sparse.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
        assert parts_sent(server, 2), server.counts()
        os.ftruncate(fd, 4 * PART + 17)
        tail = pattern(MIB, 5)
        assert os.pwrite(fd, tail, 4 * PART + 17) == len(tail)
    finally:
        os.close(fd)
    want = data + bytes(4 * PART + 17 - len(data)) + tail
    assert sha(api_get(server, repo, "main", "sparse.bin")) == sha(want)


@pytest.mark.presign(multipart=True)
def test_kill_9_while_eager_parts_are_in_flight_recovers_the_whole_file(server, repo, mount):
    """The daemon dies while the file's parts are held at the server (written, not closed): the
    remount uploads the whole staged file; the dangling multipart upload is never completed with
    part of it."""
    m = branch(mount, repo)
    data = pattern(3 * PART + 2 * MIB, 6)
    server.add_fault(operation="presignedPut", hold="eagerhold", count=1000)
    fd = os.open(m.join("crash.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
        # The write is acknowledged; parts are held in flight. The bytes are staged, not sent.
        assert poll(lambda: server.counts().get("createPresignMultipartUpload", 0) >= 1, timeout=30)
        assert kill_mount(m) == -9
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    server.clear_faults()  # opens the gate: the held PUTs go through to a dead client
    assert api_get_or_none(server, repo, "main", "crash.bin") is None
    again = branch(mount, repo)
    assert sha(api_get(server, repo, "main", "crash.bin")) == sha(data)
    assert sha(open(again.join("crash.bin"), "rb").read()) == sha(data)
    assert read_status(again) == []


@pytest.mark.presign(multipart=True)
def test_async_close_of_a_large_file_whose_eager_part_failed(server, repo, mount):
    """async_close and eager upload together: a part fails in the background, the close only
    queues, the pool thread finds the broken eager upload and sends the whole file again."""
    m = branch(mount, repo, "async_close", "upload_threads=2")
    data = pattern(3 * PART + MIB, 7)
    server.add_fault(operation="presignedPut", status=500, message="store broke", count=1)
    fd = os.open(m.join("queued.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    fsync_path(m.join("queued.bin"))  # waits for the pool's upload
    assert sha(api_get(server, repo, "main", "queued.bin")) == sha(data)


@pytest.mark.presign(multipart=True)
def test_async_close_then_unmount_with_a_failing_server_keeps_the_bytes(server, repo, mount):
    """Queued large files, every upload failing at unmount: nothing lands with part of a file, the
    bytes stay staged, and the next mount (server back) uploads them whole."""
    m = branch(mount, repo, "async_close", "upload_threads=1")
    files = {"q%d.bin" % i: pattern(PART + 3 * MIB + i, 20 + i) for i in range(2)}
    server.add_fault(operation="presignedPut", status=500, message="store broke", count=100000)
    for name, data in files.items():
        fd = os.open(m.join(name), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    m.unmount()
    server.clear_faults()
    for name in files:
        assert api_get_or_none(server, repo, "main", name) is None
    again = branch(mount, repo)
    for name, data in files.items():
        assert sha(api_get(server, repo, "main", name)) == sha(data)
        assert sha(open(again.join(name), "rb").read()) == sha(data)


# A rename while the file's parts go up: of the file over another (the other's bytes replaced), or
# of its directory. The close sends the rest, and lakeFS holds the whole file at the new name only.
RENAMES = {
    "file over another": ("d/src.bin", "target.bin", ("d/src.bin", "target.bin"), 8),
    "its directory": ("a/f.bin", "b/f.bin", ("a", "b"), 9),
}


@pytest.mark.presign(multipart=True)
@pytest.mark.parametrize("case", sorted(RENAMES))
def test_eager_file_renamed_while_written_lands_whole_at_the_new_name(server, repo, mount, case):
    old, new, (rename_from, rename_to), seed = RENAMES[case]
    m = branch(mount, repo)
    with open(m.join("target.bin"), "wb") as f:
        f.write(b"old target")
    os.mkdir(m.join(os.path.dirname(old)))
    data = pattern(2 * PART + MIB, seed)
    fd = os.open(m.join(old), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data[:2 * PART])
        assert parts_sent(server, 2), server.counts()
        os.rename(m.join(rename_from), m.join(rename_to))
        write_all(fd, data[2 * PART:])
    finally:
        os.close(fd)
    assert sha(api_get(server, repo, "main", new)) == sha(data)
    assert api_get_or_none(server, repo, "main", old) is None


@pytest.mark.presign(multipart=True)
def test_commit_while_eager_parts_are_in_flight(server, repo, mount):
    """A commit through the control file while a large file is open and its parts are going up:
    whatever the commit holds of it is a whole prefix the program wrote, and after the close the
    branch holds the whole file."""
    m = branch(mount, repo)
    data = pattern(3 * PART + MIB, 10)
    fd = os.open(m.join("c.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data[:2 * PART + MIB])
        with open(m.join(".lakefs/commit"), "w") as f:
            f.write("mid-write")
        got = api_get_or_none(server, repo, "main", "c.bin")
        assert got is None or got == data[:len(got)], len(got)
        write_all(fd, data[2 * PART + MIB:])
    finally:
        os.close(fd)
    assert sha(api_get(server, repo, "main", "c.bin")) == sha(data)


def test_fsync_of_a_read_only_descriptor_waits_for_the_queued_upload(server, repo, mount):
    """-o async_close: `sync FILE` (coreutils opens the file read-only and fsyncs it) returns once
    lakeFS holds the bytes the close queued, as fsync of a write descriptor does."""
    m = branch(mount, repo, "async_close", "upload_threads=1")
    server.add_fault(operation="uploadObject", hold="ro", count=1)
    with open(m.join("synced.txt"), "wb") as f:
        f.write(b"queued by the close\n")

    def fsync_then_look():
        fsync_path(m.join("synced.txt"), os.O_RDONLY)
        return api_get_or_none(server, repo, "main", "synced.txt")

    got = call_through_gate(server, "ro", fsync_then_look,
                            before=lambda: server.counts().get("uploadObject", 0) >= 1)
    assert got == b"queued by the close\n"


@pytest.mark.presign(multipart=True)
def test_copy_file_range_and_splice_into_the_mount(server, repo, mount, tmp_path):
    """copy_file_range between two files of the mount (the kernel falls back to splice into the
    write-only, direct descriptor) and from a local file: the bytes arrive whole."""
    m = branch(mount, repo)
    data = pattern(2 * PART + 3 * MIB + 7, 30)
    local = tmp_path / "local.bin"
    local.write_bytes(data)
    for src_path, name in ((str(local), "from_local.bin"), (m.join("from_local.bin"), "within.bin")):
        src = os.open(src_path, os.O_RDONLY)
        dst = os.open(m.join(name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        try:
            left = len(data)
            while left:
                try:
                    n = os.copy_file_range(src, dst, left)
                except OSError:
                    n = os.sendfile(dst, src, None, left)
                assert n > 0
                left -= n
        finally:
            os.close(src)
            os.close(dst)
        assert sha(api_get(server, repo, "main", name)) == sha(data), name
    local.unlink()


@pytest.mark.presign(multipart=True)
def test_two_writers_of_one_large_file_in_parallel_halves(server, repo, mount):
    """A download tool writing a large file in two halves at once through two descriptors (one
    write-only and direct, one read-write and cached): lakeFS holds the whole file."""
    import threading
    m = branch(mount, repo)
    data = pattern(4 * PART + 5, 31)
    half = 2 * PART + 3 * MIB
    path = m.join("halves.bin")
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    a = os.open(path, os.O_WRONLY)
    b = os.open(path, os.O_RDWR)
    errors = []

    def run(fd, lo, hi):
        try:
            for off in range(lo, hi, MIB):
                chunk = data[off:min(off + MIB, hi)]
                assert os.pwrite(fd, chunk, off) == len(chunk)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    try:
        ts = [threading.Thread(target=run, args=(a, 0, half)), threading.Thread(target=run, args=(b, half, len(data)))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not errors, errors
        assert sha(pread_all(b, len(data))) == sha(data)
    finally:
        os.close(a)
        os.close(b)
    assert sha(api_get(server, repo, "main", "halves.bin")) == sha(data)


@pytest.mark.presign(multipart=True)
def test_kill_9_while_an_async_eager_complete_is_held(server, repo, mount):
    """async_close: the pool thread's completion of an eager upload is held when the daemon dies;
    the gate then lets it through to a dead client. Whatever lands is the whole file, and the
    remount leaves the whole file on the branch."""
    m = branch(mount, repo, "async_close", "upload_threads=1")
    data = pattern(2 * PART + MIB + 9, 32)
    server.add_fault(operation="completePresignMultipartUpload", hold="done", count=1)
    fd = os.open(m.join("held.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    assert poll(lambda: server.counts().get("completePresignMultipartUpload", 0) >= 1, timeout=60), server.counts()
    assert kill_mount(m) == -9
    server.open_gate("done")
    got = poll(lambda: api_get_or_none(server, repo, "main", "held.bin"), timeout=30)
    assert got is None or sha(got) == sha(data)
    server.clear_faults()
    again = branch(mount, repo)
    assert sha(api_get(server, repo, "main", "held.bin")) == sha(data)
    assert sha(open(again.join("held.bin"), "rb").read()) == sha(data)
    assert read_status(again) == []


@pytest.mark.presign(multipart=True)
def test_async_queued_large_file_renamed_over_another_queued_file(server, repo, mount):
    """Two large files closed into the queue (uploads held), the second renamed over the first:
    lakeFS ends with the second's bytes at the first's name, never the first's over them."""
    m = branch(mount, repo, "async_close", "upload_threads=2")
    one = pattern(PART + 2 * MIB, 33)
    two = pattern(PART + 4 * MIB, 34)
    server.add_fault(operation="completePresignMultipartUpload", hold="q", count=1)
    for name, data in (("one.bin", one), ("two.bin", two)):
        fd = os.open(m.join(name), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    assert poll(lambda: server.counts().get("completePresignMultipartUpload", 0) >= 1, timeout=60)
    call_through_gate(server, "q", os.rename, m.join("two.bin"), m.join("one.bin"), timeout=120)
    fsync_path(m.join("one.bin"))
    assert sha(api_get(server, repo, "main", "one.bin")) == sha(two)
    assert api_get_or_none(server, repo, "main", "two.bin") is None
    assert sha(open(m.join("one.bin"), "rb").read()) == sha(two)


@pytest.fixture
def small_cache(tmp_path):
    """A 48 MiB tmpfs for the cache directory (root only: skipped elsewhere); unmounted after."""
    import subprocess
    root = tmp_path / "small"
    root.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(root)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield str(root / "cache")
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


@pytest.mark.presign(multipart=True)
@pytest.mark.parametrize("options", [(), ("async_close", "upload_threads=2")], ids=["sync", "async"])
def test_enospc_in_the_cache_directory_loses_nothing_acknowledged(server, repo, mount, small_cache, options):
    """The staged file's disk fills while a large file is written in order (eager parts going up):
    the write that does not fit fails with ENOSPC, and what lakeFS ends with under that name is
    exactly the bytes the program was told were written, never more, never a mix; a file written
    before keeps its bytes; and once space is back a new file goes up whole."""
    import errno
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"] + THRESHOLD + list(options),
              cache_dir=small_cache)
    first = pattern(5 * MIB, 40)
    with open(m.join("first.bin"), "wb") as f:
        f.write(first)
    data = pattern(64 * MIB, 41)
    written = 0
    fd = os.open(m.join("full.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        failed = None
        while written < len(data):
            try:
                written += os.write(fd, data[written:written + MIB])
            except OSError as e:
                failed = e.errno
                break
        assert failed == errno.ENOSPC, failed
        assert written < len(data)
        try:
            os.fsync(fd)
        except OSError as e:
            assert e.errno == errno.EIO
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    fsync_path(m.join("full.bin"))
    got = api_get(server, repo, "main", "full.bin")
    assert len(got) == written and sha(got) == sha(data[:written])
    assert sha(api_get(server, repo, "main", "first.bin")) == sha(first)
    os.unlink(m.join("full.bin"))
    later = pattern(20 * MIB, 42)
    with open(m.join("later.bin"), "wb") as f:
        f.write(later)
    fsync_path(m.join("later.bin"))
    assert sha(api_get(server, repo, "main", "later.bin")) == sha(later)


def test_fallocate_beyond_the_cache_directorys_space_changes_nothing(server, repo, mount, small_cache):
    """An allocation (mode 0) larger than the staged file's disk fails with ENOSPC and leaves the
    file as it was: its size, its bytes, and what its close uploads."""
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"], cache_dir=small_cache)
    data = pattern(MIB + 17, 43)
    with open(m.join("f.bin"), "wb") as f:
        f.write(data)
    proc = run(["fallocate", "--length", str(200 * MIB), m.join("f.bin")], ok=False)
    assert proc.returncode != 0 and b"No space left" in proc.stderr, (proc.returncode, proc.stderr)
    assert os.stat(m.join("f.bin")).st_size == len(data)
    assert sha(read_file(m.join("f.bin"))) == sha(data)
    fsync_path(m.join("f.bin"))
    assert sha(api_get(server, repo, "main", "f.bin")) == sha(data)


@pytest.mark.presign(multipart=True)
def test_mapping_written_into_a_sent_part_while_a_direct_writer_goes_on(server, repo, mount):
    """One descriptor writes a large file in order (write-only, direct; its parts go up); another
    (read-write) maps it and changes a page of a part already sent: the close sends that part again
    and lakeFS holds the mapped bytes, not the part as first sent."""
    m = branch(mount, repo)
    data = bytearray(pattern(3 * PART + MIB, 50))
    path = m.join("mixed_map.bin")
    wo = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(wo, bytes(data[:2 * PART + MIB]))
        assert parts_sent(server, 2), server.counts()
        rw = os.open(path, os.O_RDWR)
        try:
            mm = mmap.mmap(rw, 2 * PART)
            try:
                at = PART + 12345
                mm[at:at + 9] = b"REMAPPED!"
                data[at:at + 9] = b"REMAPPED!"
                mm.flush()
            finally:
                mm.close()
        finally:
            os.close(rw)
        write_all(wo, bytes(data[2 * PART + MIB:]))
    finally:
        os.close(wo)
    assert sha(api_get(server, repo, "main", "mixed_map.bin")) == sha(bytes(data))


@pytest.mark.presign(multipart=True)
@pytest.mark.parametrize("options", [(), ("async_close", "upload_threads=2")], ids=["sync", "async"])
def test_fsync_in_the_middle_of_an_eager_write_then_more(server, repo, mount, options):
    """fsync half way through a large file written in order: lakeFS holds exactly that prefix; the
    writer goes on, and after the close lakeFS holds the whole file."""
    m = branch(mount, repo, *options)
    data = pattern(3 * PART + 2 * MIB + 1, 51)
    mid = 2 * PART + 5 * MIB
    fd = os.open(m.join("mid_fsync.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data[:mid])
        os.fsync(fd)
        assert sha(api_get(server, repo, "main", "mid_fsync.bin")) == sha(data[:mid])
        write_all(fd, data[mid:])
        os.fsync(fd)
    finally:
        os.close(fd)
    assert sha(api_get(server, repo, "main", "mid_fsync.bin")) == sha(data)


@pytest.mark.presign(multipart=True)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_eager_writes_through_two_descriptors_under_part_faults(server, repo, mount, seed):
    """A seeded mix on one large file: in-order writes of random lengths through a write-only
    (direct) descriptor, rewrites of earlier ranges (sent parts among them) through a read-write one,
    fsyncs, waits for parts to go up, with 15 % of part PUTs failing. Whatever the closes and fsyncs
    report, once the faults are gone and an fsync succeeds lakeFS holds the bytes written, exactly."""
    import errno
    import random
    rng = random.Random(seed)
    m = branch(mount, repo, *(("async_close", "upload_threads=2") if seed % 2 else ()))
    size = rng.randrange(2 * PART, 4 * PART)
    want = bytearray(size)
    path = m.join("rand%d.bin" % seed)
    server.add_fault(operation="presignedPut", ratio=0.15, seed=seed, status=500, message="flaky store")
    wo = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    rw = os.open(path, os.O_RDWR)
    try:
        at = 0
        while at < size:
            n = min(rng.randrange(1, 3 * MIB), size - at)
            chunk = rng.randbytes(n)
            assert os.write(wo, chunk) == n
            want[at:at + n] = chunk
            at += n
            r = rng.random()
            if r < 0.15:
                off = rng.randrange(0, at)
                patch = rng.randbytes(min(rng.randrange(1, MIB), at - off))
                assert os.pwrite(rw, patch, off) == len(patch)
                want[off:off + len(patch)] = patch
            elif r < 0.2:
                try:
                    os.fsync(rng.choice([wo, rw]))
                except OSError as e:
                    assert e.errno == errno.EIO
            elif r < 0.25:
                poll(lambda: server.counts().get("presignedPut", 0) >= at // PART, timeout=10)
        assert sha(pread_all(rw, size)) == sha(bytes(want))
    finally:
        for fd in (wo, rw):
            try:
                os.close(fd)
            except OSError as e:
                assert e.errno == errno.EIO
    server.clear_faults()
    fd = os.open(path, os.O_WRONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    assert sha(api_get(server, repo, "main", "rand%d.bin" % seed)) == sha(bytes(want))


@pytest.mark.presign(multipart=True)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_9_at_a_random_moment_of_an_eager_write(server, repo, mount, seed):
    """A seeded large write in order with rewrites of sent parts, the daemon killed at a random
    point (parts in flight, some held at the server): every write that returned is on lakeFS after
    the remount, exactly (the staged file, not the dangling multipart upload)."""
    import random
    rng = random.Random(seed)
    options = ("async_close", "upload_threads=2") if seed % 2 else ()
    m = branch(mount, repo, *options)
    if seed % 3 == 0:
        server.add_fault(operation="presignedPut", hold="never%d" % seed, ratio=0.5, seed=seed)
    size = rng.randrange(2 * PART, 3 * PART + 7 * MIB)
    stop_at = rng.randrange(PART + 1, size)
    want = bytearray()
    path = m.join("k%d.bin" % seed)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        while len(want) < stop_at:
            chunk = rng.randbytes(min(rng.randrange(1, 3 * MIB), size - len(want)))
            assert os.write(fd, chunk) == len(chunk)
            want += chunk
            if rng.random() < 0.2:
                off = rng.randrange(0, len(want))
                patch = rng.randbytes(min(rng.randrange(1, MIB), len(want) - off))
                assert os.pwrite(fd, patch, off) == len(patch)
                want[off:off + len(patch)] = patch
        if rng.random() < 0.5:
            poll(lambda: server.counts().get("presignedPut", 0) >= len(want) // PART, timeout=5)
        assert kill_mount(m) == -9
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    server.clear_faults()
    got = api_get_or_none(server, repo, "main", "k%d.bin" % seed)
    assert got is None, "an unclosed file reached lakeFS before any close or fsync"
    again = branch(mount, repo, *options)
    assert sha(api_get(server, repo, "main", "k%d.bin" % seed)) == sha(bytes(want))
    assert sha(open(again.join("k%d.bin" % seed), "rb").read()) == sha(bytes(want))
    assert read_status(again) == []


@pytest.mark.presign(multipart=True)
def test_async_eager_file_whose_every_part_fails_is_kept_and_sent_later(server, repo, mount):
    """async_close, every part PUT failing: the close returns 0, the pool's upload fails (eager and
    the whole-file fallback), status says failed, fsync says EIO, nothing partial is completed on
    lakeFS; with the store back, an fsync sends the whole file; a utime after the close is kept."""
    import errno
    from mountlib import api_metadata, expect_errno
    m = branch(mount, repo, "async_close", "upload_threads=1")
    data = pattern(2 * PART + 3 * MIB, 60)
    server.add_fault(operation="presignedPut", status=500, message="store broke", count=100000)
    fd = os.open(m.join("later.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    os.utime(m.join("later.bin"), (1500000000, 1500000000))  # as tar x does after the close
    assert poll(lambda: any(line.startswith("failed later.bin") for line in read_status(m)), timeout=60), \
        read_status(m)
    fd = os.open(m.join("later.bin"), os.O_WRONLY)
    try:
        expect_errno(errno.EIO, os.fsync, fd)
        assert server.counts().get("completePresignMultipartUpload", 0) == 0
        assert api_get_or_none(server, repo, "main", "later.bin") is None
        server.clear_faults()
        os.fsync(fd)
    finally:
        os.close(fd)
    assert sha(api_get(server, repo, "main", "later.bin")) == sha(data)
    assert api_metadata(server, repo, "main", "later.bin").get("::lakefs::client-mtime") == "1500000000"
    assert os.stat(m.join("later.bin")).st_mtime == 1500000000
