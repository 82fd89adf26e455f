"""Object operations of lakefs_server: upload (raw, multipart/form-data, chunked), user and
internal metadata headers, conditional uploads, get/head with Range/416/304, delete, copy and
user metadata replacement."""
import email.utils
import hashlib

import requests


def obj_url(repo, ref="main"):
    return "/repositories/%s/refs/%s/objects" % (repo, ref)


def upload_url(repo, branch="main"):
    return "/repositories/%s/branches/%s/objects" % (repo, branch)


def test_upload_raw_with_metadata_headers(server, repo):
    data = bytes(range(256)) * 10
    resp = server.api("POST", upload_url(repo), params={"path": "bin/blob"}, data=data,
                      headers={"Content-Type": "application/x-custom", "X-Lakefs-Meta-Color": "Blue",
                               "X-Lakefs-Internal-Client-Mtime": "1700000000"})
    assert resp.status_code == 201, resp.text
    stats = resp.json()
    assert stats["checksum"] == hashlib.md5(data).hexdigest() and stats["size_bytes"] == len(data)
    assert stats["physical_address"].startswith("s3://lakefuse-tests/%s/data/" % repo)
    assert stats["metadata"] == {"color": "Blue", "::lakefs::client-mtime": "1700000000"}
    stat = server.api("GET", obj_url(repo) + "/stat", params={"path": "bin/blob"}).json()
    assert stat["content_type"] == "application/x-custom" and stat["metadata"] == stats["metadata"]
    assert "physical_address_expiry" not in stat


def test_upload_multipart_form_uses_content_part(server, repo):
    files = {"other": ("ignored.txt", b"ignored", "text/plain"),
             "content": ("file.json", b'{"a": 1}\r\n--not-a-boundary', "application/json")}
    resp = server.api("POST", upload_url(repo), params={"path": "f.json"}, files=files)
    assert resp.status_code == 201, resp.text
    assert resp.json()["content_type"] == "application/json"
    got = server.api("GET", obj_url(repo), params={"path": "f.json"})
    assert got.content == b'{"a": 1}\r\n--not-a-boundary'


def test_upload_chunked_body_and_empty_object(server, repo):
    resp = server.api("POST", upload_url(repo), params={"path": "chunked"},
                      data=iter([b"abc", b"defgh" * 1000]))
    assert resp.status_code == 201, resp.text
    assert resp.json()["size_bytes"] == 3 + 5000
    resp = server.api("POST", upload_url(repo), params={"path": "dir/"}, data=b"")
    assert resp.status_code == 201 and resp.json()["size_bytes"] == 0
    got = server.api("GET", obj_url(repo), params={"path": "dir/"})
    assert got.status_code == 200 and got.content == b""


def test_conditional_uploads(server, repo):
    assert server.api("POST", upload_url(repo), params={"path": "once"}, data=b"1",
                      headers={"If-None-Match": "*"}).status_code == 201
    resp = server.api("POST", upload_url(repo), params={"path": "once"}, data=b"2", headers={"If-None-Match": "*"})
    assert resp.status_code == 412 and resp.json()["message"]
    resp = server.api("POST", upload_url(repo), params={"path": "once"}, data=b"2", headers={"If-Match": '"x"'})
    assert resp.status_code == 501
    resp = server.api("POST", upload_url(repo), params={"path": "once"}, data=b"2",
                      headers={"If-None-Match": '"abc"'})
    assert resp.status_code == 501
    assert server.api("GET", obj_url(repo), params={"path": "once"}).content == b"1"


def test_get_range_etag_and_not_modified(server, repo):
    data = b"0123456789" * 100
    server.upload(repo, "main", "r", data)
    full = server.api("GET", obj_url(repo), params={"path": "r"})
    assert full.status_code == 200 and full.content == data
    etag = full.headers["ETag"]
    assert etag == '"%s"' % hashlib.md5(data).hexdigest()
    assert email.utils.parsedate_to_datetime(full.headers["Last-Modified"]).tzinfo is not None
    part = server.api("GET", obj_url(repo), params={"path": "r"}, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == "bytes 10-19/1000" and part.headers["Content-Length"] == "10"
    tail = server.api("GET", obj_url(repo), params={"path": "r"}, headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    open_end = server.api("GET", obj_url(repo), params={"path": "r"}, headers={"Range": "bytes=995-5000"})
    assert open_end.status_code == 206 and open_end.content == data[995:]
    bad = server.api("GET", obj_url(repo), params={"path": "r"}, headers={"Range": "bytes=1000-"})
    assert bad.status_code == 416 and bad.headers["Content-Range"] == "bytes */1000"
    same = server.api("GET", obj_url(repo), params={"path": "r"}, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    other = server.api("GET", obj_url(repo), params={"path": "r"}, headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200
    head = server.api("HEAD", obj_url(repo), params={"path": "r"})
    assert head.status_code == 200 and head.headers["Content-Length"] == "1000" and head.headers["ETag"] == etag
    head = server.api("HEAD", obj_url(repo), params={"path": "r"}, headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["Content-Length"] == "10"
    assert server.api("HEAD", obj_url(repo), params={"path": "missing"}).status_code == 404
    assert server.api("GET", obj_url(repo), params={"path": "missing"}).status_code == 404


def test_keep_alive_connection_is_reused(server, repo):
    server.upload(repo, "main", "k", b"k")
    session = requests.Session()
    session.auth = server.http.auth
    seen = set()
    for _ in range(5):
        resp = session.get(server.api_url + obj_url(repo), params={"path": "k"}, stream=True)
        seen.add(id(resp.raw._connection.sock))
        resp.content
    session.close()
    assert len(seen) == 1


def test_delete_objects(server, repo):
    for p in ("a", "b", "c"):
        server.upload(repo, "main", p, p.encode())
    resp = server.api("DELETE", upload_url(repo), params={"path": "a"})
    assert resp.status_code == 204
    assert server.api("DELETE", upload_url(repo), params={"path": "never"}).status_code == 204
    resp = server.api("POST", upload_url(repo) + "/delete", json={"paths": ["b", "zzz"]})
    assert resp.status_code == 200 and resp.json() == {"errors": []}
    listing = server.api("GET", obj_url(repo) + "/ls").json()["results"]
    assert [r["path"] for r in listing] == ["c"]
    resp = server.api("POST", upload_url(repo) + "/delete", json={"paths": ["x%d" % i for i in range(1001)]})
    assert resp.status_code == 400


def test_copy_and_update_metadata(server, repo):
    server.upload(repo, "main", "src", b"payload", headers={"X-Lakefs-Meta-A": "1"})
    server.commit(repo, "main", "c")
    server.api("POST", "/repositories/%s/branches" % repo, json={"name": "dev", "source": "main"})
    resp = server.api("POST", "/repositories/%s/branches/dev/objects/copy" % repo, params={"dest_path": "dst"},
                      json={"src_path": "src", "src_ref": "main"})
    assert resp.status_code == 201, resp.text
    copied = resp.json()
    assert copied["path"] == "dst" and copied["metadata"] == {"a": "1"}
    assert server.api("GET", obj_url(repo, "dev"), params={"path": "dst"}).content == b"payload"
    resp = server.api("POST", "/repositories/%s/branches/dev/objects/copy" % repo, params={"dest_path": "x"},
                      json={"src_path": "nope"})
    assert resp.status_code == 404
    resp = server.api("POST", "/repositories/%s/branches/dev/objects/copy" % repo, params={"dest_path": "x"},
                      json={"src_path": "src", "shallow": True})
    assert resp.status_code == 501
    resp = server.api("PUT", "/repositories/%s/branches/dev/objects/stat/user_metadata" % repo,
                      params={"path": "dst"}, json={"set": {"b": "2"}})
    assert resp.status_code == 204 and resp.content == b""
    stat = server.api("GET", obj_url(repo, "dev") + "/stat", params={"path": "dst"}).json()
    assert stat["metadata"] == {"b": "2"}
    assert server.api("GET", obj_url(repo, "dev"), params={"path": "dst"}).content == b"payload"
    resp = server.api("PUT", "/repositories/%s/branches/dev/objects/stat/user_metadata" % repo,
                      params={"path": "missing"}, json={"set": {}})
    assert resp.status_code == 404


def test_paths_longer_than_1024_bytes_are_refused_with_400(server, repo):
    """lakeFS's catalog.MaxPathLength: a path of 1024 bytes is an object, 1025 is a 400 on every
    operation that takes one (upload, stat, staging, copy destination, metadata, delete)."""
    longest = "d/" + "x" * 1020 + "é"  # 1024 bytes in UTF-8
    too_long = longest + "y"
    assert len(longest.encode()) == 1024
    resp = server.api("POST", upload_url(repo), params={"path": longest}, data=b"ok")
    assert resp.status_code == 201, resp.text
    assert server.api("GET", obj_url(repo) + "/stat", params={"path": longest}).status_code == 200
    for method, url, params, kw in [
            ("POST", upload_url(repo), {"path": too_long}, {"data": b"no"}),
            ("GET", obj_url(repo) + "/stat", {"path": too_long}, {}),
            ("GET", obj_url(repo), {"path": too_long}, {}),
            ("GET", "/repositories/%s/branches/main/staging/backing" % repo, {"path": too_long}, {}),
            ("POST", upload_url(repo) + "/copy", {"dest_path": too_long}, {"json": {"src_path": longest}}),
            ("PUT", upload_url(repo) + "/stat/user_metadata", {"path": too_long}, {"json": {"set": {}}}),
            ("DELETE", upload_url(repo), {"path": too_long}, {})]:
        resp = server.api(method, url, params=params, **kw)
        assert resp.status_code == 400, (method, url, resp.status_code, resp.text)
        assert "above maximum length (1024)" in resp.json()["message"], resp.text
    resp = server.api("POST", upload_url(repo) + "/delete", json={"paths": [too_long]})
    assert resp.status_code == 200 and resp.json()["errors"][0]["status_code"] == 400, resp.text
    listed = server.api("GET", obj_url(repo) + "/ls", params={"prefix": "d/"}).json()["results"]
    assert [r["path"] for r in listed] == [longest]
