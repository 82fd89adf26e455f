"""Per-directory generations of the listing cache (issue 13): a listing that was being fetched while
the mount wrote in another directory of the same branch is kept (the next readdir costs nothing),
instead of being thrown away and fetched again. A write in the directory itself still drops such a
fetch (tests/unit/test_metacache.c covers that and the ancestors of the written directory; through
a mount the fetch in flight is shared with the write's own lookup, so they cannot overlap).

Nothing sleeps to synchronise: the server holds the one listObjects of R (a latency fault), the
test polls the server's counts until that request has arrived, writes in W, and checks that the
listing was still in flight when the write had finished; an attempt where it was not (a very slow
machine) is tried again with a new directory, and the test fails only if none overlapped."""
import os
import threading

from mountlib import poll, read_file, write_file

HOLD_MS = 4000
BRANCH = ["attr_timeout=3600"]


def test_write_elsewhere_keeps_a_listing_in_flight(server, repo, mount):
    attempts = 3
    for i in range(attempts):
        server.upload(repo, "main", "R%d/a" % i, b"a")
    server.upload(repo, "main", "W/b", b"b")
    m = mount("lakefs://%s/main" % repo, options=BRANCH)
    assert os.listdir(m.join("W")) == ["b"]  # the root's listing and W's, cached for the test
    overlapped = False
    for i in range(attempts):
        r = m.join("R%d" % i)
        server.add_fault(operation="listObjects", latency_ms=HOLD_MS, count=1)
        server.reset_counts()
        result = {}
        reader = threading.Thread(target=lambda: result.update(names=os.listdir(r)))
        reader.start()
        try:
            assert poll(lambda: server.counts().get("listObjects", 0) >= 1)
            write_file(m.join("W", "new%d" % i), b"written while R%d was listed\n" % i)
            overlapped = reader.is_alive()
        finally:
            reader.join()
        listed = server.counts().get("listObjects", 0)
        server.clear_faults()
        assert result["names"] == ["a"]
        if not overlapped:
            continue
        # The write was in W, not in R: R's listing, fetched before the write ended, is still the
        # truth and was cached, so the `ls` cost that one listObjects (the lookup's getattr fetched
        # it; readdir reused it), and listing R again asks nothing. Before issue 13 any write in
        # the branch dropped it: the getattr fetched R again for itself and readdir a third time.
        assert listed == 1, server.counts()
        server.reset_counts()
        assert os.listdir(r) == ["a"]
        assert server.counts().get("listObjects", 0) == 0, server.counts()
        break
    assert overlapped, "no attempt wrote while the listing was held by the server"
    # and the write is where it belongs
    assert sorted(os.listdir(m.join("W"))) == ["b"] + ["new%d" % k for k in range(i + 1)]
    assert read_file(m.join("W", "new%d" % i)) == b"written while R%d was listed\n" % i
