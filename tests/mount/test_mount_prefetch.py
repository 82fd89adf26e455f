"""Small-file prefetch (issue 13, workload 2): a program that opens a directory's files in listing
order (its first file, or a file and then the next one) gets the next small files fetched in the background into the block cache, so that their open
and read are cache hits; the server sees the same GETs it saw before (one per file read), a reader in
another order wastes at most one window, and the integrity rules stay: a file replaced on the server
after the listing is served as the new one once its new checksum (the presigned listing that gives
its URL, or the ETag of a read through the API) dropped the listing, never mixed and never the old
bytes under the new key.

The step-by-step tests read with Python, one file at a time, and wait (polling .lakefs/stats, with a
deadline) until the prefetches a step starts have started or finished, so every counter is exact."""
import os
import random

import pytest

from mountlib import gets, poll, run, url_batches

N, SIZE = 24, 4096
WINDOW = 8  # -o prefetch's default
BRANCH = ["attr_timeout=3600"]


def content(i, version=0):
    return random.Random(i * 7919 + version).randbytes(SIZE + version * 100)


def name(i):
    return "f%03d" % i


@pytest.fixture
def small_dir(server, repo):
    for i in range(N):
        server.upload(repo, "main", "d/" + name(i), content(i))
    return repo


def read(path):
    with open(path, "rb") as f:
        return f.read()


def prefetch_stats(m):
    return m.stats()["prefetch"]


def wait_prefetch(m, **want):
    """Polls until each named prefetch counter reaches its value; returns the counters."""
    got = poll(lambda: (lambda s: s if all(s[k] >= v for k, v in want.items()) else None)(prefetch_stats(m)),
               timeout=30.0)
    assert got, "prefetch counters never reached %r: %r" % (want, prefetch_stats(m))
    return got


def started_after(k):
    """Prefetches started once file k has been opened in order: f001 .. f(k+WINDOW), capped."""
    return min(k + WINDOW, N - 1)


def test_reading_in_order_hits_prefetched_files(server, small_dir, mount):
    m = mount("lakefs://%s/main" % small_dir, options=BRANCH)
    assert sorted(os.listdir(m.join("d"))) == [name(i) for i in range(N)]
    server.reset_counts()
    for k in range(N):
        assert read(m.join("d", name(k))) == content(k)
        # The listing's first file starts the window, each file of it opened moves it on.
        wait_prefetch(m, files=started_after(k))
    s = wait_prefetch(m, bytes=(N - 1) * SIZE, hits=N - 1)
    # f000 was read by its open; every later one had been fetched ahead.
    assert (s["files"], s["hits"], s["wasted"], s["cancelled"], s["errors"]) == (N - 1, N - 1, 0, 0, 0), s
    # Not one GET more than before prefetch: one per file, and no lakeFS API call but the presigned
    # listings of d/ that give the files' URLs (pages of 16, then 32: src/urlbatch.c).
    counts = server.counts()
    assert gets(counts) == N, counts
    want = {"presignedGet": N, "listObjects": url_batches(N)} if "presignedGet" in counts else {"getObject": N}
    assert counts == want, counts
    # Each file fetched once (by its open or ahead of it, never both): an open of a file still being
    # fetched waits for that fetch; one fetched already is a block-cache hit.
    stats = m.stats()
    assert stats["fetches"] == N and stats["bytes_fetched"] == N * SIZE, stats
    # Read again in the same order: all in the cache, nothing fetched again (not even from the cache).
    # A window item a worker reaches is found cached (not counted); one opened before any worker took
    # it is left to its open (cancelled: a busy machine). Neither fetches.
    for k in range(N):
        assert read(m.join("d", name(k))) == content(k)
    s = prefetch_stats(m)
    assert (s["files"], s["hits"], s["wasted"], s["errors"]) == (N - 1, N - 1, 0, 0), s
    assert s["cancelled"] <= N - 1, s
    assert gets(server.counts()) == N
    stats = m.stats()
    assert stats["fetches"] == N and stats["bytes_fetched"] == N * SIZE, stats


def test_cat_of_a_directory_in_order(server, small_dir, mount):
    """The tool of workload 2: one cat of every file, names in order."""
    m = mount("lakefs://%s/main" % small_dir, options=BRANCH)
    names = sorted(os.listdir(m.join("d")))
    server.reset_counts()
    out = run(["cat"] + [m.join("d", n) for n in names]).stdout
    assert out == b"".join(content(i) for i in range(N))
    assert gets(server.counts()) == N, server.counts()
    # Every file from f001 on was in the window when cat opened it: fetched ahead (a hit, counted once
    # the fetch is done) or, if no worker had taken it yet, left to the open (cancelled). None fetched
    # for nothing.
    s = poll(lambda: (lambda s: s if s["hits"] + s["cancelled"] >= N - 1 else None)(prefetch_stats(m)))
    assert s, prefetch_stats(m)
    assert s["hits"] + s["cancelled"] == N - 1, s
    assert s["hits"] >= 1 and s["wasted"] == 0 and s["errors"] == 0, s
    assert s["files"] == s["hits"], s


def test_the_opened_files_url_comes_in_the_listing_its_prefetch_asked_for(server, repo, mount):
    """The prefetch an open starts may ask for its files' URLs before the opener's first read does;
    that presigned listing starts at the opened file, so the opener finds its URL in it. Names whose
    listing from the second ("b.txt": after "b.tx") leaves the first out: the previous binary listed
    from there and the opener's read listed d/ again."""
    files = ["%s.txt" % c for c in "abcdefgh"]
    for i, n in enumerate(files):
        server.upload(repo, "main", "d/" + n, content(i))
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    assert sorted(os.listdir(m.join("d"))) == files
    server.reset_counts()
    fd = os.open(m.join("d", "a.txt"), os.O_RDONLY)
    try:
        # The open of the listing's first file starts the window; its reads wait until every file
        # of it has been fetched.
        wait_prefetch(m, files=len(files) - 1, bytes=(len(files) - 1) * SIZE)
        assert os.read(fd, 2 * SIZE) == content(0)
    finally:
        os.close(fd)
    counts = server.counts()
    want = ({"presignedGet": len(files), "listObjects": 1} if "presignedGet" in counts
            else {"getObject": len(files)})
    assert counts == want, counts
    for i, n in enumerate(files[1:], 1):
        assert read(m.join("d", n)) == content(i)
    assert server.counts() == want


def test_off_with_prefetch_0(server, small_dir, mount):
    m = mount("lakefs://%s/main" % small_dir, options=BRANCH + ["prefetch=0"])
    os.listdir(m.join("d"))
    server.reset_counts()
    out = run(["cat"] + [m.join("d", name(i)) for i in range(N)]).stdout
    assert out == b"".join(content(i) for i in range(N))
    s = prefetch_stats(m)
    assert s["enabled"] is False and s["files"] == 0 and s["hits"] == 0, s
    assert gets(server.counts()) == N


def test_random_order_prefetches_nothing(server, small_dir, mount):
    m = mount("lakefs://%s/main" % small_dir, options=BRANCH)
    os.listdir(m.join("d"))
    order = list(range(1, N))  # not the first file (it starts a window), and
    rng = random.Random(13)
    while any(b == a + 1 for a, b in zip(order, order[1:])):  # no file followed by its successor
        rng.shuffle(order)
    server.reset_counts()
    for i in order:
        assert read(m.join("d", name(i))) == content(i)
    s = prefetch_stats(m)
    assert (s["files"], s["hits"], s["wasted"], s["cancelled"]) == (0, 0, 0, 0), s
    assert gets(server.counts()) == N - 1


def test_a_broken_order_wastes_at_most_one_window(server, small_dir, mount):
    m = mount("lakefs://%s/main" % small_dir, options=BRANCH)
    os.listdir(m.join("d"))
    server.reset_counts()
    assert read(m.join("d", name(1))) == content(1)
    assert read(m.join("d", name(2))) == content(2)  # in order: f003 .. f010 are fetched
    wait_prefetch(m, files=WINDOW, bytes=WINDOW * SIZE)
    assert read(m.join("d", name(20))) == content(20)  # the order breaks: the window is dropped
    s = prefetch_stats(m)
    assert (s["files"], s["hits"], s["wasted"], s["cancelled"]) == (WINDOW, 0, WINDOW, 0), s
    assert gets(server.counts()) == 2 + WINDOW + 1
    # Nothing more comes of it: the next jumps start nothing.
    for i in (5, 17, 3):
        assert read(m.join("d", name(i))) == content(i)  # f005 and f003 are in the cache already
    s = prefetch_stats(m)
    assert (s["files"], s["wasted"]) == (WINDOW, WINDOW), s
    assert gets(server.counts()) == 2 + WINDOW + 2


def test_the_first_file_starts_a_window_a_jump_wastes_it(server, small_dir, mount):
    """A program that starts at the listing's first file is most likely reading the directory; one
    that then jumps elsewhere costs one window, no more."""
    m = mount("lakefs://%s/main" % small_dir, options=BRANCH)
    os.listdir(m.join("d"))
    server.reset_counts()
    assert read(m.join("d", name(0))) == content(0)  # f001 .. f008 are fetched
    wait_prefetch(m, files=WINDOW, bytes=WINDOW * SIZE)
    assert read(m.join("d", name(20))) == content(20)
    assert read(m.join("d", name(22))) == content(22)
    s = prefetch_stats(m)
    assert (s["files"], s["hits"], s["wasted"], s["cancelled"]) == (WINDOW, 0, WINDOW, 0), s
    assert gets(server.counts()) == 1 + WINDOW + 2


def test_only_small_files_are_prefetched(server, repo, mount):
    big = 2 << 20  # two blocks: the reader's read-ahead is for those
    for i in range(6):
        data = content(i) if i != 3 else content(i) * (big // SIZE)
        server.upload(repo, "main", "d/" + name(i), data)
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    os.listdir(m.join("d"))
    read(m.join("d", name(0)))  # the first file: f001 and f002, the window stops before the big f003
    s = wait_prefetch(m, files=2, bytes=2 * SIZE)
    read(m.join("d", name(1)))
    read(m.join("d", name(2)))
    read(m.join("d", name(3)))  # the big file, in order: f004 and f005 follow
    s = wait_prefetch(m, files=4, bytes=4 * SIZE)
    read(m.join("d", name(4)))
    read(m.join("d", name(5)))
    s = wait_prefetch(m, hits=4)
    assert (s["files"], s["hits"], s["wasted"], s["bytes"]) == (4, 4, 0, 4 * SIZE), s


@pytest.mark.parametrize("presign", ["false", pytest.param("true", marks=pytest.mark.presign)])
def test_a_file_replaced_after_the_listing_is_not_served_stale(server, small_dir, mount, tmp_path, presign):
    repo = small_dir
    m = mount("lakefs://%s/main" % repo, options=BRANCH + ["presign=" + presign])
    os.listdir(m.join("d"))  # the listing holds version 0 of every file
    new = content(5, version=1)
    server.upload(repo, "main", "d/" + name(5), new)  # another client replaces f005
    assert read(m.join("d", name(0))) == content(0)  # the first file: f001 .. f008 are fetched ahead
    s = wait_prefetch(m, files=WINDOW)
    s = poll(lambda: (lambda s: s if s["bytes"] + s["errors"] * SIZE >= WINDOW * SIZE else None)(
        prefetch_stats(m)))
    assert s, prefetch_stats(m)
    for k in range(1, 9):
        got = read(m.join("d", name(k)))
        if k != 5:
            assert got == content(k)
    # Read through the API, the prefetch met f005's new ETag; with presigned URLs, the presigned
    # listing that gives f005's URL lists its new checksum. Either way nothing is cached, the listing
    # is dropped (as a read of it would have been), so the open looks it up again: the new version.
    assert s["errors"] == 1 and s["bytes"] == (WINDOW - 1) * SIZE, s
    assert "changed while open" in m.log()
    assert read(m.join("d", name(5))) == new
    assert os.path.getsize(m.join("d", name(5))) == len(new)
    # A later mount on the same cache, with a fresh listing, reads the new version: the prefetched
    # bytes of the old one are cached under the old object's key only.
    assert m.unmount() == 0
    m2 = mount("lakefs://%s/main" % repo, options=BRANCH + ["presign=" + presign], cache_dir=m.cache_dir)
    assert read(m2.join("d", name(5))) == new
