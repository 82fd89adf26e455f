"""Direct I/O of lakefs_server: presigned GET/PUT URLs, their signature and expiry checks, the
Authorization-header rejection, the staging (getPhysicalAddress -> PUT -> link) flow, and the
presigned multipart upload."""
import hashlib
import urllib.parse

import pytest
import requests

PART = 5 * 1024 * 1024


def stat(server, repo, path, **params):
    return server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo, params=dict(params, path=path))


def test_presigned_get_from_stat_list_and_redirect(server, repo):
    data = b"presigned bytes " * 100
    server.upload(repo, "main", "p/obj", data)
    st = stat(server, repo, "p/obj", presign="true").json()
    url = st["physical_address"]
    assert url.startswith(server.url + "/_presigned/") and st["physical_address_expiry"] > 0
    resp = requests.get(url)
    assert resp.status_code == 200 and resp.content == data
    resp = requests.get(url, headers={"Range": "bytes=0-8"})
    assert resp.status_code == 206 and resp.content == data[:9]
    assert resp.headers["Content-Range"] == "bytes 0-8/%d" % len(data)
    assert requests.get(url, headers={"Range": "bytes=99999-"}).status_code == 416
    listing = server.api("GET", "/repositories/%s/refs/main/objects/ls" % repo, params={"presign": "true"}).json()
    assert requests.get(listing["results"][0]["physical_address"]).content == data
    redirect = server.api("GET", "/repositories/%s/refs/main/objects" % repo,
                          params={"path": "p/obj", "presign": "true"}, allow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith(server.url + "/_presigned/")
    # The redirect stays on the same host, so requests (like curl and Go) would keep Authorization
    # when following it, and the presigned endpoint refuses that like S3 does: a client must drop it.
    kept_auth = server.api("GET", "/repositories/%s/refs/main/objects" % repo,
                           params={"path": "p/obj", "presign": "true"}, headers={"Range": "bytes=2-5"})
    assert kept_auth.status_code == 400 and b"Only one auth mechanism allowed" in kept_auth.content
    followed = requests.get(redirect.headers["Location"], headers={"Range": "bytes=2-5"})
    assert followed.status_code == 206 and followed.content == data[2:6]
    counts = server.counts()
    assert counts["presignedGet"] == 6 and counts["getObject"] == 2


def test_presigned_url_rejects_tampering_and_auth_header(server, repo):
    server.upload(repo, "main", "obj", b"secret")
    url = stat(server, repo, "obj", presign="true").json()["physical_address"]
    parsed = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    query["X-Amz-Expires"] = "999999"
    forged = urllib.parse.urlunsplit(parsed._replace(query=urllib.parse.urlencode(query)))
    resp = requests.get(forged)
    assert resp.status_code == 403 and b"SignatureDoesNotMatch" in resp.content
    other = url.replace(parsed.path, parsed.path[:-1] + ("0" if parsed.path[-1] != "0" else "1"))
    assert requests.get(other).status_code in (403, 400)
    resp = requests.get(url, auth=(server.access_key_id, server.secret_access_key))
    assert resp.status_code == 400 and b"InvalidArgument" in resp.content
    assert requests.put(url, data=b"x").status_code == 403


def test_expired_presigned_urls_are_refused(lakefs_server_factory):
    with lakefs_server_factory(extra_args=["--presign-ttl", "0"]) as srv:
        repo = srv.create_repo()
        srv.upload(repo, "main", "o", b"data")
        url = srv.api("GET", "/repositories/%s/refs/main/objects/stat" % repo,
                      params={"path": "o", "presign": "true"}).json()["physical_address"]
        resp = requests.get(url)
        assert resp.status_code == 403 and b"expired" in resp.content
        assert srv.violations() == []


def test_no_presign_server_refuses_presign(lakefs_server_factory):
    with lakefs_server_factory(extra_args=["--no-presign"]) as srv:
        cfg = srv.api("GET", "/config").json()["storage_config"]
        assert cfg["pre_sign_support"] is False and cfg["pre_sign_multipart_upload"] is False
        repo = srv.create_repo()
        srv.upload(repo, "main", "o", b"data")
        st = srv.api("GET", "/repositories/%s/refs/main/objects/stat" % repo, params={"path": "o"}).json()
        assert st["physical_address"].startswith("s3://")
        resp = srv.api("POST", "/repositories/%s/branches/main/staging/pmpu" % repo, params={"path": "m", "parts": 1})
        assert resp.status_code == 501


def test_staging_flow_put_then_link(server, repo):
    base = "/repositories/%s/branches/main/staging/backing" % repo
    loc = server.api("GET", base, params={"path": "direct/file", "presign": "true"}).json()
    assert loc["physical_address"].startswith("s3://lakefuse-tests/%s/" % repo)
    data = b"direct upload" * 1000
    put = requests.put(loc["presigned_url"], data=data)
    assert put.status_code == 200 and put.headers["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    body = {"staging": loc, "checksum": put.headers["ETag"].strip('"'), "size_bytes": len(data),
            "user_metadata": {"::lakefs::client-mtime": "123"}, "content_type": "text/plain", "mtime": 1600000000}
    resp = server.api("PUT", base, params={"path": "direct/file"}, json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["mtime"] == 1600000000 and resp.json()["physical_address"] == loc["physical_address"]
    got = server.api("GET", "/repositories/%s/refs/main/objects" % repo, params={"path": "direct/file"})
    assert got.content == data and got.headers["Content-Type"] == "text/plain"
    assert server.api("PUT", base, params={"path": "direct/file"}, json=body,
                      headers={"If-None-Match": "*"}).status_code == 412
    assert server.api("PUT", base, params={"path": "elsewhere"}, json=body).status_code == 400
    tampered = dict(body, staging=dict(loc, physical_address=loc["physical_address"][:-1] +
                                       ("0" if loc["physical_address"][-1] != "0" else "1")))
    resp = server.api("PUT", base, params={"path": "direct/file"}, json=tampered)
    assert resp.status_code == 400 and "link address" in resp.json()["message"]
    assert server.api("PUT", base, params={"path": "x"}, json=body, headers={"If-Match": "e"}).status_code == 501
    counts = server.counts()
    assert counts["getPhysicalAddress"] == 1 and counts["presignedPut"] == 1 and counts["linkPhysicalAddress"] == 5


def test_presigned_multipart_upload(server, repo):
    base = "/repositories/%s/branches/main/staging/pmpu" % repo
    parts = [b"a" * PART, b"b" * PART, b"tail"]
    created = server.api("POST", base, params={"path": "big", "parts": 3})
    assert created.status_code == 201, created.text
    mpu = created.json()
    assert len(mpu["presigned_urls"]) == 3
    etags = []
    for i, (url, data) in enumerate(zip(mpu["presigned_urls"], parts)):
        if i == 2:
            url = server.api("PUT", base + "/%s/parts/3" % mpu["upload_id"], params={"path": "big"},
                             json={"physical_address": mpu["physical_address"]}).json()["presigned_url"]
        resp = requests.put(url, data=data)
        assert resp.status_code == 200
        etags.append(resp.headers["ETag"])
    body = {"physical_address": mpu["physical_address"], "content_type": "application/x-big",
            "user_metadata": {"k": "v"},
            "parts": [{"part_number": i + 1, "etag": e} for i, e in enumerate(etags)]}
    resp = server.api("PUT", base + "/" + mpu["upload_id"], params={"path": "big"}, json=body)
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert stats["checksum"] == expected and stats["size_bytes"] == sum(map(len, parts))
    got = server.api("GET", "/repositories/%s/refs/main/objects" % repo, params={"path": "big"},
                     headers={"Range": "bytes=%d-%d" % (PART - 2, PART + 1)})
    assert got.content == b"aabb"
    assert server.api("PUT", base + "/" + mpu["upload_id"], params={"path": "big"}, json=body).status_code == 404


def test_multipart_abort_and_small_parts(server, repo):
    base = "/repositories/%s/branches/main/staging/pmpu" % repo
    mpu = server.api("POST", base, params={"path": "m", "parts": 2}).json()
    etags = [requests.put(url, data=b"x" * 10).headers["ETag"] for url in mpu["presigned_urls"]]
    body = {"physical_address": mpu["physical_address"],
            "parts": [{"part_number": i + 1, "etag": e} for i, e in enumerate(etags)]}
    resp = server.api("PUT", base + "/" + mpu["upload_id"], params={"path": "m"}, json=body)
    assert resp.status_code == 400 and "EntityTooSmall" in resp.json()["message"]
    resp = server.api("DELETE", base + "/" + mpu["upload_id"], params={"path": "m"},
                      json={"physical_address": mpu["physical_address"]})
    assert resp.status_code == 204
    assert requests.put(mpu["presigned_urls"][0], data=b"x").status_code == 404
    assert server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo,
                      params={"path": "m"}).status_code == 404


@pytest.mark.parametrize("parts", [-1, 10001])
def test_multipart_part_count_limits(server, repo, parts):
    resp = server.api("POST", "/repositories/%s/branches/main/staging/pmpu" % repo,
                      params={"path": "m", "parts": parts})
    assert resp.status_code == 400
