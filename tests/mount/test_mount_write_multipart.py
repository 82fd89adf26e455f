"""Large files go to lakeFS in parts: a file written on a mount whose size reaches
-o multipart_threshold is uploaded with a presigned multipart upload (createPresignMultipartUpload,
one presigned PUT per 16 MiB part, up to 4 parts at once, completePresignMultipartUpload with the
parts in order) when the server offers it, with the same lakectl metadata as a small file, which
still takes one presigned PUT and linkPhysicalAddress. Without presign (server or -o presign=false)
uploadObject carries it. A failed part stops new parts from starting and aborts the upload; fsync
and close fail with EIO, the staged file is kept, and the next flush or the next mount uploads it,
in parts again.
These tests are about the upload at close: -o eager_upload=false, so that no part goes up while the
file is written (test_mount_write_eager.py covers that, and its fall back to this path).
Every test works on a fresh repository and checks the result through the API and request counts."""
import errno
import hashlib
import os
import subprocess

import pytest

import mountlib
from mountlib import (MIB, api_get, api_get_or_none, api_metadata, api_stat, close_quietly,
                      data_upload_calls, expect_errno, kill_mount, mount_args, pattern, poll, read_file, read_status,
                      staged_files)

MTIME_KEY = "::lakefs::client-mtime"
PART = 16 * MIB  # the mount's part size (upload.h UPLOAD_DEFAULT_PART_SIZE)
THRESHOLD = ["multipart_threshold=8M", "eager_upload=false"]
LARGE = 21 * MIB + 12345  # two parts: 16 MiB and the rest
AT_ONCE = 4  # parts the mount PUTs at once (upload.c UPLOAD_PART_THREADS)
FOUR_PARTS = 3 * PART + MIB + 77
FIVE_PARTS = 4 * PART + MIB + 77  # one part more than go at once
MULTIPART = {"createPresignMultipartUpload": 1, "presignedPut": 2, "completePresignMultipartUpload": 1}
SINGLE_PUT = {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}


def branch(mount, repo, *options, env=None):
    return mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"] + THRESHOLD + list(options), env=env)


def write_in_chunks(path, data, chunk=MIB):
    with open(path, "wb") as f:
        for i in range(0, len(data), chunk):
            f.write(data[i:i + chunk])


def s3_multipart_etag(data, part_size):
    """The checksum S3 (and the test server) give a multipart object: MD5 of the parts' MD5s, -N."""
    digests = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return hashlib.md5(b"".join(digests)).hexdigest() + "-%d" % len(digests)


def mpu_dirs(server):
    """Upload ids whose parts the server still holds."""
    root = os.path.join(server.data_dir, "objects", "mpu")
    return set(os.listdir(root)) if os.path.isdir(root) else set()


@pytest.mark.presign(multipart=True)
def test_large_file_is_uploaded_in_parts(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(LARGE, 1)
    before = mpu_dirs(server)
    server.reset_counts()
    write_in_chunks(m.join("large.bin"), data)
    counted = server.counts()
    assert data_upload_calls(counted) == MULTIPART, counted
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert api_get(server, repo, "main", "large.bin") == data
    st = api_stat(server, repo, "main", "large.bin")
    assert st["size_bytes"] == len(data)
    assert st["checksum"] == s3_multipart_etag(data, PART)  # two parts of 16 MiB and the rest
    assert api_metadata(server, repo, "main", "large.bin")[MTIME_KEY].isdigit()
    assert mpu_dirs(server) == before
    assert os.stat(m.join("large.bin")).st_size == len(data)
    assert read_file(m.join("large.bin")) == data


@pytest.mark.presign
def test_file_below_the_threshold_takes_one_put(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(8 * MIB - 1, 2)
    server.reset_counts()
    write_in_chunks(m.join("small.bin"), data)
    counted = server.counts()
    assert data_upload_calls(counted) == SINGLE_PUT, counted
    assert api_get(server, repo, "main", "small.bin") == data
    assert api_metadata(server, repo, "main", "small.bin")[MTIME_KEY].isdigit()
    # At the threshold exactly: in parts (one part, smaller than 16 MiB).
    data = pattern(8 * MIB, 3)
    server.reset_counts()
    write_in_chunks(m.join("edge.bin"), data)
    counted = server.counts()
    assert data_upload_calls(counted) == dict(MULTIPART, presignedPut=1), counted
    assert api_get(server, repo, "main", "edge.bin") == data


def test_presign_false_uploads_through_the_api(server, repo, mount):
    m = branch(mount, repo, "presign=false")
    data = pattern(LARGE, 4)
    server.reset_counts()
    write_in_chunks(m.join("direct.bin"), data)
    counted = server.counts()
    assert data_upload_calls(counted) == {"uploadObject": 1}, counted
    assert api_get(server, repo, "main", "direct.bin") == data


def test_server_without_presign_gets_upload_object(lakefs_server_factory, mount, tmp_path):
    srv = lakefs_server_factory(extra_args=["--no-presign"])
    repo = srv.create_repo()
    home = tmp_path / "home-no-presign"
    home.mkdir()
    m = branch(mount, repo, env=mountlib.lakefuse_env(srv, home))
    data = pattern(LARGE, 5)
    srv.reset_counts()
    write_in_chunks(m.join("direct.bin"), data)
    counted = srv.counts()
    assert data_upload_calls(counted) == {"uploadObject": 1}, counted
    assert api_get(srv, repo, "main", "direct.bin") == data
    assert api_metadata(srv, repo, "main", "direct.bin")[MTIME_KEY].isdigit()
    assert m.unmount() == 0
    assert srv.violations() == []


def failed_fsync(server, repo, m, rel, data):
    """Writes data to rel and fsyncs it while the first part PUT fails (500: not retried): EIO, and
    the multipart upload was aborted. Returns the descriptor, still open: a close would try again
    (and so would the release that follows it, asynchronously), so the tests decide when."""
    before = mpu_dirs(server)
    server.add_fault(operation="presignedPut", status=500, message="store broke", count=1)
    fd = os.open(m.join(rel), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, data)
        server.reset_counts()
        expect_errno(errno.EIO, os.fsync, fd)
        counted = server.counts()
        # Both parts may have started before the first one failed.
        assert counted.get("presignedPut") in (1, 2), counted
        assert data_upload_calls(counted) == {"createPresignMultipartUpload": 1,
                                              "presignedPut": counted["presignedPut"]}, counted
        assert counted.get("abortPresignMultipartUpload") == 1, counted
        assert mpu_dirs(server) == before  # aborted: no part left on the store
        assert api_get_or_none(server, repo, "main", rel) is None
    except BaseException:
        server.clear_faults()
        close_quietly(fd)  # an open descriptor would hold up the unmount
        raise
    return fd


@pytest.mark.presign(multipart=True)
def test_failed_part_aborts_and_the_next_flush_uploads_in_parts(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(LARGE, 6)
    fd = failed_fsync(server, repo, m, "big.bin", data)
    try:
        server.reset_counts()
        os.fsync(fd)  # the fault fired once: this one goes through
        counted = server.counts()
        assert data_upload_calls(counted) == MULTIPART, counted
        assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
        assert api_get(server, repo, "main", "big.bin") == data
        server.reset_counts()
    finally:
        os.close(fd)
    assert data_upload_calls(server.counts()) == {}  # nothing changed since the fsync
    assert read_file(m.join("big.bin")) == data


@pytest.mark.presign(multipart=True)
def test_failed_part_is_recovered_in_parts_by_the_next_mount(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(LARGE, 7)
    fd = failed_fsync(server, repo, m, "kept.bin", data)
    assert data in staged_files(m.cache_dir).values()
    assert kill_mount(m) == -9  # with the file still open: nothing else was tried
    close_quietly(fd)
    server.reset_counts()
    again = branch(mount, repo)  # same cache dir: recovered before "mounted"
    counted = server.counts()
    assert data_upload_calls(counted) == MULTIPART, counted
    assert api_get(server, repo, "main", "kept.bin") == data
    assert api_metadata(server, repo, "main", "kept.bin")[MTIME_KEY].isdigit()
    assert read_file(again.join("kept.bin")) == data


@pytest.mark.presign(multipart=True)
def test_parts_go_up_at_once_and_complete_in_order(server, repo, mount):
    """Four parts, each PUT held 1.5 s by the server before it reads the body: the server sees
    several of them in flight at once (one after another it never would). The object is
    byte-identical and has the multipart checksum, so the parts were completed in order."""
    m = branch(mount, repo)
    data = pattern(FOUR_PARTS, 8)
    held = 1.5
    before = mpu_dirs(server)
    fd = os.open(m.join("four.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, data)
        server.add_fault(operation="presignedPut", latency_ms=int(held * 1000), count=AT_ONCE)
        server.reset_counts()
        os.fsync(fd)
        counted = server.counts()
        at_once = server.max_in_flight().get("presignedPut", 0)
    finally:
        server.clear_faults()
        os.close(fd)
    assert data_upload_calls(counted) == dict(MULTIPART, presignedPut=AT_ONCE), counted
    assert counted.get("abortPresignMultipartUpload", 0) == 0, counted
    assert at_once >= 2, "parts were PUT one after another (at most %d in flight)" % at_once
    st = api_stat(server, repo, "main", "four.bin")
    assert st["size_bytes"] == len(data)
    assert st["checksum"] == s3_multipart_etag(data, PART)  # the parts' MD5s in part order
    assert api_get(server, repo, "main", "four.bin") == data
    assert mpu_dirs(server) == before
    os.unlink(m.join("four.bin"))
    assert api_get_or_none(server, repo, "main", "four.bin") is None


@pytest.mark.presign(multipart=True)
def test_failed_part_starts_no_new_part_and_aborts(server, repo, mount):
    """Five parts, four PUT at once; the first PUT to arrive fails at once and the other three are
    held 1.5 s by the server, so they are still going when it fails: the fifth part never starts."""
    m = branch(mount, repo)
    data = pattern(FIVE_PARTS, 9)
    before = mpu_dirs(server)
    fd = os.open(m.join("five.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, data)
        server.add_fault(operation="presignedPut", status=500, message="store broke", count=1)
        server.add_fault(operation="presignedPut", latency_ms=1500, count=3)
        server.reset_counts()
        expect_errno(errno.EIO, os.fsync, fd)
        counted = server.counts()
        server.clear_faults()
        assert 1 <= counted.get("presignedPut", 0) <= 4, counted  # never the fifth
        assert counted.get("createPresignMultipartUpload") == 1, counted
        assert counted.get("abortPresignMultipartUpload") == 1, counted
        assert counted.get("completePresignMultipartUpload", 0) == 0, counted
        assert mpu_dirs(server) == before
        assert api_get_or_none(server, repo, "main", "five.bin") is None
        # The failing part's own message, carried out of its thread.
        status = read_status(m)
        assert len(status) == 1 and status[0].startswith("failed five.bin: "), status
        assert "store broke" in status[0], status
        server.reset_counts()
        os.fsync(fd)  # the store works again: all five parts go up
        counted = server.counts()
    finally:
        server.clear_faults()
        close_quietly(fd)
    assert data_upload_calls(counted) == dict(MULTIPART, presignedPut=5), counted
    assert api_get(server, repo, "main", "five.bin") == data
    os.unlink(m.join("five.bin"))


@pytest.mark.presign(multipart=True)
def test_failed_part_fails_the_close_with_eio(server, repo, mount):
    """One part's PUT fails (the second to arrive; the first goes through): close gives EIO with the
    upload aborted. The release that follows tries once more and is refused at create, so nothing
    reaches the branch and the file stays staged, listed as failed."""
    m = branch(mount, repo)
    data = pattern(LARGE, 10)
    before = mpu_dirs(server)
    fd = os.open(m.join("big.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    # Rules apply in order, each to as many requests as its count: a 1 ms delay lets the first of
    # each through, the next one fails.
    server.add_fault(operation="presignedPut", latency_ms=1, count=1)
    server.add_fault(operation="presignedPut", status=500, message="store broke", count=1)
    server.add_fault(operation="createPresignMultipartUpload", latency_ms=1, count=1)
    server.add_fault(operation="createPresignMultipartUpload", status=500, message="no more", count=1)
    server.reset_counts()
    expect_errno(errno.EIO, os.close, fd)
    assert poll(lambda: server.counts().get("createPresignMultipartUpload", 0) >= 2, timeout=30)
    counted = server.counts()
    server.clear_faults()
    assert data_upload_calls(counted) == {"createPresignMultipartUpload": 2, "presignedPut": 2}, counted
    assert counted.get("abortPresignMultipartUpload") == 1, counted
    assert counted.get("completePresignMultipartUpload", 0) == 0, counted
    assert mpu_dirs(server) == before
    assert api_get_or_none(server, repo, "main", "big.bin") is None
    status = poll(lambda: read_status(m), timeout=10)
    assert len(status) == 1 and status[0].startswith("failed big.bin: "), status
    assert data in staged_files(m.cache_dir).values()
    os.unlink(m.join("big.bin"))
    assert api_get_or_none(server, repo, "main", "big.bin") is None


def test_bad_multipart_threshold_is_refused(lakefuse_env, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for value in ("1M", "4095K", "lots", ""):
        p = subprocess.run(mount_args("lakefs://repo/main", str(mnt), ["multipart_threshold=" + value]),
                           capture_output=True, text=True, timeout=60, env=lakefuse_env,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 2, (value, p.stdout, p.stderr)
        assert p.stderr.strip() == ("lakefuse: bad value for -o multipart_threshold=%s: expected a size in bytes, "
                                    "with an optional K, M, G or T suffix, at least 5M" % value), p.stderr
        assert p.stdout == ""
