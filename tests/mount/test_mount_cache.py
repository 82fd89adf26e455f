"""API economy, measured with the test server's request counters (reset after mounting, since
mounting makes a few calls of its own): a directory is listed once with paginated listObjects and
then answers every stat and lookup in it; a small file costs one GET; file data is cached on disk
by checksum and outlives the mount. GETs are getObject + presignedGet."""
import pytest
import json
import math
import os
import random
import resource


from mountlib import api_get, api_list_objects, gets, poll, read_file, run, sh, upload_concurrently, url_batches


@pytest.mark.many_objects
def test_ls_l_of_3000_objects(server, big_tree, mount):
    repo = big_tree.name
    listing = api_list_objects(server, repo, big_tree.commit, "big/", "/")
    want = {o["path"][len("big/"):]: o["size_bytes"] for o in listing}
    assert len(want) == 3000 and all(o["path_type"] == "object" for o in listing)
    for ref, options in (("main", ["attr_timeout=3600"]), (big_tree.commit, [])):
        m = mount("lakefs://%s/%s" % (repo, ref), options=options)
        # Finding big/ itself lists the ref root: that is the lookup of the directory, not
        # the ls of it, so it happens before counting.
        assert os.path.isdir(m.join("big"))
        server.reset_counts()
        out = run(["ls", "-ln", "--time-style=+%s", m.join("big")]).stdout.decode().splitlines()
        counted = server.counts()
        assert out[0].startswith("total ")
        got = {}
        for line in out[1:]:
            fields = line.split(None, 6)
            assert fields[0].startswith("-rw-r--r--"), line
            got[fields[6]] = int(fields[4])
        assert got == want
        assert counted.get("listObjects", 0) <= 3, counted
        assert counted.get("statObject", 0) == 0 and counted.get("headObject", 0) == 0, counted
        assert gets(counted) == 0, counted


def test_find_and_stat_of_5000_objects_in_50_directories(server, big_tree, mount):
    repo = big_tree.name
    want = {o["path"]: o["size_bytes"] for o in api_list_objects(server, repo, big_tree.commit)}
    assert len(want) == 5000 and len(big_tree.dirs) == 50
    m = mount("lakefs://%s/%s" % (repo, big_tree.commit))
    server.reset_counts()
    out = sh("find %s -type f -print0 | xargs -0 -r stat -c '%%n\t%%s'" % m.path).stdout.decode()
    counted = server.counts()
    got = {}
    for line in out.splitlines():
        path, size = line.rsplit("\t", 1)
        got[os.path.relpath(path, m.path)] = int(size)
    assert got == want
    pages = 1 + sum(math.ceil(n / 1000) for n in big_tree.dirs.values())
    assert counted.get("listObjects", 0) <= pages, (counted, pages)
    assert counted.get("statObject", 0) == 0 and counted.get("headObject", 0) == 0, counted
    assert gets(counted) == 0, counted


@pytest.mark.presign
def test_cat_of_200_small_files_in_a_listed_directory(server, big_tree, mount):
    repo = big_tree.name
    paths = sorted(o["path"] for o in api_list_objects(server, repo, "main", "cat/"))
    assert len(paths) == 200
    want = b"".join(api_get(server, repo, "main", p) for p in paths)
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"])
    assert sorted(os.listdir(m.join("cat"))) == [p[len("cat/"):] for p in paths]
    server.reset_counts()
    out = run(["cat"] + [m.join(p) for p in paths]).stdout
    counted = server.counts()
    assert out == want
    assert counted.get("statObject", 0) == 0 and counted.get("headObject", 0) == 0, counted
    # The listing is cached; the URLs come from presigned listings of cat/ from the first file read
    # (pages of 16, 32, 64, 128: src/urlbatch.c), never a statObject.
    assert counted.get("listObjects", 0) == url_batches(200), counted
    assert gets(counted) == 200, counted
    # Presign is on by default and the server offers it: data never goes through the API.
    assert counted.get("getObject", 0) == 0 and counted.get("presignedGet", 0) == 200, counted


def test_lookups_in_a_listed_directory_cost_no_call(server, big_tree, mount):
    m = mount("lakefs://%s/%s" % (big_tree.name, big_tree.commit))
    names = os.listdir(m.join("d00"))
    assert len(names) == big_tree.dirs["d00"]
    server.reset_counts()
    for i in range(20):
        assert not os.path.exists(m.join("d00", "no-such-%d" % i))
        assert os.stat(m.join("d00", names[i])).st_size > 0
    assert not os.path.exists(m.join("d00", "f00000", "below-a-file"))
    counted = server.counts()
    for op in ("listObjects", "statObject", "headObject"):
        assert counted.get(op, 0) == 0, counted


def test_cached_data_is_read_again_without_a_get(server, basic_repo, mount, tmp_path):
    repo, ref = basic_repo.name, basic_repo.commit2
    files = ["big.bin", "data/a.csv", "data/nested/deep/x.bin"]
    want = {p: api_get(server, repo, ref, p) for p in files}
    uri = "lakefs://%s/%s" % (repo, ref)
    cache = str(tmp_path / "shared-cache")
    # No small-file prefetch: opening data/a.csv (its directory's first file) would fetch data/b.csv
    # in the background, a GET that can land after a reset of the counts below.
    quiet = ["prefetch=0"]

    first = mount(uri, cache_dir=cache, options=quiet)
    server.reset_counts()
    for p in files:
        assert read_file(first.join(p)) == want[p]
    assert gets(server.counts()) >= len(files)
    server.reset_counts()
    for p in files:
        assert read_file(first.join(p)) == want[p]
    assert gets(server.counts()) == 0, server.counts()
    assert first.unmount() == 0
    assert any(names for _, _, names in os.walk(cache)), "nothing was written to cache_dir"

    again = mount(uri, cache_dir=cache, options=quiet)  # a new process, cold kernel page cache
    before = again.stats()
    server.reset_counts()
    for p in files:
        assert run(["cat", again.join(p)]).stdout == want[p]
    assert gets(server.counts()) == 0, server.counts()
    after = again.stats()
    size = sum(len(d) for d in want.values())
    assert after["data_cache"]["hits"] > before["data_cache"]["hits"]
    assert after["bytes_served_from_cache"] - before["bytes_served_from_cache"] >= size

    # Control: with an empty cache dir the same reads do fetch.
    cold = mount(uri, cache_dir=str(tmp_path / "other-cache"), options=quiet)
    server.reset_counts()
    for p in files:
        assert read_file(cold.join(p)) == want[p]
    assert gets(server.counts()) >= len(files), server.counts()


def test_a_damaged_cached_block_is_fetched_again_never_served(server, repo, mount, tmp_path):
    """A block file of the right length whose bytes changed on disk (a power loss, a bad disk) fails
    its SHA-256 check: the next mount counts it as corrupt and reads the block from lakeFS again."""
    data = bytes(range(256)) * 4096 * 3  # 3 MiB: three 1 MiB blocks
    cache = str(tmp_path / "damaged-cache")
    uri = _cached_by_a_first_mount(server, repo, mount, cache, "blocks.bin", data, ref="main")
    blocks = _block_files(cache)
    assert len(blocks) == 3, blocks
    victim = max(blocks)
    with open(victim, "r+b") as f:  # same length, one byte flipped in the data
        f.seek(os.path.getsize(victim) - 1000)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    again = mount(uri, cache_dir=cache)
    server.reset_counts()
    assert read_file(again.join("blocks.bin")) == data
    assert gets(server.counts()) == 1, server.counts()
    stats = json.loads(open(again.join(".lakefs", "stats")).read())
    assert stats["data_cache"]["corrupt"] == 1, stats["data_cache"]


def _cached_by_a_first_mount(server, repo, mount, cache, name, data, ref=None):
    """Uploads data as name on main and reads it whole through a first mount of ref (by default a
    commit of it) that leaves its blocks in the directory cache, and unmounts: returns the URI."""
    server.upload(repo, "main", name, data)
    uri = "lakefs://%s/%s" % (repo, ref or server.commit(repo, "main")["id"])
    first = mount(uri, cache_dir=cache)
    assert read_file(first.join(name)) == data
    assert first.unmount() == 0
    return uri


def _block_files(cache):
    return sorted(os.path.join(d, name) for d, _, names in os.walk(os.path.join(cache, "data"))
                  for name in names if not name.startswith("."))


def _drop_page_cache(path):
    """Drops the kernel's cached pages of a file in the mount, so the next read reaches lakefuse."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_warm_cache_reads_the_bytes_asked_for_from_one_open_per_block(server, repo, mount, tmp_path):
    """Block-cache I/O, counted by the cache itself: a remount opens and checks each block file once
    (its header; its data is not hashed again: the first mount wrote and sealed it in this boot), then
    keeps it open; a later read of N bytes reads exactly N bytes from block files, opens none and
    writes no mtime (the LRU clock is in memory)."""
    mib = 1 << 20
    size = 16 * mib + 12345  # 17 blocks of the cache's 1 MiB, the last one short
    blocks = 17
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    cache = str(tmp_path / "warm-cache")
    uri = _cached_by_a_first_mount(server, repo, mount, cache, "warm.bin", data)

    again = mount(uri, cache_dir=cache)
    path = again.join("warm.bin")
    s0 = again.stats()
    server.reset_counts()
    assert run(["cat", path]).stdout == data
    assert gets(server.counts()) == 0, server.counts()
    s1 = again.stats()
    c0, c1 = s0["data_cache"], s1["data_cache"]
    assert s1["bytes_read"] - s0["bytes_read"] == size
    assert c1["file_opens"] - c0["file_opens"] == blocks, (c0, c1)
    assert c1["open_files"] == blocks, c1
    assert c1["files_hashed"] == c0["files_hashed"], (c0, c1)
    read = c1["file_bytes_read"] - c0["file_bytes_read"]
    headers = 88 * blocks
    # Each header once, then only what the kernel asks for. Reading whole blocks per request was 8x.
    assert size + headers <= read <= 2 * size + headers, (read, size)
    assert c1["stamps_written"] == c0["stamps_written"] == 0, c1

    _drop_page_cache(path)
    assert read_file(path) == data
    s2 = again.stats()
    c2 = s2["data_cache"]
    assert s2["bytes_read"] - s1["bytes_read"] == size  # the kernel asked lakefuse again
    assert c2["file_opens"] == c1["file_opens"], (c1, c2)
    assert c2["file_bytes_read"] - c1["file_bytes_read"] == size, (c1, c2)
    assert c2["bytes_served"] - c1["bytes_served"] == size, (c1, c2)
    assert c2["stamps_written"] == 0 and c2["corrupt"] == 0, c2
    assert gets(server.counts()) == 0, server.counts()


def test_remount_splices_sealed_blocks_and_still_catches_damage(server, repo, mount, tmp_path):
    """After a remount in the same boot, cached reads are handed to the kernel as ranges of the
    block files (read_buf: spliced, not copied: data_cache.bytes_pinned) and the block files are
    not hashed again (their seal: this boot, their mtime). The bytes are the object's, at any offset
    and length. A block written to on disk has a stale seal: it is hashed, caught and fetched again;
    a block with no seal of this boot (as after a reboot) is hashed, passes and is sealed."""
    mib = 1 << 20
    size = 5 * mib + 777  # 6 blocks, the last one short
    data = os.urandom(size)
    cache = str(tmp_path / "splice-cache")
    uri = _cached_by_a_first_mount(server, repo, mount, cache, "splice.bin", data)
    blocks = _block_files(cache)
    assert len(blocks) == 6, blocks
    assert all(os.getxattr(b, "user.lakefuse.seal")[:4] == b"LFS1" for b in blocks)

    again = mount(uri, cache_dir=cache)
    path = again.join("splice.bin")
    server.reset_counts()
    c0 = again.stats()["data_cache"]
    assert run(["cat", path]).stdout == data
    c1 = again.stats()["data_cache"]
    assert gets(server.counts()) == 0, server.counts()
    assert c1["files_hashed"] == c0["files_hashed"] == 0, c1
    assert c1["file_opens"] - c0["file_opens"] == 6, (c0, c1)
    assert c1["bytes_pinned"] - c0["bytes_pinned"] == size, (c0, c1)
    # Unaligned ranges across block boundaries, read again by lakefuse (the kernel's pages dropped).
    _drop_page_cache(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        for off, n in ((0, 1), (mib - 3, 7), (2 * mib + 4095, 3 * mib), (size - 10, 100), (size, 5)):
            assert os.pread(fd, n, off) == data[off:off + n], (off, n)
    finally:
        os.close(fd)
    assert again.unmount() == 0

    victim = blocks[2]
    with open(victim, "r+b") as f:  # one byte flipped by a write: the mtime moves
        f.seek(-5000, os.SEEK_END)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x55]))
    os.removexattr(blocks[4], "user.lakefuse.seal")  # another boot's block
    third = mount(uri, cache_dir=cache)
    server.reset_counts()
    assert run(["cat", third.join("splice.bin")]).stdout == data
    assert gets(server.counts()) == 1, server.counts()
    c = third.stats()["data_cache"]
    assert c["corrupt"] == 1, c
    assert c["files_hashed"] == 2, c
    assert third.unmount() == 0
    assert os.getxattr(blocks[4], "user.lakefuse.seal")[:4] == b"LFS1"  # sealed by its check


def _resident_bytes(paths):
    """{path: bytes of it in the page cache} (fincore)."""
    out = run(["fincore", "-b", "-n", "-r", "-o", "RES,FILE"] + list(paths)).stdout.decode()
    return {line.split(" ", 1)[1]: int(line.split(" ", 1)[0]) for line in out.splitlines()}


def test_a_sequential_read_after_a_remount_has_the_blocks_ahead_read_into_the_page_cache(
        server, repo, mount, tmp_path):
    """A read from the block cache splices the block files into /dev/fuse; when their pages are not
    in memory (a remount after a reboot, or once the kernel let them go) each read would wait for
    its own disk read. A sequential reader's read-ahead window hands its cached blocks to the
    warmer, whose threads read their files into the page cache ahead of the reads: after reading
    only the first block (the kernel's own read-ahead off), block files the reads never touched
    are in memory, and the bytes are the object's."""
    mib = 1 << 20
    size = 24 * mib
    data = os.urandom(size)
    cache = str(tmp_path / "warm-ahead-cache")
    uri = _cached_by_a_first_mount(server, repo, mount, cache, "ahead.bin", data)
    blocks = {int(p.rsplit("-", 1)[1]): p for p in _block_files(cache)}
    assert sorted(blocks) == list(range(24)), sorted(blocks)
    for p in blocks.values():  # written back first: dirty pages are not dropped
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    assert set(_resident_bytes(blocks.values()).values()) == {0}

    again = mount(uri, cache_dir=cache)
    path = again.join("ahead.bin")
    server.reset_counts()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # the kernel asks for what is read only
        for off in range(0, mib, 128 * 1024):
            assert os.pread(fd, 128 * 1024, off) == data[off:off + 128 * 1024], off

        def warmer_idle():
            w = again.stats()["page_cache_warm"]
            return w["queued"] > 0 and w["queued"] == w["blocks"] + w["failed"] and w
        warm = poll(warmer_idle)
        assert warm, again.stats()["page_cache_warm"]
        s = again.stats()
        assert s["bytes_read"] == mib, s["bytes_read"]  # only block 0 was asked for
        resident = _resident_bytes(blocks.values())
        ahead = [i for i in range(1, 24) if resident[blocks[i]] >= os.path.getsize(blocks[i])]
        assert len(ahead) >= 4, (resident, warm)
        assert warm["blocks"] >= len(ahead) and warm["failed"] == 0, (warm, ahead)
        for off in range(mib, size, 4 * mib):
            assert os.pread(fd, 4 * mib, off) == data[off:off + 4 * mib], off
    finally:
        os.close(fd)
    assert gets(server.counts()) == 0, server.counts()


def test_random_reads_over_many_cached_blocks_open_each_file_once(server, repo, mount, tmp_path):
    """fio-style random reads over a cached file of more blocks than the 64 descriptors the cache
    used to keep: it keeps a quarter of the descriptor limit (up to 1024), so two rounds of reads in
    every block, in shuffled order, open each block file once (with 64 kept, almost every read
    reopened and rechecked a file) and cost no GET."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    mib = 1 << 20
    blocks = 72
    if soft != resource.RLIM_INFINITY and soft // 4 < blocks:
        pytest.skip("descriptor limit %d keeps fewer than %d block files open" % (soft, blocks))
    size = blocks * mib
    data = os.urandom(size)
    server.upload(repo, "main", "rand.bin", data)
    commit = server.commit(repo, "main")["id"]
    uri = "lakefs://%s/%s" % (repo, commit)
    cache = str(tmp_path / "rand-cache")
    first = mount(uri, cache_dir=cache)
    assert read_file(first.join("rand.bin")) == data
    assert first.unmount() == 0

    again = mount(uri, cache_dir=cache)
    path = again.join("rand.bin")
    server.reset_counts()
    c0 = again.stats()["data_cache"]
    rnd = random.Random(13)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        for round_ in range(2):
            order = list(range(blocks))
            rnd.shuffle(order)
            for b in order:
                off = b * mib + (round_ * 2 + 1) * 64 * 1024 + rnd.randrange(16) * 4096
                assert os.pread(fd, 4096, off) == data[off:off + 4096], off
    finally:
        os.close(fd)
    c1 = again.stats()["data_cache"]
    assert gets(server.counts()) == 0, server.counts()
    assert c1["file_opens"] - c0["file_opens"] == blocks, (c0, c1)
    assert c1["open_files"] == blocks, c1
    assert c1["files_hashed"] == c0["files_hashed"], (c0, c1)


@pytest.mark.presign
def test_next_url_page_is_asked_for_before_the_reader_needs_it(server, repo, mount):
    """Presigned pages of a directory read in order (src/urlbatch.c): 16 URLs, then 32 (asked for past
    half of the first), then 64 (past half of the second); pages of 64 and more have the next one
    asked for by the refill thread as soon as a read takes a URL from them, so it comes before the
    reader gets there, and the reader that took that URL does not wait for it. A few files cost one
    page. Prefetch off: each page is asked for by the reads below, in this order."""
    n = 200
    upload_concurrently(server, repo, "main", [("d/f%03d" % i, b"%d" % i) for i in range(n)])
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=3600", "prefetch=0"])
    os.listdir(m.join("d"))
    server.reset_counts()

    def pages():
        return server.counts().get("listObjects", 0)

    def read_upto(k, first):
        for i in range(first, k + 1):
            assert read_file(m.join("d", "f%03d" % i)) == b"%d" % i

    read_upto(7, 0)
    assert pages() == 1  # files 0-15; none past half yet
    read_upto(8, 8)  # past half of 16: 32 more (files 16-47)
    assert poll(lambda: pages() == 2), server.counts()
    read_upto(32, 9)  # past half of 32: 64 more (48-111)
    assert poll(lambda: pages() == 3), server.counts()
    read_upto(47, 33)
    assert pages() == 3
    read_upto(48, 48)  # the first URL of the page of 64: 128 more (112-239) at once
    assert poll(lambda: pages() == 4), server.counts()
    read_upto(n - 1, 49)  # page 4 holds the rest: nothing more is asked for
    assert server.counts() == {"listObjects": 4, "presignedGet": n}, server.counts()
