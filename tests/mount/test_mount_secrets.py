"""The secret access key (issue 12): every source it may come from (--secret-access-key-file FILE or
-, LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY, --config / ~/.lakectl.yaml, and --secret-access-key with a
warning), and everywhere it must never show once a mount runs: the process's command line and
environment as /proc shows them to other processes, the log (with FUSE's debug trace on), every
extended attribute, every control file under .lakefs/, every file of the cache directory (staged
data and journals after a failed upload included), and a core dump, which the daemon never writes.
"""
import base64
import errno
import os
import resource
import signal
import subprocess
import time
import urllib.parse

import pytest

import mountlib
from mountlib import (LAKEFUSE, MOUNT_TIMEOUT, TOOL_TIMEOUT, expect_errno, fail_uploads, fusermount_unmount,
                      is_mounted, mount_args, read_line, read_status, tree_bytes, write_file)

WARNING = "lakefuse: warning: --secret-access-key shows the key to other local users"
SOURCES = ["argv", "argv-equals", "file", "stdin", "environment", "config-file", "home-lakectl-yaml"]


def secret_forms(server):
    """The key as it could leak: raw, percent-encoded, and inside an HTTP Basic credential."""
    key = server.secret_access_key
    basic = base64.b64encode(("%s:%s" % (server.access_key_id, key)).encode())
    return {"the key": key.encode(), "the percent-encoded key": urllib.parse.quote(key, safe="").encode(),
            "the Basic credential": basic}


def assert_no_secret(server, blob, where):
    """Fails naming what was found where, without printing the key itself."""
    for form, text in secret_forms(server).items():
        if text in blob:
            pytest.fail("%s appears in %s" % (form, where))


def lakectl_yaml(server):
    return ("credentials:\n  access_key_id: %s\n  secret_access_key: %s\nserver:\n  endpoint_url: %s\n"
            % (server.access_key_id, server.secret_access_key, server.url))


@pytest.fixture
def secret_mount(server, tmp_path):
    """secret_mount(uri, source, options=(), args=()) -> mountlib.Mount with the key from source and no
    other (the environment keeps the endpoint and key id except for the YAML sources). Unmounted after
    the test, which then requires exit status 0."""
    mounts = []

    def make(uri, source, options=(), args=()):
        index = len(mounts)
        home = tmp_path / ("home%d" % index)
        home.mkdir()
        env = mountlib.lakefuse_env(server, home, secret_access_key="")
        args, stdin = list(args), None
        if source == "argv":
            args += ["--secret-access-key", server.secret_access_key]
        elif source == "argv-equals":
            args += ["--secret-access-key=" + server.secret_access_key]
        elif source == "file":
            (tmp_path / "key").write_text(server.secret_access_key + "\n")
            args += ["--secret-access-key-file", str(tmp_path / "key")]
        elif source == "stdin":
            (tmp_path / "key-in").write_text(server.secret_access_key + "\n")
            stdin = open(tmp_path / "key-in", "rb")
            args += ["--secret-access-key-file", "-"]
        elif source == "environment":
            env = mountlib.lakefuse_env(server, home)
        elif source == "config-file":
            env = mountlib.lakefuse_env(server, home, access_key_id="", secret_access_key="", endpoint="")
            (tmp_path / "lakectl.yaml").write_text(lakectl_yaml(server))
            args += ["--config", str(tmp_path / "lakectl.yaml")]
        else:
            env = mountlib.lakefuse_env(server, home, access_key_id="", secret_access_key="", endpoint="")
            (home / ".lakectl.yaml").write_text(lakectl_yaml(server))
        mnt = tmp_path / ("mnt%d" % index)
        mnt.mkdir()
        m = mountlib.Mount(uri, mnt, env, str(tmp_path / ("lakefuse%d" % index)), options=options, args=args,
                           cache_dir=str(tmp_path / "cache"), stdin=stdin)
        try:
            m.start()
        finally:
            if stdin:
                stdin.close()
        mounts.append(m)
        return m

    yield make
    problems = []
    for m in mounts:
        if m.mounted and m.unmount() != 0:
            problems.append("%s exited %r; stderr: %s" % (m.uri, m.exit_status, m.stderr()[-2000:]))
        if is_mounted(m.path):
            problems.append("%s is still mounted" % m.path)
    assert not problems, "\n".join(problems)


def proc_file(pid, name):
    with open("/proc/%d/%s" % (pid, name), "rb") as f:
        return f.read()


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_works_and_the_key_leaves_no_trace_in_proc(server, basic_repo, secret_mount, source):
    m = secret_mount("lakefs://%s/main" % basic_repo.name, source)
    assert sorted(os.listdir(m.path)) == sorted(mountlib.api_tree(server, basic_repo.name, "main",
                                                                  read=False).children())
    cmdline = proc_file(m.proc.pid, "cmdline")
    assert_no_secret(server, cmdline, "/proc/PID/cmdline (what ps shows every local user)")
    assert_no_secret(server, proc_file(m.proc.pid, "environ"), "/proc/PID/environ")
    # The rest of the command line is intact: ps and pgrep still name the mountpoint.
    assert m.path.encode() in cmdline.split(b"\0")
    warnings = [line for line in m.stderr().splitlines() if line.startswith(WARNING)]
    if source.startswith("argv"):
        assert len(warnings) == 1, m.stderr()
        hidden = b"x" * len(server.secret_access_key)
        assert (b"--secret-access-key=" + hidden if source == "argv-equals" else hidden) in cmdline.split(b"\0")
    else:
        assert warnings == [], m.stderr()
    assert_no_secret(server, (m.log() + m.stderr()).encode(), "the log or stderr")


def all_xattrs(root):
    """{path: {name: value}} of every file and directory under root (the root and .lakefs too)."""
    found = {}
    paths = [root, os.path.join(root, ".lakefs")]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for path in paths:
        found[path] = {name: os.getxattr(path, name, follow_symlinks=False)
                       for name in os.listxattr(path, follow_symlinks=False)}
    return found


def control_texts(root):
    """{path: bytes} of every control file under root/.lakefs (diff/REF files of existing refs too)."""
    texts = {}
    control = os.path.join(root, ".lakefs")
    names = os.listdir(control) + ["diff/main"]
    for name in names:
        path = os.path.join(control, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                texts[path] = f.read()
    return texts


def test_the_key_is_nowhere_after_writes_a_failed_upload_and_a_commit(server, repo, secret_mount):
    """The key is given twice (command line and environment) and FUSE's debug trace is on; after a
    workload touching every place the mount writes, nothing it wrote or shows holds the key."""
    m = secret_mount("lakefs://%s/main" % repo, "argv", args=["-d"])
    write_file(m.join("a.txt"), b"first file\n")
    os.mkdir(m.join("dir"))
    write_file(m.join("dir", "b.txt"), b"second file\n" * 1000)
    os.setxattr(m.join("a.txt"), "user.lakefs.meta.owner", b"secrets-test")
    os.chmod(m.join("dir", "b.txt"), 0o600)
    with open(m.join("dir", "b.txt"), "rb") as f:
        assert f.read() == b"second file\n" * 1000
    # A failed upload: its staged copy and journal stay in the cache directory.
    fail_uploads(server)
    fd = os.open(m.join("failed.txt"), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"this upload fails\n")
    expect_errno(errno.EIO, os.close, fd)
    assert any(line.startswith("failed failed.txt") for line in read_status(m)), read_status(m)
    staged = mountlib.staged_files(m.cache_dir)
    assert any(b"this upload fails" in data for data in staged.values()), "the failed upload left nothing staged"
    assert any(name.endswith(".json") for name in staged), sorted(staged)  # its journal
    for path, data in tree_bytes(m.cache_dir).items():  # staged copy and journal, before a retry takes them
        assert_no_secret(server, data, path)
    server.clear_faults()
    with open(m.join(".lakefs", "commit"), "w") as f:
        f.write("commit from the secrets test\n")
    assert mountlib.api_commit(server, repo, "main")["message"] == "commit from the secrets test"
    for path, values in all_xattrs(m.path).items():
        for name, value in values.items():
            assert_no_secret(server, value, "xattr %s of %s" % (name, path))
    for path, text in control_texts(m.path).items():
        assert_no_secret(server, text, path)
    for path, data in tree_bytes(m.cache_dir).items():
        assert_no_secret(server, data, path)
    log = (m.log() + m.stderr()).encode()
    assert b"LOOKUP" in log or b"unique:" in log, "no FUSE debug trace: -d was not in effect"
    assert_no_secret(server, log, "the log or the debug trace on stderr")
    assert m.unmount() == 0
    assert_no_secret(server, (m.log() + m.stderr()).encode(), "the log after unmount")


def run_lakefuse(args, env, stdin=None):
    return subprocess.run([LAKEFUSE] + args, capture_output=True, text=True, timeout=TOOL_TIMEOUT, env=env,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)


@pytest.mark.parametrize("source", ["file", "stdin", "argv"])
def test_doctor_takes_the_key_from_a_file_or_standard_input(server, tmp_path, source):
    home = tmp_path / "home"
    home.mkdir()
    env = mountlib.lakefuse_env(server, home, secret_access_key="")
    key = tmp_path / "key"
    key.write_text(server.secret_access_key + "\n")
    with open(key, "rb") as stdin:
        if source == "file":
            p = run_lakefuse(["doctor", "--secret-access-key-file", str(key)], env)
        elif source == "stdin":
            p = run_lakefuse(["doctor", "--secret-access-key-file", "-"], env, stdin=stdin)
        else:
            p = run_lakefuse(["doctor", "--secret-access-key", server.secret_access_key], env)
    assert p.returncode == 0, p.stderr
    assert "user:" in p.stdout
    assert_no_secret(server, (p.stdout + p.stderr).encode(), "doctor's output")
    assert (WARNING in p.stderr) == (source == "argv"), p.stderr


@pytest.mark.parametrize("case", ["empty-file", "two-lines", "missing-file", "empty-stdin", "flag-and-file"])
def test_a_bad_key_file_fails_fast(server, basic_repo, tmp_path, case):
    home = tmp_path / "home"
    home.mkdir()
    env = mountlib.lakefuse_env(server, home)  # a good key in the environment must not be used instead
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    key = tmp_path / "key"
    key.write_text({"empty-file": "", "two-lines": "%s\nsecond\n" % server.secret_access_key}.get(case, ""))
    args = ["--secret-access-key-file", "-" if case == "empty-stdin" else str(key)]
    if case == "missing-file":
        args = ["--secret-access-key-file", str(tmp_path / "no-such-key")]
    if case == "flag-and-file":
        args = ["--secret-access-key-file", str(key), "--secret-access-key", "other"]
    options = ["cache_dir=%s" % (tmp_path / "cache"), "log_file=%s" % (tmp_path / "log")]
    try:
        p = subprocess.run(mount_args("lakefs://%s/main" % basic_repo.name, mnt, options, foreground=False,
                                      args=args),
                           capture_output=True, text=True, timeout=MOUNT_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    finally:
        was_mounted = is_mounted(mnt)
        if was_mounted:
            fusermount_unmount(mnt)
    assert p.returncode != 0 and not was_mounted and "mounted" not in p.stdout
    lines = [line for line in p.stderr.splitlines() if not line.startswith(WARNING)]
    assert len(lines) == 1 and lines[0].startswith("lakefuse: "), p.stderr
    expected = {"missing-file": "no-such-key", "flag-and-file": "not both"}.get(case, "one non-empty line")
    assert expected in lines[0], lines[0]
    assert_no_secret(server, (p.stdout + p.stderr).encode(), "the error")


def core_files(directory, pid):
    return [n for n in os.listdir(directory) if n == "core" or n == "core.%d" % pid]


def kill_for_core(proc, cwd):
    """SIGQUIT (whose default action dumps core); returns (dumped, core files left in cwd)."""
    proc.send_signal(signal.SIGQUIT)
    _, status = os.waitpid(proc.pid, 0)
    proc.returncode = -signal.SIGQUIT  # reaped here: keep Popen from waiting again
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGQUIT, status
    return os.WCOREDUMP(status), core_files(cwd, proc.pid)


CORE_LIMIT = 256 << 20  # bounds what a dumpable daemon would write here


def allow_cores():
    resource.setrlimit(resource.RLIMIT_CORE, (CORE_LIMIT, CORE_LIMIT))
    # A shell without job control starts background jobs with SIGQUIT ignored and every process
    # inherits that: the SIGQUIT of kill_for_core would then be lost and its waitpid block forever.
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def test_the_daemon_never_dumps_core(server, basic_repo, tmp_path):
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    with open("/proc/sys/fs/suid_dumpable") as f:
        suid_dumpable = f.read().strip()
    if pattern.startswith("|") or "/" in pattern or suid_dumpable != "0":
        pytest.skip("core_pattern %r / suid_dumpable %s: cores are not written to the process's "
                    "directory here, or not-dumpable processes dump too" % (pattern, suid_dumpable))
    # Control: an ordinary process killed the same way does dump core here.
    control_dir = tmp_path / "control"
    control_dir.mkdir()
    sleeper = subprocess.Popen(["sleep", "600"], cwd=str(control_dir), preexec_fn=allow_cores)
    dumped, cores = kill_for_core(sleeper, str(control_dir))
    for name in cores:
        os.unlink(os.path.join(str(control_dir), name))
    if not dumped:
        pytest.skip("this machine writes no core dumps (control process did not dump)")
    home = tmp_path / "home"
    home.mkdir()
    env = mountlib.lakefuse_env(server, home)
    # The sanitizers would otherwise stop the dump themselves and hide the daemon's own setting.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":disable_coredump=0"
    work = tmp_path / "work"
    work.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    options = ["cache_dir=%s" % (tmp_path / "cache"), "log_file=%s" % (tmp_path / "log")]
    cmd = mount_args("lakefs://%s/main" % basic_repo.name, str(mnt), options)
    cmd[0] = os.path.abspath(cmd[0])  # it runs in work/, where a core would go
    proc = subprocess.Popen(cmd, cwd=str(work),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
                            preexec_fn=allow_cores)
    try:
        line = read_line(proc.stdout.fileno(), time.monotonic() + MOUNT_TIMEOUT)
        assert line.startswith(b"mounted "), line
        assert os.listdir(str(mnt))  # it serves, its memory holds the key
        cwd = os.readlink("/proc/%d/cwd" % proc.pid)
        dumped, cores = kill_for_core(proc, cwd)
        for name in cores:
            os.unlink(os.path.join(cwd, name))
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if is_mounted(str(mnt)):
            fusermount_unmount(str(mnt))
    assert not dumped and cores == [], "the daemon dumped core (its memory holds the key)"
