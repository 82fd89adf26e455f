"""Issue 13: reading a big directory costs O(n), not O(n^2), and `ls -l` costs no lookup per entry.

libfuse's high-level API, given a listing without offsets, keeps it whole and walks it from the start
for every kernel readdir request, and sends readdirplus entries the kernel must look up again. lakefuse
fills with an offset per entry from a snapshot kept in the directory handle. What it did is counted in
`.lakefs/stats` "readdir": kernel requests served, entries visited to fill them, chunks of the snapshot
passed to find where a request starts, snapshots taken. The work per entry is asserted exactly bounded
at two sizes (no wall clock): every entry is visited once, plus at most one per request (the entry that
did not fit), and finding where each request starts never walks back from the beginning.
"""
import concurrent.futures
import ctypes
import ctypes.util
import os
import subprocess
import threading

import pytest
import requests

from mountlib import control_json, control_path

pytestmark = pytest.mark.many_objects

SIZES = (300, 3000)
CHUNK_FILL = 192  # entries per chunk of a listing's entryset when it is built (entryset.c)
BRANCH = ["attr_timeout=3600"]


@pytest.fixture(scope="module")
def bigdirs(lakefs_server):
    """A repository with dNNNN/fNNNNN (empty objects) for each size; deleted when the module ends."""
    srv = lakefs_server
    repo = srv.create_repo()
    url = srv.api_url + "/repositories/%s/branches/main/objects" % repo
    local, sessions = threading.local(), []

    def upload(path):
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.auth = srv.http.auth
            sessions.append(local.http)
        resp = local.http.post(url, params={"path": path}, data=b"", timeout=60)
        assert resp.status_code == 201, resp.text

    paths = ["d%d/f%05d" % (n, i) for n in SIZES for i in range(n)]
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, paths))
    finally:
        for s in sessions:
            s.close()
    srv.commit(repo, "main", "big directories")
    yield repo
    srv.api("DELETE", "/repositories/" + repo)


def stats(m):
    return control_json(control_path(m, "stats"))


def delta(after, before, key):
    return {k: after[key][k] - before[key][k] for k in after[key]}


@pytest.mark.parametrize("n", SIZES)
def test_ls_l_of_a_big_directory_visits_each_entry_once_and_looks_nothing_up(server, bigdirs, mount, n):
    m = mount("lakefs://%s/main" % bigdirs, options=BRANCH)
    top = os.path.join(m.path, "d%d" % n)
    os.listdir(top)  # the listing into lakefuse's cache (one snapshot, one readdir pass)
    before = stats(m)
    server.reset_counts()
    out = subprocess.run(["ls", "-l", "--time-style=+", top], check=True, capture_output=True, text=True).stdout
    after = stats(m)
    lines = out.splitlines()[1:]  # "total N" first
    assert [line.split()[-1] for line in lines] == ["f%05d" % i for i in range(n)]
    assert all(line.split()[4] == "0" for line in lines)  # sizes from the listing
    rd = delta(after, before, "readdir")
    assert rd["snapshots"] == 1  # one open: one listing taken
    # the kernel's reads came one request at a time (else nothing here is tested)
    assert rd["requests"] >= (2 if n > 1000 else 1)
    # each entry visited once; a request visits at most one more (the one that did not fit)
    assert n <= rd["entries"] <= n + rd["requests"]
    # where each request starts: never walked from the start again, at most the snapshot's chunks
    assert rd["steps"] <= n // CHUNK_FILL + 1
    # readdirplus gave the kernel every file's attributes: no lookup (no cache hit) per entry
    meta = delta(after, before, "metadata_cache")
    assert meta["hits"] + meta["misses"] + meta["negative_hits"] <= 4, meta
    assert server.counts() == {}  # all of it from the listing cached by os.listdir


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64), ("d_reclen", ctypes.c_ushort),
                ("d_type", ctypes.c_ubyte), ("d_name", ctypes.c_char * 256)]


def libc():
    c = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    c.opendir.restype = ctypes.c_void_p
    c.opendir.argtypes = [ctypes.c_char_p]
    c.readdir.restype = ctypes.POINTER(Dirent)
    c.readdir.argtypes = [ctypes.c_void_p]
    c.telldir.restype = ctypes.c_long
    c.telldir.argtypes = [ctypes.c_void_p]
    c.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    c.rewinddir.argtypes = [ctypes.c_void_p]
    c.closedir.argtypes = [ctypes.c_void_p]
    return c


def read_rest(c, d):
    """[(telldir before the entry, name)] to the end of the directory stream."""
    out = []
    while True:
        pos = c.telldir(d)
        e = c.readdir(d)
        if not e:
            return out
        out.append((pos, e.contents.d_name.decode()))


def test_seekdir_back_and_rewinddir_in_a_big_directory(server, bigdirs, mount):
    """A jump back (seekdir to a cookie telldir gave) resumes at that entry, through the fallback that
    walks the snapshot's chunks from the start; rewinddir takes a new snapshot that shows a file created
    since the directory was opened."""
    n = SIZES[-1]
    m = mount("lakefs://%s/main" % bigdirs, options=BRANCH)
    top = os.path.join(m.path, "d%d" % n)
    names = ["f%05d" % i for i in range(n)]
    c = libc()
    d = c.opendir(top.encode())
    assert d
    try:
        first = read_rest(c, d)
        assert [name for _, name in first if name not in (".", "..")] == names
        before = stats(m)
        for at in (n // 7, n // 2, 3):  # back to entries the kernel read many requests ago
            pos = [p for p, name in first if name == names[at]][0]
            c.seekdir(d, pos)
            assert [name for _, name in read_rest(c, d)] == names[at:]
        assert stats(m)["readdir"]["snapshots"] == before["readdir"]["snapshots"]  # the same snapshot
        with open(os.path.join(top, "new-file"), "w") as f:
            f.write("x")
        c.rewinddir(d)
        again = [name for _, name in read_rest(c, d)]
        assert again == [".", ".."] + sorted(names + ["new-file"])
        assert stats(m)["readdir"]["snapshots"] == before["readdir"]["snapshots"] + 1
    finally:
        c.closedir(d)
    os.unlink(os.path.join(top, "new-file"))
