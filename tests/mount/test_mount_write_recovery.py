"""Nothing handed to the mount is lost: a kill -9 in the middle of writes, or uploads the server
refuses, leave staged files with a journal in the cache dir; the next mount of the branch with the
same cache dir uploads them (logging "recovered") before it says "mounted", or refuses to mount
(pointing at `lakefuse staged discard`) while they cannot be uploaded. A failed upload makes close
and fsync fail with EIO and shows in .lakefs/status. Faults come from the test server's
/_test/faults: a plain 500 is not retried by the client, so a close fails at once."""
import errno
import json
import os
import subprocess

import pytest

from mountlib import (MOUNT_TIMEOUT, PatternStream, api_get, api_get_or_none, close_quietly, expect_errno,
                      fail_uploads, fusermount_unmount, is_mounted, kill_mount, mount_args, poll, read_file,
                      read_status, staged_command, staged_files, write_file)


def uri_of(repo, branch="main"):
    return "lakefs://%s/%s" % (repo, branch)


def recovered_lines(m, path):
    """The log lines (log file or stderr) saying path was recovered; polled briefly, as log writes
    may trail the "mounted" line."""
    return poll(lambda: [line for line in (m.log() + m.stderr()).splitlines()
                         if "recovered" in line and path in line], timeout=10)


def staged_lines(cache_dir, env):
    p = staged_command("list", cache_dir, env)
    assert p.returncode == 0, p.stderr
    return [line for line in p.stdout.splitlines() if line.strip()]


def failed_close(m, rel, data):
    """Writes data to a new file rel and closes it while uploads fail: fsync and close give EIO."""
    fd = os.open(m.join(rel), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, data)
        expect_errno(errno.EIO, os.fsync, fd)
    finally:
        expect_errno(errno.EIO, os.close, fd)  # the descriptor is released either way


def test_status_lists_pending_files_and_is_empty_when_all_is_uploaded(server, repo, mount):
    m = mount(uri_of(repo))
    assert read_status(m) == []
    fd = os.open(m.join("new.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"not yet uploaded\n")
        assert read_status(m) == ["pending new.txt"]
    finally:
        os.close(fd)
    assert read_status(m) == []
    assert api_get(server, repo, "main", "new.txt") == b"not yet uploaded\n"
    with pytest.raises(OSError):  # read-only
        open(m.join(".lakefs", "status"), "wb").close()
    assert read_status(m) == []


def test_failed_upload_is_eio_is_kept_and_is_recovered_by_the_next_mount(server, repo, mount, lakefuse_env):
    m = mount(uri_of(repo))
    data = PatternStream(300 * 1024 + 9, 71).read()
    os.mkdir(m.join("out"))
    fail_uploads(server)
    failed_close(m, "out/result.bin", data)
    assert api_get_or_none(server, repo, "main", "out/result.bin") is None
    status = read_status(m)
    assert len(status) == 1 and status[0].startswith("failed out/result.bin: "), status
    # The staged copy is kept in the cache dir.
    assert data in staged_files(m.cache_dir).values()
    assert kill_mount(m) == -9
    server.clear_faults()
    # Same cache dir (the mount fixture's default): recovered before "mounted".
    again = mount(uri_of(repo))
    assert api_get(server, repo, "main", "out/result.bin") == data
    assert recovered_lines(again, "out/result.bin"), again.log()[-2000:]
    assert read_status(again) == []
    assert read_file(again.join("out", "result.bin")) == data
    assert data not in staged_files(again.cache_dir).values()
    assert staged_lines(again.cache_dir, lakefuse_env) == []


def test_unrecoverable_staged_files_do_not_block_the_mount_and_are_handled_one_by_one(
        server, repo, mount, lakefuse_env, tmp_path):
    m = mount(uri_of(repo))
    cache = m.cache_dir
    fail_uploads(server)
    failed_close(m, "lost.bin", b"the server never took this\n")
    failed_close(m, "other.bin", b"nor this\n")
    assert kill_mount(m) == -9
    # Uploads still fail: the next mount goes ahead, says what it kept, and shows it.
    again = mount(uri_of(repo))
    assert "lost.bin" in again.stderr() and "staged list" in again.stderr(), again.stderr()
    status = read_status(again)
    assert sorted(line.split(":")[0] for line in status) == ["failed lost.bin", "failed other.bin"], status
    listed = staged_lines(cache, lakefuse_env)
    assert len(listed) == 2 and all(line.startswith("failed\t") for line in listed), listed
    assert any(all(word in line for word in (repo, "main", "lost.bin")) for line in listed), listed
    assert again.unmount() == 0
    server.clear_faults()
    # One at a time: export a copy of one, discard it, the other stays.
    dest = tmp_path / "exported.bin"
    e = staged_command("export", cache, lakefuse_env, "lost.bin", str(dest))
    assert e.returncode == 0, e.stderr
    assert dest.read_bytes() == b"the server never took this\n"
    d = staged_command("discard", cache, lakefuse_env, "lakefs://%s/main/lost.bin" % repo)
    assert d.returncode == 0 and "discarded 1" in d.stdout, (d.stdout, d.stderr)
    listed = staged_lines(cache, lakefuse_env)
    assert len(listed) == 1 and "other.bin" in listed[0], listed
    # Now that uploads work, the next mount recovers the one left.
    last = mount(uri_of(repo))
    assert api_get_or_none(server, repo, "main", "lost.bin") is None
    assert api_get(server, repo, "main", "other.bin") == b"nor this\n"
    assert recovered_lines(last, "other.bin"), last.log()[-2000:]
    assert staged_lines(cache, lakefuse_env) == []


def test_staged_list_quotes_a_name_or_reason_that_would_break_its_lines(server, repo, mount, lakefuse_env):
    """`lakefuse staged list` is a line per staged file, tab-separated: a path holding a newline or a
    tab, or a server's message holding one, is written quoted (as .lakefs/status does), so the
    listing still has one line per file and four fields in each."""
    m = mount(uri_of(repo))
    cache = m.cache_dir
    fail_uploads(server, message="refused\nfailed\tforged")
    failed_close(m, "odd\nname\tx.bin", b"kept\n")
    failed_close(m, "plain.bin", b"kept too\n")
    assert kill_mount(m) == -9
    listed = sorted(staged_lines(cache, lakefuse_env))
    assert len(listed) == 2 and all(len(line.split("\t")) == 4 for line in listed), listed
    odd, plain = listed
    assert odd.split("\t")[1] == '"lakefs://%s/main/odd\\nname\\tx.bin"' % repo, odd
    assert plain.split("\t")[1] == "lakefs://%s/main/plain.bin" % repo, plain
    assert all(line.split("\t")[3].startswith('"') and "\\nfailed\\tforged" in line.split("\t")[3]
               for line in listed), listed
    server.clear_faults()
    for path in ("odd\nname\tx.bin", "plain.bin"):
        d = staged_command("discard", cache, lakefuse_env, path)
        assert d.returncode == 0 and "discarded 1" in d.stdout, (d.stdout, d.stderr)

def test_kill_9_in_the_middle_of_writes_loses_nothing_that_was_closed(server, repo, mount, lakefuse_env):
    server.upload(repo, "main", "existing.txt", b"old content that will be replaced\n")
    m = mount(uri_of(repo))
    closed = {}
    os.makedirs(m.join("run", "parts"))
    for i in range(6):
        rel = "run/parts/part-%d.bin" % i if i % 2 else "run/closed-%d.bin" % i
        closed[rel] = PatternStream(64 * 1024 * i + 100 + i, 80 + i).read()
        write_file(m.join(rel), closed[rel])
    closed["existing.txt"] = b"new content\n"
    write_file(m.join("existing.txt"), closed["existing.txt"])
    # Still open at the kill: data written, never closed.
    still_open, fds = {}, []
    for i in range(3):
        rel = "run/open-%d.bin" % i
        still_open[rel] = PatternStream(200 * 1024 + i, 90 + i).read()
        fd = os.open(m.join(rel), os.O_CREAT | os.O_WRONLY, 0o644)
        fds.append(fd)
        os.write(fd, still_open[rel])
    # fsync'd, then written more.
    synced, more = PatternStream(100 * 1024, 95).read(), PatternStream(30 * 1024, 96).read()
    fd = os.open(m.join("run/synced.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    fds.append(fd)
    os.write(fd, synced)
    os.fsync(fd)
    assert api_get(server, repo, "main", "run/synced.bin") == synced
    os.write(fd, more)

    assert kill_mount(m) == -9
    for fd in fds:
        close_quietly(fd)
    again = mount(uri_of(repo))
    # Every file whose close returned 0 is on the branch with its bytes.
    for rel, data in closed.items():
        assert api_get_or_none(server, repo, "main", rel) == data, rel
        assert read_file(again.join(rel)) == data, rel
    # Files open at the kill may be there; if so, as a prefix of what was written, and logged.
    for rel, data in still_open.items():
        got = api_get_or_none(server, repo, "main", rel)
        if got is not None:
            assert data.startswith(got), "%s: %d bytes that are not a prefix of what was written" % (rel, len(got))
            assert recovered_lines(again, rel), again.log()[-2000:]
    got = api_get(server, repo, "main", "run/synced.bin")
    assert got.startswith(synced) and (synced + more).startswith(got), len(got)
    # Nothing is left behind for a later mount.
    assert read_status(again) == []
    assert staged_lines(again.cache_dir, lakefuse_env) == []


def test_kill_9_keeps_what_an_open_new_file_was_given_without_fsync(server, repo, mount, lakefuse_env):
    """A new file's journal and the attribute changes of a file never uploaded are written without
    fsync (writer.c journal_note): a kill -9 keeps the page cache, so the next mount still recovers
    the file with its bytes and the mode, owner, mtime and user metadata acknowledged before the
    kill, as tar x leaves them (fchown, fchmod, futimens, then close: here the close never comes)."""
    m = mount(uri_of(repo))
    data = PatternStream(70 * 1024 + 5, 97).read()
    fd = os.open(m.join("untarred.c"), os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, data)
    os.fchown(fd, os.getuid(), os.getgid())
    os.fchmod(fd, 0o640)
    os.utime(fd, (1500000000, 1500000000))
    os.setxattr(m.join("untarred.c"), "user.lakefs.meta.origin", b"tar")
    assert kill_mount(m) == -9
    close_quietly(fd)
    again = mount(uri_of(repo))
    assert recovered_lines(again, "untarred.c"), again.log()[-2000:]
    assert api_get(server, repo, "main", "untarred.c") == data
    md = server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo,
                    params={"path": "untarred.c", "user_metadata": "true"}).json()["metadata"]
    assert md["::lakefs::client-mtime"] == "1500000000"
    assert json.loads(md["::lakefs::posix-permissions"]) == {"UID": os.getuid(), "GID": os.getgid(),
                                                              "Mode": 0o100640}
    assert md["origin"] == "tar"
    st = os.stat(again.join("untarred.c"))
    assert (st.st_mode & 0o7777, int(st.st_mtime), st.st_size) == (0o640, 1500000000, len(data))
    assert read_status(again) == []
    assert staged_lines(again.cache_dir, lakefuse_env) == []


def test_a_mount_with_another_cache_dir_does_not_recover(server, repo, mount, lakefuse_env, tmp_path):
    m = mount(uri_of(repo))
    fail_uploads(server)
    failed_close(m, "f.txt", b"staged here\n")
    assert kill_mount(m) == -9
    server.clear_faults()
    other = mount(uri_of(repo), cache_dir=str(tmp_path / "other-cache"))
    assert api_get_or_none(server, repo, "main", "f.txt") is None
    assert os.listdir(other.path) == []
    # The orphan waits in its own cache dir.
    listed = staged_lines(m.cache_dir, lakefuse_env)
    assert len(listed) == 1 and "f.txt" in listed[0], listed
    assert staged_command("discard", m.cache_dir, lakefuse_env).returncode == 0


def as_if_from_an_earlier_boot(cache_dir, rel):
    """Rewrites the journal of rel's staged file with another kernel boot's id, as a power loss
    leaves a new file's entry that was never fsync'd (writer.c settle)."""
    hits = []
    for dirpath, _, names in os.walk(os.path.join(cache_dir, "staging")):
        for n in names:
            if not n.endswith(".json") or n.startswith("."):
                continue
            p = os.path.join(dirpath, n)
            with open(p) as f:
                entry = json.load(f)
            if entry.get("path") == rel:
                assert entry["state"] == "pending" and not entry.get("sealed"), entry
                entry["boot_id"] = "00000000-0000-0000-0000-000000000000"
                with open(p, "w") as f:
                    json.dump(entry, f)
                hits.append(p)
    assert len(hits) == 1, hits


def test_untrusted_staged_bytes_are_dropped_only_when_the_server_holds_them(server, repo, mount, lakefuse_env):
    """A new file's journal is never fsync'd, not even its CLEAN state after the close's upload, so
    a power loss can bring back an unsealed PENDING entry of an earlier boot for a file lakeFS has.
    The next mount drops such an entry when the object holds exactly its bytes (nothing to keep),
    and keeps it aside, never uploaded, when it does not (the bytes may be torn)."""
    m = mount(uri_of(repo))
    same, other = PatternStream(9000, 41).read(), PatternStream(9000, 42).read()
    fds = []
    for rel in ("same.bin", "other.bin"):
        fd = os.open(m.join(rel), os.O_CREAT | os.O_WRONLY, 0o644)
        fds.append(fd)
        os.write(fd, same)
    assert kill_mount(m) == -9
    for fd in fds:
        close_quietly(fd)
    server.upload(repo, "main", "same.bin", same)    # the upload that made it before the power loss
    server.upload(repo, "main", "other.bin", other)  # another client's bytes
    for rel in ("same.bin", "other.bin"):
        as_if_from_an_earlier_boot(m.cache_dir, rel)
    again = mount(uri_of(repo))
    assert recovered_lines(again, "same.bin"), again.log()[-2000:]
    assert api_get(server, repo, "main", "same.bin") == same
    assert api_get(server, repo, "main", "other.bin") == other  # never overwritten
    listed = staged_lines(again.cache_dir, lakefuse_env)
    assert len(listed) == 1 and listed[0].startswith("conflict\t") and "other.bin" in listed[0], listed
