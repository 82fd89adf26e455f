"""Walks served from flat listings (issue 13): once readdir has read a directory D, the first listing
of one of its subdirectories that is not cached comes from ONE flat listing of D's subtree (no
delimiter, 1,000 keys a page), bounded by the number of D's uncached subdirectories; what it does
not complete is listed one directory at a time, as before.

Every test compares what the mount shows with what the API says (or with what the same mount gives
when each directory is listed alone), and counts the listObjects requests that prove which path
served it. Branch mounts use attr_timeout=3600 so that nothing expires during a test."""
import concurrent.futures
import os
import stat

import pytest

from mountlib import api_commit_id, api_get_or_none, api_list_objects, call_through_gate, poll, read_file, upload_concurrently, write_file

BRANCH = ["attr_timeout=3600"]
bundled_only = pytest.mark.stand_in_only(reason="trickle_ms faults exist on the bundled server only")


def seed(server, repo, items, commit=True):
    """Uploads {path: (data, headers)} to main (4 threads, a kept-alive session each) and commits."""
    upload_concurrently(server, repo, "main", ((p, d, h) for p, (d, h) in items.items()))
    if commit:
        server.commit(repo, "main", "flat walk seed")


def counted(server, action):
    server.reset_counts()
    result = action()
    return result, server.counts()


def snapshot(top):
    """os.walk + lstat of every entry, as find + stat do: {relative path: what stat and readdir say}."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        for name in sorted(dirnames + filenames):
            st = os.lstat(os.path.join(dirpath, name))
            rel = os.path.normpath(os.path.join(rel_dir, name))
            assert rel not in out, "%s listed twice" % rel
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size if not stat.S_ISDIR(
                st.st_mode) else 0, st.st_nlink, int(st.st_mtime), st.st_uid, st.st_gid)
    return out


def api_expected(server, repo, ref, prefix):
    """{relative path: is_dir} of what the API's flat listing under prefix holds (POSIX names only)."""
    out = {}
    for st in api_list_objects(server, repo, ref, prefix):
        rel = st["path"][len(prefix):]
        parts = rel.rstrip("/").split("/")
        if rel == "" or any(p in ("", ".", "..") for p in parts):
            continue
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = True
        out["/".join(parts)] = rel.endswith("/") or out.get("/".join(parts), False)
    return out


# --- (a) a tree larger than the bound: the flat listing stops, per-directory listings finish ---------

BIG_SUB = 700  # big/s0/{a,b,c}/fNNN: 2,100 keys under s0, more than two pages


@pytest.mark.many_objects
def test_walk_larger_than_the_bound_falls_back_and_lists_everything_once(server, repo, mount):
    items = {"big/s0/%s/f%03d" % (d, i): (b"%s%d\n" % (d.encode(), i), None)
             for d in "abc" for i in range(BIG_SUB)}
    items["big/s1/only"] = (b"only\n", None)
    seed(server, repo, items)
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    got, counts = counted(server, lambda: snapshot(m.join("big")))
    want = api_expected(server, repo, "main", "big/")
    assert {rel: kind == stat.S_IFDIR for rel, (kind, *_rest) in got.items()} == want
    for rel, (kind, _mode, size, *_rest) in got.items():
        if kind == stat.S_IFREG:
            assert size == len(items["big/" + rel][0]), rel
    # root (lookup of big), big/ itself; then, readdir having read big/, s0's listing starts a flat
    # listing of big/ from s0 bounded by big/'s 2 uncached subdirectories: its first page completes
    # s0/a (700 keys) but no subdirectory of big/, so it stops there (pages may not outnumber them);
    # s0 and s1 are then listed alone (1 each). readdir of s0 then starts a flat listing of s0 from
    # b (bound 2: b and c; a is cached): 2 pages complete both. One listing per directory: 7 too.
    assert counts == {"listObjects": 1 + 1 + 1 + 1 + 1 + 2}, counts
    # Everything is cached now, from whichever listing gave it.
    again, counts = counted(server, lambda: snapshot(m.join("big")))
    assert again == got and counts == {}, counts


PAGED_DIRS, PAGED_FILES = 11, 300  # 3,300 keys: four pages, the last two asked for ahead


@pytest.mark.many_objects
def test_a_walk_over_many_pages_asks_for_each_page_once(server, repo, mount):
    """From its second page on, the flat listing asks for the next page as soon as a page's body is
    in (before it is parsed), when the credit rule will take it whatever the page holds: the walk
    still costs exactly one request per page, and shows exactly what the API holds."""
    items = {"paged/d%02d/f%03d" % (d, i): (b"paged %d %d\n" % (d, i), None)
             for d in range(PAGED_DIRS) for i in range(PAGED_FILES)}
    seed(server, repo, items)
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    got, counts = counted(server, lambda: snapshot(m.join("paged")))
    want = api_expected(server, repo, "main", "paged/")
    assert {rel: kind == stat.S_IFDIR for rel, (kind, *_rest) in got.items()} == want
    assert len(got) == PAGED_DIRS * (PAGED_FILES + 1)
    for rel, (kind, _mode, size, *_rest) in got.items():
        if kind == stat.S_IFREG:
            assert size == len(items["paged/" + rel][0]), rel
    # root (lookup of paged), paged/ itself; then d00's listing starts a flat listing of paged/
    # from d00 (bound 11): page 1 completes d00-d02, so pages 3 and 4 are asked for while pages 2
    # and 3 are parsed; page 4 says there is no more, and nothing is asked for after it.
    assert counts == {"listObjects": 1 + 1 + 4}, counts
    again, counts = counted(server, lambda: snapshot(m.join("paged")))
    assert again == got and counts == {}, counts


@pytest.mark.many_objects
def test_pages_stopped_by_the_bound_are_not_asked_for_ahead(server, repo, mount):
    """A page is asked for ahead only when the rule that ends a flat listing will take it: the
    listing that stops at its bound (as many pages as uncached subdirectories) asks for no page
    past it, though lakeFS has more."""
    sizes = {"a": 400, "b": 400, "c": 3000}
    items = {"bounded/%s/f%04d" % (d, i): (b"%s %d\n" % (d.encode(), i), None)
             for d, n in sizes.items() for i in range(n)}
    seed(server, repo, items)
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    got, counts = counted(server, lambda: snapshot(m.join("bounded")))
    want = api_expected(server, repo, "main", "bounded/")
    assert {rel: kind == stat.S_IFDIR for rel, (kind, *_rest) in got.items()} == want
    # root, bounded/ itself; a's listing starts a flat listing from a bounded by 3 subdirectories:
    # page 1 completes a and b (page 3 is asked for ahead while page 2 is parsed), page 3 is the
    # bound, so the 800 keys of c after it are never asked for by the flat listing; c, left open,
    # is listed alone (3 pages).
    assert counts == {"listObjects": 1 + 1 + 3 + 3}, counts


# --- (b) writes during a walk are never hidden -----------------------------------------------------

def small_tree(dirs=6, per_dir=2):
    return {"walk/d%d/f%d" % (d, i): (b"walk %d %d\n" % (d, i), None) for d in range(dirs) for i in range(per_dir)}


@bundled_only
def test_a_write_while_the_flat_listing_is_in_flight_is_not_hidden(server, repo, mount):
    seed(server, repo, small_tree())
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    # d3 and d4 looked up (and listed alone) first: the writes below then need no lookup in walk/,
    # which the kernel holds while the stat of d0 waits for the flat listing.
    os.stat(m.join("walk", "d3"))
    os.stat(m.join("walk", "d4"))
    assert sorted(os.listdir(m.join("walk"))) == ["d%d" % d for d in range(6)]  # readdir: a walk starts
    # The next listObjects - the flat listing d0's stat starts - is answered a byte every 2 ms: the
    # server has read the tree, and the mount gets it seconds later.
    server.reset_counts()
    server.add_fault(operation="listObjects", trickle_ms=2, count=1)
    stat_d0 = concurrent.futures.ThreadPoolExecutor(1)
    walking = stat_d0.submit(os.stat, m.join("walk", "d0"))
    assert poll(lambda: server.counts().get("listObjects", 0) == 1, timeout=30)
    # Meanwhile: a new file in a directory the flat listing covers (whose cached listing it would
    # replace), and one being written.
    write_file(m.join("walk", "d3", "new.txt"), b"written during the walk\n")
    open_file = open(m.join("walk", "d4", "open.txt"), "wb")
    try:
        open_file.write(b"still open\n")
        open_file.flush()
        # The flat listing's answer was computed before the write and has not arrived yet (else this
        # test proves nothing): its listings must not be cached over the write.
        assert not walking.done(), "the flat listing finished before the write; the test proves nothing"
        walking.result(timeout=120)
        assert [f["operation"] for f in server.faults()] == ["listObjects"] and server.faults()[0]["applied"] == 1
        assert sorted(os.listdir(m.join("walk", "d3"))) == ["f0", "f1", "new.txt"]
        assert read_file(m.join("walk", "d3", "new.txt")) == b"written during the walk\n"
        assert sorted(os.listdir(m.join("walk", "d4"))) == ["f0", "f1", "open.txt"]
        assert os.stat(m.join("walk", "d4", "open.txt")).st_size == len(b"still open\n")
        files = {os.path.relpath(os.path.join(dp, f), m.join("walk"))
                 for dp, _dn, fn in os.walk(m.join("walk")) for f in fn}
        assert files == {"d%d/f%d" % (d, i) for d in range(6) for i in range(2)} | {"d3/new.txt", "d4/open.txt"}
    finally:
        open_file.close()
        stat_d0.shutdown()
    assert read_file(m.join("walk", "d4", "open.txt")) == b"still open\n"


def test_a_file_being_written_shows_in_a_flat_listing(server, repo, mount):
    seed(server, repo, small_tree())
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    with open(m.join("walk", "d4", "open.txt"), "wb") as f:
        f.write(b"being written\n")
        f.flush()
        # A fresh walk: readdir of walk/, then d0's listing fetches walk/'s subtree flat (one page),
        # d4's listing too, which must still show the file only this mount knows of.
        server.reset_counts()
        names = {}
        for dirpath, _dirnames, filenames in os.walk(m.join("walk")):
            for name in filenames:
                names[os.path.relpath(os.path.join(dirpath, name), m.join("walk"))] = \
                    os.lstat(os.path.join(dirpath, name)).st_size
        # walk/ and d4 were listed by the create; d0..d5 but d4 come from one flat page.
        assert server.counts() == {"listObjects": 1}, server.counts()
        want = {"d%d/f%d" % (d, i): len(b"walk %d %d\n" % (d, i)) for d in range(6) for i in range(2)}
        want["d4/open.txt"] = len(b"being written\n")
        assert names == want


# --- (c) names around '/', markers, empty directories: as per-directory listings give them ----------

ODD = {
    "t/a": (b"object a, hidden by directory a\n", None),
    "t/a.txt": (b"a.txt\n", None),
    "t/a/": (b"", {"X-Lakefs-Internal-posix-permissions": '{"Mode":"0700"}',
                   "X-Lakefs-Internal-client-mtime": "1600000000"}),
    "t/a/b": (b"b, hidden by directory b\n", None),
    "t/a/b/c": (b"c\n", None),
    "t/a/b.txt": (b"b.txt\n", {"X-Lakefs-Internal-posix-permissions": '{"Mode":"0600"}'}),
    "t/a-b/": (b"", None),
    "t/a-b/x": (b"x\n", None),
    "t/a0/y": (b"y\n", None),
    "t/e/": (b"", None),
    "t/e2/f/": (b"", None),
    "t/h//x": (b"empty component\n", None),
    "t/h/../z": (b"dotdot\n", None),
    "t/h/ok": (b"ok\n", None),
    "t/z/deep/er/k": (b"k\n", None),
    "t/zz": (b"zz\n", None),
}
ODD_DIRS = ["a", "a/b", "a-b", "a0", "e", "e2", "e2/f", "h", "z", "z/deep", "z/deep/er"]


@pytest.mark.parametrize("ref", ["branch", "commit"])
def test_odd_names_markers_and_empty_directories_as_per_directory_listings(server, repo, mount, ref):
    seed(server, repo, ODD)
    target = "main" if ref == "branch" else api_commit_id(server, repo, "main")
    opts = BRANCH if ref == "branch" else []
    flat = mount("lakefs://%s/%s" % (repo, target), options=opts)
    per_dir = mount("lakefs://%s/%s" % (repo, target), options=opts)

    got, counts = counted(server, lambda: snapshot(flat.join("t")))
    # root (lookup of t), t/ itself, then one flat page from t/a on completes every directory.
    assert counts == {"listObjects": 3}, counts

    def listed_alone():
        # Every directory's stat before any readdir: each is listed alone, as without flat listings.
        for d in [""] + ODD_DIRS:
            os.stat(per_dir.join("t", d))
        return snapshot(per_dir.join("t"))

    want, counts = counted(server, listed_alone)
    assert counts == {"listObjects": 2 + len(ODD_DIRS)}, counts
    # A directory without a marker shows its mount's start time: the two mounts differ there.
    markers = {"a", "a-b", "e", "e2/f"}

    def comparable(snap):
        return {rel: v[:4] + (None if v[0] == stat.S_IFDIR and rel not in markers else v[4],) + v[5:]
                for rel, v in snap.items()}

    assert comparable(got) == comparable(want)
    # And what that is, spelled out: the directory wins over an object of its name, markers are
    # directories (their lakectl mode and mtime the directory's), names that cannot be POSIX names
    # are left out, an empty directory is one.
    assert sorted(got) == sorted(["a", "a.txt", "a/b", "a/b.txt", "a/b/c", "a-b", "a-b/x", "a0", "a0/y", "e",
                                  "e2", "e2/f", "h", "h/ok", "z", "z/deep", "z/deep/er", "z/deep/er/k", "zz"])
    assert got["a"][:2] == (stat.S_IFDIR, 0o700) and got["a"][4] == 1600000000
    assert got["a/b.txt"][:3] == (stat.S_IFREG, 0o600, len(b"b.txt\n"))
    assert got["e"][0] == stat.S_IFDIR and got["e2/f"][0] == stat.S_IFDIR
    assert got["a"][3] == 3  # nlink: 2 + its subdirectory b


def test_files_listed_flat_open_with_one_presigned_listing(server, repo, mount):
    seed(server, repo, small_tree())
    config = server.api("GET", "/config").json()
    storage = config.get("storage_config") or (config.get("storage_config_list") or [{}])[0]
    data_get = "presignedGet" if storage.get("pre_sign_support") else "getObject"
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    server.reset_counts()
    assert sorted(os.listdir(m.join("walk"))) == ["d%d" % d for d in range(6)]
    for d in range(6):
        os.stat(m.join("walk", "d%d" % d))
    # root, walk/, then one flat page for d0..d5.
    assert server.counts() == {"listObjects": 3}, server.counts()
    server.reset_counts()
    assert read_file(m.join("walk", "d5", "f1")) == b"walk 5 1\n"
    # Listings, flat ones too, carry no presigned URLs (lakeFS would sign every object listed): the
    # read asks for its URL with one presigned listing of d5/ from f1 (src/urlbatch.c), never a
    # statObject, then the data itself.
    want = {"presignedGet": 1, "listObjects": 1} if data_get == "presignedGet" else {"getObject": 1}
    assert server.counts() == want, server.counts()


# --- (c) a walk of many pages is listed by several streams at once ------------------------------------

# split/dNN: 17 directories of 250 objects, and split/d10-x/f0, a directory whose key prefix
# ("split/d10-x/") sorts before d10's although its name sorts after it. 4,251 keys, 5 pages.
SPLIT_DIRS, SPLIT_PER_DIR = 17, 250


def split_tree():
    items = {"split/d%02d/f%03d" % (d, i): (b"split %d %d\n" % (d, i), None)
             for d in range(SPLIT_DIRS) for i in range(SPLIT_PER_DIR)}
    items["split/d10-x/f0"] = (b"odd\n", None)
    return items


def split_expected():
    files = {"d%02d/f%03d" % (d, i): len(b"split %d %d\n" % (d, i))
             for d in range(SPLIT_DIRS) for i in range(SPLIT_PER_DIR)}
    files["d10-x/f0"] = len(b"odd\n")
    return files


def walk_sizes(snap):
    return {rel: v[2] for rel, v in snap.items() if v[0] == stat.S_IFREG}


@pytest.mark.many_objects
def test_a_walk_of_many_pages_is_split_into_streams_that_list_each_key_once(server, repo, mount):
    """The first flat page (d00-d03) shows 3 directories a page, so the 14 uncached directories ahead
    would take 5 pages more one after the other: they are cut into 2 ranges of 7 (in key order:
    d04..d09 and d10-x for the stream already going, d10..d16 for a second one, started at once from
    d10's key). The first stream's third page crosses into d10 and stops there; the second skips
    d10-x's key, which comes after "split/d10" but before its range. Every directory, d10-x
    included, shows exactly what the API holds; 5 flat pages, as without the split."""
    seed(server, repo, split_tree())
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    got, counts = counted(server, lambda: snapshot(m.join("split")))
    assert walk_sizes(got) == split_expected()
    assert {rel for rel, v in got.items() if v[0] == stat.S_IFDIR} == \
        {"d%02d" % d for d in range(SPLIT_DIRS)} | {"d10-x"}
    # root (lookup of split), split/ itself; then 3 pages of the first stream, 2 of the second.
    assert counts == {"listObjects": 1 + 1 + 3 + 2}, counts
    again, counts = counted(server, lambda: snapshot(m.join("split")))
    assert again == got and counts == {}, counts
    # What each directory's own listing gives (another mount, every directory stat'ed before any
    # readdir, so nothing is listed flat): the same, but for the mtime of a directory without a
    # marker, which is its mount's start time.
    alone = mount("lakefs://%s/main" % repo, options=BRANCH)
    for d in sorted({rel.split("/")[0] for rel in got}):
        os.stat(alone.join("split", d))

    def comparable(snap):
        return {rel: v[:4] + (None if v[0] == stat.S_IFDIR else v[4],) + v[5:] for rel, v in snap.items()}

    assert comparable(snapshot(alone.join("split"))) == comparable(got)


@pytest.mark.many_objects
def test_the_streams_of_a_split_walk_wait_on_lakefs_at_the_same_time(server, repo, mount):
    """Every listObjects of the walk after its first page (which shows how many pages are left, so
    the walk splits) is held at a gate that opens only once two are in flight: the second stream's
    pages are asked for while the first stream's are, so lakeFS has two listings of the walk in
    flight at once (a single stream has at most one: each page waits for the one before's last key).
    Streams listed one after another never reach two and the gate times out."""
    seed(server, repo, split_tree())
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    assert sorted(os.listdir(m.join("split")))[:2] == ["d00", "d01"]
    server.reset_counts()
    server.add_fault(operation="listObjects", latency_ms=1, count=1)
    server.add_fault(operation="listObjects", hold="walk", count=None)
    try:
        got = call_through_gate(server, "walk", snapshot, m.join("split"),
                                before=lambda: server.max_in_flight().get("listObjects", 0) >= 2, timeout=20)
    finally:
        server.clear_faults()
    assert walk_sizes(got) == split_expected()
    assert server.counts() == {"listObjects": 3 + 2}, server.counts()


@bundled_only
def test_a_directory_whose_queued_marker_lands_while_the_flat_listing_is_in_flight_is_not_hidden(server, repo, mount):
    """-o async_close: a mkdir's marker is queued; a flat listing of the tree starts while the
    marker is held at the server (lakeFS lists the tree without it), the marker lands and leaves
    the writer, and only then does the listing arrive. Built then, the directory is neither in it
    nor in the writer: the listing must not be kept over the landing."""
    seed(server, repo, small_tree())
    m = mount("lakefs://%s/main" % repo, options=BRANCH + ["async_close"])
    os.stat(m.join("walk", "d3"))
    assert sorted(os.listdir(m.join("walk"))) == ["d%d" % d for d in range(6)]
    server.add_fault(operation="uploadObject", hold="marker", count=1)
    os.mkdir(m.join("walk", "d3", "newdir"), 0o700)
    server.reset_counts()
    server.add_fault(operation="listObjects", trickle_ms=2, count=1)
    stat_d0 = concurrent.futures.ThreadPoolExecutor(1)
    walking = stat_d0.submit(os.stat, m.join("walk", "d0"))
    try:
        assert poll(lambda: server.counts().get("listObjects", 0) == 1, timeout=30)
        server.open_gate("marker")
        assert poll(lambda: api_get_or_none(server, repo, "main", "walk/d3/newdir/") is not None, timeout=30)
        assert poll(lambda: m.stats()["async_uploads"]["in_flight"] == 0 and
                    m.stats()["async_uploads"]["queued"] == 0, timeout=30)
        assert not walking.done(), "the flat listing finished before the marker landed; the test proves nothing"
        walking.result(timeout=120)
    finally:
        stat_d0.shutdown()
    assert [f["applied"] for f in server.faults() if f["operation"] == "listObjects"] == [1]
    assert sorted(os.listdir(m.join("walk", "d3"))) == ["f0", "f1", "newdir"]
    assert stat.S_IMODE(os.stat(m.join("walk", "d3", "newdir")).st_mode) == 0o700
