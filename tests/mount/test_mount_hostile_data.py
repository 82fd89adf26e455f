"""What a hostile writer or server can make a mount store or show (issue 12): the data cache cannot be
poisoned across repositories (blocks are keyed by server, storage namespace, physical address,
checksum and size), nothing that is not the range asked for goes into it, an error answer to a listing
is an error and never an empty directory, and a server whose pagination does not advance ends in an
error, not a loop. Fault kinds beyond status/latency/cut exist in the bundled server only; tests that
need them skip themselves elsewhere."""
import errno
import os
import uuid

import pytest
import requests

from mountlib import api_ok, api_stat, expect_errno, read_file, run

bundled_only = pytest.mark.skipif(os.environ.get("LAKEFUSE_TEST_SERVER", "bundled") != "bundled",
                                  reason="the fault kind exists in the bundled server only")


@pytest.fixture
def two_repos(server):
    names = ["hostile-" + uuid.uuid4().hex[:10] for _ in range(2)]
    for name in names:
        server.create_repo(name)
    yield names
    for name in names:
        server.api("DELETE", "/repositories/" + name)


def link_forged(server, repo, path, data, checksum, size):
    """Writes data at path through getPhysicalAddress + presigned PUT + linkPhysicalAddress, claiming
    another object's checksum and size (what any writer of repo may do)."""
    base = "/repositories/%s/branches/main/staging/backing" % repo
    staging = api_ok(server.api("GET", base, params={"path": path, "presign": "true"}))
    resp = requests.put(staging["presigned_url"], data=data, timeout=60)
    assert resp.status_code == 200, resp.text
    api_ok(server.api("PUT", base, params={"path": path},
                      json={"staging": staging, "checksum": checksum, "size_bytes": size}))


VICTIM = b"the victim's true bytes: pay account 1111\n"
EVIL = b"ATTACKER BYTES: pay account 6666 instead!\n"


def seed_victim_and_forgery(server, victim_repo, evil_repo):
    assert len(VICTIM) == len(EVIL)
    server.upload(victim_repo, "main", "victim.txt", VICTIM)
    st = api_stat(server, victim_repo, "main", "victim.txt")
    link_forged(server, evil_repo, "evil.txt", EVIL, st["checksum"], st["size_bytes"])
    forged = api_stat(server, evil_repo, "main", "evil.txt")
    assert (forged["checksum"], forged["size_bytes"]) == (st["checksum"], st["size_bytes"])


@pytest.mark.presign
@pytest.mark.parametrize("presign", ["true", "false"])
@pytest.mark.parametrize("attacker_first", [True, False], ids=["attacker-first", "victim-first"])
def test_forged_checksum_in_another_repository_cannot_poison_the_cache(server, two_repos, mount, tmp_path,
                                                                       presign, attacker_first):
    victim_repo, evil_repo = two_repos
    seed_victim_and_forgery(server, victim_repo, evil_repo)
    cache = str(tmp_path / "shared-cache")
    order = [(evil_repo, "evil.txt", EVIL), (victim_repo, "victim.txt", VICTIM)]
    if not attacker_first:
        order.reverse()
    for repo, path, want in order:  # two mounts, one after the other, sharing the cache directory
        m = mount("lakefs://%s/main" % repo, options=["presign=" + presign], cache_dir=cache)
        assert run(["cat", m.join(path)]).stdout == want
        assert m.unmount() == 0, m.stderr()[-2000:]
    # And both through one lakefs:// mount on the same cache, in both orders.
    m = mount("lakefs://", options=["presign=" + presign], cache_dir=cache)
    for repo, path, want in order + order[::-1]:
        assert read_file(m.join(repo, "main", path)) == want
