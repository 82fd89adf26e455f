"""lakectl interoperability (issue 10): the real lakectl v1.84.0 (built by scripts/third-party.sh) and
lakefuse agree on what an object means as a file.

* Objects uploaded by `lakectl fs upload` (with and without --content-type, from a file and from
  stdin) read back through the mount with their bytes, size, mtime and content type.
* A tree synced by `lakectl local commit` with POSIX permission tracking on (files 600/640/755, a
  directory 700, owners other than 0, mtimes, symlinks) shows through the mount with the same modes,
  owners, mtimes and symlinks (lstat, `stat`, `readlink`, `ls -l`); edits made through the mount and
  committed come back to that directory with `lakectl local pull`.
* What lakefuse writes and commits (the same tree, made with shell tools through the mount) reads
  back through `lakectl fs cat`, `lakectl fs stat` (the metadata lakeFS holds is exactly what
  `lakectl local commit` stores for the same local tree) and a `lakectl local clone`.

lakectl is configured through a temporary config file (endpoint, credentials, POSIX permissions,
symlink support) and a HOME of its own; the secret is never on a command line. Every test works on a
fresh repository (the `repo` fixture).

What lakectl itself does not keep, and these tests therefore do not expect: a symlink's owner (lakectl
records none for a symlink, so the mount shows the mount's owner), a symlink's mtime after `lakectl
local clone`/`pull` (lakectl does not set it), and a directory's mtime after clone/pull (lakectl sets
a folder's time before it downloads the folder's content, which changes it again).
"""
import json
import os
import random
import stat
import subprocess

import pytest

from realserver import ROOT, third_party_paths

from mountlib import api_create_branch, api_stat, poll, read_file, run

MTIME_KEY = "::lakefs::client-mtime"
PERMISSIONS_KEY = "::lakefs::posix-permissions"
SYMLINK_KEY = "::lakefs::symlink-target"
BUILD_TIMEOUT = 3600  # the first lakectl build on a fresh machine takes minutes

# --- lakectl --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lakectl_bin():
    """lakectl v1.84.0 from scripts/third-party.sh (which reuses the cached build, or builds it once)."""
    proc = subprocess.run([os.path.join(ROOT, "scripts", "third-party.sh"), "lakefs"], capture_output=True,
                          text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, "scripts/third-party.sh lakefs failed: %s" % proc.stderr[-3000:]
    path = third_party_paths()["LAKEFUSE_LAKECTL_BIN"]
    assert os.access(path, os.X_OK), path
    return path


class Lakectl:
    """Runs lakectl against the test server through a config file of its own (0600): endpoint,
    credentials, `experimental.local.posix_permissions` with uid and gid, `local.symlink_support`."""

    def __init__(self, binary, server, home):
        self.binary, self.secret = binary, server.secret_access_key
        os.makedirs(home, exist_ok=True)
        self.config = os.path.join(home, "lakectl.yaml")
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("credentials:\n  access_key_id: %s\n  secret_access_key: %s\n"
                    "server:\n  endpoint_url: %s\n"
                    "local:\n  symlink_support: true\n"
                    "experimental:\n  local:\n    posix_permissions:\n"
                    "      enabled: true\n      include_uid: true\n      include_gid: true\n"
                    % (server.access_key_id, server.secret_access_key, server.url))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LAKECTL_")}
        self.env.update(HOME=str(home), NO_COLOR="1")

    def run(self, *args, ok=True, input=None, cwd=None):
        """lakectl ARGS (CompletedProcess, bytes output); with ok, exit status 0 required."""
        argv = [self.binary, "--config", self.config] + [str(a) for a in args]
        assert not any(self.secret in a for a in argv), "the secret must never be on a command line"
        proc = subprocess.run(argv, capture_output=True, input=input, cwd=cwd, env=self.env, timeout=300,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if ok:
            assert proc.returncode == 0, "lakectl %s exited %d\nstdout: %s\nstderr: %s" % (
                " ".join(argv[3:]), proc.returncode, proc.stdout[-2000:].decode(errors="replace"),
                proc.stderr[-2000:].decode(errors="replace"))
        return proc

    def fs_cat(self, uri):
        return self.run("fs", "cat", uri).stdout

    def fs_stat(self, uri):
        """`lakectl fs stat URI` parsed: {"Path", "Size", "Checksum", "Content-Type", ..., "metadata": {}}."""
        out = self.run("fs", "stat", uri).stdout.decode()
        fields, metadata, in_metadata = {}, {}, False
        for line in out.splitlines():
            if in_metadata:
                if line.strip():
                    key, sep, value = line.strip().partition(" = ")
                    assert sep, "lakectl fs stat: odd metadata line %r" % line
                    metadata[key.strip()] = value
            elif line == "Metadata:":
                in_metadata = True
            elif ": " in line:
                key, _, value = line.partition(": ")
                fields[key] = value
        fields["metadata"] = metadata
        return fields

    def fs_ls(self, uri):
        """Object paths under uri (recursive), as lakectl lists them."""
        out = self.run("fs", "ls", "--recursive", uri).stdout.decode()
        return sorted(line.split()[-1] for line in out.splitlines() if line.startswith("object"))


@pytest.fixture
def lakectl(lakectl_bin, server, tmp_path):
    return Lakectl(lakectl_bin, server, tmp_path / "lakectl-home")


def branch_uri(repo, branch="main", path=""):
    return "lakefs://%s/%s/%s" % (repo, branch, path)


# --- the tree both tools make ---------------------------------------------------------------------------

BLOB_SIZE = 1536 * 1024 + 17  # crosses lakefuse's 1 MiB blocks, below any multipart threshold

# Made with shell tools in the current directory; BLOB names a file of random bytes. Times last,
# deepest first: creating an entry in a local directory changes that directory's mtime.
TREE_SCRIPT = r"""
set -eu
printf 'secret\n' > p600
printf 'group readable\n' > p640
printf '#!/bin/sh\necho hi\n' > run.sh
: > empty
mkdir private private/sub
printf 'inside\n' > private/sub/x
cat "$BLOB" > private/sub/big.bin
ln -s p640 link
ln -s sub/x private/lnk
ln -s nowhere/at/all dangling
chmod 600 p600
chmod 640 p640
chmod 755 run.sh private/sub
chmod 644 empty private/sub/x private/sub/big.bin
chmod 700 private
chown 1234:5678 p600
chown 2345:3456 p640
chown 4321:8765 private
touch -d @1600000000 p600
touch -d @1600000100 p640
touch -d @1600000200 run.sh
touch -d @1600000300 empty
touch -d @1600000400 private/sub/x
touch -d @1600000500 private/sub/big.bin
touch -h -d @1600000600 link
touch -h -d @1600000700 private/lnk
touch -h -d @1600000750 dangling
touch -d @1600000800 private/sub
touch -d @1600000900 private
"""
TREE_FILES = ["empty", "p600", "p640", "private/sub/big.bin", "private/sub/x", "run.sh"]
TREE_DIRS = ["private", "private/sub"]
TREE_LINKS = {"dangling": "nowhere/at/all", "link": "p640", "private/lnk": "sub/x"}


def make_blob(tmp_path):
    path = str(tmp_path / "blob")
    with open(path, "wb") as f:
        f.write(random.Random(10).randbytes(BLOB_SIZE))
    return path


def make_tree(root, blob):
    """Runs TREE_SCRIPT in root (a local directory or a directory in a mount)."""
    os.makedirs(root, exist_ok=True)
    run(["bash", "-c", TREE_SCRIPT], cwd=str(root), env=dict(os.environ, BLOB=blob))


IGNORED = {".lakefs_ref.yaml"}  # lakectl local's own file at the root of a synced directory


def describe(root, dir_mtimes=True, link_mtimes=True):
    """{relative path: what lstat, readlink and read say} for everything under root (not the root):
    type, permission bits (not for symlinks: always 0777 on Linux), owner, whole-second mtime, size,
    symlink target and content."""
    out = {}

    def walk(rel):
        for name in sorted(os.listdir(os.path.join(root, rel) if rel else root)):
            child = rel + "/" + name if rel else name
            if child in IGNORED:
                continue
            path = os.path.join(root, child)
            st = os.lstat(path)
            d = {"uid": st.st_uid, "gid": st.st_gid, "mtime": int(st.st_mtime)}
            if stat.S_ISDIR(st.st_mode):
                d.update(type="dir", mode=oct(stat.S_IMODE(st.st_mode)), nlink=st.st_nlink)
                if not dir_mtimes:
                    del d["mtime"]
                out[child] = d
                walk(child)
                continue
            if stat.S_ISLNK(st.st_mode):
                d.update(type="symlink", target=os.readlink(path), size=st.st_size)
                if not link_mtimes:
                    del d["mtime"]
            else:
                assert stat.S_ISREG(st.st_mode), "%s: unexpected type %o" % (child, st.st_mode)
                d.update(type="file", mode=oct(stat.S_IMODE(st.st_mode)), size=st.st_size, data=read_file(path))
            out[child] = d

    walk("")
    return out


def assert_same(actual, expected, what):
    assert sorted(actual) == sorted(expected), "%s: paths differ: %s" % (
        what, sorted(set(actual) ^ set(expected)))
    for rel in sorted(expected):
        assert actual[rel] == expected[rel], "%s: %s differs:\n  got      %r\n  expected %r" % (
            what, rel, _short(actual[rel]), _short(expected[rel]))


def _short(d):
    return {k: (v if k != "data" else "%d bytes" % len(v)) for k, v in d.items()}


def stat_lines(root, paths):
    """`stat -c` of paths (relative to root): type, mode, owner, mtime, link count; size for non-dirs."""
    out = run(["stat", "-c", "%n|%F|%A|%a|%u|%g|%Y|%h", "--"] + paths, cwd=str(root)).stdout.decode()
    sizes = run(["stat", "-c", "%n|%s", "--"] + [p for p in paths if not os.path.isdir(os.path.join(root, p))
                                                 or os.path.islink(os.path.join(root, p))],
                cwd=str(root)).stdout.decode()
    return out.splitlines() + sizes.splitlines()


def ls_lines(root):
    """`ls -lAR --time-style=+%s` of root, with what cannot agree between two file systems taken out:
    the 'total' block counts, directories' sizes (4096 on ext4, 0 in lakefuse) and lakectl's
    .lakefs_ref.yaml."""
    out = run(["ls", "-lAR", "--time-style=+%s", "."], cwd=str(root), env=dict(os.environ, LC_ALL="C")).stdout
    lines = []
    for line in out.decode().splitlines():
        if line.startswith("total ") or line.endswith(" .lakefs_ref.yaml"):
            continue
        fields = line.split(None, 6)  # mode, links, owner, group, size, mtime, name (column widths vary)
        if line.startswith("d") and len(fields) == 7:
            fields[4] = "-"
        lines.append(" ".join(fields))
    return lines


def readlink_tool(root, rel):
    return run(["readlink", rel], cwd=str(root)).stdout.decode().rstrip("\n")


def restore_dir_mtimes(root, described):
    """Sets each directory under root to the mtime `described` (a describe() result) gives it."""
    for rel in sorted((r for r, d in described.items() if d["type"] == "dir"), reverse=True):
        t = described[rel]["mtime"]
        os.utime(os.path.join(root, rel), (t, t))


def commit_through_mount(m, message):
    with open(m.join(".lakefs", "commit"), "w") as f:
        f.write(json.dumps({"message": message}))
    with open(m.join(".lakefs", "commit")) as f:
        result = json.load(f)
    assert result.get("ok") is True, result
    return result["commit"]["id"]


# --- lakectl fs upload -> the mount ---------------------------------------------------------------------

def test_objects_uploaded_by_lakectl_fs_upload_read_back_through_the_mount(server, repo, mount, lakectl,
                                                                            tmp_path):
    rng = random.Random(3)
    objects = {  # path -> (bytes, --content-type or None)
        "up/plain.txt": (b"uploaded by lakectl fs upload\n", None),
        "up/table.csv": (b"id,value\n1,one\n2,two\n", "text/csv"),
        "up/deep/er/blob.bin": (rng.randbytes(2 * 1024 * 1024 + 333), None),
        "up/empty": (b"", None),
    }
    src = tmp_path / "src"
    src.mkdir()
    for i, (path, (data, content_type)) in enumerate(sorted(objects.items())):
        local = src / ("f%d" % i)
        local.write_bytes(data)
        args = ["fs", "upload", "-s", local, branch_uri(repo, path=path)]
        if content_type:
            args[2:2] = ["--content-type", content_type]
        lakectl.run(*args)
    stdin_data = b"from standard input\n" * 50
    lakectl.run("fs", "upload", "-s", "-", "--content-type", "text/plain", branch_uri(repo, path="up/stdin.txt"),
                input=stdin_data)
    objects["up/stdin.txt"] = (stdin_data, "text/plain")

    m = mount(branch_uri(repo).rstrip("/"), options=["attr_timeout=1"])
    assert sorted(os.listdir(m.join("up"))) == ["deep", "empty", "plain.txt", "stdin.txt", "table.csv"]
    for path, (data, content_type) in objects.items():
        st = api_stat(server, repo, "main", path)
        # lakectl fs upload records no client-mtime: the object's own mtime is the file's.
        assert MTIME_KEY not in (st.get("metadata") or {}), st
        fst = os.stat(m.join(path))
        assert stat.S_ISREG(fst.st_mode) and stat.S_IMODE(fst.st_mode) == 0o644, "%s: %o" % (path, fst.st_mode)
        assert fst.st_size == len(data) == st["size_bytes"], path
        assert int(fst.st_mtime) == st["mtime"], path
        assert read_file(m.join(path)) == data, path
        shown = os.getxattr(m.join(path), "user.lakefs.content_type").decode()
        assert shown == (content_type or "application/octet-stream") == st["content_type"], path
        assert lakectl.fs_stat(branch_uri(repo, path=path))["Content-Type"] == shown

    # A new version uploaded by lakectl while mounted shows once the listing expires (attr_timeout=1).
    replacement = b"second version, longer than the first one\n"
    (src / "v2").write_bytes(replacement)
    lakectl.run("fs", "upload", "-s", src / "v2", branch_uri(repo, path="up/plain.txt"))

    def shows_v2():
        try:
            return read_file(m.join("up", "plain.txt")) == replacement
        except OSError:
            return False
    assert poll(shows_v2, timeout=30), read_file(m.join("up", "plain.txt"))
    assert os.stat(m.join("up", "plain.txt")).st_size == len(replacement)
    assert int(os.stat(m.join("up", "plain.txt")).st_mtime) == api_stat(server, repo, "main", "up/plain.txt")["mtime"]


# --- lakectl local commit -> the mount -> lakectl local pull --------------------------------------------

def test_tree_synced_by_lakectl_local_shows_through_the_mount_with_modes_owners_mtimes_symlinks(
        server, repo, mount, lakectl, tmp_path):
    local = tmp_path / "local"
    make_tree(local, make_blob(tmp_path))
    lakectl.run("local", "init", branch_uri(repo), local)
    lakectl.run("local", "commit", "--no-progress", "-m", "synced by lakectl local", local)
    expected = describe(local)
    # What lakectl stored is what the rest of this test relies on: its raw st_mode, owner, seconds.
    meta = api_stat(server, repo, "main", "p600")["metadata"]
    assert json.loads(meta[PERMISSIONS_KEY]) == {"UID": 1234, "GID": 5678, "Mode": stat.S_IFREG | 0o600}
    assert meta[MTIME_KEY] == "1600000000"
    meta = api_stat(server, repo, "main", "private/")["metadata"]
    assert json.loads(meta[PERMISSIONS_KEY]) == {"UID": 4321, "GID": 8765, "Mode": stat.S_IFDIR | 0o700}
    assert api_stat(server, repo, "main", "link")["metadata"][SYMLINK_KEY] == "p640"

    m = mount(branch_uri(repo).rstrip("/"), options=["attr_timeout=3600"])
    assert_same(describe(m.path), expected, "the mount of what lakectl local committed")
    assert expected["private"]["mode"] == "0o700" and expected["private"]["uid"] == 4321
    assert expected["p640"]["mode"] == "0o640" and expected["p640"]["gid"] == 3456
    assert expected["link"]["target"] == "p640" and expected["link"]["mtime"] == 1600000600
    # The same through the tools: stat, readlink, ls -l.
    paths = sorted(expected)
    assert stat_lines(m.path, paths) == stat_lines(local, paths)
    for rel, target in TREE_LINKS.items():
        assert readlink_tool(m.path, rel) == target == readlink_tool(local, rel)
    assert ls_lines(m.path) == ls_lines(local)
    assert any(line.startswith("drwx------ 3 4321 8765 - 1600000900 private") for line in ls_lines(m.path))

    # The other way on the same directory: edits through the mount, committed, reach it with
    # `lakectl local pull`.
    os.chmod(m.join("p640"), 0o600)
    with open(m.join("run.sh"), "ab") as f:
        f.write(b"echo appended through lakefuse\n")
    os.utime(m.join("run.sh"), (1700000000, 1700000000))
    os.unlink(m.join("private", "sub", "x"))
    os.mkdir(m.join("made"))
    with open(m.join("made", "new.txt"), "wb") as f:
        f.write(b"new through the mount\n")
    os.chown(m.join("made", "new.txt"), 777, 888)
    os.utime(m.join("made", "new.txt"), (1700000100, 1700000100))
    os.chmod(m.join("made"), 0o750)
    os.symlink("made/new.txt", m.join("newlink"))
    os.utime(m.join("newlink"), (1700000200, 1700000200), follow_symlinks=False)
    commit_through_mount(m, "edited through lakefuse")
    lakectl.run("local", "pull", "--no-progress", local)
    after = describe(m.path, dir_mtimes=False)
    assert after["p640"]["mode"] == "0o600" and after["made"]["mode"] == "0o750"
    assert "private/sub/x" not in after and after["made/new.txt"]["uid"] == 777
    # lakectl sets no time on a symlink it makes (the new one); the others were not downloaded again.
    pulled = describe(local, dir_mtimes=False)
    del pulled["newlink"]["mtime"], after["newlink"]["mtime"]
    assert_same(pulled, after, "the lakectl directory after `lakectl local pull`")
    # The directory times lakeFS stores: this mount also shows, in memory, the mtime its own removal
    # of private/sub/x gave private/sub (as a local file system would); a fresh mount shows the
    # marker's stored time, which is what lakectl compares with.
    stored = mount(branch_uri(repo).rstrip("/"), options=["attr_timeout=3600"])
    restore_dir_mtimes(local, describe(stored.path))
    status = lakectl.run("local", "status", local).stdout
    assert b"No diff found" in status, status.decode(errors="replace")


# --- lakefuse -> lakectl fs cat / fs stat / local clone -------------------------------------------------

def test_what_lakefuse_writes_reads_back_through_lakectl(server, repo, mount, lakectl, tmp_path):
    blob = make_blob(tmp_path)
    # lakectl's own record of the same tree, on a branch of its own, to compare formats with.
    api_create_branch(server, repo, "by-lakectl", "main")
    reference = tmp_path / "reference"
    make_tree(reference, blob)
    expected = describe(reference)
    lakectl.run("local", "init", branch_uri(repo, "by-lakectl"), reference)
    lakectl.run("local", "commit", "--no-progress", "-m", "the reference tree", reference)

    m = mount(branch_uri(repo).rstrip("/"), options=["attr_timeout=3600"])
    make_tree(m.path, blob)  # the same shell commands, through the mount
    assert_same(describe(m.path), expected, "the tree written through the mount")
    commit_through_mount(m, "written through lakefuse")

    # lakectl fs ls / cat / stat: the same objects, bytes and metadata as lakectl's own commit.
    objects = lakectl.fs_ls(branch_uri(repo))
    assert objects == lakectl.fs_ls(branch_uri(repo, "by-lakectl"))
    assert objects == sorted(TREE_FILES + list(TREE_LINKS) + [d + "/" for d in TREE_DIRS])
    for path in objects:
        ours = lakectl.fs_stat(branch_uri(repo, path=path))
        theirs = lakectl.fs_stat(branch_uri(repo, "by-lakectl", path))
        for field in ("Size", "Checksum", "Content-Type", "metadata"):
            assert ours[field] == theirs[field], "%s: %s: lakefuse %r, lakectl %r" % (
                path, field, ours[field], theirs[field])
        if path in TREE_FILES:
            assert lakectl.fs_cat(branch_uri(repo, path=path)) == expected[path]["data"], path
    p600 = lakectl.fs_stat(branch_uri(repo, path="p600"))["metadata"]
    assert p600 == {PERMISSIONS_KEY: '{"UID":1234,"GID":5678,"Mode":%d}' % (stat.S_IFREG | 0o600),
                    MTIME_KEY: "1600000000"}
    assert lakectl.fs_stat(branch_uri(repo, path="private/"))["metadata"][PERMISSIONS_KEY] == \
        '{"UID":4321,"GID":8765,"Mode":%d}' % (stat.S_IFDIR | 0o700)
    assert lakectl.fs_stat(branch_uri(repo, path="link"))["metadata"] == {SYMLINK_KEY: "p640",
                                                                          MTIME_KEY: "1600000600"}

    # lakectl local clone: the same bytes, modes, owners, file mtimes and symlinks.
    clone = tmp_path / "clone"
    lakectl.run("local", "clone", "--no-progress", branch_uri(repo), clone)
    assert_same(describe(clone, dir_mtimes=False, link_mtimes=False),
                describe(m.path, dir_mtimes=False, link_mtimes=False), "lakectl local clone of the mount's commit")
    # Given back the directory times lakeFS holds (lakectl's clone loses them), lakectl finds the
    # clone identical to the branch: its own comparison of sizes, mtimes, modes and owners agrees.
    restore_dir_mtimes(clone, expected)
    status = lakectl.run("local", "status", clone).stdout
    assert b"No diff found" in status, status.decode(errors="replace")
