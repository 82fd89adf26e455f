"""The C client's HTTP layer against a server that misbehaves on purpose (issue 12): URLs it hands
out that are not http(s) or carry credentials are never used; a non-idempotent request whose answer
is lost after the server applied it is not sent again, its outcome is checked and success reported
once; commit and merge wait past the total timeout while a trickling answer trips the stall guard;
a JSON answer over the cap or the in-flight budget fails that call alone.
Runs build/client_exercise with the fault kinds of tests/lakefs_server (drop_response works in
front of real lakeFS too; rewrite_url, trickle_ms and pad_bytes only on the bundled server).
Everything is judged by the server's request counts and state, never by time."""
import os
import select
import socket
import ssl
import subprocess
import threading
import uuid

import pytest

from test_client import BUILDS, client_env, client_stats

bundled_only = pytest.mark.stand_in_only(reason="fault kind of the bundled server only")
MIB = 1 << 20


def run(server, *args, build="release", stdin=None, env=None):
    """client_exercise ARGS with LAKEFUSE_TEST_* overrides; (exit status, stdout, stderr)."""
    binary = BUILDS[build]
    if not binary.exists():
        pytest.fail(f"{binary} is not built: run make all sanitize")
    e = client_env(server)
    e.update(env or {})
    proc = subprocess.run([str(binary), *args], env=e, stdin=stdin, capture_output=True, timeout=120)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc


def api(server, method, path, **kw):
    resp = server.api(method, path, **kw)
    assert resp.status_code < 300, resp.text
    return resp.json() if resp.content else None


def head(server, repo, branch):
    return api(server, "GET", f"/repositories/{repo}/branches/{branch}")["commit_id"]


def commit_log(server, repo, ref):
    return api(server, "GET", f"/repositories/{repo}/refs/{ref}/commits", params={"amount": 1000})["results"]


def ops_count(server, *ops):
    counts = server.counts()
    return {op: counts.get(op, 0) for op in ops}


# --- non-idempotent requests whose answer is lost ----------------------------------------------------

@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("fault", [{"drop_response": True}, {"cut_after_bytes": 0}, {"cut_after_bytes": 20}],
                         ids=["no-answer", "headers-only", "half-body"])
def test_commit_applied_but_answer_lost_succeeds_once(server, repo, build, fault):
    server.upload(repo, "main", "a.txt", b"a\n")
    before = head(server, repo, "main")
    server.add_fault(operation="commit", **fault)
    server.reset_counts()
    status, out, proc = run(server, "commit", repo, "main", "lost answer", "run=7", build=build)
    assert status == 0, out + proc.stderr.decode(errors="replace")
    log = commit_log(server, repo, "main")
    ours = log[0]
    assert ours["message"] == "lost answer" and ours["metadata"] == {"run": "7"}
    assert ours["parents"] == [before]
    assert [c["id"] for c in log[1:]] == [c["id"] for c in commit_log(server, repo, before)]
    assert out.startswith("commit %s parent %s message lost answer\n" % (ours["id"], before))
    # Sent once; then the head was read again and the new commit checked.
    assert ops_count(server, "commit", "getBranch", "getCommit") == {"commit": 1, "getBranch": 2, "getCommit": 1}
    assert client_stats(proc)["commit"] == 1


def test_commit_refused_with_502_is_reported_and_not_resent(server, repo):
    """A 5xx that is not a refusal to start is ambiguous: checked (the head did not move), the
    error stands, and the commit was not sent twice."""
    server.upload(repo, "main", "a.txt", b"a\n")
    before = head(server, repo, "main")
    server.add_fault(operation="commit", status=502, message="bad gateway")
    server.reset_counts()
    status, out, _ = run(server, "commit", repo, "main", "m")
    assert status == 3 and "bad gateway" in out, out
    assert ops_count(server, "commit", "getBranch") == {"commit": 1, "getBranch": 2}
    assert head(server, repo, "main") == before


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_merge_applied_but_answer_lost_makes_one_merge_commit(server, repo, build):
    assert server.api("POST", f"/repositories/{repo}/branches",
                      json={"name": "dev", "source": "main"}).status_code == 201
    server.upload(repo, "dev", "d.txt", b"d\n")
    dev = server.commit(repo, "dev", "on dev")["id"]
    before = head(server, repo, "main")
    server.add_fault(operation="mergeIntoBranch", drop_response=True)
    server.reset_counts()
    status, out, _ = run(server, "merge", repo, "dev", "main", build=build)
    assert status == 0, out
    log = commit_log(server, repo, "main")
    merge = log[0]
    assert merge["parents"] == [before, dev]
    assert sum(1 for c in log if len(c["parents"]) == 2) == 1
    assert out.startswith("merged %s\n" % merge["id"])
    assert server.counts()["mergeIntoBranch"] == 1


def test_branch_created_but_answer_lost(server, repo):
    main = head(server, repo, "main")
    server.add_fault(operation="createBranch", drop_response=True)
    server.reset_counts()
    status, out, _ = run(server, "branch", repo, "feature", "main")
    assert status == 0, out
    assert out.startswith("branch feature at %s\n" % main)
    assert head(server, repo, "feature") == main
    assert server.counts()["createBranch"] == 1


def test_tag_created_but_answer_lost(server, repo):
    main = head(server, repo, "main")
    server.add_fault(operation="createTag", drop_response=True)
    server.reset_counts()
    status, out, _ = run(server, "tag", repo, "v1", "main")
    assert status == 0, out
    assert out.startswith("tag v1 at %s\n" % main)
    assert server.counts()["createTag"] == 1


def test_repository_created_but_answer_lost(server):
    name = "lost-" + uuid.uuid4().hex[:10]
    server.add_fault(operation="createRepository", drop_response=True)
    server.reset_counts()
    status, out, _ = run(server, "create-repo", name, server.namespace(name))
    try:
        assert status == 0, out
        assert out.startswith("repository %s at %s\n" % (name, server.namespace(name)))
        assert server.counts()["createRepository"] == 1
    finally:
        server.api("DELETE", "/repositories/" + name)


def test_copy_done_but_answer_lost(server, repo):
    server.upload(repo, "main", "src.txt", b"source bytes\n")
    server.add_fault(operation="copyObject", drop_response=True)
    server.reset_counts()
    status, out, _ = run(server, "copy", repo, "main", "src.txt", "dst.txt")
    assert status == 0, out
    src = api(server, "GET", f"/repositories/{repo}/refs/main/objects/stat", params={"path": "src.txt"})
    assert out.startswith("copied checksum=%s\n" % src["checksum"])
    assert server.counts()["copyObject"] == 1


@pytest.mark.presign
def test_link_done_but_answer_lost(server, repo, tmp_path):
    data = os.urandom(4096)
    f = tmp_path / "body"
    f.write_bytes(data)
    server.add_fault(operation="linkPhysicalAddress", drop_response=True)
    server.reset_counts()
    with open(f, "rb") as stdin:  # below the threshold: one presigned PUT and a link
        status, out, _ = run(server, "upload-parts", repo, "main", "l.bin", str(5 * MIB), str(64 * MIB),
                             stdin=stdin)
    assert status == 0, out
    got = server.api("GET", f"/repositories/{repo}/refs/main/objects", params={"path": "l.bin"})
    assert got.content == data
    assert ops_count(server, "linkPhysicalAddress", "presignedPut", "statObject") == {
        "linkPhysicalAddress": 1, "presignedPut": 1, "statObject": 1}


@pytest.mark.presign(multipart=True)
def test_multipart_completed_but_answer_lost(server, repo, tmp_path):
    data = os.urandom(5 * MIB + 1000)
    f = tmp_path / "big"
    f.write_bytes(data)
    server.add_fault(operation="completePresignMultipartUpload", drop_response=True)
    server.reset_counts()
    with open(f, "rb") as stdin:
        status, out, _ = run(server, "upload-parts", repo, "main", "m.bin", str(5 * MIB), str(5 * MIB),
                             stdin=stdin)
    assert status == 0, out
    got = server.api("GET", f"/repositories/{repo}/refs/main/objects", params={"path": "m.bin"})
    assert got.content == data
    counts = server.counts()
    assert counts["completePresignMultipartUpload"] == 1
    assert counts.get("abortPresignMultipartUpload", 0) == 0


# --- URLs from the server ---------------------------------------------------------------------------

@bundled_only
@pytest.mark.presign
@pytest.mark.parametrize("scheme", ["file", "gopher", "dict", "credentials", "space"])
def test_presigned_put_to_a_hostile_url_is_refused(server, repo, tmp_path, scheme):
    target = tmp_path / "written-by-the-daemon"
    url = {"file": "file://" + str(target),
           "gopher": "gopher://%s:%d/_PUT" % (server.host, server.port),
           "dict": "dict://%s:%d/x" % (server.host, server.port),
           "credentials": "http://user:secret@%s:%d/_presigned/x" % (server.host, server.port),
           "space": "http://%s:%d/_presigned/x HTTP/1.1" % (server.host, server.port)}[scheme]
    f = tmp_path / "body"
    f.write_bytes(b"bytes that must go nowhere\n")
    server.add_fault(operation="getPhysicalAddress", rewrite_url=url)
    server.reset_counts()
    with open(f, "rb") as stdin:
        status, out, _ = run(server, "upload-parts", repo, "main", "x.bin", str(5 * MIB), str(64 * MIB),
                             stdin=stdin)
    assert status == 3 and "refused a URL from the server" in out, out
    assert not target.exists()
    counts = server.counts()
    assert counts.get("presignedPut", 0) == 0 and counts.get("linkPhysicalAddress", 0) == 0
    assert counts.get("unknown", 0) == 0  # nothing reached the server's other endpoints either


@bundled_only
@pytest.mark.presign(multipart=True)
def test_multipart_part_urls_are_checked_before_any_part(server, repo, tmp_path):
    target = tmp_path / "part-target"
    f = tmp_path / "big"
    f.write_bytes(os.urandom(10 * MIB + 1))
    server.add_fault(operation="createPresignMultipartUpload", rewrite_url="file://" + str(target))
    server.reset_counts()
    with open(f, "rb") as stdin:
        status, out, _ = run(server, "upload-parts", repo, "main", "m.bin", str(5 * MIB), str(5 * MIB),
                             stdin=stdin)
    assert status == 3 and "not http or https" in out, out
    assert not target.exists()
    counts = server.counts()
    assert counts.get("presignedPut", 0) == 0
    assert counts["abortPresignMultipartUpload"] == 1  # nothing left behind in the store


@bundled_only
@pytest.mark.presign
def test_redirect_to_a_local_file_is_not_followed(server, repo, tmp_path):
    secret = tmp_path / "local-secret"
    secret.write_bytes(b"local file content\n")
    server.upload(repo, "main", "r.txt", b"remote content\n")
    server.add_fault(operation="getObject", rewrite_url="file://" + str(secret))
    server.reset_counts()
    status, out, _ = run(server, "get", repo, "main", "r.txt", "0", "100", "presign")
    assert status == 3 and "not http or https" in out, out
    assert "local file content" not in out
    assert server.counts().get("presignedGet", 0) == 0


class TlsProxy:
    """An https front for the test server (a self-signed certificate for 127.0.0.1 that the client is
    told to trust): the client's endpoint is https, the server's presigned URLs stay http."""

    def __init__(self, tmp_path, backend):
        self.backend = backend
        self.cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(self.cert)], check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(self.cert), str(key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, raw):
        try:
            client = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        backend = socket.create_connection(self.backend)
        try:
            while True:
                ready = [client] if client.pending() else select.select([client, backend], [], [], 60)[0]
                if not ready:
                    return
                for sock in ready:
                    try:
                        data = sock.recv(1 << 16)
                    except ssl.SSLWantReadError:
                        continue
                    if not data:
                        return
                    (backend if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            backend.close()

    def close(self):
        self.listener.close()


@pytest.fixture
def https_env(server, tmp_path):
    proxy = TlsProxy(tmp_path, (server.host, server.port))
    yield {"LAKECTL_SERVER_ENDPOINT_URL": "https://127.0.0.1:%d" % proxy.port,
           "LAKEFUSE_TEST_CA_FILE": str(proxy.cert)}
    proxy.close()


@pytest.mark.presign
def test_an_https_endpoint_never_uses_http_presigned_urls(server, repo, tmp_path, https_env):
    """Through an https endpoint, the server's http presigned URLs (PUT, the getObject redirect) are
    refused before anything is sent; the API calls themselves work over TLS."""
    server.upload(repo, "main", "r.txt", b"remote\n")
    server.reset_counts()
    status, out, _ = run(server, "stat", repo, "main", "r.txt", env=https_env)
    assert status == 0 and out.startswith("size=7 "), out  # TLS to the API works
    status, out, _ = run(server, "get", repo, "main", "r.txt", "0", "7", "presign", env=https_env)
    assert status == 3 and "endpoint is https" in out, out
    f = tmp_path / "body"
    f.write_bytes(b"over https only\n")
    with open(f, "rb") as stdin:
        status, out, _ = run(server, "upload-parts", repo, "main", "u.txt", str(5 * MIB), str(64 * MIB),
                             stdin=stdin, env=https_env)
    assert status == 3 and "endpoint is https" in out, out
    counts = server.counts()
    assert counts["statObject"] == 1 and counts["getObject"] == 1 and counts["getPhysicalAddress"] == 1
    assert counts.get("presignedGet", 0) == 0 and counts.get("presignedPut", 0) == 0
    assert counts.get("linkPhysicalAddress", 0) == 0
    # Over plain http the same URLs are used.
    status, out, _ = run(server, "get", repo, "main", "r.txt", "0", "7", "presign")
    assert status == 0 and out == "remote\n", out


# --- timeouts and the stall guard -------------------------------------------------------------------

def test_commit_outlasts_the_total_timeout_a_read_does_not(server, repo):
    """With a 300 ms total timeout: a commit the server takes 1.5 s over succeeds (commit has no
    total timeout, only the stall guard once its answer starts); a getBranch as slow times out."""
    server.upload(repo, "main", "a.txt", b"a\n")
    tiny = {"LAKEFUSE_TEST_REQUEST_TIMEOUT_MS": "300", "LAKEFUSE_TEST_MAX_ATTEMPTS": "1"}
    server.add_fault(operation="commit", latency_ms=1500)
    server.reset_counts()
    status, out, _ = run(server, "commit", repo, "main", "slow", env=tiny)
    assert status == 0, out
    assert server.counts()["commit"] == 1
    assert commit_log(server, repo, "main")[0]["message"] == "slow"
    server.add_fault(operation="getBranch", latency_ms=1500)
    status, out, _ = run(server, "get-branch", repo, "main", env=tiny)
    assert status == 3 and "Timeout" in out, out


@bundled_only
def test_a_trickling_answer_trips_the_stall_guard(server, repo):
    """One byte every 2.5 s is slower than a 700 ms stall guard: the call fails (not retried past
    the one attempt allowed here) instead of hanging for minutes."""
    slow = {"LAKEFUSE_TEST_STALL_TIMEOUT_MS": "700", "LAKEFUSE_TEST_MAX_ATTEMPTS": "1"}
    server.add_fault(operation="getBranch", trickle_ms=2500)
    status, out, _ = run(server, "get-branch", repo, "main", env=slow)
    assert status == 3 and "stalled" in out, out


@bundled_only
def test_a_commit_whose_answer_stalls_is_checked_and_succeeds_once(server, repo):
    server.upload(repo, "main", "a.txt", b"a\n")
    before = head(server, repo, "main")
    slow = {"LAKEFUSE_TEST_STALL_TIMEOUT_MS": "700"}
    server.add_fault(operation="commit", trickle_ms=2500)
    server.reset_counts()
    status, out, _ = run(server, "commit", repo, "main", "stalled answer", env=slow)
    assert status == 0, out
    assert server.counts()["commit"] == 1
    log = commit_log(server, repo, "main")
    assert log[0]["message"] == "stalled answer" and log[0]["parents"] == [before]


# --- JSON bodies ---------------------------------------------------------------------------------------

@bundled_only
def test_json_answer_over_the_cap_fails_that_call(server, repo):
    small = {"LAKEFUSE_TEST_JSON_BODY_MAX": str(64 << 10)}
    server.add_fault(operation="listObjects", pad_bytes=200_000)
    server.reset_counts()
    status, out, _ = run(server, "list", repo, "main", env=small)
    assert status == 3 and "File too large" in out and "larger than the client accepts" in out, out
    assert server.counts()["listObjects"] == 1  # a refusal, not retried
    status, out, _ = run(server, "list", repo, "main", env=small)
    assert status == 0 and out.startswith("listed "), out


@bundled_only
def test_json_answers_beyond_the_budget_fail_and_release_it(server, repo):
    """A budget of 64 KiB for all answers in flight: a 200 KB one fails with ENOBUFS; the next
    call of the same process, with a small answer, succeeds: nothing of the failed one is held."""
    tight = {"LAKEFUSE_TEST_JSON_BUDGET": str(64 << 10)}
    server.add_fault(operation="listObjects", pad_bytes=200_000)
    status, out, _ = run(server, "list", repo, "main", "2", env=tight)
    lines = out.splitlines()
    assert status == 0 and "No buffer space" in lines[0] and "in flight" in lines[0], out
    assert lines[1].startswith("listed "), out
