"""The lakeFS getting-started walkthrough with the official Python SDKs, lakefs-sdk 1.84.0 (generated,
the server's version) and lakefs 0.16.0 (high-level), both unmodified from PyPI, against whichever
server LAKEFUSE_TEST_SERVER names (bundled, lakefs-local, lakefs-s3); then the SDKs interleaved with
a lakefuse mount: what the SDK writes and commits shows through the mount, and what is written and
committed through the mount reads back through the SDK.

The SDK code runs in tests/sdk/sdk_client.py under the virtualenv of `scripts/third-party.sh sdk`;
these tests check what it reports against the server's own answers (plain HTTP) and its request
counts, so a walkthrough that skipped a step or paged nothing would fail here too.
"""
import base64
import json
import os
import shlex
import uuid

import pytest

import mountlib
from sdklib import SdkError, run_walkthrough
from mountlib import (api_branches, api_commit, api_get, control_json, control_path, control_read, poll,
                      read_file, sh, status_lines)

STEPS = ("create repository", "409 on an existing repository", "list branches", "create branch", "upload",
         "diff branch", "commit with metadata", "diff refs", "merge", "list objects")
WALKTHROUGH_STEPS = (["generated: " + step for step in STEPS] + ["generated: log of an object",
                                                                  "generated: 404 as NotFoundException"]
                     + ["high-level: " + step for step in STEPS] + ["high-level: 404 as NotFoundException"]
                     + ["generated: paginated repository listing", "high-level: paginated repository listing"])


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text)


def q(path):
    return shlex.quote(str(path))


def presigns(server):
    body = server.api("GET", "/config").json()
    st = body.get("storage_config") or (body.get("storage_config_list") or [{}])[0]
    return bool(st.get("pre_sign_support"))


def delete_repositories(server, prefix):
    """Deletes every repository named PREFIX* (through the fixture, which also purges real storage)."""
    resp = server.api("GET", "/repositories", params={"prefix": prefix, "amount": 1000})
    for repo in resp.json().get("results", []) if resp.status_code == 200 else []:
        server.api("DELETE", "/repositories/" + repo["id"])


# --- the walkthrough --------------------------------------------------------------------------------

def test_getting_started_walkthrough_with_both_sdks(sdk_python, server, tmp_path):
    prefix = "sdk-" + uuid.uuid4().hex[:10]
    try:
        status, report, stderr = run_walkthrough(sdk_python, server, tmp_path / "home", prefix)
        assert status == 0, "the walkthrough failed after %r:\n%s" % (report.get("steps"), stderr[-6000:])
        assert report["steps"] == WALKTHROUGH_STEPS
        counts = server.counts()

        # What the SDKs did is on the server, as plain HTTP reads it.
        for key, content, commit_meta in (
                ("generated", b"Hello from lakefs_sdk\n", {"using": "lakefs_sdk", "run": "1"}),
                ("high_level", b"Hello from the lakefs package\n", {"using": "lakefs", "run": "2"})):
            done = report[key]
            repo = done["repo"]
            assert sorted(api_branches(server, repo)) == ["experiment", "main"]
            main = api_commit(server, repo, "main")
            assert main["id"] == done["merge"]
            assert done["commit"] in main["parents"], main
            commit = server.api("GET", "/repositories/%s/commits/%s" % (repo, done["commit"])).json()
            assert (commit["message"], commit["metadata"]) == ("Add data", commit_meta), commit
            assert api_get(server, repo, "main", "data/hello.txt") == content
        assert api_get(server, report["generated"]["repo"], "main", "data/squares.csv") == \
            b"".join(b"%d,%d\n" % (i, i * i) for i in range(2000))
        assert api_get(server, report["high_level"]["repo"], "main", "data/lines.txt") == \
            "".join("line %d\n" % i for i in range(1000)).encode()

        names = ["%s-page-%d" % (prefix, i) for i in range(5)]
        assert report["pages"] == [names[0:2], names[2:4], names[4:]]
        # Three pages of two for each SDK: six listings, and nothing listed any other way.
        assert counts.get("listRepositories") == 6, counts
        # Two repositories, two refused as existing, one exist_ok create (refused, then kept), five to page.
        assert counts.get("createRepository") == 10, counts
        if presigns(server):
            # The high-level SDK writes and reads through presigned URLs when the server offers them:
            # two objects uploaded (staging: address, PUT, link), two read.
            assert (counts.get("getPhysicalAddress"), counts.get("presignedPut"), counts.get("linkPhysicalAddress"),
                    counts.get("presignedGet")) == (2, 2, 2, 2), counts
            assert counts.get("uploadObject") == 2, counts  # the generated SDK's two uploads
        else:
            assert counts.get("uploadObject") == 4 and not counts.get("getPhysicalAddress"), counts
    finally:
        delete_repositories(server, prefix)


def test_walkthrough_reports_a_failing_step(sdk_python, server, tmp_path):
    """The harness itself: a walkthrough whose repository already exists stops at the first step with a
    non-zero status, and reports no step done (so a passing run means every step ran)."""
    prefix = "sdk-" + uuid.uuid4().hex[:10]
    try:
        server.create_repo(prefix + "-gen")
        status, report, stderr = run_walkthrough(sdk_python, server, tmp_path / "home", prefix)
        assert status != 0 and report["steps"] == [], (status, report)
        assert "ApiException" in stderr or "ConflictException" in stderr, stderr[-3000:]
    finally:
        delete_repositories(server, prefix)


# --- interleaved with a mount -----------------------------------------------------------------------

def test_what_the_sdk_writes_and_commits_shows_through_the_mount(server, repo, sdk, mount):
    m = mount("lakefs://" + repo, options=["attr_timeout=1"])
    main = m.join("main")
    assert os.listdir(main) == []
    hello = b"written by lakefs_sdk\n"
    blob = os.urandom(300 * 1024)
    uploaded = sdk.call("upload", repo=repo, branch="main", path="sdk/hello.txt", data=b64(hello))
    assert uploaded["size_bytes"] == len(hello)
    assert sdk.call("upload", repo=repo, branch="main", path="sdk/blob.bin", data=b64(blob), sdk="high-level",
                    metadata={"origin": "lakefs"})["size_bytes"] == len(blob)

    # Uncommitted, they already show on the branch (within attr_timeout), with their sizes and bytes.
    assert poll(lambda: os.path.isdir(os.path.join(main, "sdk"))
                and sorted(os.listdir(os.path.join(main, "sdk"))) == ["blob.bin", "hello.txt"], timeout=30)
    assert os.path.getsize(os.path.join(main, "sdk", "hello.txt")) == len(hello)
    assert os.path.getsize(os.path.join(main, "sdk", "blob.bin")) == len(blob)
    assert sh("cat %s" % q(os.path.join(main, "sdk", "hello.txt"))).stdout == hello
    assert read_file(os.path.join(main, "sdk", "blob.bin")) == blob
    assert os.getxattr(os.path.join(main, "sdk", "blob.bin"), "user.lakefs.meta.origin") == b"lakefs"
    assert sorted(status_lines(m, "main")) == ["A sdk/blob.bin", "A sdk/hello.txt"]

    # The SDK commits with metadata: the mount's head follows, and the commit opens as a fixed ref.
    commit = sdk.call("commit", repo=repo, branch="main", message="from the SDK", metadata={"run": "7"})
    assert commit["metadata"] == {"run": "7"}
    assert poll(lambda: control_read(control_path(m, "head", "main")).strip() == commit["id"], timeout=30)
    assert os.getxattr(main, "user.lakefs.commit_id").decode() == commit["id"]
    assert status_lines(m, "main") == []
    assert sorted(os.listdir(m.join(commit["id"], "sdk"))) == ["blob.bin", "hello.txt"]
    assert read_file(m.join(commit["id"], "sdk", "hello.txt")) == hello

    # An SDK overwrite shows on the branch; the commit keeps the old bytes.
    replaced = b"replaced by lakefs_sdk, and longer than before\n"
    sdk.call("upload", repo=repo, branch="main", path="sdk/hello.txt", data=b64(replaced))
    assert poll(lambda: read_file(os.path.join(main, "sdk", "hello.txt")) == replaced, timeout=30)
    assert os.path.getsize(os.path.join(main, "sdk", "hello.txt")) == len(replaced)
    assert read_file(m.join(commit["id"], "sdk", "hello.txt")) == hello
    assert status_lines(m, "main") == ["M sdk/hello.txt"]


def test_what_the_mount_writes_and_commits_reads_back_through_the_sdk(server, repo, sdk, mount, tmp_path):
    m = mount("lakefs://" + repo, options=["attr_timeout=3600"])
    main = m.join("main")
    source = tmp_path / "source.bin"
    data = os.urandom(700 * 1024 + 13)
    source.write_bytes(data)
    sh("cp %s %s" % (q(source), q(os.path.join(main, "copied.bin"))))
    sh("echo 'written by echo' > %s" % q(os.path.join(main, "echo.txt")))
    sh("mkdir %s && printf 'a,b\\n1,2\\n' > %s" % (q(os.path.join(main, "results")),
                                                   q(os.path.join(main, "results", "run.csv"))))
    sh("setfattr -n user.lakefs.meta.owner -v mount-test %s" % q(os.path.join(main, "echo.txt")))

    # Before the commit the SDK sees the mount's uploads as uncommitted changes (the directory's marker
    # too: dir_markers is the default), and reads their bytes from the branch.
    changes = sorted(tuple(c) for c in sdk.call("diff_branch", repo=repo, branch="main")["changes"])
    assert changes == [("added", "copied.bin"), ("added", "echo.txt"), ("added", "results/"),
                       ("added", "results/run.csv")], changes
    assert unb64(sdk.call("get", repo=repo, ref="main", path="copied.bin")["data"]) == data
    assert sdk.call("stat", repo=repo, ref="main", path="echo.txt")["metadata"].get("owner") == "mount-test"

    sh("echo %s > %s" % (q(json.dumps({"message": "written through the mount", "metadata": {"run": "42"}})),
                         q(control_path(m, "commit", "main"))))
    result = control_json(control_path(m, "commit", "main"))
    assert result["ok"] is True, result
    log = sdk.call("log", repo=repo, ref="main", amount=1)["commits"]
    assert log[0]["id"] == result["commit"]["id"]
    assert (log[0]["message"], log[0]["metadata"]) == ("written through the mount", {"run": "42"})
    assert sdk.call("diff_branch", repo=repo, branch="main")["changes"] == []
    for ref in ("main", log[0]["id"]):
        assert unb64(sdk.call("get", repo=repo, ref=ref, path="copied.bin")["data"]) == data
        assert unb64(sdk.call("get", repo=repo, ref=ref, path="echo.txt", sdk="high-level")["data"]) == \
            b"written by echo\n"
        assert unb64(sdk.call("get", repo=repo, ref=ref, path="results/run.csv", sdk="high-level")["data"]) == \
            b"a,b\n1,2\n"
    listed = {o["path"]: o["size_bytes"] for o in sdk.call("list", repo=repo, ref=log[0]["id"])["objects"]}
    assert listed == {"copied.bin": len(data), "echo.txt": 16, "results/": 0, "results/run.csv": 8}, listed


def test_a_branch_made_and_merged_through_the_mount_reads_back_through_the_sdk(server, repo, sdk, mount, lakefuse_env):
    m = mount("lakefs://" + repo, options=["attr_timeout=3600"])
    sh("mkdir %s" % q(m.join("experiment")))
    branches = sdk.call("branches", repo=repo)["branches"]
    assert sorted(branches) == ["experiment", "main"] and branches["experiment"] == branches["main"]
    sh("echo 'on experiment' > %s" % q(m.join("experiment", "exp.txt")))
    out = mountlib.run([mountlib.LAKEFUSE, "commit", m.join("experiment"), "-m", "experiment data",
                        "--meta", "by=lakefuse"], env=lakefuse_env).stdout.decode().strip()
    commit = sdk.call("log", repo=repo, ref="experiment", amount=1)["commits"][0]
    assert (commit["id"], commit["message"], commit["metadata"]) == (out, "experiment data", {"by": "lakefuse"})
    assert sorted(tuple(c) for c in sdk.call("diff_refs", repo=repo, left="main", right="experiment")["changes"]) \
        == [("added", "exp.txt")]

    sh("echo experiment > %s" % q(control_path(m, "merge", "main")))
    merge = sdk.call("log", repo=repo, ref="main", amount=1)["commits"][0]
    assert commit["id"] in merge["parents"] and len(merge["parents"]) == 2, merge
    assert unb64(sdk.call("get", repo=repo, ref="main", path="exp.txt", sdk="high-level")["data"]) == b"on experiment\n"
    assert sdk.call("diff_refs", repo=repo, left="main", right="experiment")["changes"] == []
    assert read_file(m.join("main", "exp.txt")) == b"on experiment\n"


def test_sdk_errors_for_what_the_mount_never_wrote(server, repo, sdk, mount):
    """A path deleted through the mount is gone for the SDK too: 404 as NotFoundException in both SDKs."""
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=3600"])
    sh("echo gone > %s && rm %s" % (q(m.join("gone.txt")), q(m.join("gone.txt"))))
    for kind in ("generated", "high-level"):
        with pytest.raises(SdkError) as err:
            sdk.call("get", repo=repo, ref="main", path="gone.txt", sdk=kind)
        assert err.value.status == 404, err.value
        assert err.value.cls == ("NotFoundException" if kind == "generated" else "ObjectNotFoundException")
