"""Direct I/O of lakefs_server: presigned GET/PUT URLs, their signature and expiry checks, the
Authorization-header rejection, the staging (getPhysicalAddress -> PUT -> link) flow, and the
presigned multipart upload."""
import hashlib
import ipaddress
import socket
import urllib.parse

import pytest
import requests
import urllib3

PART = 5 * 1024 * 1024


def stat(server, repo, path, **params):
    return server.api("GET", "/repositories/%s/refs/main/objects/stat" % repo, params=dict(params, path=path))


def test_presigned_get_from_stat_list_and_redirect(server, repo):
    data = b"presigned bytes " * 100
    server.upload(repo, "main", "p/obj", data)
    st = stat(server, repo, "p/obj", presign="true").json()
    url = st["physical_address"]
    assert url.startswith("http://") and "/_presigned/" in url and st["physical_address_expiry"] > 0
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
    assert redirect.status_code == 302 and "/_presigned/" in redirect.headers["Location"]
    # Like an S3 blockstore, the redirect leaves the API's host, so requests (like urllib3, curl
    # and Go) drops Authorization when following it and the read simply works.
    followed = server.api("GET", "/repositories/%s/refs/main/objects" % repo,
                          params={"path": "p/obj", "presign": "true"}, headers={"Range": "bytes=2-5"})
    assert followed.status_code == 206 and followed.content == data[2:6]
    assert followed.url.split("?")[0] == redirect.headers["Location"].split("?")[0]
    counts = server.counts()
    assert counts["presignedGet"] == 5 and counts["getObject"] == 2


def test_presigned_urls_leave_the_api_host(server, repo):
    """issue 10: a presigned URL on the API's own host:port made urllib3 (the official Python SDK)
    keep Authorization on the getObject redirect, and the data path then answered 400."""
    server.upload(repo, "main", "o", b"0123456789")
    for url in (stat(server, repo, "o", presign="true").json()["physical_address"],
                server.api("GET", "/repositories/%s/branches/main/staging/backing" % repo,
                           params={"path": "n", "presign": "true"}).json()["presigned_url"]):
        parsed = urllib.parse.urlsplit(url)
        assert parsed.hostname != server.host
        assert ipaddress.ip_address(socket.gethostbyname(parsed.hostname)).is_loopback


def test_urllib3_follows_presigned_redirect_with_authorization(server, repo):
    data = b"read by an unmodified SDK client"
    server.upload(repo, "main", "sdk/obj", data)
    http = urllib3.PoolManager()

    def headers(**extra):  # fresh each time: urllib3 1.26 pops Authorization from the caller's dict
        return dict(urllib3.make_headers(basic_auth="%s:%s" % (server.access_key_id, server.secret_access_key)),
                    **extra)

    url = "%s/repositories/%s/refs/main/objects?%s" % (server.api_url, repo,
                                                       urllib.parse.urlencode({"path": "sdk/obj", "presign": "true"}))
    resp = http.request("GET", url, headers=headers(), redirect=True)
    assert resp.status == 200 and resp.data == data
    resp = http.request("GET", url, headers=headers(Range="bytes=5-11"), redirect=True)
    assert resp.status == 206 and resp.data == data[5:12]
    assert server.counts()["presignedGet"] == 2


def test_data_host_serves_only_presigned_urls(server, repo):
    server.upload(repo, "main", "o", b"x")
    url = stat(server, repo, "o", presign="true").json()["physical_address"]
    data_base = url.split("/_presigned/")[0]
    resp = requests.get(data_base + "/api/v1/repositories/%s" % repo,
                        auth=(server.access_key_id, server.secret_access_key))
    assert resp.status_code == 404
    # A URL issued by the API host stays valid on it too (old clients, and the same signature).
    assert requests.get(server.url + "/_presigned/" + url.split("/_presigned/")[1]).content == b"x"


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


@pytest.mark.parametrize("listen,extra,expected_host", [
    ("0.0.0.0:0", [], "127.0.0.2"),               # wildcard: another loopback host than the request's
    ("127.0.0.1:0", ["--presign-host", "localhost"], "localhost"),  # a name for the same listener
    ("127.0.0.2:0", [], "127.0.0.3"),
])
def test_presign_host_choices(lakefs_server_factory, listen, extra, expected_host):
    with lakefs_server_factory(listen=listen, extra_args=extra) as srv:
        if srv.host == "0.0.0.0":
            srv.url = srv.url.replace("0.0.0.0", "127.0.0.1")
            srv.api_url = srv.url + "/api/v1"
        repo = srv.create_repo()
        srv.upload(repo, "main", "o", b"data")
        url = srv.api("GET", "/repositories/%s/refs/main/objects/stat" % repo,
                      params={"path": "o", "presign": "true"}).json()["physical_address"]
        assert urllib.parse.urlsplit(url).hostname == expected_host
        assert urllib.parse.urlsplit(url).port == srv.port
        assert requests.get(url).content == b"data"
        followed = srv.api("GET", "/repositories/%s/refs/main/objects" % repo, params={"path": "o", "presign": "true"})
        assert followed.status_code == 200 and followed.content == b"data"
        assert srv.violations() == []


def test_connections_are_counted_per_host(server, repo):
    server.upload(repo, "main", "o", b"data")
    session = requests.Session()
    session.auth = (server.access_key_id, server.secret_access_key)
    server.reset_counts()
    for _ in range(3):
        got = session.get(server.api_url + "/repositories/%s/refs/main/objects" % repo,
                          params={"path": "o", "presign": "true"})
        assert got.content == b"data"
    session.close()
    counts = server._control("GET", "counts")
    assert counts["connections"] == 1 and counts["data_connections"] == 1
