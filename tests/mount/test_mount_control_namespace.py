"""Repositories and branches as directories (issue 5): in a lakefs://REPO or lakefs:// mount, mkdir
creates a branch from the repository's default branch (its last commit); rmdir and rename of a branch
answer EPERM; in a lakefs:// mount mkdir creates a repository when the server's /config offers a
default_namespace_prefix, and answers EPERM with the reason in the log otherwise."""
import errno
import os
import uuid

import pytest

import mountlib
from mountlib import (api_branches, api_get, api_ok, api_repositories, expect_errno, read_file, write_file)

FOREVER = "attr_timeout=3600"


def test_mkdir_in_a_repository_creates_a_branch_from_the_default_branch(server, mount):
    # The default branch is "trunk", and a branch "main" lags behind it: the new branch must start
    # at trunk's head, not main's and not trunk's uncommitted changes.
    name = "trunk-" + uuid.uuid4().hex[:10]
    server.create_repo(name, default_branch="trunk")
    try:
        server.upload(name, "trunk", "f.txt", b"f\n")
        t1 = server.commit(name, "trunk", "one")["id"]
        mountlib.api_create_branch(server, name, "main", t1)
        server.upload(name, "trunk", "g.txt", b"g\n")
        t2 = server.commit(name, "trunk", "two")["id"]
        server.upload(name, "trunk", "staged.txt", b"uncommitted on trunk\n")
        m = mount("lakefs://" + name, options=[FOREVER])
        assert sorted(os.listdir(m.path)) == ["main", "trunk"]  # cached for an hour from here on

        os.mkdir(m.join("experiment"))
        assert api_branches(server, name) == {"experiment": t2, "main": t1, "trunk": t2}
        assert sorted(os.listdir(m.path)) == ["experiment", "main", "trunk"]
        assert sorted(os.listdir(m.join("experiment"))) == ["f.txt", "g.txt"]
        assert mountlib.control_read(mountlib.control_path(m, "head", "experiment")) == t2 + "\n"
        write_file(m.join("experiment", "h.txt"), b"h\n")  # a branch like any other
        assert api_get(server, name, "experiment", "h.txt") == b"h\n"

        expect_errno(errno.EEXIST, os.mkdir, m.join("experiment"))
        expect_errno(errno.EEXIST, os.mkdir, m.join("main"))
        # Deleting or renaming a branch is not a filesystem operation.
        expect_errno(errno.EPERM, os.rmdir, m.join("experiment"))
        expect_errno(errno.EPERM, os.rmdir, m.join("main"))
        expect_errno(errno.EPERM, os.rename, m.join("experiment"), m.join("renamed"))
        assert sorted(api_branches(server, name)) == ["experiment", "main", "trunk"]
        assert sorted(os.listdir(m.path)) == ["experiment", "main", "trunk"]
        assert read_file(m.join("experiment", "h.txt")) == b"h\n"
    finally:
        server.api("DELETE", "/repositories/" + name)


def test_lakefs_root_mkdir_branch_but_no_repository_without_a_namespace_prefix(server, repo, mount):
    head = mountlib.api_commit_id(server, repo, "main")
    m = mount("lakefs://", options=[FOREVER])
    os.mkdir(m.join(repo, "from-root-mount"))
    assert api_branches(server, repo) == {"from-root-mount": head, "main": head}
    assert "from-root-mount" in os.listdir(m.join(repo))
    expect_errno(errno.EPERM, os.rmdir, m.join(repo, "from-root-mount"))
    # The session server has no default_namespace_prefix (absent, or "" as real lakeFS on S3 says):
    # no repository, and the log says why.
    config = api_ok(server.api("GET", "/config"))
    if config["storage_config"].get("default_namespace_prefix"):
        pytest.skip("this server has a default namespace prefix (lakeFS's local blockstore: local://)")
    new = "mkdir-repo-" + uuid.uuid4().hex[:10]
    expect_errno(errno.EPERM, os.mkdir, m.join(new))
    assert new not in api_repositories(server)
    assert new not in os.listdir(m.path)
    assert m.wait_for_log(lambda line: "default_namespace_prefix" in line), m.log()[-2000:]


def test_lakefs_root_mkdir_creates_a_repository_under_the_default_namespace_prefix(lakefs_server, lakefs_server_factory,
                                                                                   mount, tmp_path):
    prefix = lakefs_server.namespace("prefix")  # what a server of this kind accepts
    srv = lakefs_server_factory(extra_args=["--default-namespace-prefix", prefix])
    home = tmp_path / "home-prefix"
    home.mkdir()
    m = mount("lakefs://", options=[FOREVER], env=mountlib.lakefuse_env(srv, home))
    assert os.listdir(m.path) == []  # cached for an hour from here on
    os.mkdir(m.join("made-by-mkdir"))
    made = api_ok(srv.api("GET", "/repositories/made-by-mkdir"))
    assert made["storage_namespace"].startswith(prefix), made
    assert os.listdir(m.path) == ["made-by-mkdir"]
    assert os.listdir(m.join("made-by-mkdir")) == [made["default_branch"]]
    write_file(m.join("made-by-mkdir", made["default_branch"], "first.txt"), b"first\n")
    assert api_get(srv, "made-by-mkdir", made["default_branch"], "first.txt") == b"first\n"
    expect_errno(errno.EEXIST, os.mkdir, m.join("made-by-mkdir"))
    os.mkdir(m.join("made-by-mkdir", "second"))
    assert sorted(api_branches(srv, "made-by-mkdir")) == sorted([made["default_branch"], "second"])
    assert srv.violations() == []
