"""A mount against a server that loses answers or hands out hostile URLs (issue 12). A commit or a
merge through .lakefs/ whose answer is lost after lakeFS applied it reports success once: one
commit on the server, not two, and not "nothing to commit"; so does a branch made with mkdir. A
presigned URL that is not http(s) (file://, gopher://) is never used: the upload or the read fails
with EIO and a log line, no local file is written or read.
drop_response also works in front of real lakeFS; rewrite_url only on the bundled server."""
import errno
import json
import os

import pytest

from mountlib import (api_branches, api_commit, api_get_or_none, control_json, control_path, control_write,
                      expect_errno, read_file)

bundled_only = pytest.mark.stand_in_only(reason="fault kind of the bundled server only")
FOREVER = "attr_timeout=3600"


def commit_log(server, repo, ref):
    resp = server.api("GET", "/repositories/%s/refs/%s/commits" % (repo, ref), params={"amount": 1000})
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


@pytest.mark.parametrize("fault", [{"drop_response": True}, {"cut_after_bytes": 10}],
                         ids=["no-answer", "cut-answer"])
def test_commit_whose_answer_is_lost_succeeds_once(server, repo, mount, fault):
    server.upload(repo, "main", "a.txt", b"a\n")
    before = api_commit(server, repo, "main")["id"]
    m = mount("lakefs://%s/main" % repo, options=[FOREVER])
    server.add_fault(operation="commit", **fault)
    server.reset_counts()
    control_write(control_path(m, "commit"),
                  json.dumps({"message": "answer lost", "metadata": {"k": "v"}}) + "\n")
    log = commit_log(server, repo, "main")
    assert [c["message"] for c in log] == ["answer lost", "Repository created"]
    assert log[0]["parents"] == [before] and log[0]["metadata"] == {"k": "v"}
    assert server.counts()["commit"] == 1
    result = control_json(control_path(m, "commit"))
    assert result["ok"] is True and result["commit"]["id"] == log[0]["id"], result
    assert control_path(m, "head") and read_file(control_path(m, "head")).decode().strip() == log[0]["id"]


def test_merge_whose_answer_is_lost_makes_one_merge_commit(server, repo, mount):
    assert server.api("POST", "/repositories/%s/branches" % repo,
                      json={"name": "dev", "source": "main"}).status_code == 201
    server.upload(repo, "dev", "d.txt", b"d\n")
    dev = server.commit(repo, "dev", "on dev")["id"]
    before = api_commit(server, repo, "main")["id"]
    m = mount("lakefs://%s/main" % repo, options=[FOREVER])
    server.add_fault(operation="mergeIntoBranch", drop_response=True)
    server.reset_counts()
    control_write(control_path(m, "merge"), "dev\n")
    log = commit_log(server, repo, "main")
    assert log[0]["parents"] == [before, dev]
    assert sum(1 for c in log if len(c["parents"]) == 2) == 1
    assert server.counts()["mergeIntoBranch"] == 1
    result = control_json(control_path(m, "merge"))
    assert result == {"ok": True, "reference": log[0]["id"]}, result
    assert read_file(m.join("d.txt")) == b"d\n"


def test_mkdir_of_a_branch_whose_answer_is_lost(server, repo, mount):
    m = mount("lakefs://" + repo, options=[FOREVER])
    server.add_fault(operation="createBranch", drop_response=True)
    server.reset_counts()
    os.mkdir(m.join("feature"))
    assert sorted(api_branches(server, repo)) == ["feature", "main"]
    assert server.counts()["createBranch"] == 1
    assert os.path.isdir(m.join("feature"))


@bundled_only
@pytest.mark.presign
@pytest.mark.parametrize("scheme", ["file", "gopher"])
def test_upload_to_a_hostile_presigned_url_fails_and_writes_nothing(server, repo, mount, tmp_path, scheme):
    target = tmp_path / "daemon-wrote-this"
    url = ("file://" + str(target)) if scheme == "file" else "gopher://%s:%d/_x" % (server.host, server.port)
    m = mount("lakefs://%s/main" % repo, options=["direct_upload_max=0"])  # small files too go presigned
    server.add_fault(operation="getPhysicalAddress", rewrite_url=url, count=1000)
    server.reset_counts()
    fd = os.open(m.join("up.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"bytes for the server only\n")
    expect_errno(errno.EIO, os.close, fd)
    assert not target.exists()
    counts = server.counts()
    assert counts.get("presignedPut", 0) == 0 and counts.get("linkPhysicalAddress", 0) == 0
    assert counts.get("unknown", 0) == 0
    assert m.wait_for_log(lambda text: "up.txt" in text and "refused a URL from the server that is not http or https"
                   in text)
    assert api_get_or_none(server, repo, "main", "up.txt") is None


@bundled_only
@pytest.mark.presign
def test_read_never_uses_a_hostile_presigned_url(server, repo, mount, tmp_path):
    """A listing whose presigned URLs are file:// reads through the API instead (the bytes are the
    object's, never the local file's); one whose URLs carry credentials fails with EIO, logged."""
    local = tmp_path / "local-only"
    local.write_bytes(b"a local file the server wants to read\n")
    server.upload(repo, "main", "r.txt", b"the object\n")
    server.add_fault(rewrite_url="file://" + str(local), count=1000)  # every answer's URLs
    m = mount("lakefs://%s/main" % repo)
    assert read_file(m.join("r.txt")) == b"the object\n"
    assert server.counts().get("presignedGet", 0) == 0
    server.clear_faults()

    server.upload(repo, "main", "s.txt", b"another object\n")
    server.add_fault(rewrite_url="http://user:secret@%s:%d/_presigned/x" % (server.host, server.port),
                     count=1000)
    m2 = mount("lakefs://%s/main" % repo)
    server.reset_counts()
    expect_errno(errno.EIO, read_file, m2.join("s.txt"))
    assert server.counts().get("presignedGet", 0) == 0
    assert m2.wait_for_log(lambda text: "s.txt" in text and "credentials" in text)
