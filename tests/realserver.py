"""Real lakeFS (v1.84.0, built by scripts/third-party.sh) for the test suites, behind a small proxy of
our own that counts requests and injects faults with the same /_test/ interface as the bundled
tests/lakefs_server (so tests written against lakefs_testlib.LakeFSServer run unchanged).

Two configurations (tests/conftest.py picks one from LAKEFUSE_TEST_SERVER):

* RealLakeFSLocal ("lakefs-local"): lakeFS with the local KV store and the local blockstore (what
  `lakefs run --quickstart` runs); storage namespaces local://REPO; no presigned URLs (the local
  blockstore cannot presign).
* RealLakeFSS3 ("lakefs-s3"): lakeFS with an S3 blockstore on moto's S3 server (`moto[server]`,
  PyPI), bucket created at start, storage namespaces s3://BUCKET/REPO, presigned URLs and presigned
  multipart uploads on.

Request path (both): client -> TestProxy (127.0.0.1:P) -> lakeFS (127.0.0.1:L, /api/v1 and
everything else) or the S3 server (127.0.0.1:M, paths under /BUCKET/: the presigned data requests).
lakeFS talks to the S3 server directly (blockstore.s3.endpoint) but signs presigned URLs for the
proxy's address (blockstore.s3.pre_signed_endpoint); the proxy forwards them with the Host header
untouched, so the SigV4 signature (host is a signed header) stays valid.

Everything runs on loopback with free ports, in a temporary directory deleted at stop(); every
process is started in its own session and its whole process group is killed at stop().
No pytest in here.
"""
import base64
import hashlib
import http.client
import json
import select
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import xml.sax.saxutils
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lakefs_server"))

from conformance import Spec  # noqa: E402  (the bundled server's operation matcher)
from control import Control, Faults, Recorder  # noqa: E402  (its counts / faults / violations)
from lakefs_testlib import (DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, ControlClient,  # noqa: E402
                            ServerHelpers, read_line)

SWAGGER = os.path.join(HERE, "lakefs_server", "swagger.yml")
API_PREFIX = "/api/v1"
START_TIMEOUT = 60.0
BUCKET = "lakefuse-tests"
# Buckets the S3 server holds: ours, plus the ones tests name in s3:// namespaces of their own
# (client_exercise.c: s3://example-bucket/REPO; the namespace-prefix test: s3://bucket/prefix).
BUCKETS = (BUCKET, "example-bucket", "bucket")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "proxy-connection"})


def third_party_paths():
    """{'LAKEFUSE_LAKEFS_BIN': ..., 'LAKEFUSE_LAKECTL_BIN': ..., 'LAKEFUSE_MOTO_SERVER': ...}: the
    environment wins, else what scripts/third-party.sh --print-env says (it does not build)."""
    out = subprocess.run([os.path.join(ROOT, "scripts", "third-party.sh"), "--print-env"], check=True,
                         capture_output=True, text=True).stdout
    paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for key in list(paths):
        paths[key] = os.environ.get(key) or paths[key]
    return paths


def ensure_built(kind="lakefs-local"):
    """Builds (first use on a machine: minutes, progress on stderr) or reuses what `kind` needs,
    through scripts/third-party.sh: lakeFS and lakectl, plus moto for lakefs-s3."""
    paths = third_party_paths()
    script = os.path.join(ROOT, "scripts", "third-party.sh")
    if not os.access(paths["LAKEFUSE_LAKEFS_BIN"], os.X_OK):
        subprocess.run([script, "lakefs"], check=True, stdout=sys.stderr)
    if kind == "lakefs-s3" and not os.access(paths["LAKEFUSE_MOTO_SERVER"], os.X_OK):
        subprocess.run([script, "s3"], check=True, stdout=sys.stderr)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(proc, timeout=15):
    """SIGTERM the process group of proc (started with start_new_session), then SIGKILL."""
    if proc is None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    if proc.poll() is None and pgid is not None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)  # stragglers in the group, if any
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


def wait_http(url, proc, log_path, ok=lambda r: r.status_code < 500, timeout=START_TIMEOUT):
    """Polls url until ok(response) (a real server prints no 'listening' line we can read)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            r = requests.get(url, timeout=2)
            if ok(r):
                return r
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s did not come up (exit %r); log: %s" % (url, proc.poll(), _tail(log_path)))


def _tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return ""


# --- the counting, fault-injecting proxy ---------------------------------------------------------------

class _CutConnection(Exception):
    pass


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lakefuse-test-proxy"
    timeout = 300
    # TCP_NODELAY on the client side, as the bundled server does (http.client sets it upstream): the
    # handler writes a response's headers and its body in separate sends, and with Nagle on the body
    # waited for the client's delayed ACK, 40-50 ms added to every request (63 ms an upload through
    # the proxy vs 13 ms straight to lakeFS, 2026-12-02), most of a real-lakeFS suite's time.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet; errors go to the proxy log
        pass

    def setup(self):
        super().setup()
        self.server.recorder.connection()
        self.upstreams = {}

    def finish(self):
        for conn in self.upstreams.values():
            conn.close()
        super().finish()

    def do_GET(self):
        self._dispatch()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # body helpers ------------------------------------------------------------------------------
    def _body_chunks(self):
        """The request body as raw pieces; for chunked bodies the raw chunked coding."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = self.rfile.readline(65537)
                yield line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        trailer = self.rfile.readline(65537)
                        yield trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return
                left = size + 2
                while left:
                    data = self.rfile.read(min(left, 1 << 16))
                    if not data:
                        raise ConnectionError("client closed mid-body")
                    left -= len(data)
                    yield data
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read(min(left, 1 << 16))
                if not data:
                    raise ConnectionError("client closed mid-body")
                left -= len(data)
                yield data

    def _drain(self):
        for _ in self._body_chunks():
            pass

    # dispatch -----------------------------------------------------------------------------------
    def _dispatch(self):
        srv = self.server
        method = self.command
        path = self.path.partition("?")[0]
        try:
            if path.startswith("/_test/"):
                body = b"".join(self._body_chunks())
                resp = srv.control.handle(method, path, _Body(body))
                self._send_simple(resp.status, resp.body, resp.content_type)
                return
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                route = srv.spec.match(method, path[len(API_PREFIX):])
                operation = route.operation_id if route else "unknown"
                upstream = srv.lakefs_addr
            elif srv.s3_addr and (path.split("/", 2) + [""])[1] in srv.buckets:
                operation = {"GET": "presignedGet", "HEAD": "presignedGet", "PUT": "presignedPut"}.get(
                    method, "unknown")
                upstream = srv.s3_addr
            else:
                operation, upstream = "unknown", srv.lakefs_addr
            srv.recorder.count(operation)
            srv.recorder.enter(operation)
            try:
                self._handle(method, operation, upstream)
            finally:
                srv.recorder.leave(operation)
        except (_CutConnection, ConnectionError, socket.timeout, http.client.HTTPException, OSError) as err:
            if not isinstance(err, _CutConnection):
                srv.log("proxy: %s %s: %r" % (method, self.path, err))
            self.close_connection = True

    def _handle(self, method, operation, upstream):
        query = urllib.parse.parse_qs(self.path.partition("?")[2], keep_blank_values=True)
        fault = self.server.faults.pick(operation, query)
        cut_after = None
        if fault:
            if fault.get("hold"):
                self.server.faults.hold(fault["hold"])
            if fault.get("latency_ms"):
                time.sleep(fault["latency_ms"] / 1000.0)
            if fault.get("status"):
                try:
                    self._drain()
                except (ConnectionError, ValueError):
                    self.close_connection = True
                body = json.dumps({"message": fault.get("message") or "injected fault"}).encode()
                self._send_simple(int(fault["status"]), body, "application/json", head=method == "HEAD")
                return
            if fault.get("cut_after_bytes") is not None:
                cut_after = int(fault["cut_after_bytes"])
        self._forward(method, upstream, cut_after, drop=bool(fault and fault.get("drop_response")))

    def _connection(self, upstream):
        conn = self.upstreams.get(upstream)
        if conn is not None and conn.sock is not None:
            # An idle kept-alive connection that is readable was closed by the server (idle
            # timeout, restart): do not send a request into it.
            if select.select([conn.sock], [], [], 0)[0]:
                conn.close()
                conn = None
        if conn is None:
            conn = http.client.HTTPConnection(upstream[0], upstream[1], timeout=300)
            self.upstreams[upstream] = conn
        return conn

    def _forward(self, method, upstream, cut_after, drop=False):
        for attempt in (0, 1):
            conn = self._connection(upstream)
            try:
                conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self.upstreams.pop(upstream, None)
                if attempt:
                    raise
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                conn.putheader(name, value)  # Host included: presigned signatures cover it
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for piece in self._body_chunks():
                conn.send(piece)
            resp = conn.getresponse()
        except (http.client.HTTPException, OSError):
            conn.close()
            self.upstreams.pop(upstream, None)
            raise
        if drop:  # fault drop_response: lakeFS applied the request; its answer is lost
            resp.read()
            conn.close()
            self.upstreams.pop(upstream, None)
            raise _CutConnection()
        self.send_response_only(resp.status, resp.reason)
        self.send_header("Date", self.date_time_string())
        up_chunked = resp.chunked
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "date":
                self.send_header(name, value)
        head = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        if up_chunked and not head:
            self.send_header("Transfer-Encoding", "chunked")
        if cut_after is not None or resp.will_close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            resp.read()
            if resp.will_close:
                conn.close()
                self.upstreams.pop(upstream, None)
            return
        sent = 0
        while True:
            data = resp.read1(1 << 16) if up_chunked else resp.read(1 << 16)
            if not data:
                break
            if cut_after is not None and sent + len(data) >= cut_after:
                data = data[:max(0, cut_after - sent)]
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if up_chunked else data)
                self.wfile.flush()
                conn.close()
                self.upstreams.pop(upstream, None)
                raise _CutConnection()
            sent += len(data)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if up_chunked else data)
        if up_chunked:
            self.wfile.write(b"0\r\n\r\n")
        if resp.will_close:
            conn.close()
            self.upstreams.pop(upstream, None)

    def _send_simple(self, status, body, content_type, head=False):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body or b"")))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and not head and status not in (204, 304):
            self.wfile.write(body)


class _Body:
    def __init__(self, data):
        self.data = data

    def read_all(self, limit):
        return self.data[:limit]


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class TestProxy:
    """Counts requests by operationId, injects faults, serves /_test/ like the bundled server.
    /api/v1 (and anything unknown) goes to lakefs_addr; /BUCKET/... to s3_addr.

    It runs in a process of its own (like the bundled server), never as a thread of the test
    process: a test that holds a descriptor on a mount and starts a subprocess makes Python's vfork
    child close it (close_range -> FUSE flush -> an upload through this proxy) while the parent is
    suspended in vfork; an in-process proxy did not answer (seen: the upload timed out and the
    test hung; most likely the suspended parent holds the GIL)."""

    def __init__(self, lakefs_addr, s3_addr=None, buckets=BUCKETS, log_path=None):
        self.lakefs_addr, self.s3_addr, self.buckets = lakefs_addr, s3_addr, tuple(buckets)
        self.log_path = log_path or os.devnull
        self.proc, self.port, self.url = None, None, None

    def start(self, port=0):
        args = [sys.executable, os.path.abspath(__file__), "proxy", "--port", str(port),
                "--lakefs", "%s:%d" % self.lakefs_addr, "--buckets", ",".join(self.buckets)]
        if self.s3_addr:
            args += ["--s3", "%s:%d" % self.s3_addr]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        line = read_line(self.proc.stdout.fileno(), time.monotonic() + START_TIMEOUT).decode(errors="replace")
        prefix = "test proxy listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError("test proxy did not start (%r): %s" % (line, _tail(self.log_path)))
        self.url = line[len(prefix):].strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self):
        if self.proc is not None:
            kill_group(self.proc)
            self.proc.stdout.close()
            self.proc = None


def serve_proxy(argv):
    """The proxy process: `realserver.py proxy --lakefs HOST:PORT [--s3 HOST:PORT] [--buckets A,B]
    [--port N]`; prints `test proxy listening on URL`, runs until SIGTERM."""
    import argparse
    ap = argparse.ArgumentParser(prog="realserver.py proxy")
    ap.add_argument("--lakefs", required=True)
    ap.add_argument("--s3")
    ap.add_argument("--buckets", default=",".join(BUCKETS))
    ap.add_argument("--port", type=int, default=0)
    opts = ap.parse_args(argv)

    def addr(text):
        host, port = text.rsplit(":", 1)
        return host, int(port)

    httpd = _ProxyServer(("127.0.0.1", opts.port), _ProxyHandler)
    httpd.spec = Spec(SWAGGER)
    httpd.recorder, httpd.faults = Recorder(), Faults()
    httpd.control = Control(httpd.faults, httpd.recorder)
    httpd.lakefs_addr = addr(opts.lakefs)
    httpd.s3_addr = addr(opts.s3) if opts.s3 else None
    httpd.buckets = frozenset(b for b in opts.buckets.split(",") if b)
    httpd.log = lambda line: (sys.stderr.write(line + "\n"), sys.stderr.flush())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown, daemon=True).start())
    sys.stdout.write("test proxy listening on http://127.0.0.1:%d\n" % httpd.server_address[1])
    sys.stdout.flush()
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


# --- servers -----------------------------------------------------------------------------------------

class MotoS3:
    """moto's S3 server on 127.0.0.1:PORT with BUCKETS created, its spooled object files under data_dir."""

    def __init__(self, data_dir, buckets=BUCKETS, access_key_id="lakefuse-s3-key", secret_access_key="lakefuse-s3-secret"):
        self.data_dir, self.buckets = data_dir, buckets
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key
        self.proc, self.port, self.url = None, None, None
        self.log_path = os.path.join(data_dir, "moto.log")

    def start(self):
        exe = third_party_paths()["LAKEFUSE_MOTO_SERVER"]
        if not os.access(exe, os.X_OK):
            raise RuntimeError("%s missing: run scripts/third-party.sh s3" % exe)
        tmp = os.path.join(self.data_dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        self.port = free_port()
        env = dict(os.environ, TMPDIR=tmp, AWS_ACCESS_KEY_ID=self.access_key_id,
                   AWS_SECRET_ACCESS_KEY=self.secret_access_key, AWS_DEFAULT_REGION="us-east-1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.url = "http://127.0.0.1:%d" % self.port
        try:
            wait_http(self.url + "/", self.proc, self.log_path)
            for bucket in self.buckets:
                r = requests.put("%s/%s" % (self.url, bucket), timeout=30)
                if r.status_code != 200:
                    raise RuntimeError("creating bucket %s: %d %s" % (bucket, r.status_code, r.text[:300]))
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        kill_group(self.proc)
        self.proc = None

    _DUMMY_AUTH = ("AWS4-HMAC-SHA256 Credential=lakefuse-s3-key/20260101/us-east-1/s3/aws4_request, "
                   "SignedHeaders=host, Signature=0")

    def delete_prefix(self, bucket, prefix):
        """Deletes every object under bucket/prefix (moto checks no signatures: plain requests)."""
        import xml.etree.ElementTree as ET
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        while True:
            r = requests.get("%s/%s" % (self.url, bucket), params={"list-type": "2", "prefix": prefix,
                                                                  "max-keys": "1000"}, timeout=120)
            if r.status_code != 200:
                return
            keys = [el.text for el in ET.fromstring(r.content).iter() if el.tag.endswith("}Key") or el.tag == "Key"]
            if not keys:
                return
            # DeleteObjects, up to 1,000 keys a request (5,000 single DELETEs took 20-30 s of teardown)
            body = ("<Delete><Quiet>true</Quiet>%s</Delete>" % "".join(
                "<Object><Key>%s</Key></Object>" % xml.sax.saxutils.escape(k) for k in keys)).encode()
            d = requests.post("%s/%s" % (self.url, bucket), params={"delete": ""}, data=body, timeout=120,
                              headers={"Authorization": self._DUMMY_AUTH, "Content-Type": "application/xml",
                                       "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()})
            if d.status_code != 200 or b"<Error>" in d.content:
                return


class RealLakeFS(ControlClient, ServerHelpers):
    """Real lakeFS behind a TestProxy, with the interface of lakefs_testlib.LakeFSServer that the
    tests use: url (the proxy), api_url, host, port, access_key_id, secret_access_key, data_dir,
    log_path, http, api(), create_repo(), upload(), commit(), the /_test/ calls, start(), stop(),
    restart(). blockstore: "local" or "s3". Options taken from the bundled server's command line:
    --no-presign, --presign-ttl SECONDS, --default-namespace-prefix PREFIX."""

    kind = "lakefs"

    def __init__(self, data_dir=None, blockstore="local", extra_args=(), validate=True,
                 access_key_id=DEFAULT_ACCESS_KEY_ID, secret_access_key=DEFAULT_SECRET_ACCESS_KEY, proxy=True,
                 **_ignored):
        self.blockstore = blockstore
        # proxy=False (the benchmarks): clients talk to lakeFS and the S3 server directly, with no
        # counting proxy in the way; no /_test/ interface then.
        self.use_proxy = proxy
        self._own_tmp = data_dir is None
        self.root = data_dir and str(data_dir)
        self.extra_args = list(extra_args)
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key
        self.proc = self.proxy = self.s3 = None
        self.url = self.api_url = self.host = self.port = None
        self.http = requests.Session()
        self.http.auth = (access_key_id, secret_access_key)
        self._control_http = None
        self._lakefs_port = None
        self._encrypt_key = "lakefuse-tests-" + uuid.uuid4().hex
        self.validate = validate

    # options --------------------------------------------------------------------------------------
    def _option(self, name, default=None):
        args = self.extra_args
        if name in args:
            i = args.index(name)
            return args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else True
        return default

    def _config(self, lakefs_port):
        d = self.data_dir
        cfg = {
            "listen_address": "127.0.0.1:%d" % lakefs_port,
            "logging": {"format": "text", "level": "INFO", "output": os.path.join(d, "lakefs.log"),
                        "audit_log_level": "NONE"},
            "database": {"type": "local", "local": {"path": os.path.join(d, "metadata")}},
            "auth": {"encrypt": {"secret_key": self._encrypt_key}},  # the same across restarts
            "installation": {"user_name": "admin", "access_key_id": self.access_key_id,
                             "secret_access_key": self.secret_access_key},
            "committed": {"local_cache": {"dir": os.path.join(d, "cache"), "size_bytes": 256 * 1024 * 1024},
                          "sstable": {"memory": {"cache_size_bytes": 64 * 1024 * 1024}}},
            "stats": {"enabled": False},
            "email_subscription": {"enabled": False},
            "security": {"check_latest_version": False, "audit_check_interval": "0s"},
            "ui": {"enabled": False},
            "usage_report": {"enabled": False},
            "actions": {"enabled": False},
        }
        prefix = self._option("--default-namespace-prefix")
        if self.blockstore == "local":
            cfg["blockstore"] = {"type": "local", "local": {"path": os.path.join(d, "blockstore")}}
        else:
            s3 = {"region": "us-east-1", "endpoint": self.s3.url, "force_path_style": True,
                  "discover_bucket_region": False,
                  "pre_signed_endpoint": self.proxy.url if self.proxy else self.s3.url,
                  "credentials": {"access_key_id": self.s3.access_key_id,
                                  "secret_access_key": self.s3.secret_access_key}}
            if self._option("--no-presign"):
                s3["disable_pre_signed"] = True
            ttl = self._option("--presign-ttl")
            if ttl not in (None, True):
                s3["pre_signed_expiry"] = "%ss" % ttl
            cfg["blockstore"] = {"type": "s3", "s3": s3}
        if prefix not in (None, True):
            cfg["blockstore"]["default_namespace_prefix"] = prefix
        return cfg

    def namespace(self, name):
        if self.blockstore == "local":
            return "local://" + name
        return "s3://%s/%s" % (BUCKET, name)

    # process --------------------------------------------------------------------------------------
    def start(self):
        if self.proc is not None:
            raise RuntimeError("lakeFS is already running")
        import yaml
        paths = third_party_paths()
        exe = paths["LAKEFUSE_LAKEFS_BIN"]
        if not os.access(exe, os.X_OK):
            raise RuntimeError("%s missing: run scripts/third-party.sh lakefs" % exe)
        if self.root is None:
            self.root = tempfile.mkdtemp(prefix="lakefuse-real-lakefs-")
        os.makedirs(self.root, exist_ok=True)
        self.data_dir = self.root
        self.log_path = os.path.join(self.root, "lakefs.log")
        try:
            if self.blockstore == "s3" and self.s3 is None:
                self.s3 = MotoS3(os.path.join(self.root, "s3")).start()
            if self._lakefs_port is None:  # a restart listens on the same port again
                self._lakefs_port = free_port()
            lakefs_port = self._lakefs_port
            if self.proxy is None and self.use_proxy:
                self.proxy = TestProxy(("127.0.0.1", lakefs_port), self.s3 and ("127.0.0.1", self.s3.port),
                                       log_path=os.path.join(self.root, "proxy.log")).start()
            cfg_path = os.path.join(self.root, "lakefs.yaml")
            with open(cfg_path, "w") as f:
                yaml.safe_dump(self._config(lakefs_port), f)
            with open(os.path.join(self.root, "lakefs.stderr"), "ab") as log:
                env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFS_", "AWS_"))}
                self.proc = subprocess.Popen([exe, "run", "--config", cfg_path], stdout=log, stderr=log,
                                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            direct = self._direct = "http://127.0.0.1:%d" % lakefs_port
            wait_http(direct + "/_health", self.proc, os.path.join(self.root, "lakefs.stderr"),
                      ok=lambda r: r.status_code in (200, 204))
            r = requests.get(direct + API_PREFIX + "/user", auth=(self.access_key_id, self.secret_access_key),
                             timeout=30)
            if r.status_code != 200:
                raise RuntimeError("lakeFS refuses the admin credentials: %d %s" % (r.status_code, r.text[:300]))
        except Exception:
            self.stop()
            raise
        self.url = self.proxy.url if self.proxy else self._direct
        self.api_url = self.url + API_PREFIX
        self.host, self.port = "127.0.0.1", self.proxy.port if self.proxy else lakefs_port
        return self

    def stop(self, keep_data=False):
        kill_group(self.proc)
        self.proc = None
        if not keep_data:
            if self.proxy is not None:
                self.proxy.stop()
                self.proxy = None
            if self.s3 is not None:
                self.s3.stop()
                self.s3 = None
            self.http.close()
            if self._control_http is not None:
                self._control_http.close()
                self._control_http = None
            if self.root and os.path.isdir(self.root):
                shutil.rmtree(self.root, ignore_errors=True)

    def restart(self):
        """Stops lakeFS and starts it again on its data (same proxy address, same S3 server)."""
        self.stop(keep_data=True)
        return self.start()

    def disk_usage(self):
        total = 0
        for dirpath, _, files in os.walk(self.root or "/nonexistent"):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512  # the KV's files are sparse
                except OSError:
                    pass
        return total

    # API ------------------------------------------------------------------------------------------
    def api(self, method, path, **kw):
        """An authenticated request to /api/v1 + path through the proxy. Deleting a repository also
        deletes its objects from the blockstore (lakeFS leaves them), so a session's disk use stays
        bounded by what its live repositories hold."""
        parts = path.split("?", 1)[0].strip("/").split("/")
        namespace = None
        if method.upper() == "DELETE" and len(parts) == 2 and parts[0] == "repositories":
            got = self.http.get(self._direct + API_PREFIX + path, timeout=60)  # not counted
            if got.status_code == 200:
                namespace = got.json().get("storage_namespace")
        resp = self.http.request(method, self.api_url + path, **kw)
        if namespace and resp.status_code == 204:
            self._purge(namespace)
        return resp

    def _purge(self, namespace):
        try:
            if namespace.startswith("local://") and self.blockstore == "local":
                base = os.path.realpath(os.path.join(self.data_dir, "blockstore"))
                target = os.path.realpath(os.path.join(base, namespace[len("local://"):].strip("/")))
                if target.startswith(base + os.sep):
                    shutil.rmtree(target, ignore_errors=True)
            elif namespace.startswith("s3://") and self.s3 is not None:
                self.s3.delete_prefix(*(namespace[len("s3://"):].split("/", 1) + [""])[:2])
        except (OSError, requests.RequestException) as err:
            sys.stderr.write("realserver: purging %s: %r\n" % (namespace, err))


class RealLakeFSLocal(RealLakeFS):
    kind = "lakefs-local"

    def __init__(self, data_dir=None, **kw):
        super().__init__(data_dir, blockstore="local", **kw)


class RealLakeFSS3(RealLakeFS):
    kind = "lakefs-s3"

    def __init__(self, data_dir=None, **kw):
        super().__init__(data_dir, blockstore="s3", **kw)


SERVERS = {"lakefs-local": RealLakeFSLocal, "lakefs-s3": RealLakeFSS3}


if __name__ == "__main__":
    if sys.argv[1:2] == ["proxy"]:
        serve_proxy(sys.argv[2:])
        sys.exit(0)
    # python3 tests/realserver.py lakefs-s3: start one, print its endpoint, wait for Ctrl-C.
    kind = sys.argv[1] if len(sys.argv) > 1 else "lakefs-local"
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    srv = SERVERS[kind]().start()
    print("%s on %s (access key %s)" % (kind, srv.url, srv.access_key_id), flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        srv.stop()
