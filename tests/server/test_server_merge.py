"""Merges, diffs and resets of lakefs_server: fast-forward and three-way merges, conflicts and
strategies, dirty destinations, no-change merges, reset of object/prefix/branch, hard reset."""


def branch(server, repo, name, source="main"):
    resp = server.api("POST", "/repositories/%s/branches" % repo, json={"name": name, "source": source})
    assert resp.status_code == 201, resp.text


def merge(server, repo, source, dest, **body):
    return server.api("POST", "/repositories/%s/refs/%s/merge/%s" % (repo, source, dest), json=body)


def content(server, repo, ref, path):
    resp = server.api("GET", "/repositories/%s/refs/%s/objects" % (repo, ref), params={"path": path})
    return resp.content if resp.status_code == 200 else resp.status_code


def test_fast_forward_merge_takes_source_tree(server, repo):
    server.upload(repo, "main", "base", b"b")
    server.commit(repo, "main", "base")
    branch(server, repo, "feature")
    server.upload(repo, "feature", "new", b"n")
    feature = server.commit(repo, "feature", "feature")
    resp = merge(server, repo, "feature", "main", message="ship it", metadata={"k": "v"})
    assert resp.status_code == 200, resp.text
    merged = server.api("GET", "/repositories/%s/commits/main" % repo).json()
    assert merged["id"] == resp.json()["reference"]
    assert merged["meta_range_id"] == feature["meta_range_id"]
    assert merged["message"] == "ship it" and merged["metadata"]["k"] == "v"
    assert merged["metadata"][".lakefs.merge.strategy"] == "default"
    assert len(merged["parents"]) == 2
    assert content(server, repo, "main", "new") == b"n"
    resp = merge(server, repo, "feature", "main")
    assert resp.status_code == 400 and "no changes" in resp.json()["message"]


def test_three_way_merge_combines_both_sides(server, repo):
    server.upload(repo, "main", "shared", b"s")
    server.upload(repo, "main", "to-delete", b"d")
    server.commit(repo, "main", "base")
    branch(server, repo, "feature")
    server.upload(repo, "feature", "from-feature", b"f")
    server.api("DELETE", "/repositories/%s/branches/feature/objects" % repo, params={"path": "to-delete"})
    server.commit(repo, "feature", "feature work")
    server.upload(repo, "main", "from-main", b"m")
    server.commit(repo, "main", "main work")
    resp = merge(server, repo, "feature", "main")
    assert resp.status_code == 200, resp.text
    listing = server.api("GET", "/repositories/%s/refs/main/objects/ls" % repo).json()["results"]
    assert [r["path"] for r in listing] == ["from-feature", "from-main", "shared"]
    diff = server.api("GET", "/repositories/%s/refs/main~1/diff/main" % repo, params={"type": "two_dot"}).json()
    assert [(d["type"], d["path"]) for d in diff["results"]] == [("added", "from-feature"),
                                                                 ("removed", "to-delete")]


def test_conflicts_and_strategies(server, repo):
    server.upload(repo, "main", "file", b"base")
    server.commit(repo, "main", "base")
    branch(server, repo, "feature")
    server.upload(repo, "feature", "file", b"theirs")
    server.commit(repo, "feature", "theirs")
    server.upload(repo, "main", "file", b"ours")
    server.commit(repo, "main", "ours")
    head = server.api("GET", "/repositories/%s/branches/main" % repo).json()["commit_id"]
    resp = merge(server, repo, "feature", "main")
    assert resp.status_code == 409 and resp.json() == {"reference": ""}  # lakeFS's body: no message
    assert server.api("GET", "/repositories/%s/branches/main" % repo).json()["commit_id"] == head
    assert merge(server, repo, "feature", "main", strategy="dest-wins").status_code == 200
    assert content(server, repo, "main", "file") == b"ours"
    server.upload(repo, "feature", "file", b"theirs again")
    server.commit(repo, "feature", "again")
    assert merge(server, repo, "feature", "main", strategy="source-wins").status_code == 200
    assert content(server, repo, "main", "file") == b"theirs again"
    last = server.api("GET", "/repositories/%s/commits/main" % repo).json()
    assert last["metadata"][".lakefs.merge.strategy"] == "source-wins"
    assert merge(server, repo, "feature", "main", strategy="bogus").status_code == 400


def test_merge_into_dirty_branch_is_refused(server, repo):
    branch(server, repo, "feature")
    server.upload(repo, "feature", "f", b"f")
    server.commit(repo, "feature", "f")
    assert merge(server, repo, "feature", "nosuchbranch").status_code == 404
    assert merge(server, repo, "nosuchref", "main").status_code == 404
    server.upload(repo, "main", "uncommitted", b"u")
    resp = merge(server, repo, "feature", "main")
    assert resp.status_code == 400 and "dirty" in resp.json()["message"]


def test_three_dot_diff_ignores_destination_changes(server, repo):
    branch(server, repo, "feature")
    server.upload(repo, "feature", "f", b"f")
    server.commit(repo, "feature", "f")
    server.upload(repo, "main", "m", b"m")
    server.commit(repo, "main", "m")
    three = server.api("GET", "/repositories/%s/refs/main/diff/feature" % repo).json()["results"]
    assert [(d["type"], d["path"]) for d in three] == [("added", "f")]
    two = server.api("GET", "/repositories/%s/refs/main/diff/feature" % repo, params={"type": "two_dot"}).json()
    assert [(d["type"], d["path"]) for d in two["results"]] == [("added", "f"), ("removed", "m")]
    for branch_name, data in (("main", b"ours"), ("feature", b"theirs")):
        server.upload(repo, branch_name, "both", data)
        server.commit(repo, branch_name, "both")
    three = server.api("GET", "/repositories/%s/refs/main/diff/feature" % repo).json()["results"]
    assert [(d["type"], d["path"]) for d in three] == [("conflict", "both"), ("added", "f")]


def test_diff_delimiter_prefix_and_right_stats(server, repo):
    for path in ("d/1", "d/2", "e/x/1", "top"):
        server.upload(repo, "main", path, b"x")
    diff = server.api("GET", "/repositories/%s/branches/main/diff" % repo, params={"delimiter": "/"}).json()
    assert [(d["type"], d["path"], d["path_type"]) for d in diff["results"]] == [
        ("prefix_changed", "d/", "common_prefix"), ("prefix_changed", "e/", "common_prefix"),
        ("added", "top", "object")]
    page = server.api("GET", "/repositories/%s/branches/main/diff" % repo, params={"amount": 2}).json()
    assert page["pagination"]["has_more"] and page["pagination"]["next_offset"] == "d/2"
    server.commit(repo, "main", "c")
    diff = server.api("GET", "/repositories/%s/refs/main~1/diff/main" % repo,
                      params={"prefix": "e/", "include_right_stats": "true", "type": "two_dot"}).json()
    assert [d["path"] for d in diff["results"]] == ["e/x/1"]
    assert diff["results"][0]["right"]["checksum"]


def test_reset_object_prefix_and_branch(server, repo):
    server.upload(repo, "main", "keep", b"committed")
    server.commit(repo, "main", "base")
    for path in ("keep", "p/1", "p/2", "q"):
        server.upload(repo, "main", path, b"staged")
    base = "/repositories/%s/branches/main" % repo

    def staged():
        return [d["path"] for d in server.api("GET", base + "/diff").json()["results"]]

    assert staged() == ["keep", "p/1", "p/2", "q"]
    assert server.api("PUT", base, json={"type": "object", "path": "keep"}).status_code == 204
    assert content(server, repo, "main", "keep") == b"committed"
    assert server.api("PUT", base, json={"type": "common_prefix", "path": "p/"}).status_code == 204
    assert staged() == ["q"]
    assert server.api("PUT", base, json={"type": "reset"}).status_code == 204
    assert staged() == []


def test_hard_reset_moves_branch(server, repo):
    server.upload(repo, "main", "a", b"a")
    first = server.commit(repo, "main", "first")["id"]
    server.upload(repo, "main", "b", b"b")
    server.commit(repo, "main", "second")
    base = "/repositories/%s/branches/main/hard_reset" % repo
    server.upload(repo, "main", "dirty", b"d")
    assert server.api("PUT", base, params={"ref": first}).status_code == 400
    server.api("PUT", "/repositories/%s/branches/main" % repo, json={"type": "reset"})
    assert server.api("PUT", base, params={"ref": "main~1"}).status_code == 204
    assert server.api("GET", "/repositories/%s/branches/main" % repo).json()["commit_id"] == first
    assert content(server, repo, "main", "b") == 404


def test_branch_diff_reports_removed_objects_with_size_zero(server, repo):
    """issue 10: lakeFS's uncommitted diff carries the staging tombstone (no entry) for a removal,
    so diffBranch answers size_bytes 0; a diff between commits keeps the removed entry's size."""
    server.upload(repo, "main", "gone", b"twelve bytes")
    server.upload(repo, "main", "kept", b"k")
    server.commit(repo, "main", "base")
    server.api("DELETE", "/repositories/%s/branches/main/objects" % repo, params={"path": "gone"})
    server.upload(repo, "main", "kept", b"changed!")
    server.upload(repo, "main", "new", b"new")
    diff = server.api("GET", "/repositories/%s/branches/main/diff" % repo).json()["results"]
    assert diff == [{"type": "removed", "path": "gone", "path_type": "object", "size_bytes": 0},
                    {"type": "changed", "path": "kept", "path_type": "object", "size_bytes": 8},
                    {"type": "added", "path": "new", "path_type": "object", "size_bytes": 3}]
    server.commit(repo, "main", "remove")
    committed = server.api("GET", "/repositories/%s/refs/main~1/diff/main" % repo,
                           params={"type": "two_dot"}).json()["results"]
    assert {d["path"]: (d["type"], d["size_bytes"]) for d in committed}["gone"] == ("removed", 12)


def test_merging_a_commit_that_emptied_the_tree(server, repo):
    """issue 10: lakeFS answers "no changes" only when the source's metarange id equals the merge
    base's (committedManager.Merge). The repository's first commit has the empty id "", but a commit
    that empties the tree writes a real (empty) metarange, so merging it creates a merge commit."""
    branch(server, repo, "feature")
    server.upload(repo, "feature", "tmp", b"t")
    server.commit(repo, "feature", "add")
    server.api("DELETE", "/repositories/%s/branches/feature/objects" % repo, params={"path": "tmp"})
    emptied = server.commit(repo, "feature", "empty it")
    assert emptied["meta_range_id"] != ""
    resp = merge(server, repo, "feature", "main")
    assert resp.status_code == 200, resp.text
    merged = server.api("GET", "/repositories/%s/commits/main" % repo).json()
    assert len(merged["parents"]) == 2 and merged["meta_range_id"] == emptied["meta_range_id"]
    assert merge(server, repo, "feature", "main").status_code == 400  # now an ancestor: no changes
    # An empty commit on a fresh branch also writes the empty metarange: mergeable too.
    branch(server, repo, "blank", source="main~1")
    blank = server.api("POST", "/repositories/%s/branches/blank/commits" % repo,
                       json={"message": "nothing", "allow_empty": True}).json()
    assert blank["meta_range_id"] == emptied["meta_range_id"]
    branch(server, repo, "target", source="main~1")
    assert merge(server, repo, "blank", "target").status_code == 200
    # Same metarange as the base: no changes (unless allow_empty or force).
    branch(server, repo, "same", source="main")
    server.api("POST", "/repositories/%s/branches/same/commits" % repo, json={"message": "e", "allow_empty": True})
    resp = merge(server, repo, "same", "main")
    assert resp.status_code == 400 and resp.json()["message"] == "update branch main: no changes"  # lakeFS's wording
    assert merge(server, repo, "same", "main", allow_empty=True).status_code == 200
