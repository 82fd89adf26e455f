"""Helpers for the mount tests: start and stop `lakefuse mount` (reading its one stdout line, never
sleeping), seed repositories through the API, build the tree the API says a ref holds, read the
tree a directory holds, and run the Unix tools on it. Never leaves a mount or a process behind.
"""
import collections
import concurrent.futures
import errno
import hashlib
import json
import os
import random
import re
import socket
import struct
import subprocess
import threading
import time

import requests
import yaml

from lakefs_testlib import read_line  # noqa: F401 (also used by tests)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# LAKEFUSE_BIN runs the suite against another build (e.g. build/asan/lakefuse).
LAKEFUSE = os.environ.get("LAKEFUSE_BIN") or os.path.join(ROOT, "build", "lakefuse")
SWAGGER = os.path.join(ROOT, "tests", "lakefs_server", "swagger.yml")

MIB = 1024 * 1024
MOUNT_TIMEOUT = 60.0  # generous: sanitizer builds and a loaded machine
UNMOUNT_TIMEOUT = 60.0
TOOL_TIMEOUT = 300

# --- lakeFS API side ----------------------------------------------------------------------------------

FileInfo = collections.namedtuple("FileInfo", "size mtime mode data")


class Tree:
    """A directory tree: files {relative path: FileInfo} and dirs {relative path} (root excluded).
    data is None when contents were not read."""

    def __init__(self, files=None, dirs=None):
        self.files = dict(files or {})
        self.dirs = set(dirs or ())

    def children(self, rel=""):
        """Names directly under directory rel ("" = root)."""
        prefix = rel + "/" if rel else ""
        names = set()
        for p in list(self.files) + list(self.dirs):
            if p.startswith(prefix) and p != rel:
                names.add(p[len(prefix):].split("/", 1)[0])
        return names

    def __repr__(self):
        return "Tree(%d files, %d dirs)" % (len(self.files), len(self.dirs))


def api_ok(resp, status=200):
    assert resp.status_code == status, "%s %s -> %d %s" % (resp.request.method, resp.url, resp.status_code,
                                                           resp.text[:500])
    return resp.json() if resp.content else None


def _paginate(server, path, params=None):
    params, after = dict(params or {}), ""
    while True:
        page = api_ok(server.api("GET", path, params=dict(params, amount=1000, after=after)))
        yield from page["results"]
        if not page["pagination"]["has_more"]:
            return
        after = page["pagination"]["next_offset"]


def api_list_objects(server, repo, ref, prefix="", delimiter=None):
    """Every listObjects result (all pages) of repo/ref under prefix."""
    params = {"prefix": prefix}
    if delimiter is not None:
        params["delimiter"] = delimiter
    return list(_paginate(server, "/repositories/%s/refs/%s/objects/ls" % (repo, ref), params))


def api_get(server, repo, ref, path):
    resp = server.api("GET", "/repositories/%s/refs/%s/objects" % (repo, ref), params={"path": path})
    assert resp.status_code == 200, resp.text[:500]
    return resp.content


def api_stat(server, repo, ref, path, presign=None):
    params = {"path": path}
    if presign is not None:
        params["presign"] = "true" if presign else "false"
    return api_ok(server.api("GET", "/repositories/%s/refs/%s/objects/stat" % (repo, ref), params=params))


def api_commit_id(server, repo, ref):
    """The commit id ref resolves to now."""
    return api_ok(server.api("GET", "/repositories/%s/commits/%s" % (repo, ref)))["id"]


def api_branches(server, repo):
    return {b["id"]: b["commit_id"] for b in _paginate(server, "/repositories/%s/branches" % repo)}


def api_repositories(server):
    return {r["id"] for r in _paginate(server, "/repositories")}


def api_create_tag(server, repo, tag, ref):
    api_ok(server.api("POST", "/repositories/%s/tags" % repo, json={"id": tag, "ref": ref}), 201)


def api_create_branch(server, repo, branch, source):
    resp = server.api("POST", "/repositories/%s/branches" % repo, json={"name": branch, "source": source})
    assert resp.status_code == 201, resp.text


def expected_mtime(stats):
    """lakectl's ::lakefs::client-mtime (decimal seconds) when valid, else the API's mtime."""
    value = (stats.get("metadata") or {}).get("::lakefs::client-mtime", "")
    digits = value[1:] if value.startswith("-") else value
    if digits.isdigit() and len(digits) <= 18:
        return int(value)
    return int(stats["mtime"])


def expected_mode(stats):
    """Permission bits of lakectl's ::lakefs::posix-permissions Mode (number or octal string), else 0644."""
    raw = (stats.get("metadata") or {}).get("::lakefs::posix-permissions")
    try:
        mode = json.loads(raw).get("Mode") if raw else None
    except (ValueError, AttributeError):
        mode = None
    if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode <= 0xFFFFFFFF:
        return mode & 0o7777
    if isinstance(mode, str) and mode and len(mode) <= 11 and all(c in "01234567" for c in mode):
        return int(mode, 8) & 0o7777
    return 0o644


def posix_name_ok(name):
    return name not in ("", ".", "..") and len(name.encode()) <= 255


def api_tree(server, repo, ref, prefix="", read=True):
    """The tree the API says repo/ref holds under prefix ("" or ending in "/"): every object is a file
    at its path relative to prefix, its parent prefixes are directories, and a directory marker
    ("x/" object) is a directory, not a file. Only valid POSIX paths are expected here."""
    tree = Tree()
    for st in api_list_objects(server, repo, ref, prefix):
        rel = st["path"][len(prefix):]
        if rel == "":
            continue  # the marker of the prefix itself
        is_marker = rel.endswith("/")
        parts = rel.rstrip("/").split("/")
        assert all(posix_name_ok(p) for p in parts), "api_tree: unexpected odd name %r" % st["path"]
        for i in range(1, len(parts)):
            tree.dirs.add("/".join(parts[:i]))
        if is_marker:
            tree.dirs.add("/".join(parts))
            continue
        data = api_get(server, repo, ref, st["path"]) if read else None
        if data is not None:
            assert len(data) == st["size_bytes"]
        tree.files[rel] = FileInfo(st["size_bytes"], expected_mtime(st), expected_mode(st), data)
    clash = set(tree.files) & tree.dirs
    assert not clash, "api_tree: object/prefix clash %r (not expected in this repository)" % clash
    return tree


def write_operation_ids():
    """operationIds of the spec's non-GET operations (login excepted): a read-only mount calls none."""
    with open(SWAGGER) as f:
        spec = yaml.safe_load(f)
    ids = set()
    for ops in spec["paths"].values():
        for method, op in ops.items():
            if method in ("post", "put", "delete", "patch") and op["operationId"] != "login":
                ids.add(op["operationId"])
    return ids


def gets(counts):
    """Data GETs in a server counts dict: through the API plus straight from presigned URLs."""
    return counts.get("getObject", 0) + counts.get("presignedGet", 0)


# --- seeding ------------------------------------------------------------------------------------------

def url_batches(files, first=16, largest=1000):
    """The presigned listObjects pages (src/urlbatch.c) that reading `files` objects of one directory in
    order costs: pages of 16, doubling up to 1,000, until they cover the files."""
    pages, covered, amount = 0, 0, first
    while covered < files:
        pages, covered, amount = pages + 1, covered + amount, min(amount * 2, largest)
    return pages


def _rand_bytes(seed, n):
    return random.Random(seed).randbytes(n)


NEEDLE = b"needle-lakefuse-7f3a"
BASIC_MTIME = 1600000000

# path -> (content, extra headers); commit 1 of the basic repository.
def _basic_commit1():
    binary = bytearray(_rand_bytes(1, 300 * 1024))
    binary[200000:200000 + len(NEEDLE)] = NEEDLE
    big = bytearray(_rand_bytes(2, 3 * MIB + 12345))
    big[MIB - 5:MIB - 5 + len(NEEDLE)] = NEEDLE  # across the first block boundary
    return {
        "README.md": (b"# seeded repository\n\n" + NEEDLE + b" in the readme\n", {"Content-Type": "text/markdown"}),
        "data.txt": (b"a root object whose name starts like the data/ prefix\n", {}),
        "data/a.csv": (b"id,value\n1,one\n2,two\n" + NEEDLE + b",3\n", {"Content-Type": "text/csv"}),
        "data/b.csv": (b"id,value\n3,three\n", {"Content-Type": "text/csv"}),
        "data/nested/deep/x.bin": (bytes(binary), {}),
        "data/nested/deep/": (b"", {}),  # a marker next to real content
        "big.bin": (bytes(big), {}),
        "empty.txt": (b"", {}),
        "tiny": (b"\x00", {}),
        "docs/": (b"", {}),
        "docs/guide.txt": (b"guide\n" * 100, {"Content-Type": "text/plain"}),
        "emptydir/": (b"", {}),  # only a marker: an empty directory
        "meta/with-meta.txt": (b"user metadata here\n", {"X-Lakefs-Meta-Owner": "alice",
                                                         "X-Lakefs-Meta-Project": "lakefuse"}),
        "meta/lakectl.txt": (b"uploaded by lakectl\n", {"X-Lakefs-Internal-client-mtime": str(BASIC_MTIME),
                                                        "X-Lakefs-Internal-posix-permissions": '{"Mode":33152}'}),
        "scripts/run.sh": (b"#!/bin/sh\necho hi\n", {"X-Lakefs-Internal-posix-permissions": '{"Mode":"0755"}'}),
        "changed.txt": (b"version one\n", {}),
        "to-be-deleted.txt": (b"gone in the second commit\n", {}),
    }


BasicRepo = collections.namedtuple("BasicRepo", "name commit1 commit2 short1 short2 tag dev_commit")


def seed_basic_repo(server, name):
    """A repository with two commits on main (main~1 = tag v1 = commit1 differs from main = commit2),
    a branch dev from commit1 with one more commit, nested dirs, directory markers, user and lakectl
    metadata, an empty file and binary files (one crossing a 1 MiB block)."""
    server.create_repo(name)
    for path, (data, headers) in _basic_commit1().items():
        server.upload(name, "main", path, data, headers=headers or None)
    commit1 = server.commit(name, "main", "first")["id"]
    server.upload(name, "main", "changed.txt", b"version two, longer than one\n")
    server.upload(name, "main", "new/file.txt", b"added in commit two\n" + NEEDLE + b"\n")
    resp = server.api("DELETE", "/repositories/%s/branches/main/objects" % name, params={"path": "to-be-deleted.txt"})
    assert resp.status_code == 204, resp.text
    commit2 = server.commit(name, "main", "second")["id"]
    api_create_tag(server, name, "v1", commit1)
    api_create_branch(server, name, "dev", commit1)
    server.upload(name, "dev", "dev-only.txt", b"only on dev\n")
    dev_commit = server.commit(name, "dev", "dev work")["id"]
    return BasicRepo(name, commit1, commit2, commit1[:12], commit2[:12], "v1", dev_commit)


BigTree = collections.namedtuple("BigTree", "name commit dirs")


def big_tree_dirs():
    """{directory: object count}: 50 directories, 5,000 objects; 'big' holds 3,000 (three listing
    pages), 'cat' 200, the 48 others 37 or 38."""
    dirs = {"big": 3000, "cat": 200}
    for i in range(48):
        dirs["d%02d" % i] = 38 if i < 24 else 37
    assert len(dirs) == 50 and sum(dirs.values()) == 5000
    return dirs


def big_tree_content(path):
    """Small contents of varying size, distinct per path."""
    return (path + "\n").encode() * (1 + len(path) % 5 + hash_int(path) % 7)


def hash_int(text):
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


SEED_WORKERS = 32


def upload_concurrently(server, repo, branch, items, workers=SEED_WORKERS):
    """uploadObject of each (path, data) or (path, data, headers) in items, `workers` at a time, each worker on its own
    keep-alive session: real lakeFS takes 10-20 ms an upload, so 5,000 one after the other cost a
    minute or more of a session's start; in parallel they cost what the server's CPU does."""
    url = server.api_url + "/repositories/%s/branches/%s/objects" % (repo, branch)
    local, sessions = threading.local(), []

    def put(item):
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.auth = server.http.auth
            sessions.append(local.http)  # list.append is atomic
        path, data, headers = (tuple(item) + (None,))[:3]
        resp = local.http.post(url, params={"path": path}, data=data, headers=headers or {}, timeout=120)
        assert resp.status_code == 201, (path, resp.status_code, resp.text)

    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(put, items):
                pass
    finally:
        for http in sessions:
            http.close()


def seed_big_tree(server, name):
    """5,000 small objects in 50 directories, committed on main."""
    server.create_repo(name)
    paths = ["%s/f%05d" % (d, i) for d, n in big_tree_dirs().items() for i in range(n)]
    upload_concurrently(server, name, "main", ((p, big_tree_content(p)) for p in paths))
    commit = server.commit(name, "main", "5000 objects")["id"]
    return BigTree(name, commit, big_tree_dirs())


ODD_LONG = "n" * 256
ODD_MAX = "m" * 255


def seed_odd_names(server, name):
    """Objects whose names cannot all be POSIX names, and an object/prefix conflict."""
    server.create_repo(name)
    for path in ("ok.txt", "bad//empty-segment", "dot/./x", "dotdot/../y", "dot/fine",
                 "long/" + ODD_LONG, "long/" + ODD_MAX, ODD_LONG, "conflict", "conflict/inner"):
        server.upload(name, "main", path, ("content of %s\n" % path).encode())
    return server.commit(name, "main", "odd names")["id"]


class PatternStream:
    """A file-like body of `size` bytes, made of 1 MiB blocks of one pseudo-random pattern, each block
    stamped with (seed, block index) at its start so no two blocks are equal. Hashes what is read."""

    def __init__(self, size, seed):
        self.size, self.seed, self.pos = size, seed, 0
        self.base = _rand_bytes(seed, MIB)
        self.sha256 = hashlib.sha256()

    def __len__(self):
        return self.size

    def block(self, index):
        stamp = struct.pack(">QQQQ", self.seed, index, self.seed ^ 0x5A5A, index * 7919)
        return stamp + self.base[len(stamp):]

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            index, off = divmod(self.pos, MIB)
            chunk = self.block(index)[off:off + n - len(out)]
            out += chunk
            self.pos += len(chunk)
        self.sha256.update(out)
        return bytes(out)


def upload_pattern_object(server, repo, branch, path, size, seed):
    """Streams a PatternStream object to repo/branch/path; returns its sha256 hex."""
    body = PatternStream(size, seed)
    resp = server.http.post(server.api_url + "/repositories/%s/branches/%s/objects" % (repo, branch),
                            params={"path": path}, data=body,
                            headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.text
    assert body.pos == size and resp.json()["size_bytes"] == size
    return body.sha256.hexdigest()


# --- local side ---------------------------------------------------------------------------------------

def local_tree(root, read=True):
    """The Tree under directory root (not following symlinks), with lstat sizes, mtimes and modes."""
    tree = Tree()

    def walk(rel):
        path = os.path.join(root, rel) if rel else root
        with os.scandir(path) as it:
            entries = list(it)
        for e in entries:
            child = rel + "/" + e.name if rel else e.name
            st = e.stat(follow_symlinks=False)
            if e.is_dir(follow_symlinks=False):
                tree.dirs.add(child)
                walk(child)
            else:
                data = None
                if read:
                    with open(e.path, "rb") as f:
                        data = f.read()
                tree.files[child] = FileInfo(st.st_size, int(st.st_mtime), st.st_mode & 0o7777, data)

    walk("")
    return tree


def assert_same_tree(actual, expected, meta=True, what="tree"):
    """Same directories, same files with the same bytes; with meta, same size, mtime and mode."""
    assert sorted(actual.dirs) == sorted(expected.dirs), "%s: directories differ" % what
    assert sorted(actual.files) == sorted(expected.files), "%s: files differ" % what
    for rel, exp in expected.files.items():
        got = actual.files[rel]
        if exp.data is not None and got.data is not None:
            assert len(got.data) == len(exp.data) and got.data == exp.data, "%s: bytes of %s differ" % (what, rel)
        assert got.size == exp.size, "%s: size of %s" % (what, rel)
        if meta:
            assert got.mtime == exp.mtime, "%s: mtime of %s" % (what, rel)
            assert got.mode == exp.mode, "%s: mode of %s is %o, not %o" % (what, rel, got.mode, exp.mode)


def materialize(tree, dest):
    """Writes tree (with data) under dest, with its mtimes and modes."""
    os.makedirs(dest, exist_ok=True)
    for rel in sorted(tree.dirs):
        os.makedirs(os.path.join(dest, rel), exist_ok=True)
    for rel, info in tree.files.items():
        path = os.path.join(dest, rel)
        with open(path, "wb") as f:
            f.write(info.data)
        os.chmod(path, info.mode)
        os.utime(path, (info.mtime, info.mtime))


def run(args, ok=True, **kw):
    """subprocess.run with captured bytes output and a time limit; with ok, exit status 0 required."""
    proc = subprocess.run(args, capture_output=True, timeout=TOOL_TIMEOUT, **kw)
    if ok:
        assert proc.returncode == 0, "%r exited %d: %s" % (args, proc.returncode, proc.stderr[-2000:])
    return proc


def sh(script, ok=True):
    return run(["bash", "-c", "set -euo pipefail; " + script], ok=ok)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pattern(size, seed):
    """The whole body of PatternStream(size, seed), in memory."""
    return PatternStream(size, seed).read()


# --- the mount ----------------------------------------------------------------------------------------

def lakefuse_env(server, home, access_key_id=None, secret_access_key=None, endpoint=None):
    """An environment with no inherited LAKECTL_*, HOME and XDG_CACHE_HOME in home, and the server's
    endpoint and credentials in the LAKECTL_* variables (None: server's; "" : leave unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKECTL_")}
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = os.path.join(str(home), ".cache")
    values = {"LAKECTL_SERVER_ENDPOINT_URL": server.url if endpoint is None else endpoint,
              "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": server.access_key_id if access_key_id is None else access_key_id,
              "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY":
                  server.secret_access_key if secret_access_key is None else secret_access_key}
    env.update({k: v for k, v in values.items() if v != ""})
    return env


def mount_args(uri, mountpoint, options=(), foreground=True, args=()):
    cmd = [LAKEFUSE, "mount"]
    if foreground:
        cmd.append("-f")
    if options:
        cmd += ["-o", ",".join(options)]
    return cmd + list(args) + [uri, str(mountpoint)]


def _mounts_at(path):
    """The per-mount option sets of every mount /proc/self/mountinfo lists at path. Unlike
    os.path.ismount this never asks the file system itself, so it also sees a mount whose server
    hangs, fails or is gone."""
    path = os.path.abspath(str(path))  # no realpath: it would stat the mount itself
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split(" ")
            if re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]) == path:
                found.append(set(fields[5].split(",")))
    return found


def mount_count(path):
    return len(_mounts_at(path))


def is_mounted(path):
    return bool(_mounts_at(path))


def mount_options(path):
    """The options of the topmost mount at path (e.g. {"ro", "nosuid"}), empty if none."""
    found = _mounts_at(path)
    return found[-1] if found else set()


def fusermount_unmount(mountpoint):
    """fusermount3 -u, falling back to a lazy unmount when busy; the first attempt's result."""
    first = subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True, text=True, timeout=60)
    if first.returncode != 0 and is_mounted(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, timeout=60)
    return first


def leaks_not_libfuse(stderr):
    """The LeakSanitizer reports in stderr whose memory was not allocated by libfuse itself (the
    allocation's caller, frame #1, outside libfuse3.so): libfuse's high-level API frees its own handle
    of an open directory only at RELEASEDIR, which lakefuse cannot stand in for."""
    blocks = re.split(r"\n(?=(?:Direct|Indirect) leak of )", stderr)[1:]
    return [b for b in blocks if not re.search(r"^\s*#1 .*libfuse3\.so", b, re.M)]


def only_libfuse_leaks(stderr):
    """stderr is one LeakSanitizer report and nothing else, every leak in it allocated by libfuse."""
    head, sep, _ = stderr.partition("ERROR: LeakSanitizer")
    return (bool(sep) and stderr.count("ERROR: ") == 1 and not head.strip(" =\n0123456789")
            and "leak of " in stderr and not leaks_not_libfuse(stderr))


class MountError(AssertionError):
    pass


class Mount:
    """One `lakefuse mount -f` process. path: the mountpoint (real path); log_file: its -o log_file;
    cache_dir: its -o cache_dir; stderr_path: its stderr."""

    def __init__(self, uri, path, env, workdir, options=(), args=(), cache_dir=None, stdin=None):
        self.uri, self.path, self.env = uri, os.path.realpath(str(path)), env
        os.makedirs(workdir, exist_ok=True)
        self.log_file = os.path.join(workdir, "lakefuse.log")
        self.stderr_path = os.path.join(workdir, "stderr")
        self.cache_dir = str(cache_dir) if cache_dir else os.path.join(workdir, "cache")
        self.options = ["cache_dir=" + self.cache_dir, "log_file=" + self.log_file] + list(options)
        self.args = list(args)
        self.stdin = stdin  # an open file for the process's standard input (else /dev/null)
        self.proc = None
        self.exit_status = None
        self.libfuse_leaks = False  # the sanitizer found only libfuse's own records of directories
        self.extra_stdout = b""

    def start(self, timeout=MOUNT_TIMEOUT):
        os.makedirs(self.cache_dir, exist_ok=True)
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(mount_args(self.uri, self.path, self.options, True, self.args),
                                         stdout=subprocess.PIPE, stderr=err,
                                         stdin=self.stdin if self.stdin is not None else subprocess.DEVNULL,
                                         env=self.env)
        data = read_line(self.proc.stdout.fileno(), time.monotonic() + timeout)
        line, _, self.extra_stdout = data.partition(b"\n")
        line += b"\n" if _ else b""
        expected = ("mounted %s on %s\n" % (self.uri, self.path)).encode()
        if line != expected:
            self._abort()
            raise MountError("lakefuse mount %s %s: stdout %r, not %r; stderr: %s; log: %s" % (
                self.uri, self.path, line, expected, self.stderr()[-2000:], self.log()[-2000:]))
        if not is_mounted(self.path):
            self._abort()
            raise MountError("lakefuse printed its line but %s is not a mount point" % self.path)
        return self

    def _abort(self):
        if is_mounted(self.path):
            fusermount_unmount(self.path)
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=UNMOUNT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if is_mounted(self.path):
            fusermount_unmount(self.path)
        self.proc.stdout.close()
        self.exit_status = self.proc.returncode

    @property
    def mounted(self):
        return self.proc is not None and self.exit_status is None

    def unmount(self):
        """fusermount3 -u (lazy if busy), waits for the process; returns its exit status."""
        if not self.mounted:
            return self.exit_status
        fusermount_unmount(self.path)
        return self._reap("killed: did not exit within %ds of the unmount" % UNMOUNT_TIMEOUT)

    def signal(self, signum):
        """Sends signum to the mount process and waits for it; returns its exit status."""
        self.proc.send_signal(signum)
        return self._reap(None)

    def _reap(self, timeout_status):
        """Waits for the process (killing it, and cleaning its mount, after UNMOUNT_TIMEOUT),
        collects its remaining stdout and records its exit status (timeout_status, when given,
        if it had to be killed)."""
        killed = False
        try:
            self.proc.wait(timeout=UNMOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            killed = True
            self.proc.kill()
            self.proc.wait()
            if is_mounted(self.path):
                fusermount_unmount(self.path)
        self.extra_stdout += self.proc.stdout.read()
        self.proc.stdout.close()
        self.exit_status = timeout_status if killed and timeout_status else self.proc.returncode
        if self.exit_status == 1 and only_libfuse_leaks(self.stderr()):
            # The kernel sends RELEASEDIR in the background: an unmount right after a directory was
            # closed can end the session before it arrives, and libfuse's high-level API frees its
            # own record of that directory only there (lakefuse frees its part at teardown). That
            # race is not a lakefuse leak; any allocation of lakefuse's own still fails the test.
            self.libfuse_leaks = True
            self.exit_status = 0
        return self.exit_status

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def log(self):
        return read_text(self.log_file)

    def stderr(self):
        return read_text(self.stderr_path)

    def wait_for_log(self, predicate, timeout=30.0):
        """Polls the log (bounded) until predicate(line) holds for some line; returns those lines."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log().splitlines() if predicate(line)]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def stats(self, at=""):
        """The JSON of .lakefs/stats under the ref root (or mount root) at."""
        with open(os.path.join(self.path, at, ".lakefs", "stats")) as f:
            return json.load(f)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def poll(condition, timeout=30.0, interval=0.05):
    """Calls condition() until it returns a true value or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def lakefuse_pids(mountpoint):
    """Pids of lakefuse processes whose command line names mountpoint (our own daemons)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"lakefuse" and str(mountpoint).encode() in argv:
            pids.append(int(entry))
    return pids


def closed_port():
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expect_errno(code, fn, *args):
    """Runs fn(*args) and asserts it fails with errno code."""
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == code, "%s%r: errno %s (%s), not %s" % (
            getattr(fn, "__name__", fn), args, errno.errorcode.get(e.errno), e, errno.errorcode[code])
        return
    raise AssertionError("%s%r succeeded; expected %s" % (getattr(fn, "__name__", fn), args, errno.errorcode[code]))



# --- writable branches --------------------------------------------------------------------------------

# Operations that carry object data to lakeFS: the direct path (uploadObject), the staging flow
# (getPhysicalAddress, PUT to the presigned URL, linkPhysicalAddress) and presigned multipart.
DATA_UPLOAD_OPERATIONS = ("uploadObject", "getPhysicalAddress", "presignedPut", "linkPhysicalAddress",
                          "createPresignMultipartUpload", "completePresignMultipartUpload", "uploadPart")


def uploads(counts):
    """Objects written with data in a server counts dict: each upload ends in exactly one uploadObject
    (direct path), one linkPhysicalAddress (staging flow) or one completePresignMultipartUpload
    (presigned multipart)."""
    return (counts.get("uploadObject", 0) + counts.get("linkPhysicalAddress", 0)
            + counts.get("completePresignMultipartUpload", 0))


def data_upload_calls(counts):
    """Every call in counts that moves or prepares object data (0: nothing was re-uploaded)."""
    return {op: counts[op] for op in DATA_UPLOAD_OPERATIONS if counts.get(op)}


def api_get_or_none(server, repo, ref, path):
    """The object's bytes, or None when the API answers 404."""
    resp = server.api("GET", "/repositories/%s/refs/%s/objects" % (repo, ref), params={"path": path})
    if resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text[:500]
    return resp.content


def api_stat_or_none(server, repo, ref, path):
    resp = server.api("GET", "/repositories/%s/refs/%s/objects/stat" % (repo, ref), params={"path": path})
    if resp.status_code == 404:
        return None
    return api_ok(resp)


def api_paths(server, repo, ref, prefix=""):
    """Every object path (markers included) under prefix."""
    return sorted(o["path"] for o in api_list_objects(server, repo, ref, prefix))


def api_metadata(server, repo, ref, path):
    return api_stat(server, repo, ref, path).get("metadata") or {}


def fail_uploads(server, status=500, message="injected upload failure", count=100000):
    """Makes every data-upload operation answer status (500 without 'locked' is not retried by the
    client, so a close fails at once); the server fixture clears faults after the test."""
    for op in DATA_UPLOAD_OPERATIONS:
        server.add_fault(operation=op, status=status, message=message, count=count)


def kill_mount(m):
    """kill -9 of a Mount's daemon, then a (lazy if busy) unmount of the dead mountpoint; returns the
    exit status (-9). The mount fixture then leaves it alone."""
    status = m.signal(9)
    if is_mounted(m.path):
        fusermount_unmount(m.path)
    assert not is_mounted(m.path), "the dead mount at %s could not be unmounted" % m.path
    return status


def close_quietly(fd):
    """os.close that ignores errors (a descriptor on a dead mount answers ENOTCONN)."""
    try:
        os.close(fd)
    except OSError:
        pass


def fsync_path(path, flags=os.O_WRONLY):
    """Opens path, fsyncs it (the mount sends what it holds of the file, or waits for its queued
    upload) and closes it."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def call_through_gate(server, gate, fn, *args, before=None, timeout=60):
    """fn(*args) run in a thread while the requests a `hold=gate` fault keeps waiting are held; once
    before() is true (polled, when given) the gate opens. Returns fn's value (its exception is raised
    here); fn still running timeout seconds after the gate opened fails the test."""
    out = {}

    def body():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # raised in the test's thread below
            out["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    if before is not None:
        assert poll(before, timeout=timeout), "the held requests never came (gate %r)" % gate
    server.open_gate(gate)
    t.join(timeout)
    assert not t.is_alive(), "%r still running %ds after gate %r opened" % (fn, timeout, gate)
    if "error" in out:
        raise out["error"]
    return out.get("value")


def read_status(m, at=""):
    """The upload lines ("pending PATH", "failed PATH: ERROR", "conflict PATH: WHY") of
    .lakefs/status at the ref root `at` inside mount m; the branch's uncommitted changes (A/M/D
    lines) are left out."""
    with open(os.path.join(m.path, at, ".lakefs", "status")) as f:
        return [line for line in f.read().splitlines()
                if line.startswith(("pending ", "failed ", "conflict "))]


def staged_command(action, cache_dir, env, *args):
    """`lakefuse staged ACTION [ARGS] --cache-dir DIR` (CompletedProcess, text output)."""
    return subprocess.run([LAKEFUSE, "staged", action, *args, "--cache-dir", str(cache_dir)], capture_output=True,
                          text=True, timeout=TOOL_TIMEOUT, env=env, stdin=subprocess.DEVNULL)


def staged_files(cache_dir):
    """{path: bytes} of every regular file under CACHE_DIR/staging."""
    return tree_bytes(os.path.join(str(cache_dir), "staging"))


def tree_bytes(root):
    """{path: bytes} of every regular file under root."""
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    found[path] = f.read()
    return found


def write_file(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def renameat2(src, dst, flags):
    """renameat2(AT_FDCWD, src, AT_FDCWD, dst, flags) through libc; raises OSError on failure."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd = -100
    rc = libc.renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), ctypes.c_uint(flags))
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), src)


def errno_as_user(uid, fn, *args, gid=None):
    """Runs fn(*args) in a forked child after setgroups([]), setgid(gid, by default uid) and
    setuid(uid); returns the errno it failed with, 0 if it succeeded."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups([])
            os.setgid(uid if gid is None else gid)
            os.setuid(uid)
            fn(*args)
        except OSError as e:
            code = e.errno or 254
        except BaseException:
            code = 255
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# --- the lakeFS workflow: control files, lakeFS diffs, the CLI ------------------------------------------

# A lakeFS diff type -> the letter the control files (status, diff/REF) show.
CHANGE_LETTERS = {"added": "A", "changed": "M", "removed": "D"}


def control_path(m, name, at=""):
    """.lakefs/NAME under the ref root `at` (relative to the mount root) of mount m."""
    return os.path.join(m.path, at, ".lakefs", name)


def control_write(path, text):
    """Writes text to a control file as `echo TEXT > FILE` does: open O_WRONLY|O_TRUNC, one write(2),
    close. Raises the OSError of the step that failed (the write, for a refused request)."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        written = os.write(fd, data)
    except OSError:
        close_quietly(fd)
        raise
    os.close(fd)
    assert written == len(data), "short write to %s: %d of %d bytes" % (path, written, len(data))


def control_read(path):
    with open(path, "rb") as f:
        return f.read().decode()


def control_json(path):
    """A control file's JSON (commit, merge, branch, reset results; status.json)."""
    text = control_read(path)
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError("%s is not JSON: %r" % (path, text[:500]))


def control_lines(path):
    """The non-empty lines of a control file (status, diff/REF)."""
    return [line for line in control_read(path).splitlines() if line.strip()]


def diff_lines(changes, prefix=""):
    """[(type, path)] from a lakeFS diff as the control files show them: "A/M/D PATH" sorted by path,
    only paths under prefix, relative to it."""
    return ["%s %s" % (CHANGE_LETTERS[kind], path[len(prefix):])
            for kind, path in sorted(changes, key=lambda c: c[1]) if path.startswith(prefix)]


def api_diff_branch(server, repo, branch):
    """[(type, path)] of the branch's uncommitted changes (diffBranch)."""
    return [(d["type"], d["path"]) for d in _paginate(server, "/repositories/%s/branches/%s/diff" % (repo, branch))]


def api_diff_refs(server, repo, left, right):
    """[(type, path)] of lakeFS's three-dot diffRefs(left, right): what right changed since the merge base."""
    return [(d["type"], d["path"]) for d in _paginate(server, "/repositories/%s/refs/%s/diff/%s" % (repo, left, right))]


def api_commit(server, repo, ref):
    """The commit ref resolves to now (id, message, metadata, parents, committer, creation_date...)."""
    return api_ok(server.api("GET", "/repositories/%s/commits/%s" % (repo, ref)))


def bare_env(home):
    """An environment with no LAKECTL_* at all and HOME (without a .lakectl.yaml) in home: a lakefuse
    command run in it has no way to reach lakeFS but through a mount."""
    os.makedirs(str(home), exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKECTL_")}
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = os.path.join(str(home), ".cache")
    return env


def lakefuse_cli(args, env, cwd=None):
    """`lakefuse ARGS...` (CompletedProcess, text output, stdin closed)."""
    return subprocess.run([LAKEFUSE] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


def cli_ok(args, env, cwd=None):
    """lakefuse_cli that must exit 0; returns its stdout."""
    proc = lakefuse_cli(args, env, cwd)
    assert proc.returncode == 0, "lakefuse %s exited %d\nstdout: %s\nstderr: %s" % (
        " ".join(str(a) for a in args), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout


def status_lines(m, at=""):
    """Every line of .lakefs/status at the ref root `at` inside mount m: the branch's uncommitted
    changes (A/M/D PATH), then this mount's uploads (pending PATH, failed PATH: ERROR)."""
    return control_lines(control_path(m, "status", at))
