"""The getting-started walkthrough of the lakeFS Python SDK docs, replayed over plain HTTP
against lakefs_server: repository, branch, upload, diff, commit, diff refs, merge."""


def diff_results(server, path, **params):
    resp = server.api("GET", path, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


def test_getting_started_walkthrough(server):
    repo = "example-repo-" + __import__("uuid").uuid4().hex[:8]
    resp = server.api("POST", "/repositories", json={
        "name": repo, "storage_namespace": "s3://storage-bucket/repos/" + repo})
    assert resp.status_code == 201, resp.text
    assert resp.json()["id"] == repo and resp.json()["default_branch"] == "main"

    branches = server.api("GET", "/repositories/%s/branches" % repo).json()["results"]
    assert [b["id"] for b in branches] == ["main"]
    main_head = branches[0]["commit_id"]
    first = server.api("GET", "/repositories/%s/commits/main" % repo).json()
    assert first["message"] == "Repository created" and first["id"] == main_head

    resp = server.api("POST", "/repositories/%s/branches" % repo,
                      json={"name": "experiment1", "source": "main"})
    assert resp.status_code == 201
    assert resp.headers["Content-Type"].startswith("text/plain")  # lakeFS v1.84's (the spec says text/html)
    assert resp.text == main_head
    names = [b["id"] for b in server.api("GET", "/repositories/%s/branches" % repo).json()["results"]]
    assert names == ["experiment1", "main"]

    csv = b"Name,Age\nAlice,30\nBob,25\n"
    resp = server.api("POST", "/repositories/%s/branches/experiment1/objects" % repo,
                      params={"path": "text/sample_data.csv"}, data=csv, headers={"Content-Type": "text/csv"})
    assert resp.status_code == 201, resp.text
    stats = resp.json()
    assert stats["size_bytes"] == len(csv) and stats["content_type"] == "text/csv"

    uncommitted = diff_results(server, "/repositories/%s/branches/experiment1/diff" % repo)
    assert uncommitted == [{"type": "added", "path": "text/sample_data.csv", "path_type": "object",
                            "size_bytes": len(csv)}]

    resp = server.api("POST", "/repositories/%s/branches/experiment1/commits" % repo,
                      json={"message": "Add some data!", "metadata": {"using": "python_sdk"}})
    assert resp.status_code == 201, resp.text
    commit = resp.json()
    assert len(commit["id"]) == 64 and commit["parents"] == [main_head]
    assert commit["metadata"] == {"using": "python_sdk"} and commit["committer"] == "admin"

    assert diff_results(server, "/repositories/%s/branches/experiment1/diff" % repo) == []

    changes = diff_results(server, "/repositories/%s/refs/main/diff/experiment1" % repo)
    assert [(c["type"], c["path"]) for c in changes] == [("added", "text/sample_data.csv")]

    resp = server.api("POST", "/repositories/%s/refs/experiment1/merge/main" % repo, json={})
    assert resp.status_code == 200, resp.text
    merge_commit = resp.json()["reference"]
    merged = server.api("GET", "/repositories/%s/commits/%s" % (repo, merge_commit)).json()
    assert merged["parents"] == [main_head, commit["id"]]
    assert server.api("GET", "/repositories/%s/branches/main" % repo).json()["commit_id"] == merge_commit

    summary = diff_results(server, "/repositories/%s/refs/main~1/diff/main" % repo, type="two_dot")
    assert [(c["type"], c["path"]) for c in summary] == [("added", "text/sample_data.csv")]

    assert diff_results(server, "/repositories/%s/refs/main/diff/experiment1" % repo) == []
    got = server.api("GET", "/repositories/%s/refs/main/objects" % repo, params={"path": "text/sample_data.csv"})
    assert got.status_code == 200 and got.content == csv
    assert server.api("DELETE", "/repositories/" + repo).status_code == 204
