"""What a mount shows around its own commits (issue 5): a commit first finishes this mount's pending
uploads on that branch, so it holds what files still open for writing have written so far, and only
those of that branch; fixed refs keep what they showed; a head that another client moves after the
mount's own commit still shows within attr_timeout, and so do another client's uncommitted changes
in .lakefs/status."""
import os

from mountlib import (api_commit, api_commit_id, api_create_branch, api_diff_branch, api_get, api_get_or_none,
                      control_path, control_read, control_write, poll, read_file, status_lines, write_file)

FOREVER = "attr_timeout=3600"


def test_commit_includes_what_open_files_have_written_so_far(server, repo, mount):
    api_create_branch(server, repo, "dev", "main")
    server.upload(repo, "main", "existing.txt", b"committed\n")
    base = server.commit(repo, "main", "base")["id"]
    m = mount("lakefs://" + repo, options=[FOREVER])
    fd = os.open(m.join("main", "open.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    other = os.open(m.join("dev", "elsewhere.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    grown = os.open(m.join("main", "existing.txt"), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"first part\n")
        os.write(other, b"on dev, still open\n")
        os.write(grown, b"appended\n")
        write_file(m.join("main", "closed.txt"), b"closed\n")
        status = status_lines(m, "main")
        assert status[0] == "A closed.txt" and sorted(status[1:]) == ["pending existing.txt", "pending open.txt"], \
            status
        control_write(control_path(m, "commit", "main"), "while files are open\n")
        commit = api_commit(server, repo, "main")
        assert commit["parents"] == [base] and commit["message"] == "while files are open"
        assert api_get(server, repo, commit["id"], "open.txt") == b"first part\n"
        assert api_get(server, repo, commit["id"], "existing.txt") == b"committed\nappended\n"
        assert api_get(server, repo, commit["id"], "closed.txt") == b"closed\n"
        assert api_diff_branch(server, repo, "main") == []
        assert status_lines(m, "main") == []
        # Another branch's open file is not this commit's business.
        assert api_get_or_none(server, repo, "dev", "elsewhere.txt") is None
        assert status_lines(m, "dev") == ["pending elsewhere.txt"]
        # Writing on after the commit: pending again, then an uncommitted change once closed.
        os.write(fd, b"second part\n")
        assert status_lines(m, "main") == ["pending open.txt"]
    finally:
        os.close(fd)
        os.close(other)
        os.close(grown)
    assert status_lines(m, "main") == ["M open.txt"]
    assert api_get(server, repo, "main", "open.txt") == b"first part\nsecond part\n"
    assert api_get(server, repo, commit["id"], "open.txt") == b"first part\n"
    assert read_file(m.join("main", "open.txt")) == b"first part\nsecond part\n"
    assert status_lines(m, "dev") == ["A elsewhere.txt"]


def test_fixed_refs_keep_what_they_showed_after_a_commit(server, repo, mount):
    server.upload(repo, "main", "f.txt", b"version one\n")
    c1 = server.commit(repo, "main", "one")["id"]
    m = mount("lakefs://" + repo, options=[FOREVER])
    assert os.listdir(m.join(c1)) == ["f.txt"] and read_file(m.join(c1, "f.txt")) == b"version one\n"
    assert os.listdir(m.join("main")) == ["f.txt"]
    write_file(m.join("main", "f.txt"), b"version two, longer\n")
    write_file(m.join("main", "g.txt"), b"g\n")
    control_write(control_path(m, "commit", "main"), "two")
    c2 = api_commit_id(server, repo, "main")
    server.reset_counts()
    assert os.listdir(m.join(c1)) == ["f.txt"]
    assert read_file(m.join(c1, "f.txt")) == b"version one\n"
    assert os.stat(m.join(c1, "f.txt")).st_size == len(b"version one\n")
    assert control_read(control_path(m, "head", c1)) == c1 + "\n"
    assert server.counts().get("listObjects", 0) == 0, server.counts()  # from the cache, untouched
    assert sorted(os.listdir(m.join("main"))) == ["f.txt", "g.txt"]
    assert control_read(control_path(m, "head", "main")) == c2 + "\n"
    assert sorted(os.listdir(m.join(c2))) == ["f.txt", "g.txt"]


def test_another_clients_commit_after_our_own_shows_within_attr_timeout(server, repo, mount):
    m = mount("lakefs://%s/main" % repo, options=["attr_timeout=1"])
    write_file(m.join("ours.txt"), b"ours\n")
    control_write(control_path(m, "commit"), "ours")
    ours = api_commit_id(server, repo, "main")
    assert control_read(control_path(m, "head")) == ours + "\n"
    assert os.getxattr(m.path, "user.lakefs.commit_id").decode() == ours
    # Another client stages a change, then commits it.
    server.upload(repo, "main", "theirs.txt", b"theirs\n")
    assert poll(lambda: status_lines(m) == ["A theirs.txt"]), status_lines(m)
    theirs = server.commit(repo, "main", "theirs")["id"]
    assert poll(lambda: control_read(control_path(m, "head")) == theirs + "\n"), "the head never moved"
    assert poll(lambda: os.getxattr(m.path, "user.lakefs.commit_id").decode() == theirs)
    assert poll(lambda: sorted(os.listdir(m.path)) == ["ours.txt", "theirs.txt"]), os.listdir(m.path)
    assert read_file(m.join("theirs.txt")) == b"theirs\n"
    assert status_lines(m) == []
    # And the mount commits on top of it.
    write_file(m.join("ours.txt"), b"ours, again\n")
    control_write(control_path(m, "commit"), "ours again")
    assert api_commit(server, repo, "main")["parents"] == [theirs]
    again = api_commit_id(server, repo, "main")
    assert control_read(control_path(m, "head")) == again + "\n"
