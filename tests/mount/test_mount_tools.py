"""The Unix tools a user would run (ls, find, du, cat, grep -r, sha256sum, tar, cp -r, diff -r) on a
mounted ref see exactly the tree the API describes: every listing, size, mode, mtime and byte, for
the three URI forms (plus a sub-tree), and for a branch, a full and a short commit id, a tag and
main~1."""
import os

import pytest

from mountlib import (NEEDLE, api_tree, assert_same_tree, local_tree, materialize, run, sh, sha256)

REF_KINDS = ["branch", "commit", "short-commit", "tag", "main~1"]
FORMS = ["lakefs://", "lakefs://REPO", "lakefs://REPO/REF", "lakefs://REPO/REF/data"]


def ref_of(basic, kind):
    return {"branch": "main", "commit": basic.commit2, "short-commit": basic.short1,
            "tag": basic.tag, "main~1": "main~1"}[kind]


def target(basic, form, ref):
    """(uri, path of the tree inside the mount, API prefix of that tree)."""
    repo = basic.name
    if form == "lakefs://":
        return "lakefs://", os.path.join(repo, ref), ""
    if form == "lakefs://REPO":
        return "lakefs://" + repo, ref, ""
    if form == "lakefs://REPO/REF":
        return "lakefs://%s/%s" % (repo, ref), "", ""
    return "lakefs://%s/%s/data" % (repo, ref), "", "data/"


def parse_ls_recursive(output, root):
    """`ls -1AR root` output -> {relative dir: set of names}."""
    listing, current = {}, None
    for line in output.decode().split("\n"):
        if line.endswith(":") and (line[:-1] == root or line[:-1].startswith(root + "/")):
            current = os.path.relpath(line[:-1], root)
            current = "" if current == "." else current
            listing[current] = set()
        elif line and current is not None:
            listing[current].add(line)
    return listing


def check_ls(root, expected):
    listing = parse_ls_recursive(run(["ls", "-1AR", root]).stdout, root)
    assert set(listing) == {""} | expected.dirs
    for rel, names in listing.items():
        assert names == expected.children(rel), "ls of %r" % rel
    assert ".lakefs" not in listing[""]


def check_find(root, expected):
    out = run(["find", root, "-mindepth", "1", "-printf", r"%P\t%y\t%s\t%m\t%T@\n"]).stdout.decode()
    seen = {}
    for line in out.splitlines():
        rel, kind, size, mode, mtime = line.split("\t")
        seen[rel] = (kind, int(size), int(mode, 8), int(float(mtime)))
    assert sorted(seen) == sorted(expected.dirs | set(expected.files))
    for rel in expected.dirs:
        assert seen[rel][0] == "d" and seen[rel][2] == 0o755, (rel, seen[rel])
    for rel, info in expected.files.items():
        assert seen[rel] == ("f", info.size, info.mode, info.mtime), (rel, seen[rel], info)


def check_du(root, expected):
    sizes = {}
    for line in run(["du", "-ab", root]).stdout.decode().splitlines():
        size, path = line.split("\t", 1)
        sizes[os.path.relpath(path, root)] = int(size)
    for rel, info in expected.files.items():
        assert sizes[rel] == info.size, rel
    dir_sizes = sum(os.lstat(os.path.join(root, d)).st_size for d in expected.dirs) + os.lstat(root).st_size
    assert sizes["."] == sum(i.size for i in expected.files.values()) + dir_sizes


def check_cat(root, expected):
    names = sorted(expected.files)
    out = run(["cat"] + [os.path.join(root, n) for n in names]).stdout
    assert out == b"".join(expected.files[n].data for n in names)


def check_grep(root, expected):
    p = run(["grep", "-rl", NEEDLE, root], ok=False)
    want = {rel for rel, info in expected.files.items() if NEEDLE in info.data}
    assert p.returncode == (0 if want else 1), p.stderr
    assert {os.path.relpath(x, root) for x in p.stdout.decode().splitlines()} == want


def check_sha256sum(root, expected):
    out = sh("cd %s && find . -type f -print0 | sort -z | xargs -0 -r sha256sum" % _q(root)).stdout.decode()
    got = {}
    for line in out.splitlines():
        digest, path = line.split("  ", 1)
        got[os.path.relpath(path, ".")] = digest
    assert got == {rel: sha256(info.data) for rel, info in expected.files.items()}


def check_tar(root, expected, work):
    tarball, dest = os.path.join(work, "tree.tar"), os.path.join(work, "untar")
    os.makedirs(dest)
    run(["tar", "-C", root, "-cf", tarball, "."])
    run(["tar", "-C", dest, "-xf", tarball])
    assert_same_tree(local_tree(dest), expected, meta=True, what="tar c | tar x")


def check_cp(root, expected, work):
    dest = os.path.join(work, "cp")
    run(["cp", "-r", root, dest])
    assert_same_tree(local_tree(dest), expected, meta=False, what="cp -r")


def check_diff(root, expected, work):
    dest = os.path.join(work, "from-api")
    materialize(expected, dest)
    p = run(["diff", "-r", root, dest], ok=False)
    assert p.returncode == 0 and p.stdout == b"", p.stdout[-2000:]


def _q(path):
    return "'" + path.replace("'", "'\\''") + "'"


@pytest.mark.parametrize("kind", REF_KINDS)
@pytest.mark.parametrize("form", FORMS)
def test_unix_tools_see_the_api_tree(server, basic_repo, mount, tmp_path, form, kind):
    ref = ref_of(basic_repo, kind)
    uri, inside, prefix = target(basic_repo, form, ref)
    expected = api_tree(server, basic_repo.name, ref, prefix)
    assert expected.files, "the seeded tree is empty"
    m = mount(uri)
    root = m.join(inside) if inside else m.path
    assert_same_tree(local_tree(root), expected, meta=True, what="python walk")
    check_ls(root, expected)
    check_find(root, expected)
    check_du(root, expected)
    check_cat(root, expected)
    check_grep(root, expected)
    check_sha256sum(root, expected)
    check_tar(root, expected, str(tmp_path))
    check_cp(root, expected, str(tmp_path))
    check_diff(root, expected, str(tmp_path))


def test_diff_between_two_refs_matches_diff_of_api_copies(server, basic_repo, mount, tmp_path):
    repo = basic_repo.name
    local = tmp_path / "local"
    for ref in ("main", "main~1"):
        materialize(api_tree(server, repo, ref), str(local / ref))
    want = run(["diff", "-r", "main", "main~1"], ok=False, cwd=str(local))
    assert want.returncode == 1 and b"changed.txt" in want.stdout  # the refs do differ
    m = mount("lakefs://" + repo)
    got = run(["diff", "-r", "main", "main~1"], ok=False, cwd=m.path)
    assert (got.returncode, got.stdout) == (want.returncode, want.stdout)
    # One commit under three names: no difference.
    for other in (basic_repo.tag, basic_repo.short1):
        same = run(["diff", "-r", basic_repo.commit1, other], ok=False, cwd=m.path)
        assert (same.returncode, same.stdout) == (0, b"")
