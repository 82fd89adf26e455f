"""Extended attributes of issue 5: user.lakefs.commit and user.lakefs.merge on a ref root (the control
files' requests and errno table, through setxattr), user.lakefs.commit_id showing the new head at
once, and user.lakefs.meta.KEY on files written and removed through updateObjectUserMetadata without
re-uploading anything. Every test works on a fresh repository, in a mount whose caches never expire."""
import errno
import os
import shlex

from mountlib import (api_branches, api_commit, api_commit_id, api_create_branch, api_get, api_metadata,
                      control_json, control_path, control_read, data_upload_calls, expect_errno, read_file,
                      sh, status_lines, write_file)

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
