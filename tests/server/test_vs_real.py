"""Differential test: the same request sequences go to the bundled server (tests/lakefs_server) and to
real lakeFS v1.84.0 (tests/realserver.py), and the status codes, the response fields lakefuse's C
client reads (src/lakefs_json.c, lakefs_objects.c, lakefs_refs.c) and the headers it uses (ETag,
Content-Range, Content-Type, Location) must be equal. Real lakeFS is the reference: a difference is a
bug in the bundled server.

Pairs: the bundled server with --no-presign against lakeFS on its local blockstore (lakefs-local), and
the bundled server as it runs by default (presigning) against lakeFS on moto's S3 (lakefs-s3).

What legitimately differs is normalised before comparing, and nothing else:
* commit and metarange ids (64 hex digits): replaced by <id1>, <id2>... in order of first appearance
  in each transcript, so "the merge's parent is the commit made two steps before" still compares;
* timestamps (creation_date, mtime, *_expiry): <time> after checking they are plausible;
* physical addresses, presigned URLs and multipart upload ids: chosen by each server;
* the storage namespace (local://REPO on the local blockstore, s3://BUCKET/REPO elsewhere), and
  on the local pair the blockstore's type, example and validity regexes in /config.
Each step records (label, status, normalised body, selected headers); the test fails listing every
step whose record differs. Real lakeFS is built on first use by scripts/third-party.sh (minutes).
"""
import json
import os
import re
import shutil
import sys
import time
import uuid

import pytest
import requests

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)

import realserver  # noqa: E402
from lakefs_testlib import LakeFSServer  # noqa: E402

HEX_ID = re.compile(r"^[0-9a-f]{64}$")
TIME_KEYS = {"creation_date", "mtime", "presigned_url_expiry", "physical_address_expiry"}
HEADERS = ("ETag", "Content-Type", "Content-Length", "Content-Range")
PART = 5 * 1024 * 1024
# /config fields that name the blockstore: they differ on the local pair, where the bundled server
# plays an S3 blockstore and lakeFS runs on its local one.
BLOCKSTORE_FIELDS = ("blockstore_type", "blockstore_namespace_example", "blockstore_namespace_ValidityRegex",
                     "import_validity_regex", "default_namespace_prefix", "import_support")

PAIRS = {
    # name: (real server kind, its options, the bundled server's matching options)
    "lakefs-local": ("lakefs-local", [], ["--no-presign"]),
    "lakefs-s3": ("lakefs-s3", [], []),
    # run by the presign-refusal test only: both play an S3 blockstore with presign disabled
    "lakefs-s3-no-presign": ("lakefs-s3", ["--no-presign"], ["--no-presign"]),
}


class Transcript:
    """Sends requests to one server and records what lakefuse would see of each answer."""

    def __init__(self, server, local_blockstore=False):
        self.server = server
        self.local_blockstore = local_blockstore
        self.steps = []
        self.ids = {}
        self.now = time.time()

    # normalisation --------------------------------------------------------------------------------
    def symbol(self, value):
        if value not in self.ids:
            self.ids[value] = "<id%d>" % (len(self.ids) + 1)
        return self.ids[value]

    def norm(self, value, key=None):
        if isinstance(value, dict):
            # in key order, so ids get the same symbols whatever order each server writes keys in
            out = {k: self.norm(value[k], k) for k in sorted(value)}
            if self.local_blockstore and ("blockstore_type" in out):
                for field in BLOCKSTORE_FIELDS:
                    if field in out:
                        out[field] = "<blockstore>"
            return out
        if isinstance(value, list):
            if key == "presigned_urls":
                return ["<url>" if isinstance(v, str) and v.startswith("http") else v for v in value]
            return [self.norm(v, key) for v in value]
        if key in TIME_KEYS and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            # plausible: within a day of the test (the mtime of an object written now, an expiry)
            return "<time>" if abs(value - self.now) < 86400 * 2 else value
        if key in ("physical_address", "presigned_url") and isinstance(value, str) and value:
            return "<url>" if value.startswith("http") else "<address>"
        if key == "upload_id" and isinstance(value, str) and value:
            return "<upload id>"
        if key == "storage_namespace" and isinstance(value, str) and value.endswith(self.repo_suffix(value)):
            return "<namespace>"
        if key == "version" and isinstance(value, str):
            return value
        if isinstance(value, str) and HEX_ID.match(value):
            return self.symbol(value)
        return value

    def repo_suffix(self, namespace):
        return namespace.rsplit("/", 1)[-1] if namespace.startswith(("s3://", "local://")) else "\0"

    def record(self, label, resp):
        ctype = resp.headers.get("Content-Type", "")
        if resp.status_code in (204, 304) or resp.request.method == "HEAD":
            body = None
        elif "json" in ctype:
            try:
                body = self.norm(resp.json())
            except ValueError:
                body = ("<invalid json>", resp.text[:200])
        elif 300 <= resp.status_code < 400:
            body = None
        else:
            text = resp.text.strip()
            body = self.symbol(text) if HEX_ID.match(text) else text
        if resp.status_code >= 400 and isinstance(body, dict) and isinstance(body.get("message"), str):
            body["message"] = normalise_message(body["message"])
        kept = {}
        for name in HEADERS:
            value = resp.headers.get(name)
            if value is None:
                continue
            if name == "Content-Type" and "json" in value:
                value = "json"  # charset spelling is not ours to compare
            if name == "Content-Length" and "json" in ctype:
                continue  # JSON spacing and key order differ; the parsed body is compared
            kept[name] = value
        if 300 <= resp.status_code < 400:
            kept["Location"] = "<url>" if resp.headers.get("Location", "").startswith("http") else \
                resp.headers.get("Location")
        self.steps.append((label, resp.status_code, body, kept))
        return resp

    # requests ---------------------------------------------------------------------------------------
    def call(self, label, method, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 120)
        return self.record(label, self.server.api(method, path, **kw))

    def note(self, label, value):
        """Records a derived observation (for example what a presigned GET returned)."""
        self.steps.append((label, None, self.norm(value), {}))


# Request validation errors: lakeFS words them as kin-openapi does (with the schema), the bundled
# server as jsonschema does. Both are 400s with a message that lakefuse only shows; the status
# and the fact that the request was refused by validation are compared.
VALIDATION_PREFIXES = ("request body has an error", "request does not match the lakeFS API",
                       "parameter \"")


def normalise_message(message):
    if message.startswith(VALIDATION_PREFIXES):
        return "<request validation error>"
    return message


def differences(bundled, real):
    lines = []
    for i in range(max(len(bundled.steps), len(real.steps))):
        b = bundled.steps[i] if i < len(bundled.steps) else None
        r = real.steps[i] if i < len(real.steps) else None
        if b == r:
            continue
        label = (b or r)[0]
        lines.append("step %d %s:\n    bundled: %s\n    lakeFS:  %s" % (
            i, label, json.dumps(b and b[1:], sort_keys=True, default=str),
            json.dumps(r and r[1:], sort_keys=True, default=str)))
    return lines


# --- the servers -------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["lakefs-local", "lakefs-s3"])
def pair(request, tmp_path_factory):
    name = request.param
    kind, real_args, bundled_args = PAIRS[name]
    realserver.ensure_built(kind)
    base = tmp_path_factory.mktemp("vs-" + name)
    bundled = LakeFSServer(base / "bundled", validate=True, extra_args=bundled_args).start()
    try:
        real = realserver.SERVERS[kind](base / "real", extra_args=real_args).start()
    except Exception:
        bundled.stop()
        raise
    yield name, bundled, real
    real.stop()
    bundled.stop()
    shutil.rmtree(base, ignore_errors=True)


def run_both(pair, scenario):
    """Runs scenario(transcript, repo) on both servers (each in a repository of the same name,
    deleted afterwards) and fails listing every step that differs."""
    name, bundled, real = pair
    repo = "vs-" + uuid.uuid4().hex[:10]
    transcripts = []
    bundled.clear_violations()
    for server in (bundled, real):
        t = Transcript(server, local_blockstore=name == "lakefs-local")
        t.repo, t.pair = repo, name
        try:
            t.call("createRepository", "POST", "/repositories",
                   json={"name": repo, "default_branch": "main", "storage_namespace": server.namespace(repo)})
            scenario(t, repo)
        finally:
            server.api("DELETE", "/repositories/" + repo)
        transcripts.append(t)
    # Requests that are invalid on purpose are violations of the request side; the bundled server's
    # answers must all conform to the spec.
    violations = [v for v in bundled.violations() if any(" response " in p for p in v["problems"])]
    diff = differences(*transcripts)
    assert not diff, "bundled server differs from lakeFS (%s) in %d of %d steps:\n%s" % (
        name, len(diff), len(transcripts[1].steps), "\n".join(diff))
    assert violations == [], "the bundled server's answers violate the spec: %r" % violations
    assert len(transcripts[1].steps) > 3


def R(repo, rest=""):
    return "/repositories/%s%s" % (repo, rest)


def upload(t, repo, branch, path, data, label=None, **headers):
    return t.call(label or "uploadObject %s" % path, "POST", R(repo, "/branches/%s/objects" % branch),
                  params={"path": path}, data=data, headers=headers or None)


def commit(t, repo, branch, message, **body):
    return t.call("commit %s" % message, "POST", R(repo, "/branches/%s/commits" % branch),
                  json=dict(body, message=message))


# --- scenarios ---------------------------------------------------------------------------------------

def scenario_repositories(t, repo):
    t.call("getConfig", "GET", "/config")
    t.call("getCurrentUser", "GET", "/user")
    t.call("healthCheck", "GET", "/healthcheck")
    ns = t.server.namespace(repo)
    t.call("createRepository existing", "POST", "/repositories",
           json={"name": repo, "default_branch": "main", "storage_namespace": ns})
    t.call("getRepository", "GET", R(repo))
    t.call("getRepository missing", "GET", R(repo + "-missing"))
    for i in range(3):
        name = "%s-%d" % (repo, i)
        t.call("createRepository %d" % i, "POST", "/repositories",
               json={"name": name, "default_branch": "trunk" if i else "main",
                     "storage_namespace": t.server.namespace(name)})
    t.call("listRepositories prefix", "GET", "/repositories", params={"prefix": repo + "-"})
    t.call("listRepositories amount=2", "GET", "/repositories", params={"prefix": repo, "amount": 2})
    t.call("listRepositories after", "GET", "/repositories", params={"prefix": repo, "after": repo + "-0"})
    for i in range(3):
        t.call("deleteRepository %d" % i, "DELETE", R("%s-%d" % (repo, i)))
    # (no getRepository right after the delete: lakeFS caches repositories for a few seconds and
    # may still answer 200)
    t.call("deleteRepository missing", "DELETE", R(repo + "-0"))
    t.call("createRepository bad name", "POST", "/repositories",
           json={"name": "Bad_Name!", "storage_namespace": t.server.namespace("bad")})
    t.call("createRepository bad storage_id", "POST", "/repositories",
           json={"name": repo + "-sid", "storage_namespace": t.server.namespace(repo + "-sid"),
                 "storage_id": "no-such-store"})
    t.call("createRepository no namespace", "POST", "/repositories", json={"name": repo + "-nons"})


def scenario_branches_tags_refs(t, repo):
    upload(t, repo, "main", "a", b"one")
    commit(t, repo, "main", "first")
    upload(t, repo, "main", "b", b"two")
    commit(t, repo, "main", "second", metadata={"k": "v"})
    t.call("createBranch", "POST", R(repo, "/branches"), json={"name": "feature", "source": "main"})
    t.call("createBranch from main~1", "POST", R(repo, "/branches"), json={"name": "old", "source": "main~1"})
    t.call("createBranch existing", "POST", R(repo, "/branches"), json={"name": "feature", "source": "main"})
    t.call("createBranch bad name", "POST", R(repo, "/branches"), json={"name": "bad name!", "source": "main"})
    t.call("createBranch missing source", "POST", R(repo, "/branches"), json={"name": "x", "source": "nope"})
    t.call("createBranch missing repo", "POST", R(repo + "-no", "/branches"), json={"name": "x", "source": "main"})
    for name in ("main", "feature", "old", "nope"):
        t.call("getBranch %s" % name, "GET", R(repo, "/branches/" + name))
    t.call("listBranches", "GET", R(repo, "/branches"))
    t.call("listBranches amount=1", "GET", R(repo, "/branches"), params={"amount": 1})
    t.call("listBranches after", "GET", R(repo, "/branches"), params={"after": "feature"})
    t.call("listBranches prefix", "GET", R(repo, "/branches"), params={"prefix": "o"})
    t.call("createTag", "POST", R(repo, "/tags"), json={"id": "v1", "ref": "main~1"})
    t.call("createTag v2", "POST", R(repo, "/tags"), json={"id": "v2", "ref": "main"})
    t.call("createTag existing", "POST", R(repo, "/tags"), json={"id": "v1", "ref": "main"})
    t.call("getCommit missing repo", "GET", R(repo + "-no", "/commits/main"))
    t.call("createTag missing ref", "POST", R(repo, "/tags"), json={"id": "v3", "ref": "nope"})
    t.call("createTag bad name", "POST", R(repo, "/tags"), json={"id": "bad tag", "ref": "main"})
    t.call("listTags", "GET", R(repo, "/tags"))
    t.call("listTags amount=1", "GET", R(repo, "/tags"), params={"amount": 1})
    t.call("listTags after", "GET", R(repo, "/tags"), params={"after": "v1"})
    t.call("getTag", "GET", R(repo, "/tags/v1"))
    for ref in ("main", "main~1", "main~2", "main^", "main~9", "v1", "feature", "nope"):
        t.call("getCommit %s" % ref, "GET", R(repo, "/commits/" + ref))
    head = t.server.api("GET", R(repo, "/branches/main")).json()["commit_id"]
    t.call("getCommit by id", "GET", R(repo, "/commits/" + head))
    t.call("getCommit by short id", "GET", R(repo, "/commits/" + head[:12]))
    t.call("logCommits", "GET", R(repo, "/refs/main/commits"))
    t.call("logCommits amount=1", "GET", R(repo, "/refs/main/commits"), params={"amount": 1})
    t.call("logCommits after head", "GET", R(repo, "/refs/main/commits"), params={"after": head, "amount": 1})
    t.call("logCommits tag", "GET", R(repo, "/refs/v1/commits"))
    t.call("listObjects tag", "GET", R(repo, "/refs/v1/objects/ls"))
    t.call("listObjects main~1", "GET", R(repo, "/refs/main~1/objects/ls"))
    t.call("deleteBranch", "DELETE", R(repo, "/branches/old"))
    t.call("deleteBranch missing", "DELETE", R(repo, "/branches/old"))
    t.call("deleteBranch default", "DELETE", R(repo, "/branches/main"))
    t.call("deleteTag", "DELETE", R(repo, "/tags/v2"))
    t.call("getTag deleted", "GET", R(repo, "/tags/v2"))


def scenario_objects(t, repo):
    upload(t, repo, "main", "dir/a.txt", b"alpha", **{"Content-Type": "text/plain", "X-Lakefs-Meta-Owner": "me"})
    upload(t, repo, "main", "dir/b.bin", b"\0" * 1000)
    upload(t, repo, "main", "dir/sub/c", b"c")
    upload(t, repo, "main", "dir/sub/d", b"d")
    upload(t, repo, "main", "top", b"")
    upload(t, repo, "main", "z/with space & ?", b"odd name")
    upload(t, repo, "main", "top", b"again", label="uploadObject If-None-Match existing", **{"If-None-Match": "*"})
    upload(t, repo, "main", "new-exclusive", b"n", label="uploadObject If-None-Match new", **{"If-None-Match": "*"})
    upload(t, repo, "nope", "x", b"x", label="uploadObject missing branch")
    ls = R(repo, "/refs/main/objects/ls")
    t.call("listObjects", "GET", ls)
    t.call("listObjects delimiter", "GET", ls, params={"delimiter": "/"})
    t.call("listObjects prefix+delimiter", "GET", ls, params={"delimiter": "/", "prefix": "dir/"})
    t.call("listObjects prefix no delimiter", "GET", ls, params={"prefix": "dir/s"})
    t.call("listObjects amount=2", "GET", ls, params={"amount": 2})
    t.call("listObjects amount=1 delimiter", "GET", ls, params={"amount": 1, "delimiter": "/", "prefix": "dir/"})
    t.call("listObjects after", "GET", ls, params={"after": "dir/b.bin"})
    t.call("listObjects after prefix delimiter", "GET", ls, params={"after": "dir/a.txt", "delimiter": "/",
                                                                   "prefix": "dir/"})
    t.call("listObjects after common prefix", "GET", ls, params={"after": "dir/sub/", "delimiter": "/",
                                                                "prefix": "dir/"})
    t.call("listObjects user_metadata=false", "GET", ls, params={"user_metadata": "false", "prefix": "dir/a"})
    t.call("listObjects missing ref", "GET", R(repo, "/refs/nope/objects/ls"))
    stat = R(repo, "/refs/main/objects/stat")
    t.call("statObject", "GET", stat, params={"path": "dir/a.txt"})
    t.call("statObject without metadata", "GET", stat, params={"path": "dir/b.bin"})
    t.call("statObject odd name", "GET", stat, params={"path": "z/with space & ?"})
    t.call("statObject user_metadata=false", "GET", stat, params={"path": "dir/a.txt", "user_metadata": "false"})
    t.call("statObject missing", "GET", stat, params={"path": "dir/nope"})
    t.call("statObject prefix", "GET", stat, params={"path": "dir"})
    t.call("statObject no path", "GET", stat)
    get = R(repo, "/refs/main/objects")
    t.call("getObject", "GET", get, params={"path": "dir/a.txt"})
    t.record("getObject range", t.server.api("GET", get, params={"path": "dir/b.bin"},
                                             headers={"Range": "bytes=10-19"}))
    t.record("getObject open range", t.server.api("GET", get, params={"path": "dir/b.bin"},
                                                  headers={"Range": "bytes=990-"}))
    t.record("getObject range past end", t.server.api("GET", get, params={"path": "dir/b.bin"},
                                                      headers={"Range": "bytes=5000-"}))
    t.call("getObject empty", "GET", get, params={"path": "top"})
    t.call("getObject missing", "GET", get, params={"path": "nope"})
    t.call("headObject", "HEAD", get, params={"path": "dir/a.txt"})
    t.call("headObject missing", "HEAD", get, params={"path": "nope"})
    meta = R(repo, "/branches/main/objects/stat/user_metadata")
    t.call("updateObjectUserMetadata", "PUT", meta, params={"path": "dir/a.txt"}, json={"set": {"x": "1"}})
    t.call("statObject after metadata", "GET", stat, params={"path": "dir/a.txt"})
    t.call("updateObjectUserMetadata missing", "PUT", meta, params={"path": "nope"}, json={"set": {"x": "1"}})
    copy = R(repo, "/branches/main/objects/copy")
    t.call("copyObject", "POST", copy, params={"dest_path": "copy/a"}, json={"src_path": "dir/a.txt"})
    t.call("statObject copy", "GET", stat, params={"path": "copy/a"})
    t.call("copyObject missing", "POST", copy, params={"dest_path": "copy/b"}, json={"src_path": "nope"})
    commit(t, repo, "main", "objects")
    t.call("copyObject from ref", "POST", copy, params={"dest_path": "copy/c"},
           json={"src_path": "dir/sub/c", "src_ref": "main"})
    delete = R(repo, "/branches/main/objects")
    t.call("deleteObject", "DELETE", delete, params={"path": "dir/sub/d"})
    t.call("deleteObject missing", "DELETE", delete, params={"path": "dir/sub/d"})
    t.call("deleteObjects", "POST", R(repo, "/branches/main/objects/delete"),
           json={"paths": ["dir/sub/c", "nope", "copy/c"]})
    t.call("listObjects after deletes", "GET", ls)
    t.call("diffBranch", "GET", R(repo, "/branches/main/diff"))
    t.call("statObject deleted", "GET", stat, params={"path": "dir/sub/d"})
    t.call("getObject deleted", "GET", get, params={"path": "dir/sub/d"})
    t.call("deleteObject missing branch", "DELETE", R(repo, "/branches/nope/objects"), params={"path": "a"})
    t.call("uploadObject to a commit ref", "POST", R(repo, "/branches/main~1/objects"), params={"path": "x"},
           data=b"x")


def scenario_staging(t, repo):
    backing = R(repo, "/branches/main/staging/backing")
    presign = t.pair == "lakefs-s3"
    params = {"path": "linked"}
    if presign:
        params["presign"] = "true"
    loc = t.call("getPhysicalAddress", "GET", backing, params=params).json()
    data = b"linked data " * 10
    checksum = None
    if presign:
        put = requests.put(loc["presigned_url"], data=data, timeout=60)
        t.note("presigned PUT status", put.status_code)
        checksum = put.headers.get("ETag", "").strip('"')
    else:
        import hashlib
        checksum = hashlib.md5(data).hexdigest()
    body = {"staging": {"physical_address": loc["physical_address"]}, "checksum": checksum,
            "size_bytes": len(data), "user_metadata": {"m": "1"}, "content_type": "text/x-linked"}
    t.call("linkPhysicalAddress", "PUT", backing, params={"path": "linked"}, json=body)
    t.call("statObject linked", "GET", R(repo, "/refs/main/objects/stat"), params={"path": "linked"})
    if presign:
        got = t.server.api("GET", R(repo, "/refs/main/objects"), params={"path": "linked"})
        t.note("getObject linked", [got.status_code, got.content == data])
    loc2 = t.server.api("GET", backing, params={"path": "linked"}).json()
    body2 = dict(body, staging={"physical_address": loc2["physical_address"]})
    t.call("linkPhysicalAddress If-None-Match existing", "PUT", backing, params={"path": "linked"}, json=body2,
           headers={"If-None-Match": "*"})
    loc3 = t.server.api("GET", backing, params={"path": "fresh"}).json()
    t.call("linkPhysicalAddress If-None-Match new", "PUT", backing, params={"path": "fresh"},
           json=dict(body, staging={"physical_address": loc3["physical_address"]}), headers={"If-None-Match": "*"})
    t.call("linkPhysicalAddress foreign address", "PUT", backing, params={"path": "other"},
           json=dict(body, staging={"physical_address": t.server.namespace(repo) + "/data/forged"}))
    t.call("linkPhysicalAddress no staging", "PUT", backing, params={"path": "other"},
           json={"checksum": "x", "size_bytes": 1})
    t.call("getPhysicalAddress missing branch", "GET", R(repo, "/branches/nope/staging/backing"),
           params={"path": "x"})
    t.call("diffBranch", "GET", R(repo, "/branches/main/diff"))


def scenario_commit_diff(t, repo):
    for path in ("keep", "change", "remove", "p/one", "p/two"):
        upload(t, repo, "main", path, path.encode())
    commit(t, repo, "main", "base", metadata={"a": "1", "b": "2"})
    commit(t, repo, "main", "nothing")
    commit(t, repo, "main", "empty allowed", allow_empty=True)
    t.call("commit missing branch", "POST", R(repo, "/branches/nope/commits"), json={"message": "m"})
    t.call("commit no message", "POST", R(repo, "/branches/main/commits"), json={})
    upload(t, repo, "main", "change", b"changed!")
    upload(t, repo, "main", "added", b"new")
    t.call("deleteObject remove", "DELETE", R(repo, "/branches/main/objects"), params={"path": "remove"})
    t.call("deleteObject p/one", "DELETE", R(repo, "/branches/main/objects"), params={"path": "p/one"})
    diff = R(repo, "/branches/main/diff")
    t.call("diffBranch", "GET", diff)
    t.call("diffBranch amount=2", "GET", diff, params={"amount": 2})
    t.call("diffBranch after", "GET", diff, params={"after": "change"})
    t.call("diffBranch prefix", "GET", diff, params={"prefix": "p/"})
    t.call("diffBranch delimiter", "GET", diff, params={"delimiter": "/"})
    commit(t, repo, "main", "work", metadata={"via": "test"})
    refs = R(repo, "/refs/main~1/diff/main")
    t.call("diffRefs", "GET", refs)
    t.call("diffRefs two_dot", "GET", refs, params={"type": "two_dot"})
    t.call("diffRefs amount=1", "GET", refs, params={"amount": 1})
    t.call("diffRefs after", "GET", refs, params={"after": "added"})
    t.call("diffRefs prefix", "GET", refs, params={"prefix": "p/"})
    t.call("diffRefs delimiter", "GET", refs, params={"delimiter": "/"})
    t.call("diffRefs same", "GET", R(repo, "/refs/main/diff/main"))
    t.call("diffRefs missing", "GET", R(repo, "/refs/nope/diff/main"))
    t.call("diffRefs missing right", "GET", R(repo, "/refs/main/diff/nope"))
    t.call("diffRefs two_dot missing left", "GET", R(repo, "/refs/nope/diff/main"), params={"type": "two_dot"})
    t.call("diffRefs two_dot missing right", "GET", R(repo, "/refs/main/diff/nope"), params={"type": "two_dot"})
    t.call("logCommits", "GET", R(repo, "/refs/main/commits"))
    t.call("diffBranch clean", "GET", diff)


def scenario_merge(t, repo):
    merge = lambda src, dst, label, **body: t.call(label, "POST", R(repo, "/refs/%s/merge/%s" % (src, dst)),  # noqa
                                                   json=body)
    upload(t, repo, "main", "shared", b"s")
    upload(t, repo, "main", "file", b"base")
    commit(t, repo, "main", "base")
    t.call("createBranch feature", "POST", R(repo, "/branches"), json={"name": "feature", "source": "main"})
    merge("feature", "main", "merge nothing to merge")
    upload(t, repo, "feature", "new", b"n")
    commit(t, repo, "feature", "feature work")
    merge("feature", "main", "merge fast-forward", message="ship", metadata={"k": "v"})
    t.call("getCommit main", "GET", R(repo, "/commits/main"))
    merge("feature", "main", "merge again")
    merge("feature", "main", "merge again allow_empty", allow_empty=True)
    upload(t, repo, "feature", "file", b"theirs")
    commit(t, repo, "feature", "theirs")
    upload(t, repo, "main", "file", b"ours")
    commit(t, repo, "main", "ours")
    merge("feature", "main", "merge conflict")
    merge("feature", "main", "merge bad strategy", strategy="bogus")
    merge("feature", "main", "merge dest-wins", strategy="dest-wins")
    t.call("getCommit main after dest-wins", "GET", R(repo, "/commits/main"))
    upload(t, repo, "main", "dirty", b"d")
    upload(t, repo, "feature", "more", b"m")
    commit(t, repo, "feature", "more")
    merge("feature", "main", "merge into dirty branch")
    t.call("deleteObject dirty", "DELETE", R(repo, "/branches/main/objects"), params={"path": "dirty"})
    merge("feature", "main", "merge source-wins squash", strategy="source-wins", squash_merge=True)
    t.call("getCommit main after squash", "GET", R(repo, "/commits/main"))
    merge("nope", "main", "merge missing source")
    merge("feature", "nope", "merge missing destination")
    # a commit that empties the tree, merged (issue 10: lakeFS creates the merge commit)
    t.call("createBranch emptied", "POST", R(repo, "/branches"), json={"name": "emptied", "source": "main"})
    for path in ("shared", "file", "new", "more"):
        t.call("deleteObject %s" % path, "DELETE", R(repo, "/branches/emptied/objects"), params={"path": path})
    commit(t, repo, "emptied", "empty the tree")
    merge("emptied", "main", "merge emptied tree")
    t.call("listObjects main after emptied", "GET", R(repo, "/refs/main/objects/ls"))
    t.call("logCommits main", "GET", R(repo, "/refs/main/commits"), params={"amount": 3})


def scenario_reset(t, repo):
    upload(t, repo, "main", "a", b"a")
    upload(t, repo, "main", "p/b", b"b")
    upload(t, repo, "main", "p/c", b"c")
    commit(t, repo, "main", "base")
    upload(t, repo, "main", "a", b"A")
    upload(t, repo, "main", "p/b", b"B")
    upload(t, repo, "main", "p/c", b"C")
    upload(t, repo, "main", "q", b"q")
    reset = R(repo, "/branches/main")
    t.call("resetBranch object", "PUT", reset, json={"type": "object", "path": "a"})
    t.call("diffBranch", "GET", R(repo, "/branches/main/diff"))
    t.call("resetBranch object not changed", "PUT", reset, json={"type": "object", "path": "a"})
    t.call("resetBranch common_prefix", "PUT", reset, json={"type": "common_prefix", "path": "p/"})
    t.call("diffBranch", "GET", R(repo, "/branches/main/diff"))
    t.call("resetBranch bad type", "PUT", reset, json={"type": "bogus"})
    t.call("resetBranch all", "PUT", reset, json={"type": "reset"})
    t.call("diffBranch", "GET", R(repo, "/branches/main/diff"))
    t.call("resetBranch missing branch", "PUT", R(repo, "/branches/nope"), json={"type": "reset"})
    upload(t, repo, "main", "later", b"l")
    commit(t, repo, "main", "later")
    t.call("hardResetBranch", "PUT", R(repo, "/branches/main/hard_reset"), params={"ref": "main~1"})
    t.call("getCommit main", "GET", R(repo, "/commits/main"))
    t.call("listObjects", "GET", R(repo, "/refs/main/objects/ls"))


def scenario_presigned(t, repo):
    """Presigned reads and multipart uploads (the S3 pair: both servers presign)."""
    data = bytes(range(256)) * 64
    upload(t, repo, "main", "obj", data)
    st = t.call("statObject presign", "GET", R(repo, "/refs/main/objects/stat"),
                params={"path": "obj", "presign": "true"}).json()
    got = requests.get(st["physical_address"], headers={"Range": "bytes=100-199"}, timeout=60)
    t.note("presigned GET range", [got.status_code, got.content == data[100:200],
                                   got.headers.get("Content-Range")])
    t.call("listObjects presign", "GET", R(repo, "/refs/main/objects/ls"), params={"presign": "true"})
    t.call("getObject presign", "GET", R(repo, "/refs/main/objects"), params={"path": "obj", "presign": "true"})
    pmpu = R(repo, "/branches/main/staging/pmpu")
    mpu = t.call("createPresignMultipartUpload", "POST", pmpu, params={"path": "big", "parts": 2}).json()
    part1, part2 = b"x" * PART, b"tail"
    etags = []
    for n, (url, chunk) in enumerate(zip(mpu["presigned_urls"], (part1, part2)), 1):
        put = requests.put(url, data=chunk, timeout=120)
        t.note("part %d PUT" % n, put.status_code)
        etags.append(put.headers.get("ETag"))
    t.call("uploadPart url", "PUT", pmpu + "/" + mpu["upload_id"] + "/parts/2", params={"path": "big"},
           json={"physical_address": mpu["physical_address"]})
    t.call("completePresignMultipartUpload", "PUT", pmpu + "/" + mpu["upload_id"], params={"path": "big"},
           json={"physical_address": mpu["physical_address"], "content_type": "application/x-big",
                 "user_metadata": {"parts": "2"},
                 "parts": [{"part_number": i + 1, "etag": e} for i, e in enumerate(etags)]})
    st = t.call("statObject big", "GET", R(repo, "/refs/main/objects/stat"), params={"path": "big"})
    t.note("big size", st.json().get("size_bytes"))
    mpu = t.call("createPresignMultipartUpload 0 parts", "POST", pmpu, params={"path": "aborted"}).json()
    t.call("abortPresignMultipartUpload", "DELETE", pmpu + "/" + mpu["upload_id"], params={"path": "aborted"},
           json={"physical_address": mpu["physical_address"]})
    t.call("statObject aborted", "GET", R(repo, "/refs/main/objects/stat"), params={"path": "aborted"})


def scenario_lakectl_metadata(t, repo):
    """The ::lakefs:: metadata lakefuse writes as lakectl does (X-Lakefs-Internal-* headers on
    uploadObject, ::lakefs:: keys in linkPhysicalAddress's user_metadata), and plain uploads."""
    perms = '{"UID":1000,"GID":1000,"Mode":33188}'
    upload(t, repo, "main", "with-internal", b"i", **{"X-Lakefs-Internal-client-mtime": "1700000000",
                                                       "X-Lakefs-Internal-posix-permissions": perms,
                                                       "X-Lakefs-Meta-Mixed-Case": "Value"})
    upload(t, repo, "main", "no-content-type", b"n")
    upload(t, repo, "main", "json-typed", b"{}", **{"Content-Type": "application/json"})
    backing = R(repo, "/branches/main/staging/backing")
    loc = t.server.api("GET", backing, params={"path": "linked-meta"}).json()
    t.call("linkPhysicalAddress ::lakefs:: metadata", "PUT", backing, params={"path": "linked-meta"},
           json={"staging": {"physical_address": loc["physical_address"]},
                 "checksum": "0cc175b9c0f1b6a831c399e269772661", "size_bytes": 1,
                 "user_metadata": {"::lakefs::client-mtime": "1700000001", "::lakefs::posix-permissions": perms}})
    ls = R(repo, "/refs/main/objects/ls")
    t.call("listObjects", "GET", ls)
    for path in ("with-internal", "no-content-type", "json-typed", "linked-meta"):
        t.call("statObject %s" % path, "GET", R(repo, "/refs/main/objects/stat"), params={"path": path})
    t.call("getObject json-typed", "GET", R(repo, "/refs/main/objects"), params={"path": "json-typed"})
    commit(t, repo, "main", "metadata")
    t.call("listObjects committed", "GET", ls)
    t.call("listObjects committed user_metadata=false", "GET", ls, params={"user_metadata": "false"})
    t.call("updateObjectUserMetadata committed", "PUT", R(repo, "/branches/main/objects/stat/user_metadata"),
           params={"path": "with-internal"}, json={"set": {"::lakefs::client-mtime": "1700000002", "k": "v"}})
    t.call("statObject after update", "GET", R(repo, "/refs/main/objects/stat"), params={"path": "with-internal"})
    t.call("diffBranch metadata only", "GET", R(repo, "/branches/main/diff"))


def scenario_presign_refused(t, repo):
    """What a server with presign disabled answers to presign=true (S3 with disable_pre_signed;
    lakeFS's local blockstore words it "local adapter presigned URL: operation not supported")."""
    upload(t, repo, "main", "obj", b"data")
    t.call("statObject presign", "GET", R(repo, "/refs/main/objects/stat"), params={"path": "obj", "presign": "true"})
    t.call("listObjects presign", "GET", R(repo, "/refs/main/objects/ls"), params={"presign": "true"})
    t.call("getObject presign", "GET", R(repo, "/refs/main/objects"), params={"path": "obj", "presign": "true"})
    t.call("getPhysicalAddress presign", "GET", R(repo, "/branches/main/staging/backing"),
           params={"path": "new", "presign": "true"})
    t.call("createPresignMultipartUpload", "POST", R(repo, "/branches/main/staging/pmpu"),
           params={"path": "big", "parts": 1})


SCENARIOS = [scenario_repositories, scenario_branches_tags_refs, scenario_objects, scenario_staging,
             scenario_commit_diff, scenario_merge, scenario_reset, scenario_lakectl_metadata]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[len("scenario_"):])
def test_same_answers_as_lakefs(pair, scenario):
    run_both(pair, scenario)


@pytest.mark.parametrize("pair", ["lakefs-s3"], indirect=True)  # the local blockstore cannot presign
def test_same_presigned_answers_as_lakefs(pair):
    run_both(pair, scenario_presigned)


@pytest.mark.parametrize("pair", ["lakefs-s3-no-presign"], indirect=True)
def test_same_refusals_of_presign_as_lakefs(pair):
    run_both(pair, scenario_presign_refused)
