"""The control files under each ref root's .lakefs/ (issue 5): commit (a message or JSON, the errno
table, the last result read back), status and status.json (the server's branch diff, then this
mount's uploads), diff/REF (three-dot, as lakeFS's diffRefs), merge (strategies, conflicts, unknown
refs), branch (create from any ref, delete) and reset (an object, a prefix, everything); modes that
say who may use each file, and EROFS on fixed refs. Every test works on a fresh repository, in a
mount whose caches never expire (attr_timeout=3600), so whatever it shows after a control write
comes from the write, not from a refetch."""
import errno
import json
import os
import shlex
import stat

import pytest

import mountlib
from mountlib import (api_branches, api_commit, api_commit_id, api_create_branch, api_create_tag,
                      api_diff_branch, api_diff_refs, api_get, api_get_or_none, control_json, control_lines,
                      control_path, control_read, control_write, diff_lines, expect_errno, kill_mount, read_file,
                      sh, status_lines, write_file)

FOREVER = "attr_timeout=3600"
COMMIT_KEYS = ("id", "message", "metadata", "parents", "committer", "creation_date")


def branch_mount(mount, repo, ref="main"):
    return mount("lakefs://%s/%s" % (repo, ref), options=[FOREVER])


def api_delete(server, repo, branch, path):
    resp = server.api("DELETE", "/repositories/%s/branches/%s/objects" % (repo, branch), params={"path": path})
    assert resp.status_code == 204, resp.text


def head_shown(m, at=""):
    """The head as the mount shows it: .lakefs/head and the ref root's user.lakefs.commit_id."""
    return (control_read(control_path(m, "head", at)).strip(),
            os.getxattr(os.path.join(m.path, at), "user.lakefs.commit_id").decode())


def q(path):
    return shlex.quote(str(path))


# --- modes --------------------------------------------------------------------------------------------

def test_control_files_say_who_may_use_them(server, repo, mount):
    server.upload(repo, "main", "f.txt", b"f\n")
    commit = server.commit(repo, "main", "one")["id"]
    api_create_tag(server, repo, "v1", commit)
    m = mount("lakefs://" + repo, options=[FOREVER])

    def mode(at, name):
        st = os.stat(control_path(m, name, at))
        assert stat.S_ISREG(st.st_mode), (at, name)
        return stat.S_IMODE(st.st_mode)

    listed = set(os.listdir(m.join("main", ".lakefs")))
    assert {"commit", "merge", "branch", "reset", "head", "stats", "status", "status.json"} <= listed, listed
    for name in ("commit", "merge", "branch", "reset"):
        assert mode("main", name) == 0o644, name
    for name in ("head", "stats", "status", "status.json"):
        assert mode("main", name) == 0o444, name
    assert stat.S_ISDIR(os.stat(control_path(m, "diff", "main")).st_mode)
    assert os.listdir(control_path(m, "diff", "main")) == []
    # Fixed refs: nothing to commit, merge or reset on them; a branch may start from them.
    for ref in (commit, "v1"):
        for name in ("commit", "merge", "reset", "head"):
            assert mode(ref, name) == 0o444, (ref, name)
        assert mode(ref, "branch") == 0o644, ref
        for name, text in (("commit", "message\n"), ("merge", "main\n"), ("reset", "*\n")):
            expect_errno(errno.EROFS, control_write, control_path(m, name, ref), text)
        assert sh("echo message > %s" % q(control_path(m, "commit", ref)), ok=False).returncode != 0
    assert api_commit_id(server, repo, "main") == commit
    assert sorted(api_branches(server, repo)) == ["main"]


# --- commit -------------------------------------------------------------------------------------------

def test_commit_with_a_message(server, repo, mount):
    m = branch_mount(mount, repo)
    before = api_commit(server, repo, "main")
    assert head_shown(m) == (before["id"], before["id"])  # cached for an hour from here on
    assert control_json(control_path(m, "commit")) == {}  # no attempt yet
    write_file(m.join("a.txt"), b"a\n")
    sh("echo 'first commit from the mount' > %s" % q(control_path(m, "commit")))
    head = api_commit(server, repo, "main")
    assert head["id"] != before["id"] and head["parents"] == [before["id"]]
    assert head["message"] == "first commit from the mount"  # the trailing newline is not part of it
    assert head["metadata"] == {}
    assert api_get(server, repo, head["id"], "a.txt") == b"a\n"
    assert api_diff_branch(server, repo, "main") == []
    result = control_json(control_path(m, "commit"))
    assert result["ok"] is True, result
    assert {k: result["commit"][k] for k in COMMIT_KEYS} == {k: head[k] for k in COMMIT_KEYS}
    # The mount shows the new head at once, though its caches never expire.
    assert head_shown(m) == (head["id"], head["id"])
    assert status_lines(m) == []
    assert read_file(m.join("a.txt")) == b"a\n" and os.listdir(m.path) == ["a.txt"]


def test_commit_json_with_metadata_and_allow_empty(server, repo, mount):
    m = branch_mount(mount, repo)
    first = api_commit_id(server, repo, "main")
    write_file(m.join("data.csv"), b"x,y\n1,2\n")
    control_write(control_path(m, "commit"),
                  json.dumps({"message": "add data", "metadata": {"source": "lakefuse", "step": "1"}}) + "\n")
    c1 = api_commit(server, repo, "main")
    assert c1["message"] == "add data" and c1["parents"] == [first]
    assert c1["metadata"] == {"source": "lakefuse", "step": "1"}
    assert control_json(control_path(m, "commit"))["commit"]["metadata"] == {"source": "lakefuse", "step": "1"}
    # Nothing changed since, but the request allows an empty commit.
    control_write(control_path(m, "commit"), json.dumps({"message": "a marker", "allow_empty": True}))
    c2 = api_commit(server, repo, "main")
    assert c2["message"] == "a marker" and c2["parents"] == [c1["id"]]
    result = control_json(control_path(m, "commit"))
    assert result["ok"] is True and result["commit"]["id"] == c2["id"]
    assert head_shown(m) == (c2["id"], c2["id"])


def test_commit_refusals_nothing_to_commit_and_bad_requests(server, repo, mount):
    m = branch_mount(mount, repo)
    path = control_path(m, "commit")
    head = api_commit_id(server, repo, "main")
    expect_errno(errno.ENODATA, control_write, path, "nothing changed\n")
    result = control_json(path)
    assert result["ok"] is False and result["errno"] == "ENODATA", result
    assert isinstance(result["error"], str) and result["error"], result
    assert sh("echo 'nothing changed' > %s" % q(path), ok=False).returncode != 0
    # With a change waiting: an empty message and malformed JSON are refused, lakeFS is not asked.
    write_file(m.join("waiting.txt"), b"w\n")
    server.reset_counts()
    for text in ("\n", '{"message": ', '{"message": ""}', '{"message": "m", "metadata": '):
        expect_errno(errno.EINVAL, control_write, path, text)
        result = control_json(path)
        assert result["ok"] is False and result["errno"] == "EINVAL", (text, result)
    assert server.counts().get("commit", 0) == 0, server.counts()
    assert api_commit_id(server, repo, "main") == head
    assert status_lines(m) == ["A waiting.txt"]
    assert head_shown(m) == (head, head)


@pytest.mark.parametrize("status,code", [(401, errno.EACCES), (403, errno.EPERM), (500, errno.EIO)],
                         ids=["401-EACCES", "403-EPERM", "500-EIO"])
def test_commit_refused_by_the_server(server, repo, mount, status, code):
    m = branch_mount(mount, repo)
    write_file(m.join("f.txt"), b"f\n")
    head = api_commit_id(server, repo, "main")
    server.add_fault(operation="commit", status=status, message="injected refusal %d" % status, count=1)
    expect_errno(code, control_write, control_path(m, "commit"), "refused\n")
    result = control_json(control_path(m, "commit"))
    assert result["ok"] is False and result["errno"] == errno.errorcode[code], result
    assert "injected refusal %d" % status in result["error"], result
    assert api_commit_id(server, repo, "main") == head
    assert status_lines(m) == ["A f.txt"]
    # Once the server accepts, the same change commits.
    control_write(control_path(m, "commit"), "accepted\n")
    assert api_commit(server, repo, "main")["message"] == "accepted"
    assert control_json(control_path(m, "commit"))["ok"] is True
    assert status_lines(m) == []


# --- status -------------------------------------------------------------------------------------------

def test_status_shows_the_branch_diff_then_this_mounts_uploads(server, repo, mount):
    for path in ("keep.txt", "change.txt", "remove.txt", "sub/old.txt"):
        server.upload(repo, "main", path, path.encode() + b"\n")
    server.commit(repo, "main", "base")
    # Another client's uncommitted changes.
    server.upload(repo, "main", "change.txt", b"changed by another client\n")
    api_delete(server, repo, "main", "remove.txt")
    server.upload(repo, "main", "sub/new.txt", b"added by another client\n")
    m = mount("lakefs://%s/main" % repo)  # default attr_timeout
    write_file(m.join("here.txt"), b"written through the mount\n")
    expected = ["M change.txt", "A here.txt", "D remove.txt", "A sub/new.txt"]
    assert diff_lines(api_diff_branch(server, repo, "main")) == expected
    assert status_lines(m) == expected
    doc = control_json(control_path(m, "status.json"))
    assert [(c["type"], c["path"]) for c in doc["changes"]] == [
        ("changed", "change.txt"), ("added", "here.txt"), ("removed", "remove.txt"), ("added", "sub/new.txt")]
    assert doc["pending"] == [] and doc["failed"] == []
    # A file still open with unsent data comes after the changes.
    fd = os.open(m.join("open.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"not sent yet\n")
        assert status_lines(m) == expected + ["pending open.txt"]
        doc = control_json(control_path(m, "status.json"))
        assert doc["pending"] == ["open.txt"] and len(doc["changes"]) == 4
    finally:
        os.close(fd)
    expected = ["M change.txt", "A here.txt", "A open.txt", "D remove.txt", "A sub/new.txt"]
    assert status_lines(m) == expected
    # Another client's change made now shows too (within attr_timeout at the latest).
    server.upload(repo, "main", "sub/later.txt", b"later\n")
    want = ["M change.txt", "A here.txt", "A open.txt", "D remove.txt", "A sub/later.txt", "A sub/new.txt"]
    assert mountlib.poll(lambda: status_lines(m) == want), status_lines(m)
    # Committed: clean.
    control_write(control_path(m, "commit"), "everything")
    assert status_lines(m) == [] and control_read(control_path(m, "status")) == ""
    assert control_json(control_path(m, "status.json")) == {"changes": [], "pending": [], "failed": [],
                                                                     "conflicts": []}


def test_status_of_a_prefix_mount_is_relative_to_it(server, repo, mount):
    server.upload(repo, "main", "sub/in.txt", b"in\n")
    server.upload(repo, "main", "out.txt", b"out\n")
    m = mount("lakefs://%s/main/sub" % repo, options=[FOREVER])
    write_file(m.join("mine.txt"), b"mine\n")
    assert status_lines(m) == ["A in.txt", "A mine.txt"]
    doc = control_json(control_path(m, "status.json"))
    assert [(c["type"], c["path"]) for c in doc["changes"]] == [("added", "in.txt"), ("added", "mine.txt")]


def test_status_json_lists_failed_uploads(server, repo, mount):
    m = branch_mount(mount, repo)
    mountlib.fail_uploads(server, message="injected upload failure")
    fd = os.open(m.join("broken.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"the server will refuse this\n")
    finally:
        expect_errno(errno.EIO, os.close, fd)
    status = status_lines(m)
    assert len(status) == 1 and status[0].startswith("failed broken.txt: "), status
    doc = control_json(control_path(m, "status.json"))
    assert doc["changes"] == [] and doc["pending"] == [], doc
    assert [f["path"] for f in doc["failed"]] == ["broken.txt"] and doc["failed"][0]["error"], doc
    assert kill_mount(m) == -9  # the staged copy stays for a later mount, as in the recovery tests
    server.clear_faults()


def test_status_shows_failed_uploads_when_the_branch_is_gone(server, repo, mount):
    """Another client deletes the mounted branch: a file written then cannot be uploaded (EIO, kept in
    the cache), and .lakefs/status, which cannot list the branch's changes any more, still lists it,
    after a line saying what it could not do (before, the read failed whole: ENOENT)."""
    api_create_branch(server, repo, "feat", "main")
    m = mount("lakefs://%s/feat" % repo)
    write_file(m.join("landed.txt"), b"before the delete\n")
    assert server.api("DELETE", "/repositories/%s/branches/feat" % repo).status_code == 204
    expect_errno(errno.EIO, write_file, m.join("late.txt"), b"after the delete\n")
    status = status_lines(m)
    assert status[0].startswith("error: the branch's changes could not be listed"), status
    assert [line.split(":")[0] for line in status[1:]] == ["failed late.txt"], status
    doc = control_json(control_path(m, "status.json"))
    assert doc["error"] and doc["changes"] == [] and [f["path"] for f in doc["failed"]] == ["late.txt"], doc
    assert read_file(m.join("late.txt")) == b"after the delete\n"
    assert kill_mount(m) == -9  # the staged copy stays for a later mount


def test_names_and_messages_cannot_add_lines_to_status_or_diff(server, repo, mount):
    """Status and diff are one entry a line. An object name (or a server's error message) holding a
    newline could forge a line - "x\nD important.csv" would read as a deletion - so such a field is
    written between double quotes with C escapes, as git quotes paths; plain names stay as they are."""
    m = branch_mount(mount, repo)
    names = ["plain name.txt", "x\nD important.csv", 'say "hi"', "back\\slash", "tab\tx", '"quoted']
    for n in names:
        write_file(m.join(n), b"data\n")
    api_create_branch(server, repo, "other", "main")
    mountlib.fail_uploads(server, message="line one\nA forged.txt")
    expect_errno(errno.EIO, write_file, m.join("nl\npending"), b"refused\n")
    server.clear_faults()
    want = sorted([("A", "plain name.txt"), ("A", '"x\\nD important.csv"'), ("A", '"say \\"hi\\""'),
                   ("A", '"back\\\\slash"'), ("A", '"tab\\tx"'), ("A", '"\\"quoted"')])
    lines = status_lines(m)
    assert sorted(tuple(line.split(" ", 1)) for line in lines[:-1]) == want, lines
    assert lines[-1].startswith('failed "nl\\npending": '), lines
    assert "\\nA forged.txt" in lines[-1], lines
    doc = control_json(control_path(m, "status.json"))  # JSON needs no quoting of its own
    assert sorted(c["path"] for c in doc["changes"]) == sorted(names)
    assert [f["path"] for f in doc["failed"]] == ["nl\npending"]
    control_write(control_path(m, "commit"), "names")  # uploads the refused file first, now accepted
    diff = control_read(control_path(m, "diff/other")).splitlines()
    assert sorted(tuple(line.split(" ", 1)) for line in diff) == sorted(want + [("A", '"nl\\npending"')]), diff


# --- diff ---------------------------------------------------------------------------------------------

def test_diff_against_any_ref_is_three_dot(server, repo, mount):
    for path in ("same.txt", "edit-on-dev.txt", "drop-on-dev.txt", "edit-on-main.txt"):
        server.upload(repo, "main", path, path.encode() + b"\n")
    base = server.commit(repo, "main", "base")["id"]
    api_create_tag(server, repo, "base-tag", base)
    api_create_branch(server, repo, "dev", "main")
    server.upload(repo, "dev", "edit-on-dev.txt", b"edited on dev\n")
    api_delete(server, repo, "dev", "drop-on-dev.txt")
    server.upload(repo, "dev", "dev-new/x.txt", b"new on dev\n")
    dev = server.commit(repo, "dev", "dev work")["id"]
    server.upload(repo, "main", "edit-on-main.txt", b"edited on main\n")
    server.upload(repo, "main", "main-new.txt", b"new on main\n")
    main = server.commit(repo, "main", "main work")["id"]
    server.upload(repo, "dev", "uncommitted.txt", b"staged only: not in a diff of refs\n")
    dev_changes = ["A dev-new/x.txt", "D drop-on-dev.txt", "M edit-on-dev.txt"]
    main_changes = ["M edit-on-main.txt", "A main-new.txt"]
    assert diff_lines(api_diff_refs(server, repo, "main", "dev")) == dev_changes
    assert diff_lines(api_diff_refs(server, repo, "dev", "main")) == main_changes

    m = mount("lakefs://" + repo, options=[FOREVER])
    assert control_lines(control_path(m, "diff/main", "dev")) == dev_changes
    assert control_lines(control_path(m, "diff/dev", "main")) == main_changes
    assert control_lines(control_path(m, "diff/dev", "dev")) == []
    assert control_read(control_path(m, "diff/dev", "dev")) == ""
    # REF is any ref expression, and the ref root may be a fixed ref.
    for ref in (base, base[:12], "base-tag", "main~1"):
        assert control_lines(control_path(m, "diff/" + ref, "main")) == main_changes, ref
    assert control_lines(control_path(m, "diff/main", dev)) == dev_changes
    assert control_lines(control_path(m, "diff/base-tag", main[:12])) == main_changes
    # diff/ lists nothing; an unknown ref is ENOENT.
    assert os.listdir(control_path(m, "diff", "dev")) == []
    expect_errno(errno.ENOENT, open, control_path(m, "diff/no-such-ref", "dev"))
    expect_errno(errno.ENOENT, open, control_path(m, "diff/no-such-ref", "main"))
    # A prefix mount: the changes under the prefix, relative to it.
    sub = mount("lakefs://%s/dev/dev-new" % repo, options=[FOREVER])
    assert control_lines(control_path(sub, "diff/main")) == ["A x.txt"]


# --- merge --------------------------------------------------------------------------------------------

def test_merge_a_ref_into_this_branch(server, repo, mount):
    server.upload(repo, "main", "base.txt", b"base\n")
    server.commit(repo, "main", "base")
    api_create_branch(server, repo, "feature", "main")
    server.upload(repo, "feature", "feature.txt", b"from feature\n")
    feature = server.commit(repo, "feature", "feature work")["id"]
    server.upload(repo, "main", "main.txt", b"from main\n")
    main = server.commit(repo, "main", "main work")["id"]  # both sides moved: a three-way merge
    m = mount("lakefs://" + repo, options=[FOREVER])
    assert sorted(os.listdir(m.join("main"))) == ["base.txt", "main.txt"]  # cached for an hour
    assert head_shown(m, "main") == (main, main)
    sh("echo feature > %s" % q(control_path(m, "merge", "main")))
    merged = api_commit(server, repo, "main")
    assert merged["parents"] == [main, feature]
    result = control_json(control_path(m, "merge", "main"))
    assert result["ok"] is True and result["reference"] == merged["id"], result
    assert head_shown(m, "main") == (merged["id"], merged["id"])
    assert sorted(os.listdir(m.join("main"))) == ["base.txt", "feature.txt", "main.txt"]
    assert read_file(m.join("main", "feature.txt")) == b"from feature\n"
    # JSON: message and metadata of the merge commit.
    server.upload(repo, "feature", "feature.txt", b"from feature, second version\n")
    feature2 = server.commit(repo, "feature", "more feature work")["id"]
    control_write(control_path(m, "merge", "main"), json.dumps(
        {"source": "feature", "message": "merge feature again", "metadata": {"reviewed-by": "tests"}}))
    merged2 = api_commit(server, repo, "main")
    assert merged2["parents"] == [merged["id"], feature2]
    assert merged2["message"] == "merge feature again"
    assert merged2["metadata"].get("reviewed-by") == "tests", merged2["metadata"]
    assert read_file(m.join("main", "feature.txt")) == b"from feature, second version\n"
    assert head_shown(m, "main") == (merged2["id"], merged2["id"])


def _conflicting_branches(server, repo):
    """main and feature both changed both.txt since they parted (and each changed one file of its own);
    returns (main head, feature head)."""
    for path in ("both.txt", "untouched.txt"):
        server.upload(repo, "main", path, b"base\n")
    server.commit(repo, "main", "base")
    api_create_branch(server, repo, "feature", "main")
    server.upload(repo, "feature", "both.txt", b"feature's version\n")
    server.upload(repo, "feature", "feature-only.txt", b"feature\n")
    feature = server.commit(repo, "feature", "feature edits")["id"]
    server.upload(repo, "main", "both.txt", b"main's version\n")
    server.upload(repo, "main", "main-only.txt", b"main\n")
    main = server.commit(repo, "main", "main edits")["id"]
    return main, feature


@pytest.mark.parametrize("strategy", ["source-wins", "dest-wins"])
def test_merge_conflict_is_eexist_and_lists_the_paths(server, repo, mount, strategy):
    main, feature = _conflicting_branches(server, repo)
    m = branch_mount(mount, repo)
    assert read_file(m.join("both.txt")) == b"main's version\n"
    merge = control_path(m, "merge")
    expect_errno(errno.EEXIST, control_write, merge, "feature\n")
    result = control_json(merge)
    assert result["ok"] is False and result["errno"] == "EEXIST", result
    assert isinstance(result["error"], str) and result["error"]
    assert result["conflicts"] == ["both.txt"], result
    assert api_commit_id(server, repo, "main") == main
    assert head_shown(m) == (main, main)
    proc = sh("echo feature > %s" % q(merge), ok=False)
    assert proc.returncode != 0 and b"File exists" in proc.stderr, proc.stderr
    # A strategy settles it.
    control_write(merge, json.dumps({"source": "feature", "strategy": strategy}) + "\n")
    merged = api_commit(server, repo, "main")
    assert merged["parents"] == [main, feature]
    assert control_json(merge)["reference"] == merged["id"]
    want = b"feature's version\n" if strategy == "source-wins" else b"main's version\n"
    assert api_get(server, repo, "main", "both.txt") == want
    assert read_file(m.join("both.txt")) == want
    assert sorted(os.listdir(m.path)) == ["both.txt", "feature-only.txt", "main-only.txt", "untouched.txt"]
    assert head_shown(m) == (merged["id"], merged["id"])


def test_merge_unknown_ref_bad_request_and_nothing_to_merge(server, repo, mount):
    server.upload(repo, "main", "a.txt", b"a\n")
    head = server.commit(repo, "main", "a")["id"]
    api_create_branch(server, repo, "same", "main")
    m = branch_mount(mount, repo)
    merge = control_path(m, "merge")
    expect_errno(errno.ENOENT, control_write, merge, "no-such-branch\n")
    assert control_json(merge)["errno"] == "ENOENT"
    for text in ("\n", '{"source": ', '{"source": "same", "strategy": '):
        expect_errno(errno.EINVAL, control_write, merge, text)
        assert control_json(merge)["errno"] == "EINVAL", text
    assert api_commit_id(server, repo, "main") == head
    # Nothing to merge: lakefuse may pass on lakeFS's answer (the current head) or report ENODATA.
    try:
        control_write(merge, "same\n")
        outcome = None
    except OSError as e:
        outcome = e.errno
    assert outcome in (None, errno.ENODATA), errno.errorcode.get(outcome)
    result = control_json(merge)
    if outcome is None:
        assert result["ok"] is True and result["reference"] == api_commit_id(server, repo, "main"), result
    else:
        assert result["ok"] is False and result["errno"] == "ENODATA", result
    assert api_commit_id(server, repo, "main") == head


# --- branch -------------------------------------------------------------------------------------------

def test_branch_file_creates_from_any_ref_and_deletes(server, repo, mount):
    server.upload(repo, "main", "a", b"a\n")
    c1 = server.commit(repo, "main", "one")["id"]
    api_create_tag(server, repo, "v1", c1)
    server.upload(repo, "main", "b", b"b\n")
    c2 = server.commit(repo, "main", "two")["id"]
    server.upload(repo, "main", "staged", b"uncommitted: not part of a new branch\n")
    m = mount("lakefs://" + repo, options=[FOREVER])
    sh("echo from-main > %s" % q(control_path(m, "branch", "main")))
    assert api_branches(server, repo)["from-main"] == c2
    result = control_json(control_path(m, "branch", "main"))
    assert result["ok"] is True, result
    for at, name in (("v1", "from-tag"), (c1, "from-commit"), ("main~1", "from-parent")):
        control_write(control_path(m, "branch", at), name + "\n")
        assert api_branches(server, repo)[name] == c1, (at, name)
        assert control_json(control_path(m, "branch", at))["ok"] is True
    assert sorted(os.listdir(m.join("from-main"))) == ["a", "b"]
    assert os.listdir(m.join("from-tag")) == ["a"]
    # Errors.
    for text, code in (("from-main\n", errno.EEXIST), ("no spaces allowed\n", errno.EINVAL),
                       ("-d never-was\n", errno.ENOENT)):
        expect_errno(code, control_write, control_path(m, "branch", "main"), text)
        result = control_json(control_path(m, "branch", "main"))
        assert result["ok"] is False and result["errno"] == errno.errorcode[code], (text, result)
    assert api_branches(server, repo)["from-main"] == c2
    # -d NAME deletes a branch of the repository, from any ref root.
    control_write(control_path(m, "branch", "main"), "-d from-main\n")
    control_write(control_path(m, "branch", "v1"), "-d from-commit")
    assert control_json(control_path(m, "branch", "v1"))["ok"] is True
    assert sorted(api_branches(server, repo)) == ["from-parent", "from-tag", "main"]
    assert api_get(server, repo, "main", "staged") == b"uncommitted: not part of a new branch\n"


# --- reset --------------------------------------------------------------------------------------------

def test_reset_an_object_a_prefix_and_everything(server, repo, mount):
    committed = {"a.txt": b"one\n", "b.txt": b"b\n", "dir/x.txt": b"x\n", "dir/y.txt": b"y\n", "keep.txt": b"k\n"}
    for path, data in committed.items():
        server.upload(repo, "main", path, data)
    head = server.commit(repo, "main", "base")["id"]
    m = branch_mount(mount, repo)
    write_file(m.join("a.txt"), b"two, and longer\n")
    write_file(m.join("b.txt"), b"b changed\n")
    write_file(m.join("c.txt"), b"c\n")
    os.unlink(m.join("dir", "x.txt"))
    write_file(m.join("dir", "y.txt"), b"y changed\n")
    write_file(m.join("dir", "z.txt"), b"z\n")
    assert read_file(m.join("a.txt")) == b"two, and longer\n"  # now in the kernel's page cache
    assert status_lines(m) == ["M a.txt", "M b.txt", "A c.txt", "D dir/x.txt", "M dir/y.txt", "A dir/z.txt"]
    reset = control_path(m, "reset")
    # One object: back to its committed content at once.
    control_write(reset, "a.txt\n")
    assert control_json(reset)["ok"] is True
    assert api_get(server, repo, "main", "a.txt") == b"one\n"
    assert os.stat(m.join("a.txt")).st_size == len(b"one\n")
    assert read_file(m.join("a.txt")) == b"one\n"
    assert status_lines(m) == ["M b.txt", "A c.txt", "D dir/x.txt", "M dir/y.txt", "A dir/z.txt"]
    # A prefix.
    control_write(reset, "dir/\n")
    assert sorted(os.listdir(m.join("dir"))) == ["x.txt", "y.txt"]
    assert read_file(m.join("dir", "x.txt")) == b"x\n" and read_file(m.join("dir", "y.txt")) == b"y\n"
    expect_errno(errno.ENOENT, os.stat, m.join("dir", "z.txt"))
    assert status_lines(m) == ["M b.txt", "A c.txt"]
    # Everything.
    sh("echo '*' > %s" % q(reset))
    assert control_json(reset)["ok"] is True
    assert status_lines(m) == [] and api_diff_branch(server, repo, "main") == []
    assert sorted(os.listdir(m.path)) == ["a.txt", "b.txt", "dir", "keep.txt"]
    assert read_file(m.join("b.txt")) == b"b\n"
    expect_errno(errno.ENOENT, os.stat, m.join("c.txt"))
    assert api_commit_id(server, repo, "main") == head  # a reset commits nothing
    assert head_shown(m) == (head, head)


def test_reset_in_a_prefix_mount_is_relative_to_it(server, repo, mount):
    server.upload(repo, "main", "sub/s.txt", b"s\n")
    server.upload(repo, "main", "s.txt", b"root s\n")
    server.commit(repo, "main", "base")
    server.upload(repo, "main", "s.txt", b"root s changed\n")
    m = mount("lakefs://%s/main/sub" % repo, options=[FOREVER])
    write_file(m.join("s.txt"), b"sub s changed\n")
    write_file(m.join("new.txt"), b"new\n")
    assert status_lines(m) == ["A new.txt", "M s.txt"]
    control_write(control_path(m, "reset"), "s.txt\n")
    assert api_get(server, repo, "main", "sub/s.txt") == b"s\n"
    assert read_file(m.join("s.txt")) == b"s\n"
    assert diff_lines(api_diff_branch(server, repo, "main")) == ["M s.txt", "A sub/new.txt"]
    assert api_get_or_none(server, repo, "main", "sub/new.txt") == b"new\n"
