"""Helpers for the SDK tests (Debian's python): where the virtualenv python with the official lakeFS
Python SDKs is, the environment both SDKs read, a run of the walkthrough, and SdkAgent, which keeps
tests/sdk/sdk_client.py serving single SDK calls so a test can interleave them with a mount. The SDK
code never runs in this python: it has neither lakefs_sdk nor lakefs.
"""
import json
import os
import subprocess
import time

from lakefs_testlib import read_line

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SDK_CLIENT = os.path.join(HERE, "sdk_client.py")
CALL_TIMEOUT = 120.0


def sdk_python_path():
    """The venv python with lakefs-sdk and lakefs: LAKEFUSE_SDK_PYTHON, else third-party.sh's path."""
    path = os.environ.get("LAKEFUSE_SDK_PYTHON")
    if not path:
        out = subprocess.run([os.path.join(ROOT, "scripts", "third-party.sh"), "--print-env"], check=True,
                             capture_output=True, text=True).stdout
        path = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)["LAKEFUSE_SDK_PYTHON"]
    return path


def sdk_env(server, home):
    """The environment both SDKs read (lakectl's variables), HOME in tmp so no ~/.lakectl.yaml counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKECTL_", "LAKEFS_"))}
    env.update(HOME=str(home), LAKECTL_SERVER_ENDPOINT_URL=server.api_url,
               LAKECTL_CREDENTIALS_ACCESS_KEY_ID=server.access_key_id,
               LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=server.secret_access_key)
    return env


def run_walkthrough(sdk_python, server, home, prefix):
    """Runs `sdk_client.py walkthrough PREFIX NAMESPACE_ROOT`; returns (exit status, its JSON, stderr)."""
    os.makedirs(str(home), exist_ok=True)
    proc = subprocess.run([sdk_python, SDK_CLIENT, "walkthrough", prefix, server.namespace("")],
                          capture_output=True, text=True, timeout=300, env=sdk_env(server, home),
                          stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr


class SdkError(Exception):
    def __init__(self, error):
        super().__init__("%s (%s): %s" % (error["class"], error["status"], error["message"]))
        self.cls, self.status = error["class"], error["status"]


class SdkAgent:
    """`sdk_client.py serve` under the venv python: call(op, **args) sends one request and returns
    its answer (raises SdkError for the SDK's exception). Stopped by closing its stdin."""

    def __init__(self, sdk_python, env, log_path):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen([sdk_python, SDK_CLIENT, "serve"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, env=env)

    def call(self, op, **args):
        self.proc.stdin.write((json.dumps(dict(args, op=op)) + "\n").encode())
        self.proc.stdin.flush()
        line = read_line(self.proc.stdout.fileno(), time.monotonic() + CALL_TIMEOUT)
        if not line.endswith(b"\n"):
            raise AssertionError("sdk_client.py serve gave no answer to %s (%r); stderr: %s"
                                 % (op, line, self.stderr()[-3000:]))
        answer = json.loads(line)
        if "error" in answer:
            raise SdkError(answer["error"])
        return answer["ok"]

    def stderr(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        self.proc.stdin.close()
        try:
            status = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        self.proc.stdout.close()
        return status
