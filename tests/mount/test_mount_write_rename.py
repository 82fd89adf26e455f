"""rename on a writable branch: a file moves by server-side copy and delete, never by re-uploading
its data, keeping its metadata; a file renamed while still open for writing ends up whole under its
new name; a directory moves object by object up to -o max_rename_objects and answers EXDEV above
it (so mv falls back to copying); RENAME_NOREPLACE is honoured and RENAME_EXCHANGE is EINVAL. A rename
never destroys data: a directory replaces only an empty directory (ENOTEMPTY otherwise, judged by the
server and by the files still being written), and a descriptor still open on a replaced file can no
longer upload over the name it lost."""
import errno
import json
import os
import stat
import threading

import pytest

from mountlib import (RENAME_EXCHANGE, RENAME_NOREPLACE, PatternStream, api_get, api_get_or_none, api_metadata,
                      api_paths, data_upload_calls, expect_errno, expected_mode, api_stat, read_file, renameat2,
                      kill_mount, poll, run, uploads, write_file)


def branch(mount, repo, *options):
    return mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"] + list(options))


def files_only(paths):
    return [p for p in paths if not p.endswith("/")]


def test_rename_of_a_closed_file_is_a_server_side_copy(server, repo, mount):
    m = branch(mount, repo)
    data = PatternStream(1024 * 1024 + 17, 31).read()
    write_file(m.join("a.bin"), data)
    os.chmod(m.join("a.bin"), 0o600)
    os.utime(m.join("a.bin"), (1500000000, 1500000000))
    os.mkdir(m.join("sub"))
    server.reset_counts()
    os.rename(m.join("a.bin"), m.join("b.bin"))
    counted = server.counts()
    assert counted.get("copyObject", 0) >= 1, counted
    assert data_upload_calls(counted) == {}, counted
    assert api_get_or_none(server, repo, "main", "a.bin") is None
    assert api_get(server, repo, "main", "b.bin") == data
    st = api_stat(server, repo, "main", "b.bin")
    assert expected_mode(st) == 0o600
    assert st["metadata"].get("::lakefs::client-mtime") == "1500000000"
    # In the mount at once.
    assert sorted(os.listdir(m.path)) == ["b.bin", "sub"]
    expect_errno(errno.ENOENT, os.stat, m.join("a.bin"))
    assert os.stat(m.join("b.bin")).st_size == len(data)
    # Into another directory, and over an existing file (which it replaces).
    write_file(m.join("sub", "victim.txt"), b"to be replaced\n")
    server.reset_counts()
    os.rename(m.join("b.bin"), m.join("sub", "victim.txt"))
    counted = server.counts()
    assert uploads(counted) == 0 and data_upload_calls(counted) == {}, counted
    assert files_only(api_paths(server, repo, "main")) == ["sub/victim.txt"]
    assert api_get(server, repo, "main", "sub/victim.txt") == data
    assert read_file(m.join("sub", "victim.txt")) == data
    assert os.listdir(m.join("sub")) == ["victim.txt"]


def test_file_renamed_while_open_for_writing_lands_under_the_new_name(server, repo, mount):
    m = branch(mount, repo)
    first, second = PatternStream(200 * 1024, 32).read(), PatternStream(70 * 1024 + 3, 33).read()
    # Never uploaded before the rename.
    fd = os.open(m.join("draft.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, first)
        os.rename(m.join("draft.bin"), m.join("final.bin"))
        assert os.listdir(m.path) == ["final.bin"]
        os.write(fd, second)
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "final.bin") == first + second
    assert api_get_or_none(server, repo, "main", "draft.bin") is None
    # Already uploaded once (fsync) under the old name before the rename.
    fd = os.open(m.join("old.bin"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, first)
        os.fsync(fd)
        assert api_get(server, repo, "main", "old.bin") == first
        os.rename(m.join("old.bin"), m.join("new.bin"))
        os.write(fd, second)
        assert os.pread(fd, len(first) + len(second), 0) == first + second
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "new.bin") == first + second
    assert api_get_or_none(server, repo, "main", "old.bin") is None
    assert sorted(files_only(api_paths(server, repo, "main"))) == ["final.bin", "new.bin"]
    assert read_file(m.join("new.bin")) == first + second


def make_dir_tree(m, top, n):
    """top/ with n files spread over top/, top/sub/ and an empty top/empty/; {relative path: bytes}."""
    os.makedirs(m.join(top, "sub"))
    os.mkdir(m.join(top, "empty"))
    files = {}
    for i in range(n):
        rel = ("sub/f%d.txt" if i % 2 else "f%d.txt") % i
        files[rel] = ("file %d of %s\n" % (i, top)).encode() * (i + 1)
        write_file(m.join(top, rel), files[rel])
    return files


def test_rename_of_a_directory_copies_object_by_object(server, repo, mount):
    m = branch(mount, repo)
    files = make_dir_tree(m, "d", 5)
    server.reset_counts()
    os.rename(m.join("d"), m.join("e"))
    counted = server.counts()
    assert counted.get("copyObject", 0) >= len(files), counted
    assert data_upload_calls(counted) == {}, counted
    paths = api_paths(server, repo, "main")
    assert [p for p in paths if p.startswith("d/")] == []
    assert sorted(files_only(paths)) == sorted("e/" + rel for rel in files)
    assert "e/empty/" in paths, "the empty directory's marker did not move"
    for rel, data in files.items():
        assert api_get(server, repo, "main", "e/" + rel) == data
        assert read_file(m.join("e", rel)) == data
    assert os.listdir(m.path) == ["e"]
    assert sorted(os.listdir(m.join("e"))) == ["empty", "f0.txt", "f2.txt", "f4.txt", "sub"]
    expect_errno(errno.ENOENT, os.stat, m.join("d"))


def test_a_directory_rename_that_fails_midway_leaves_the_tree_as_it_was(server, repo, mount):
    m = branch(mount, repo)
    files = make_dir_tree(m, "d", 6)
    os.mkdir(m.join("target"))  # an empty directory the rename would replace
    before = sorted(api_paths(server, repo, "main"))
    # The third object copy fails for good: the copies made go again, the target gets its marker back.
    for _ in range(2):
        server.add_fault(operation="copyObject", latency_ms=1, count=1)
    server.add_fault(operation="copyObject", status=400, message="injected refusal", count=1)
    expect_errno(errno.EIO, os.rename, m.join("d"), m.join("target"))
    assert sorted(api_paths(server, repo, "main")) == before
    for rel, data in files.items():
        assert read_file(m.join("d", rel)) == data
    assert os.listdir(m.join("target")) == []


def test_rename_of_a_directory_above_the_limit_is_exdev_and_mv_copies(server, repo, mount):
    m = branch(mount, repo, "max_rename_objects=2")
    files = make_dir_tree(m, "d", 5)
    before = api_paths(server, repo, "main")
    expect_errno(errno.EXDEV, os.rename, m.join("d"), m.join("d2"))
    assert api_paths(server, repo, "main") == before
    assert sorted(os.listdir(m.path)) == ["d"]
    # A small directory is still renamed directly.
    os.mkdir(m.join("small"))
    write_file(m.join("small", "one"), b"1\n")
    os.rename(m.join("small"), m.join("small2"))
    assert api_get(server, repo, "main", "small2/one") == b"1\n"
    # mv falls back to copy and delete.
    run(["mv", m.join("d"), m.join("d2")])
    paths = api_paths(server, repo, "main")
    assert [p for p in paths if p.startswith("d/")] == []
    assert sorted(p for p in files_only(paths) if p.startswith("d2/")) == sorted("d2/" + rel for rel in files)
    for rel, data in files.items():
        assert api_get(server, repo, "main", "d2/" + rel) == data
    assert os.listdir(m.join("d2", "empty")) == []
    assert "d2/empty/" in paths
    assert sorted(os.listdir(m.path)) == ["d2", "small2"]


def test_renameat2_noreplace_and_exchange(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("a"), b"a\n")
    write_file(m.join("b"), b"b\n")
    expect_errno(errno.EEXIST, renameat2, m.join("a"), m.join("b"), RENAME_NOREPLACE)
    expect_errno(errno.EINVAL, renameat2, m.join("a"), m.join("b"), RENAME_EXCHANGE)
    assert (api_get(server, repo, "main", "a"), api_get(server, repo, "main", "b")) == (b"a\n", b"b\n")
    assert (read_file(m.join("a")), read_file(m.join("b"))) == (b"a\n", b"b\n")
    renameat2(m.join("a"), m.join("c"), RENAME_NOREPLACE)
    assert api_get(server, repo, "main", "c") == b"a\n"
    assert api_get_or_none(server, repo, "main", "a") is None
    assert sorted(os.listdir(m.path)) == ["b", "c"]
    assert api_metadata(server, repo, "main", "c").get("::lakefs::client-mtime", "").isdigit()


def test_directory_replaces_only_an_empty_directory(server, repo, mount):
    m = branch(mount, repo)
    os.mkdir(m.join("a"))
    write_file(m.join("a", "x"), b"from a\n")
    os.mkdir(m.join("b"))
    write_file(m.join("b", "x"), b"from b\n")
    before = api_paths(server, repo, "main")
    expect_errno(errno.ENOTEMPTY, os.rename, m.join("a"), m.join("b"))
    assert api_paths(server, repo, "main") == before
    assert (read_file(m.join("a", "x")), read_file(m.join("b", "x"))) == (b"from a\n", b"from b\n")
    # Content the mount's cached listing does not know of yet still counts.
    os.mkdir(m.join("c"))
    assert os.listdir(m.join("c")) == []
    server.upload(repo, "main", "c/late.txt", b"another client\n")
    expect_errno(errno.ENOTEMPTY, os.rename, m.join("a"), m.join("c"))
    assert api_get(server, repo, "main", "c/late.txt") == b"another client\n"
    # So does a file still being written there, not on the server yet.
    os.mkdir(m.join("w"))
    fd = os.open(m.join("w", "draft"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"draft\n")
        expect_errno(errno.ENOTEMPTY, os.rename, m.join("a"), m.join("w"))
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "w/draft") == b"draft\n"
    assert api_get(server, repo, "main", "a/x") == b"from a\n"
    # An empty directory is replaced: its marker goes, the source's takes its place.
    os.mkdir(m.join("e"))
    os.rename(m.join("a"), m.join("e"))
    paths = api_paths(server, repo, "main")
    assert [p for p in paths if p.startswith("a/")] == []
    assert [p for p in paths if p.startswith("e/")] == ["e/", "e/x"]
    assert os.listdir(m.join("e")) == ["x"] and read_file(m.join("e", "x")) == b"from a\n"
    expect_errno(errno.ENOENT, os.stat, m.join("a"))
    # Directory onto a file or a symlink: ENOTDIR; file onto a directory: EISDIR.
    write_file(m.join("file"), b"f\n")
    os.symlink("file", m.join("link"))
    expect_errno(errno.ENOTDIR, os.rename, m.join("e"), m.join("file"))
    expect_errno(errno.ENOTDIR, os.rename, m.join("e"), m.join("link"))
    expect_errno(errno.EISDIR, os.rename, m.join("file"), m.join("b"))
    assert api_get(server, repo, "main", "file") == b"f\n"
    assert sorted(os.listdir(m.path)) == ["b", "c", "e", "file", "link", "w"]


def test_a_descriptor_never_writes_over_the_name_it_lost(server, repo, mount):
    m = branch(mount, repo)
    other = PatternStream(64 * 1024 + 5, 41).read()
    # An uploaded file, opened and written again, then replaced by mv.
    write_file(m.join("f"), b"old f\n")
    fd = os.open(m.join("f"), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"written before the rename\n")
        write_file(m.join("other"), other)
        os.rename(m.join("other"), m.join("f"))
        os.write(fd, b"written after the rename\n")
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "f") == other
    assert api_get_or_none(server, repo, "main", "other") is None
    assert read_file(m.join("f")) == other
    assert os.stat(m.join("f")).st_size == len(other)
    # A new file never uploaded, replaced while open.
    fd = os.open(m.join("g"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"draft g\n")
        write_file(m.join("other2"), b"other2\n")
        os.rename(m.join("other2"), m.join("g"))
        os.write(fd, b"more draft\n")
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "g") == b"other2\n"
    assert read_file(m.join("g")) == b"other2\n"
    # A file still being written renamed over an open one: its own bytes win.
    fd_h = os.open(m.join("h"), os.O_CREAT | os.O_WRONLY, 0o644)
    fd_src = os.open(m.join("src"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd_h, b"h\n")
        os.write(fd_src, b"src part 1\n")
        os.rename(m.join("src"), m.join("h"))
        os.write(fd_h, b"h again\n")
        os.write(fd_src, b"src part 2\n")
    finally:
        os.close(fd_h)
        os.close(fd_src)
    assert api_get(server, repo, "main", "h") == b"src part 1\nsrc part 2\n"
    assert read_file(m.join("h")) == b"src part 1\nsrc part 2\n"
    # A symlink renamed over an open file stays a symlink.
    fd = os.open(m.join("s"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"plain file\n")
        os.symlink("f", m.join("lnk"))
        os.rename(m.join("lnk"), m.join("s"))
        os.write(fd, b"more\n")
    finally:
        os.close(fd)
    assert os.path.islink(m.join("s")) and os.readlink(m.join("s")) == "f"
    assert api_metadata(server, repo, "main", "s").get("::lakefs::symlink-target") == "f"
    assert read_file(m.join("s")) == other
    assert sorted(files_only(api_paths(server, repo, "main"))) == ["f", "g", "h", "s"]
    assert sorted(os.listdir(m.path)) == ["f", "g", "h", "s"]


def test_setuid_bits_follow_a_file_still_being_written_when_its_directory_moves(server, repo, mount):
    """The setuid/setgid bits this mount set on a file go along when the file's directory is renamed
    while the file is still being written (the server has no object of it yet, so the rename moves it
    in the writer alone), and a later directory rename that fails (copyObject refused) leaves them as
    they were. Reduced from the differential test under faults (seed 12, op #1077: 6711 became 711)."""
    m = branch(mount, repo)
    os.makedirs(m.join("d", "sub"))
    fd = os.open(m.join("d", "sub", "f"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"x" * 1000)
        os.fchmod(fd, 0o6711)
        os.rename(m.join("d"), m.join("e"))
        os.write(fd, b"y")
    finally:
        os.close(fd)
    assert expected_mode(api_stat(server, repo, "main", "e/sub/f")) == 0o6711
    assert stat.S_IMODE(os.stat(m.join("e", "sub", "f")).st_mode) == 0o6711
    # A failed rename makes the mount ask lakeFS again: the bits it shows must not change.
    server.add_fault(operation="copyObject", status=400, message="injected refusal", count=1)
    expect_errno(errno.EIO, os.rename, m.join("e"), m.join("g"))
    assert stat.S_IMODE(os.stat(m.join("e", "sub", "f")).st_mode) == 0o6711
    assert read_file(m.join("e", "sub", "f")) == b"x" * 1000 + b"y"
    # And the bits keep following the file on a rename that succeeds.
    os.rename(m.join("e"), m.join("g"))
    assert stat.S_IMODE(os.stat(m.join("g", "sub", "f")).st_mode) == 0o6711


def test_a_directory_rename_whose_delete_fails_shows_the_copies_with_their_setuid_bits(server, repo, mount):
    """A directory rename whose copies are made but whose deletes fail (EIO) leaves the files at both
    names (neither is lost); the copies show the setuid/setgid bits this mount set, as the originals
    do, not masked as if another client had planted them."""
    m = branch(mount, repo)
    os.makedirs(m.join("d"))
    write_file(m.join("d", "f"), b"suid file\n")
    os.chmod(m.join("d", "f"), 0o4755)
    server.add_fault(operation="deleteObjects", status=400, message="injected refusal", count=1)
    expect_errno(errno.EIO, os.rename, m.join("d"), m.join("e"))
    assert api_get(server, repo, "main", "d/f") == b"suid file\n"
    assert api_get(server, repo, "main", "e/f") == b"suid file\n"
    assert expected_mode(api_stat(server, repo, "main", "e/f")) == 0o4755
    for top in ("d", "e"):
        assert stat.S_IMODE(os.stat(m.join(top, "f")).st_mode) == 0o4755, top
        assert read_file(m.join(top, "f")) == b"suid file\n"


def dir_view(path):
    """A directory's mode and user metadata (lakectl's keys aside), as the mount shows them."""
    meta = {n[len("user.lakefs.meta."):]: os.getxattr(path, n).decode() for n in os.listxattr(path)
            if n.startswith("user.lakefs.meta.") and not n.startswith("user.lakefs.meta.::")}
    return stat.S_IMODE(os.stat(path).st_mode), meta


def test_a_rename_that_fails_half_done_shows_what_lakefs_holds(server, repo, mount):
    """A directory renamed onto an empty one: the source's marker is copied over the replaced
    directory's, then the delete of the source fails (EIO). The kernel still had the replaced
    directory's mode cached, the mount listed the copied marker's metadata: a mix of the two that
    lakeFS never held (the differential test under faults, once directories' metadata was
    compared). The kernel's cached attributes of both names are dropped now; the same for a file
    renamed over another."""
    m = branch(mount, repo)
    os.mkdir(m.join("a"))
    os.chmod(m.join("a"), 0o555)
    os.mkdir(m.join("c"))
    os.setxattr(m.join("c"), "user.lakefs.meta.k1", b"v1")
    write_file(m.join("f"), b"f\n")
    os.chmod(m.join("f"), 0o600)
    write_file(m.join("g"), b"g\n")
    server.add_fault(operation="deleteObjects", status=400, message="injected refusal", count=1)
    expect_errno(errno.EIO, os.rename, m.join("a"), m.join("c"))
    server.add_fault(operation="deleteObject", status=400, message="injected refusal", count=1)
    expect_errno(errno.EIO, os.rename, m.join("f"), m.join("g"))
    assert api_metadata(server, repo, "main", "c/").get("k1") is None  # the copy of a's marker
    fresh = branch(mount, repo)
    for mnt in (m, fresh):
        assert dir_view(mnt.join("c")) == (0o555, {}), mnt.path
        assert dir_view(mnt.join("a")) == (0o555, {})
        assert stat.S_IMODE(os.stat(mnt.join("g")).st_mode) == 0o600
        assert read_file(mnt.join("g")) == b"f\n" and read_file(mnt.join("f")) == b"f\n"


def test_a_copy_that_fails_ambiguously_is_not_taken_for_done_over_a_same_content_object(server, repo, mount):
    """A rename's copy answered 500 (which may or may not have been applied) is checked on the server;
    a destination that already held the same bytes (every symlink has the checksum of "", and two
    files can hold the same data) but other metadata is not the copy: the copy goes again, and the
    source is not deleted before its copy is there. Before, the rename returned 0 with the old
    symlink (or the old mode) in place and the source gone. Found by the differential test under
    faults (seed 32, op #103)."""
    m = branch(mount, repo)
    os.symlink("old/target", m.join("lnk"))
    os.symlink("new/target", m.join("src-lnk"))
    write_file(m.join("f"), b"same bytes\n")
    os.chmod(m.join("f"), 0o644)
    write_file(m.join("src-f"), b"same bytes\n")
    os.chmod(m.join("src-f"), 0o600)
    for src, dst in (("src-lnk", "lnk"), ("src-f", "f")):
        server.add_fault(operation="copyObject", status=500, message="injected failure", count=1)
        os.rename(m.join(src), m.join(dst))
        assert api_get_or_none(server, repo, "main", src) is None
    assert api_metadata(server, repo, "main", "lnk").get("::lakefs::symlink-target") == "new/target"
    assert os.readlink(m.join("lnk")) == "new/target"
    assert expected_mode(api_stat(server, repo, "main", "f")) == 0o600
    assert stat.S_IMODE(os.stat(m.join("f")).st_mode) == 0o600
    assert read_file(m.join("f")) == b"same bytes\n"
    assert sorted(files_only(api_paths(server, repo, "main"))) == ["f", "lnk"]


def test_a_failed_file_rename_does_not_unmask_the_replaced_files_setuid_bits(server, repo, mount):
    """A file rename over another client's object whose copy fails (copyObject refused, EIO) leaves
    that object's setuid bits masked, as before the rename: only once the rename has succeeded does
    the destination show the bits this mount set. Before, the destination was recorded as written
    by this mount before the copy, so the failed rename unmasked the planted bits."""
    server.api("POST", "/repositories/%s/branches/main/objects" % repo, params={"path": "dst"}, data=b"#!",
               headers={"X-Lakefs-Internal-Posix-Permissions":
                        json.dumps({"UID": 0, "GID": 0, "Mode": 0o104755})})
    m = branch(mount, repo, "attr_timeout=0")  # every stat asks lakeFS: what the mount shows now
    write_file(m.join("src"), b"mine\n")
    os.chmod(m.join("src"), 0o4750)
    assert stat.S_IMODE(os.stat(m.join("dst")).st_mode) == 0o755
    server.add_fault(operation="copyObject", status=400, message="injected refusal", count=1)
    expect_errno(errno.EIO, os.rename, m.join("src"), m.join("dst"))
    assert api_get(server, repo, "main", "dst") == b"#!"
    assert stat.S_IMODE(os.stat(m.join("dst")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(m.join("src")).st_mode) == 0o4750
    # The rename that succeeds brings the bits this mount set.
    os.rename(m.join("src"), m.join("dst"))
    assert stat.S_IMODE(os.stat(m.join("dst")).st_mode) == 0o4750
    assert expected_mode(api_stat(server, repo, "main", "dst")) == 0o4750


def plant_setuid(server, repo, path):
    """Another client's object at path, recorded setuid root (a mount shows it masked: 0755)."""
    server.api("POST", "/repositories/%s/branches/main/objects" % repo, params={"path": path}, data=b"#!",
               headers={"X-Lakefs-Internal-Posix-Permissions":
                        json.dumps({"UID": 0, "GID": 0, "Mode": 0o104755})})


def test_a_failed_directory_rename_does_not_unmask_setuid_bits_planted_at_the_new_names(server, repo, mount):
    """A directory rename whose first copy fails (copyObject refused, EIO) records nothing at the new
    names: objects another client puts there afterwards, setuid, show masked. Both kinds of file are
    checked: one the server holds (moved by a copy), one still being written (moved in the writer
    alone). Before, the bits this mount set were noted at the new names before the copies, so the
    failed rename unmasked what was planted there later."""
    m = branch(mount, repo, "attr_timeout=0")  # every stat asks lakeFS: what the mount shows now
    os.makedirs(m.join("d"))
    write_file(m.join("d", "a"), b"mine\n")
    os.chmod(m.join("d", "a"), 0o4750)
    fd = os.open(m.join("d", "b"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"still being written\n")
        os.fchmod(fd, 0o6711)
        server.add_fault(operation="copyObject", status=400, message="injected refusal", count=1)
        expect_errno(errno.EIO, os.rename, m.join("d"), m.join("e"))
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(m.join("d", "a")).st_mode) == 0o4750
    assert stat.S_IMODE(os.stat(m.join("d", "b")).st_mode) == 0o6711
    assert read_file(m.join("d", "b")) == b"still being written\n"
    assert [p for p in api_paths(server, repo, "main") if p.startswith("e")] == []
    for name in ("a", "b"):
        plant_setuid(server, repo, "e/" + name)
    for name in ("a", "b"):
        assert stat.S_IMODE(os.stat(m.join("e", name)).st_mode) == 0o755, name
    # The rename that succeeds (into another name) brings the bits this mount set.
    os.rename(m.join("d"), m.join("g"))
    assert stat.S_IMODE(os.stat(m.join("g", "a")).st_mode) == 0o4750
    assert stat.S_IMODE(os.stat(m.join("g", "b")).st_mode) == 0o6711


def test_a_file_still_being_written_renamed_over_a_symlink_lists_as_that_file(server, repo, mount):
    """The rename of a file open for writing over a symlink moves its staged bytes; the link's object
    stays on lakeFS until the close uploads over it. A listing fetched from lakeFS in between
    (attr_timeout=0: every lookup lists again) still shows the name as the regular file being
    written, with the metadata it was given, never as the stale link (the differential soak's seed
    7002 saw the link's empty metadata there)."""
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=0"])
    os.mkdir(m.join("a"))
    link, f = m.join("a", "g"), m.join("a", "f")
    os.symlink("d/e/f", link)
    write_file(f, b"x" * 1000)
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"y" * 500)
        os.rename(f, link)
        os.setxattr(link, "user.lakefs.meta.owner", b"v264")
        assert api_metadata(server, repo, "main", "a/g").get("::lakefs::symlink-target") == "d/e/f"
        st = os.lstat(link)
        assert stat.S_ISREG(st.st_mode) and st.st_size == 1500, (oct(st.st_mode), st.st_size)
        assert os.getxattr(link, "user.lakefs.meta.owner") == b"v264"
        assert read_file(link) == b"x" * 1000 + b"y" * 500
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "a/g") == b"x" * 1000 + b"y" * 500
    md = api_metadata(server, repo, "main", "a/g")
    assert md.get("owner") == "v264" and "::lakefs::symlink-target" not in md, md


def test_setuid_bits_set_while_open_follow_a_file_rename_and_then_a_directory_rename(server, repo, mount):
    """A chmod u+s of a file open for writing, then a rename of the file while still open, then a
    rename of its directory after the close: the bits are this mount's at every name, so a later
    truncate by path (which reopens the object) shows and uploads them. Reduced from the soak
    (scripts/soak.sh, seed 4001, op #1252: 6711 became 711 and the server recorded 711)."""
    m = branch(mount, repo)
    os.makedirs(m.join("c", "a"))
    os.makedirs(m.join("c", "b"))
    os.makedirs(m.join("y"))
    write_file(m.join("c", "a", "f"), b"x" * 3000)
    fd = os.open(m.join("c", "a", "f"), os.O_RDWR | os.O_TRUNC | os.O_APPEND)
    try:
        os.chmod(m.join("c", "a", "f"), 0o6711)
        os.rename(m.join("c", "a", "f"), m.join("c", "b", "g"))
        os.write(fd, b"y" * 100)
    finally:
        os.close(fd)
    os.rename(m.join("c"), m.join("y", "c"))
    os.truncate(m.join("y", "c", "b", "g"), 50)
    assert stat.S_IMODE(os.stat(m.join("y", "c", "b", "g")).st_mode) == 0o6711
    assert expected_mode(api_stat(server, repo, "main", "y/c/b/g")) == 0o6711
    assert api_get(server, repo, "main", "y/c/b/g") == b"y" * 50


def test_a_rename_whose_look_at_the_destination_fails_changes_nothing(server, repo, mount):
    """Whether the destination exists decides what a rename may do (replace an empty directory
    only, never merge into a full one, never put a directory over a file): a listing that fails
    while the rename looks is its error, not "absent". Every "p/" listing from the k-th on fails, for
    each k: the failure reaches each of the listings the lookups and the rename make."""
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=0"])  # every look lists
    os.makedirs(m.join("p", "a"))
    write_file(m.join("p", "a", "x"), b"from a\n")
    write_file(m.join("p", "a", "only-a"), b"a's own\n")
    os.makedirs(m.join("p", "b"))
    write_file(m.join("p", "b", "x"), b"from b\n")
    write_file(m.join("p", "f"), b"a file\n")
    before = {p: api_get(server, repo, "main", p) for p in files_only(api_paths(server, repo, "main"))}
    failed_at_rename = 0
    for k in range(12):
        for dst, clean in (("b", errno.ENOTEMPTY), ("f", errno.ENOTDIR)):
            server.clear_faults()
            if k:
                server.add_fault(operation="listObjects", match={"prefix": "p/"}, latency_ms=1, count=k)
            server.add_fault(operation="listObjects", match={"prefix": "p/"}, status=500,
                             message="injected listing failure", count=1000)
            try:
                os.rename(m.join("p", "a"), m.join("p", dst))
                got = 0
            except OSError as e:
                got = e.errno
            server.clear_faults()
            assert got in (errno.EIO, clean), (k, dst, got)
            failed_at_rename += got == errno.EIO
            now = {p: api_get(server, repo, "main", p) for p in files_only(api_paths(server, repo, "main"))}
            assert now == before, (k, dst)
    # The failure did reach a look of the rename's, and without faults the answers are the clean ones.
    assert failed_at_rename >= 2
    expect_errno(errno.ENOTEMPTY, os.rename, m.join("p", "a"), m.join("p", "b"))
    expect_errno(errno.ENOTDIR, os.rename, m.join("p", "a"), m.join("p", "f"))


def test_a_directory_rename_whose_deletes_answer_nothing_is_not_split(server, repo, mount):
    """Every copy made, then the deletes of the old names: when lakeFS applies them but every
    answer is lost, the rename is done (a listing says the old names are gone); when they fail, it
    answers EIO with the new names holding the whole directory, the old ones a stale copy. A file
    still being written in the directory goes with the copies either way: never left behind to
    bring back a directory holding only it."""
    m = branch(mount, repo)
    files = make_dir_tree(m, "d", 4)
    for src, dst, fault, want in (("d", "e", dict(drop_response=True), 0),
                                  ("e", "f", dict(status=500, message="injected delete failure"), errno.EIO)):
        fd = os.open(m.join(src, "open-%s.txt" % src), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"being written\n")
            server.add_fault(operation="deleteObjects", count=1000, **fault)
            try:
                os.rename(m.join(src), m.join(dst))
                got = 0
            except OSError as e:
                got = e.errno
            server.clear_faults()
            assert got == want, (src, dst, got)
            os.write(fd, b"more\n")
        finally:
            os.close(fd)
        files["open-%s.txt" % src] = b"being written\nmore\n"
        # The new name holds the whole directory, on lakeFS and in the mount.
        for rel, data in files.items():
            assert api_get(server, repo, "main", "%s/%s" % (dst, rel)) == data, (dst, rel)
            assert read_file(m.join(dst, rel)) == data
        left = [p for p in api_paths(server, repo, "main") if p.startswith(src + "/")]
        if want == 0:
            assert left == [] and not os.path.exists(m.join(src)), left
        else:  # the old names are the copy the failed deletes left, without the file being written
            assert "%s/open-%s.txt" % (src, src) not in left and "%s/f0.txt" % src in left, left


def test_a_directory_rename_that_would_push_a_file_being_written_past_the_key_limit_is_refused(server, repo, mount):
    """A directory rename checks the new key of every object under it against lakeFS's 1024 bytes,
    and of every file still being written there too (open, or with -o async_close queued): the
    writer moves those along with no server copy, and once at a key lakeFS refuses, their upload
    would fail for good. It once checked only the listed objects (the differential soak's seed
    109501: a directory rename succeeded where a queued file's new key was 1,151 bytes)."""
    m = branch(mount, repo)
    deep = "d/" + "a" * 250 + "/" + "b" * 250 + "/" + "c" * 250  # markers up to 755 bytes
    os.makedirs(m.join(deep))
    name = deep + "/" + "f" * 240  # a 995-byte key
    fd = os.open(m.join(name), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"still being written\n")
        server.reset_counts()
        # d -> 40 bytes: the markers still fit (794 bytes), the open file would not (1,034)
        expect_errno(errno.ENAMETOOLONG, os.rename, m.join("d"), m.join("e" * 40))
        assert server.counts().get("copyObject", 0) == 0 and server.counts().get("deleteObject", 0) == 0
        assert os.path.isdir(m.join(deep)) and not os.path.exists(m.join("e" * 40))
        # one that fits moves it along
        os.rename(m.join("d"), m.join("e" * 20))
        os.write(fd, b"and then closed\n")
    finally:
        os.close(fd)
    moved = "e" * 20 + name[1:]
    assert api_get(server, repo, "main", moved) == b"still being written\nand then closed\n"
    assert api_get_or_none(server, repo, "main", name) is None


def test_the_same_with_a_closed_file_queued_for_upload(server, repo, mount):
    """-o async_close: the file is closed and queued (the one upload thread is held by the server
    on another file); the rename that would push it past 1024 bytes is refused, and it lands at
    its own name once the queue moves."""
    m = branch(mount, repo, "async_close", "upload_threads=1")
    deep = "d/" + "a" * 250 + "/" + "b" * 250 + "/" + "c" * 250
    os.makedirs(m.join(deep))
    name = deep + "/" + "f" * 240
    server.add_fault(operation="uploadObject", hold="blocker", match={"path": "blocker"})
    write_file(m.join("blocker"), b"first in the queue\n")
    assert poll(lambda: [f["applied"] for f in server.faults()] == [1], timeout=60)
    write_file(m.join(name), b"queued\n")  # behind it: queued, not in flight
    expect_errno(errno.ENAMETOOLONG, os.rename, m.join("d"), m.join("e" * 40))
    assert os.path.isdir(m.join(deep)) and not os.path.exists(m.join("e" * 40))
    server.open_gate("blocker")
    fd = os.open(m.join(name), os.O_RDONLY)
    try:
        os.fsync(fd)  # waits for the file's upload
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", name) == b"queued\n"
    assert api_get(server, repo, "main", "blocker") == b"first in the queue\n"


@pytest.mark.parametrize("source", ["with_marker", "prefix_only"])
def test_a_daemon_killed_in_a_directory_rename_onto_an_empty_one_leaves_a_directory_there(
        server, repo, mount, source):
    """kill -9 while a directory rename onto an empty directory copies its objects (the server holds
    the first copy): the next mount finds the target directory as it was (its marker, mode 0555)
    and the source whole. The empty directory's marker used to be deleted before the copies, and a
    daemon killed in between left neither directory there (found by the differential test's
    kill cycles on lakefs-s3, seed 123300)."""
    m = branch(mount, repo)
    if source == "with_marker":
        os.makedirs(m.join("src/sub"))
        os.chmod(m.join("src"), 0o750)
        write_file(m.join("src/f"), b"moved\n")
    else:  # a directory only the keys under it make
        server.upload(repo, "main", "src/f", b"moved\n")
        server.upload(repo, "main", "src/sub/g", b"moved too\n")
    os.mkdir(m.join("dst"))
    os.chmod(m.join("dst"), 0o555)
    before = set(api_paths(server, repo, "main"))
    assert "dst/" in before
    server.add_fault(operation="copyObject", hold="copy")
    result = {}

    def rename():
        try:
            os.rename(m.join("src"), m.join("dst"))
            result["rc"] = 0
        except OSError as e:
            result["rc"] = e.errno
    t = threading.Thread(target=rename)
    t.start()
    try:
        assert poll(lambda: [f["applied"] for f in server.faults()] == [1], timeout=60), server.faults()
        assert kill_mount(m) == -9
    finally:
        t.join(60)
    assert not t.is_alive() and result["rc"] != 0, result
    assert set(api_paths(server, repo, "main")) == before  # the held copy has not run
    again = branch(mount, repo)
    assert stat.S_IMODE(os.stat(again.join("dst")).st_mode) == 0o555
    assert os.listdir(again.join("dst")) == []
    assert read_file(again.join("src/f")) == b"moved\n"
    server.open_gate("copy")
