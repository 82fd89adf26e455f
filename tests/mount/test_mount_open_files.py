"""Open files outlive their names, and one file has one content (issue 11): a descriptor opened before
an unlink, or before a rename moved or replaced its name, keeps reading the bytes it opened and fstat
works on it; the name is free at once; a read through any descriptor of a file sees what another
descriptor of the same file wrote, before and after that one's close. Everything through the mount."""
import errno
import os
import subprocess

import pytest

from mountlib import api_get, api_get_or_none, api_paths, api_stat, expect_errno, read_file, write_file


def branch(mount, repo):
    return mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"])


def test_a_descriptor_keeps_reading_after_unlink(server, repo, mount):
    server.upload(repo, "main", "u", b"d\n" * 40000)  # 80 kB, on the server only
    m = branch(mount, repo)
    fd = os.open(m.join("u"), os.O_RDONLY)
    try:
        assert os.read(fd, 2) == b"d\n"
        os.unlink(m.join("u"))
        assert api_get_or_none(server, repo, "main", "u") is None
        assert os.pread(fd, 200000, 0) == b"d\n" * 40000
        assert os.fstat(fd).st_size == 80000
        # The name is free at once.
        write_file(m.join("u"), b"a new file\n")
        assert os.pread(fd, 4, 0) == b"d\nd\n"
    finally:
        os.close(fd)
    assert read_file(m.join("u")) == b"a new file\n"


def test_the_shell_reads_an_unlinked_file_through_its_descriptor(server, repo, mount):
    m = branch(mount, repo)
    out = subprocess.run(["bash", "-c", "echo d > u; exec 3<u; rm u; cat <&3"], cwd=m.path,
                         capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout == b"d\n", out


def test_a_descriptor_keeps_reading_the_file_a_rename_replaced(server, repo, mount):
    m = branch(mount, repo)
    out = subprocess.run(["bash", "-c", "echo old > r1; echo new > r2; exec 4<r1; mv r2 r1; cat <&4; cat r1"],
                         cwd=m.path, capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout == b"old\nnew\n", out
    assert api_get(server, repo, "main", "r1") == b"new\n"


def test_a_descriptor_follows_its_file_through_a_rename(server, repo, mount):
    server.upload(repo, "main", "a", b"moving content\n")
    m = branch(mount, repo)
    fd = os.open(m.join("a"), os.O_RDONLY)
    try:
        os.rename(m.join("a"), m.join("b"))
        assert os.pread(fd, 100, 0) == b"moving content\n"
        assert os.fstat(fd).st_size == len(b"moving content\n")
    finally:
        os.close(fd)


def test_fstat_of_a_file_replaced_while_open_for_writing(server, repo, mount):
    m = branch(mount, repo)
    fd = os.open(m.join("f1"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"mine")
        write_file(m.join("f3"), b"x")
        os.rename(m.join("f3"), m.join("f1"))
        st = os.fstat(fd)
        assert st.st_size == 4
        assert os.pread(fd, 10, 0) == b"mine"
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "f1") == b"x"


def test_a_reader_sees_what_another_descriptor_writes(server, repo, mount):
    server.upload(repo, "main", "shared.log", b"line 1\n")
    m = branch(mount, repo)
    reader = os.open(m.join("shared.log"), os.O_RDONLY)
    try:
        assert os.pread(reader, 100, 0) == b"line 1\n"
        with open(m.join("shared.log"), "ab") as writer:
            writer.write(b"line 2\n")
            writer.flush()
            assert os.fstat(reader).st_size == 14
            assert os.pread(reader, 100, 0) == b"line 1\nline 2\n"  # before the writer's close
        # After the close uploaded it, the same descriptor reads the new object.
        assert api_get(server, repo, "main", "shared.log") == b"line 1\nline 2\n"
        assert os.pread(reader, 100, 0) == b"line 1\nline 2\n"
        assert os.pread(reader, 100, 7) == b"line 2\n"
    finally:
        os.close(reader)


# Found by the differential test (issue 11): a descriptor opened for writing copies its file in only
# when first read or written; its file unlinked, renamed or replaced before that lost its bytes (ESTALE).

def test_an_untouched_writer_keeps_its_bytes_after_unlink(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("w"), b"w" * 100000)  # written through the mount, as the differential test did
    fd = os.open(m.join("w"), os.O_RDWR)
    try:
        os.unlink(m.join("w"))
        assert os.pwrite(fd, b"tail", 100000) == 4
        assert os.pread(fd, 200000, 0) == b"w" * 100000 + b"tail"
        assert os.fstat(fd).st_size == 100004
    finally:
        os.close(fd)
    assert api_get_or_none(server, repo, "main", "w") is None  # nothing uploaded it again
    assert not os.path.lexists(m.join("w"))


def test_an_untouched_writer_keeps_its_bytes_when_a_rename_replaces_its_file(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("old"), b"old bytes\n")
    write_file(m.join("new"), b"new bytes\n")
    fd = os.open(m.join("old"), os.O_WRONLY | os.O_APPEND)
    try:
        os.rename(m.join("new"), m.join("old"))
        os.write(fd, b"appended\n")
        assert os.fstat(fd).st_size == len(b"old bytes\nappended\n")
    finally:
        os.close(fd)
    assert read_file(m.join("old")) == b"new bytes\n"
    assert api_get(server, repo, "main", "old") == b"new bytes\n"


def test_an_untouched_writer_follows_its_file_through_a_rename(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("a"), b"first\n")
    fd = os.open(m.join("a"), os.O_RDWR | os.O_APPEND)
    try:
        os.rename(m.join("a"), m.join("b"))
        os.write(fd, b"second\n")
        os.ftruncate(fd, 12)
    finally:
        os.close(fd)  # uploads to the new name
    assert read_file(m.join("b")) == b"first\nsecond"
    assert api_get(server, repo, "main", "b") == b"first\nsecond"
    assert api_get_or_none(server, repo, "main", "a") is None


def test_a_file_unlinked_while_open_in_a_directory_renamed_after(server, repo, mount):
    # libfuse keeps such a file under .fuse_hidden... in its directory and moves it with a rename of
    # the directory; lakefuse kept the old path: ftruncate and fstat answered ENOENT.
    m = branch(mount, repo)
    os.mkdir(m.join("d"))
    write_file(m.join("d", "f"), b"0123456789")
    fd = os.open(m.join("d", "f"), os.O_RDWR)
    try:
        assert os.read(fd, 3) == b"012"
        os.unlink(m.join("d", "f"))
        os.rename(m.join("d"), m.join("e"))
        os.ftruncate(fd, 5)
        assert os.fstat(fd).st_size == 5
        assert os.pread(fd, 100, 0) == b"01234"
    finally:
        os.close(fd)
    assert os.listdir(m.join("e")) == []
    os.rmdir(m.join("e"))
    assert api_paths(server, repo, "main") == []


def test_a_reader_sees_the_writes_of_a_writer_after_both_lost_the_name(server, repo, mount):
    # One file, one content, also once unlinked: the reader kept a private copy taken at the unlink
    # and missed what the writer wrote after it (found by the differential test).
    m = branch(mount, repo)
    write_file(m.join("f"), b"before\n")
    reader = os.open(m.join("f"), os.O_RDONLY)
    writer = os.open(m.join("f"), os.O_WRONLY | os.O_APPEND)
    try:
        assert os.pread(reader, 100, 0) == b"before\n"
        os.unlink(m.join("f"))
        os.write(writer, b"after\n")
        with open("/proc/sys/vm/drop_caches", "w") as f:  # the kernel's page cache would answer
            f.write("1\n")
        assert os.pread(reader, 100, 0) == b"before\nafter\n"
        assert os.fstat(reader).st_size == 13
    finally:
        os.close(writer)
        os.close(reader)
    assert api_get_or_none(server, repo, "main", "f") is None


def test_a_reader_follows_its_file_through_a_rename_and_sees_later_writes(server, repo, mount):
    m = branch(mount, repo)
    write_file(m.join("a"), b"one\n")
    reader = os.open(m.join("a"), os.O_RDONLY)
    try:
        os.rename(m.join("a"), m.join("b"))
        with open(m.join("b"), "ab") as f:
            f.write(b"two\n")
        assert os.pread(reader, 100, 0) == b"one\ntwo\n"
        assert os.fstat(reader).st_size == 8
    finally:
        os.close(reader)


META = "user.lakefs.meta."


def user_meta(path):
    return {n: os.getxattr(path, n) for n in os.listxattr(path)
            if n.startswith(META) and not n.startswith(META + "::lakefs::")}


@pytest.mark.presign
def test_a_failed_ftruncate_of_a_file_not_copied_in_keeps_its_metadata_with_its_bytes(server, repo, mount):
    """A descriptor opened for writing copies its file in lazily. Another client deletes the object, so
    the listing (fetched again at once: attr_timeout=0) has only this mount's writer to name it; the
    copy-in of an ftruncate then fails (the object is no longer listed when its URL is asked for; a GET
    would meet 500s). The mount keeps showing the file as it was - its size AND its user metadata (the
    writer's entry carries them), never other bytes under its metadata; once the descriptor closes,
    the other client's delete stands."""
    body = bytes(range(256)) * 3
    server.upload(repo, "main", "kept.bin", body, headers={"X-Lakefs-Meta-Owner": "alice"})
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=0"])
    p = m.join("kept.bin")
    fd = os.open(p, os.O_RDWR)  # nothing read or written: not copied in yet
    try:
        resp = server.api("DELETE", "/repositories/%s/branches/main/objects" % repo, params={"path": "kept.bin"})
        assert resp.status_code == 204, resp.text
        for op in ("getObject", "presignedGet"):
            server.add_fault(operation=op, status=500, message="injected", count=1000)
        # The copy-in fails: reads ask for a presigned URL when they need the bytes (src/urlbatch.c),
        # and the server no longer lists the object (ESTALE, as a read through the API gets), so no
        # GET is even tried.
        with pytest.raises(OSError) as failed:
            os.ftruncate(fd, 100)
        assert failed.value.errno == errno.ESTALE
        assert sum(f["applied"] for f in server.faults()) == 0
        server.clear_faults()
        assert os.lstat(p).st_size == len(body)
        assert user_meta(p) == {META + "owner": b"alice"}
        # Its bytes are gone from the server: never other bytes under its metadata, an error.
        expect_errno(errno.ESTALE, read_file, p)
        assert os.getxattr(p, META + "owner") == b"alice"
        assert os.fstat(fd).st_size == len(body)
    finally:
        server.clear_faults()
        os.close(fd)
    assert "kept.bin" not in os.listdir(m.path)  # the other client's delete stands
    assert api_get_or_none(server, repo, "main", "kept.bin") is None


def test_an_attribute_change_that_landed_though_its_answers_were_lost_shows_the_same_with_a_descriptor_open(server, repo, mount):
    """utime on a file open for writing but unchanged: updateObjectUserMetadata lands on every try but
    each answer is lost (dropped). One statObject shows lakeFS holding the new mtime, so utime
    succeeds (it answered EIO before 2026-12-05, with the same mtime shown). The listing, fetched
    again (attr_timeout=0), shows what lakeFS holds; the descriptor's copy of that very object must
    not put its older mtime over it - the mount shows the same mtime before and after the close."""
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=0"])
    p = m.join("t.txt")
    write_file(p, b"some bytes\n")
    fd = os.open(p, os.O_RDWR)
    try:
        server.add_fault(operation="updateObjectUserMetadata", drop_response=True, count=1000)
        server.reset_counts()
        os.utime(p, (1500000000, 1500000000))
        assert sum(f["applied"] for f in server.faults()) > 0
        assert server.counts().get("statObject", 0) == 1, server.counts()
        server.clear_faults()
        landed = api_stat(server, repo, "main", "t.txt")["metadata"].get("::lakefs::client-mtime")
        assert landed == "1500000000"  # lakeFS holds it
        assert int(os.stat(p).st_mtime) == 1500000000
    finally:
        server.clear_faults()
        os.close(fd)
    assert int(os.stat(p).st_mtime) == 1500000000
    assert read_file(p) == b"some bytes\n"


def test_unlink_while_open_in_a_directory_near_the_key_limit(server, repo, mount):
    """libfuse keeps a file unlinked while open under a .fuse_hidden name in its directory, which lives
    in this mount's memory only: lakeFS's 1,024-byte key limit must not make the unlink EBUSY when the
    directory's key leaves no room for that name (the differential test found it)."""
    m = branch(mount, repo)
    deep = m.join("a" * 250, "b" * 250, "c" * 250, "d" * 245)  # key "a.../b.../c.../d.../": 1,000 bytes
    os.makedirs(deep)
    path = os.path.join(deep, "x" * 20)  # its key: 1,020 bytes; a hidden name there would pass 1,024
    write_file(path, b"still readable\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.unlink(path)
        assert not os.path.exists(path)
        assert os.pread(fd, 100, 0) == b"still readable\n"
        assert os.fstat(fd).st_size == len(b"still readable\n")
    finally:
        os.close(fd)
    assert api_get_or_none(server, repo, "main", os.path.relpath(path, m.path)) is None


@pytest.mark.parametrize("touch_first", [False, True], ids=["untouched", "written"])
def test_a_file_unlinked_while_open_in_a_directory_removed_after(server, repo, mount, touch_first):
    # Found by scripts/soak.sh. libfuse keeps such a file under DIR/.fuse_hidden...; once DIR itself
    # is removed, libfuse has no path for the file and answers a GETATTR without a file handle (the
    # kernel sends none for fstat) with ESTALE before lakefuse is asked: the documented limit of the
    # path-based libfuse API (README, "Open files"). Everything that carries the descriptor works.
    m = branch(mount, repo)
    os.mkdir(m.join("d"))
    write_file(m.join("d", "f"), b"0123456789")
    fd = os.open(m.join("d", "f"), os.O_RDWR | os.O_APPEND)
    try:
        if touch_first:
            os.write(fd, b"ab")
        os.unlink(m.join("d", "f"))
        os.rmdir(m.join("d"))
        assert not os.path.lexists(m.join("d"))
        os.write(fd, b"xyz")
        os.fsync(fd)
        head = b"0123456789" + (b"ab" if touch_first else b"")
        assert os.pread(fd, 100, 0) == head + b"xyz"
        os.ftruncate(fd, 4)
        assert os.pread(fd, 100, 0) == b"0123"
        with pytest.raises(OSError) as e:
            os.fstat(fd)
        assert e.value.errno == errno.ESTALE
    finally:
        os.close(fd)
    assert api_paths(server, repo, "main") == []  # nothing it wrote reached lakeFS


@pytest.mark.parametrize("written", [False, True])
def test_fchown_fchmod_and_futimens_work_on_a_file_unlinked_while_open(server, repo, mount, written):
    # Found by the differential test once it chowned: libfuse renames such a file to a .fuse_hidden
    # name only this mount knows, and the attribute changes of its descriptor looked that name up on
    # lakeFS (ENOENT). They now change what the mount keeps of the file, which fstat shows.
    m = branch(mount, repo)
    write_file(m.join("f"), b"base\n")
    fd = os.open(m.join("f"), os.O_RDWR if written else os.O_RDONLY)
    try:
        if written:
            os.write(fd, b"x")
        os.unlink(m.join("f"))
        os.fchown(fd, 1234, 4321)
        os.fchmod(fd, 0o600)
        os.utime(fd, (1500000000, 1500000000))
        st = os.fstat(fd)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777, int(st.st_mtime)) == (1234, 4321, 0o600, 1500000000)
        assert st.st_nlink == 0
    finally:
        os.close(fd)
    assert not os.path.exists(m.join("f"))
    assert api_get_or_none(server, repo, "main", "f") is None


@pytest.mark.parametrize("name", [".fuse_hidden_backup", ".fuse_hidden0123456789abcdef"])
def test_a_program_may_use_names_like_libfuses_hidden_ones(server, repo, mount, name):
    """Found reading the hide path: a rename to a name starting .fuse_hidden was taken for libfuse
    hiding a file unlinked while open - the object was deleted on lakeFS and the file kept in memory
    only, so `mv data.csv .fuse_hidden_backup` lost it. libfuse hides only files open through the
    mount, under .fuse_hidden and 16 hex digits: anything else is a rename like any other, and an
    object of such a name takes chmod, chown, utime, xattrs and unlink as any object does."""
    m = branch(mount, repo)
    write_file(m.join("data.csv"), b"precious\n")
    os.mkdir(m.join("d"))
    os.rename(m.join("data.csv"), m.join(name))
    os.rename(m.join("d"), m.join(name + "-dir"))
    assert sorted(os.listdir(m.path)) == sorted([name, name + "-dir"])
    assert read_file(m.join(name)) == b"precious\n"
    assert api_get(server, repo, "main", name) == b"precious\n"
    os.chmod(m.join(name), 0o600)
    os.chown(m.join(name), 1234, 4321)
    os.utime(m.join(name), (1500000000, 1500000000))
    os.setxattr(m.join(name), META + "k", b"v")
    st = os.stat(m.join(name))
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, int(st.st_mtime)) == (0o600, 1234, 4321, 1500000000)
    assert user_meta(m.join(name)) == {META + "k": b"v"}
    os.rename(m.join(name), m.join("back.csv"))
    assert read_file(m.join("back.csv")) == b"precious\n"
    assert sorted(api_paths(server, repo, "main")) == sorted(["back.csv", name + "-dir/"])
    write_file(m.join(name), b"again")
    os.unlink(m.join(name))
    assert not os.path.lexists(m.join(name))
    assert api_get_or_none(server, repo, "main", name) is None


@pytest.mark.parametrize("written", [False, True])
def test_an_open_file_renamed_to_a_name_like_libfuses_hidden_ones_is_renamed(server, repo, mount, written):
    """Found by the differential test once its names included .fuse_hidden and 16 hex digits: an open
    file renamed by a program to exactly such a name was taken for libfuse hiding it (deleted on
    lakeFS, kept in memory until the last close), so its bytes were lost. libfuse renames a file it
    hides to a name it has just probed with a getattr in the same thread; a program's rename is an
    ordinary one, the descriptor follows the file, and the last close uploads to the new name."""
    m = branch(mount, repo)
    write_file(m.join("f"), b"base\n")
    name = ".fuse_hidden0000000200000001"  # libfuse's pattern, small numbers like its own
    fd = os.open(m.join("f"), os.O_RDWR if written else os.O_RDONLY)
    try:
        if written:
            os.pwrite(fd, b"B", 0)
        os.rename(m.join("f"), m.join(name))
        assert os.listdir(m.path) == [name]
        assert os.fstat(fd).st_nlink == 1
        assert os.pread(fd, 100, 0) == (b"Base\n" if written else b"base\n")
    finally:
        os.close(fd)
    want = b"Base\n" if written else b"base\n"
    assert read_file(m.join(name)) == want
    assert api_paths(server, repo, "main") == [name]
    assert api_get(server, repo, "main", name) == want
    os.unlink(m.join(name))
    assert api_paths(server, repo, "main") == []


@pytest.mark.parametrize("written", [False, True])
def test_xattrs_of_a_file_unlinked_while_open_stay_with_its_descriptor(server, repo, mount, written):
    """As on a local file system, a descriptor of an unlinked file still has the file's extended
    attributes: fgetxattr and flistxattr answer what the file had (its user metadata, a key staged
    on a file being written too), and fsetxattr / fremovexattr change what this mount keeps of it.
    They answered ENOENT (the .fuse_hidden name was looked up on lakeFS). Nothing reaches lakeFS."""
    m = branch(mount, repo)
    write_file(m.join("f"), b"base\n")
    os.setxattr(m.join("f"), META + "owner", b"alice")
    fd = os.open(m.join("f"), os.O_RDWR if written else os.O_RDONLY)
    try:
        if written:
            os.write(fd, b"x")
            os.setxattr(m.join("f"), META + "staged", b"yes")  # goes with the upload that never comes
        os.unlink(m.join("f"))
        want = {META + "owner": b"alice"}
        if written:
            want[META + "staged"] = b"yes"
        assert user_meta(fd) == want
        os.setxattr(fd, META + "later", b"1")
        os.removexattr(fd, META + "owner")
        del want[META + "owner"]
        want[META + "later"] = b"1"
        assert user_meta(fd) == want
        with pytest.raises(OSError) as e:
            os.removexattr(fd, META + "owner")
        assert e.value.errno == errno.ENODATA
        with pytest.raises(OSError) as e:
            os.getxattr(fd, META + "owner")
        assert e.value.errno == errno.ENODATA
        for name in (META + "::lakefs::mode", "user.other"):
            with pytest.raises(OSError) as e:
                os.setxattr(fd, name, b"1")
            assert e.value.errno == errno.ENOTSUP, name
        with pytest.raises(OSError) as e:
            os.setxattr(fd, META + "bad", b"\xff")
        assert e.value.errno == errno.EILSEQ
        # mtime follows futimens, as fstat shows it
        os.utime(fd, (1500000000, 1500000000))
        assert os.getxattr(fd, "user.lakefs.mtime") == b"1500000000"
    finally:
        os.close(fd)
    assert not os.path.exists(m.join("f"))
    assert api_paths(server, repo, "main") == []
