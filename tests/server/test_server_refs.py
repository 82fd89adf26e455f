"""Ref semantics of lakefs_server: ~N, ^N, short ids, tags, branch@ / branch$, staged vs
committed reads, writes to refs that are not branches, commit log, tags and branch errors."""
import urllib.parse
import uuid


def commit_of(server, repo, ref):
    resp = server.api("GET", "/repositories/%s/commits/%s" % (repo, urllib.parse.quote(ref, safe="")))
    return resp


def read(server, repo, ref, path):
    return server.api("GET", "/repositories/%s/refs/%s/objects" % (repo, urllib.parse.quote(ref, safe="")),
                      params={"path": path})


def test_ref_expressions_resolve_like_lakefs(server, repo):
    root = commit_of(server, repo, "main").json()
    ids = [root["id"]]
    for i in range(3):
        server.upload(repo, "main", "f%d" % i, b"v%d" % i)
        ids.append(server.commit(repo, "main", "c%d" % i)["id"])
    assert commit_of(server, repo, "main").json()["id"] == ids[3]
    assert commit_of(server, repo, "main~1").json()["id"] == ids[2]
    assert commit_of(server, repo, "main~3").json()["id"] == ids[0]
    assert commit_of(server, repo, "main^").json()["id"] == ids[2]
    assert commit_of(server, repo, "main^1~1").json()["id"] == ids[1]
    assert commit_of(server, repo, "main~2^1").json()["id"] == ids[0]
    assert commit_of(server, repo, ids[3][:12]).json()["id"] == ids[3]
    assert commit_of(server, repo, ids[2]).json()["id"] == ids[2]
    assert commit_of(server, repo, ids[3][:12] + "~1").json()["id"] == ids[2]
    assert commit_of(server, repo, "main~4").status_code == 404
    assert commit_of(server, repo, "nosuchref").status_code == 404
    assert commit_of(server, repo, "main$").status_code == 400
    assert commit_of(server, repo, "main@").json()["id"] == ids[3]

    resp = server.api("POST", "/repositories/%s/tags" % repo, json={"id": "v1", "ref": "main~1"})
    assert resp.status_code == 201 and resp.json() == {"id": "v1", "commit_id": ids[2]}
    assert commit_of(server, repo, "v1").json()["id"] == ids[2]
    assert commit_of(server, repo, "v1~1").json()["id"] == ids[1]
    assert read(server, repo, "v1", "f1").content == b"v1"
    assert read(server, repo, "v1", "f2").status_code == 404
    assert read(server, repo, "main~2", "f0").content == b"v0"
    assert read(server, repo, "main~2", "f1").status_code == 404


def test_merge_commit_parents_with_caret(server, repo):
    server.api("POST", "/repositories/%s/branches" % repo, json={"name": "side", "source": "main"})
    server.upload(repo, "side", "s", b"s")
    side = server.commit(repo, "side", "side")["id"]
    server.upload(repo, "main", "m", b"m")
    main = server.commit(repo, "main", "main")["id"]
    merge = server.api("POST", "/repositories/%s/refs/side/merge/main" % repo, json={}).json()["reference"]
    assert commit_of(server, repo, merge + "^1").json()["id"] == main
    assert commit_of(server, repo, "main^2").json()["id"] == side
    assert commit_of(server, repo, "main^3").status_code == 404
    log = server.api("GET", "/repositories/%s/refs/main/commits" % repo, params={"first_parent": "true"}).json()
    assert [c["id"] for c in log["results"]][:2] == [merge, main]
    assert side not in [c["id"] for c in log["results"]]
    full = server.api("GET", "/repositories/%s/refs/main/commits" % repo).json()
    assert side in [c["id"] for c in full["results"]]


def test_staged_versus_committed_reads(server, repo):
    server.upload(repo, "main", "committed", b"old")
    server.commit(repo, "main", "base")
    server.upload(repo, "main", "committed", b"new")
    server.upload(repo, "main", "staged-only", b"s")
    assert read(server, repo, "main", "committed").content == b"new"
    assert read(server, repo, "main@", "committed").content == b"old"
    assert read(server, repo, "main@", "staged-only").status_code == 404
    assert read(server, repo, "main$", "staged-only").content == b"s"

    def listing(ref):
        resp = server.api("GET", "/repositories/%s/refs/%s/objects/ls" % (repo, urllib.parse.quote(ref, safe="")))
        return [r["path"] for r in resp.json()["results"]]

    assert listing("main") == ["committed", "staged-only"]
    assert listing("main@") == ["committed"]
    server.api("DELETE", "/repositories/%s/branches/main/objects" % repo, params={"path": "committed"})
    assert listing("main") == ["staged-only"]
    assert listing("main@") == ["committed"]
    assert read(server, repo, "main", "committed").status_code == 404
    diff = server.api("GET", "/repositories/%s/branches/main/diff" % repo).json()["results"]
    assert [(d["type"], d["path"]) for d in diff] == [("removed", "committed"), ("added", "staged-only")]


def test_writes_need_a_branch(server, repo):
    server.upload(repo, "main", "a", b"a")
    head = server.commit(repo, "main", "c")["id"]
    server.api("POST", "/repositories/%s/tags" % repo, json={"id": "t1", "ref": "main"})
    for ref in ("t1", head, head[:10]):
        resp = server.api("POST", "/repositories/%s/branches/%s/objects" % (repo, ref), params={"path": "x"},
                          data=b"x")
        assert resp.status_code == 404, resp.text
        assert resp.json()["message"]
        resp = server.api("DELETE", "/repositories/%s/branches/%s/objects" % (repo, ref), params={"path": "a"})
        assert resp.status_code == 404
    resp = server.api("POST", "/repositories/%s/branches/%s/objects" % (repo, "main~1"), params={"path": "x"},
                      data=b"x")
    assert resp.status_code == 400
    resp = server.api("POST", "/repositories/%s/branches/%s/commits" % (repo, "t1"), json={"message": "m"})
    assert resp.status_code == 404
    assert server.api("GET", "/repositories/%s/branches/t1" % repo).status_code == 404


def test_commit_rules(server, repo):
    resp = server.api("POST", "/repositories/%s/branches/main/commits" % repo, json={"message": "empty"})
    assert resp.status_code == 400 and resp.json()["message"] == "commit: no changes"
    resp = server.api("POST", "/repositories/%s/branches/main/commits" % repo,
                      json={"message": "empty", "allow_empty": True, "date": 1700000000})
    assert resp.status_code == 201 and resp.json()["creation_date"] == 1700000000
    server.api("DELETE", "/repositories/%s/branches/main/objects" % repo, params={"path": "never-existed"})
    resp = server.api("POST", "/repositories/%s/branches/main/commits" % repo, json={"message": "noop"})
    assert resp.status_code == 400


def test_branch_and_tag_errors(server, repo):
    base = "/repositories/%s" % repo
    assert server.api("POST", base + "/branches", json={"name": "dev", "source": "main"}).status_code == 201
    assert server.api("POST", base + "/branches", json={"name": "dev", "source": "main"}).status_code == 409
    assert server.api("POST", base + "/branches", json={"name": "bad~name", "source": "main"}).status_code == 400
    assert server.api("POST", base + "/branches", json={"name": "x1", "source": "nope"}).status_code == 404
    assert server.api("DELETE", base + "/branches/main").status_code == 403
    assert server.api("DELETE", base + "/branches/dev").status_code == 204
    assert server.api("DELETE", base + "/branches/dev").status_code == 404
    assert server.api("POST", base + "/tags", json={"id": "t", "ref": "main"}).status_code == 201
    assert server.api("POST", base + "/tags", json={"id": "t", "ref": "main"}).status_code == 409
    assert server.api("GET", base + "/tags/t").json()["id"] == "t"
    assert [t["id"] for t in server.api("GET", base + "/tags").json()["results"]] == ["t"]
    assert server.api("DELETE", base + "/tags/t").status_code == 204
    assert server.api("GET", base + "/tags/t").status_code == 404
    assert server.api("GET", "/repositories/no-such-repo/branches").status_code == 404
    assert server.api("POST", "/repositories", json={"name": repo, "storage_namespace": "s3://b/x"}).status_code == 409


def test_log_commits_filters_and_pagination(server, repo):
    for i in range(5):
        server.upload(repo, "main", "dir%d/file" % (i % 2), b"%d" % i)
        server.commit(repo, "main", "c%d" % i)
    page = server.api("GET", "/repositories/%s/refs/main/commits" % repo, params={"amount": 2}).json()
    assert [c["message"] for c in page["results"]] == ["c4", "c3"]
    assert page["pagination"]["has_more"] and page["pagination"]["next_offset"] == page["results"][-1]["id"]
    page2 = server.api("GET", "/repositories/%s/refs/main/commits" % repo,
                       params={"amount": 2, "after": page["pagination"]["next_offset"]}).json()
    assert [c["message"] for c in page2["results"]] == ["c2", "c1"]
    touching = server.api("GET", "/repositories/%s/refs/main/commits" % repo,
                          params={"objects": "dir1/file"}).json()["results"]
    assert [c["message"] for c in touching] == ["c3", "c1"]
    touching = server.api("GET", "/repositories/%s/refs/main/commits" % repo,
                          params=[("prefixes", "dir0/")]).json()["results"]
    assert [c["message"] for c in touching] == ["c4", "c2", "c0"]


def test_repository_storage_id_must_be_known(server):
    """issue 10: single-blockstore lakeFS knows only the storage id "" (config.SingleBlockstoreID);
    CreateRepository answers 400 for any other after the "already exists" check."""
    name = "sid-" + uuid.uuid4().hex[:10]
    resp = server.api("POST", "/repositories", json={"name": name, "storage_namespace": "s3://b/" + name,
                                                     "storage_id": "other"})
    assert resp.status_code == 400 and resp.json()["message"] == "storage id: invalid value: validation error"
    assert server.api("GET", "/repositories/" + name).status_code == 404
    resp = server.api("POST", "/repositories", json={"name": name, "storage_namespace": "s3://b/" + name,
                                                     "storage_id": ""})
    assert resp.status_code == 201 and resp.json()["storage_id"] == ""
    resp = server.api("POST", "/repositories", json={"name": name, "storage_namespace": "s3://b/" + name,
                                                     "storage_id": "other"})
    assert resp.status_code == 409
    server.api("DELETE", "/repositories/" + name)
