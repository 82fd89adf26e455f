"""Shared pytest fixtures: a lakefs_server for the whole session (started with --validate),
a per-test view of it that resets counts/faults and fails the test on any spec violation,
and a fresh repository per test. Never sleep to wait for the server: read its 'listening' line.

LAKEFUSE_TEST_SERVER picks the server: `bundled` (default: tests/lakefs_server), `lakefs-local`
(real lakeFS v1.84.0, local KV and blockstore) or `lakefs-s3` (real lakeFS on an S3 blockstore served
by moto, presigned URLs on); the real ones run behind tests/realserver.py's counting, fault-injecting
proxy and need `scripts/third-party.sh` to have built them.
"""
import os
import shutil
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lakefs_testlib import LakeFSServer  # noqa: E402

TEST_SERVER = os.environ.get("LAKEFUSE_TEST_SERVER", "bundled")


def _server_class():
    """The class LAKEFUSE_TEST_SERVER names (same constructor arguments as LakeFSServer)."""
    if TEST_SERVER == "bundled":
        return LakeFSServer
    import realserver
    if TEST_SERVER not in realserver.SERVERS:
        raise pytest.UsageError("LAKEFUSE_TEST_SERVER=%r: expected bundled, %s"
                                % (TEST_SERVER, ", ".join(sorted(realserver.SERVERS))))
    return realserver.SERVERS[TEST_SERVER]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "stand_in_only(reason): needs the bundled server (skipped, with the reason, "
                                       "against real lakeFS)")
    config.addinivalue_line("markers", "differential: the mount-vs-model differential test (issue 9); run-tests.sh "
                                       "runs it on the sanitizer build against the bundled server too")
    config.addinivalue_line("markers", "presign(multipart=False): needs a server that presigns (and, with "
                                       "multipart, presigned multipart uploads); skipped on one that cannot, "
                                       "such as real lakeFS on its local blockstore")
    config.addinivalue_line("markers", "many_objects: seeds thousands of objects to count listing requests, which "
                                       "do not depend on the blockstore: make test runs it against the bundled "
                                       "server (normal and sanitizer builds) and real lakeFS on its local "
                                       "blockstore, not on S3 (moto), where the seeding alone took minutes")


_storage_caps = {}


def _server_storage(server):
    """The server's storage capabilities from /config (asked once per server)."""
    key = id(server)
    if key not in _storage_caps:
        body = server.api("GET", "/config").json()
        st = body.get("storage_config") or (body.get("storage_config_list") or [{}])[0]
        _storage_caps[key] = st
    return _storage_caps[key]


@pytest.fixture(autouse=True)
def _presign_capability(request):
    """Skips a test marked presign on a server that cannot presign (the test is about presigned
    traffic; lakefuse itself falls back to the API there, which other tests cover)."""
    marker = request.node.get_closest_marker("presign")
    if marker is None:
        return
    st = _server_storage(request.getfixturevalue("lakefs_server"))
    if not st.get("pre_sign_support"):
        pytest.skip("the server cannot presign (%s blockstore)" % st.get("blockstore_type", "this"))
    if marker.kwargs.get("multipart") and not st.get("pre_sign_multipart_upload"):
        pytest.skip("the server has no presigned multipart uploads")


def pytest_collection_modifyitems(config, items):
    """Tests marked stand_in_only(reason=...) need something only the bundled server has (its hostile
    mode, a fault kind the proxy in front of real lakeFS cannot make): skipped, with that reason, when
    LAKEFUSE_TEST_SERVER names real lakeFS. `-m stand_in_only` selects exactly them (run-tests.sh runs
    them on the sanitizer build, since the real runs skip them); tests/REALSERVER.md lists them."""
    if TEST_SERVER == "bundled":
        return
    for item in items:
        marker = item.get_closest_marker("stand_in_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason="stand-in only: " + marker.kwargs.get("reason", "")))


def pytest_report_header(config):
    return "lakeFS server: %s (LAKEFUSE_TEST_SERVER)" % TEST_SERVER


@pytest.fixture(scope="session")
def lakefs_server(tmp_path_factory):
    """The session's LakeFSServer (see lakefs_testlib.LakeFSServer for its attributes)."""
    server = _server_class()(tmp_path_factory.mktemp("lakefs") / "data", validate=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(lakefs_server):
    """lakefs_server with counts and faults reset; fails the test if it caused spec violations."""
    lakefs_server.reset_counts()
    lakefs_server.clear_faults()
    lakefs_server.clear_violations()
    yield lakefs_server
    lakefs_server.clear_faults()
    violations = lakefs_server.violations()
    lakefs_server.clear_violations()
    assert violations == [], "lakeFS API spec violations: %r" % violations


@pytest.fixture
def repo(server):
    """Name of a fresh repository (default branch main, one 'Repository created' commit)."""
    name = "test-" + uuid.uuid4().hex[:12]
    server.create_repo(name)
    yield name
    server.clear_faults()
    server.api("DELETE", "/repositories/" + name)


@pytest.fixture
def lakefs_server_factory(tmp_path):
    """make(**kw) -> a started LakeFSServer of its own (kw: validate, extra_args such as
    ["--no-presign"] or ["--presign-ttl", "5"], credentials); all are stopped after the test."""
    started = []

    def make(**kw):
        srv = _server_class()(tmp_path / ("lakefs-%d" % len(started)) / "data", **kw)
        started.append(srv)
        return srv.start()

    yield make
    for srv in started:
        srv.stop()


def _mounts_under(path):
    """Mount points at or under path (from /proc/self/mountinfo; octal escapes decoded)."""
    prefix = os.path.realpath(str(path))
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                point = line.split()[4].encode().decode("unicode_escape")
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(point)
    except OSError:
        return ["?"]  # cannot tell: keep everything
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """Everything the tests wrote (servers' data, caches, mounts' directories) is under pytest's
    basetemp: a session that passed deletes it, after every fixture's teardown (trylast), and never
    while anything is still mounted under it; a failed one keeps it to look at (pytest keeps the
    last three)."""
    if exitstatus != 0:
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None) if factory is not None else None
    if base is None or _mounts_under(base):
        return
    shutil.rmtree(str(base), ignore_errors=True)


# LAKEFUSE_TEST_CPU_LOG=FILE: appends one line per test phase with the CPU seconds this pytest
# process spent in it (user + system), to find what makes `make test` long on 2 cores.
_CPU_LOG = os.environ.get("LAKEFUSE_TEST_CPU_LOG")
if _CPU_LOG:
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        t0 = os.times()
        yield
        t1 = os.times()
        with open(_CPU_LOG, "a") as f:
            f.write("%.3f\t%.3f\t%s\t%s\n" % (t1.user - t0.user + t1.system - t0.system, t1.elapsed - t0.elapsed,
                                            os.environ.get("LAKEFUSE_TEST_SERVER", "bundled") +
                                            ("-asan" if "asan" in os.environ.get("LAKEFUSE_BIN", "") else ""),
                                            item.nodeid))
