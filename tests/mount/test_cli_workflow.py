"""The lakeFS workflow from a directory (issue 5): the getting-started walkthrough of the lakeFS Python
SDK docs (create a branch, add a file, see it in status, commit with metadata, see an empty status,
diff against main, merge into main, see the file, check the commits through the API) replayed with
shell tools only on a mount, then with the lakefuse CLI (commit, status, diff, merge, branch,
umount), which reaches lakeFS only through the mount's control files: it runs in an environment
with no LAKECTL_* and no ~/.lakectl.yaml. Exit codes and messages on failure, and `lakefuse umount`
waiting for uploads in flight (not for failed ones: it then leaves the mount up and exits 1)."""
import errno
import json
import os
import shlex
import subprocess
import threading

from mountlib import (api_branches, api_commit, api_commit_id, api_create_branch, api_get, cli_ok, control_lines,
                      control_path, expect_errno, fsync_path, is_mounted, lakefuse_cli, poll, read_file, sh,
                      status_lines, write_file, api_get_or_none, LAKEFUSE, TOOL_TIMEOUT)

FOREVER = "attr_timeout=3600"
HELLO = b"Hello from lakefuse!\n"


def q(path):
    return shlex.quote(str(path))


def out(script):
    return sh(script).stdout.decode()


def test_getting_started_walkthrough_with_shell_tools(server, repo, mount, tmp_path):
    main_head = api_commit_id(server, repo, "main")
    local = tmp_path / "test.txt"
    local.write_bytes(HELLO)
    m = mount("lakefs://" + repo, options=[FOREVER])
    mnt = q(m.path)
    assert out("ls %s" % mnt) == "main\n"
    assert out("ls -A %s/main" % mnt) == ""  # main's tree, cached for an hour from here on

    # Create a branch.
    sh("mkdir %s/experiment" % mnt)
    assert api_branches(server, repo) == {"experiment": main_head, "main": main_head}
    assert out("ls %s" % mnt) == "experiment\nmain\n"
    # Add a file and see it in the status.
    sh("cp %s %s/experiment/test.txt" % (q(local), mnt))
    assert out("cat %s/experiment/.lakefs/status" % mnt) == "A test.txt\n"
    # Commit with metadata; the status is empty.
    sh("echo '{\"message\":\"Add test file\",\"metadata\":{\"using\":\"lakefuse\"}}' > %s/experiment/.lakefs/commit"
       % mnt)
    assert out("cat %s/experiment/.lakefs/status" % mnt) == ""
    # Diff against main.
    assert out("cat %s/experiment/.lakefs/diff/main" % mnt) == "A test.txt\n"
    # Merge into main; the file is there.
    sh("echo experiment > %s/main/.lakefs/merge" % mnt)
    assert out("cat %s/main/test.txt" % mnt) == HELLO.decode()
    assert out("ls %s/main" % mnt) == "test.txt\n"

    # The commits through the API.
    commit = api_commit(server, repo, "experiment")
    assert commit["message"] == "Add test file"
    assert commit["metadata"] == {"using": "lakefuse"}
    assert commit["parents"] == [main_head]
    assert api_get(server, repo, commit["id"], "test.txt") == HELLO
    merged = api_commit(server, repo, "main")
    assert merged["parents"] == [main_head, commit["id"]]
    assert api_get(server, repo, "main", "test.txt") == HELLO
    assert out("cat %s/main/.lakefs/head" % mnt) == merged["id"] + "\n"
    assert out("getfattr --only-values -n user.lakefs.commit_id %s/experiment" % mnt) == commit["id"]
    assert out("cat %s/experiment/.lakefs/diff/main" % mnt) == ""  # merged: nothing left to bring


def test_getting_started_walkthrough_with_the_cli(server, repo, mount, tmp_path, bare_env):
    server.upload(repo, "main", "data/seed.csv", b"id\n1\n")
    main_head = server.commit(repo, "main", "seed")["id"]
    local = tmp_path / "test.txt"
    local.write_bytes(HELLO)
    m = mount("lakefs://" + repo, options=[FOREVER])
    main, experiment = m.join("main"), m.join("experiment")
    assert os.listdir(m.path) == ["main"]

    cli_ok(["branch", "create", main, "experiment"], bare_env)
    assert api_branches(server, repo) == {"experiment": main_head, "main": main_head}
    sh("cp %s %s" % (q(local), q(m.join("experiment", "data", "test.txt"))))
    # DIR may be the ref root or any directory inside it.
    for where in (experiment, m.join("experiment", "data")):
        assert cli_ok(["status", where], bare_env).splitlines() == ["A data/test.txt"], where
    printed = cli_ok(["commit", m.join("experiment", "data"), "-m", "Add test file",
                      "--meta", "using=lakefuse-cli", "--meta", "step=2"], bare_env)
    commit = api_commit(server, repo, "experiment")
    assert printed.strip() == commit["id"]
    assert commit["message"] == "Add test file"
    assert commit["metadata"] == {"using": "lakefuse-cli", "step": "2"}
    assert commit["parents"] == [main_head]
    assert cli_ok(["status", experiment], bare_env).strip() == ""
    assert cli_ok(["diff", experiment, "main"], bare_env).splitlines() == ["A data/test.txt"]
    printed = cli_ok(["merge", "experiment", main], bare_env)
    merged = api_commit(server, repo, "main")
    assert printed.strip() == merged["id"]
    assert merged["parents"] == [main_head, commit["id"]]
    assert read_file(m.join("main", "data", "test.txt")) == HELLO
    assert sorted(os.listdir(m.join("main", "data"))) == ["seed.csv", "test.txt"]

    # Once more on the same branch, committed with setfattr, merged from inside main's tree.
    write_file(m.join("experiment", "data", "second.txt"), b"second\n")
    sh("setfattr -n user.lakefs.commit -v 'Second file' %s" % q(experiment))
    second = api_commit(server, repo, "experiment")
    assert second["message"] == "Second file" and second["parents"] == [commit["id"]]
    assert cli_ok(["diff", m.join("experiment", "data"), "main"], bare_env).splitlines() == ["A data/second.txt"]
    assert cli_ok(["diff", experiment, "main"], bare_env).splitlines() == \
        control_lines(control_path(m, "diff/main", "experiment"))
    printed = cli_ok(["merge", "experiment", m.join("main", "data")], bare_env)
    merged2 = api_commit(server, repo, "main")
    assert printed.strip() == merged2["id"] and merged2["parents"] == [merged["id"], second["id"]]
    assert read_file(m.join("main", "data", "second.txt")) == b"second\n"

    cli_ok(["branch", "delete", main, "experiment"], bare_env)
    assert sorted(api_branches(server, repo)) == ["main"]


def test_cli_failures_exit_non_zero_with_a_reason(server, repo, mount, bare_env, tmp_path):
    for path in ("both.txt", "untouched.txt"):
        server.upload(repo, "main", path, b"base\n")
    server.commit(repo, "main", "base")
    api_create_branch(server, repo, "feature", "main")
    server.upload(repo, "feature", "both.txt", b"feature's version\n")
    server.commit(repo, "feature", "feature edits")
    server.upload(repo, "main", "both.txt", b"main's version\n")
    head = server.commit(repo, "main", "main edits")["id"]
    m = mount("lakefs://" + repo, options=[FOREVER])
    main = m.join("main")

    p = lakefuse_cli(["commit", main, "-m", "nothing here"], bare_env)
    assert p.returncode == 1 and "nothing to commit" in p.stdout + p.stderr, (p.returncode, p.stdout, p.stderr)
    p = lakefuse_cli(["merge", "feature", main], bare_env)
    assert p.returncode == 1 and "both.txt" in p.stderr, (p.returncode, p.stdout, p.stderr)
    assert "untouched.txt" not in p.stderr
    assert api_commit_id(server, repo, "main") == head
    p = lakefuse_cli(["diff", main, "no-such-ref"], bare_env)
    assert p.returncode != 0 and p.stderr.strip(), (p.returncode, p.stderr)
    p = lakefuse_cli(["branch", "create", main, "feature"], bare_env)
    assert p.returncode != 0 and p.stderr.strip(), (p.returncode, p.stderr)
    p = lakefuse_cli(["branch", "delete", main, "never-was"], bare_env)
    assert p.returncode != 0 and p.stderr.strip(), (p.returncode, p.stderr)
    # Not a lakefuse mount: nothing to talk to.
    elsewhere = tmp_path / "plain-dir"
    elsewhere.mkdir()
    p = lakefuse_cli(["status", elsewhere], bare_env)
    assert p.returncode != 0 and p.stderr.strip(), (p.returncode, p.stderr)
    assert sorted(api_branches(server, repo)) == ["feature", "main"]
    assert api_commit_id(server, repo, "main") == head


def test_umount_waits_for_uploads_in_flight(server, repo, mount, bare_env):
    m = mount("lakefs://%s/main" % repo)
    write_file(m.join("done.txt"), b"already uploaded\n")
    # The next upload takes a while on the server: its close is still in flight when umount starts.
    for op in ("linkPhysicalAddress", "uploadObject"):
        server.add_fault(operation=op, latency_ms=2000, count=1)
    data = b"uploaded while umount waits\n" * 1000
    errors, closed = [], threading.Event()

    def writer():
        try:
            write_file(m.join("late.bin"), data)
        except OSError as e:
            errors.append(e)
        closed.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert poll(lambda: "pending late.bin" in status_lines(m), timeout=30), status_lines(m)
        p = lakefuse_cli(["umount", m.path], bare_env)
        # umount returned only after the upload was done and the file closed.
        assert closed.is_set(), "lakefuse umount returned while an upload was still in flight"
    finally:
        thread.join(timeout=120)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert errors == []
    assert not is_mounted(m.path)
    assert m.unmount() == 0  # the daemon exited cleanly
    assert api_get(server, repo, "main", "late.bin") == data
    assert api_get(server, repo, "main", "done.txt") == b"already uploaded\n"


def test_umount_waits_for_a_file_still_open_for_writing_and_says_so(server, repo, mount, bare_env):
    """A program holding a file open for writing, written since its last close: its upload comes at
    its close, so umount waits for it, and says so (once, on a non-terminal stderr) rather than
    waiting in silence; the close lets the upload and the unmount go on. .lakefs/stats counts the
    descriptor (open_for_writing). The holder is a shell of its own: a descriptor of this process
    would be closed (and its file uploaded, a FLUSH) in every child this test starts."""
    m = mount("lakefs://%s/main" % repo)
    data = "written, not yet closed\n" * 100
    holder = subprocess.Popen(["sh", "-c", 'exec 3>"$1"; printf %s "$2" >&3; echo ready; read x', "sh",
                               m.join("held.bin"), data], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc = None
    try:
        assert holder.stdout.readline() == "ready\n"
        stats = json.loads(read_file(control_path(m, "stats")))
        assert (stats["pending_uploads"], stats["open_for_writing"]) == (1, 1), stats
        proc = subprocess.Popen([LAKEFUSE, "umount", m.path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=bare_env)
        line = proc.stderr.readline()  # blocks until umount says what it waits for
        assert "waiting for 1 file(s) still open for writing" in line and m.path in line, line
        assert proc.poll() is None and is_mounted(m.path)
        assert api_get_or_none(server, repo, "main", "held.bin") is None  # nothing sent before the close
    finally:
        holder.communicate("\n", timeout=TOOL_TIMEOUT)  # the shell exits: its descriptor closes
        if proc is not None:
            out, err = proc.communicate(timeout=TOOL_TIMEOUT)
    assert holder.returncode == 0
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert not is_mounted(m.path)
    assert m.unmount() == 0
    assert api_get(server, repo, "main", "held.bin") == data.encode()


def test_umount_of_an_idle_mount(server, repo, mount, bare_env):
    m = mount("lakefs://" + repo)
    write_file(m.join("main", "f.txt"), b"f\n")
    assert status_lines(m, "main") == ["A f.txt"]
    p = lakefuse_cli(["umount", m.path], bare_env)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert not is_mounted(m.path)
    assert m.unmount() == 0
    assert api_get(server, repo, "main", "f.txt") == b"f\n"


def test_umount_with_failed_uploads_keeps_the_mount_and_says_so(server, repo, mount, bare_env):
    """A failed upload is not waited for (its retries back off, an outage can last) and not
    unmounted over in silence: umount exits 1, names the count, and the mount stays up retrying.
    Once lakeFS answers again and the upload is retried, umount unmounts."""
    m = mount("lakefs://%s/main" % repo)
    data = b"kept while lakeFS refuses\n" * 100
    for op in ("uploadObject", "getPhysicalAddress", "linkPhysicalAddress"):
        server.add_fault(operation=op, status=503, message="injected outage", count=100000)
    expect_errno(errno.EIO, write_file, m.join("f.bin"), data)
    assert any(line.startswith("failed f.bin:") for line in status_lines(m)), status_lines(m)
    stats = json.loads(read_file(control_path(m, "stats")))
    assert (stats["pending_uploads"], stats["failed_uploads"], stats["conflicts"]) == (0, 1, 0), stats
    p = lakefuse_cli(["umount", m.path], bare_env)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "1 upload(s) failed" in p.stderr and m.path in p.stderr, p.stderr
    assert is_mounted(m.path)
    assert read_file(m.join("f.bin")) == data  # still served from the staged copy
    server.clear_faults()
    fsync_path(m.join("f.bin"))  # the next fsync tries again
    p = lakefuse_cli(["umount", m.path], bare_env)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert not is_mounted(m.path)
    assert m.unmount() == 0
    assert api_get(server, repo, "main", "f.bin") == data
