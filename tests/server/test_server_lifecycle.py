"""Process-level behaviour of lakefs_server: persistence across restarts, concurrent clients,
injected faults (status, count, ratio, latency, cut connections), request counts and the
--validate mode's rejection and recording of requests that break the spec."""
import base64
import concurrent.futures
import http.client
import hashlib
import time

import pytest
import requests

from lakefs_testlib import LakeFSServer


def test_state_survives_restart(tmp_path):
    srv = LakeFSServer(tmp_path / "data").start()
    try:
        repo = srv.create_repo()
        srv.upload(repo, "main", "committed", b"c" * 1000)
        head = srv.commit(repo, "main", "c1")["id"]
        srv.api("POST", "/repositories/%s/tags" % repo, json={"id": "v1", "ref": "main"})
        srv.api("POST", "/repositories/%s/branches" % repo, json={"name": "dev", "source": "main"})
        srv.upload(repo, "dev", "staged", b"s")
        token = requests.post(srv.api_url + "/auth/login", json={
            "access_key_id": srv.access_key_id, "secret_access_key": srv.secret_access_key}).json()["token"]
        presigned = srv.api("GET", "/repositories/%s/refs/main/objects/stat" % repo,
                            params={"path": "committed", "presign": "true"}).json()["physical_address"]
        old_url = srv.url
        srv.restart()
        assert srv.url == old_url
        assert srv.api("GET", "/repositories/%s/branches/main" % repo).json()["commit_id"] == head
        assert srv.api("GET", "/repositories/%s/tags/v1" % repo).json()["commit_id"] == head
        got = srv.api("GET", "/repositories/%s/refs/dev/objects" % repo, params={"path": "staged"})
        assert got.content == b"s"
        diff = srv.api("GET", "/repositories/%s/branches/dev/diff" % repo).json()["results"]
        assert [d["path"] for d in diff] == ["staged"]
        assert requests.get(presigned).content == b"c" * 1000
        assert requests.get(srv.api_url + "/user", headers={"Authorization": "Bearer " + token}).status_code == 200
        assert srv.violations() == []
    finally:
        srv.stop()


def test_sigterm_stops_the_server(tmp_path):
    srv = LakeFSServer(tmp_path / "data").start()
    proc = srv.proc
    srv.stop()
    assert proc.returncode == 0


def test_concurrent_uploads_and_listings(server, repo):
    def worker(n):
        session = requests.Session()
        session.auth = server.http.auth
        for i in range(15):
            data = ("%d-%d" % (n, i)).encode() * 50
            resp = session.post(server.api_url + "/repositories/%s/branches/main/objects" % repo,
                                params={"path": "w%d/f%02d" % (n, i)}, data=data)
            assert resp.status_code == 201, resp.text
            assert resp.json()["checksum"] == hashlib.md5(data).hexdigest()
            listing = session.get(server.api_url + "/repositories/%s/refs/main/objects/ls" % repo,
                                  params={"prefix": "w%d/" % n}).json()
            assert len(listing["results"]) == i + 1
        session.close()
        return n

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(worker, range(6))) == list(range(6))
    server.commit(server_repo := repo, "main", "all")
    listing = server.api("GET", "/repositories/%s/refs/main/objects/ls" % server_repo,
                         params={"amount": 1000}).json()
    assert len(listing["results"]) == 6 * 15
    assert server.counts()["uploadObject"] == 6 * 15


def test_counts_by_operation(server, repo):
    server.reset_counts()
    server.api("GET", "/repositories/%s/refs/main/objects/ls" % repo)
    server.api("GET", "/repositories/%s/refs/main/objects/ls" % repo)
    server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo, params={"path": "x"})
    requests.get(server.url + "/api/v1/no/such/path")
    assert server.counts() == {"listObjects": 2, "statObject": 1, "unknown": 1}
    assert server.counts_total() == 4
    server.reset_counts()
    assert server.counts() == {}


def test_status_fault_by_count(server, repo):
    server.add_fault(operation="statObject", count=2, status=503, message="Slow down")
    path = "/repositories/%s/refs/main/objects/stat" % repo
    server.upload(repo, "main", "o", b"o")
    first = server.api("GET", path, params={"path": "o"})
    assert first.status_code == 503 and first.json() == {"message": "Slow down"}
    assert server.api("GET", path, params={"path": "o"}).status_code == 503
    assert server.api("GET", path, params={"path": "o"}).status_code == 200
    assert server.faults()[0]["applied"] == 2
    server.add_fault(count=1, status=500)
    assert server.api("GET", "/repositories/%s" % repo).status_code == 500
    assert server.api("GET", "/repositories/%s" % repo).status_code == 200


def test_ratio_fault_is_seeded(server, repo):
    def run():
        server.clear_faults()
        server.add_fault(operation="getRepository", ratio=0.5, seed=42, status=429)
        return [server.api("GET", "/repositories/%s" % repo).status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 429}
    assert 8 <= first.count(429) <= 32


def test_latency_fault(server, repo):
    server.add_fault(operation="getRepository", count=1, latency_ms=300)
    started = time.monotonic()
    assert server.api("GET", "/repositories/%s" % repo).status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    server.api("GET", "/repositories/%s" % repo)
    assert time.monotonic() - started < 0.3


def test_cut_after_bytes_fault(server, repo):
    data = b"z" * 10000
    server.upload(repo, "main", "big", data)
    server.add_fault(operation="getObject", count=1, cut_after_bytes=100)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    auth = base64.b64encode(("%s:%s" % server.http.auth).encode()).decode()
    conn.request("GET", "/api/v1/repositories/%s/refs/main/objects?path=big" % repo,
                 headers={"Authorization": "Basic " + auth})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == "10000"
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    assert len(cut.value.partial) == 100
    conn.close()
    again = server.api("GET", "/repositories/%s/refs/main/objects" % repo, params={"path": "big"})
    assert again.content == data


def test_presigned_data_path_faults(server, repo):
    server.upload(repo, "main", "o", b"abc")
    url = server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo,
                     params={"path": "o", "presign": "true"}).json()["physical_address"]
    server.add_fault(operation="presignedGet", count=1, status=503)
    assert requests.get(url).status_code == 503
    assert requests.get(url).content == b"abc"


def test_invalid_requests_are_rejected_and_recorded(server, repo):
    resp = server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo)
    assert resp.status_code == 400
    resp = server.api("GET", "/repositories/%s/refs/main/objects" % repo, params={"path": "x"},
                      headers={"Range": "lines=1-2"})
    assert resp.status_code == 400
    resp = server.api("POST", "/repositories/%s/branches" % repo, json={"name": "x"})
    assert resp.status_code == 400
    violations = server.violations()
    assert [v["operation"] for v in violations] == ["statObject", "getObject", "createBranch"]
    assert all(v["status"] == 400 and v["problems"] for v in violations)
    server.clear_violations()


def test_unknown_paths_and_unimplemented_operations(server, repo):
    resp = server.api("GET", "/no/such/endpoint")
    assert resp.status_code == 404 and resp.json()["message"]
    resp = server.api("GET", "/repositories/%s/metadata" % repo)
    assert resp.status_code == 501
    assert resp.json()["message"] == "not implemented by lakefs_server: getRepositoryMetadata"


@pytest.mark.parametrize("value", ["1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"])
def test_boolean_query_values_go_accepts(server, repo, value):
    """issue 10: the generated Python SDK sends True/False; lakeFS parses booleans with Go's
    strconv.ParseBool (kin-openapi validator, oapi-codegen binding), so --validate must accept them."""
    server.upload(repo, "main", "o", b"x", headers={"X-Lakefs-Meta-K": "v"})
    resp = server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo,
                      params={"path": "o", "user_metadata": value, "presign": "false"})
    assert resp.status_code == 200, resp.text
    wanted = value.lower() in ("1", "t", "true")
    assert (resp.json().get("metadata") == {"k": "v"}) == wanted
    assert server.violations() == []


@pytest.mark.parametrize("value", ["yes", "tRUE", "TRue", "no", "2", "on"])
def test_boolean_query_values_go_rejects(server, repo, value):
    resp = server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo, params={"path": "o", "presign": value})
    assert resp.status_code == 400
    assert [v["operation"] for v in server.violations()] == ["statObject"]
    server.clear_violations()
