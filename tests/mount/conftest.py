"""Fixtures for the mount tests: seeded repositories (once per session, on the session's validating
lakefs_server, never changed by a test, deleted at the end), the environment a lakefuse process
runs in (HOME and XDG_CACHE_HOME in tmp, LAKECTL_* pointing at the server), and `mount`, which
starts `lakefuse mount -f` and, after the test, unmounts every mount it made and requires exit
status 0 and nothing more on stdout. Never sleep to synchronise: the mount says when it is up.
"""
import uuid

import pytest

import mountlib


def _unique(prefix):
    return prefix + "-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def basic_repo(lakefs_server):
    """mountlib.BasicRepo: two commits on main, tag v1 = main~1, branch dev (see seed_basic_repo)."""
    basic = mountlib.seed_basic_repo(lakefs_server, _unique("basic"))
    yield basic
    lakefs_server.api("DELETE", "/repositories/" + basic.name)


@pytest.fixture(scope="session")
def big_tree(lakefs_server):
    """mountlib.BigTree: 5,000 objects in 50 directories on main, committed (see seed_big_tree)."""
    tree = mountlib.seed_big_tree(lakefs_server, _unique("tree"))
    yield tree
    lakefs_server.api("DELETE", "/repositories/" + tree.name)


@pytest.fixture(scope="session")
def odd_repo(lakefs_server):
    """Name of a repository whose main holds odd names and an object/prefix conflict."""
    name = _unique("odd")
    mountlib.seed_odd_names(lakefs_server, name)
    yield name
    lakefs_server.api("DELETE", "/repositories/" + name)


@pytest.fixture
def lakefuse_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def lakefuse_env(lakefs_server, lakefuse_home):
    """Environment for a lakefuse process: LAKECTL_* for the session server, HOME in tmp."""
    return mountlib.lakefuse_env(lakefs_server, lakefuse_home)


@pytest.fixture
def mount(server, lakefuse_env, tmp_path):
    """mount(uri, options=(), args=(), env=None, cache_dir=None, mountpoint=None) -> mountlib.Mount,
    started with -f, -o cache_dir=<per-test>,log_file=<per-mount> plus options. After the test each
    mount still up is unmounted with fusermount3 -u and must exit 0 (a test that unmounts or signals a
    mount checks its status itself); none may print more on stdout than its one line, and no log may
    contain the secret access key."""
    mounts, made = [], [0]

    def make(uri, options=(), args=(), env=None, cache_dir=None, mountpoint=None):
        index = made[0]
        made[0] += 1
        if mountpoint is None:
            mountpoint = tmp_path / ("mnt%d" % index)
            mountpoint.mkdir()
        m = mountlib.Mount(uri, mountpoint, env or lakefuse_env, str(tmp_path / ("lakefuse%d" % index)),
                           options=options, args=args,
                           cache_dir=cache_dir or str(tmp_path / "cache"))
        m.start()  # on failure it has cleaned up after itself
        mounts.append(m)
        return m

    yield make
    problems = []
    for m in mounts:
        if m.mounted:  # else the test unmounted it and checked the exit status itself
            status = m.unmount()
            if status != 0:
                problems.append("%s on %s exited %r; stderr: %s" % (m.uri, m.path, status, m.stderr()[-2000:]))
        if m.extra_stdout:
            problems.append("%s printed more than its one line: %r" % (m.uri, m.extra_stdout[:500]))
        if mountlib.is_mounted(m.path):
            problems.append("%s is still mounted" % m.path)
        if server.secret_access_key in m.log() + m.stderr():
            problems.append("the secret access key appears in the log or stderr of %s" % m.uri)
    assert not problems, "\n".join(problems)


@pytest.fixture
def bare_env(tmp_path):
    """Environment with no LAKECTL_* and an empty HOME: the lakefuse CLI must work through the mount."""
    return mountlib.bare_env(tmp_path / "bare-home")
