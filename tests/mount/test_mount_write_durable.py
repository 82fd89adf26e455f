"""The durable write path (src/writer.h's state machine): a failed upload followed by a good one is
never undone, a staged copy never overwrites an object another client changed, edits keep an
object's mode, owner and metadata, a file whose upload failed keeps reading (and growing from) the
bytes written, failed uploads are retried in the background, and an acknowledged unlink is never
undone by a staged copy. Faults come from the test server's /_test/faults."""
import pytest
import errno
import json
import os
import threading

from mountlib import (MIB, PatternStream, api_get, api_get_or_none, api_metadata, api_stat, api_stat_or_none,
                      close_quietly,
                      expected_mode, expect_errno, fail_uploads, fsync_path, kill_mount, poll, read_file, read_status,
                      staged_command, write_file)


def uri_of(repo, branch="main"):
    return "lakefs://%s/%s" % (repo, branch)


def staged_lines(cache_dir, env):
    p = staged_command("list", cache_dir, env)
    assert p.returncode == 0, p.stderr
    return [line for line in p.stdout.splitlines() if line.strip()]


def close_fails(path, data, flags=os.O_CREAT | os.O_WRONLY | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    os.write(fd, data)
    expect_errno(errno.EIO, os.close, fd)


@pytest.mark.presign
@pytest.mark.parametrize("path", ["staging", "direct"])
def test_a_failed_close_then_a_good_one_is_not_undone_by_the_next_mount(server, repo, mount, lakefuse_env, path):
    # Small files go in one uploadObject (direct), or with direct_upload_max=0 through the staging
    # flow, whose link the fault hits then.
    staging = path == "staging"
    m = mount(uri_of(repo), options=["direct_upload_max=0"] if staging else [])
    server.add_fault(operation="linkPhysicalAddress" if staging else "uploadObject", status=400,
                     message="injected refusal", count=1)
    close_fails(m.join("v.txt"), b"version 1")
    write_file(m.join("v.txt"), b"version 2")
    assert api_get(server, repo, "main", "v.txt") == b"version 2"
    assert read_status(m) == []
    assert m.unmount() == 0
    again = mount(uri_of(repo))
    assert api_get(server, repo, "main", "v.txt") == b"version 2"
    assert read_file(again.join("v.txt")) == b"version 2"
    assert "recovered v.txt" not in again.log() + again.stderr()
    assert staged_lines(again.cache_dir, lakefuse_env) == []


def test_a_stale_staged_copy_never_overwrites_what_another_client_wrote_after_a_crash(
        server, repo, mount, lakefuse_env, tmp_path):
    server.upload(repo, "main", "edited.txt", b"the base version\n")
    m = mount(uri_of(repo))
    edited = os.open(m.join("edited.txt"), os.O_RDWR)
    os.write(edited, b"LOCAL")  # an edit of the base, never closed
    created = os.open(m.join("created.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(created, b"a new file, never closed\n")
    untouched = os.open(m.join("mine.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(untouched, b"nobody else wrote this\n")
    assert kill_mount(m) == -9
    for fd in (edited, created, untouched):
        close_quietly(fd)
    # Another client changes both paths while the mount is down.
    server.upload(repo, "main", "edited.txt", b"another client's newer version\n")
    server.upload(repo, "main", "created.txt", b"another client created this\n")
    again = mount(uri_of(repo))
    assert api_get(server, repo, "main", "edited.txt") == b"another client's newer version\n"
    assert api_get(server, repo, "main", "created.txt") == b"another client created this\n"
    assert api_get(server, repo, "main", "mine.txt") == b"nobody else wrote this\n"
    # The local bytes are kept aside, listed, shown in status, and can be exported.
    listed = staged_lines(again.cache_dir, lakefuse_env)
    assert sorted(line.split("\t")[0] + " " + line.split("\t")[1].rsplit("/", 1)[1] for line in listed) == [
        "conflict created.txt", "conflict edited.txt"], listed
    status = read_status(again)
    assert sorted(line.split(":")[0] for line in status) == ["conflict created.txt", "conflict edited.txt"], status
    dest = tmp_path / "mine-of-edited.txt"
    p = staged_command("export", again.cache_dir, lakefuse_env, "edited.txt", str(dest))
    assert p.returncode == 0, p.stderr
    assert dest.read_bytes() == b"LOCALase version\n"  # "the b" overwritten in place
    # A later mount does not try again: a conflict waits for the user.
    assert again.unmount() == 0
    third = mount(uri_of(repo))
    assert read_file(third.join("edited.txt")) == b"another client's newer version\n"
    assert len(staged_lines(third.cache_dir, lakefuse_env)) == 2


def test_edits_keep_the_objects_mode_owner_and_metadata(server, repo, mount, tmp_path):
    m = mount(uri_of(repo))
    f = m.join("f")
    write_file(f, b"s\n")
    os.chmod(f, 0o600)
    os.chown(f, 1234, 2345)
    os.setxattr(f, "user.lakefs.meta.color", b"blue")
    with open(f, "ab") as out:  # echo x >> f
        out.write(b"x\n")
    with open(f, "r+b") as out:  # dd conv=notrunc
        out.seek(1)
        out.write(b"S")
    st = api_stat(server, repo, "main", "f")
    assert api_get(server, repo, "main", "f") == b"sSx\n"
    assert st["metadata"].get("color") == "blue", st["metadata"]
    assert expected_mode(st) == 0o600
    perms = json.loads(st["metadata"]["::lakefs::posix-permissions"])
    assert (perms["UID"], perms["GID"]) == (1234, 2345), perms
    # O_TRUNC rewrite keeps them too, and a fresh mount shows them.
    write_file(f, b"rewritten\n")
    st = api_stat(server, repo, "main", "f")
    assert st["metadata"].get("color") == "blue" and expected_mode(st) == 0o600, st["metadata"]
    fresh = mount(uri_of(repo), cache_dir=str(tmp_path / "fresh-cache"))
    s = os.stat(fresh.join("f"))
    assert (s.st_mode & 0o7777, s.st_uid, s.st_gid) == (0o600, 1234, 2345)
    assert os.getxattr(fresh.join("f"), "user.lakefs.meta.color") == b"blue"


@pytest.mark.presign
def test_stat_during_and_right_after_a_slow_upload_reports_what_was_written(server, repo, mount):
    m = mount(uri_of(repo))
    data = PatternStream(4 * MIB, 9).read()
    path = m.join("slow.bin")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    server.add_fault(operation="linkPhysicalAddress", latency_ms=3000, count=1)
    done = threading.Event()
    closer = threading.Thread(target=lambda: (os.close(fd), done.set()))
    closer.start()
    try:
        # Once the upload is under way, stat answers at once with the written size.
        poll(lambda: server.counts().get("presignedPut", 0) >= 1, timeout=60)
        assert os.stat(path).st_size == len(data)
        assert not done.is_set(), "the close returned before the slowed upload finished"
    finally:
        closer.join(timeout=120)
    assert done.is_set()
    assert os.stat(path).st_size == len(data)
    assert read_file(path) == data
    assert api_get(server, repo, "main", "slow.bin") == data


def test_a_failed_upload_keeps_the_written_bytes_and_appends_extend_them(server, repo, mount):
    server.upload(repo, "main", "log.txt", b"on the server\n")
    m = mount(uri_of(repo))
    path = m.join("log.txt")
    fail_uploads(server)
    close_fails(path, b"line 1\n", os.O_WRONLY | os.O_APPEND)
    # What the program sees is what it wrote, not the server's copy nor an empty file.
    assert os.stat(path).st_size == len(b"on the server\nline 1\n")
    assert read_file(path) == b"on the server\nline 1\n"
    assert [line.split(":")[0] for line in read_status(m)] == ["failed log.txt"]
    server.clear_faults()
    with open(path, "ab") as out:
        out.write(b"line 2\n")
    assert api_get(server, repo, "main", "log.txt") == b"on the server\nline 1\nline 2\n"
    assert read_status(m) == []  # the later upload fixed it: no stale failure


def test_failed_uploads_are_retried_in_the_background(server, repo, mount):
    m = mount(uri_of(repo))
    fail_uploads(server, count=1)  # each upload step fails once: the retries meet them in turn
    close_fails(m.join("later.txt"), b"uploaded by a retry\n")
    assert [line.split(":")[0] for line in read_status(m)] == ["failed later.txt"]
    # No program touches the file again: the mount retries on its own.
    poll(lambda: api_get_or_none(server, repo, "main", "later.txt") == b"uploaded by a retry\n", timeout=60)
    poll(lambda: read_status(m) == [], timeout=30)
    assert read_file(m.join("later.txt")) == b"uploaded by a retry\n"


def test_a_file_with_megabytes_of_metadata_is_journaled_and_uploaded_whole(server, repo, mount):
    """user.lakefs.meta.* values of 1.2 MB in all on a file being written: its journal entry (which
    holds them) reads back (.lakefs/status lists its failed upload; over 1 MiB it did not, and
    recovery could not read it either), and its upload sends them as JSON, not as request headers
    (which servers and proxies refuse over a few KiB): lakeFS ends with every value exact."""
    m = mount(uri_of(repo))
    values = {"big%02d" % i: ("%02d" % i) * 30000 for i in range(20)}
    fd = os.open(m.join("f.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"data\n")
        for k, v in values.items():
            os.setxattr(m.join("f.bin"), "user.lakefs.meta." + k, v.encode())
        fail_uploads(server)
    finally:
        expect_errno(errno.EIO, os.close, fd)
    assert [line.split(":")[0] for line in read_status(m)] == ["failed f.bin"]
    server.clear_faults()
    fsync_path(m.join("f.bin"))  # the next fsync tries again
    assert read_status(m) == []
    assert api_get(server, repo, "main", "f.bin") == b"data\n"
    meta = api_metadata(server, repo, "main", "f.bin")
    assert {k: v for k, v in meta.items() if k.startswith("big")} == values


def test_fsync_of_a_directory_reports_and_retries_its_failed_uploads(server, repo, mount):
    """Default options: a close uploads, so what fsync of a directory has left to make durable is an
    upload that failed and waits for its retry; fsync answers EIO while lakeFS refuses it and makes
    it once lakeFS takes it (the previous binary answered 0 at once, nothing uploaded)."""
    m = mount(uri_of(repo))
    os.mkdir(m.join("d"))
    fail_uploads(server)
    close_fails(m.join("d/f.txt"), b"kept through the outage\n")
    fd = os.open(m.join("d"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        expect_errno(errno.EIO, os.fsync, fd)
        server.clear_faults()
        os.fsync(fd)
        # Durable means on lakeFS when fsync returns; the background retry had no part in it.
        assert api_get(server, repo, "main", "d/f.txt") == b"kept through the outage\n"
    finally:
        os.close(fd)
    assert read_status(m) == []


def test_an_unlink_after_a_failed_upload_is_never_undone(server, repo, mount, lakefuse_env):
    server.upload(repo, "main", "gone.txt", b"old\n")
    m = mount(uri_of(repo))
    fail_uploads(server)
    close_fails(m.join("gone.txt"), b"new bytes that failed\n")
    close_fails(m.join("never.txt"), b"a new file that failed\n")
    os.unlink(m.join("gone.txt"))
    os.unlink(m.join("never.txt"))
    assert read_status(m) == []
    server.clear_faults()
    assert m.unmount() == 0  # the unmount's last upload attempt must not bring them back
    again = mount(uri_of(repo))
    assert api_get_or_none(server, repo, "main", "gone.txt") is None
    assert api_get_or_none(server, repo, "main", "never.txt") is None
    assert sorted(os.listdir(again.path)) == []
    assert staged_lines(again.cache_dir, lakefuse_env) == []
    # The name is free at once: a new file of that name starts empty.
    write_file(again.join("gone.txt"), b"fresh\n")
    assert api_get(server, repo, "main", "gone.txt") == b"fresh\n"


def test_a_newer_upload_supersedes_an_earlier_mounts_failure(server, repo, mount, lakefuse_env):
    m = mount(uri_of(repo))
    fail_uploads(server)
    close_fails(m.join("p.txt"), b"stale bytes from a dead mount\n")
    assert kill_mount(m) == -9
    again = mount(uri_of(repo))  # uploads still fail: the mount goes ahead, the entry is kept
    assert [line.split(":")[0] for line in read_status(again)] == ["failed p.txt"]
    server.clear_faults()
    write_file(again.join("p.txt"), b"newer bytes\n")
    assert api_get(server, repo, "main", "p.txt") == b"newer bytes\n"
    assert read_status(again) == []
    assert staged_lines(again.cache_dir, lakefuse_env) == []
    assert again.unmount() == 0
    third = mount(uri_of(repo))
    assert api_get(server, repo, "main", "p.txt") == b"newer bytes\n"
    assert "recovered" not in third.log() + third.stderr()


def test_a_retry_whose_answer_was_lost_is_not_taken_for_another_clients_create(server, repo, mount,
                                                                                lakefuse_env):
    """A new file's upload fails (500), so the background retry makes it a create that must not
    replace another client's object (If-None-Match: *). That create reaches lakeFS but its answer is
    lost; the client sends it again, and lakeFS refuses it (412): the object there is the first
    send's, these very bytes. It was taken for another client's create and the file kept aside as a
    conflict (the differential test's async_close finding under faults): the name then showed
    whatever the server held, and `lakefuse staged list` held the bytes. An object holding the
    file's bytes is its own: the file is uploaded, nothing is kept aside."""
    m = mount(uri_of(repo))
    data = b"created once, answered never\n"
    server.add_fault(operation="uploadObject", status=500, message="injected", count=1)
    # applied, then the answer cut after 10 bytes: the client sends the request again
    server.add_fault(operation="uploadObject", cut_after_bytes=10, count=1)
    close_fails(m.join("lost.txt"), data)
    assert poll(lambda: read_status(m) == [], timeout=60), (read_status(m), m.log()[-2000:])
    assert [f["applied"] for f in server.faults()] == [1, 1]  # both were met
    assert api_get(server, repo, "main", "lost.txt") == data
    assert read_file(m.join("lost.txt")) == data
    assert "aside" not in m.log(), m.log()[-2000:]
    assert staged_lines(m.cache_dir, lakefuse_env) == []


def client_mtime(server, repo, path):
    """The object's ::lakefs::client-mtime, or None (no such object or key)."""
    st = api_stat_or_none(server, repo, "main", path)
    return (st.get("metadata") or {}).get("::lakefs::client-mtime") if st else None


def test_a_utime_on_a_file_whose_upload_failed_is_what_the_background_retry_uploads(server, repo, mount):
    """FAILED file, utime (updateObjectUserMetadata failing too: nothing of it goes to the server
    now), then the background retry: the object it uploads carries the utime's mtime."""
    m = mount(uri_of(repo))
    fail_uploads(server, count=1)  # each upload step fails once: the retries meet them in turn
    close_fails(m.join("t.txt"), b"written, upload failed\n")
    server.add_fault(operation="updateObjectUserMetadata", status=500, message="injected", count=100000)
    os.utime(m.join("t.txt"), (1500000000, 1500000000))  # the staged copy's: no server call
    assert int(os.stat(m.join("t.txt")).st_mtime) == 1500000000
    assert poll(lambda: client_mtime(server, repo, "t.txt") == "1500000000", timeout=60), \
        api_stat_or_none(server, repo, "main", "t.txt")
    assert api_get(server, repo, "main", "t.txt") == b"written, upload failed\n"
    poll(lambda: read_status(m) == [], timeout=30)
    assert read_status(m) == []
    assert int(os.stat(m.join("t.txt")).st_mtime) == 1500000000


@pytest.mark.presign
def test_a_retry_that_finds_its_bytes_already_there_still_records_the_utime(server, repo, mount):
    """FAILED new file, chmod and utime on it, renamed, then the same bytes reach lakeFS at the new
    name another way (another client here; in the differential test under faults, a rename onto a
    file holding the same bytes): the retry uploads no bytes (they are there) but must not leave
    the object with attributes other than the file's - it records the utime's mtime (and the
    mode) on it, and the mount shows the same once the writer lets go of the file."""
    m = mount(uri_of(repo), options=["attr_timeout=0", "direct_upload_max=0"])
    # The mount's uploads (presigned) fail at their link, every time: only the retry's check of
    # what the server holds can end the failure.
    server.add_fault(operation="linkPhysicalAddress", status=500, message="injected", count=100000)
    data = b"the same bytes twice\n"
    close_fails(m.join("first.txt"), data)
    os.chmod(m.join("first.txt"), 0o640)
    os.utime(m.join("first.txt"), (1400000000, 1400000000))
    # Renamed, its failed tries at the old name are no longer its own at the new one.
    os.rename(m.join("first.txt"), m.join("same.txt"))
    assert int(os.stat(m.join("same.txt")).st_mtime) == 1400000000
    server.upload(repo, "main", "same.txt", data)  # another way in: no client-mtime, no permissions
    assert poll(lambda: read_status(m) == [], timeout=60), (read_status(m), m.log()[-2000:])
    assert poll(lambda: client_mtime(server, repo, "same.txt") == "1400000000", timeout=10), \
        api_stat(server, repo, "main", "same.txt")
    st = api_stat(server, repo, "main", "same.txt")
    assert expected_mode(st) & 0o7777 == 0o640
    assert api_get(server, repo, "main", "same.txt") == data
    assert int(os.stat(m.join("same.txt")).st_mtime) == 1400000000
    assert os.stat(m.join("same.txt")).st_mode & 0o7777 == 0o640


@pytest.mark.parametrize("edit", ["append", "chmod_group", "utime", "rename"])
def test_an_edit_by_a_later_mount_keeps_setuid_bits_it_does_not_show(server, repo, mount, tmp_path, edit):
    # Found by scripts/soak.sh (kill cycles): a mount shows setuid/setgid/sticky bits only on files it
    # wrote them on (README "The tree"); a later mount showed them masked and its edits wrote the
    # masked mode back, so lakeFS lost bits the object had.
    first = mount(uri_of(repo), cache_dir=str(tmp_path / "c1"))
    write_file(first.join("f"), b"s\n")
    os.chmod(first.join("f"), 0o6750)
    assert expected_mode(api_stat(server, repo, "main", "f")) == 0o6750
    assert first.unmount() == 0
    later = mount(uri_of(repo), cache_dir=str(tmp_path / "c2"))
    f = later.join("f")
    assert os.stat(f).st_mode & 0o7777 == 0o750  # not shown: this mount did not write them
    name = "f"
    if edit == "append":
        with open(f, "ab") as out:
            out.write(b"x\n")
    elif edit == "chmod_group":  # a chmod names every bit: it sets the mode the caller asks for
        os.chmod(f, 0o770)
    elif edit == "utime":
        os.utime(f, (1000000000, 1000000000))
    else:
        os.rename(f, later.join("g"))
        name = "g"
    want = 0o770 if edit == "chmod_group" else 0o6750
    assert expected_mode(api_stat(server, repo, "main", name)) == want


def append_lands_unanswered(server, repo, m, name, data):
    """An append to name whose upload lakeFS applies, its answer cut after 10 bytes, whose resend by
    the client fails (500), and whose check of what landed fails too (statObject 500): the close
    fails, the object holds the append."""
    before = api_get(server, repo, "main", name)
    server.add_fault(operation="uploadObject", cut_after_bytes=10, count=1)
    server.add_fault(operation="uploadObject", status=500, message="injected", count=1)
    server.add_fault(operation="statObject", status=500, message="injected", count=1)
    close_fails(m.join(name), data, flags=os.O_WRONLY | os.O_APPEND)
    assert api_get(server, repo, "main", name) == before + data
    assert [f["applied"] for f in server.faults()] == [1, 1, 1]


def test_a_close_whose_upload_landed_unanswered_succeeds(server, repo, mount):
    """The upload reaches lakeFS, its answer is cut, the client's resend fails: the close used to
    answer EIO for bytes lakeFS holds (and a background retry uploaded them again). The object now
    holds exactly the file's bytes, read with one statObject: the close succeeds, nothing is left
    to do, and the object keeps the file's attributes."""
    server.upload(repo, "main", "ok.txt", b"the base\n")
    m = mount(uri_of(repo))
    os.chmod(m.join("ok.txt"), 0o640)
    server.add_fault(operation="uploadObject", cut_after_bytes=10, count=1)
    server.add_fault(operation="uploadObject", status=500, message="injected", count=1)
    fd = os.open(m.join("ok.txt"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"appended\n")
    server.reset_counts()
    os.close(fd)  # no EIO
    counts = server.counts()
    assert [f["applied"] for f in server.faults()] == [1, 1]
    assert (counts.get("uploadObject"), counts.get("statObject")) == (2, 1), counts
    assert api_get(server, repo, "main", "ok.txt") == b"the base\nappended\n"
    assert read_status(m) == []
    assert expected_mode(api_stat(server, repo, "main", "ok.txt")) == 0o640
    assert read_file(m.join("ok.txt")) == b"the base\nappended\n"
    assert "failed" not in m.log(), m.log()[-2000:]


def assert_next_mount_uploads(server, repo, m, mount, env, name, want):
    """m unmounted with its uploads of name failing, faults cleared: the next mount's recovery
    uploads want (the file's newest bytes), keeps nothing aside."""
    assert read_file(m.join(name)) == want
    m.unmount()
    server.clear_faults()
    again = mount(uri_of(repo))
    assert api_get(server, repo, "main", name) == want, \
        (again.log() + again.stderr() + repr(staged_lines(again.cache_dir, env)))[-2000:]
    assert "aside" not in again.log() + again.stderr(), again.log()[-2000:]
    assert staged_lines(again.cache_dir, env) == []
    assert read_file(again.join(name)) == want


def test_an_edit_that_landed_unanswered_is_still_known_after_many_failed_uploads(server, repo, mount,
                                                                                 lakefuse_env):
    """An edit's upload reaches lakeFS but its answer is cut, and the resend fails: the object now
    holds that edit (the file's own attempt), not the base the file was opened on. The next version
    then fails again and again (closes, fsyncs, background retries). The writer kept the checksums
    of the last 8 attempts, one per failed try, repeats included, so the landed attempt was pushed
    out, and the conditional upload afterwards (a background retry, or the next mount's recovery)
    took its own object for another client's change and kept the newest bytes aside (the
    differential test's async_close finding under faults, seed 28100). The next mount uploads
    them."""
    server.upload(repo, "main", "e.txt", b"the base\n")
    m = mount(uri_of(repo))
    append_lands_unanswered(server, repo, m, "e.txt", b"edit one\n")
    fail_uploads(server)
    close_fails(m.join("e.txt"), b"edit two\n", flags=os.O_WRONLY | os.O_APPEND)
    for _ in range(12):  # the same bytes failing again: each try used to take a place in the list
        fd = os.open(m.join("e.txt"), os.O_WRONLY)
        try:
            expect_errno(errno.EIO, os.fsync, fd)
        finally:
            close_quietly(fd)
    assert "aside" not in m.log(), m.log()[-2000:]
    assert_next_mount_uploads(server, repo, m, mount, lakefuse_env, "e.txt",
                              b"the base\nedit one\nedit two\n")


@pytest.mark.parametrize("status", [400, 500])
def test_many_failed_versions_do_not_push_out_an_attempt_that_landed(server, repo, mount, lakefuse_env,
                                                                     status):
    """As above, but the later versions are each a new one (a program appending and fsyncing while
    lakeFS fails them): 40 versions, more than the writer keeps checksums of. A refused request
    (400) changed nothing, so it cannot be the object there later: only tries that may have reached
    lakeFS are remembered. A 500 may have come after the work was done, so it is remembered, and
    when the list is full the oldest quarter stays (an outage's first failure is the likeliest to
    have landed). Either way the landed attempt is still known at the next mount."""
    server.upload(repo, "main", "log.txt", b"the base\n")
    m = mount(uri_of(repo))
    append_lands_unanswered(server, repo, m, "log.txt", b"line 0\n")
    fail_uploads(server, status=status, message="injected failure")
    fd = os.open(m.join("log.txt"), os.O_WRONLY | os.O_APPEND)
    try:
        for i in range(1, 41):
            os.write(fd, b"line %d\n" % i)
            expect_errno(errno.EIO, os.fsync, fd)
    finally:
        close_quietly(fd)
    assert_next_mount_uploads(server, repo, m, mount, lakefuse_env, "log.txt",
                              b"the base\n" + b"".join(b"line %d\n" % i for i in range(41)))
