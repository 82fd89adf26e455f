"""Request/response objects shared by the lakefs_server HTTP layer and its API handlers, plus the
small parsing helpers (booleans, pagination, ranges, streamed request bodies) lakeFS applies.
Handlers see only these objects: never touch sockets here, and never buffer an upload body.
"""
import json
import re

from conformance import GO_BOOLEANS
from store import ApiError

MAX_PER_PAGE = 1000
DEFAULT_AMOUNT = 100


MAX_PATH_LENGTH = 1024  # lakeFS catalog.MaxPathLength, in bytes


def check_path_length(path, name="path"):
    length = len(path.encode("utf-8", "surrogatepass"))
    if length > MAX_PATH_LENGTH:
        raise ApiError(400, "argument %s: invalid value: %d is above maximum length (%d)"
                       % (name, length, MAX_PATH_LENGTH))


class Response:
    """status + headers + either bytes (body) or an object file slice (file=(oid, start, length))."""

    def __init__(self, status, body=b"", content_type=None, headers=None, file=None):
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = dict(headers or {})
        self.file = file

    @property
    def length(self):
        return self.file[2] if self.file else len(self.body)


def json_response(status, obj, headers=None):
    return Response(status, json.dumps(obj).encode(), "application/json", headers)


def error_response(status, message, **extra):
    body = dict(extra)
    if message is not None:  # None: a body of extra fields only (lakeFS's merge conflict)
        body["message"] = message
    return json_response(status, body)


def no_content():
    return Response(204)


class BodyReader:
    """File-like reader over a request body: Content-Length bounded, or chunked transfer coding."""

    def __init__(self, rfile, length, chunked):
        self.rfile, self.left, self.chunked = rfile, length, chunked
        self.chunk_left = 0
        self.done = (not chunked) and not length

    def read(self, n=-1):
        if self.done:
            return b""
        if not self.chunked:
            want = self.left if n is None or n < 0 else min(n, self.left)
            data = self.rfile.read(want) if want else b""
            self.left -= len(data)
            if want and not data:
                self.done = True
                raise ConnectionResetError("client closed the connection before sending its whole body")
            if self.left <= 0:
                self.done = True
            return data
        if self.chunk_left == 0:
            line = self.rfile.readline(1024).strip()
            try:
                size = int(line.split(b";")[0], 16)
            except ValueError:
                self.done = True
                raise ConnectionResetError("malformed chunked request body")
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                self.done = True
                return b""
            self.chunk_left = size
        want = self.chunk_left if n is None or n < 0 else min(n, self.chunk_left)
        data = self.rfile.read(want)
        self.chunk_left -= len(data)
        if not data:
            self.done = True
            raise ConnectionResetError("client closed the connection inside a chunk")
        if self.chunk_left == 0:
            self.rfile.readline(16)  # CRLF after the chunk
        return data

    def read_all(self, limit):
        parts, total = [], 0
        while True:
            data = self.read(65536)
            if not data:
                return b"".join(parts)
            total += len(data)
            if total > limit:
                raise ApiError(413, "request body too large")
            parts.append(data)

    def drain(self, limit):
        """Consume what is left (so keep-alive stays usable); False when more than limit remains."""
        total = 0
        while not self.done:
            data = self.read(65536)
            total += len(data)
            if total > limit:
                return False
        return True


class Request:
    def __init__(self, method, operation, params, query, headers, body, ctx, user=None, token_expiry=None):
        self.method, self.operation, self.params = method, operation, params
        self.query, self.headers, self.body = query, headers, body
        self.ctx, self.user, self.token_expiry = ctx, user, token_expiry
        self._json = None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def content_type(self):
        return self.headers.get("Content-Type")

    def q(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def qlist(self, name):
        return list(self.query.get(name) or [])

    def qbool(self, name, default=False):
        value = self.q(name)
        if value is None or value == "":
            return default
        if value in GO_BOOLEANS:
            return GO_BOOLEANS[value]
        raise ApiError(400, "parameter %s: invalid boolean %r" % (name, value))

    def qint(self, name, default=None):
        value = self.q(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, "parameter %s: invalid integer %r" % (name, value))

    def required(self, name):
        value = self.q(name)
        if value is None or value == "":
            raise ApiError(400, "missing %s" % name)
        return value

    def path_param(self, name="path"):
        """An object path parameter; lakeFS refuses one over catalog.MaxPathLength bytes (1024,
        pkg/catalog/validate.go) with 400, before it reads the body."""
        path = self.required(name)
        check_path_length(path, name)
        return path

    def json(self):
        if self._json is None:
            raw = self.body.read_all(64 * 1024 * 1024) if self.body else b""
            if not raw:
                self._json = {}
            else:
                try:
                    self._json = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "request body has an error: failed to decode request body")
                if not isinstance(self._json, dict):
                    raise ApiError(400, "request body has an error: doesn't match schema")
        return self._json

    def pagination(self):
        """(prefix, after, amount) with lakeFS rules: amount <= 0 -> 100, > 1000 -> 400."""
        amount = self.qint("amount", DEFAULT_AMOUNT)
        if amount > MAX_PER_PAGE or amount < -1:
            raise ApiError(400, "parameter \"amount\" in query has an error: number must be at most 1000")
        if amount <= 0:
            amount = DEFAULT_AMOUNT
        return self.q("prefix", "") or "", self.q("after", "") or "", amount


def pagination(results, has_more, next_offset):
    return {"has_more": has_more, "next_offset": next_offset if has_more else "",
            "results": len(results), "max_per_page": MAX_PER_PAGE}


RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header, size):
    """Single byte range -> (start, end inclusive); None when there is no Range header.
    Raises ApiError(416) when it cannot be satisfied (or is not a single well-formed range)."""
    if header is None:
        return None
    match = RANGE_RE.match(header.strip())
    if not match or (match.group(1) == "" and match.group(2) == ""):
        raise ApiError(416, "Requested Range Not Satisfiable")
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise ApiError(416, "Requested Range Not Satisfiable")
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise ApiError(416, "Requested Range Not Satisfiable")
    return start, min(end, size - 1)


def object_stats(path, entry, user_metadata=True, physical_address=None, expiry=None):
    stats = {"path": path, "path_type": "object",
             "physical_address": physical_address or entry["address"],
             "checksum": entry["checksum"], "size_bytes": entry["size"], "mtime": entry["mtime"],
             "content_type": entry["content_type"]}
    if user_metadata:
        stats["metadata"] = dict(entry["metadata"])
    if expiry is not None:
        stats["physical_address_expiry"] = expiry
    return stats


def common_prefix_stats(path):
    return {"path": path, "path_type": "common_prefix", "physical_address": "", "checksum": "", "mtime": 0}
