"""HTTP front end of lakefs_server: HTTP/1.1 keep-alive server, spec routing (conformance.Spec),
request/response validation, authentication, dispatch by operationId, the presigned data path
(/_presigned/) and the test-control API (/_test/: counts, faults, violations, hostile).
Never buffer object bodies, never validate injected faults, and always send a correct Content-Length.
"""
import http.server
import ipaddress
import json
import socket
import socketserver
import sys
import time
import traceback
import urllib.parse

import api_objects
import api_refs
from blobs import BlobError
import hostile as hostile_mode
from control import Control, Faults, Recorder
from protocol import BodyReader, Request, Response, error_response, json_response, parse_range
from store import ApiError

API_PREFIX = "/api/v1"
NO_AUTH_OPERATIONS = {"healthCheck", "login", "getSetupState", "setup", "setupCommPrefs", "externalPrincipalLogin",
                      "stsLogin", "getAuthCapabilities", "oauthCallback"}
STREAMED_BODY_OPERATIONS = {"uploadObject", "stageObject"}
HANDLERS = dict(api_refs.HANDLERS)
HANDLERS.update(api_objects.HANDLERS)
DRAIN_LIMIT = 8 * 1024 * 1024


class _CutConnection(Exception):
    pass


class _CuttingWriter:
    """Lets through `left` body bytes, then aborts the response (fault cut_after_bytes)."""

    def __init__(self, raw, left):
        self.raw, self.left = raw, left

    def write(self, data):
        if len(data) > self.left:
            self.raw.write(data[:self.left])
            self.left = 0
            self.raw.flush()
            raise _CutConnection()
        self.left -= len(data)
        self.raw.write(data)


class _TricklingWriter:
    """Writes one byte every `interval` seconds (fault trickle_ms): a transfer that never stalls
    outright but is slower than any stall guard."""

    def __init__(self, raw, interval):
        self.raw, self.interval = raw, interval

    def write(self, data):
        for i in range(len(data)):
            self.raw.write(data[i:i + 1])
            self.raw.flush()
            time.sleep(self.interval)


def _rewrite_urls(obj, url):
    """obj with every presigned URL in it replaced by url (fault rewrite_url)."""
    if isinstance(obj, list):
        return [_rewrite_urls(v, url) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for key, value in obj.items():
        if key == "presigned_url" and isinstance(value, str):
            value = url
        elif key == "presigned_urls" and isinstance(value, list):
            value = [url for _ in value]
        elif key == "physical_address" and isinstance(value, str) and value.startswith("http"):
            value = url
        else:
            value = _rewrite_urls(value, url)
        out[key] = value
    return out


class _BytesReader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        end = len(self.data) if n is None or n < 0 else self.pos + n
        chunk, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return chunk

    def read_all(self, limit):
        return self.read()


def _s3_error(status, code, message, headers=None):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>'
            % (code, message)).encode()
    return Response(status, body, "application/xml", headers)


CHECKED_RESULTS = 100


def _checked_part(body):
    """What of an answer --validate checks: all of it, but of a list only its first CHECKED_RESULTS
    results (the handlers build every result of a page alike; a 1,000-object page took 92 ms to
    check, under the spec's lock, which made listing-heavy tests mostly validation). Requests are
    always checked whole."""
    if len(body) < 16384 or not body.startswith(b"{"):
        return body
    try:
        doc = json.loads(body)
    except ValueError:
        return body
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, list) or len(results) <= CHECKED_RESULTS:
        return body
    doc["results"] = results[:CHECKED_RESULTS]
    if isinstance(doc.get("pagination"), dict):
        doc["pagination"]["results"] = CHECKED_RESULTS
    return json.dumps(doc).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lakefs_server"
    sys_version = ""
    timeout = 600

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.ctx.recorder.connection(self.server.data_only)

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.ctx.config.verbose:
            sys.stderr.write("lakefs_server: " + (fmt % args) + "\n")

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_OPTIONS(self):
        self._dispatch("OPTIONS")

    # --- plumbing ---------------------------------------------------------------------------------
    def _dispatch(self, method):
        ctx = self.server.ctx
        path, _, raw_query = self.path.partition("?")
        self.query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        self.body = BodyReader(self.rfile, 0 if chunked else length, chunked)
        self.has_body = chunked or length > 0
        self.cut_after = None
        self.range_fault = self.pagination_fault = None
        self.fault = None
        self.hostile_rule = None
        try:
            if self.server.data_only and not path.startswith("/_presigned/"):
                # The presigned-URL host plays the object store: it serves nothing else.
                ctx.recorder.count("unknown")
                self._send(_s3_error(404, "NoSuchBucket", "The specified bucket does not exist"), method == "HEAD")
            elif path.startswith("/_test/"):
                response = ctx.control.handle(method, path, self.body)
                self._send(response, method == "HEAD")
            elif path.startswith("/_presigned/"):
                self._handle_presigned(method, path)
            elif path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                self._handle_api(method, path[len(API_PREFIX):])
            else:
                ctx.recorder.count("unknown")
                self._send(error_response(404, "not found"), method == "HEAD")
        except _CutConnection:
            self.close_connection = True
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        if not self.close_connection and not self.body.drain(DRAIN_LIMIT):
            self.close_connection = True

    def _apply_fault(self, operation, head):
        """Returns True when an injected fault already answered the request."""
        fault = self.server.ctx.faults.pick(operation, self.query)
        if fault is None:
            return False
        if fault.get("hold"):
            self.server.ctx.faults.hold(fault["hold"])
        if fault.get("latency_ms"):
            time.sleep(fault["latency_ms"] / 1000.0)
        if fault.get("status"):
            if fault.get("body") is not None:  # e.g. an HTML error page, even with 200
                self._send(Response(int(fault["status"]), fault["body"].encode(), "text/html"), head)
                return True
            message = fault.get("message") or "injected fault"
            self._send(error_response(int(fault["status"]), message), head)
            return True
        if fault.get("cut_after_bytes") is not None:
            self.cut_after = int(fault["cut_after_bytes"])
        self.range_fault, self.pagination_fault = fault.get("range"), fault.get("pagination")
        self.fault = fault  # the kinds that change the answer apply in _send
        return False

    def _distort_range(self, resp):
        """A data answer changed as the armed "range" fault says (control.RANGE_FAULTS)."""
        kind, self.range_fault = self.range_fault, None
        if not kind or not resp.file or resp.status not in (200, 206):
            return resp
        oid, start, length = resp.file
        size = self.server.ctx.blobs.size(oid)
        headers = dict(resp.headers)
        first, n, status = start, length, 206
        if kind == "ignore":
            headers.pop("Content-Range", None)
            return Response(200, content_type=resp.content_type, headers=headers, file=(oid, 0, size))
        if kind == "shift":
            first = min(start + 1, size - 1)
            n = min(length, size - first)
        elif kind == "short":
            n = max(length - 1, 0)
        elif kind == "long":
            n = min(length + 1, size - start)
        if kind == "no_content_range":
            headers.pop("Content-Range", None)
        elif kind != "long" and kind != "short":
            headers["Content-Range"] = "bytes %d-%d/%d" % (first, first + n - 1, size)
        else:
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, start + length - 1, size)
        return Response(status, content_type=resp.content_type, headers=headers, file=(oid, first, n))

    def _distort_pagination(self, resp):
        """A paged answer changed as the armed "pagination" fault says (control.PAGINATION_FAULTS)."""
        kind, self.pagination_fault = self.pagination_fault, None
        if not kind or resp.status != 200 or resp.file or not resp.body:
            return resp
        try:
            body = json.loads(resp.body)
        except ValueError:
            return resp
        page = body.get("pagination") if isinstance(body, dict) else None
        if not isinstance(page, dict):
            return resp
        after = (self.query.get("after") or [""])[0]
        results = body.get("results") or []
        if kind == "stuck":
            last = results[-1] if results and isinstance(results[-1], dict) else {}
            page["has_more"] = True
            page["next_offset"] = last.get("id") or last.get("path") or page.get("next_offset") or after
        else:
            body["results"], page["results"] = [], 0
            page["has_more"], page["next_offset"] = True, after + "~"
        return json_response(resp.status, body, resp.headers)

    def _fault_answer(self, resp):
        """resp as the armed fault (if any) changes it; raises _CutConnection to drop it."""
        fault = self.fault or {}
        if fault.get("drop_response"):
            self.close_connection = True
            raise _CutConnection()
        if fault.get("rewrite_url") is not None:
            url = fault["rewrite_url"]
            if "Location" in resp.headers:
                resp.headers["Location"] = url
            if resp.content_type == "application/json" and resp.body:
                body = _rewrite_urls(json.loads(resp.body), url)
                resp = Response(resp.status, json.dumps(body).encode(), resp.content_type, resp.headers)
        if fault.get("pad_bytes") and resp.content_type == "application/json" and resp.body:
            body = json.loads(resp.body)
            if isinstance(body, dict):
                body["padding"] = "x" * int(fault["pad_bytes"])
                resp = Response(resp.status, json.dumps(body).encode(), resp.content_type, resp.headers)
        return resp

    def _send(self, resp, head=False):
        resp = self._fault_answer(self._distort_range(self._distort_pagination(resp)))
        trickle = (self.fault or {}).get("trickle_ms")
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        # lakeFS answers a failed HEAD with neither Content-Type nor Content-Length
        head_error = head and resp.status >= 300
        if resp.content_type and not head_error:
            self.send_header("Content-Type", resp.content_type)
        send_length = resp.length if (not head or resp.status < 300) else 0
        if (resp.status not in (204, 304) or resp.length) and not head_error:
            self.send_header("Content-Length", str(send_length))
        if self.cut_after is not None:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        if not head and not resp.file and self.cut_after is None and not trickle and len(resp.body) <= 65536:
            self._headers_buffer.append(b"\r\n" + resp.body)  # one segment: no Nagle/delayed-ACK stall
            self.flush_headers()
            return
        self.end_headers()
        if head or resp.status in (204, 304):
            return
        writer = self.wfile if self.cut_after is None else _CuttingWriter(self.wfile, self.cut_after)
        if trickle:
            self.wfile.flush()
            writer = _TricklingWriter(writer, int(trickle) / 1000.0)
        if resp.file:
            oid, start, length = resp.file
            self.server.ctx.blobs.send(oid, writer, start, length)
        elif resp.body:
            writer.write(resp.body)
        if self.cut_after is not None:
            self.wfile.flush()

    def _base_url(self):
        host, port = self.server.server_address[:2]
        if host in WILDCARDS:
            return "http://" + (self.headers.get("Host") or "127.0.0.1:%d" % port)
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, port)

    def _presign_base_url(self):
        """Where presigned URLs point: like an S3 blockstore, a host other than the API's, so that
        clients following the getObject redirect drop Authorization (urllib3, requests, curl, Go)."""
        ctx = self.server.ctx
        if ctx.presign_base:
            return ctx.presign_base
        # A wildcard listener (or a non-loopback address without --presign-host): pick per request.
        base = self._base_url()
        parsed = urllib.parse.urlsplit(base)
        if parsed.hostname and is_loopback(parsed.hostname):
            other = other_loopback(parsed.hostname)
            return "http://%s:%d" % (other, parsed.port or 80)
        return base

    # --- /api/v1 ------------------------------------------------------------------------------------
    def _handle_api(self, method, raw_path):
        ctx = self.server.ctx
        head = method == "HEAD"
        route = ctx.spec.match(method, raw_path)
        operation = route.operation_id if route else "unknown"
        ctx.recorder.count(operation)
        ctx.recorder.enter(operation)  # max_in_flight shows a client's parallel requests
        try:
            self._handle_api_counted(method, raw_path, route, operation, head)
        finally:
            ctx.recorder.leave(operation)

    def _handle_api_counted(self, method, raw_path, route, operation, head):
        ctx = self.server.ctx
        if self._apply_fault(operation, head):
            return
        self.hostile_rule = ctx.hostile.pick(operation, self.query)
        if self.hostile_rule and hostile_mode.replaces(self.hostile_rule):
            self._send_hostile(hostile_mode.replacement(self.hostile_rule), head)
            return
        if self.hostile_rule:
            hostile_mode.rewrite_request(self.hostile_rule, self.headers)
        if route is None:
            self._send(error_response(404, "path not found: %s %s" % (method, API_PREFIX + raw_path)), head)
            return
        content_type = self.headers.get("Content-Type")
        if operation not in STREAMED_BODY_OPERATIONS:
            try:
                raw = self.body.read_all(64 * 1024 * 1024)
            except ApiError as err:
                self.close_connection = True
                self._send(error_response(err.status, err.message), head)
                return
            self.body = BodyReader(_BytesReader(b""), 0, False)
            body_for_check, request_body = raw, _BytesReader(raw)
        else:
            body_for_check, request_body = (b"\0" if self.has_body else b""), self.body
        if ctx.config.validate:
            problems = ctx.spec.check_request(route, self.query, dict(self.headers.items()), body_for_check,
                                              content_type)
            if problems:
                ctx.recorder.violation(operation, method, self.path, 400, problems)
                self._send(error_response(400, "request does not match the lakeFS API: " + "; ".join(problems)),
                           head)
                return
        user, expiry = None, None
        if operation not in NO_AUTH_OPERATIONS:
            identity = ctx.auth.authenticate(self.headers)
            if identity is None:
                self._respond_api(operation, method, error_response(401, "error authenticating request"), head)
                return
            user, expiry = identity
        handler = HANDLERS.get(operation)
        if handler is None:
            self._respond_api(operation, method,
                              error_response(501, "not implemented by lakefs_server: %s" % operation), head)
            return
        query = self.query
        if self.pagination_fault == "stuck":  # every page is the first one
            query = {k: v for k, v in query.items() if k != "after"}
        req = Request(method, operation, route.path_params, query, self.headers, request_body, ctx, user, expiry)
        req.presign_base_url = self._presign_base_url()
        try:
            response = handler(ctx, req)
        except ApiError as err:
            response = error_response(err.status, err.message, **err.extra)
        except BlobError as err:
            response = error_response(err.status, err.message)
        except (_CutConnection, ConnectionError, socket.timeout):
            raise
        except Exception as err:  # noqa: BLE001 - a server bug must still produce an HTTP answer
            traceback.print_exc(file=sys.stderr)
            response = error_response(500, "internal error: %s" % err)
        self._respond_api(operation, method, response, head)

    def _send_hostile(self, response, head):
        """A hostile answer (hostile.py): never validated, optionally cut short."""
        rule = self.hostile_rule
        if rule.get("truncate_to") is not None:
            self.cut_after = int(rule["truncate_to"])
        self._send(response, head)

    def _respond_api(self, operation, method, response, head):
        ctx = self.server.ctx
        if getattr(self, "hostile_rule", None):
            self._send_hostile(hostile_mode.transform(self.hostile_rule, response), head)
            return
        if ctx.config.validate:
            ctype = response.content_type
            body = _checked_part(b"" if response.file else response.body)
            problems = ctx.spec.check_response(operation, response.status, ctype, body)
            if problems:
                ctx.recorder.violation(operation, method, self.path, response.status, problems)
                sys.stderr.write("lakefs_server: response violation %s %s -> %d: %s\n"
                                 % (method, self.path, response.status, "; ".join(problems)))
        self._send(response, head)

    # --- presigned data path ------------------------------------------------------------------------
    def _handle_presigned(self, method, path):
        ctx = self.server.ctx
        head = method == "HEAD"
        operation = {"GET": "presignedGet", "HEAD": "presignedGet", "PUT": "presignedPut"}.get(method, "unknown")
        ctx.recorder.count(operation)
        ctx.recorder.enter(operation)
        try:
            self._handle_presigned_counted(method, path, operation, head)
        finally:
            ctx.recorder.leave(operation)

    def _handle_presigned_counted(self, method, path, operation, head):
        ctx = self.server.ctx
        if self._apply_fault(operation, head):
            return
        self.hostile_rule = ctx.hostile.pick(operation, {})
        if self.hostile_rule and hostile_mode.replaces(self.hostile_rule):
            self._send_hostile(hostile_mode.replacement(self.hostile_rule), head)
            return
        if self.hostile_rule:
            hostile_mode.rewrite_request(self.hostile_rule, self.headers)
        try:
            response = self._presigned(method, urllib.parse.unquote(path[len("/_presigned/"):]))
        except BlobError as err:
            response = _s3_error(err.status, err.code, err.message)
        if self.hostile_rule:
            self._send_hostile(hostile_mode.transform(self.hostile_rule, response), head)
            return
        self._send(response, head)

    def _presigned(self, method, oid):
        ctx = self.server.ctx
        if method not in ("GET", "HEAD", "PUT"):
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        if self.headers.get("Authorization") is not None:
            return _s3_error(400, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                             "query parameter, Signature query string parameter or the Authorization header "
                             "should be specified")
        query = {k: v[0] for k, v in self.query.items()}
        ctx.blobs.path_of(oid)
        ctx.blobs.verify_presigned(method, oid, query)
        if method == "PUT":
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return _s3_error(501, "NotImplemented", "A header you provided implies functionality that is "
                                 "not implemented: Transfer-Encoding")
            if "partNumber" in query:
                _, md5 = ctx.blobs.receive_part(query.get("uploadId", ""), int(query["partNumber"]), self.body, None)
            else:
                _, _, md5 = ctx.blobs.receive(self.body, None, oid)
            return Response(200, headers={"ETag": '"%s"' % md5})
        if not ctx.blobs.exists(oid):
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        size = ctx.blobs.size(oid)
        headers = {"Accept-Ranges": "bytes", "Last-Modified": self.date_time_string(ctx.blobs.mtime(oid))}
        etag = ctx.blobs.etag(oid)
        if etag:
            headers["ETag"] = '"%s"' % etag
        status, start, length = 200, 0, size
        if self.headers.get("Range") is not None:
            try:
                first, last = parse_range(self.headers.get("Range"), size)
            except ApiError:
                return _s3_error(416, "InvalidRange", "The requested range is not satisfiable",
                                 {"Content-Range": "bytes */%d" % size})
            status, start, length = 206, first, last - first + 1
            headers["Content-Range"] = "bytes %d-%d/%d" % (first, last, size)
        return Response(status, content_type="application/octet-stream", headers=headers,
                        file=(oid, start, length))


class Server(http.server.ThreadingHTTPServer):
    """data_only: the presigned-URL listener (the 'object store' host), which serves /_presigned/ only."""
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, ctx, data_only=False):
        self.ctx, self.data_only = ctx, data_only
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self):
        # Like HTTPServer.server_bind without socket.getfqdn(), a reverse lookup that may hit DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Context:
    def __init__(self, config, store, blobs, auth, spec):
        self.config, self.store, self.blobs, self.auth, self.spec = config, store, blobs, auth, spec
        self.faults, self.recorder, self.hostile = Faults(), Recorder(), hostile_mode.Hostile()
        self.control = Control(self.faults, self.recorder, self.hostile)
        self.presign_base = None  # "http://host:port" of presigned URLs; None: chosen per request


WILDCARDS = ("0.0.0.0", "::", "")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def other_loopback(host):
    """A loopback IPv4 address other than host (Linux routes all of 127.0.0.0/8 to lo)."""
    return "127.0.0.3" if host == "127.0.0.2" else "127.0.0.2"


def presign_listener(ctx, presign_host, api_host, port):
    """Sets ctx.presign_base and returns the extra data-only Server its host needs (None when the
    API listener already accepts there). presign_host None = automatic: a loopback API gets
    127.0.0.2 (or 127.0.0.3), a wildcard API chooses per request, any other keeps its own host.
    Raises OSError when the data address cannot be bound."""
    if presign_host is None:
        if api_host in WILDCARDS or not is_loopback(api_host):
            return None
        presign_host = other_loopback(api_host)
    shown = "[%s]" % presign_host if ":" in presign_host else presign_host
    ctx.presign_base = "http://%s:%d" % (shown, port)
    if api_host in WILDCARDS:
        return None
    addresses = [info[4][0] for info in socket.getaddrinfo(presign_host, port, type=socket.SOCK_STREAM)]
    if api_host in addresses:
        return None
    return Server((addresses[0], port), ctx, data_only=True)


__all__ = ["Context", "Server", "presign_listener"]
