"""What a hostile writer or server can make a mount store or show (issue 12): the data cache cannot be
poisoned across repositories (blocks are keyed by server, storage namespace, physical address,
checksum and size), nothing that is not the range asked for goes into it, an error answer to a listing
is an error and never an empty directory, and a server whose pagination does not advance ends in an
error, not a loop. Fault kinds beyond status/latency/cut exist in the bundled server only; tests that
need them skip themselves elsewhere."""
import errno
import os
import subprocess
import uuid

import pytest
import requests

from mountlib import api_ok, api_stat, expect_errno, read_file, run

bundled_only = pytest.mark.stand_in_only(reason="the fault kind exists in the bundled server only")


@pytest.fixture
def two_repos(server):
    names = ["hostile-" + uuid.uuid4().hex[:10] for _ in range(2)]
    for name in names:
        server.create_repo(name)
    yield names
    for name in names:
        server.api("DELETE", "/repositories/" + name)


def link_forged(server, repo, path, data, checksum, size):
    """Writes data at path through getPhysicalAddress + presigned PUT + linkPhysicalAddress, claiming
    another object's checksum and size (what any writer of repo may do)."""
    base = "/repositories/%s/branches/main/staging/backing" % repo
    staging = api_ok(server.api("GET", base, params={"path": path, "presign": "true"}))
    resp = requests.put(staging["presigned_url"], data=data, timeout=60)
    assert resp.status_code == 200, resp.text
    api_ok(server.api("PUT", base, params={"path": path},
                      json={"staging": staging, "checksum": checksum, "size_bytes": size}))


VICTIM = b"the victim's true bytes: pay account 1111\n"
EVIL = b"ATTACKER BYTES: pay account 6666 instead!\n"


def seed_victim_and_forgery(server, victim_repo, evil_repo):
    assert len(VICTIM) == len(EVIL)
    server.upload(victim_repo, "main", "victim.txt", VICTIM)
    st = api_stat(server, victim_repo, "main", "victim.txt")
    link_forged(server, evil_repo, "evil.txt", EVIL, st["checksum"], st["size_bytes"])
    forged = api_stat(server, evil_repo, "main", "evil.txt")
    assert (forged["checksum"], forged["size_bytes"]) == (st["checksum"], st["size_bytes"])


@pytest.mark.presign
@pytest.mark.parametrize("presign", ["true", "false"])
@pytest.mark.parametrize("attacker_first", [True, False], ids=["attacker-first", "victim-first"])
def test_forged_checksum_in_another_repository_cannot_poison_the_cache(server, two_repos, mount, tmp_path,
                                                                       presign, attacker_first):
    victim_repo, evil_repo = two_repos
    seed_victim_and_forgery(server, victim_repo, evil_repo)
    cache = str(tmp_path / "shared-cache")
    order = [(evil_repo, "evil.txt", EVIL), (victim_repo, "victim.txt", VICTIM)]
    if not attacker_first:
        order.reverse()
    for repo, path, want in order:  # two mounts, one after the other, sharing the cache directory
        m = mount("lakefs://%s/main" % repo, options=["presign=" + presign], cache_dir=cache)
        assert run(["cat", m.join(path)]).stdout == want
        assert m.unmount() == 0, m.stderr()[-2000:]
    # And both through one lakefs:// mount on the same cache, in both orders.
    m = mount("lakefs://", options=["presign=" + presign], cache_dir=cache)
    for repo, path, want in order + order[::-1]:
        assert read_file(m.join(repo, "main", path)) == want


# --- nothing but the range asked for goes into the cache ----------------------------------------------

# Larger than one GET (8 MiB): some ranges end before the object does.
DATA = bytes((i * 7 + (i >> 8) * 13) & 0xFF for i in range(10 * 1024 * 1024 + 12345))


def data_op(presign):
    return "presignedGet" if presign == "true" else "getObject"


def cat_fails_with_eio(path):
    proc = run(["cat", path], ok=False)
    assert proc.returncode != 0 and b"Input/output error" in proc.stderr, (proc.returncode, proc.stderr)
    return proc


@pytest.fixture
def data_repo(server, repo):
    server.upload(repo, "main", "data.bin", DATA)
    server.upload(repo, "main", "small.txt", b"small but true\n")
    return repo


@bundled_only
@pytest.mark.presign
@pytest.mark.parametrize("presign", ["true", "false"])
@pytest.mark.parametrize("kind", ["shift", "long", "short", "no_content_range"])
def test_a_wrong_range_is_eio_and_never_cached(server, data_repo, mount, tmp_path, presign, kind):
    cache = str(tmp_path / "cache-range")
    server.add_fault(operation=data_op(presign), range=kind, count=1000)
    m = mount("lakefs://%s/main" % data_repo, options=["presign=" + presign], cache_dir=cache)
    cat_fails_with_eio(m.join("data.bin"))
    log = m.log()
    assert "not the range asked for" in log or "holds" in log or "Content-Range" in log, log
    assert m.unmount() == 0, m.stderr()[-2000:]
    server.clear_faults()
    # A remount on the same cache reads the true bytes: nothing of the bad answers was kept.
    server.reset_counts()
    m = mount("lakefs://%s/main" % data_repo, options=["presign=" + presign], cache_dir=cache)
    assert read_file(m.join("data.bin")) == DATA
    assert server.counts().get(data_op(presign), 0) >= 1


@bundled_only
@pytest.mark.presign
@pytest.mark.parametrize("presign", ["true", "false"])
@pytest.mark.parametrize("path,size", [("data.bin", len(DATA)), ("small.txt", 15)])
def test_an_error_page_sent_with_200_is_eio_and_never_cached(server, data_repo, mount, tmp_path, presign,
                                                              path, size):
    cache = str(tmp_path / "cache-200")
    page = "<html><body>Service unavailable" + "." * (512 * 1024) + "</body></html>"
    server.add_fault(operation=data_op(presign), status=200, body=page, count=1000)
    m = mount("lakefs://%s/main" % data_repo, options=["presign=" + presign], cache_dir=cache)
    cat_fails_with_eio(m.join(path))
    assert "200 answer of %d bytes to a ranged GET of a %d-byte object" % (len(page), size) in m.log()
    assert m.unmount() == 0, m.stderr()[-2000:]
    server.clear_faults()
    m = mount("lakefs://%s/main" % data_repo, options=["presign=" + presign], cache_dir=cache)
    want = DATA if path == "data.bin" else b"small but true\n"
    assert read_file(m.join(path)) == want


@bundled_only
@pytest.mark.presign
@pytest.mark.parametrize("presign", ["true", "false"])
def test_a_whole_object_answer_to_a_range_is_cut_to_the_range(server, data_repo, mount, tmp_path, presign):
    cache = str(tmp_path / "cache-ignore")
    server.add_fault(operation=data_op(presign), range="ignore", count=1000)
    m = mount("lakefs://%s/main" % data_repo, options=["presign=" + presign], cache_dir=cache)
    with open(m.join("data.bin"), "rb") as f:
        f.seek(2 * 1024 * 1024 + 5)
        assert f.read(100000) == DATA[2 * 1024 * 1024 + 5:][:100000]
    assert read_file(m.join("data.bin")) == DATA
    assert m.unmount() == 0, m.stderr()[-2000:]
    server.clear_faults()
    server.reset_counts()
    m = mount("lakefs://%s/main" % data_repo, options=["presign=" + presign], cache_dir=cache)
    assert read_file(m.join("data.bin")) == DATA
    assert server.counts().get(data_op(presign), 0) == 0  # all of it was cached, and right


@pytest.mark.presign
def test_bytes_that_fail_their_md5_etag_are_served_but_not_cached(server, two_repos, mount, tmp_path):
    """Through the API (presign off) the forged object comes with the ETag it claims (the victim's MD5),
    which its bytes do not have: they are shown, never cached. Through presigned URLs the store's own
    ETag matches the bytes, so they are cached (under the forger's namespace)."""
    victim_repo, evil_repo = two_repos
    seed_victim_and_forgery(server, victim_repo, evil_repo)
    cache = str(tmp_path / "cache-md5")
    for presign, gets_after_remount in (("false", 1), ("true", 0)):
        for _ in range(2):
            m = mount("lakefs://%s/main" % evil_repo, options=["presign=" + presign], cache_dir=cache)
            server.reset_counts()
            assert read_file(m.join("evil.txt")) == EVIL
            got = server.counts().get(data_op(presign), 0)
            log = m.log()
            assert m.unmount() == 0, m.stderr()[-2000:]
        assert got == gets_after_remount, (presign, got)
        warned = log.count("do not match their MD5 ETag")
        assert warned == (1 if presign == "false" else 0), log


# --- listings: an error is an error ---------------------------------------------------------------------

@pytest.mark.parametrize("status", [404, 500])
def test_a_listing_answered_with_an_error_is_eio_never_empty(server, data_repo, mount, status):
    server.upload(data_repo, "main", "sub/inner.txt", b"inner\n")
    m = mount("lakefs://%s/main" % data_repo, options=["attr_timeout=3600"])
    os.stat(m.path)  # the root is listed (for its attributes) and cached; sub/ is not
    server.reset_counts()
    server.add_fault(operation="listObjects", status=status, message="no such thing", ratio=1.0)
    proc = run(["ls", m.join("sub")], ok=False)
    assert proc.returncode != 0 and b"Input/output error" in proc.stderr, proc.stderr
    # One line per listing that failed: at most two (sub's attributes, where the parent's entry
    # stands in, then its entries, which fail ls).
    failed = server.counts().get("listObjects", 0)
    assert 1 <= m.log().count("listing 'sub/': no such thing") == failed <= 2, m.log()
    server.clear_faults()
    # Nothing was cached from it: the next listing shows the directory.
    assert os.listdir(m.join("sub")) == ["inner.txt"]


def test_a_branch_listing_answered_404_is_eio(server, data_repo, mount):
    m = mount("lakefs://%s" % data_repo)
    server.add_fault(operation="listBranches", status=404, message="repository not found", count=1)
    expect_errno(errno.EIO, os.listdir, m.path)
    assert "listing branches of '%s': repository not found" % data_repo in m.log()
    assert os.listdir(m.path) == ["main"]


# --- pagination that does not advance ends, with an error ------------------------------------------------

@bundled_only
@pytest.mark.parametrize("kind", ["stuck", "empty"])
@pytest.mark.parametrize("where", ["repositories", "branches", "objects"])
def test_pagination_that_does_not_advance_is_eio_not_a_loop(server, data_repo, mount, kind, where):
    uri, op, path = {"repositories": ("lakefs://", "listRepositories", ""),
                     "branches": ("lakefs://%s" % data_repo, "listBranches", ""),
                     "objects": ("lakefs://%s/main" % data_repo, "listObjects", "")}[where]
    m = mount(uri)
    server.add_fault(operation=op, pagination=kind, ratio=1.0)
    server.reset_counts()
    proc = subprocess.run(["ls", m.join(path)], capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"Input/output error" in proc.stderr, proc.stderr
    assert "pagination does not advance" in m.log(), m.log()
    # The guard stops at the first page that does not advance: two requests per listing, and ls
    # lists at most twice (the directory's attributes, then its entries).
    assert server.counts().get(op, 0) <= 4
    server.clear_faults()
    assert os.listdir(m.join(path))  # the mount is alive and lists once the server behaves


def test_a_directory_over_max_dir_entries_is_eio_with_a_clear_line(server, repo, mount):
    for i in range(12):
        server.upload(repo, "main", "d/f%02d" % i, b"x")
    m = mount("lakefs://%s/main" % repo, options=["max_dir_entries=10"])
    expect_errno(errno.EIO, os.listdir, m.join("d"))
    assert "listing 'd/': more than 10 entries, the most a directory may hold" in m.log(), m.log()
    assert os.listdir(m.path) == ["d"]  # one entry: within the cap
