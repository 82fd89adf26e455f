"""lakeFS API handlers (by operationId) for objects: list/stat/get/head, upload (raw or streamed
multipart/form-data), delete, copy, user metadata, and the direct-I/O staging and presigned
multipart endpoints. Object bytes only ever flow through blobs in chunks: never read an upload
or an object into memory here.
"""
import email.utils
import os
import secrets
import time

import views
from blobs import Blobs, BlobError
from protocol import (MAX_PATH_LENGTH, Response, common_prefix_stats, error_response, json_response, no_content, object_stats,
                      pagination, parse_range)
from store import ApiError, make_entry

MAX_DELETE_PATHS = 1000


# --- helpers ------------------------------------------------------------------------------------------

def _presign_ttl(ctx, req):
    ttl = ctx.config.presign_ttl
    if req.token_expiry is not None:
        ttl = max(1, min(ttl, int(req.token_expiry - time.time())))
    return ttl


def _presigned_stats(ctx, req, path, entry, user_metadata, presign):
    if not presign:
        return object_stats(path, entry, user_metadata)
    oid = Blobs.oid_of(entry["address"])
    url, expiry = ctx.blobs.presign(req.presign_base_url, "GET", oid, _presign_ttl(ctx, req))
    return object_stats(path, entry, user_metadata, url, expiry)


def _want_presign(ctx, req, refused_status=400):
    """presign=true; refused as lakeFS on S3 with presign disabled does (getPhysicalAddress: 500)."""
    presign = req.qbool("presign")
    if presign and not ctx.config.presign:
        raise ApiError(refused_status, "operation not supported")
    return presign


def _lookup(ctx, db, req, path):
    view = ctx.store.view(db, req.params["repository"], req.params["ref"])
    entry = ctx.store.get_entry(db, view, path)
    if entry is None:
        raise ApiError(404, "not found")
    return entry


def _metadata_from_headers(headers):
    """As lakeFS (Go's net/http) takes them: the header's raw bytes (http.server decodes them as
    Latin-1; UTF-8 sent there is UTF-8 again here), the key lower-cased."""
    meta = {}
    for name, value in headers.items():
        value = value.encode("latin-1", "replace").decode("utf-8", "replace")
        lower = name.lower()
        if lower.startswith("x-lakefs-meta-") and len(lower) > len("x-lakefs-meta-"):
            meta[lower[len("x-lakefs-meta-"):]] = value
        elif lower.startswith("x-lakefs-internal-") and len(lower) > len("x-lakefs-internal-"):
            meta["::lakefs::" + lower[len("x-lakefs-internal-"):]] = value
    return meta


def _check_conditional_headers(req):
    """lakeFS: If-Match, or If-None-Match other than '*', is not implemented (501)."""
    if_match, if_none = req.header("If-Match"), req.header("If-None-Match")
    if if_match is not None or (if_none is not None and if_none.strip() != "*"):
        raise ApiError(501, "If-Match and If-None-Match other than '*' are not supported")
    return if_none is not None


def _stage(ctx, req, path, entry, if_absent=False, force=False, exists_message="Precondition failed"):
    repo, branch = req.params["repository"], req.params["branch"]
    with ctx.store.write() as db:
        _, head = ctx.store.writable_branch(db, repo, branch, force)
        if if_absent:
            view = ctx.store.view(db, repo, branch)
            if ctx.store.get_entry(db, view, path) is not None:
                raise ApiError(412, exists_message)
        ctx.store.put_entry(db, repo, branch, path, entry)


def _check_branch(ctx, req, force=False):
    with ctx.store.read() as db:
        return ctx.store.writable_branch(db, req.params["repository"], req.params["branch"], force)


def _etag(entry):
    return '"%s"' % entry["checksum"]


# --- reads --------------------------------------------------------------------------------------------

def listObjects(ctx, req):
    prefix, after, amount = req.pagination()
    delimiter = req.q("delimiter", "") or ""
    user_metadata, presign = req.qbool("user_metadata", True), _want_presign(ctx, req)
    with ctx.store.read() as db:
        view = ctx.store.view(db, req.params["repository"], req.params["ref"])
        items, has_more = views.list_entries(ctx.store, db, view, prefix, delimiter, after, amount)
    # lakeFS lists an object's metadata only when it has some (ListObjects: `entry.Metadata != nil`;
    # an empty map is stored as none).
    results = [common_prefix_stats(p) if e is None
               else _presigned_stats(ctx, req, p, e, user_metadata and bool(e["metadata"]), presign)
               for p, e in items]
    return json_response(200, {"pagination": pagination(results, has_more, items[-1][0] if items else ""),
                               "results": results})


def statObject(ctx, req):
    path = req.path_param()
    user_metadata, presign = req.qbool("user_metadata", True), _want_presign(ctx, req)
    with ctx.store.read() as db:
        entry = _lookup(ctx, db, req, path)
    stats = _presigned_stats(ctx, req, path, entry, user_metadata, presign)
    stats.setdefault("metadata", {})  # lakeFS's StatObject always has it: {} when not asked for
    return json_response(200, stats)


def _object_headers(entry, path):
    return {"ETag": _etag(entry), "Last-Modified": email.utils.formatdate(entry["mtime"], usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Disposition": 'filename="%s"' % os.path.basename(path).replace('"', "")}


def getObject(ctx, req):
    return _serve_object(ctx, req, head=False)


def headObject(ctx, req):
    return _serve_object(ctx, req, head=True)


def _serve_object(ctx, req, head):
    path = req.path_param()
    presign = False if head else _want_presign(ctx, req)
    with ctx.store.read() as db:
        entry = _lookup(ctx, db, req, path)
    oid = Blobs.oid_of(entry["address"])
    headers = _object_headers(entry, path)
    if not head:
        headers.update({"Cache-Control": "no-cache, no-store, no-transform, must-revalidate, private, max-age=0",
                        "Expires": "Thu, 01 Jan 1970 00:00:00 GMT", "Pragma": "no-cache",
                        "X-Accel-Expires": "0"})
    if_none = req.header("If-None-Match")
    if not head and if_none is not None and if_none.strip().strip('"') == entry["checksum"]:
        return Response(304, headers={"ETag": headers["ETag"], "Last-Modified": headers["Last-Modified"]})
    if presign:
        url, _ = ctx.blobs.presign(req.presign_base_url, "GET", oid, _presign_ttl(ctx, req))
        return Response(302, headers={"Location": url})
    if oid is None or not ctx.blobs.exists(oid):
        raise ApiError(410, "object expired")
    size = ctx.blobs.size(oid)
    try:
        byte_range = parse_range(req.header("Range"), size)
    except ApiError as err:
        resp = error_response(err.status, err.message)
        resp.headers["Content-Range"] = "bytes */%d" % size
        resp.headers["ETag"] = headers["ETag"]  # lakeFS sets it before it checks the range
        return resp
    status, start, length = 200, 0, size
    if byte_range is not None:
        status, start = 206, byte_range[0]
        length = byte_range[1] - byte_range[0] + 1
        headers["Content-Range"] = "bytes %d-%d/%d" % (byte_range[0], byte_range[1], size)
    return Response(status, content_type=entry["content_type"], headers=headers, file=(oid, start, length))


# --- writes -------------------------------------------------------------------------------------------

class _MultipartPart:
    """Reads one part of a streamed multipart/form-data body, up to the next boundary."""

    def __init__(self, stream, name, content_type):
        self.stream, self.name, self.content_type, self.finished = stream, name, content_type, False

    def read(self, n=65536):
        if self.finished:
            return b""
        s = self.stream
        s.fill(n + len(s.delim))
        idx = s.buf.find(s.delim)
        if idx >= 0:
            take = min(n, idx)
            if take == idx:
                self.finished = True
        elif s.eof:
            raise ApiError(400, "request body has an error: malformed multipart body")
        else:
            take = min(n, len(s.buf) - len(s.delim) + 1)
        data, s.buf = s.buf[:take], s.buf[take:]
        return data

    def drain(self):
        while self.read(1 << 20):
            pass


class _MultipartStream:
    def __init__(self, reader, boundary):
        self.reader, self.delim = reader, b"\r\n--" + boundary.encode("latin-1")
        self.buf, self.eof = b"\r\n", False

    def fill(self, n):
        while len(self.buf) < n and not self.eof:
            data = self.reader.read(max(65536, n - len(self.buf)))
            if not data:
                self.eof = True
            else:
                self.buf += data

    def next_part(self):
        while True:
            self.fill(len(self.delim) + 4)
            idx = self.buf.find(self.delim)
            if idx >= 0:
                break
            if self.eof:
                return None
            self.buf = self.buf[-len(self.delim):]
        self.buf = self.buf[idx + len(self.delim):]
        self.fill(2)
        if self.buf.startswith(b"--"):
            return None
        while b"\r\n\r\n" not in self.buf:
            if self.eof or len(self.buf) > 65536:
                raise ApiError(400, "request body has an error: malformed multipart headers")
            self.fill(len(self.buf) + 1024)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        name, content_type = None, None
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                for item in value.split(";"):
                    k, _, v = item.strip().partition("=")
                    if k.lower() == "name":
                        name = v.strip('"')
            elif key.strip().lower() == "content-type":
                content_type = value.strip()
        return _MultipartPart(self, name, content_type)


def _receive_upload(ctx, req):
    """Streams the body (raw or the multipart 'content' part) into a new object: (oid, size, md5, type)."""
    ctype = req.content_type or ""
    if ctype.lower().startswith("multipart/form-data"):
        boundary = None
        for item in ctype.split(";")[1:]:
            k, _, v = item.strip().partition("=")
            if k.lower() == "boundary":
                boundary = v.strip('"')
        if not boundary:
            raise ApiError(400, "request body has an error: multipart/form-data without boundary")
        stream = _MultipartStream(req.body, boundary)
        while True:
            part = stream.next_part()
            if part is None:
                raise ApiError(500, "missing key 'content' in multipart form")
            if part.name == "content":
                oid, size, md5 = ctx.blobs.receive(part, None)
                part.drain()
                while stream.next_part() is not None:
                    pass
                return oid, size, md5, part.content_type or "application/octet-stream"
            part.drain()
    oid, size, md5 = ctx.blobs.receive(req.body, None)
    return oid, size, md5, ctype or "application/octet-stream"


def uploadObject(ctx, req):
    path = req.path_param()
    if_absent = _check_conditional_headers(req)
    force = req.qbool("force")
    try:
        repo, _ = _check_branch(ctx, req, force)
    except ApiError as err:  # lakeFS's uploadObject words these two its own way
        branch = req.params["branch"]
        if err.status == 404 and err.message == "branch not found":
            raise ApiError(404, "branch '%s' not found" % branch)
        if err.status == 400 and err.message.startswith("branch id:"):
            raise ApiError(400, "argument name: " + err.message)
        raise
    if if_absent:
        with ctx.store.read() as db:
            if ctx.store.get_entry(db, ctx.store.view(db, repo["id"], req.params["branch"]), path) is not None:
                raise ApiError(412, "path already exists")  # (linkPhysicalAddress: "Precondition failed")
    oid, size, md5, content_type = _receive_upload(ctx, req)
    entry = make_entry(Blobs.address(repo["storage_namespace"], oid), md5, size, int(time.time()),
                       content_type, _metadata_from_headers(req.headers))
    _stage(ctx, req, path, entry, if_absent, force, exists_message="path already exists")
    return json_response(201, object_stats(path, entry))


def deleteObject(ctx, req):
    path = req.path_param()
    repo, branch = req.params["repository"], req.params["branch"]
    with ctx.store.write() as db:
        _, head = ctx.store.writable_branch(db, repo, branch, req.qbool("force"))
        ctx.store.delete_entry(db, repo, branch, head, path)
    return no_content()


def deleteObjects(ctx, req):
    paths = req.json().get("paths")
    if not isinstance(paths, list):
        raise ApiError(400, "request body has an error: property \"paths\" is missing")
    if len(paths) > MAX_DELETE_PATHS:
        raise ApiError(400, "too many paths: at most %d" % MAX_DELETE_PATHS)
    repo, branch = req.params["repository"], req.params["branch"]
    errors = []
    with ctx.store.write() as db:
        _, head = ctx.store.writable_branch(db, repo, branch, req.qbool("force"))
        for path in paths:
            if not isinstance(path, str) or not path:
                errors.append({"status_code": 400, "message": "invalid path", "path": str(path)})
                continue
            if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_LENGTH:
                errors.append({"status_code": 400, "message": "invalid path: above maximum length (%d)"
                               % MAX_PATH_LENGTH, "path": path})
                continue
            ctx.store.delete_entry(db, repo, branch, head, path)
    return json_response(200, {"errors": errors})


def copyObject(ctx, req):
    dest_path = req.path_param("dest_path")
    body = req.json()
    if body.get("shallow"):
        raise ApiError(501, "shallow copy is not supported")
    src_path = body.get("src_path") or ""
    if not src_path:
        raise ApiError(400, "request body has an error: property \"src_path\" is missing")
    repo_id, branch = req.params["repository"], req.params["branch"]
    force = bool(body.get("force"))
    with ctx.store.read() as db:
        repo, _ = ctx.store.writable_branch(db, repo_id, branch, force)
        view = ctx.store.view(db, repo_id, body.get("src_ref") or branch)
        src = ctx.store.get_entry(db, view, src_path)
    if src is None:
        raise ApiError(404, "not found")
    src_oid = Blobs.oid_of(src["address"])
    if src_oid is None or not ctx.blobs.exists(src_oid):
        raise ApiError(410, "object expired")
    new_oid = ctx.blobs.clone(src_oid)
    entry = make_entry(Blobs.address(repo["storage_namespace"], new_oid), src["checksum"], src["size"],
                       int(time.time()), src["content_type"], src["metadata"])
    _stage(ctx, req, dest_path, entry, force=force)
    return json_response(201, object_stats(dest_path, entry))


def updateObjectUserMetadata(ctx, req):
    path = req.path_param()
    new_meta = req.json().get("set")
    if not isinstance(new_meta, dict):
        raise ApiError(400, "request body has an error: property \"set\" is missing")
    repo, branch = req.params["repository"], req.params["branch"]
    with ctx.store.write() as db:
        ctx.store.writable_branch(db, repo, branch)
        old = ctx.store.get_entry(db, ctx.store.view(db, repo, branch), path)
        if old is None:
            raise ApiError(404, "update user metadata on %s/%s/%s: not found" % (repo, branch, path))
        entry = make_entry(old["address"], old["checksum"], old["size"], old["mtime"], old["content_type"],
                           {str(k): str(v) for k, v in new_meta.items()})
        ctx.store.put_entry(db, repo, branch, path, entry)
    return no_content()


# --- direct I/O: staging and presigned multipart ------------------------------------------------------

def getPhysicalAddress(ctx, req):
    path = req.path_param()
    presign = _want_presign(ctx, req, refused_status=500)
    # lakeFS does not look the branch up here (a missing one fails at linkPhysicalAddress)
    with ctx.store.read() as db:
        repo = ctx.store.get_repo(db, req.params["repository"])
    address = ctx.blobs.link_address(repo["storage_namespace"], repo["id"], req.params["branch"], path)
    result = {"physical_address": address, "presigned_url": None}
    if presign:
        url, expiry = ctx.blobs.presign(req.presign_base_url, "PUT", Blobs.oid_of(address), _presign_ttl(ctx, req))
        result.update({"presigned_url": url, "presigned_url_expiry": expiry})
    return json_response(200, result)


def linkPhysicalAddress(ctx, req):
    path = req.path_param()
    if_absent = _check_conditional_headers(req)
    body = req.json()
    staging = body.get("staging")
    if not isinstance(staging, dict) or "checksum" not in body or "size_bytes" not in body:
        raise ApiError(400, "request body has an error: staging, checksum and size_bytes are required")
    force = bool(body.get("force"))
    repo, _ = _check_branch(ctx, req, force)
    address = staging.get("physical_address") or ""
    try:
        ctx.blobs.verify_link_address(repo["storage_namespace"], repo["id"], req.params["branch"], path, address)
    except BlobError as err:
        raise ApiError(err.status, err.message)
    mtime = body.get("mtime") or int(time.time())
    entry = make_entry(address, str(body.get("checksum") or ""), int(body.get("size_bytes") or 0), mtime,
                       body.get("content_type") or "application/octet-stream", body.get("user_metadata") or {})
    _stage(ctx, req, path, entry, if_absent, force)
    return json_response(200, object_stats(path, entry))


def _check_mpu_enabled(ctx):
    if not ctx.config.presign:
        raise ApiError(501, "presign multipart upload API is not supported")


def createPresignMultipartUpload(ctx, req):
    _check_mpu_enabled(ctx)
    path = req.path_param()
    parts = req.qint("parts", 0)
    if parts < 0 or parts > 10000:
        raise ApiError(400, "parts: invalid value: must be between 0 and 10000")
    repo, _ = _check_branch(ctx, req)
    upload_id, oid = secrets.token_hex(16), Blobs.new_oid()
    ctx.blobs.start_multipart(upload_id)
    ctx.store.add_mpu(upload_id, repo["id"], req.params["branch"], path, oid)
    ttl = _presign_ttl(ctx, req)
    urls = [ctx.blobs.presign(req.presign_base_url, "PUT", oid, ttl, {"partNumber": str(n), "uploadId": upload_id})[0]
            for n in range(1, parts + 1)]
    result = {"upload_id": upload_id, "physical_address": Blobs.address(repo["storage_namespace"], oid)}
    if urls:  # lakeFS omits the key when no parts were asked for
        result["presigned_urls"] = urls
    return json_response(201, result)


def _mpu_record(ctx, req, path, physical_address):
    with ctx.store.read() as db:
        repo, _ = ctx.store.writable_branch(db, req.params["repository"], req.params["branch"])
        record = ctx.store.get_mpu(db, req.params["uploadId"])
    if record is None or (record["repo"], record["branch"], record["path"]) != \
            (repo["id"], req.params["branch"], path):
        raise ApiError(404, "multipart upload not found")
    if physical_address != Blobs.address(repo["storage_namespace"], record["oid"]):
        raise ApiError(400, "physical address does not match the upload")
    return repo, record


def uploadPart(ctx, req):
    _check_mpu_enabled(ctx)
    path = req.path_param()
    try:
        number = int(req.params["partNumber"])
    except ValueError:
        raise ApiError(400, "partNumber: invalid value")
    if not 1 <= number <= 10000:
        raise ApiError(400, "partNumber: invalid value: must be between 1 and 10000")
    _, record = _mpu_record(ctx, req, path, req.json().get("physical_address") or "")
    url, _ = ctx.blobs.presign(req.presign_base_url, "PUT", record["oid"], _presign_ttl(ctx, req),
                               {"partNumber": str(number), "uploadId": req.params["uploadId"]})
    return json_response(200, {"presigned_url": url})


def completePresignMultipartUpload(ctx, req):
    _check_mpu_enabled(ctx)
    path = req.path_param()
    body = req.json()
    repo, record = _mpu_record(ctx, req, path, body.get("physical_address") or "")
    parts = body.get("parts")
    if not isinstance(parts, list):
        raise ApiError(400, "request body has an error: property \"parts\" is missing")
    try:
        size, etag = ctx.blobs.complete_multipart(
            req.params["uploadId"], record["oid"], [(int(p["part_number"]), str(p["etag"])) for p in parts])
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "request body has an error: invalid parts")
    except BlobError as err:
        raise ApiError(err.status, "%s: %s" % (err.code, err.message))
    entry = make_entry(body["physical_address"], etag, size, int(time.time()),
                       body.get("content_type") or "application/octet-stream", body.get("user_metadata") or {})
    _stage(ctx, req, path, entry)
    with ctx.store.write() as db:
        ctx.store.drop_mpu(db, req.params["uploadId"])
    return json_response(200, object_stats(path, entry))


def abortPresignMultipartUpload(ctx, req):
    _check_mpu_enabled(ctx)
    path = req.path_param()
    _mpu_record(ctx, req, path, req.json().get("physical_address") or "")
    ctx.blobs.abort_multipart(req.params["uploadId"])
    with ctx.store.write() as db:
        ctx.store.drop_mpu(db, req.params["uploadId"])
    return no_content()


HANDLERS = {name: fn for name, fn in dict(globals()).items()
            if callable(fn) and not name.startswith("_") and name[0].islower()
            and getattr(fn, "__module__", None) == __name__}
