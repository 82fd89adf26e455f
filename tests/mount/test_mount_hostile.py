"""A hostile server and hostile names (issue 12): the bundled server's hostile mode (/_test/hostile,
tests/lakefs_server/hostile.py) answers malformed JSON, truncated and oversized bodies, endless
pagination, wrong ranges and redirects to file://, and lists object names no file system can take
as they are. Whatever it sends, the daemon stays up (the sanitizer build too: LAKEFUSE_BIN), each
access answers the errno the README's security section documents, each problem is one log line, and
no file appears outside the mount and the cache directory.

These tests need the bundled server's hostile mode: with LAKEFUSE_TEST_SERVER naming real lakeFS
they are skipped. They run on a server of their own, so that their rules touch no other test.
"""
import errno
import os
import stat
import subprocess
import unicodedata

import pytest

import mountlib
from lakefs_testlib import LakeFSServer
from mountlib import MIB, expect_errno, poll

pytestmark = pytest.mark.stand_in_only(reason="the hostile mode is the bundled server's (tests/lakefs_server/hostile.py)")

NFC = unicodedata.normalize("NFC", "caf\u00e9")
NFD = unicodedata.normalize("NFD", "caf\u00e9")
LONG_COMPONENT = "l" * 300
NON_UTF8 = b"bad\xff\xfename"
DEEP_DIR = "d" * 250  # components of the 4,000-byte key: 16 levels of 251 bytes
DEEP_LEVELS = 16


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    srv = LakeFSServer(tmp_path_factory.mktemp("hostile") / "data", validate=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def hserver(hostile_server):
    """The hostile server with no rules, faults or violations; the client's requests must still match
    the lakeFS API (the server's answers are not checked: they are meant to be wrong)."""
    hostile_server._control("DELETE", "hostile")
    hostile_server.clear_faults()
    hostile_server.clear_violations()
    yield hostile_server
    hostile_server._control("DELETE", "hostile")
    hostile_server.clear_faults()
    violations = hostile_server.violations()
    hostile_server.clear_violations()
    assert violations == [], "lakeFS API spec violations: %r" % violations


def hostile(srv, operation, **rule):
    return srv._control("POST", "hostile", json=dict(rule, operation=operation))["id"]


@pytest.fixture
def lakefuse_env(hostile_server, lakefuse_home):
    """Overrides the mount suite's: every mount of these tests talks to the hostile server."""
    return mountlib.lakefuse_env(hostile_server, lakefuse_home)


@pytest.fixture
def hrepo(hserver):
    name = "hostile-" + os.urandom(5).hex()
    hserver.create_repo(name)
    yield name
    hserver._control("DELETE", "hostile")
    hserver.api("DELETE", "/repositories/" + name)


@pytest.fixture
def sandbox(tmp_path):
    """Everything a test makes lives under tmp_path; after the test no file may have appeared there
    outside the mountpoints and the cache directory (the daemon's log and stderr excepted), and the
    test's own "outside" directory (targets of file:// URLs) must hold only what the test put there."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"LOCAL SECRET, never to be served\n")

    def ours(top):  # the mountpoints, the cache, the daemons' logs, HOME
        return top.startswith("mnt") or top == "cache" or top.startswith("lakefuse") or top == "home"

    def snapshot():
        seen = set()
        for root, dirs, files in os.walk(tmp_path):
            rel = os.path.relpath(root, tmp_path)
            if rel == ".":
                dirs[:] = [d for d in dirs if not ours(d)]
                files = [f for f in files if not ours(f)]
            for name in files + dirs:
                seen.add(os.path.normpath(os.path.join(rel, name)))
        return seen

    before = snapshot()
    yield outside
    after = snapshot()
    assert after - before == set(), "files appeared outside the mount and the cache: %r" % (after - before)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"LOCAL SECRET, never to be served\n"


def warnings(m, needle):
    return [line for line in m.log().splitlines() if needle in line]


def assert_one_line_each(m):
    """Every log line is one printable line: no server-sent control character in it."""
    for line in m.log().splitlines():
        assert all(c >= " " and c != "\x7f" for c in line), "unprintable log line: %r" % line


def assert_alive(m):
    assert m.proc.poll() is None, "the daemon died: %s" % m.stderr()[-3000:]
    assert os.path.isdir(m.join(".lakefs"))


# --- hostile names ------------------------------------------------------------------------------------

REAL_NAMES = {
    "ok.txt": b"ok\n",
    "a//b": b"double slash\n",
    "../x": b"dot dot\n",
    "x/../y": b"inner dot dot\n",
    "c/" + LONG_COMPONENT: b"300-byte component\n",
    "tab\there": b"tab\n",
    "nl\nhere": b"newline\n",
    NFC: b"NFC\n",
    NFD: b"NFD\n",
    "a": b"object a\n",
    "a/inner": b"under a/\n",
    ".lakefs": b"an object named like the control directory\n",
}


def deep_prefix(level):
    return "".join(DEEP_DIR + "/" for _ in range(level))


def seed_hostile_names(srv, repo):
    for path, data in REAL_NAMES.items():
        srv.upload(repo, "main", path, data)
    # What no real lakeFS can hold, listed anyway: a name that is not UTF-8 and a 4,000-byte key
    # (one common prefix per level, the object at the bottom).
    hostile(srv, "listObjects", match={"prefix": ""},
            inject_results=[{"path": NON_UTF8.decode("latin-1")},
                            {"path": DEEP_DIR + "/", "path_type": "common_prefix", "checksum": "",
                             "size_bytes": 0}])
    for level in range(1, DEEP_LEVELS):
        child = deep_prefix(level + 1)
        result = ({"path": child, "path_type": "common_prefix", "checksum": "", "size_bytes": 0}
                  if level + 1 < DEEP_LEVELS else {"path": deep_prefix(level) + "f" * (4000 - len(deep_prefix(level)))})
        hostile(srv, "listObjects", match={"prefix": deep_prefix(level)}, inject_results=[result])


def test_hostile_names(hserver, hrepo, mount, sandbox):
    seed_hostile_names(hserver, hrepo)
    # attr_timeout=0: every access lists again, so "logged once" is tested by many listings.
    m = mount("lakefs://%s/main" % hrepo, options=["attr_timeout=0"])
    expected_root = {b"ok.txt", b"a", b"x", b"c", b"tab\there", b"nl\nhere", NFC.encode(), NFD.encode(),
                     DEEP_DIR.encode()}
    for _ in range(3):
        assert set(os.listdir(m.path.encode())) == expected_root
    # Names that cannot be a path component (a//b's empty one, .., x/../y's ..) are hidden.
    assert stat.S_ISDIR(os.stat(m.join("a")).st_mode)  # "a" and "a/...": the directory wins
    assert os.listdir(m.join("a")) == ["inner"]
    with open(m.join("a", "inner"), "rb") as f:
        assert f.read() == b"under a/\n"
    assert os.listdir(m.join("x")) == []
    assert os.listdir(m.join("c")) == []
    expect_errno(errno.ENAMETOOLONG, os.stat, m.join("c", LONG_COMPONENT))
    expect_errno(errno.ENOENT, os.stat, os.path.join(m.path.encode(), NON_UTF8))
    # Valid names, however odd, are shown and read as they are.
    for name, data in [("tab\there", b"tab\n"), ("nl\nhere", b"newline\n"), (NFC, b"NFC\n"), (NFD, b"NFD\n")]:
        with open(m.join(name), "rb") as f:
            assert f.read() == data, name
    # .lakefs at the root is the control directory; the object of that name is hidden by it.
    assert "head" in os.listdir(m.join(".lakefs"))
    # The 4,000-byte key: directories while the key fits lakeFS's 1,024 bytes, then ENAMETOOLONG.
    rel = ""
    for level in range(1, 5):
        rel = os.path.join(rel, DEEP_DIR)
        children = os.listdir(m.join(rel))
        assert children == ([DEEP_DIR] if level < 4 else []), (level, children)
    expect_errno(errno.ENAMETOOLONG, os.stat, m.join(rel, DEEP_DIR))

    # One warning line for each hidden name, however many listings saw it.
    def once(needle):
        lines = warnings(m, needle)
        assert len(lines) == 1 and "warning" in lines[0], (needle, lines, m.log()[-3000:])

    once('skipping "a//"')
    once('skipping "../"')
    once('skipping "x/../"')
    once('skipping "c/' + LONG_COMPONENT)
    once('skipping "bad\\xff\\xfename"')
    once('object "a" is hidden by the directory')
    once('object ".lakefs" is hidden by the control directory')
    once("longer than lakeFS's 1024-byte keys")
    assert_one_line_each(m)
    assert_alive(m)


# --- hostile answers ----------------------------------------------------------------------------------

def seed_dirs(srv, repo, *dirs):
    for d in dirs:
        srv.upload(repo, "main", d + "/f", b"content of " + d.encode() + b"\n")
    srv.upload(repo, "main", "ok.txt", b"ok\n")


LISTING_CASES = {
    "malformed_json": ({"status": 200, "body": '{"pagination": {"has_more": fal'}, "malformed"),
    "not_an_object": ({"status": 200, "body": '["results"]'}, "malformed"),
    "wrong_types": ({"status": 200, "body": '{"pagination": {"has_more": "no", "next_offset": 7}, "results": {}}'},
                    "malformed"),
    "html_error_page": ({"status": 502, "content_type": "text/html", "body": "<html>" + "x" * 5000 + "</html>"},
                        "HTTP status 502"),
    "truncated": ({"truncate_to": 40, "pad_bytes": 4096}, "listing"),
    "oversized": ({"pad_bytes": 65 * MIB}, "listing"),
    "endless_pagination": ({"next_offset": "same-offset-again"}, "pagination does not advance"),
    "not_found": ({"status": 404, "body": '{"message": "not found"}'}, "listing"),
}


@pytest.mark.parametrize("case", sorted(LISTING_CASES))
def test_hostile_listing_answers(hserver, hrepo, mount, sandbox, case):
    """A listing answered with garbage is EIO for that directory, with a log line; nothing is cached
    from it (the directory lists normally once the server behaves) and the rest of the mount works."""
    rule, needle = LISTING_CASES[case]
    seed_dirs(hserver, hrepo, "broken")
    m = mount("lakefs://%s/main" % hrepo, options=["attr_timeout=0"])
    assert sorted(os.listdir(m.path)) == ["broken", "ok.txt"]
    hostile(hserver, "listObjects", match={"prefix": "broken/"}, **rule)
    expect_errno(errno.EIO, os.listdir, m.join("broken"))
    lines = [line for line in m.log().splitlines() if "broken" in line and needle in line]
    assert len(lines) >= 1, m.log()[-3000:]
    with open(m.join("ok.txt"), "rb") as f:
        assert f.read() == b"ok\n"
    hserver._control("DELETE", "hostile")
    assert os.listdir(m.join("broken")) == ["f"]
    assert_one_line_each(m)
    assert_alive(m)


def test_endless_branch_pagination(hserver, hrepo, mount, sandbox):
    """listBranches repeating its next_offset: the branch listing fails (EIO) instead of looping."""
    m = mount("lakefs://%s" % hrepo)
    hostile(hserver, "listBranches", next_offset="")  # every page starts again from the first
    ls = subprocess.Popen(["ls", m.path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = ls.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        # ls waits on the daemon: give the looping daemon its last page first, then reap ls.
        hserver._control("DELETE", "hostile")
        ls.communicate()
        raise AssertionError("the branch listing did not end within 30 s of endless pages")
    assert ls.returncode != 0 and b"Input/output error" in err, (ls.returncode, out, err)
    assert_alive(m)


# --- hostile data answers -----------------------------------------------------------------------------

def _pattern(size):
    return bytes((i * 7 + i // 4096) % 251 for i in range(size))


DATA_SIZE = 3 * MIB + 123
DATA_CASES = {
    # operation, presign, rule
    "200_to_ranged_get": ("getObject", False, {"ignore_range": True}),
    "wrong_range_sent": ("getObject", False, {"range_from_zero": True}),
    "wrong_content_range": ("getObject", False, {"content_range": "bytes 0-99/100"}),
    "presigned_200_to_ranged_get": ("presignedGet", True, {"ignore_range": True}),
    "presigned_wrong_range_sent": ("presignedGet", True, {"range_from_zero": True}),
    "truncated_body": ("getObject", False, {"truncate_to": 1000}),
}


def read_at(path, offset, size):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_hostile_data_answers(hserver, hrepo, mount, sandbox, tmp_path, case):
    """A data answer that is not the range asked for is EIO (or, had the client made sense of it, the
    right bytes) - never other bytes - and is not cached: a remount on the same cache reads right."""
    operation, presign, rule = DATA_CASES[case]
    data = _pattern(DATA_SIZE)
    hserver.upload(hrepo, "main", "data.bin", data)
    cache = str(tmp_path / "cache")
    opts = ["presign=%s" % ("true" if presign else "false")]
    m = mount("lakefs://%s/main" % hrepo, options=opts, cache_dir=cache)
    hostile(hserver, operation, **rule)
    offset = 2 * MIB + 5
    try:
        got = read_at(m.join("data.bin"), offset, 1000)
    except OSError as e:
        assert e.errno == errno.EIO, e
        got = None
    assert got is None or got == data[offset:offset + 1000], "served bytes that are not the file's"
    hserver._control("DELETE", "hostile")
    assert m.unmount() == 0
    m2 = mount("lakefs://%s/main" % hrepo, options=opts, cache_dir=cache)
    assert read_at(m2.join("data.bin"), 0, DATA_SIZE) == data
    assert_alive(m2)


# --- URLs to local files ------------------------------------------------------------------------------

@pytest.mark.parametrize("presign", ["true", "false"])
def test_redirect_to_file_url_is_refused(hserver, hrepo, mount, sandbox, presign):
    """getObject answered with a redirect to file:// never reads a local file: EIO and a log line."""
    hserver.upload(hrepo, "main", "data.bin", b"the object's bytes\n")
    m = mount("lakefs://%s/main" % hrepo, options=["presign=" + presign])
    hostile(hserver, "getObject", status=302, headers={"Location": "file://%s" % (sandbox / "secret")}, body="")
    hostile(hserver, "listObjects", results_set={"physical_address": "local://not-presigned",
                                                 "physical_address_expiry": None})
    expect_errno(errno.EIO, read_at, m.join("data.bin"), 0, 100)
    assert poll(lambda: any("data.bin" in line for line in m.log().splitlines())), m.log()[-2000:]
    assert_alive(m)


def test_presigned_file_url_in_listing_is_refused(hserver, hrepo, mount, sandbox):
    """A listing whose presigned physical_address is a file:// URL: the local file is never served
    (the read fails, or reads the object's bytes another way)."""
    hserver.upload(hrepo, "main", "data.bin", b"the object's bytes\n")
    hostile(hserver, "listObjects", results_set={"physical_address": "file://%s" % (sandbox / "secret"),
                                                 "physical_address_expiry": 4000000000})
    hostile(hserver, "statObject", set={"physical_address": "file://%s" % (sandbox / "secret"),
                                        "physical_address_expiry": 4000000000})
    m = mount("lakefs://%s/main" % hrepo, options=["presign=true"])
    try:
        got = read_at(m.join("data.bin"), 0, 100)
    except OSError as e:
        assert e.errno == errno.EIO, e
        got = None
    assert got in (None, b"the object's bytes\n")
    assert_alive(m)


def test_presigned_upload_to_file_url_writes_nothing(hserver, hrepo, mount, sandbox):
    """getPhysicalAddress answering a file:// presigned URL: close fails with EIO and no local file is
    written (the sandbox fixture checks the whole tree)."""
    target = sandbox / "written-by-the-daemon"
    hostile(hserver, "getPhysicalAddress", set={"presigned_url": "file://%s" % target})
    m = mount("lakefs://%s/main" % hrepo, options=["presign=true", "direct_upload_max=0"])
    f = open(m.join("new.txt"), "wb")
    f.write(b"bytes that must not land in a local file\n")
    with pytest.raises(OSError) as info:
        f.close()
    assert info.value.errno == errno.EIO
    assert not target.exists()
    assert_alive(m)


# --- presigned URLs only when data is read -----------------------------------------------------------

def test_walks_never_ask_for_presigned_urls(hserver, hrepo, mount):
    """Every presigned listing fails (500): a walk, ls -l, stat and du still work, since listings never
    ask lakeFS to sign every object they list (src/urlbatch.c); reading data, which needs a URL, fails
    with EIO and a log line, and the same mount without presigning reads it."""
    for d in range(3):
        for f in range(4):
            hserver.upload(hrepo, "main", "t/d%d/f%d" % (d, f), b"file %d %d\n" % (d, f))
    hostile(hserver, "listObjects", match={"presign": "true"}, status=500, body='{"message": "no signing"}')
    m = mount("lakefs://%s/main" % hrepo)
    got = sorted(os.path.relpath(os.path.join(dp, n), m.path)
                 for dp, dirs, files in os.walk(m.path) for n in files)
    assert got == ["t/d%d/f%d" % (d, f) for d in range(3) for f in range(4)]
    assert mountlib.run(["ls", "-l", m.join("t", "d1")]).stdout.count(b"\n") == 5  # total + 4 files
    assert mountlib.run(["du", "-sb", m.join("t")]).returncode == 0
    assert os.stat(m.join("t", "d2", "f3")).st_size == len(b"file 2 3\n")
    expect_errno(errno.EIO, read_at, m.join("t", "d0", "f0"), 0, 100)
    assert poll(lambda: "presigning 't/d0/f0'" in m.log()), m.log()[-2000:]
    assert_alive(m)
    m2 = mount("lakefs://%s/main" % hrepo, options=["presign=false"])
    assert read_at(m2.join("t", "d0", "f0"), 0, 100) == b"file 0 0\n"
