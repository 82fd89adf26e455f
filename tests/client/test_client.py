"""The lakeFS C client against the lakeFS-compatible test server.

Runs build/client_exercise (and its sanitizer build) for the getting-started
walkthrough and for every client operation, then checks the results through
the HTTP API and the server's request counters; injects faults to check the
retry rules exactly, by request counts rather than by time.
"""
import os
import re
import subprocess
import uuid
from pathlib import Path

import sys

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lakefs_server"))
import conformance  # noqa: E402  (the spec reader the server validates with)

BUILDS = {
    "release": ROOT / "build" / "client_exercise",
    "asan": ROOT / "build" / "asan" / "client_exercise",
}
SPEC_ONLY_OUTSIDE = {"presignedGet", "presignedPut"}


def client_env(server, **overrides):
    env = dict(os.environ)
    env.update(
        LAKECTL_SERVER_ENDPOINT_URL=server.url,
        LAKECTL_CREDENTIALS_ACCESS_KEY_ID=server.access_key_id,
        LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=server.secret_access_key,
        HOME=str(ROOT / "build"),  # no stray ~/.lakectl.yaml
        ASAN_OPTIONS="detect_leaks=1",
        # the namespace of the repositories client_exercise creates: what this server accepts
        LAKEFUSE_TEST_NAMESPACE_PREFIX=server.namespace(""),
    )
    env.update(overrides)
    return env


def run_client(server, *args, build="release", stdin=None, check=True):
    binary = BUILDS[build]
    if not binary.exists():
        pytest.fail(f"{binary} is not built: run make all sanitize")
    proc = subprocess.run(
        [str(binary), *args],
        env=client_env(server),
        stdin=stdin,
        capture_output=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"client_exercise {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout.decode(errors='replace')}\n"
            f"stderr:\n{proc.stderr.decode(errors='replace')}"
        )
    return proc


def client_stats(proc):
    """The client's own per-operation request counters (from stderr)."""
    stats = {}
    for m in re.finditer(rb"^stats (\w+) requests=(\d+)", proc.stderr, re.M):
        stats[m.group(1).decode()] = int(m.group(2))
    return stats


def unique_repo(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_walkthrough_through_c_client(server, build):
    repo = unique_repo("walk")
    proc = run_client(server, "walkthrough", repo, build=build)
    assert proc.stdout.rstrip().endswith(b"ok")

    # What the walkthrough did is visible through the API.
    http = server.http
    got = http.get(
        f"{server.api_url}/repositories/{repo}/refs/main/objects",
        params={"path": "test.txt"},
    )
    assert got.status_code == 200 and got.content == b"hello lakeFS\n"
    log = http.get(
        f"{server.api_url}/repositories/{repo}/refs/main/commits"
    ).json()["results"]
    merge, added = log[0], log[1]
    assert len(merge["parents"]) == 2
    assert added["message"] == "Add some data!"
    assert added["metadata"] == {"using": "c_client"}


@pytest.mark.presign(multipart=True)  # every operation includes the presigned ones
@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_client_operation_against_the_spec(server, build):
    """Each operation the client implements is called, accepted by the
    validating server (the fixture fails on any spec violation) and counted
    identically by client and server."""
    ops = run_client(server, "ops").stdout.decode().split()
    spec_ops = conformance.Spec(
        str(ROOT / "tests" / "lakefs_server" / "swagger.yml")
    ).operation_ids()
    for op in ops:
        assert op in spec_ops or op in SPEC_ONLY_OUTSIDE, op

    server.reset_counts()
    proc = run_client(server, "exercise", unique_repo("ex"), build=build)
    counts = server.counts()
    missing = [op for op in ops if counts.get(op, 0) == 0]
    assert missing == [], f"operations never exercised: {missing}"
    mine = client_stats(proc)
    assert {op: counts[op] for op in ops} == {op: mine.get(op, 0) for op in ops}
    # Keep-alive: dozens of sequential calls share one pooled connection. (In front of real lakeFS
    # the test proxy serves the API and the presigned data on one address, so the data transfers'
    # connections count too: still far fewer connections than requests.)
    assert sum(counts.values()) > 40
    if os.environ.get("LAKEFUSE_TEST_SERVER", "bundled") == "bundled":
        assert server.connections() == 1
    else:
        assert server.connections() * 8 <= sum(counts.values()), (server.connections(), counts)


def upload(server, repo, path, data, branch="main"):
    r = server.http.post(
        f"{server.api_url}/repositories/{repo}/branches/{branch}/objects",
        params={"path": path},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text


def test_503_is_retried_until_success(server, repo):
    upload(server, repo, "a.bin", b"abc")
    server.add_fault(operation="statObject", count=2, status=503)
    server.reset_counts()
    proc = run_client(server, "stat", repo, "main", "a.bin")
    assert b"size=3" in proc.stdout
    assert server.counts()["statObject"] == 3


def test_404_is_not_retried(server, repo):
    server.reset_counts()
    proc = run_client(server, "stat", repo, "main", "missing", check=False)
    assert proc.returncode == 3
    assert b"No such file or directory status=404" in proc.stdout
    assert server.counts()["statObject"] == 1


def test_locked_branch_500_is_retried_but_other_500_is_not(server, repo):
    upload(server, repo, "a.bin", b"abc")
    server.add_fault(operation="statObject", count=1, status=500,
                     message="branch is currently locked, try again later")
    server.reset_counts()
    run_client(server, "stat", repo, "main", "a.bin")
    assert server.counts()["statObject"] == 2

    server.add_fault(operation="statObject", count=1, status=500,
                     message="internal error")
    server.reset_counts()
    proc = run_client(server, "stat", repo, "main", "a.bin", check=False)
    assert b"Input/output error status=500 message=internal error" in proc.stdout
    assert server.counts()["statObject"] == 1


def test_429_retries_are_bounded(server, repo):
    server.add_fault(operation="statObject", count=100, status=429)
    server.reset_counts()
    proc = run_client(server, "stat", repo, "main", "a.bin", check=False)
    assert b"Resource temporarily unavailable status=429" in proc.stdout
    assert server.counts()["statObject"] == 6  # 1 try + 5 retries
    server.clear_faults()


def test_connection_cut_mid_body_is_retried(server, repo):
    data = os.urandom(1 << 20)
    upload(server, repo, "big.bin", data)
    server.add_fault(operation="getObject", count=1, cut_after_bytes=1000)
    server.reset_counts()
    proc = run_client(server, "get", repo, "main", "big.bin", "0",
                      str(len(data)))
    assert proc.stdout == data
    assert server.counts()["getObject"] == 2


@pytest.mark.presign
def test_ranged_and_presigned_reads(server, repo):
    data = bytes(range(256)) * 64
    upload(server, repo, "r.bin", data)
    server.reset_counts()
    proc = run_client(server, "get", repo, "main", "r.bin", "1000", "300",
                      "presign")
    assert proc.stdout == data[1000:1300]
    counts = server.counts()
    # The redirect was followed to the presigned URL, which the server
    # refuses when it carries an Authorization header.
    assert counts["getObject"] == 1 and counts["presignedGet"] == 1
    tail = run_client(server, "get", repo, "main", "r.bin",
                      str(len(data) - 10), "100")
    assert tail.stdout == data[-10:]
    past = run_client(server, "get", repo, "main", "r.bin", str(len(data)),
                      "10")
    assert past.stdout == b""


def test_upload_from_a_pipe_is_never_retried(server, repo, tmp_path):
    body = b"x" * 5000
    server.add_fault(operation="uploadObject", count=1, status=503)
    server.reset_counts()
    proc = subprocess.run(
        [str(BUILDS["release"]), "upload", repo, "main", "p.bin",
         str(len(body))],
        env=client_env(server),
        input=body,  # a pipe: cannot be read twice
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 3 and b"status=503" in proc.stdout
    assert server.counts()["uploadObject"] == 1

    # The same body from a regular file is re-read and retried.
    f = tmp_path / "body"
    f.write_bytes(body)
    server.add_fault(operation="uploadObject", count=1, status=503)
    server.reset_counts()
    with open(f, "rb") as stdin:
        run_client(server, "upload", repo, "main", "p.bin", str(len(body)),
                   stdin=stdin)
    assert server.counts()["uploadObject"] == 2
    got = server.http.get(
        f"{server.api_url}/repositories/{repo}/refs/main/objects",
        params={"path": "p.bin"},
    )
    assert got.content == body


# --- presigned multipart upload ---------------------------------------------------------------------

MIB = 1 << 20


def mpu_dirs(server):
    """Upload ids whose parts the server still holds (DATA_DIR/objects/mpu/<id>)."""
    root = Path(server.data_dir) / "objects" / "mpu"
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


def s3_multipart_etag(data, part_size):
    """What S3 (and the test server) report for a multipart object: the MD5 of the parts' MD5s, -N."""
    import hashlib
    digests = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return hashlib.md5(b"".join(digests)).hexdigest() + "-%d" % len(digests)


def pattern_file(tmp_path, size, seed):
    import random
    data = random.Random(seed).randbytes(size)
    f = tmp_path / ("body-%d" % seed)
    f.write_bytes(data)
    return f, data


def client_counts(proc):
    return {op: n for op, n in client_stats(proc).items() if n}


@pytest.mark.presign(multipart=True)
def test_multipart_upload_in_three_parts_from_file_offsets(server, repo, tmp_path):
    """create -> three PUTs (5 MiB, 5 MiB, the rest) read at their offsets -> complete, with user
    metadata and content type; the object is the file, byte for byte."""
    f, data = pattern_file(tmp_path, 10 * MIB + 1234, 1)
    before = mpu_dirs(server)
    server.reset_counts()
    with open(f, "rb") as stdin:
        proc = run_client(server, "mpu", repo, "main", "big/three.bin", str(5 * MIB), stdin=stdin)
    want = {"createPresignMultipartUpload": 1, "presignedPut": 3, "completePresignMultipartUpload": 1}
    assert server.counts() == want
    assert client_counts(proc) == want
    etag = s3_multipart_etag(data, 5 * MIB)
    assert proc.stdout.decode().startswith("parts=3 size=%d checksum=%s\n" % (len(data), etag))
    got = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects",
                          params={"path": "big/three.bin"})
    assert got.status_code == 200 and got.content == data
    st = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects/stat",
                         params={"path": "big/three.bin"}).json()
    assert st["size_bytes"] == len(data) and st["checksum"] == etag
    assert st["content_type"] == "application/x-exercise"
    assert st["metadata"] == {"::lakefs::client-mtime": "1700000000", "owner": "exercise"}
    assert mpu_dirs(server) == before  # the parts were assembled and dropped


@pytest.mark.presign(multipart=True)
def test_multipart_part_put_is_retried_from_its_offset(server, repo, tmp_path):
    """The first PUT (part 3, at 10 MiB: parts go last first) answers 503 once; the retry re-reads
    the same range, so the object is still exact."""
    f, data = pattern_file(tmp_path, 10 * MIB + 4321, 2)
    server.add_fault(operation="presignedPut", count=1, status=503)
    server.reset_counts()
    with open(f, "rb") as stdin:
        run_client(server, "mpu", repo, "main", "retried.bin", str(5 * MIB), stdin=stdin)
    assert server.counts() == {"createPresignMultipartUpload": 1, "presignedPut": 4,
                               "completePresignMultipartUpload": 1}
    got = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects",
                          params={"path": "retried.bin"})
    assert got.content == data


@pytest.mark.presign(multipart=True)
def test_multipart_abort_drops_the_parts(server, repo, tmp_path):
    f, _ = pattern_file(tmp_path, 1000, 3)
    before = mpu_dirs(server)
    server.reset_counts()
    with open(f, "rb") as stdin:
        proc = run_client(server, "mpu-abort", repo, "main", "aborted.bin", stdin=stdin)
    # Completing an aborted upload fails: 404 from the bundled server (the store no longer knows
    # it), 500 from real lakeFS (its S3 adapter passes NoSuchUpload on unmapped).
    assert (b"complete afterwards: -2 No such file or directory status=404" in proc.stdout or
            b"complete afterwards: -5 Input/output error status=500" in proc.stdout), proc.stdout
    counted = server.counts()
    assert counted.pop("completePresignMultipartUpload", 0) >= 1, server.counts()
    # A 500 is ambiguous for a non-idempotent call: the client asks whether the object was made
    # (one statObject, 404: it was not) before reporting the error; a 404 needs no check.
    checked = 1 if b"status=500" in proc.stdout else 0
    assert counted.pop("statObject", 0) == checked, server.counts()
    assert counted == {"createPresignMultipartUpload": 1, "presignedPut": 1, "abortPresignMultipartUpload": 1}
    assert mpu_dirs(server) == before
    st = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects/stat",
                         params={"path": "aborted.bin"})
    assert st.status_code == 404


@pytest.mark.presign(multipart=True)
def test_upload_in_parts_as_a_mount_does(server, repo, tmp_path):
    """upload_fd with multipart allowed: parts at or above the threshold, one PUT + link below it,
    the same lakectl metadata either way."""
    f, data = pattern_file(tmp_path, 11 * MIB, 4)
    server.reset_counts()
    with open(f, "rb") as stdin:
        proc = run_client(server, "upload-parts", repo, "main", "parts.bin", str(5 * MIB), str(MIB),
                          stdin=stdin)
    assert server.counts() == {"createPresignMultipartUpload": 1, "presignedPut": 3,
                               "completePresignMultipartUpload": 1}
    assert ("checksum=%s" % s3_multipart_etag(data, 5 * MIB)).encode() in proc.stdout
    server.reset_counts()
    with open(f, "rb") as stdin:
        run_client(server, "upload-parts", repo, "main", "single.bin", str(5 * MIB), str(len(data) + 1),
                   stdin=stdin)
    assert server.counts() == {"getPhysicalAddress": 1, "presignedPut": 1, "linkPhysicalAddress": 1}
    for path in ("parts.bin", "single.bin"):
        got = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects",
                              params={"path": path})
        assert got.content == data
        st = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects/stat",
                             params={"path": path}).json()
        assert st["metadata"] == {"::lakefs::client-mtime": "1700000000"}, path


@pytest.mark.presign(multipart=True)
def test_failed_part_aborts_the_upload(server, repo, tmp_path):
    """A part PUT that fails for good (500 is not retried) makes upload_fd abort the multipart upload
    and return the store's error; nothing is completed or staged, no part is left behind."""
    f, _ = pattern_file(tmp_path, 11 * MIB, 5)
    before = mpu_dirs(server)
    server.add_fault(operation="presignedPut", count=1, status=500, message="store broke")
    server.reset_counts()
    with open(f, "rb") as stdin:
        proc = run_client(server, "upload-parts", repo, "main", "failed.bin", str(5 * MIB), str(MIB),
                          stdin=stdin, check=False)
    assert proc.returncode == 3
    assert b"status=500" in proc.stdout
    counted = server.counts()
    # Parts go up several at once: those already started when the first failed finish; no new one
    # starts after it (3 parts of 5 MiB, so at most 3 PUTs).
    assert 1 <= counted.pop("presignedPut", 0) <= 3, server.counts()
    assert counted == {"createPresignMultipartUpload": 1, "abortPresignMultipartUpload": 1}
    assert mpu_dirs(server) == before
    st = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects/stat",
                         params={"path": "failed.bin"})
    assert st.status_code == 404


@pytest.mark.presign(multipart=True)
def test_multipart_refused_at_create_falls_back_to_one_put(server, repo, tmp_path):
    """A server that advertises presigned multipart but answers 501 to create still gets the file,
    through the single presigned PUT."""
    f, data = pattern_file(tmp_path, 6 * MIB, 6)
    server.add_fault(operation="createPresignMultipartUpload", count=1, status=501)
    server.reset_counts()
    with open(f, "rb") as stdin:
        run_client(server, "upload-parts", repo, "main", "fallback.bin", str(5 * MIB), str(MIB),
                   stdin=stdin)
    assert server.counts() == {"createPresignMultipartUpload": 1, "getPhysicalAddress": 1,
                               "presignedPut": 1, "linkPhysicalAddress": 1}
    got = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects",
                          params={"path": "fallback.bin"})
    assert got.content == data


@pytest.mark.presign(multipart=True)
def test_expired_part_url_is_renewed_with_upload_part(server, repo, tmp_path):
    """A part PUT the store refuses with 403 (its URL expired while earlier parts went up) is sent
    once more to a fresh URL from uploadPart; the object is still exact."""
    f, data = pattern_file(tmp_path, 11 * MIB, 6)
    server.add_fault(operation="presignedPut", count=1, status=403, message="Request has expired")
    server.reset_counts()
    with open(f, "rb") as stdin:
        run_client(server, "upload-parts", repo, "main", "renewed.bin", str(5 * MIB), str(MIB),
                   stdin=stdin)
    assert server.counts() == {"createPresignMultipartUpload": 1, "presignedPut": 4, "uploadPart": 1,
                               "completePresignMultipartUpload": 1}
    got = server.http.get(f"{server.api_url}/repositories/{repo}/refs/main/objects",
                          params={"path": "renewed.bin"})
    assert got.content == data


# Each call of `client_exercise dots` with the operation the server must see. Unescaped, libcurl
# would remove the dot segment and the segment before it: deleting branch ".." would be
# DELETE /repositories/REPO/ (the repository, to a server that ignores the trailing slash).
DOT_CALLS = {
    "get_repository ..": "getRepository",
    "get_branch ..": "getBranch",
    "delete_branch ..": "deleteBranch",
    "delete_branch .": "deleteBranch",
    "get_commit ..": "getCommit",
    "list_objects .": "listObjects",
    "stat_object ..": "statObject",
    "diff_refs ..": "diffRefs",
    "merge ..": ("getBranch", "mergeIntoBranch"),  # the destination's head first: the outcome check's parent
}


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_dot_segments_never_change_the_request_path(server, repo, build):
    upload(server, repo, "keep.txt", b"still here")
    server.reset_counts()
    proc = run_client(server, "dots", repo, build=build)
    results = {m.group(1): (int(m.group(2)), int(m.group(3)))
               for m in re.finditer(r"^(.+) rc=(-?\d+) status=(\d+)$", proc.stdout.decode(), re.M)}
    assert sorted(results) == sorted(DOT_CALLS)
    for name, (rc, status) in results.items():
        # Refused by the server as a name it does not have (or cannot be), never answered by another
        # operation.
        assert rc != 0 and status in (400, 404), (name, rc, status)
    counts = server.counts()
    expected = {}
    for ops in DOT_CALLS.values():
        for op in (ops,) if isinstance(ops, str) else ops:
            expected[op] = expected.get(op, 0) + 1
    assert counts == expected
    assert client_stats(proc) == expected
    # Nothing was deleted or merged: the repository, its branch and object are as they were.
    assert server.api("GET", f"/repositories/{repo}").status_code == 200
    assert server.api("GET", f"/repositories/{repo}/branches/main").status_code == 200
    r = server.api("GET", f"/repositories/{repo}/refs/main/objects", params={"path": "keep.txt"})
    assert r.status_code == 200 and r.content == b"still here"
