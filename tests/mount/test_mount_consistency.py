"""What a mount does when the object store or the branch moves under it: presigned URLs close to
expiry are refreshed (statObject) before use; an object replaced on a branch after it was listed is
never served or cached under the old checksum (ESTALE, then the new version on reopen); the
kernel's page cache is kept across opens while the checksum is unchanged."""
import errno
import os

import pytest

import mountlib
from mountlib import api_get, gets, run

MIB = 1 << 20


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.presign
def test_presigned_urls_close_to_expiry_are_refreshed(lakefs_server_factory, mount, tmp_path):
    # URLs live 20 s, less than the 30 s refresh margin: every fetch of an open file must get a fresh
    # one, and the directory's presigned listing is not asked again for URLs no fresher.
    srv = lakefs_server_factory(extra_args=["--presign-ttl", "20"])
    repo = srv.create_repo()
    data = bytes(mountlib.PatternStream(20 * MIB + 5, 11).read())  # several GETs of up to 8 MiB
    srv.upload(repo, "main", "f.bin", data)
    srv.upload(repo, "main", "g.bin", data[:MIB])
    home = tmp_path / "home-ttl"
    home.mkdir()
    # prefetch=0: g.bin is read by the test's open, not fetched ahead when f.bin opens.
    m = mount("lakefs://%s/main" % repo, options=["prefetch=0"], env=mountlib.lakefuse_env(srv, home))
    assert os.path.getsize(m.join("f.bin")) == len(data)
    srv.reset_counts()
    assert read(m.join("f.bin")) == data
    counted = srv.counts()
    # The first URL comes from the presigned listing of the file's directory (src/urlbatch.c); each
    # later fetch of the open file finds it under the margin and asks statObject for a fresh one. A
    # fetch that started before the first URL was kept (the kernel reads ahead in parallel) takes
    # one from the batch, which is still in the first half of its 20 s life.
    from_batch = m.stats()["presigned_urls"]["urls"]
    assert counted.get("statObject", 0) >= 1, counted
    assert counted.get("listObjects", 0) == 1, counted
    assert counted.get("statObject", 0) + from_batch == counted.get("presignedGet", 0), counted
    assert counted.get("getObject", 0) == 0, counted
    # Another file of the directory: its URL is in the batch already, whose URLs the server signed
    # for 20 s; a second listing would give none fresher (the previous binary listed again).
    assert read(m.join("g.bin")) == data[:MIB]
    counted = srv.counts()
    assert counted.get("listObjects", 0) == 1, counted
    assert m.stats()["presigned_urls"]["urls"] == from_batch + 1
    assert m.unmount() == 0
    assert srv.violations() == []


@pytest.mark.parametrize("presign", ["false", pytest.param("true", marks=pytest.mark.presign)])
def test_object_replaced_after_listing_is_stale_not_mixed(server, repo, mount, presign):
    server.upload(repo, "main", "d/f.txt", b"first version\n")
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=3600", "presign=" + presign])
    assert os.path.getsize(m.join("d", "f.txt")) == len(b"first version\n")
    # Another client replaces the object; the mount still holds the old listing.
    server.upload(repo, "main", "d/f.txt", b"second, longer version\n")
    # Read by path through the API, the ETag no longer matches the listed checksum; with presigned
    # URLs, the presigned listing that gives the URL (src/urlbatch.c) lists another checksum.
    with pytest.raises(OSError) as e:
        read(m.join("d", "f.txt"))
    assert e.value.errno == errno.ESTALE
    assert "changed while open" in m.log()
    # The listing was dropped: a fresh lookup sees the new object.
    assert read(m.join("d", "f.txt")) == b"second, longer version\n"
    # The kernel may have asked for the stale range more than once (read-ahead and read).
    assert m.stats()["fetch_errors"] >= 1


def test_page_cache_kept_while_checksum_unchanged(server, repo, mount):
    data = bytes(mountlib.PatternStream(MIB + 3, 5).read())
    server.upload(repo, "main", "f.bin", data)
    commit = server.commit(repo, "main", "one")["id"]
    for ref, options in (("main", ["attr_timeout=3600"]), (commit, [])):
        m = mount("lakefs://%s/%s" % (repo, ref), options=options)
        path = m.join("f.bin")
        assert read(path) == data  # first open of a branch file: pages are not trusted yet
        assert read(path) == data  # same checksum: pages kept from here on
        before = m.stats()["bytes_read"]
        server.reset_counts()
        assert read(path) == data
        assert run(["cat", path]).stdout == data
        # Served by the kernel's page cache: lakefuse read nothing, lakeFS saw nothing.
        assert m.stats()["bytes_read"] == before
        assert gets(server.counts()) == 0
