"""Extended attributes of issue 5: user.lakefs.commit and user.lakefs.merge on a ref root (the control
files' requests and errno table, through setxattr), user.lakefs.commit_id showing the new head at
once, and user.lakefs.meta.KEY on files written and removed through updateObjectUserMetadata without
re-uploading anything. Every test works on a fresh repository, in a mount whose caches never expire."""
import errno
import os
import shlex
import stat

import pytest

from mountlib import (api_branches, api_commit, api_commit_id, api_create_branch, api_get, api_get_or_none,
                      api_metadata, control_json, control_path, control_read, data_upload_calls, expect_errno,
                      fsync_path, read_file, sh, status_lines, write_file)

FOREVER = "attr_timeout=3600"


def commit_id_xattr(path):
    return os.getxattr(path, "user.lakefs.commit_id").decode()


def test_commit_and_merge_through_xattrs_on_a_ref_root(server, repo, mount):
    server.upload(repo, "main", "base.txt", b"base\n")
    base = server.commit(repo, "main", "base")["id"]
    api_create_branch(server, repo, "feature", "main")
    server.upload(repo, "feature", "feature.txt", b"feature\n")
    feature = server.commit(repo, "feature", "feature work")["id"]
    m = mount("lakefs://" + repo, options=[FOREVER])
    main = m.join("main")
    assert commit_id_xattr(main) == base  # cached for an hour from here on
    assert os.listdir(main) == ["base.txt"]

    expect_errno(errno.ENODATA, os.setxattr, main, "user.lakefs.commit", b"nothing to commit")
    assert control_json(control_path(m, "commit", "main"))["errno"] == "ENODATA"
    assert api_commit_id(server, repo, "main") == base

    write_file(m.join("main", "new.txt"), b"new\n")
    sh("setfattr -n user.lakefs.commit -v 'committed with setfattr' %s" % shlex.quote(main))
    c = api_commit(server, repo, "main")
    assert c["message"] == "committed with setfattr" and c["parents"] == [base]
    assert api_get(server, repo, c["id"], "new.txt") == b"new\n"
    assert commit_id_xattr(main) == c["id"]
    assert control_read(control_path(m, "head", "main")) == c["id"] + "\n"
    assert control_json(control_path(m, "commit", "main"))["commit"]["id"] == c["id"]

    sh("setfattr -n user.lakefs.merge -v feature %s" % shlex.quote(main))
    merged = api_commit(server, repo, "main")
    assert merged["parents"] == [c["id"], feature]
    assert commit_id_xattr(main) == merged["id"]
    assert sorted(os.listdir(main)) == ["base.txt", "feature.txt", "new.txt"]
    assert read_file(m.join("main", "feature.txt")) == b"feature\n"
    assert control_json(control_path(m, "merge", "main"))["reference"] == merged["id"]

    # Errors come back from setxattr.
    expect_errno(errno.ENOENT, os.setxattr, main, "user.lakefs.merge", b"no-such-ref")
    api_create_branch(server, repo, "clash", "main")
    server.upload(repo, "clash", "new.txt", b"clash's version\n")
    server.commit(repo, "clash", "clash")
    write_file(m.join("main", "new.txt"), b"main's version\n")
    os.setxattr(main, "user.lakefs.commit", b"main's version")
    head = api_commit_id(server, repo, "main")
    expect_errno(errno.EEXIST, os.setxattr, main, "user.lakefs.merge", b"clash")
    assert control_json(control_path(m, "merge", "main"))["conflicts"] == ["new.txt"]
    write_file(m.join("main", "another.txt"), b"another\n")
    server.add_fault(operation="commit", status=403, message="injected: not allowed", count=1)
    expect_errno(errno.EPERM, os.setxattr, main, "user.lakefs.commit", b"refused")
    assert api_commit_id(server, repo, "main") == head and commit_id_xattr(main) == head
    assert status_lines(m, "main") == ["A another.txt"]
    # Fixed refs.
    for ref in (base, "main~1"):
        expect_errno(errno.EROFS, os.setxattr, m.join(ref), "user.lakefs.commit", b"no")
        expect_errno(errno.EROFS, os.setxattr, m.join(ref), "user.lakefs.merge", b"feature")
    assert api_commit_id(server, repo, "main") == head
    assert sorted(api_branches(server, repo)) == ["clash", "feature", "main"]


def test_user_metadata_xattrs_on_files(server, repo, mount):
    server.upload(repo, "main", "f.txt", b"data\n", headers={"X-Lakefs-Meta-Owner": "alice",
                                                            "X-Lakefs-Internal-client-mtime": "1600000000"})
    m = mount("lakefs://%s/main" % repo, options=[FOREVER])
    f = m.join("f.txt")
    before = api_metadata(server, repo, "main", "f.txt")
    assert before == {"owner": "alice", "::lakefs::client-mtime": "1600000000"}
    assert os.getxattr(f, "user.lakefs.meta.owner") == b"alice"
    server.reset_counts()

    sh("setfattr -n user.lakefs.meta.reviewer -v bob %s" % shlex.quote(f))
    assert api_metadata(server, repo, "main", "f.txt") == dict(before, reviewer="bob")
    assert os.getxattr(f, "user.lakefs.meta.reviewer") == b"bob"  # the mount shows it at once
    assert "user.lakefs.meta.reviewer" in os.listxattr(f)
    os.setxattr(f, "user.lakefs.meta.owner", b"carol")
    assert api_metadata(server, repo, "main", "f.txt") == dict(before, reviewer="bob", owner="carol")
    assert os.getxattr(f, "user.lakefs.meta.owner") == b"carol"
    # The key is stored as named: the test server keeps updateObjectUserMetadata's keys as sent, and
    # the attribute reads back under the same name.
    os.setxattr(f, "user.lakefs.meta.Team", b"data platform")
    assert api_metadata(server, repo, "main", "f.txt") == dict(before, reviewer="bob", owner="carol",
                                                               Team="data platform")
    assert os.getxattr(f, "user.lakefs.meta.Team") == b"data platform"

    sh("setfattr -x user.lakefs.meta.reviewer %s" % shlex.quote(f))
    assert api_metadata(server, repo, "main", "f.txt") == dict(before, owner="carol", Team="data platform")
    expect_errno(errno.ENODATA, os.getxattr, f, "user.lakefs.meta.reviewer")
    assert "user.lakefs.meta.reviewer" not in os.listxattr(f)
    expect_errno(errno.ENODATA, os.removexattr, f, "user.lakefs.meta.never-set")
    # Other user.* names are not lakeFS's.
    expect_errno(errno.ENOTSUP, os.setxattr, f, "user.comment", b"hello")
    # lakectl's own keys follow chmod, chown and utime: shown, never set or removed by name (the
    # upload's would replace them: the call would succeed and change nothing).
    assert os.getxattr(f, "user.lakefs.meta.::lakefs::client-mtime") == b"1600000000"
    expect_errno(errno.ENOTSUP, os.setxattr, f, "user.lakefs.meta.::lakefs::client-mtime", b"1")
    expect_errno(errno.ENOTSUP, os.removexattr, f, "user.lakefs.meta.::lakefs::client-mtime")
    assert api_metadata(server, repo, "main", "f.txt")["::lakefs::client-mtime"] == "1600000000"
    # A later chmod keeps the user metadata set through xattrs.
    os.chmod(f, 0o600)
    meta = api_metadata(server, repo, "main", "f.txt")
    assert meta["owner"] == "carol" and meta["Team"] == "data platform" and "reviewer" not in meta, meta
    assert "::lakefs::posix-permissions" in meta
    # Metadata only: the data was never re-sent.
    assert data_upload_calls(server.counts()) == {}, server.counts()
    assert api_get(server, repo, "main", "f.txt") == b"data\n"
    assert read_file(f) == b"data\n"
    assert status_lines(m) == ["A f.txt"]


@pytest.mark.parametrize("options", [(), ("async_close",)], ids=["default", "async_close"])
def test_user_metadata_xattrs_on_directories(server, repo, mount, options):
    """user.lakefs.meta.KEY of a directory is its marker's user metadata: shown from the marker,
    set and removed on it (a directory that is only a prefix gets a marker on its first key, as on
    its first chmod), kept by a rename, shown by a fresh mount. A ref root has no marker, nor has a
    -o nodir_markers mount: ENOTSUP there."""
    server.upload(repo, "main", "tagged/", b"", headers={"X-Lakefs-Meta-Owner": "alice"})
    server.upload(repo, "main", "tagged/f", b"f")
    server.upload(repo, "main", "prefix/f", b"f")
    server.upload(repo, "main", "bare/f", b"f")
    m = mount("lakefs://%s/main" % repo, options=[FOREVER] + list(options))
    tagged, prefix = m.join("tagged"), m.join("prefix")
    assert os.getxattr(tagged, "user.lakefs.meta.owner") == b"alice"
    assert "user.lakefs.meta.owner" in os.listxattr(tagged)
    assert [n for n in os.listxattr(prefix) if n.startswith("user.lakefs.meta.")] == []
    sh("setfattr -n user.lakefs.meta.reviewer -v bob %s" % shlex.quote(tagged))
    assert os.getxattr(tagged, "user.lakefs.meta.reviewer") == b"bob"  # the mount shows it at once
    os.setxattr(prefix, "user.lakefs.meta.stage", b"raw")
    assert os.getxattr(prefix, "user.lakefs.meta.stage") == b"raw"
    os.mkdir(m.join("made"))
    os.setxattr(m.join("made"), "user.lakefs.meta.k", b"v1")
    os.setxattr(m.join("made"), "user.lakefs.meta.k", b"v2")
    assert os.getxattr(m.join("made"), "user.lakefs.meta.k") == b"v2"
    sh("setfattr -x user.lakefs.meta.owner %s" % shlex.quote(tagged))
    expect_errno(errno.ENODATA, os.getxattr, tagged, "user.lakefs.meta.owner")
    expect_errno(errno.ENODATA, os.removexattr, tagged, "user.lakefs.meta.never-set")
    expect_errno(errno.ENODATA, os.removexattr, m.join("bare"), "user.lakefs.meta.never-set")
    expect_errno(errno.ENOTSUP, os.setxattr, tagged, "user.comment", b"hello")
    expect_errno(errno.ENOTSUP, os.setxattr, tagged, "user.lakefs.meta.::lakefs::client-mtime", b"1")
    expect_errno(errno.ENOTSUP, os.setxattr, m.path, "user.lakefs.meta.k", b"v")  # a ref root
    expect_errno(errno.ENOTSUP, os.setxattr, m.path, "user.comment", b"v")  # was answered 0, unstored
    os.chmod(prefix, 0o711)  # keeps the key
    for d in ("tagged", "prefix", "made"):  # with -o async_close: once lakeFS has what was queued
        fsync_path(m.join(d), os.O_RDONLY | os.O_DIRECTORY)
    assert {k: v for k, v in api_metadata(server, repo, "main", "tagged/").items()
            if not k.startswith("::")} == {"reviewer": "bob"}
    assert api_metadata(server, repo, "main", "prefix/")["stage"] == "raw"
    assert api_metadata(server, repo, "main", "made/")["k"] == "v2"
    assert api_get_or_none(server, repo, "main", "bare/") is None  # a failed removal made no marker
    os.rename(m.join("made"), m.join("moved"))
    assert os.getxattr(m.join("moved"), "user.lakefs.meta.k") == b"v2"
    assert api_metadata(server, repo, "main", "moved/")["k"] == "v2"
    fresh = mount("lakefs://%s/main" % repo, options=[FOREVER])
    assert os.getxattr(fresh.join("tagged"), "user.lakefs.meta.reviewer") == b"bob"
    assert os.getxattr(fresh.join("prefix"), "user.lakefs.meta.stage") == b"raw"
    assert os.getxattr(fresh.join("moved"), "user.lakefs.meta.k") == b"v2"
    assert stat.S_IMODE(os.stat(fresh.join("prefix")).st_mode) == 0o711
    plain = mount("lakefs://%s/main" % repo, options=[FOREVER, "nodir_markers"])
    expect_errno(errno.ENOTSUP, os.setxattr, plain.join("tagged"), "user.lakefs.meta.k", b"v")
    assert read_file(plain.join("tagged", "f")) == b"f"
