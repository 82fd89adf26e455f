"""`lakefuse mount` as a command: its one stdout line, foreground and daemon modes, unmounting with
fusermount3 -u, SIGTERM and SIGINT, credentials from flags, LAKECTL_* or a lakectl YAML file, and
failing fast (one `lakefuse: ` line on stderr, non-zero exit, nothing mounted) before mounting."""
import os
import signal
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
