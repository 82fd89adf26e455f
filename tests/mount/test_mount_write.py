"""Writable branches, file by file: a file written through the mount is uploaded once, when its last
writer closes it (or on fsync), and is then an uncommitted change on the branch that the API serves
with lakectl's ::lakefs::client-mtime; full POSIX I/O on open files (random writes, append,
truncate, reading unflushed writes, several descriptors); chmod/utimens/symlink as metadata only;
unlink, mkdir (a directory marker) and rmdir; read-your-writes in the mount at once; branch
directories writable in every URI form while fixed refs and -o ro answer EROFS; the errnos of
what a lakeFS branch cannot hold (hard links, foreign xattrs, chown by non-root).
Every test works on a fresh repository (the `repo` fixture), never on the shared seeded ones."""
import errno
import json
import os
import stat
import time

import pytest

import mountlib
from mountlib import (MIB, PatternStream, api_get, api_get_or_none, api_list_objects, api_metadata, api_paths,
                      api_stat, api_stat_or_none, data_upload_calls, errno_as_user, expect_errno, expected_mode,
                      pattern, read_file, sh, uploads, write_file, control_json, control_path, control_write,
                      fsync_path)

MTIME_KEY = "::lakefs::client-mtime"
PERMISSIONS_KEY = "::lakefs::posix-permissions"
SYMLINK_KEY = "::lakefs::symlink-target"


def branch(mount, repo, *options, ref="main"):
    """A mount of lakefs://repo/ref whose caches never expire during a test, so whatever the mount
    shows after a write comes from the write, not from a refetch."""
    return mount("lakefs://%s/%s" % (repo, ref), options=["attr_timeout=3600"] + list(options))


def client_mtime(server, repo, path, ref="main"):
    value = api_metadata(server, repo, ref, path).get(MTIME_KEY)
    assert value is not None and value.isdigit(), "%s: %s is %r" % (path, MTIME_KEY, value)
    return int(value)


# --- upload on close and fsync --------------------------------------------------------------------------

def test_new_file_is_uploaded_once_when_closed(server, repo, mount):
    m = branch(mount, repo)
    data = pattern(300 * 1024 + 7, 1)
    server.reset_counts()
    t0 = int(time.time())
    with open(m.join("new.bin"), "wb") as f:
        for i in range(0, len(data), 32 * 1024):
            f.write(data[i:i + 32 * 1024])
            f.flush()  # a write(2) per chunk: none of them may upload
        assert uploads(server.counts()) == 0, server.counts()
        assert api_get_or_none(server, repo, "main", "new.bin") is None
    t1 = int(time.time())
    # close(2) returned: the upload is done and another client sees the object.
    assert uploads(server.counts()) == 1, server.counts()
    assert api_get(server, repo, "main", "new.bin") == data
    st = api_stat(server, repo, "main", "new.bin")
    assert st["size_bytes"] == len(data)
    assert t0 - 2 <= client_mtime(server, repo, "new.bin") <= t1 + 2
    assert os.stat(m.join("new.bin")).st_size == len(data)
    assert read_file(m.join("new.bin")) == data
    assert os.listdir(m.path) == ["new.bin"]
    # A remount shows the object with lakectl's mtime.
    assert m.unmount() == 0
    again = branch(mount, repo)
    assert int(os.stat(again.join("new.bin")).st_mtime) == client_mtime(server, repo, "new.bin")
    assert read_file(again.join("new.bin")) == data


def test_files_in_new_directories_and_empty_files(server, repo, mount):
    m = branch(mount, repo)
    os.makedirs(m.join("a", "b"))
    write_file(m.join("a", "b", "c.txt"), b"nested\n")
    write_file(m.join("empty"), b"")
    sh("touch %s" % m.join("a", "touched"))
    assert api_get(server, repo, "main", "a/b/c.txt") == b"nested\n"
    for path in ("empty", "a/touched"):
        st = api_stat_or_none(server, repo, "main", path)
        assert st is not None and st["size_bytes"] == 0, path
    assert sorted(os.listdir(m.join("a"))) == ["b", "touched"]


def test_fsync_uploads_while_the_file_stays_open(server, repo, mount):
    m = branch(mount, repo)
    first, second = pattern(100 * 1024, 2), pattern(50 * 1024 + 1, 3)
    fd = os.open(m.join("log.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, first)
        server.reset_counts()
        os.fsync(fd)
        assert uploads(server.counts()) == 1, server.counts()
        assert api_get(server, repo, "main", "log.bin") == first
        os.write(fd, second)
        os.fdatasync(fd)
        assert api_get(server, repo, "main", "log.bin") == first + second
        os.write(fd, b"tail")
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "log.bin") == first + second + b"tail"


def test_large_file_round_trip(server, repo, mount):
    m = branch(mount, repo)
    stream = PatternStream(21 * MIB + 12345, 21)
    with open(m.join("large.bin"), "wb") as f:
        while True:
            chunk = stream.read(MIB)
            if not chunk:
                break
            f.write(chunk)
    digest = stream.sha256.hexdigest()
    assert api_stat(server, repo, "main", "large.bin")["size_bytes"] == stream.size
    assert mountlib.sha256(api_get(server, repo, "main", "large.bin")) == digest
    assert mountlib.sha256(read_file(m.join("large.bin"))) == digest


# --- POSIX I/O on open files ----------------------------------------------------------------------------

def test_opening_an_existing_object_without_o_trunc_keeps_its_content(server, repo, mount):
    base = pattern(2 * MIB + 3, 4)
    server.upload(repo, "main", "obj.bin", base)
    server.upload(repo, "main", "other.bin", base)
    m = branch(mount, repo)
    fd = os.open(m.join("obj.bin"), os.O_WRONLY)
    try:
        os.pwrite(fd, b"XYZ", 1000)
        os.pwrite(fd, b"end", len(base) - 1)  # overwrites the last byte and extends by two
    finally:
        os.close(fd)
    want = bytearray(base)
    want[1000:1003] = b"XYZ"
    want[len(base) - 1:] = b"end"
    assert api_get(server, repo, "main", "obj.bin") == bytes(want)
    # O_RDWR reads the old content through the write descriptor.
    fd = os.open(m.join("other.bin"), os.O_RDWR)
    try:
        assert os.pread(fd, 4096, MIB - 100) == base[MIB - 100:MIB - 100 + 4096]
        os.pwrite(fd, b"!", 0)
        assert os.pread(fd, 10, 0) == b"!" + base[1:10]
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "other.bin") == b"!" + base[1:]
    # O_TRUNC replaces.
    write_file(m.join("obj.bin"), b"short\n")
    assert api_get(server, repo, "main", "obj.bin") == b"short\n"


def test_truncate_a_closed_file_shrinks_and_extends(server, repo, mount):
    base = pattern(300 * 1024, 5)
    server.upload(repo, "main", "t.bin", base)
    m = branch(mount, repo)
    os.truncate(m.join("t.bin"), 1000)
    assert os.stat(m.join("t.bin")).st_size == 1000
    assert api_get(server, repo, "main", "t.bin") == base[:1000]
    os.truncate(m.join("t.bin"), 5000)
    assert api_get(server, repo, "main", "t.bin") == base[:1000] + bytes(4000)
    assert read_file(m.join("t.bin")) == base[:1000] + bytes(4000)
    os.truncate(m.join("t.bin"), 0)
    assert api_get(server, repo, "main", "t.bin") == b""


def test_append_modes(server, repo, mount):
    server.upload(repo, "main", "log.txt", b"line0\n")
    m = branch(mount, repo)
    with open(m.join("log.txt"), "ab") as f:
        f.write(b"line1\n")
    fd = os.open(m.join("log.txt"), os.O_WRONLY | os.O_APPEND)
    try:
        os.lseek(fd, 0, os.SEEK_SET)  # O_APPEND writes at the end wherever the offset is
        os.write(fd, b"line2\n")
        os.write(fd, b"line3\n")
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "log.txt") == b"line0\nline1\nline2\nline3\n"
    # A new file created by O_APPEND.
    fd = os.open(m.join("new.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"a")
        os.write(fd, b"b")
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "new.log") == b"ab"


def test_read_your_unflushed_writes_with_several_descriptors(server, repo, mount):
    m = branch(mount, repo)
    path = m.join("shared.bin")
    a, b = pattern(100 * 1024, 6), pattern(20 * 1024, 7)
    fd1 = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fd2 = None
    try:
        os.write(fd1, a)
        assert os.pread(fd1, len(a), 0) == a
        fd2 = os.open(path, os.O_RDWR)
        assert os.pread(fd2, len(a), 0) == a
        os.pwrite(fd2, b, 50000)
        model = bytearray(a)
        model[50000:50000 + len(b)] = b
        assert os.pread(fd1, len(model), 0) == bytes(model)
        assert os.stat(path).st_size == len(model)
        assert read_file(path) == bytes(model)  # a third, read-only descriptor
        os.ftruncate(fd1, 70000)
        del model[70000:]
        assert os.fstat(fd2).st_size == 70000 and os.stat(path).st_size == 70000
        assert os.pread(fd2, 100000, 0) == bytes(model)
        os.close(fd1)
        fd1 = None
        os.pwrite(fd2, b"more", 80000)  # leaves a hole
        model += bytes(80000 - len(model)) + b"more"
        assert os.pread(fd2, 100000, 0) == bytes(model)
    finally:
        for fd in (fd1, fd2):
            if fd is not None:
                os.close(fd)
    assert api_get(server, repo, "main", "shared.bin") == bytes(model)
    assert read_file(path) == bytes(model)


# --- metadata operations --------------------------------------------------------------------------------

def test_chmod_updates_metadata_without_reuploading(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("f.txt"), b"chmod me\n")
    mtime = client_mtime(server, repo, "f.txt")
    checksum = api_stat(server, repo, "main", "f.txt")["checksum"]
    server.reset_counts()
    os.chmod(m.join("f.txt"), 0o640)
    counted = server.counts()
    assert counted.get("updateObjectUserMetadata", 0) >= 1, counted
    assert data_upload_calls(counted) == {}, counted
    assert stat.S_IMODE(os.stat(m.join("f.txt")).st_mode) == 0o640
    st = api_stat(server, repo, "main", "f.txt")
    permissions = json.loads(st["metadata"][PERMISSIONS_KEY])
    assert {"UID", "GID", "Mode"} <= set(permissions), permissions
    assert expected_mode(st) == 0o640
    assert st["metadata"].get(MTIME_KEY) == str(mtime), "chmod dropped the client mtime"
    assert st["checksum"] == checksum
    assert api_get(server, repo, "main", "f.txt") == b"chmod me\n"
    os.chmod(m.join("f.txt"), 0o755)
    assert expected_mode(api_stat(server, repo, "main", "f.txt")) == 0o755
    assert m.unmount() == 0
    again = branch(mount, repo)
    assert stat.S_IMODE(os.stat(again.join("f.txt")).st_mode) == 0o755


def test_utimens_sets_client_mtime_without_reuploading(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("f.txt"), b"touch me\n")
    os.chmod(m.join("f.txt"), 0o600)
    server.reset_counts()
    os.utime(m.join("f.txt"), (1500000000, 1500000000))
    counted = server.counts()
    assert counted.get("updateObjectUserMetadata", 0) >= 1, counted
    assert data_upload_calls(counted) == {}, counted
    assert int(os.stat(m.join("f.txt")).st_mtime) == 1500000000
    st = api_stat(server, repo, "main", "f.txt")
    assert st["metadata"].get(MTIME_KEY) == "1500000000"
    assert expected_mode(st) == 0o600, "utimens dropped the permissions"
    sh("touch -m -d @1400000000 %s" % m.join("f.txt"))
    assert client_mtime(server, repo, "f.txt") == 1400000000
    assert api_get(server, repo, "main", "f.txt") == b"touch me\n"
    assert m.unmount() == 0
    again = branch(mount, repo)
    st = os.stat(again.join("f.txt"))
    assert int(st.st_mtime) == 1400000000 and stat.S_IMODE(st.st_mode) == 0o600


def test_symlink_is_an_empty_object_with_its_target_in_metadata(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("target.txt"), b"pointed at\n")
    os.symlink("target.txt", m.join("link"))
    os.mkdir(m.join("d"))
    os.symlink("../some/where/else", m.join("d", "rel"))
    assert os.readlink(m.join("link")) == "target.txt"
    assert stat.S_ISLNK(os.lstat(m.join("link")).st_mode)
    assert read_file(m.join("link")) == b"pointed at\n"  # followed by the kernel
    st = api_stat(server, repo, "main", "link")
    assert st["size_bytes"] == 0 and st["metadata"].get(SYMLINK_KEY) == "target.txt"
    assert api_metadata(server, repo, "main", "d/rel").get(SYMLINK_KEY) == "../some/where/else"
    assert m.unmount() == 0
    again = branch(mount, repo)
    assert os.readlink(again.join("link")) == "target.txt"
    assert os.readlink(again.join("d", "rel")) == "../some/where/else"


def test_what_a_branch_cannot_hold_answers_a_clear_errno(server, repo, mount):
    # allow_other (so default_permissions): an unprivileged process may use the mount, and the
    # kernel checks ownership the way it does on a local file system.
    m = branch(mount, repo, "allow_other")
    write_file(m.join("f.txt"), b"data\n")
    server.reset_counts()
    expect_errno(errno.EPERM, os.link, m.join("f.txt"), m.join("hard"))
    expect_errno(errno.ENOTSUP, os.setxattr, m.join("f.txt"), "user.comment", b"hello")
    expect_errno(errno.ENOTSUP, os.setxattr, m.join("f.txt"), "user.mime_type", b"text/plain")
    # chown by a non-root user: EPERM (the tests run as root; the descriptor is opened by root and
    # used by a child that gave up root, so no directory above the mount needs to be searchable).
    fd = os.open(m.join("f.txt"), os.O_RDONLY)
    try:
        assert errno_as_user(65534, os.fchown, fd, 65534, 65534) == errno.EPERM
    finally:
        os.close(fd)
    assert data_upload_calls(server.counts()) == {}, server.counts()
    assert api_paths(server, repo, "main") == ["f.txt"]
    assert api_get(server, repo, "main", "f.txt") == b"data\n"
    assert sorted(os.listdir(m.path)) == ["f.txt"]


# --- names: unlink, mkdir, rmdir --------------------------------------------------------------------------

def test_unlink_deletes_the_object(server, repo, mount):
    server.upload(repo, "main", "committed.txt", b"one\n")
    server.commit(repo, "main", "one")
    server.upload(repo, "main", "dir/staged.txt", b"two\n")
    m = branch(mount, repo)
    write_file(m.join("written.txt"), b"three\n")
    for rel in ("committed.txt", "dir/staged.txt", "written.txt"):
        os.unlink(m.join(rel))
        assert api_stat_or_none(server, repo, "main", rel) is None, rel
        expect_errno(errno.ENOENT, os.stat, m.join(rel))
    assert os.listdir(m.path) == [] or os.listdir(m.path) == ["dir"]
    expect_errno(errno.ENOENT, os.unlink, m.join("never-there"))
    assert [o["path"] for o in api_list_objects(server, repo, "main") if not o["path"].endswith("/")] == []


def test_a_delete_applied_with_every_answer_lost_is_done(server, repo, mount):
    """lakeFS deletes the object but no answer reaches the mount (every try): one statObject says it
    is gone, so unlink, rmdir and a file rename succeed instead of answering EIO for a done job (a
    rename's file being written would otherwise stay behind under its old name)."""
    m = branch(mount, repo)
    write_file(m.join("moved.txt"), b"two\n")
    # (unlink and rmdir delete through the same fs_delete_key; each try costs the client's backoff)
    server.add_fault(operation="deleteObject", drop_response=True, count=1000)
    server.reset_counts()
    try:
        os.rename(m.join("moved.txt"), m.join("new.txt"))
    finally:
        server.clear_faults()
    assert server.counts().get("statObject", 0) == 1, server.counts()
    assert api_paths(server, repo, "main") == ["new.txt"]
    assert api_get(server, repo, "main", "new.txt") == b"two\n"
    assert os.listdir(m.path) == ["new.txt"]
    # Not gone: the error stands.
    server.add_fault(operation="deleteObject", status=500, message="injected refusal", count=1000)
    try:
        expect_errno(errno.EIO, os.unlink, m.join("new.txt"))
    finally:
        server.clear_faults()
    assert api_get(server, repo, "main", "new.txt") == b"two\n"


def test_an_attribute_change_applied_with_every_answer_lost_is_done_and_an_open_file_keeps_it(server, repo, mount):
    """lakeFS applies updateObjectUserMetadata but no answer reaches the mount (every try): one
    statObject shows the object holding what was sent, so the removexattr succeeds. It once answered
    EIO: the mount then showed the key gone (its listing read again), and a descriptor still open for
    writing uploaded with the attributes it knew, bringing the removed key back (the differential
    soak's seed 109901 on real lakeFS). Not applied (refused every time): the error stands."""
    m = branch(mount, repo)
    p = m.join("f.txt")
    write_file(p, b"one\n")
    os.setxattr(p, "user.lakefs.meta.owner", b"A")
    fd = os.open(p, os.O_RDWR)
    try:
        server.add_fault(operation="updateObjectUserMetadata", drop_response=True, count=1000)
        server.reset_counts()
        try:
            os.removexattr(p, "user.lakefs.meta.owner")
        finally:
            server.clear_faults()
        assert server.counts().get("statObject", 0) == 1, server.counts()
        assert "owner" not in api_metadata(server, repo, "main", "f.txt")
        os.write(fd, b"two\n")
    finally:
        os.close(fd)  # uploads with the attributes the file holds now
    assert api_get(server, repo, "main", "f.txt") == b"two\n"
    assert "owner" not in api_metadata(server, repo, "main", "f.txt")
    assert "user.lakefs.meta.owner" not in os.listxattr(p)
    os.setxattr(p, "user.lakefs.meta.stage", b"1")
    server.add_fault(operation="updateObjectUserMetadata", status=500, message="injected refusal", count=1000)
    try:
        expect_errno(errno.EIO, os.removexattr, p, "user.lakefs.meta.stage")
    finally:
        server.clear_faults()
    assert api_metadata(server, repo, "main", "f.txt").get("stage") == "1"


def test_setxattr_create_and_replace_flags_and_removing_a_missing_key(server, repo, mount):
    """XATTR_CREATE of a key that is there answers EEXIST, XATTR_REPLACE or removexattr of one that
    is not answers ENODATA, and none of them changes anything (the flags were ignored: a CREATE
    overwrote the value, a REPLACE added the key). On files, on a file open with staged bytes, and
    on directories."""
    m = branch(mount, repo)
    write_file(m.join("f.txt"), b"x")
    os.mkdir(m.join("d"))
    staged = os.open(m.join("s.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(staged, b"pending")
        for name in ("f.txt", "d", "s.txt"):
            p = m.join(name)
            os.setxattr(p, "user.lakefs.meta.k", b"1", os.XATTR_CREATE)
            expect_errno(errno.EEXIST, os.setxattr, p, "user.lakefs.meta.k", b"2", os.XATTR_CREATE)
            expect_errno(errno.ENODATA, os.setxattr, p, "user.lakefs.meta.n", b"3", os.XATTR_REPLACE)
            expect_errno(errno.ENODATA, os.removexattr, p, "user.lakefs.meta.n")
            assert os.getxattr(p, "user.lakefs.meta.k") == b"1", name
            expect_errno(errno.ENODATA, os.getxattr, p, "user.lakefs.meta.n")
            os.setxattr(p, "user.lakefs.meta.k", b"4", os.XATTR_REPLACE)
            assert os.getxattr(p, "user.lakefs.meta.k") == b"4", name
        sh("setfattr -n user.lakefs.meta.tool -v t %s" % m.join("f.txt"))
    finally:
        os.close(staged)
    for key in ("f.txt", "d/", "s.txt"):
        md = api_metadata(server, repo, "main", key)
        assert md.get("k") == "4" and "n" not in md, (key, md)
    assert api_metadata(server, repo, "main", "f.txt").get("tool") == "t"


def test_mkdir_makes_a_marker_and_rmdir_removes_it(server, repo, mount):
    m = branch(mount, repo)
    os.mkdir(m.join("d"))
    assert stat.S_ISDIR(os.stat(m.join("d")).st_mode) and os.listdir(m.join("d")) == []
    assert os.listdir(m.path) == ["d"]
    marker = api_stat_or_none(server, repo, "main", "d/")
    assert marker is not None and marker["size_bytes"] == 0
    os.makedirs(m.join("d", "e", "f"))
    write_file(m.join("d", "file.txt"), b"x")
    assert {"d/", "d/e/", "d/e/f/", "d/file.txt"} <= set(api_paths(server, repo, "main"))
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.join("d"))
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.join("d", "e"))
    expect_errno(errno.EEXIST, os.mkdir, m.join("d", "e"))
    # Empty directories survive a remount: they are markers on the branch.
    assert m.unmount() == 0
    m = branch(mount, repo)
    assert sorted(os.listdir(m.join("d"))) == ["e", "file.txt"]
    assert os.listdir(m.join("d", "e")) == ["f"] and os.listdir(m.join("d", "e", "f")) == []
    os.rmdir(m.join("d", "e", "f"))
    os.rmdir(m.join("d", "e"))
    assert os.listdir(m.join("d")) == ["file.txt"]
    os.unlink(m.join("d", "file.txt"))
    os.rmdir(m.join("d"))
    expect_errno(errno.ENOENT, os.stat, m.join("d"))
    assert os.listdir(m.path) == []
    assert api_paths(server, repo, "main") == []


def test_a_marker_that_holds_bytes_is_never_deleted_with_its_directory(server, repo, mount):
    """An object "d/" with bytes (written through the API) is directory d's marker, its bytes shown
    by no file. rmdir of d, a rename onto d and `rm -rf d` would delete them unseen: each answers
    ENOTEMPTY with a log line and the object stays; the same with an empty marker goes through."""
    server.upload(repo, "main", "d/", b"bytes in a marker\n")
    server.upload(repo, "main", "e/", b"")
    server.upload(repo, "main", "t/", b"bytes in another marker\n")
    m = branch(mount, repo)
    assert sorted(os.listdir(m.path)) == ["d", "e", "t"]
    assert os.listdir(m.join("d")) == []
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.join("d"))
    assert api_get(server, repo, "main", "d/") == b"bytes in a marker\n"
    lines = [line for line in m.log().splitlines() if "'d/' holds bytes" in line]
    assert len(lines) == 1 and "ENOTEMPTY" in lines[0], m.log()[-2000:]
    os.mkdir(m.join("src"))
    expect_errno(errno.ENOTEMPTY, os.rename, m.join("src"), m.join("t"))
    assert api_get(server, repo, "main", "t/") == b"bytes in another marker\n"
    os.rename(m.join("src"), m.join("e"))  # an empty marker is replaced
    assert sorted(api_paths(server, repo, "main")) == ["d/", "e/", "t/"]
    write_file(m.join("d", "f.txt"), b"f\n")
    assert sh("rm -rf %s" % m.join("d"), ok=False).returncode != 0
    assert api_paths(server, repo, "main", "d/") == ["d/"]
    assert api_get(server, repo, "main", "d/") == b"bytes in a marker\n"
    os.rmdir(m.join("e"))
    assert api_get_or_none(server, repo, "main", "e/") is None


@pytest.mark.parametrize("options", [(), ("async_close",)], ids=["default", "async_close"])
def test_directory_attribute_changes_keep_the_markers_bytes_and_user_metadata(server, repo, mount, options):
    """chmod, chown and utime of a directory change its marker's lakectl keys and nothing else:
    user metadata another client gave the marker stays through every change (a second change
    started from this mount's own entry for the marker, which had no metadata, and removed them),
    and so do the bytes of a marker that holds some (with -o async_close the change uploaded an
    empty marker over them; after a first change rmdir deleted them)."""
    server.upload(repo, "main", "tagged/", b"", headers={"X-Lakefs-Meta-Team": "alpha"})
    server.upload(repo, "main", "tagged/f", b"f")
    server.upload(repo, "main", "held/", b"bytes in a marker\n", headers={"X-Lakefs-Meta-Team": "beta"})
    server.upload(repo, "main", "held/f", b"f")
    m = branch(mount, repo, *options)
    for d in ("tagged", "held"):
        os.chmod(m.join(d), 0o711)
        os.chown(m.join(d), 1234, 5678)
        os.utime(m.join(d), (1600000000, 1600000000))
        os.chmod(m.join(d), 0o750)
        fsync_path(m.join(d), os.O_RDONLY | os.O_DIRECTORY)  # with -o async_close: once lakeFS has them
    for d, team in (("tagged", "alpha"), ("held", "beta")):
        meta = api_metadata(server, repo, "main", d + "/")
        assert meta["team"] == team, meta
        assert json.loads(meta[PERMISSIONS_KEY]) == {"UID": 1234, "GID": 5678, "Mode": stat.S_IFDIR | 0o750}
        assert meta[MTIME_KEY] == "1600000000"
    assert api_get(server, repo, "main", "tagged/") == b""
    assert api_get(server, repo, "main", "held/") == b"bytes in a marker\n"
    st = os.stat(m.join("held"))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)) == (0o750, 1234, 5678, 1600000000)
    os.unlink(m.join("held", "f"))
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.join("held"))
    assert api_get(server, repo, "main", "held/") == b"bytes in a marker\n"


def test_empty_objects_are_never_made_over_another_clients_object(server, repo, mount):
    """mkdir's marker, a symlink, a fifo and the marker a directory's first chmod makes are empty
    objects created with If-None-Match: *. Another client made objects at those names after this
    mount listed them (its caches never expire here): each was replaced by an empty object, the
    other client's bytes and metadata gone. Now mkdir, symlink and mkfifo answer EEXIST and leave
    the object as it is; the chmod goes onto the other client's marker, its bytes and keys kept."""
    server.upload(repo, "main", "prefix/f", b"f")
    m = branch(mount, repo)
    assert sorted(os.listdir(m.path)) == ["prefix"] and os.listdir(m.join("prefix")) == ["f"]
    theirs = {"made/": b"a marker with bytes\n", "link": b"their data\n", "fifo": b"their fifo's name\n",
              "prefix/": b"their marker\n"}
    for key, data in theirs.items():
        server.upload(repo, "main", key, data, headers={"X-Lakefs-Meta-Owner": "them"})
    expect_errno(errno.EEXIST, os.mkdir, m.join("made"))
    expect_errno(errno.EEXIST, os.symlink, "target", m.join("link"))
    expect_errno(errno.EEXIST, os.mkfifo, m.join("fifo"))
    os.chmod(m.join("prefix"), 0o700)
    for key, data in theirs.items():
        assert api_get(server, repo, "main", key) == data, key
        assert api_metadata(server, repo, "main", key)["owner"] == "them", key
    perms = json.loads(api_metadata(server, repo, "main", "prefix/")[PERMISSIONS_KEY])
    assert perms["Mode"] == stat.S_IFDIR | 0o700
    # the names list as lakeFS holds them
    assert read_file(m.join("link")) == b"their data\n"
    assert sorted(os.listdir(m.path)) == ["fifo", "link", "made", "prefix"]
    assert "another client made an object there" in m.log()


@pytest.mark.parametrize("fault", [dict(cut_after_bytes=10), dict(status=412)], ids=["answer_lost", "deleted_since"])
def test_a_refused_create_of_an_empty_object_that_is_not_another_clients_succeeds(server, repo, mount, fault):
    """answer_lost: the create reaches lakeFS, its answer is cut, the client sends it again and
    If-None-Match refuses it (412): the object there is exactly the one sent (empty, the same
    metadata), this create's own. deleted_since: If-None-Match refuses the create, and when the
    object is read back there is none (deleted in between): the create is sent again, once; it
    used to answer EEXIST for a name nothing holds. mkdir, symlink and mkfifo succeed."""
    m = branch(mount, repo)
    for name, make in (("d", lambda p: os.mkdir(p)), ("l", lambda p: os.symlink("t", p)),
                       ("p", lambda p: os.mkfifo(p))):
        server.add_fault(operation="uploadObject", count=1, **fault)
        make(m.join(name))
        assert [f["applied"] for f in server.faults()] == [1], name
        server.clear_faults()
    assert api_paths(server, repo, "main") == ["d/", "l", "p"]
    assert os.readlink(m.join("l")) == "t" and stat.S_ISFIFO(os.lstat(m.join("p")).st_mode)
    assert "another client" not in m.log()


def test_a_directory_stays_when_this_mount_removes_its_last_name(server, repo, mount):
    """lakeFS has no empty prefix: a directory that only the objects under it made (another
    client's upload, no marker) vanished once this mount removed its last name - by unlink, by a
    rename to another directory, by rmdir of its last subdirectory - at the next listing. A POSIX
    directory never goes with its last name: it gets a marker, with the mode and owner it showed,
    made once it is empty (one uploadObject), and not when something is left in it."""
    for key in ("u/a/f", "r/a/f", "d/a/sub/f", "keep/x", "keep/y"):
        server.upload(repo, "main", key, b"data\n")
    m = branch(mount, repo, "attr_timeout=0")  # every lookup lists lakeFS again
    server.reset_counts()
    os.unlink(m.join("u", "a", "f"))
    assert uploads(server.counts()) == 1, server.counts()
    os.rename(m.join("r", "a", "f"), m.join("moved"))
    os.unlink(m.join("d", "a", "sub", "f"))
    os.rmdir(m.join("d", "a", "sub"))
    server.reset_counts()
    os.unlink(m.join("keep", "x"))
    os.rename(m.join("moved"), m.join("moved2"))  # in its own directory
    assert uploads(server.counts()) == 0, server.counts()
    for d in ("u/a", "r/a", "d/a", "u", "r", "d"):
        assert stat.S_ISDIR(os.stat(m.join(d)).st_mode), d
    assert [os.listdir(m.join(d)) for d in ("u/a", "r/a", "d/a")] == [[], [], []]
    assert api_paths(server, repo, "main") == ["d/a/", "keep/y", "moved2", "r/a/", "u/a/"]
    perms = json.loads(api_metadata(server, repo, "main", "u/a/")[PERMISSIONS_KEY])
    assert perms["Mode"] == stat.S_IFDIR | 0o755 and oct(stat.S_IMODE(os.stat(m.join("u/a")).st_mode)) == "0o755"
    m.unmount()
    m = branch(mount, repo)
    assert sorted(os.listdir(m.path)) == ["d", "keep", "moved2", "r", "u"]
    os.rmdir(m.join("u", "a"))
    os.rmdir(m.join("u"))  # its marker was never needed: nothing was left in it
    assert "u/a/" not in api_paths(server, repo, "main")


def test_a_last_name_whose_directory_cannot_be_kept_is_not_removed(server, repo, mount):
    """The marker comes before the removal: when lakeFS refuses it, unlink, rename and rmdir fail
    with EIO and leave the name where it was (the directory with it), never a name gone with its
    directory."""
    for key in ("u/a/f", "r/a/f", "d/a/sub/f"):
        server.upload(repo, "main", key, b"data\n")
    m = branch(mount, repo)
    os.unlink(m.join("d", "a", "sub", "f"))  # d/a/sub gets its marker
    server.add_fault(operation="uploadObject", status=500, count=1000)
    expect_errno(errno.EIO, os.unlink, m.join("u", "a", "f"))
    expect_errno(errno.EIO, os.rename, m.join("r", "a", "f"), m.join("moved"))
    expect_errno(errno.EIO, os.rmdir, m.join("d", "a", "sub"))
    server.clear_faults()
    assert api_paths(server, repo, "main") == ["d/a/sub/", "r/a/f", "u/a/f"]
    assert [os.listdir(m.join(d)) for d in ("u/a", "r/a", "d/a")] == [["f"], ["f"], ["sub"]]
    os.unlink(m.join("u", "a", "f"))
    assert api_paths(server, repo, "main") == ["d/a/sub/", "r/a/f", "u/a/"]


def test_without_dir_markers_a_directory_lives_in_the_mount_until_rmdir(server, repo, mount):
    """-o nodir_markers: a directory made by mkdir, or emptied by this mount, is kept in the
    mount's memory (nothing on lakeFS); it used to vanish at the next listing (after attr_timeout).
    rename moves it, rmdir ends it."""
    server.upload(repo, "main", "p/q/f", b"data\n")
    m = branch(mount, repo, "dir_markers=false", "attr_timeout=0")
    os.makedirs(m.join("new", "deep", "er"))
    os.mkdir(m.join("other"))
    os.unlink(m.join("p", "q", "f"))
    assert sorted(os.listdir(m.path)) == ["new", "other", "p"]
    assert os.listdir(m.join("new", "deep")) == ["er"] and os.listdir(m.join("p")) == ["q"]
    os.rename(m.join("new"), m.join("other", "moved"))
    assert sorted(os.listdir(m.path)) == ["other", "p"]
    assert os.listdir(m.join("other", "moved", "deep")) == ["er"]
    write_file(m.join("other", "moved", "deep", "er", "x"), b"x\n")
    assert api_paths(server, repo, "main") == ["other/moved/deep/er/x"]
    os.unlink(m.join("other", "moved", "deep", "er", "x"))
    assert os.listdir(m.join("other", "moved", "deep")) == ["er"]
    expect_errno(errno.ENOTEMPTY, os.rmdir, m.join("other"))
    for d in ("other/moved/deep/er", "other/moved/deep", "other/moved", "other", "p/q", "p"):
        os.rmdir(m.join(d))
    assert os.listdir(m.path) == [] and api_paths(server, repo, "main") == []


def test_mkdir_without_dir_markers_is_local_to_the_mount(server, repo, mount):
    m = branch(mount, repo, "dir_markers=false")
    os.mkdir(m.join("d"))
    assert stat.S_ISDIR(os.stat(m.join("d")).st_mode) and os.listdir(m.path) == ["d"]
    assert api_paths(server, repo, "main") == []
    write_file(m.join("d", "x"), b"x\n")
    assert api_paths(server, repo, "main") == ["d/x"]


# --- read-your-writes -------------------------------------------------------------------------------------

def test_the_mount_shows_its_own_changes_at_once(server, repo, mount):
    server.upload(repo, "main", "old.txt", b"old\n")
    m = branch(mount, repo)
    assert os.listdir(m.path) == ["old.txt"]  # listed and cached for an hour
    expect_errno(errno.ENOENT, os.stat, m.join("new.txt"))  # a cached negative answer
    fd = os.open(m.join("new.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        assert sorted(os.listdir(m.path)) == ["new.txt", "old.txt"]
        os.write(fd, b"12345")
        assert os.stat(m.join("new.txt")).st_size == 5
    finally:
        os.close(fd)
    assert os.stat(m.join("new.txt")).st_size == 5
    write_file(m.join("old.txt"), b"replaced, longer\n")
    assert os.stat(m.join("old.txt")).st_size == len(b"replaced, longer\n")
    assert read_file(m.join("old.txt")) == b"replaced, longer\n"
    os.mkdir(m.join("dir"))
    assert sorted(os.listdir(m.path)) == ["dir", "new.txt", "old.txt"]
    os.unlink(m.join("old.txt"))
    assert sorted(os.listdir(m.path)) == ["dir", "new.txt"]
    expect_errno(errno.ENOENT, os.stat, m.join("old.txt"))
    assert sorted(sh("ls -1A %s" % m.path).stdout.decode().split()) == ["dir", "new.txt"]


def test_writes_update_the_listing_cache_instead_of_relisting(server, repo, mount):
    server.upload(repo, "main", "sub/old.txt", b"old\n")
    m = branch(mount, repo)
    assert os.listdir(m.join("sub")) == ["old.txt"]
    server.reset_counts()
    write_file(m.join("sub", "new.txt"), b"new\n")
    write_file(m.join("sub", "old.txt"), b"old, replaced\n")
    assert sorted(os.listdir(m.join("sub"))) == ["new.txt", "old.txt"]
    assert os.stat(m.join("sub", "old.txt")).st_size == len(b"old, replaced\n")
    assert server.counts().get("listObjects", 0) == 0, server.counts()


# --- where writes are allowed -----------------------------------------------------------------------------

def test_branch_directories_are_writable_in_every_uri_form(server, repo, mount):
    mountlib.api_create_branch(server, repo, "dev", "main")
    server.upload(repo, "main", "sub/seed.txt", b"seed\n")
    c1 = server.commit(repo, "main", "seed")["id"]
    server.upload(repo, "main", "other.txt", b"other\n")
    c2 = server.commit(repo, "main", "other")["id"]  # main~1 = c1, main@ = c2: both hold sub/seed.txt
    top = mount("lakefs://")
    write_file(top.join(repo, "main", "from-root.txt"), b"root\n")
    assert api_get(server, repo, "main", "from-root.txt") == b"root\n"
    at_repo = mount("lakefs://" + repo)
    write_file(at_repo.join("dev", "from-repo.txt"), b"repo\n")
    assert api_get(server, repo, "dev", "from-repo.txt") == b"repo\n"
    assert api_get_or_none(server, repo, "main", "from-repo.txt") is None
    sub = mount("lakefs://%s/main/sub" % repo)
    write_file(sub.join("from-prefix.txt"), b"prefix\n")
    assert api_get(server, repo, "main", "sub/from-prefix.txt") == b"prefix\n"
    assert sorted(os.listdir(sub.path)) == ["from-prefix.txt", "seed.txt"]
    # Fixed refs next to them stay read-only.
    for ref in (c1, c2[:12], "main~1", "main@"):
        expect_errno(errno.EROFS, open, at_repo.join(ref, "x"), "wb")
        expect_errno(errno.EROFS, os.unlink, at_repo.join(ref, "sub", "seed.txt"))
        expect_errno(errno.EROFS, os.mkdir, at_repo.join(ref, "newdir"))
    assert mountlib.api_commit_id(server, repo, "main") == c2
    assert api_get(server, repo, c1, "sub/seed.txt") == b"seed\n"


@pytest.mark.parametrize("kind", ["commit", "tag", "main~1", "main@", "branch-ro"])
def test_fixed_refs_and_read_only_mounts_answer_erofs(server, repo, mount, kind):
    server.upload(repo, "main", "f.txt", b"committed\n")
    commit = server.commit(repo, "main", "one")["id"]
    mountlib.api_create_tag(server, repo, "v1", commit)
    server.upload(repo, "main", "f.txt", b"staged on main\n")
    ref = {"commit": commit, "tag": "v1", "main~1": "main~1", "main@": "main@", "branch-ro": "main"}[kind]
    if kind == "main~1":
        server.commit(repo, "main", "two")
    m = mount("lakefs://%s/%s" % (repo, ref), options=["ro"] if kind == "branch-ro" else [])
    before = read_file(m.join("f.txt"))
    server.reset_counts()
    expect_errno(errno.EROFS, open, m.join("f.txt"), "r+b")
    expect_errno(errno.EROFS, open, m.join("new.txt"), "wb")
    expect_errno(errno.EROFS, os.truncate, m.join("f.txt"), 0)
    expect_errno(errno.EROFS, os.unlink, m.join("f.txt"))
    expect_errno(errno.EROFS, os.mkdir, m.join("d"))
    expect_errno(errno.EROFS, os.rename, m.join("f.txt"), m.join("g.txt"))
    expect_errno(errno.EROFS, os.chmod, m.join("f.txt"), 0o600)
    expect_errno(errno.EROFS, os.utime, m.join("f.txt"), (0, 0))
    expect_errno(errno.EROFS, os.symlink, "f.txt", m.join("l"))
    counted = server.counts()
    assert not (set(counted) & mountlib.write_operation_ids()), counted
    assert read_file(m.join("f.txt")) == before
    assert api_get(server, repo, "main", "f.txt") == b"staged on main\n"


# --- a server without presign ---------------------------------------------------------------------------

def test_server_without_presign_gets_upload_object(lakefs_server_factory, mount, tmp_path):
    srv = lakefs_server_factory(extra_args=["--no-presign"])
    repo = srv.create_repo()
    home = tmp_path / "home-no-presign"
    home.mkdir()
    m = mount("lakefs://%s/main" % repo, env=mountlib.lakefuse_env(srv, home))
    data = pattern(2 * MIB + 11, 8)
    srv.reset_counts()
    write_file(m.join("f.bin"), data)
    counted = srv.counts()
    assert counted.get("uploadObject", 0) >= 1 and counted.get("presignedPut", 0) == 0, counted
    assert api_get(srv, repo, "main", "f.bin") == data
    os.rename(m.join("f.bin"), m.join("g.bin"))
    assert api_get(srv, repo, "main", "g.bin") == data
    assert api_get_or_none(srv, repo, "main", "f.bin") is None
    assert m.unmount() == 0
    assert srv.violations() == []



def test_shell_redirections_upload_once_at_the_last_close(server, repo, mount):
    """`>` dup2s the new file onto stdout and closes the original before writing: that close is not
    the last, so nothing (least of all an empty object) is uploaded until the command is done.
    A duplicate held by the same process defers the upload; the last close does it."""
    m = branch(mount, repo)
    server.reset_counts()
    sh("echo first > %s" % m.join("redir.txt"))
    assert uploads(server.counts()) == 1, server.counts()
    assert api_get(server, repo, "main", "redir.txt") == b"first\n"
    server.reset_counts()
    sh("echo again > %s" % m.join("redir.txt"))  # truncating an existing object
    sh("echo more >> %s" % m.join("redir.txt"))
    assert uploads(server.counts()) == 2, server.counts()
    assert api_get(server, repo, "main", "redir.txt") == b"again\nmore\n"
    # A program that keeps a dup open: closing one descriptor does not upload, the last one does.
    server.reset_counts()
    fd = os.open(m.join("dup.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    dup = os.dup(fd)
    os.write(fd, b"via the first descriptor\n")
    os.close(fd)
    assert uploads(server.counts()) == 0 and api_get_or_none(server, repo, "main", "dup.txt") is None
    os.write(dup, b"via the dup\n")
    os.close(dup)
    assert uploads(server.counts()) == 1
    assert api_get(server, repo, "main", "dup.txt") == b"via the first descriptor\nvia the dup\n"


def test_a_reader_left_open_does_not_defer_the_writers_upload(server, repo, mount):
    """Only descriptors open for writing defer an upload: closing the writer uploads even while the
    same process still reads the file."""
    m = branch(mount, repo)
    path = m.join("rw.txt")
    w = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(w, b"written\n")
    r = os.open(path, os.O_RDONLY)
    server.reset_counts()
    os.close(w)
    try:
        assert uploads(server.counts()) == 1
        assert api_get(server, repo, "main", "rw.txt") == b"written\n"
        assert os.pread(r, 100, 0) == b"written\n"
    finally:
        os.close(r)


# --- small files: one uploadObject, metadata unchanged ----------------------------------------------

@pytest.mark.presign
def test_small_file_goes_in_one_upload_object_with_all_its_metadata(server, repo, mount):
    """A small file is uploaded with uploadObject even where the server presigns, and the object
    holds exactly what the staging flow would record: lakectl's mtime and permission keys, user
    metadata, the default content type. A key lakeFS would lower-case in a header, or a value a
    header cannot carry unchanged, sends the file through the staging flow instead (JSON)."""
    m = branch(mount, repo)

    def write_with(name, meta, mode=0o640):
        fd = os.open(m.join(name), os.O_CREAT | os.O_WRONLY, mode)
        os.write(fd, b"small and direct\n")
        for key, value in meta.items():
            os.setxattr(m.join(name), "user.lakefs.meta." + key, value)
        os.utime(fd, (1600000000, 1600000000))
        os.close(fd)

    server.reset_counts()
    write_with("plain.txt", {"color": b"blue", "x.y-z": b"1 2 3"})
    assert data_upload_calls(server.counts()) == {"uploadObject": 1}, server.counts()
    st = api_stat(server, repo, "main", "plain.txt")
    md = st["metadata"]
    assert md.pop(MTIME_KEY) == "1600000000"
    assert json.loads(md.pop(PERMISSIONS_KEY)) == {"UID": os.getuid(), "GID": os.getgid(), "Mode": 0o100640}
    assert md == {"color": "blue", "x.y-z": "1 2 3"}
    assert st["content_type"] == "application/octet-stream"
    assert api_get(server, repo, "main", "plain.txt") == b"small and direct\n"

    for name, meta in [("upper.txt", {"Color": b"Blue"}), ("utf8.txt", {"note": "caf\u00e9".encode()}),
                       ("blank.txt", {"pad": b" padded "})]:
        server.reset_counts()
        write_with(name, meta)
        counted = data_upload_calls(server.counts())
        assert counted == {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}, (name, counted)
        md = api_stat(server, repo, "main", name)["metadata"]
        assert {k: v for k, v in md.items() if not k.startswith("::lakefs::")} == \
            {k: v.decode() for k, v in meta.items()}, (name, md)

    # Above direct_upload_max, and with it at 0: the staging flow.
    server.reset_counts()
    write_file(m.join("big.bin"), pattern(MIB + 1, 3))
    assert data_upload_calls(server.counts()) == {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}
    off = branch(mount, repo, "direct_upload_max=0")
    server.reset_counts()
    write_file(off.join("tiny.txt"), b"t")
    assert data_upload_calls(server.counts()) == {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}
    assert api_get(server, repo, "main", "tiny.txt") == b"t"


def test_write_only_descriptor_and_a_reader_open_beside_it(server, repo, mount):
    """A descriptor open for writing only writes around the kernel's page cache (fs_write.c
    direct_if_write_only); a reader that had the file open, and read it into that cache, sees the
    new bytes at once, and so does a new reader, before and after the close."""
    m = branch(mount, repo)
    path = m.join("beside.bin")
    old, new = pattern(3 * MIB, 30), pattern(MIB, 31)
    with open(path, "wb") as f:
        f.write(old)
    reader = os.open(path, os.O_RDONLY)
    writer = os.open(path, os.O_WRONLY)
    try:
        assert os.pread(reader, len(old), 0) == old  # cached now
        assert os.pwrite(writer, new, MIB) == len(new)
        want = old[:MIB] + new + old[2 * MIB:]
        assert os.pread(reader, len(old), 0) == want
        assert read_file(path) == want
        os.close(writer)
        writer = None
        assert os.pread(reader, len(old), 0) == want
        assert api_get(server, repo, "main", "beside.bin") == want
    finally:
        os.close(reader)
        if writer is not None:
            os.close(writer)


def test_names_targets_and_metadata_that_are_not_utf8_are_refused(server, repo, mount, tmp_path):
    """lakeFS's JSON carries keys and user metadata as UTF-8 strings: bytes that are not UTF-8 come
    back as U+FFFD (on real lakeFS a file so named lists under another name and cannot be opened).
    A create, mkdir, symlink, mknod or rename to such a name, a symlink to such a target and such a
    metadata value answer EILSEQ and write nothing;
    UTF-8 names of any script work and come back after a remount, and so do symlink targets with
    blanks at either end (an upload's headers would trim them: they are set again as JSON)."""
    m = branch(mount, repo)
    root = os.fsencode(m.path)
    bad = os.path.join(root, b"caf\xe9.txt")  # Latin-1, not UTF-8
    write_file(m.join("ok.txt"), b"ok\n")
    os.mkdir(m.join("dir"))
    expect_errno(errno.EILSEQ, write_file, bad, b"x")
    expect_errno(errno.EILSEQ, os.mkdir, bad)
    expect_errno(errno.EILSEQ, os.mkfifo, bad)
    expect_errno(errno.EILSEQ, os.symlink, b"ok.txt", bad)
    expect_errno(errno.EILSEQ, os.rename, m.join("ok.txt"), bad)
    expect_errno(errno.EILSEQ, os.rename, m.join("dir"), bad)
    expect_errno(errno.EILSEQ, os.symlink, b"target-\xff", m.join("lnk"))
    meta = "user.lakefs.meta.k"
    expect_errno(errno.EILSEQ, os.setxattr, m.join("ok.txt"), meta, b"\xff\xfe")
    assert sorted(api_paths(server, repo, "main")) == ["dir/", "ok.txt"]
    assert api_metadata(server, repo, "main", "ok.txt").get("k") is None
    # UTF-8 names, targets and values are kept as they are.
    names = ["café.txt", "日本語.txt", "e\u0301.txt", "emoji-\U0001F600"]
    for name in names:
        write_file(m.join(name), name.encode())
    os.symlink("café.txt", m.join("lnk"))
    # Blanks at either end, which HTTP headers would trim: kept too.
    os.symlink(" spaced target ", m.join("lnk2"))
    os.setxattr(m.join("ok.txt"), meta, "välue".encode())
    m.unmount()
    m2 = branch(mount, repo, "cache_dir=%s" % (tmp_path / "second"))
    for name in names:
        assert read_file(m2.join(name)) == name.encode()
    assert os.readlink(m2.join("lnk")) == "café.txt"
    assert os.readlink(m2.join("lnk2")) == " spaced target "
    assert os.getxattr(m2.join("ok.txt"), meta) == "välue".encode()


def test_nul_in_keys_metadata_and_commit_messages_is_kept_exactly(server, repo, mount):
    """Real lakeFS keeps keys and metadata values holding U+0000 (an SDK can write them) and lists
    them with \\u0000. A key with one is no file name: it is skipped with one log line, and never
    shown as the name before the NUL (which can be another object). A metadata value with one reads
    back with its NUL byte, and a chmod, an edit or another setxattr sends it back whole (they used
    to cut it at the NUL); setxattr takes a NUL too; a commit message with \\u0000 is sent as one."""
    server.upload(repo, "main", "nul\x00name.txt", b"the NUL-keyed object\n")
    server.upload(repo, "main", "nul", b"the object named nul\n")
    server.upload(repo, "main", "keep.txt", b"kept\n")
    resp = server.api("PUT", "/repositories/%s/branches/main/objects/stat/user_metadata" % repo,
                      params={"path": "keep.txt"}, json={"set": {"k": "v\x00w", "plain": "p"}})
    assert resp.status_code == 204, resp.text
    m = branch(mount, repo)
    assert sorted(os.listdir(m.path)) == ["keep.txt", "nul"]
    assert read_file(m.join("nul")) == b"the object named nul\n"
    lines = [line for line in m.log().splitlines() if "skipping" in line]
    assert len(lines) == 1 and '"nul\\x00name.txt": it holds a NUL' in lines[0], lines
    meta = "user.lakefs.meta."
    assert os.getxattr(m.join("keep.txt"), meta + "k") == b"v\x00w"
    os.chmod(m.join("keep.txt"), 0o600)
    assert api_metadata(server, repo, "main", "keep.txt")["k"] == "v\x00w"
    with open(m.join("keep.txt"), "ab") as f:
        f.write(b"more\n")
    assert api_get(server, repo, "main", "keep.txt") == b"kept\nmore\n"
    got = api_metadata(server, repo, "main", "keep.txt")
    assert got["k"] == "v\x00w" and got["plain"] == "p", got
    os.setxattr(m.join("keep.txt"), meta + "k2", b"x\x00y\x00")
    assert api_metadata(server, repo, "main", "keep.txt")["k2"] == "x\x00y\x00"
    assert os.getxattr(m.join("keep.txt"), meta + "k2") == b"x\x00y\x00"
    os.unlink(m.join("nul"))
    assert api_get_or_none(server, repo, "main", "nul") is None
    assert api_get(server, repo, "main", "nul\x00name.txt") == b"the NUL-keyed object\n"
    control_write(control_path(m, "commit"), json.dumps({"message": "before\x00after", "metadata": {"m": "1\x002"}}))
    head = mountlib.api_commit(server, repo, "main")
    assert head["message"] == "before\x00after" and head["metadata"] == {"m": "1\x002"}, head
    result = control_json(control_path(m, "commit"))
    assert result["commit"]["message"] == "before\x00after", result


def test_names_with_url_and_shell_characters_round_trip(server, repo, mount, tmp_path):
    """Object paths travel in query strings and JSON: names with the characters URL encoding and
    shells treat specially ('+' is a space in a form-encoded query, '%2F' a slash once decoded)
    are created, renamed and linked to under exactly their names, on lakeFS and after a remount."""
    names = ["a+b", "a&b=c", "p%20q", "p%2Fq", "x;y", "t~1", "u'v\"w", "[br]", "{c}", "a b", "sp ", " lead",
             "tab\tx", "star*", "bang!", "at@", "dollar$", "comma,", "colon:x", "pipe|x", "lt<gt>", "caret^",
             "back`tick", "hash#x", "q?x"]
    m = branch(mount, repo)
    os.mkdir(m.join("d+d"))
    for name in names:
        write_file(m.join("d+d", name), name.encode())
    os.symlink("a+b", m.join("d+d", "l+1"))
    os.rename(m.join("d+d", "a+b"), m.join("d+d", "a+b2"))
    kept = {("a+b2" if n == "a+b" else n): n.encode() for n in names}
    assert sorted(p for p in api_paths(server, repo, "main") if p != "d+d/") == \
        sorted(["d+d/" + n for n in kept] + ["d+d/l+1"])
    m.unmount()
    m2 = branch(mount, repo, "cache_dir=%s" % (tmp_path / "second"))
    assert sorted(os.listdir(m2.join("d+d"))) == sorted(list(kept) + ["l+1"])
    for name, data in kept.items():
        assert read_file(m2.join("d+d", name)) == data, name
    assert os.readlink(m2.join("d+d", "l+1")) == "a+b"
