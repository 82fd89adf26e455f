"""Large objects read sequentially: few, large ranged GETs (at most 64 for 256 MiB, i.e. 4 MiB per GET
on average), every byte right, from presigned URLs when the server offers them and through the API
with -o presign=false or when it does not."""
import os
import time

import pytest

import mountlib
from mountlib import MIB, api_get, gets, run, sh, upload_pattern_object

SIZE_256, SIZE_64 = 256 * MIB, 64 * MIB


@pytest.fixture(scope="module")
def large_objects(lakefs_server):
    """(repo, commit, {path: (size, sha256)}) with a 256 MiB and a 64 MiB object."""
    repo = lakefs_server.create_repo()
    objects = {}
    for path, size, seed in (("large/256.bin", SIZE_256, 256), ("large/64.bin", SIZE_64, 64)):
        objects[path] = (size, upload_pattern_object(lakefs_server, repo, "main", path, size, seed))
    commit = lakefs_server.commit(repo, "main", "large objects")["id"]
    yield repo, commit, objects
    lakefs_server.api("DELETE", "/repositories/" + repo)


@pytest.mark.slow
@pytest.mark.presign
def test_sequential_read_of_256_mib_presigned(server, large_objects, mount):
    repo, commit, objects = large_objects
    size, digest = objects["large/256.bin"]
    m = mount("lakefs://%s/%s" % (repo, commit), options=["cache_size=1G"])
    path = m.join("large", "256.bin")
    assert os.stat(path).st_size == size
    server.reset_counts()
    out = run(["sha256sum", path]).stdout.decode()
    counted = server.counts()
    assert out.split()[0] == digest
    assert gets(counted) <= 64, counted
    assert counted.get("presignedGet", 0) > 0 and counted.get("getObject", 0) == 0, counted


@pytest.mark.slow
def test_sequential_read_with_presign_false(server, large_objects, mount):
    repo, commit, objects = large_objects
    size, digest = objects["large/64.bin"]
    m = mount("lakefs://%s/%s" % (repo, commit), options=["presign=false", "cache_size=262144K"])
    path = m.join("large", "64.bin")
    assert os.stat(path).st_size == size
    server.reset_counts()
    out = sh("dd if=%s bs=1M status=none | sha256sum" % path).stdout.decode()
    counted = server.counts()
    assert out.split()[0] == digest
    assert gets(counted) <= 16, counted
    assert counted.get("presignedGet", 0) == 0 and counted.get("getObject", 0) > 0, counted


def test_server_without_presign_is_read_through_the_api(lakefs_server_factory, mount, tmp_path):
    srv = lakefs_server_factory(extra_args=["--no-presign"])
    repo = srv.create_repo()
    data = bytes(mountlib.PatternStream(3 * MIB + 777, 3).read())
    srv.upload(repo, "main", "f.bin", data)
    srv.upload(repo, "main", "small.txt", b"small\n")
    home = tmp_path / "home-no-presign"
    home.mkdir()
    m = mount("lakefs://%s/main" % repo, env=mountlib.lakefuse_env(srv, home))
    srv.reset_counts()
    assert run(["cat", m.join("f.bin")]).stdout == data
    assert run(["cat", m.join("small.txt")]).stdout == b"small\n"
    counted = srv.counts()
    assert counted.get("presignedGet", 0) == 0 and counted.get("getObject", 0) >= 2, counted
    assert api_get(srv, repo, "main", "f.bin") == data
    assert m.unmount() == 0
    assert srv.violations() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a mount's read-ahead through sysfs needs root")
def test_kernel_read_ahead_raised_to_two_blocks(server, large_objects, mount):
    """The kernel reads ahead at most the mount's read_ahead_kb (128 KiB by default, which FUSE's init
    cannot raise): the daemon raises its own mount's window to at least two 1 MiB cache blocks, in
    whole requests of the mount's max_read (248 pages: a spliced reply fits a 1 MiB pipe), so a
    sequential read reaches it in large requests instead of 128 KiB ones."""
    repo, commit, _ = large_objects
    m = mount("lakefs://%s/%s" % (repo, commit))
    dev = os.stat(m.path).st_dev
    with open("/sys/class/bdi/%d:%d/read_ahead_kb" % (os.major(dev), os.minor(dev))) as f:
        assert int(f.read()) == 4 * 992
    with open("/proc/self/mountinfo") as f:
        line = [l for l in f if l.split(" ")[4] == m.path][-1]
    assert "max_read=%d" % (248 * 4096) in line, line


def test_random_4k_reads_fetch_only_their_bytes(server, large_objects, mount):
    """Random 4 KiB reads (as fio's, which advises POSIX_FADV_RANDOM) of a large object fetch their own
    4 KiB each, not a 1 MiB block (256 times as much); a second random read in a block fetches that
    block whole, once, and later reads in it fetch nothing. (256 blocks: 16 random reads are below the
    1/16 of the blocks after which a descriptor's random misses all fetch whole blocks; a cache under
    1 GiB is too small for that to fill the object in the background.)"""
    repo, commit, objects = large_objects
    size, _ = objects["large/256.bin"]
    pattern = mountlib.PatternStream(size, 256)
    m = mount("lakefs://%s/%s" % (repo, commit), options=["cache_size=1000M"])
    path = m.join("large", "256.bin")
    assert os.stat(path).st_size == size
    blocks = [137, 5, 60, 212, 44, 1, 123, 251, 9, 30, 180, 63, 2, 240, 27, 156]
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        before = m.stats()
        server.reset_counts()
        for i, b in enumerate(blocks):
            off = b * MIB + (i + 3) * 8192
            assert os.pread(fd, 4096, off) == pattern.block(b)[off - b * MIB:off - b * MIB + 4096]
        counted, after = server.counts(), m.stats()
        assert after["bytes_fetched"] - before["bytes_fetched"] == len(blocks) * 4096, after
        assert after["fetches"] - before["fetches"] == len(blocks), after
        assert gets(counted) == len(blocks), counted
        # Block 5 again, elsewhere: now the whole block; then a third read there costs nothing.
        for off in (5 * MIB + 900 * 1024, 5 * MIB + 100 * 1024):
            assert os.pread(fd, 4096, off) == pattern.block(5)[off - 5 * MIB:off - 5 * MIB + 4096]
        counted, last = server.counts(), m.stats()
        assert last["bytes_fetched"] - after["bytes_fetched"] == MIB, last
        assert gets(counted) == len(blocks) + 1, counted
    finally:
        os.close(fd)


def test_dense_random_reads_fill_the_object(server, large_objects, mount):
    """Once a descriptor's random reads number 1/16 of the blocks (17 reads of 256 blocks) and the object
    fits in a quarter of the cache, the object is filled into the cache in the background in GETs of
    4 MiB: 64 GETs for 256 MiB, each byte fetched once, besides the reads' own 4 KiB GETs; then random
    reads anywhere fetch nothing."""
    repo, commit, objects = large_objects
    size, _ = objects["large/256.bin"]
    pattern = mountlib.PatternStream(size, 256)
    m = mount("lakefs://%s/%s" % (repo, commit), options=["cache_size=1G"])
    path = m.join("large", "256.bin")
    assert os.stat(path).st_size == size
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        before = m.stats()
        server.reset_counts()
        for i in range(17):
            b = (i * 97 + 13) % 256
            off = b * MIB + (i + 3) * 8192
            assert os.pread(fd, 4096, off) == pattern.block(b)[off - b * MIB:off - b * MIB + 4096]
        deadline = time.monotonic() + 60
        while m.stats()["fill_blocks"] - before["fill_blocks"] < 256:
            assert time.monotonic() < deadline, m.stats()
            time.sleep(0.05)
        after, counted = m.stats(), server.counts()
        direct = after["fetches"] - before["fetches"] - 64
        assert 16 <= direct <= 17, after  # the 17th read fetched alone or served by the fill
        assert after["bytes_fetched"] - before["bytes_fetched"] == size + direct * 4096, after
        assert gets(counted) == 64 + direct, counted
        for i in range(64):
            b = (i * 37 + 5) % 256
            off = b * MIB + i * 12288
            assert os.pread(fd, 4096, off) == pattern.block(b)[off - b * MIB:off - b * MIB + 4096]
        assert m.stats()["fetches"] == after["fetches"]
        assert gets(server.counts()) == 64 + direct
    finally:
        os.close(fd)


def test_concurrent_and_killed_cold_readers_leave_every_byte_right(server, large_objects, mount):
    """A read the cache cannot answer yet is answered from memory through the FUSE thread's own pipe
    (fs_readers.c, mem_reply): readers killed in the middle of cold reads (their replies never
    delivered), then four readers at once at different offsets, then the whole file: every byte
    right, so no reply ever carries another's bytes."""
    import signal
    import subprocess
    import threading
    repo, commit, objects = large_objects
    size, digest = objects["large/64.bin"]
    pattern = mountlib.PatternStream(size, 64)
    m = mount("lakefs://%s/%s" % (repo, commit), options=["presign=false", "cache_size=1G"])
    path = m.join("large", "64.bin")
    def read_enough(p):  # 2 MiB read (it reads on: its next reply is in flight), or it is gone
        try:
            with open("/proc/%d/io" % p.pid) as f:
                return int(f.read().split("rchar: ")[1].split()[0]) >= 2 * MIB
        except (OSError, IndexError, ValueError):
            return True

    readers = [subprocess.Popen(["dd", "if=" + path, "of=/dev/null", "bs=1M", "skip=%d" % (16 * i)],
                                stderr=subprocess.DEVNULL) for i in range(4)]
    try:
        for p in readers:
            assert mountlib.poll(lambda: read_enough(p), timeout=60)
            p.send_signal(signal.SIGKILL)
    finally:
        for p in readers:
            p.kill()
            p.wait()
    wrong = []

    def check(first_block):
        fd = os.open(path, os.O_RDONLY)
        try:
            for b in range(first_block, first_block + 16):
                got = os.pread(fd, MIB, b * MIB)
                if got != pattern.block(b):
                    wrong.append(b)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=check, args=(16 * i,)) for i in (3, 1, 2, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert run(["sha256sum", path]).stdout.decode().split()[0] == digest
