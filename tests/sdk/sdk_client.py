"""The lakeFS getting-started walkthrough written with the official Python SDKs, as users write it:
lakefs_sdk (the generated client, pinned at the server's version) and lakefs (the high-level SDK).
Runs under the virtualenv that `scripts/third-party.sh sdk` installs, never under Debian's python
(which has neither SDK); tests/sdk runs it as a subprocess and cross-checks what it reports.

    sdk_client.py walkthrough PREFIX NAMESPACE_ROOT   runs every step on repositories named PREFIX-*
                                                      (storage namespace NAMESPACE_ROOT + name),
                                                      asserting as it goes; prints one JSON line
    sdk_client.py serve                               answers JSON requests, one a line on stdin
                                                      (see SERVE_OPS), so a test can interleave
                                                      SDK calls with a mount

The endpoint and the credentials come from the environment, as for lakectl and both SDKs:
LAKECTL_SERVER_ENDPOINT_URL (with /api/v1), LAKECTL_CREDENTIALS_ACCESS_KEY_ID and
LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY; never from the command line. It never deletes a repository:
the test does, so the real-server fixture can purge the blockstore too.
"""
import base64
import json
import os
import sys

import lakefs
import lakefs_sdk
from lakefs.exceptions import ConflictException, NotFoundException, ObjectNotFoundException
from lakefs_sdk.client import LakeFSClient
from lakefs_sdk.exceptions import ApiException
from lakefs_sdk.exceptions import NotFoundException as SdkNotFoundException

PAGE_REPOS = 5  # repositories in the paginated listing...
PAGE_SIZE = 2   # ...listed this many a page: 3 pages


def generated_client():
    """lakefs_sdk's client, configured from the lakectl environment variables."""
    conf = lakefs_sdk.Configuration(host=os.environ["LAKECTL_SERVER_ENDPOINT_URL"],
                                    username=os.environ["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
                                    password=os.environ["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"])
    return LakeFSClient(conf)


def high_level_client():
    """lakefs.Client() with no arguments reads the same variables (or ~/.lakectl.yaml)."""
    return lakefs.Client()


def expect_error(kind, fn, *args, **kw):
    """Calls fn, which must raise kind; returns the exception."""
    try:
        fn(*args, **kw)
    except kind as err:
        return err
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), kind.__name__))


def changes(diff_list):
    return sorted((d.type, d.path) for d in diff_list)


# --- the walkthrough with the generated SDK -------------------------------------------------------

def walkthrough_generated(client, repo_name, namespace, steps):
    from lakefs_sdk import BranchCreation, CommitCreation, Merge, RepositoryCreation

    repo = client.repositories_api.create_repository(
        RepositoryCreation(name=repo_name, storage_namespace=namespace, default_branch="main"))
    assert (repo.id, repo.default_branch, repo.storage_namespace) == (repo_name, "main", namespace), repo
    steps.append("generated: create repository")

    err = expect_error(ApiException, client.repositories_api.create_repository,
                       RepositoryCreation(name=repo_name, storage_namespace=namespace + "-again"))
    assert err.status == 409, (err.status, err.body)
    assert not isinstance(err, SdkNotFoundException)
    steps.append("generated: 409 on an existing repository")

    branches = client.branches_api.list_branches(repo_name)
    assert [b.id for b in branches.results] == ["main"], branches
    main_head = branches.results[0].commit_id
    steps.append("generated: list branches")

    ref = client.branches_api.create_branch(repo_name, BranchCreation(name="experiment", source="main"))
    assert ref == main_head, (ref, main_head)
    assert sorted(b.id for b in client.branches_api.list_branches(repo_name).results) == ["experiment", "main"]
    steps.append("generated: create branch")

    hello = b"Hello from lakefs_sdk\n"
    stats = client.objects_api.upload_object(repo_name, "experiment", "data/hello.txt", content=hello)
    assert (stats.path, stats.size_bytes, stats.path_type) == ("data/hello.txt", len(hello), "object"), stats
    rows = b"".join(b"%d,%d\n" % (i, i * i) for i in range(2000))
    client.objects_api.upload_object(repo_name, "experiment", "data/squares.csv", content=rows)
    got = client.objects_api.get_object(repo_name, "experiment", "data/squares.csv")
    assert bytes(got) == rows
    steps.append("generated: upload")

    diff = client.branches_api.diff_branch(repo_name, "experiment")
    assert changes(diff.results) == [("added", "data/hello.txt"), ("added", "data/squares.csv")], diff
    assert {d.path: d.size_bytes for d in diff.results} == {"data/hello.txt": len(hello),
                                                          "data/squares.csv": len(rows)}, diff
    steps.append("generated: diff branch")

    commit = client.commits_api.commit(repo_name, "experiment", CommitCreation(
        message="Add data", metadata={"using": "lakefs_sdk", "run": "1"}))
    assert commit.message == "Add data" and commit.metadata == {"using": "lakefs_sdk", "run": "1"}, commit
    assert commit.parents == [main_head], commit
    again = client.commits_api.get_commit(repo_name, commit.id)
    assert (again.id, again.message, again.metadata) == (commit.id, commit.message, commit.metadata), again
    assert client.branches_api.get_branch(repo_name, "experiment").commit_id == commit.id
    assert client.branches_api.diff_branch(repo_name, "experiment").results == []
    steps.append("generated: commit with metadata")

    diff = client.refs_api.diff_refs(repo_name, "main", "experiment")
    assert changes(diff.results) == [("added", "data/hello.txt"), ("added", "data/squares.csv")], diff
    steps.append("generated: diff refs")

    merged = client.refs_api.merge_into_branch(repo_name, "experiment", "main", merge=Merge(
        message="Merge experiment", metadata={"merged_by": "lakefs_sdk"}))
    head = client.branches_api.get_branch(repo_name, "main").commit_id
    assert merged.reference == head, (merged, head)
    log = client.refs_api.log_commits(repo_name, "main", amount=1)
    assert len(log.results) == 1 and log.pagination.has_more, log
    top = log.results[0]
    # lakeFS records the strategy in a merge commit's metadata, next to the caller's.
    assert (top.id, top.message, top.metadata) == (head, "Merge experiment", {
        "merged_by": "lakefs_sdk", ".lakefs.merge.strategy": "default"}), top
    assert sorted(top.parents) == sorted([main_head, commit.id]), top
    assert bytes(client.objects_api.get_object(repo_name, "main", "data/hello.txt")) == hello
    assert client.refs_api.diff_refs(repo_name, "main", "experiment").results == []
    steps.append("generated: merge")

    listing = client.objects_api.list_objects(repo_name, "main", prefix="data/", delimiter="/")
    assert [(o.path, o.path_type, o.size_bytes) for o in listing.results] == [
        ("data/hello.txt", "object", len(hello)), ("data/squares.csv", "object", len(rows))], listing
    # lakeFS lists user metadata only for objects that have some; a stat always has it.
    assert [o.metadata for o in listing.results] == [None, None], listing
    assert client.objects_api.stat_object(repo_name, "main", "data/hello.txt").metadata == {}
    top = client.objects_api.list_objects(repo_name, "main", delimiter="/")
    assert [(o.path, o.path_type) for o in top.results] == [("data/", "common_prefix")], top
    steps.append("generated: list objects")

    # The commits that changed an object: lakeFS looks at single-parent commits only, so the merge
    # that brought it to main is not one of them.
    log = client.refs_api.log_commits(repo_name, "main", objects=["data/hello.txt"], amount=10)
    assert [c.id for c in log.results] == [commit.id], log
    log = client.refs_api.log_commits(repo_name, "main", prefixes=["data/"], amount=10)
    assert [c.id for c in log.results] == [commit.id], log
    steps.append("generated: log of an object")

    for call, args in ((client.repositories_api.get_repository, (repo_name + "-missing",)),
                       (client.branches_api.get_branch, (repo_name, "no-such-branch")),
                       (client.branches_api.create_branch, (repo_name, BranchCreation(name="b", source="no-such-ref"))),
                       (client.objects_api.get_object, (repo_name, "main", "data/missing.txt")),
                       (client.objects_api.stat_object, (repo_name, "main", "data/missing.txt"))):
        err = expect_error(SdkNotFoundException, call, *args)
        assert err.status == 404, (call.__name__, err.status)
    steps.append("generated: 404 as NotFoundException")
    return {"repo": repo_name, "commit": commit.id, "merge": head}


# --- the walkthrough with the high-level SDK ------------------------------------------------------

def walkthrough_high_level(client, repo_name, namespace, steps):
    repo = lakefs.repository(repo_name, client=client).create(storage_namespace=namespace,
                                                             default_branch="main")
    props = repo.properties
    assert (props.id, props.default_branch, props.storage_namespace) == (repo_name, "main", namespace), props
    steps.append("high-level: create repository")

    err = expect_error(ConflictException, lakefs.repository(repo_name, client=client).create,
                       storage_namespace=namespace + "-again")
    assert err.status_code == 409, err
    same = lakefs.repository(repo_name, client=client).create(storage_namespace=namespace, exist_ok=True)
    assert same.properties.storage_namespace == namespace
    steps.append("high-level: 409 on an existing repository")

    assert [b.id for b in repo.branches()] == ["main"]
    main = repo.branch("main")
    main_head = main.get_commit().id
    steps.append("high-level: list branches")

    exp = repo.branch("experiment").create(source_reference="main")
    assert exp.get_commit().id == main_head
    assert sorted(b.id for b in repo.branches()) == ["experiment", "main"]
    steps.append("high-level: create branch")

    hello = "Hello from the lakefs package\n"
    obj = exp.object("data/hello.txt").upload(data=hello, content_type="text/plain")
    assert obj.stat().size_bytes == len(hello)
    with exp.object("data/lines.txt").writer(mode="w") as writer:  # presigned PUT where the server can
        for i in range(1000):
            writer.write("line %d\n" % i)
    lines = "".join("line %d\n" % i for i in range(1000))
    assert exp.object("data/lines.txt").reader(mode="r").read() == lines
    steps.append("high-level: upload")

    uncommitted = sorted((c.type, c.path, c.size_bytes) for c in exp.uncommitted())
    assert uncommitted == [("added", "data/hello.txt", len(hello)), ("added", "data/lines.txt", len(lines))], \
        uncommitted
    steps.append("high-level: diff branch")

    ref = exp.commit(message="Add data", metadata={"using": "lakefs", "run": "2"})
    commit = ref.get_commit()
    assert (commit.message, commit.metadata, commit.parents) == ("Add data", {"using": "lakefs", "run": "2"},
                                                                 [main_head]), commit
    assert list(exp.uncommitted()) == []
    steps.append("high-level: commit with metadata")

    diff = sorted((c.type, c.path) for c in main.diff(other_ref=exp))
    assert diff == [("added", "data/hello.txt"), ("added", "data/lines.txt")], diff
    steps.append("high-level: diff refs")

    merged = exp.merge_into(main, message="Merge experiment")
    assert merged == main.get_commit().id
    log = list(main.log(max_amount=3))
    assert [c.message for c in log[:2]] == ["Merge experiment", "Add data"], log
    assert main.object("data/hello.txt").reader(mode="r").read() == hello  # presigned GET where it can
    assert list(main.diff(other_ref=exp)) == []
    steps.append("high-level: merge")

    listed = [(type(o).__name__, o.path) for o in main.objects(delimiter="/")]
    assert listed == [("CommonPrefix", "data/")], listed
    listed = [(o.path, o.size_bytes, o.metadata) for o in main.objects(prefix="data/", delimiter="/")]
    assert listed == [("data/hello.txt", len(hello), None), ("data/lines.txt", len(lines), None)], listed
    steps.append("high-level: list objects")

    err = expect_error(NotFoundException, lambda: lakefs.repository(repo_name + "-missing", client=client).properties)
    assert err.status_code == 404
    expect_error(NotFoundException, repo.branch("no-such-branch").get_commit)
    err = expect_error(ObjectNotFoundException, main.object("data/missing.txt").reader().read)
    assert isinstance(err, NotFoundException) and isinstance(err, FileNotFoundError)
    assert not main.object("data/missing.txt").exists()
    steps.append("high-level: 404 as NotFoundException")
    return {"repo": repo_name, "commit": commit.id, "merge": merged}


# --- paginated repository listing -------------------------------------------------------------------

def paginated_listing(gen, client, prefix, namespace_root, steps):
    from lakefs_sdk import RepositoryCreation
    names = ["%s-page-%d" % (prefix, i) for i in range(PAGE_REPOS)]
    for name in names:
        gen.repositories_api.create_repository(RepositoryCreation(name=name, storage_namespace=namespace_root + name))
    pages, after = [], ""
    while True:
        page = gen.repositories_api.list_repositories(prefix=prefix + "-page-", after=after, amount=PAGE_SIZE)
        pages.append([r.id for r in page.results])
        if not page.pagination.has_more:
            break
        assert page.pagination.next_offset == pages[-1][-1], page.pagination
        after = page.pagination.next_offset
    assert pages == [names[0:2], names[2:4], names[4:5]], pages
    steps.append("generated: paginated repository listing")

    listed = [r.id for r in lakefs.repositories(client=client, prefix=prefix + "-page-", amount=PAGE_SIZE)]
    assert listed == names, listed
    steps.append("high-level: paginated repository listing")
    return {"pages": pages}


def walkthrough(prefix, namespace_root):
    steps, out = [], {"steps": []}
    gen, client = generated_client(), high_level_client()
    try:
        out["generated"] = walkthrough_generated(gen, prefix + "-gen", namespace_root + prefix + "-gen", steps)
        out["high_level"] = walkthrough_high_level(client, prefix + "-hl", namespace_root + prefix + "-hl", steps)
        out.update(paginated_listing(gen, client, prefix, namespace_root, steps))
    finally:
        out["steps"] = steps
        print(json.dumps(out), flush=True)


# --- serve: single SDK calls for tests that interleave them with a mount ---------------------------

def _b64(data):
    return base64.b64encode(bytes(data)).decode()


def _commit_dict(c):
    return {"id": c.id, "message": c.message, "metadata": c.metadata or {}, "parents": list(c.parents)}


def op_upload(gen, client, repo, branch, path, data, sdk="generated", metadata=None):
    data = base64.b64decode(data)
    if sdk == "generated":
        s = gen.objects_api.upload_object(repo, branch, path, content=data)
        return {"path": s.path, "size_bytes": s.size_bytes, "checksum": s.checksum}
    obj = lakefs.repository(repo, client=client).branch(branch).object(path).upload(data=data, metadata=metadata)
    s = obj.stat()
    return {"path": s.path, "size_bytes": s.size_bytes, "checksum": s.checksum}


def op_get(gen, client, repo, ref, path, sdk="generated"):
    if sdk == "generated":
        return {"data": _b64(gen.objects_api.get_object(repo, ref, path))}
    with lakefs.repository(repo, client=client).ref(ref).object(path).reader() as reader:
        return {"data": _b64(reader.read())}


def op_stat(gen, client, repo, ref, path):
    s = gen.objects_api.stat_object(repo, ref, path, user_metadata=True)
    return {"path": s.path, "size_bytes": s.size_bytes, "checksum": s.checksum, "metadata": s.metadata or {}}


def op_list(gen, client, repo, ref, prefix=""):
    objs = lakefs.repository(repo, client=client).ref(ref).objects(prefix=prefix)
    return {"objects": [{"path": o.path, "size_bytes": o.size_bytes} for o in objs]}


def op_commit(gen, client, repo, branch, message, metadata=None):
    from lakefs_sdk import CommitCreation
    return _commit_dict(gen.commits_api.commit(repo, branch, CommitCreation(message=message, metadata=metadata)))


def op_log(gen, client, repo, ref, amount=1):
    return {"commits": [_commit_dict(c) for c in gen.refs_api.log_commits(repo, ref, amount=amount).results]}


def op_diff_branch(gen, client, repo, branch):
    return {"changes": [[c.type, c.path] for c in lakefs.repository(repo, client=client).branch(branch).uncommitted()]}


def op_diff_refs(gen, client, repo, left, right):
    return {"changes": [[d.type, d.path] for d in gen.refs_api.diff_refs(repo, left, right).results]}


def op_branches(gen, client, repo):
    return {"branches": {b.id: b.commit_id for b in gen.branches_api.list_branches(repo).results}}


SERVE_OPS = {"upload": op_upload, "get": op_get, "stat": op_stat, "list": op_list, "commit": op_commit,
             "log": op_log, "diff_branch": op_diff_branch, "diff_refs": op_diff_refs, "branches": op_branches}


def serve():
    """One JSON object a line in ({"op": NAME, ...arguments}), one out: the result, or
    {"error": {"class", "status", "message"}} for an exception (the SDK's class name and HTTP status)."""
    gen, client = generated_client(), high_level_client()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = SERVE_OPS[request.pop("op")]
        try:
            answer = {"ok": op(gen, client, **request)}
        except Exception as err:  # reported to the test, which decides
            status = getattr(err, "status", None) or getattr(err, "status_code", None)
            answer = {"error": {"class": type(err).__name__, "status": status, "message": str(err)[:2000]}}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["walkthrough"] and len(sys.argv) == 4:
        walkthrough(sys.argv[2], sys.argv[3])
    elif sys.argv[1:] == ["serve"]:
        serve()
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
