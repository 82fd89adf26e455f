"""What the mount shows: repositories and branches as directories, refs reachable by name though not
listed, file attributes from the API and lakectl's metadata, directory markers, odd names skipped
with a warning, the hidden .lakefs directory (head, stats), extended attributes, EROFS for every
write on a fixed ref or a -o ro mount, and a branch that follows its head while fixed refs never
change."""
import errno
import json
import os
import stat
import uuid

import pytest

from mountlib import (BASIC_MTIME, ODD_LONG, ODD_MAX, api_branches, api_commit_id, api_get, api_list_objects,
                      api_repositories, api_stat, api_tree, expect_errno, poll, run, write_operation_ids)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def root_names(server, repo, ref):
    return api_tree(server, repo, ref, read=False).children()


# --- namespace ----------------------------------------------------------------------------------------

def test_root_lists_exactly_the_repositories(server, basic_repo, mount):
    m = mount("lakefs://")
    names = os.listdir(m.path)
    assert sorted(names) == sorted(api_repositories(server))
    assert basic_repo.name in names and ".lakefs" not in names
    assert stat.S_ISDIR(os.stat(m.join(basic_repo.name)).st_mode)
    assert sorted(os.listdir(m.join(basic_repo.name))) == sorted(api_branches(server, basic_repo.name))


def test_repository_lists_exactly_its_branches(server, basic_repo, mount):
    m = mount("lakefs://" + basic_repo.name)
    branches = api_branches(server, basic_repo.name)
    assert sorted(branches) == ["dev", "main"]
    assert sorted(os.listdir(m.path)) == sorted(branches)
    for branch in branches:
        assert stat.S_ISDIR(os.stat(m.join(branch)).st_mode)
        assert set(os.listdir(m.join(branch))) == root_names(server, basic_repo.name, branch)


def test_refs_open_by_name_though_not_listed(server, basic_repo, mount):
    b = basic_repo
    m = mount("lakefs://" + b.name)
    listed = os.listdir(m.path)
    for ref in (b.commit1, b.short1, b.commit2, b.short2, b.tag, "main~1", "main@", "dev~1"):
        assert ref not in listed
        assert stat.S_ISDIR(os.stat(m.join(ref)).st_mode), ref
        assert set(os.listdir(m.join(ref))) == root_names(server, b.name, ref), ref
    out = run(["ls", m.join(b.short1)]).stdout.decode().split()
    assert set(out) == root_names(server, b.name, b.commit1)
    # The same through a lakefs:// mount.
    top = mount("lakefs://")
    assert set(os.listdir(top.join(b.name, b.short1))) == root_names(server, b.name, b.commit1)
    assert b.short1 not in os.listdir(top.join(b.name))


def test_unknown_names_are_enoent(server, basic_repo, mount):
    top = mount("lakefs://")
    expect_errno(errno.ENOENT, os.stat, top.join("no-such-repo-" + uuid.uuid4().hex[:8]))
    expect_errno(errno.ENOENT, os.stat, top.join(basic_repo.name, "no-such-ref"))
    expect_errno(errno.ENOENT, os.stat, top.join(basic_repo.name, "main~99"))
    expect_errno(errno.ENOENT, os.stat, top.join(basic_repo.name, "main", "no-such-file"))
    repo = mount("lakefs://" + basic_repo.name)
    expect_errno(errno.ENOENT, os.listdir, repo.join("no-such-ref"))
    expect_errno(errno.ENOENT, os.stat, repo.join("0" * 12))  # hex, but no such commit
    ref = mount("lakefs://%s/main" % basic_repo.name)
    expect_errno(errno.ENOENT, open, ref.join("data", "no-such.csv"), "rb")


# --- attributes ---------------------------------------------------------------------------------------

def test_files_and_directories_carry_api_attributes(server, basic_repo, mount):
    repo, ref = basic_repo.name, basic_repo.commit2
    expected = api_tree(server, repo, ref, read=False)
    m = mount("lakefs://%s/%s" % (repo, ref))
    for rel, info in expected.files.items():
        st = os.stat(m.join(rel))
        assert stat.S_ISREG(st.st_mode), rel
        assert (st.st_size, int(st.st_mtime), stat.S_IMODE(st.st_mode)) == (info.size, info.mtime, info.mode), rel
    for rel in expected.dirs:
        st = os.stat(m.join(rel))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, rel
    # Spelled out, so a wrong expectation helper cannot hide a bug.
    lakectl = os.stat(m.join("meta", "lakectl.txt"))
    assert int(lakectl.st_mtime) == BASIC_MTIME and stat.S_IMODE(lakectl.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(m.join("scripts", "run.sh")).st_mode) == 0o755
    plain = api_stat(server, repo, ref, "data/a.csv")
    st = os.stat(m.join("data", "a.csv"))
    assert int(st.st_mtime) == plain["mtime"] and stat.S_IMODE(st.st_mode) == 0o644
    assert os.stat(m.join("empty.txt")).st_size == 0 and read(m.join("empty.txt")) == b""
    assert read(m.join("tiny")) == b"\x00"


def test_directory_markers_are_directories_not_entries(server, basic_repo, mount):
    repo = basic_repo.name
    markers = [o["path"] for o in api_list_objects(server, repo, "main") if o["path"].endswith("/")]
    assert sorted(markers) == ["data/nested/deep/", "docs/", "emptydir/"]
    m = mount("lakefs://%s/main" % repo)
    assert os.listdir(m.join("emptydir")) == []
    assert stat.S_ISDIR(os.stat(m.join("emptydir")).st_mode)
    assert os.listdir(m.join("docs")) == ["guide.txt"]
    assert os.listdir(m.join("data", "nested", "deep")) == ["x.bin"]
    assert "emptydir" in os.listdir(m.path) and "docs" in os.listdir(m.path)


def test_odd_names_are_skipped_with_a_warning(server, odd_repo, mount):
    m = mount("lakefs://%s/main" % odd_repo)
    assert sorted(os.listdir(m.path)) == sorted(["ok.txt", "bad", "dot", "dotdot", "long", "conflict"])
    assert os.listdir(m.join("bad")) == []
    assert os.listdir(m.join("dot")) == ["fine"]
    assert os.listdir(m.join("dotdot")) == []
    assert os.listdir(m.join("long")) == [ODD_MAX]
    assert read(m.join("long", ODD_MAX)) == ("content of long/%s\n" % ODD_MAX).encode()
    # Object "conflict" and prefix "conflict/": the directory is shown.
    assert stat.S_ISDIR(os.stat(m.join("conflict")).st_mode)
    assert os.listdir(m.join("conflict")) == ["inner"]
    assert read(m.join("conflict", "inner")) == b"content of conflict/inner\n"

    def warned(*needles, unless=None):
        lines = m.wait_for_log(lambda line: "warning" in line.lower() and all(n in line for n in needles)
                               and not (unless and unless in line))
        return bool(lines)

    assert warned("bad//"), m.log()
    assert warned("dot/./"), m.log()
    assert warned("dotdot/../"), m.log()
    assert warned("long/" + ODD_LONG), m.log()
    assert warned(ODD_LONG, unless="long/" + ODD_LONG), m.log()  # the root-level one
    assert warned("conflict", unless="conflict/inner"), m.log()
    # Still serving after all that.
    assert read(m.join("ok.txt")) == b"content of ok.txt\n"


# --- .lakefs ------------------------------------------------------------------------------------------

STATS_KEYS = {"api_calls", "api_calls_total", "metadata_cache", "data_cache", "bytes_fetched",
              "bytes_served_from_cache", "bytes_read"}
METADATA_CACHE_KEYS = {"hits", "misses", "negative_hits", "evictions", "bytes", "listings"}
DATA_CACHE_KEYS = {"hits", "misses", "bytes_served", "bytes_stored", "evictions", "used_bytes", "max_bytes"}


def check_stats_shape(stats):
    assert STATS_KEYS <= set(stats)
    assert isinstance(stats["api_calls"], dict)
    assert all(isinstance(v, int) for v in stats["api_calls"].values())
    assert METADATA_CACHE_KEYS <= set(stats["metadata_cache"])
    assert DATA_CACHE_KEYS <= set(stats["data_cache"])
    for key in ("api_calls_total", "bytes_fetched", "bytes_served_from_cache", "bytes_read"):
        assert isinstance(stats[key], int) and stats[key] >= 0, key


def assert_no_secret(server, text):
    assert server.secret_access_key not in text and server.access_key_id not in text


def test_lakefs_dir_is_hidden_but_reachable_at_a_ref_mount(server, basic_repo, mount):
    m = mount("lakefs://%s/main" % basic_repo.name)
    assert ".lakefs" not in os.listdir(m.path)
    assert ".lakefs" not in run(["ls", "-A", m.path]).stdout.decode().split()
    assert stat.S_ISDIR(os.stat(m.join(".lakefs")).st_mode)
    assert sorted(os.listdir(m.join(".lakefs"))) == [
        "branch", "commit", "diff", "head", "merge", "reset", "stats", "status", "status.json"]
    head = read(m.join(".lakefs", "head"), "r")
    assert head == api_branches(server, basic_repo.name)["main"] + "\n"
    check_stats_shape(m.stats())
    assert_no_secret(server, head + read(m.join(".lakefs", "stats"), "r"))


def test_lakefs_head_of_each_ref(server, basic_repo, mount):
    b = basic_repo
    m = mount("lakefs://" + b.name)
    want = {"main": b.commit2, "dev": b.dev_commit, "main~1": b.commit1, b.tag: b.commit1,
            b.short1: b.commit1, b.commit2: b.commit2, "dev~1": b.commit1}
    for ref, commit in want.items():
        assert api_commit_id(server, b.name, ref) == commit
        assert read(m.join(ref, ".lakefs", "head"), "r") == commit + "\n", ref
        assert ".lakefs" not in os.listdir(m.join(ref))
    # The mount root of lakefs://REPO has stats only.
    assert ".lakefs" not in os.listdir(m.path)
    assert os.listdir(m.join(".lakefs")) == ["stats"]
    expect_errno(errno.ENOENT, os.stat, m.join(".lakefs", "head"))
    check_stats_shape(m.stats())


def test_lakefs_dir_at_the_root_of_a_lakefs_mount_and_a_prefix_mount(server, basic_repo, mount):
    top = mount("lakefs://")
    assert ".lakefs" not in os.listdir(top.path)
    assert os.listdir(top.join(".lakefs")) == ["stats"]
    check_stats_shape(top.stats())
    assert read(top.join(basic_repo.name, "main~1", ".lakefs", "head"), "r") == basic_repo.commit1 + "\n"
    sub = mount("lakefs://%s/%s/data" % (basic_repo.name, basic_repo.tag))
    assert ".lakefs" not in os.listdir(sub.path)
    assert read(sub.join(".lakefs", "head"), "r") == basic_repo.commit1 + "\n"


def test_stats_count_what_the_server_counted(server, basic_repo, mount):
    repo, ref = basic_repo.name, basic_repo.commit2
    m = mount("lakefs://%s/%s" % (repo, ref))
    before = m.stats()
    server.reset_counts()
    assert sorted(os.listdir(m.join("data", "nested", "deep"))) == ["x.bin"]
    after = m.stats()
    counted = server.counts()
    listed = after["api_calls"].get("listObjects", 0) - before["api_calls"].get("listObjects", 0)
    assert listed >= 1 and listed == counted.get("listObjects", 0), (before, after, counted)
    assert after["api_calls_total"] - before["api_calls_total"] == server.counts_total(), counted
    # A first read: fetched from the server, counted in bytes.
    size = api_stat(server, repo, ref, "big.bin")["size_bytes"]
    assert read(m.join("big.bin")) == api_get(server, repo, ref, "big.bin")
    read_stats = m.stats()
    assert read_stats["bytes_read"] - after["bytes_read"] >= size
    assert read_stats["bytes_fetched"] - after["bytes_fetched"] >= size
    assert read_stats["data_cache"]["misses"] > after["data_cache"]["misses"]
    assert_no_secret(server, json.dumps(read_stats))


# --- extended attributes ------------------------------------------------------------------------------

BASE_XATTRS = {"user.lakefs.checksum", "user.lakefs.physical_address", "user.lakefs.content_type",
               "user.lakefs.mtime"}


def xattrs(path):
    return {name: os.getxattr(path, name).decode() for name in os.listxattr(path)}


@pytest.mark.presign
def test_extended_attributes_presigned(server, basic_repo, mount):
    repo, ref = basic_repo.name, basic_repo.commit2
    m = mount("lakefs://%s/%s" % (repo, ref))
    for path, meta in (("meta/with-meta.txt", {"owner": "alice", "project": "lakefuse"}), ("data/a.csv", {})):
        api = api_stat(server, repo, ref, path, presign=True)
        got = xattrs(m.join(path))
        assert set(got) == BASE_XATTRS | {"user.lakefs.meta." + k for k in meta}, path
        assert got["user.lakefs.checksum"] == api["checksum"]
        assert got["user.lakefs.content_type"] == api["content_type"]
        assert got["user.lakefs.mtime"] == str(api["mtime"])
        for key, value in meta.items():
            assert got["user.lakefs.meta." + key] == value
        # The store's own address, as lakeFS lists it without presigning: never a signature.
        address = got["user.lakefs.physical_address"]
        assert "?" not in address and "signature" not in address.lower()
        assert address == api_stat(server, repo, ref, path, presign=False)["physical_address"]
        for value in got.values():
            assert server.secret_access_key not in value and server.access_key_id not in value
    assert os.getxattr(m.join("data", "a.csv"), "user.lakefs.content_type") == b"text/csv"
    # lakectl's own keys: the mtime is the one stat shows or the object's.
    lakectl = xattrs(m.join("meta", "lakectl.txt"))
    assert BASE_XATTRS <= set(lakectl) and all(n.startswith("user.lakefs.") for n in lakectl)
    assert lakectl["user.lakefs.mtime"] in (str(BASIC_MTIME),
                                            str(api_stat(server, repo, ref, "meta/lakectl.txt")["mtime"]))
    expect_errno(errno.ENODATA, os.getxattr, m.join("data", "a.csv"), "user.lakefs.no-such")
    # The ref root.
    assert "user.lakefs.commit_id" in os.listxattr(m.path)
    assert os.getxattr(m.path, "user.lakefs.commit_id").decode() == ref


def test_extended_attributes_without_presign(server, basic_repo, mount):
    repo = basic_repo.name
    m = mount("lakefs://" + repo, options=["presign=false"])
    api = api_stat(server, repo, "main", "big.bin", presign=False)
    assert api["physical_address"].split("://", 1)[0] in ("s3", "local")  # the store's own address
    assert os.getxattr(m.join("main", "big.bin"), "user.lakefs.physical_address").decode() == api["physical_address"]
    assert os.getxattr(m.join("main"), "user.lakefs.commit_id").decode() == basic_repo.commit2
    assert os.getxattr(m.join("main~1"), "user.lakefs.commit_id").decode() == basic_repo.commit1


# --- read-only ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["commit", "tag", "main~1", "branch-ro"])
def test_every_write_is_erofs(server, basic_repo, mount, kind):
    """Fixed refs are read-only, and so is a branch mounted with -o ro."""
    repo = basic_repo.name
    ref = {"commit": basic_repo.commit2, "tag": basic_repo.tag, "main~1": "main~1", "branch-ro": "main"}[kind]
    before = api_tree(server, repo, ref, read=False)
    m = mount("lakefs://%s/%s" % (repo, ref), options=["ro"] if kind == "branch-ro" else [])
    assert read(m.join("tiny")) == b"\x00"
    server.reset_counts()
    f, d = m.join("tiny"), m.join("emptydir")
    expect_errno(errno.EROFS, open, m.join("new-file"), "wb")
    expect_errno(errno.EROFS, os.open, m.join("new-file"), os.O_CREAT | os.O_WRONLY, 0o644)
    expect_errno(errno.EROFS, os.open, f, os.O_WRONLY)
    expect_errno(errno.EROFS, os.open, f, os.O_RDWR)
    expect_errno(errno.EROFS, os.open, f, os.O_WRONLY | os.O_TRUNC)
    expect_errno(errno.EROFS, open, f, "ab")
    expect_errno(errno.EROFS, os.truncate, f, 0)
    expect_errno(errno.EROFS, os.mkdir, m.join("new-dir"))
    expect_errno(errno.EROFS, os.mkdir, m.join("data", "new-dir"))
    expect_errno(errno.EROFS, os.rmdir, d)
    expect_errno(errno.EROFS, os.unlink, f)
    expect_errno(errno.EROFS, os.rename, f, m.join("tiny2"))
    expect_errno(errno.EROFS, os.rename, m.join("docs"), m.join("docs2"))
    expect_errno(errno.EROFS, os.chmod, f, 0o600)
    expect_errno(errno.EROFS, os.chown, f, 1, 1)
    expect_errno(errno.EROFS, os.utime, f, (0, 0))
    expect_errno(errno.EROFS, os.symlink, "tiny", m.join("link"))
    expect_errno(errno.EROFS, os.link, f, m.join("hard-link"))
    expect_errno(errno.EROFS, os.mkfifo, m.join("fifo"))
    expect_errno(errno.EROFS, os.setxattr, f, "user.lakefs.meta.owner", b"mallory")
    expect_errno(errno.EROFS, os.removexattr, f, "user.lakefs.checksum")
    expect_errno(errno.EROFS, os.setxattr, m.path, "user.lakefs.commit_id", b"0" * 64)
    counted = server.counts()
    assert not (set(counted) & write_operation_ids()), counted
    assert read(f) == b"\x00" and os.listdir(d) == []
    after = api_tree(server, repo, ref, read=False)
    assert (after.files.keys(), after.dirs) == (before.files.keys(), before.dirs)


def test_namespace_levels_are_read_only(server, basic_repo, mount):
    top = mount("lakefs://")
    server.reset_counts()
    # Without a default_namespace_prefix lakefuse cannot choose a storage namespace for a new
    # repository (mkdir of a branch is tested with the workflow). lakeFS's local blockstore has one
    # (local://): there mkdir makes a repository, tested in test_mount_control_namespace.py.
    config = server.api("GET", "/config").json()["storage_config"]
    if not config.get("default_namespace_prefix"):
        expect_errno(errno.EPERM, os.mkdir, top.join("new-repo-" + uuid.uuid4().hex[:8]))
    # A branch is neither deleted nor renamed through the filesystem.
    expect_errno(errno.EPERM, os.rmdir, top.join(basic_repo.name, "dev"))
    expect_errno(errno.EPERM, os.rename, top.join(basic_repo.name, "dev"), top.join(basic_repo.name, "dev2"))
    for ref in (basic_repo.commit1, basic_repo.tag, "main~1", "main@"):
        expect_errno(errno.EROFS, open, top.join(basic_repo.name, ref, "new-file"), "wb")
    # Branches are writable, except in a mount made with -o ro.
    ro = mount("lakefs://", options=["ro"])
    expect_errno(errno.EROFS, os.mkdir, ro.join(basic_repo.name, "new-branch"))
    expect_errno(errno.EROFS, open, ro.join(basic_repo.name, "main", "new-file"), "wb")
    expect_errno(errno.EROFS, os.mkdir, ro.join(basic_repo.name, "main", "new-dir"))
    expect_errno(errno.EROFS, os.unlink, ro.join(basic_repo.name, "main", "tiny"))
    assert not (set(server.counts()) & write_operation_ids())
    assert sorted(api_branches(server, basic_repo.name)) == ["dev", "main"]


# --- branches move, fixed refs do not -----------------------------------------------------------------

def test_branch_follows_its_head_and_fixed_refs_never_change(server, repo, mount):
    server.upload(repo, "main", "a", b"a version 1\n")
    c1 = server.commit(repo, "main", "one")["id"]
    server.upload(repo, "main", "b", b"b\n")
    c2 = server.commit(repo, "main", "two")["id"]
    m = mount("lakefs://" + repo, options=["attr_timeout=1"])
    assert read(m.join("main", ".lakefs", "head"), "r") == c2 + "\n"
    assert read(m.join("main~1", ".lakefs", "head"), "r") == c1 + "\n"
    assert sorted(os.listdir(m.join("main"))) == ["a", "b"]
    assert os.listdir(m.join("main~1")) == ["a"]
    assert sorted(os.listdir(m.join(c2))) == ["a", "b"]
    assert read(m.join(c2, "a")) == b"a version 1\n"
    assert read(m.join("main", "a")) == b"a version 1\n"

    # Another client commits on main.
    server.upload(repo, "main", "a", b"a version 2, longer\n")
    server.upload(repo, "main", "c", b"c\n")
    c3 = server.commit(repo, "main", "three")["id"]

    assert poll(lambda: read(m.join("main", ".lakefs", "head"), "r") == c3 + "\n"), "main never moved to c3"
    assert poll(lambda: sorted(os.listdir(m.join("main"))) == ["a", "b", "c"])
    assert poll(lambda: read(m.join("main", "a")) == b"a version 2, longer\n")
    assert poll(lambda: os.getxattr(m.join("main"), "user.lakefs.commit_id").decode() == c3)

    # More than attr_timeout has passed (main moved): fixed refs still show what they resolved to,
    # from the cache.
    server.reset_counts()
    assert sorted(os.listdir(m.join(c2))) == ["a", "b"]
    assert read(m.join(c2, "a")) == b"a version 1\n"
    assert os.stat(m.join(c2, "a")).st_size == len(b"a version 1\n")
    assert server.counts().get("listObjects", 0) == 0, server.counts()
    assert read(m.join("main~1", ".lakefs", "head"), "r") == c1 + "\n"
    assert os.listdir(m.join("main~1")) == ["a"]
