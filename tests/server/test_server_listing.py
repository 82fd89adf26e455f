"""listObjects of lakefs_server: prefix/delimiter/after/amount, pagination fields, directory
markers, byte order, amount limits, and speed on a 20,000-object tree."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lakefs_server"))

from lakefs_testlib import LakeFSServer  # noqa: E402


def ls(server, repo, ref="main", **params):
    resp = server.api("GET", "/repositories/%s/refs/%s/objects/ls" % (repo, ref), params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def paths(listing):
    return [(r["path"], r["path_type"]) for r in listing["results"]]


@pytest.fixture
def tree_repo(server, repo):
    for path in ("a/1", "a/2", "a/sub/x", "a/sub/y", "b", "b2/z", "c/", "c/inner", "d/", "e\u00e9", "e~"):
        server.upload(repo, "main", path, b"data:" + path.encode())
    return repo


def test_delimiter_groups_common_prefixes_and_markers(server, tree_repo):
    root = ls(server, tree_repo, delimiter="/")
    assert paths(root) == [("a/", "common_prefix"), ("b", "object"), ("b2/", "common_prefix"),
                           ("c/", "common_prefix"), ("d/", "common_prefix"), ("e~", "object"),
                           ("e\u00e9", "object")]
    cp = root["results"][0]
    assert cp["checksum"] == "" and cp["physical_address"] == "" and cp["mtime"] == 0
    assert root["pagination"] == {"has_more": False, "next_offset": "", "results": 7, "max_per_page": 1000}
    assert paths(ls(server, tree_repo, prefix="c/", delimiter="/")) == [("c/", "object"), ("c/inner", "object")]
    assert paths(ls(server, tree_repo, prefix="d/", delimiter="/")) == [("d/", "object")]
    assert paths(ls(server, tree_repo, prefix="a/", delimiter="/")) == [
        ("a/1", "object"), ("a/2", "object"), ("a/sub/", "common_prefix")]
    assert paths(ls(server, tree_repo, prefix="b")) == [("b", "object"), ("b2/z", "object")]
    assert paths(ls(server, tree_repo, prefix="zzz", delimiter="/")) == []
    flat = [p for p, _ in paths(ls(server, tree_repo))]
    assert flat == sorted(flat, key=lambda p: p.encode()) and len(flat) == 11


def test_after_and_amount_paginate(server, tree_repo):
    page = ls(server, tree_repo, delimiter="/", amount=2)
    assert paths(page) == [("a/", "common_prefix"), ("b", "object")]
    assert page["pagination"] == {"has_more": True, "next_offset": "b", "results": 2, "max_per_page": 1000}
    page = ls(server, tree_repo, delimiter="/", amount=2, after="b")
    assert paths(page) == [("b2/", "common_prefix"), ("c/", "common_prefix")]
    page = ls(server, tree_repo, delimiter="/", after="a/")
    assert paths(page)[0] == ("b", "object")
    page = ls(server, tree_repo, prefix="a/", delimiter="/", after="a/sub/")
    assert paths(page) == []
    collected, after = [], ""
    while True:
        page = ls(server, tree_repo, amount=3, after=after)
        collected += [p for p, _ in paths(page)]
        if not page["pagination"]["has_more"]:
            break
        after = page["pagination"]["next_offset"]
    assert collected == [p for p, _ in paths(ls(server, tree_repo))]
    assert len(ls(server, tree_repo, amount=-1)["results"]) == 11
    assert len(ls(server, tree_repo, amount=0)["results"]) == 11


def test_amount_over_1000_is_rejected(server, repo):
    resp = server.api("GET", "/repositories/%s/refs/main/objects/ls" % repo, params={"amount": 1001})
    assert resp.status_code == 400 and resp.json()["message"]
    assert len(server.violations()) == 1
    server.clear_violations()


def test_stat_returns_metadata_and_marker(server, tree_repo):
    resp = server.api("GET", "/repositories/%s/refs/main/objects/stat" % tree_repo, params={"path": "c/"})
    assert resp.status_code == 200 and resp.json()["size_bytes"] == len(b"data:c/")
    resp = server.api("GET", "/repositories/%s/refs/main/objects/stat" % tree_repo, params={"path": "a"})
    assert resp.status_code == 404
    resp = server.api("GET", "/repositories/%s/refs/main/objects/stat" % tree_repo,
                      params={"path": "b", "user_metadata": "false"})
    assert resp.json()["metadata"] == {}  # lakeFS always sends it: empty when not asked for


def _build_big_repo(data_dir, count):
    """Writes a repository with `count` committed objects straight into a data dir (fast setup)."""
    from store import Store
    from tree import make_entry
    store = Store(data_dir)
    store.create_repo("big", "s3://bucket/big", "main", False, False)
    with store.write() as db:
        for i in range(count):
            path = "dir%02d/sub%02d/file%05d" % (i % 20, (i // 20) % 10, i)
            store.put_entry(db, "big", "main", path,
                            make_entry("s3://bucket/big/data/%032x" % i, "%032x" % i, i, 1700000000, "", {}))
    store.commit("big", "main", "admin", "bulk", {})
    store.db().close()


def test_listing_twenty_thousand_objects_is_fast(tmp_path):
    count = 20000
    _build_big_repo(str(tmp_path / "data"), count)
    with LakeFSServer(tmp_path / "data", validate=False) as srv:
        started = time.monotonic()
        seen, after, pages = 0, "", 0
        while True:
            page = srv.api("GET", "/repositories/big/refs/main/objects/ls",
                           params={"amount": 1000, "after": after}).json()
            seen += len(page["results"])
            pages += 1
            if not page["pagination"]["has_more"]:
                break
            after = page["pagination"]["next_offset"]
        assert seen == count and pages == 20
        roots = srv.api("GET", "/repositories/big/refs/main/objects/ls", params={"delimiter": "/"}).json()
        assert len(roots["results"]) == 20
        subdirs = srv.api("GET", "/repositories/big/refs/main/objects/ls",
                          params={"delimiter": "/", "prefix": "dir07/"}).json()
        assert [r["path"] for r in subdirs["results"]] == ["dir07/sub%02d/" % i for i in range(10)]
        srv.upload("big", "main", "dir07/new", b"n")
        srv.commit("big", "main", "one more")
        diff = srv.api("GET", "/repositories/big/refs/main~1/diff/main", params={"type": "two_dot"}).json()
        assert [d["path"] for d in diff["results"]] == ["dir07/new"]
        assert time.monotonic() - started < 10
