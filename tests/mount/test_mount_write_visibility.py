"""A file being written stays visible: while a descriptor holds it open for writing (or the writer
holds it before its upload), ls, find, stat, open, chmod and truncate find it, whatever happens to
its directory's cached listing - the listing expiring and being fetched again from a server that
does not have the file yet, or every listing of the branch being dropped by a directory rename
elsewhere. Synchronises by polling the mount and the server's call counts, never by sleeping."""
import errno
import os
import stat
import threading

from mountlib import api_get, api_get_or_none, expect_errno, poll, read_file, run, write_file


def branch(mount, repo, *options):
    return mount("lakefs://%s/main" % repo, options=list(options))


def listing_refetched(server, path):
    """Lists path until the mount has asked the server for a listing again (after server.reset_counts)."""
    def refetched():
        os.listdir(path)
        return server.counts().get("listObjects", 0) >= 1
    return poll(refetched, timeout=30.0)


def drop_listings_by_renaming_elsewhere(m, n):
    """A directory rename elsewhere in the branch drops every cached listing of the branch."""
    os.mkdir(m.join("elsewhere%d" % n))
    os.rename(m.join("elsewhere%d" % n), m.join("moved%d" % n))


def assert_shown(m, rel, size):
    parent, name = os.path.split(m.join(rel))
    assert name in os.listdir(parent)
    assert os.fsencode(name) in run(["ls", "-a", parent]).stdout.split(b"\n")
    found = run(["find", m.path, "-type", "f"]).stdout.split(b"\n")
    assert os.fsencode(m.join(rel)) in found, found
    st = os.stat(m.join(rel))
    assert stat.S_ISREG(st.st_mode) and st.st_size == size, st


def test_file_open_for_writing_survives_an_expired_listing(server, repo, mount):
    # At the ref root: listing it costs no lookup of a parent, so any listObjects is its own.
    m = branch(mount, repo, "attr_timeout=0.3")
    write_file(m.join("kept.txt"), b"on the server\n")
    data = b"x" * 5000
    fd = os.open(m.join("f.bin"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, data)
        server.reset_counts()
        assert listing_refetched(server, m.path), "the root listing was never fetched again"
        assert api_get_or_none(server, repo, "main", "f.bin") is None  # not uploaded yet
        assert sorted(os.listdir(m.path)) == ["f.bin", "kept.txt"]
        assert_shown(m, "f.bin", len(data))
        os.write(fd, b"y" * 100)
        server.reset_counts()
        assert listing_refetched(server, m.path)
        assert_shown(m, "f.bin", len(data) + 100)
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "f.bin") == data + b"y" * 100
    assert_shown(m, "f.bin", len(data) + 100)


def test_file_open_for_writing_survives_a_directory_rename_elsewhere(server, repo, mount):
    m = branch(mount, repo, "attr_timeout=3600")
    os.mkdir(m.join("d"))
    with open(m.join("d", "old.txt"), "wb") as f:
        f.write(b"already there\n")
    fd = os.open(m.join("d", "new.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    fd_root = os.open(m.join("top.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"n" * 321)
        os.write(fd_root, b"t" * 12)
        drop_listings_by_renaming_elsewhere(m, 1)
        assert sorted(os.listdir(m.join("d"))) == ["new.txt", "old.txt"]
        assert_shown(m, "d/new.txt", 321)
        assert_shown(m, "top.txt", 12)
        assert sorted(os.listdir(m.path)) == ["d", "moved1", "top.txt"]
        # An existing object opened for writing shows its new size after a refetch too.
        fd_old = os.open(m.join("d", "old.txt"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd_old, b"appended\n")
            drop_listings_by_renaming_elsewhere(m, 2)
            assert_shown(m, "d/old.txt", len(b"already there\nappended\n"))
        finally:
            os.close(fd_old)
    finally:
        os.close(fd)
        os.close(fd_root)
    assert api_get(server, repo, "main", "d/new.txt") == b"n" * 321
    assert api_get(server, repo, "main", "top.txt") == b"t" * 12
    assert read_file(m.join("d", "old.txt")) == b"already there\nappended\n"


def test_truncate_by_path_after_the_directory_of_its_twin_moved(server, repo, mount):
    """mkdir d1; mv d1 dü; mkdir dü/d0 d0; exec 3<>d0/.hidden; mv dü/d0 dü/d2; truncate -s 10562 d0/.hidden"""
    m = branch(mount, repo, "attr_timeout=3600")
    os.mkdir(m.join("d1"))
    os.rename(m.join("d1"), m.join("dü"))
    os.mkdir(m.join("dü", "d0"))
    os.mkdir(m.join("d0"))
    fd = os.open(m.join("d0", ".hidden"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.rename(m.join("dü", "d0"), m.join("dü", "d2"))
        os.truncate(m.join("d0", ".hidden"), 10562)
        assert os.stat(m.join("d0", ".hidden")).st_size == 10562
        assert os.listdir(m.join("d0")) == [".hidden"]
        assert os.fstat(fd).st_size == 10562
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "d0/.hidden") == b"\0" * 10562
    assert sorted(os.listdir(m.join("dü"))) == ["d2"]


def test_open_append_and_chmod_of_a_file_being_written_after_a_rename_elsewhere(server, repo, mount):
    m = branch(mount, repo, "attr_timeout=3600")
    os.mkdir(m.join("d"))
    fd = os.open(m.join("d", "log"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"first\n")
        drop_listings_by_renaming_elsewhere(m, 1)
        fd2 = os.open(m.join("d", "log"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        try:
            os.write(fd2, b"second\n")
        finally:
            os.close(fd2)
        drop_listings_by_renaming_elsewhere(m, 2)
        os.chmod(m.join("d", "log"), 0o600)
        assert stat.S_IMODE(os.stat(m.join("d", "log")).st_mode) == 0o600
        drop_listings_by_renaming_elsewhere(m, 3)
        assert os.listdir(m.join("d")) == ["log"]
        expect_errno(errno.EEXIST, os.open, m.join("d", "log"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    finally:
        os.close(fd)
    assert api_get(server, repo, "main", "d/log") == b"first\nsecond\n"
    assert read_file(m.join("d", "log")) == b"first\nsecond\n"


UPLOAD_LATENCY_MS = 4000


def test_listing_a_directory_does_not_wait_for_an_upload_in_it(server, repo, mount):
    m = branch(mount, repo, "attr_timeout=3600")
    os.mkdir(m.join("d"))
    fd = os.open(m.join("d", "big"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x" * 100000)
    os.mkdir(m.join("elsewhere"))  # its marker's upload must not meet the latency below
    for op in ("uploadObject", "getPhysicalAddress"):  # the first call of either upload path
        server.add_fault(operation=op, latency_ms=UPLOAD_LATENCY_MS, count=1)
    server.reset_counts()
    closer = threading.Thread(target=os.close, args=(fd,))
    closer.start()
    try:
        assert poll(lambda: server.counts().get("uploadObject", 0) + server.counts().get("getPhysicalAddress", 0))
        os.rename(m.join("elsewhere"), m.join("moved"))  # drops every listing of the branch
        names = os.listdir(m.join("d"))
        size = os.stat(m.join("d", "big")).st_size
        # The upload is still held by the server: the listing and stat did not wait for it.
        uploading = closer.is_alive()
    finally:
        closer.join()
    assert names == ["big"] and size == 100000
    assert uploading, "listing d/ returned only after the upload in it finished"



def test_a_create_whose_lookup_meets_a_listing_error_still_gives_its_descriptor(server, repo, mount):
    """libfuse looks a new file up right after creating it; when that lookup needed a listing and
    lakeFS failed it, the program got EIO from open(O_CREAT) while the new, empty file stayed (and was
    uploaded at the release libfuse sends). The descriptor being written now answers the lookup:
    the open succeeds and the file holds what the program writes. Reduced from the soak under faults
    (scripts/soak.sh, seed 14002, op #185). attr_timeout=0: the create lists the directory, then the
    lookup lists it again, the one lakeFS fails."""
    m = branch(mount, repo, "attr_timeout=0")
    write_file(m.join("e"), b"e")
    server.add_fault(operation="listObjects", latency_ms=1, count=1)  # the create's own listing goes through
    server.add_fault(operation="listObjects", status=500, message="injected failure", count=20)
    try:
        fd = os.open(m.join("c"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"created")
        os.close(fd)
    finally:
        server.clear_faults()
    assert api_get(server, repo, "main", "c") == b"created"
    assert read_file(m.join("c")) == b"created"
