"""`lakefuse mount` as a command: its one stdout line, foreground and daemon modes, unmounting with
fusermount3 -u, SIGTERM and SIGINT, credentials from flags, LAKECTL_* or a lakectl YAML file, and
failing fast (one `lakefuse: ` line on stderr, non-zero exit, nothing mounted) before mounting."""
import os
import signal
import stat
import subprocess
import time
import uuid

import pytest

import mountlib
from mountlib import (LAKEFUSE, MOUNT_TIMEOUT, api_tree, closed_port, fusermount_unmount, is_mounted,
                      lakefuse_pids, mount_args, mount_count, mount_options, poll, read_line)


def root_names(server, repo, ref="main"):
    return sorted(api_tree(server, repo, ref, read=False).children())


def test_help_lists_mount():
    p = subprocess.run([LAKEFUSE, "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "mount" in p.stdout


def test_foreground_mount_serves_until_fusermount_unmount(server, basic_repo, mount):
    m = mount("lakefs://%s/main" % basic_repo.name)  # checks the exact "mounted URI on MNT" line
    assert os.path.ismount(m.path)
    assert m.proc.poll() is None, "the -f process must keep running while mounted"
    assert sorted(os.listdir(m.path)) == root_names(server, basic_repo.name)
    assert m.unmount() == 0
    assert not os.path.ismount(m.path) and not is_mounted(m.path)
    assert m.extra_stdout == b""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_foreground_mount_unmounts_on_signal(server, basic_repo, mount, signum):
    m = mount("lakefs://%s/main" % basic_repo.name)
    assert sorted(os.listdir(m.path)) == root_names(server, basic_repo.name)
    status = m.signal(signum)
    assert status == 0, "exit %r; stderr: %s; log: %s" % (status, m.stderr()[-3000:], m.log()[-2000:])
    assert not os.path.ismount(m.path) and not is_mounted(m.path)


def test_daemon_mode_exits_0_once_mounted(server, basic_repo, lakefuse_env, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mnt = os.path.realpath(str(mnt))
    uri = "lakefs://%s/main" % basic_repo.name
    options = ["cache_dir=%s" % (tmp_path / "cache"), "log_file=%s" % (tmp_path / "lakefuse.log")]
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen(mount_args(uri, mnt, options, foreground=False), stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL, env=lakefuse_env)
    try:
        line = read_line(proc.stdout.fileno(), time.monotonic() + MOUNT_TIMEOUT)
        status = proc.wait(timeout=MOUNT_TIMEOUT)
        assert line == ("mounted %s on %s\n" % (uri, mnt)).encode(), (tmp_path / "stderr").read_text()
        assert status == 0
        assert os.path.ismount(mnt) and is_mounted(mnt)
        assert lakefuse_pids(mnt), "no lakefuse process is left serving the mount"
        assert sorted(os.listdir(mnt)) == root_names(server, basic_repo.name)
        assert fusermount_unmount(mnt).returncode == 0
        assert not os.path.ismount(mnt) and not is_mounted(mnt)
    finally:
        proc.stdout.close()
        if is_mounted(mnt):
            fusermount_unmount(mnt)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert poll(lambda: not lakefuse_pids(mnt)), "the daemon did not exit after fusermount3 -u"
    assert server.secret_access_key not in mountlib.read_text(tmp_path / "lakefuse.log")


def test_lakefuse_and_fuse_options_together(server, basic_repo, mount):
    m = mount("lakefs://%s/main" % basic_repo.name,
              options=["ro", "attr_timeout=2", "cache_size=64M", "presign=true", "default_permissions"])
    assert "ro" in mount_options(m.path)
    assert sorted(os.listdir(m.path)) == root_names(server, basic_repo.name)


def _write_lakectl_yaml(path, server, endpoint):
    path.write_text("credentials:\n"
                    "  access_key_id: %s\n"
                    "  secret_access_key: %s\n"
                    "server:\n"
                    "  endpoint_url: %s\n" % (server.access_key_id, server.secret_access_key, endpoint))


@pytest.mark.parametrize("source", ["environment", "flags", "config-file", "home-lakectl-yaml"])
def test_credentials_sources(server, basic_repo, mount, tmp_path, source):
    home = tmp_path / ("home-" + source)
    home.mkdir()
    empty = mountlib.lakefuse_env(server, home, access_key_id="", secret_access_key="", endpoint="")
    args = []
    if source == "environment":
        env = mountlib.lakefuse_env(server, home, endpoint=server.api_url)  # with /api/v1
    elif source == "flags":
        env = empty
        args = ["--endpoint", server.url, "--access-key-id", server.access_key_id,
                "--secret-access-key", server.secret_access_key]
    elif source == "config-file":
        env = empty
        _write_lakectl_yaml(tmp_path / "lakectl.yaml", server, server.url)
        args = ["--config", str(tmp_path / "lakectl.yaml")]
    else:
        env = empty
        _write_lakectl_yaml(home / ".lakectl.yaml", server, server.api_url)
    m = mount("lakefs://%s/main" % basic_repo.name, args=args, env=env)
    assert sorted(os.listdir(m.path)) == root_names(server, basic_repo.name)


def _expect_fail_fast(uri, mnt, env, tmp_path, secret, args=()):
    """Runs `lakefuse mount` (daemon mode, so a wrong success returns too) and checks the failure."""
    options = ["cache_dir=%s" % (tmp_path / "cache"), "log_file=%s" % (tmp_path / "lakefuse.log")]
    try:
        p = subprocess.run(mount_args(uri, mnt, options, foreground=False, args=args), capture_output=True,
                           text=True, timeout=MOUNT_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    finally:
        was_mounted = is_mounted(mnt)
        if was_mounted:
            fusermount_unmount(mnt)
    assert p.returncode != 0, "lakefuse mount %s succeeded: %s" % (uri, p.stdout)
    assert not was_mounted
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lakefuse: "), p.stderr
    assert "mounted" not in p.stdout
    assert secret not in p.stderr + p.stdout
    return lines[0]


@pytest.mark.parametrize("case", ["unreachable-server", "bad-credentials", "unknown-repository",
                                  "unknown-branch", "unresolvable-ref", "missing-mountpoint"])
def test_fails_fast_before_mounting(server, basic_repo, tmp_path, case):
    home = tmp_path / "home"
    home.mkdir()
    secret = server.secret_access_key
    env = mountlib.lakefuse_env(server, home)
    uri = "lakefs://%s/main" % basic_repo.name
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if case == "unreachable-server":
        env = mountlib.lakefuse_env(server, home, endpoint="http://127.0.0.1:%d" % closed_port())
    elif case == "bad-credentials":
        secret = "wrong-secret-" + uuid.uuid4().hex
        env = mountlib.lakefuse_env(server, home, secret_access_key=secret)
    elif case == "unknown-repository":
        uri = "lakefs://no-such-repo-%s/main" % uuid.uuid4().hex[:8]
    elif case == "unknown-branch":
        uri = "lakefs://%s/no-such-branch" % basic_repo.name
    elif case == "unresolvable-ref":
        uri = "lakefs://%s/main~99" % basic_repo.name
    else:
        mnt = tmp_path / "missing"
    _expect_fail_fast(uri, str(mnt), env, tmp_path, secret)
    if case == "missing-mountpoint":
        assert not mnt.exists()


def test_fails_fast_on_busy_mountpoint(server, basic_repo, mount, lakefuse_env, tmp_path):
    m = mount("lakefs://%s/main" % basic_repo.name)
    assert mount_count(m.path) == 1
    options = ["cache_dir=%s" % (tmp_path / "cache2"), "log_file=%s" % (tmp_path / "second.log")]
    try:
        p = subprocess.run(mount_args("lakefs://%s/main" % basic_repo.name, m.path, options, foreground=False),
                           capture_output=True, text=True, timeout=MOUNT_TIMEOUT, env=lakefuse_env,
                           stdin=subprocess.DEVNULL)
        stacked = mount_count(m.path) - 1
    finally:
        for _ in range(3):
            if mount_count(m.path) > 1:
                fusermount_unmount(m.path)
    assert p.returncode != 0
    assert stacked == 0, "a second file system was stacked on the busy mountpoint"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lakefuse: "), p.stderr
    assert "mounted" not in p.stdout
    # The first mount is untouched and still serves.
    assert mount_count(m.path) == 1
    assert sorted(os.listdir(m.path)) == root_names(server, basic_repo.name)


# --- option values, the log file, the cache directory (issue 12) ----------------------------------

@pytest.mark.parametrize("option", ["attr_timeout=nan", "attr_timeout=inf", "attr_timeout=-1", "attr_timeout=",
                                    "cache_size=-1", "cache_size= -1", "cache_size=99999999999999999999",
                                    "metadata_cache_size= -64M", "max_rename_objects=-1",
                                    "multipart_threshold=16777216T"])
def test_bad_option_values_fail_fast(server, basic_repo, tmp_path, option):
    home = tmp_path / "home"
    home.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    line = _expect_fail_fast("lakefs://%s/main" % basic_repo.name, str(mnt), mountlib.lakefuse_env(server, home),
                             tmp_path, server.secret_access_key, args=["-o", option])
    assert line.startswith("lakefuse: bad value for -o %s: expected " % option), line
    assert not (tmp_path / "lakefuse.log").exists(), "it got as far as opening its log"


def test_log_file_is_created_private(server, basic_repo, mount, tmp_path):
    old = os.umask(0o022)  # what fopen's 0666 would turn into 0644
    try:
        m = mount("lakefs://%s/main" % basic_repo.name)
    finally:
        os.umask(old)
    assert os.listdir(m.path)
    assert stat.S_IMODE(os.stat(m.log_file).st_mode) == 0o600


def _hostile_cache(tmp_path, case, outside):
    """A cache directory another user could have prepared; returns (cache dir, the reason expected)."""
    cache = tmp_path / "cache"
    if case == "world-writable-ancestor":
        parent = tmp_path / "open"
        parent.mkdir()
        os.chmod(parent, 0o777)
        cache = parent / "cache"
    cache.mkdir(mode=0o700)
    if case == "group-writable":
        os.chmod(cache, 0o770)
        return cache, "is writable by group or others (mode 0770)"
    if case == "world-writable":
        os.chmod(cache, 0o777)
        return cache, "is writable by group or others (mode 0777)"
    if case == "other-owner":
        os.chown(cache, 65534, 65534)
        return cache, "is owned by another user"
    if case == "world-writable-ancestor":
        return cache, "%s is writable by other users and not sticky" % os.path.realpath(str(parent))
    if case == "data-symlink":
        os.symlink(str(outside), str(cache / "data"))
        return cache, "/data is a symbolic link"
    if case == "data-world-writable":
        (cache / "data").mkdir()
        os.chmod(cache / "data", 0o777)
        return cache, "/data is writable by group or others"
    if case == "block-dir-symlink":  # where the blocks of one shard go
        (cache / "data" / "v2").mkdir(parents=True)
        os.symlink(str(outside), str(cache / "data" / "v2" / "00"))
        return cache, "/data/v2/00 is a symbolic link"
    if case == "block-file-symlink":
        (cache / "data" / "v2" / "ab").mkdir(parents=True)
        os.symlink(str(outside / "target"), str(cache / "data" / "v2" / "ab" / ("ab" * 32 + "-0")))
        return cache, "is a symbolic link"
    if case == "journal-symlink":  # where a dead mount's journal would be read and rewritten
        session = cache / "staging" / "01796183141553601768-1-0123456789abcdef"
        session.mkdir(parents=True)
        os.symlink(str(outside / "target"), str(session / "1.json"))
        return cache, "/1.json is a symbolic link"
    if case == "fifo":  # opening it would block a reader forever
        (cache / "data" / "v2" / "cd").mkdir(parents=True)
        os.mkfifo(str(cache / "data" / "v2" / "cd" / ("cd" * 32 + "-0")))
        return cache, "is not a regular file"
    if case == "foreign-block":
        (cache / "data" / "v2" / "ef").mkdir(parents=True)
        planted = cache / "data" / "v2" / "ef" / ("ef" * 32 + "-0")
        planted.write_bytes(b"planted")
        os.chown(planted, 65534, 65534)
        return cache, "is owned by another user"
    raise AssertionError(case)


HOSTILE_CACHES = ["group-writable", "world-writable", "other-owner", "world-writable-ancestor", "data-symlink",
                  "data-world-writable", "block-dir-symlink", "block-file-symlink", "journal-symlink", "fifo",
                  "foreign-block"]


@pytest.mark.parametrize("case", HOSTILE_CACHES)
def test_a_cache_directory_another_user_could_change_is_refused(server, basic_repo, tmp_path, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_bytes(b"not lakefuse's\n")
    cache, reason = _hostile_cache(tmp_path, case, outside)
    home = tmp_path / "home"
    home.mkdir()
    env = mountlib.lakefuse_env(server, home)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    options = ["cache_dir=%s" % cache, "log_file=%s" % (tmp_path / "lakefuse.log")]
    try:
        p = subprocess.run(mount_args("lakefs://%s/main" % basic_repo.name, str(mnt), options, foreground=False),
                           capture_output=True, text=True, timeout=MOUNT_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    finally:
        was_mounted = is_mounted(str(mnt))
        if was_mounted:
            fusermount_unmount(str(mnt))
    assert p.returncode != 0 and not was_mounted and "mounted" not in p.stdout, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("lakefuse: cache directory %s refused: " % os.path.realpath(str(cache))), lines[0]
    assert reason in lines[0], lines[0]
    # Nothing escaped: what the planted links point at is as it was.
    assert sorted(os.listdir(outside)) == ["target"] and (outside / "target").read_bytes() == b"not lakefuse's\n"
    # `lakefuse staged` refuses it too.
    s = mountlib.staged_command("list", cache, env)
    assert s.returncode != 0 and "refused" in s.stderr, s.stdout + s.stderr
    assert sorted(os.listdir(outside)) == ["target"]


def test_a_new_cache_directory_is_created_private_and_accepted(server, basic_repo, mount, lakefuse_env, tmp_path):
    cache = tmp_path / "new" / "cache"  # neither exists yet
    old = os.umask(0o022)
    try:
        s = mountlib.staged_command("list", cache, lakefuse_env)
        assert s.returncode == 0, s.stderr
        for made in (tmp_path / "new", cache):
            assert stat.S_IMODE(os.stat(made).st_mode) == 0o700, made
        m = mount("lakefs://%s/main" % basic_repo.name, cache_dir=str(cache))
    finally:
        os.umask(old)
    assert os.listdir(m.path)
    for sub in ("data", "staging"):
        assert stat.S_IMODE(os.stat(cache / sub).st_mode) == 0o700, sub
    assert m.unmount() == 0
    again = mount("lakefs://%s/main" % basic_repo.name, cache_dir=str(cache))  # its own leftovers are fine
    assert os.listdir(again.path)


def test_a_signal_with_descriptors_open_releases_them(server, repo, mount):
    """A session that ends with descriptors still open (a signal here; an unmount can also abort the
    RELEASE the kernel sends after a close) releases them at teardown: under the sanitizer build an
    open file left behind is a leak, and the daemon's exit status says so."""
    server.upload(repo, "main", "r.txt", b"read me\n")
    m = mount("lakefs://%s/main" % repo)
    fd = os.open(m.join("r.txt"), os.O_RDONLY)
    wfd = os.open(m.join("w.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert os.read(fd, 100) == b"read me\n"
        status = m.signal(signal.SIGTERM)
    finally:
        for d in (fd, wfd):
            try:
                os.close(d)
            except OSError:
                pass
    assert status == 0, "exit %r; stderr: %s" % (status, m.stderr()[-3000:])



def test_a_signal_with_directories_open_releases_them(server, repo, mount):
    """A daemon that exits with directories still open (their RELEASEDIR never comes) releases its
    handles of them at teardown as it does files': under the sanitizer build a directory handle left
    behind is a leak (allocated by lakefuse), and the daemon's exit status and stderr say so."""
    server.upload(repo, "main", "d/f.txt", b"x")
    m = mount("lakefs://%s/main" % repo)
    fds = [os.open(m.join(p), os.O_RDONLY | os.O_DIRECTORY) for p in ("", "d", ".lakefs")]
    try:
        assert sorted(os.listdir(m.join("d"))) == ["f.txt"]
        status = m.signal(signal.SIGTERM)
    finally:
        for d in fds:
            try:
                os.close(d)
            except OSError:
                pass
    err = m.stderr()
    assert not mountlib.leaks_not_libfuse(err), err[-3000:]
    assert status == 0 or mountlib.only_libfuse_leaks(err), "exit %r; stderr: %s" % (status, err[-3000:])
