"""Helpers for tests that need a lakeFS: LakeFSServer starts tests/lakefs_server/lakefs_server in a
data dir, waits for its 'listening' line (never sleeps), and wraps its /_test/ control API
(counts, faults, violations) plus an authenticated requests.Session. Never leaves a server running.
"""
import os
import select
import signal
import subprocess
import time
import uuid

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_PATH = os.path.join(HERE, "lakefs_server", "lakefs_server")
DEFAULT_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
DEFAULT_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
START_TIMEOUT = 30.0


def read_line(fd, deadline):
    """Bytes from fd up to and including the first newline, or what came before EOF or the
    deadline (time.monotonic()); never sleeps."""
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


class ControlClient:
    """The /_test/ interface (counts, faults, violations) as methods, for any server object with a
    `url` that serves it: the bundled server, or the proxy in front of real lakeFS."""

    def _control(self, method, name, **kw):
        # One kept-alive session, so control calls open no connections of
        # their own between a reset_counts() and connections().
        if getattr(self, "_control_http", None) is None:
            self._control_http = requests.Session()
        resp = self._control_http.request(method, self.url + "/_test/" + name, timeout=30, **kw)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def counts(self):
        """{operationId: number of requests} since the last reset_counts()."""
        return self._control("GET", "counts")["counts"]

    def max_in_flight(self):
        """{operation: most requests of it handled at once} since the last reset_counts()."""
        return self._control("GET", "counts")["max_in_flight"]

    def counts_total(self):
        return self._control("GET", "counts")["total"]

    def connections(self):
        """TCP connections accepted since the last reset_counts()."""
        return self._control("GET", "counts")["connections"]

    def reset_counts(self):
        self._control("DELETE", "counts")

    def add_fault(self, **fault):
        """operation (None: any), count or ratio (+seed), status/message, latency_ms, cut_after_bytes,
        drop_response, match (query parameters, e.g. {"prefix": "p/"}); on the bundled server also rewrite_url, trickle_ms, pad_bytes (control.KINDS)."""
        return self._control("POST", "faults", json=fault)["id"]

    def open_gate(self, name):
        """Lets the requests a fault with hold=name keeps waiting go on (and later ones through)."""
        self._control("POST", "gates/" + name)

    def faults(self):
        return self._control("GET", "faults")["faults"]

    def clear_faults(self):
        self._control("DELETE", "faults")

    def violations(self):
        return self._control("GET", "violations")["violations"]

    def clear_violations(self):
        self._control("DELETE", "violations")


class ServerHelpers:
    """What the tests do on any server, over its api() and namespace(): create_repo(), upload(),
    commit(), and use as a context manager (started on entry if it is not yet, stopped on exit).
    Shared by LakeFSServer and realserver.RealLakeFS."""

    def __enter__(self):
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        self.stop()

    def create_repo(self, name=None, default_branch="main"):
        name = name or "repo-" + uuid.uuid4().hex[:12]
        resp = self.api("POST", "/repositories", json={"name": name, "default_branch": default_branch,
                                                      "storage_namespace": self.namespace(name)})
        assert resp.status_code == 201, resp.text
        return name

    def upload(self, repo, branch, path, data, headers=None):
        resp = self.api("POST", "/repositories/%s/branches/%s/objects" % (repo, branch),
                        params={"path": path}, data=data, headers=headers)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def commit(self, repo, branch, message="commit", **extra):
        body = dict(extra, message=message)
        resp = self.api("POST", "/repositories/%s/branches/%s/commits" % (repo, branch), json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()


class LakeFSServer(ControlClient, ServerHelpers):
    """One lakefs_server process. Attributes: url, api_url, host, port, access_key_id,
    secret_access_key, data_dir, log_path, http (authenticated requests.Session)."""

    def __init__(self, data_dir, validate=True, extra_args=(), listen="127.0.0.1:0",
                 access_key_id=DEFAULT_ACCESS_KEY_ID, secret_access_key=DEFAULT_SECRET_ACCESS_KEY):
        self.data_dir = str(data_dir)
        self.validate, self.extra_args, self.listen = validate, list(extra_args), listen
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key
        self.log_path = self.data_dir.rstrip("/") + ".log"
        self.proc = None
        self.url = self.api_url = self.host = None
        self.port = None
        self.http = requests.Session()
        self.http.auth = (access_key_id, secret_access_key)

    # --- process ------------------------------------------------------------------------------------
    def start(self):
        if self.proc is not None:
            raise RuntimeError("lakefs_server is already running (pid %d)" % self.proc.pid)
        args = [SERVER_PATH, "--listen", self.listen, "--data-dir", self.data_dir,
                "--access-key-id", self.access_key_id, "--secret-access-key", self.secret_access_key]
        if self.validate:
            args.append("--validate")
        args += self.extra_args
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        line = read_line(self.proc.stdout.fileno(), time.monotonic() + START_TIMEOUT)
        line = line.decode(errors="replace").split("\n")[0]
        prefix = "lakefs_server listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError("lakefs_server did not start (%r); log: %s" % (line, self._log_tail()))
        self.url = line[len(prefix):].strip()
        hostport = self.url[len("http://"):]
        host, port = hostport.rsplit(":", 1)
        self.host, self.port = host.strip("[]"), int(port)
        self.api_url = self.url + "/api/v1"
        self.listen = "%s:%d" % (host, self.port)  # a restart binds the same port again
        return self

    def _log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc = None
        self.http.close()
        if getattr(self, "_control_http", None) is not None:
            self._control_http.close()
            self._control_http = None

    def restart(self):
        self.stop()
        return self.start()

    # --- API ----------------------------------------------------------------------------------------
    def api(self, method, path, **kw):
        """An authenticated request to /api/v1 + path (requests.Response)."""
        return self.http.request(method, self.api_url + path, **kw)

    def namespace(self, name):
        """A storage namespace this server accepts for repository name."""
        return "s3://lakefuse-tests/" + name
