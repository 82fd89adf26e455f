#!/usr/bin/python3
"""`make bench`: lakefuse against the other ways to mount lakeFS, on real lakeFS.

Starts real lakeFS v1.84.0 (scripts/third-party.sh) with its S3 blockstore on Versity's S3 gateway
(scripts/bench-peers.sh; no counting proxy in the way: clients talk to lakeFS and to the S3 server
directly), seeds one repository by importing objects written straight into the S3 bucket, and runs
each workload through:

  lakefuse   this project's daemon (build/lakefuse), default options
  lakefuse-async  the same with -o async_close (close returns before the upload; uploads in
             parallel): only on the small-file write workloads (ASYNC_WORKLOADS), waited for
             until lakeFS has the files like a peer that uploads after close
  rclone     `rclone mount` on lakeFS's S3 gateway (Debian's rclone), settings in PEERS below
  s3fs       s3fs-fuse on lakeFS's S3 gateway (Debian's s3fs), settings in PEERS below
  limit      no file system: one HTTP client (curl with --parallel on keep-alive connections, or
             this script's own keep-alive connections) doing the same transfers lakefuse makes:
             flat paginated listings, GETs of the same presigned URLs, presigned PUTs, uploads and
             deleteObjects through the API

Peers that do not install from this machine's registries are reported, not run (results.md says why).

Rounds are interleaved (round 1: every system on every workload, then round 2, ...) so that noise
hits all alike; each figure is the median over rounds. For each run it records seconds, lakeFS
API + S3-gateway requests (lakeFS's own Prometheus counters, also per operation: statObject), the
daemon's CPU seconds and its peak RSS (VmHWM). Results: docs/bench/results.md (the table with the
ratios to the limit and to the best peer, then issue 13's targets with met / NOT met: bench/summary.py),
results.json and results.png (gnuplot).

Every run starts with the kernel's page cache dropped (the limit's too): each system reads what
lakeFS and the S3 store hold from disk, as a first read after a remount does.

Write workloads end when lakeFS has the data (a peer that uploads after close, like rclone's
write-back cache, is waited for), so every system is timed to the same point of safety.

Bounds: a run longer than --timeout seconds (RUN_TIMEOUT per scale) is stopped, its mount killed,
and recorded as "timed out after N s" (not run again); peers take part in the first --peer-rounds
rounds only (PEER_ROUNDS per scale). README "Performance" gives what each scale costs here.

    bench/bench.py [--scale medium|small|full] [--rounds N] [--peer-rounds N] [--timeout S]
                   [--systems a,b] [--workloads w1,w2] [--out docs/bench]
    bench/bench.py --from-json docs/bench/results.json --out DIR     (re-render saved runs)

Everything runs under one temporary directory (BENCH_TMPDIR or TMPDIR), deleted on every exit
(error, Ctrl-C, SIGTERM) after its mounts and servers are stopped; disk use peaks at about three
times the large object's size (the seed, stored once; a write run's cached and uploaded copies).
"""
import argparse
import concurrent.futures
import datetime
import hashlib
import http.client
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from realserver import BUCKET, RealLakeFSS3, free_port, kill_group, wait_http  # noqa: E402

sys.path.insert(0, HERE)
import summary  # noqa: E402

LAKEFUSE = os.environ.get("LAKEFUSE_BIN", os.path.join(ROOT, "build", "lakefuse"))
REPO = "bench"
MiB = 1 << 20
GiB = 1 << 30

SCALES = {
    # the sizes
    "full": dict(tree_dirs=100, tree_files=100, big_dir=100_000, small=2000, large=GiB,
                 rand_ios=2000, write_small=2000, untar=20_000, creates=10_000),
    # about 20 minutes here (README "Performance"): the tree, a tenth of the rest
    "medium": dict(tree_dirs=100, tree_files=100, big_dir=10_000, small=1000, large=256 * MiB,
                   rand_ios=1000, write_small=500, untar=800, creates=1000),
    "small": dict(tree_dirs=10, tree_files=20, big_dir=1000, small=100, large=32 * MiB,
                  rand_ios=100, write_small=100, untar=300, creates=100),
}
SMALL_SIZE = 4096
TREE_SIZE = 512
RAND_JOBS = 4
LIMIT_PARALLEL = 8  # lakefuse may have up to this many requests in flight for small files
# Bounds that let a run finish whatever a peer does: seconds one run (one system, one workload,
# mounting and preparation included) may take before it is stopped and recorded as "timed out after
# N s" (and not run again), and how many of the rounds the peers take part in (None: all).
RUN_TIMEOUT = {"small": 300, "medium": 600, "full": 1200}
PEER_ROUNDS = {"small": None, "medium": 1, "full": 1}
# workloads that do their work twice in a run (a warm-up walk or read, or the untar before `rm -rf`)
TIMEOUT_PHASES = {"w1-find-warm": 2, "w3-seq-remount": 2, "w6-rm": 2}
# the bound is for slow peers: lakefuse and the limit get three times as long, only so that a hang
# cannot stop the benchmark (their figures are what it is for)
TIMEOUT_SYSTEM = {"lakefuse": 3, "lakefuse-async": 3, "limit": 3}
# lakefuse's own ways of running: the mount options each adds
LAKEFUSE_SYSTEMS = {"lakefuse": [], "lakefuse-async": ["async_close"]}
# lakefuse-async runs only where close-time uploads are the cost (elsewhere it is lakefuse)
ASYNC_WORKLOADS = ("w5-write-small", "w6-untar", "w7-creates")

WORKLOADS = [
    ("w1-find-cold", "find + stat (-printf size, mode, mtime) of the tree (tree_dirs x tree_files objects), cold"),
    ("w1-find-warm", "find + stat, same tree, warm"),
    ("w1-ls-big", "ls -l of one directory of big_dir objects, cold"),
    ("w2-cat-small", "cat of distinct 4 KiB files, cold"),
    ("w3-seq-cold", "sequential read of the large object, cold"),
    ("w3-seq-remount", "the same read after a remount, data cache kept"),
    ("w4-rand", "fio random 4 KiB reads, 4 jobs, on the large object"),
    ("w5-write-large", "write the large file and close it (until lakeFS has it)"),
    ("w5-write-small", "small files written, then committed"),
    ("w6-untar", "untar a source tree (until lakeFS has it)"),
    ("w6-rm", "rm -rf of that tree"),
    ("w7-creates", "creates into a directory already holding big_dir entries"),
]

# Peer settings, from each peer's documentation for these workloads (bench/PEERS.md says why).
PEERS = {
    # --vfs-write-back 0s: upload at close rather than after 5 s idle (the default), since the write
    # workloads are timed until lakeFS has the data
    "rclone": ["--vfs-cache-mode", "full", "--vfs-cache-max-size", "8G", "--dir-cache-time", "5m", "--vfs-write-back", "0s",
               "--s3-no-check-bucket", "--transfers", "8", "--vfs-read-chunk-size", "16M"],
    "s3fs": ["-o", "use_path_request_style", "-o", "endpoint=us-east-1", "-o", "parallel_count=8",
             "-o", "multipart_size=16", "-o", "max_stat_cache_size=200000", "-o", "stat_cache_expire=300",
             "-o", "enable_noobj_cache"],
}


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# ---- the server -------------------------------------------------------------------------------

def bench_paths():
    out = subprocess.run([os.path.join(ROOT, "scripts", "bench-peers.sh"), "--print-env"], capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.split())


class VersityS3:
    """The S3 store behind lakeFS in the benchmark: Versity's S3 gateway (versitygw, Go module proxy) on
    a POSIX directory. moto (the tests' store) reads a whole object for every ranged GET, which would
    make the benchmark measure moto; versitygw serves ranges from the file."""

    access_key_id, secret_access_key = "lakefuse-s3-key", "lakefuse-s3-secret"
    _DUMMY_AUTH = None

    def __init__(self, data_dir):
        self.root = os.path.join(data_dir, "gw")
        os.makedirs(os.path.join(self.root, BUCKET), exist_ok=True)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(data_dir, "versitygw.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOT_", "VGW_"))}
        env.update(ROOT_ACCESS_KEY_ID=self.access_key_id, ROOT_SECRET_ACCESS_KEY=self.secret_access_key)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([bench_paths()["BENCH_VERSITYGW"], "--port", "127.0.0.1:%d" % self.port,
                                          "--keep-alive", "posix", self.root], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        wait_http(self.url + "/", self.proc, self.log_path, ok=lambda r: r.status_code in (200, 403))

    def path(self, key):
        return os.path.join(self.root, BUCKET, key)

    def put(self, key, data):
        """Seeding writes the files versitygw serves directly (it maps keys to paths)."""
        path = self.path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(data, (bytes, bytearray)):
            with open(path, "wb") as f:
                f.write(data)
        else:
            shutil.copyfile(data, path)

    def delete_prefix(self, bucket, prefix):
        shutil.rmtree(os.path.join(self.root, bucket, prefix), ignore_errors=True)

    def stop(self):
        kill_group(self.proc)
        self.proc = None

class Server:
    def __init__(self, root):
        os.makedirs(root, exist_ok=True)
        self.lakefs = RealLakeFSS3(os.path.join(root, "lakefs"), proxy=False)
        self.s3 = self.lakefs.s3 = VersityS3(root)
        self.lakefs.start()
        self.url = self.lakefs.url
        self.auth = (self.lakefs.access_key_id, self.lakefs.secret_access_key)
        self.http = requests.Session()
        self.http.auth = self.auth
        self.api_url = self.url + "/api/v1"
        self.own = 0  # API requests this script makes (polling for uploads): not the system's
        self.own_ops = {}  # the same by operation (lakeFS's operationId), subtracted from the counters

    def count_own(self, op):
        self.own += 1
        self.own_ops[op] = self.own_ops.get(op, 0) + 1

    def api(self, method, path, ok=(200, 201, 204), own=True, op="other", **kw):
        """own=False: a request the limit makes as its workload (counted as the limit's); op: its
        lakeFS operationId, for the per-operation counts."""
        if own:
            self.count_own(op)
        r = self.http.request(method, self.api_url + path, timeout=600, **kw)
        if r.status_code not in ok:
            raise RuntimeError("%s %s: %d %s" % (method, path, r.status_code, r.text[:300]))
        return r

    def requests_total(self):
        """lakeFS's own counters, API operations plus S3-gateway requests, less this script's own."""
        return self.requests_snapshot()[0]

    def requests_snapshot(self):
        """(total as requests_total, {operation: count}) from lakeFS's Prometheus counters: the
        `operation` label of api_request_duration_seconds (the API's operationId, e.g. statObject)
        and of gateway_request_duration_seconds (prefixed `gateway:`)."""
        text = requests.get(self.url + "/metrics", timeout=60).text
        total, ops = -self.own, {}
        for line in text.splitlines():
            for metric, prefix in (("api_request_duration_seconds_count", ""),
                                   ("gateway_request_duration_seconds_count", "gateway:")):
                if line.startswith(metric):
                    n = int(float(line.rsplit(" ", 1)[1]))
                    total += n
                    op = re.search(r'operation="([^"]*)"', line)
                    key = prefix + (op.group(1) if op else "?")
                    ops[key] = ops.get(key, 0) + n
        for key, n in self.own_ops.items():
            ops[key] = ops.get(key, 0) - n
        return total, ops

    def s3_put(self, key, data):
        self.s3.put(key, data)

    def stop(self):
        self.http.close()
        self.lakefs.stop()
        self.s3.stop()

    # ---- objects ----
    def list_flat(self, ref, prefix, presign=False, session=None):
        """Every object under prefix (no delimiter), 1,000 a page."""
        s = session or self.http
        out, after = [], ""
        while True:
            if session is None:
                self.count_own("ListObjects")
            r = s.get(self.api_url + "/repositories/%s/refs/%s/objects/ls" % (REPO, ref),
                      params={"prefix": prefix, "after": after, "amount": 1000,
                              "presign": "true" if presign else "false"}, timeout=600)
            r.raise_for_status()
            body = r.json()
            out += body["results"]
            if not body["pagination"]["has_more"]:
                return out
            after = body["pagination"]["next_offset"]

    def count(self, ref, prefix):
        """Objects under prefix, directory markers (`dir/`) not counted."""
        return sum(1 for o in self.list_flat(ref, prefix) if not o["path"].endswith("/"))

    def branch(self, name):
        self.api("DELETE", "/repositories/%s/branches/%s" % (REPO, name), ok=(204, 404), op="DeleteBranch")
        self.api("POST", "/repositories/%s/branches" % REPO, json={"name": name, "source": "main"}, op="CreateBranch")

    def drop_branch(self, name):
        self.api("DELETE", "/repositories/%s/branches/%s" % (REPO, name), ok=(204, 404), op="DeleteBranch")
        # What the run wrote: lakeFS leaves objects of a deleted branch to garbage collection; the
        # seed lives outside the namespace (imported), so all of data/ is this run's.
        self.s3.delete_prefix(BUCKET, "%s/data" % REPO)


def seed(server, sc, tmp):
    """Objects written straight into the bucket under seed/, then imported into main in one commit."""
    log("seeding: %d tree objects, %d in one directory, %d small files, one %d MiB object" % (
        sc["tree_dirs"] * sc["tree_files"], sc["big_dir"], sc["small"], sc["large"] // MiB))
    t0 = time.monotonic()
    jobs = []
    for d in range(sc["tree_dirs"]):
        for f in range(sc["tree_files"]):
            jobs.append(("seed/tree/d%03d/f%04d.dat" % (d, f), TREE_SIZE))
    for f in range(sc["big_dir"]):
        jobs.append(("seed/big/f%06d" % f, 0))
    for f in range(sc["small"]):
        jobs.append(("seed/small/s%05d.bin" % f, SMALL_SIZE))
    rnd = random.Random(1)
    payload = {n: rnd.randbytes(n) for n in (0, TREE_SIZE, SMALL_SIZE)}
    pool = concurrent.futures.ThreadPoolExecutor(8)
    try:
        list(pool.map(lambda j: server.s3_put(j[0], payload[j[1]]), jobs))
    finally:  # Ctrl-C / SIGTERM: do not finish the queue first
        pool.shutdown(wait=True, cancel_futures=True)
    # the large object is written once, where versitygw serves it from, and is also the write
    # workloads' source file (read only): one copy on disk
    large = server.s3.path("seed/large/large.bin")
    os.makedirs(os.path.dirname(large), exist_ok=True)
    with open(large, "wb") as f:
        left = sc["large"]
        while left:
            n = min(left, 8 * MiB)
            f.write(rnd.randbytes(n))
            left -= n
    server.api("POST", "/repositories", json={"name": REPO, "default_branch": "main",
                                               "storage_namespace": "s3://%s/%s" % (BUCKET, REPO)},
               op="CreateRepository")
    paths = [{"path": "s3://%s/seed/%s/" % (BUCKET, p), "destination": "%s/" % p, "type": "common_prefix"}
             for p in ("tree", "big", "small", "large")]
    r = server.api("POST", "/repositories/%s/branches/main/import" % REPO,
                   json={"paths": paths, "commit": {"message": "seed"}}, ok=(202,), op="ImportStart")
    imp = r.json()["id"]
    while True:
        st = server.api("GET", "/repositories/%s/branches/main/import" % REPO, params={"id": imp},
                        op="ImportStatus").json()
        if st.get("error"):
            raise RuntimeError("import failed: %s" % st["error"])
        if st["completed"]:
            break
        time.sleep(0.5)  # polling the server's own job; not a test synchronisation
    log("seeded in %.1fs" % (time.monotonic() - t0))
    return large


# ---- systems ----------------------------------------------------------------------------------

def proc_stats(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        with open("/proc/%d/status" % pid) as f:
            hwm = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024
        return cpu, hwm
    except (OSError, AttributeError):
        return None, None


def mount_points():
    with open("/proc/self/mountinfo") as f:
        return [line.split(" ")[4] for line in f]


def is_mounted(path):
    return path in mount_points()


# Every file system this script has mounted and not yet unmounted: the per-run watchdog kills them
# when a run exceeds its time, and main() kills what is left on any exit (error, Ctrl-C, SIGTERM).
LIVE_MOUNTS = set()
# Set by the watchdog when the current run is over its time: waits give up, the run is a timeout.
ABORT = threading.Event()


class RunTimeout(Exception):
    pass


def check_abort():
    if ABORT.is_set():
        raise RunTimeout("run stopped at its time limit")


def unmount_all(under=None):
    """Kills every live mount, then lazily unmounts whatever is still mounted below `under`."""
    for m in list(LIVE_MOUNTS):
        m.kill()
    if under:
        for mp in mount_points():
            if mp.startswith(under.rstrip("/") + "/"):
                subprocess.run(["fusermount3", "-uz", mp], capture_output=True)


class Mounted:
    """A file system mounted in the foreground as a child process."""

    def __init__(self, system, server, work, branch, cache):
        self.system, self.server, self.branch, self.cache = system, server, branch, cache
        self.path = os.path.join(work, "mnt")
        os.makedirs(self.path, exist_ok=True)
        os.makedirs(cache, exist_ok=True)
        # the machine's AWS_CA_BUNDLE makes rclone's S3 client refuse its own transport; all is http here
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAKECTL_", "RCLONE_"))}
        ak, sk = server.auth
        self.log_path = os.path.join(work, "%s.log" % system)
        logf = open(self.log_path, "ab")
        if system in LAKEFUSE_SYSTEMS:
            env.update(LAKECTL_SERVER_ENDPOINT_URL=server.url, LAKECTL_CREDENTIALS_ACCESS_KEY_ID=ak,
                       LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=sk)
            opts = ",".join(["cache_dir=%s" % cache] + LAKEFUSE_SYSTEMS[system])
            args = [LAKEFUSE, "mount", "-f", "-o", opts, "lakefs://%s/%s" % (REPO, branch), self.path]
        elif system == "rclone":
            env.update(RCLONE_CONFIG_LFS_TYPE="s3", RCLONE_CONFIG_LFS_PROVIDER="Other",
                       RCLONE_CONFIG_LFS_ENDPOINT=server.url, RCLONE_CONFIG_LFS_ACCESS_KEY_ID=ak,
                       RCLONE_CONFIG_LFS_SECRET_ACCESS_KEY=sk, RCLONE_CONFIG_LFS_FORCE_PATH_STYLE="true",
                       RCLONE_CONFIG_LFS_REGION="us-east-1")
            args = ["rclone", "mount", "lfs:%s/%s" % (REPO, branch), self.path, "--cache-dir", cache] + PEERS["rclone"]
        elif system == "s3fs":
            pw = os.path.join(work, "s3fs.passwd")
            with open(pw, "w") as f:
                f.write("%s:%s\n" % (ak, sk))
            os.chmod(pw, 0o600)
            args = ["s3fs", "%s:/%s" % (REPO, branch), self.path, "-f", "-o", "url=%s" % server.url,
                    "-o", "passwd_file=%s" % pw, "-o", "use_cache=%s" % cache] + PEERS["s3fs"]
        else:
            raise ValueError(system)
        self.proc = subprocess.Popen(args, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        LIVE_MOUNTS.add(self)
        logf.close()
        deadline = time.monotonic() + 60
        while not is_mounted(self.path):
            if self.proc.poll() is not None or time.monotonic() > deadline or ABORT.is_set():
                self.kill()
                with open(self.log_path, "rb") as f:
                    tail = f.read()[-600:].decode(errors="replace")
                raise RuntimeError("%s did not mount: %s" % (system, tail))
            time.sleep(0.05)
        # s3fs answers its first requests before it has read the bucket; wait for a listing
        while True:
            try:
                os.listdir(self.path)
                break
            except OSError:
                if time.monotonic() > deadline or ABORT.is_set():
                    self.kill()
                    raise
                time.sleep(0.05)

    def stats(self):
        return proc_stats(self.proc.pid)

    def unmount(self):
        subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self):
        """Stops the daemon (if still running) and detaches the mount point, whatever state it is in."""
        kill_group(self.proc, timeout=5)
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)
        LIVE_MOUNTS.discard(self)


def drop_page_cache():
    # written back first: drop_caches keeps dirty pages (a seed or upload written seconds before
    # would stay cached and be read at memory speed)
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


# ---- workloads through a file system -----------------------------------------------------------

def wait_server(server, branch, prefix, want, deadline=1800):
    """Until lakeFS lists `want` objects under prefix (uploads after close: rclone)."""
    end = time.monotonic() + deadline
    while server.count(branch, prefix) != want:
        check_abort()
        if time.monotonic() > end:
            raise RuntimeError("lakeFS never got %d objects under %s" % (want, prefix))
        time.sleep(0.2)


def wait_size(server, branch, path, size, deadline=1800):
    end = time.monotonic() + deadline
    while True:
        server.count_own("StatObject")
        r = server.http.get(server.api_url + "/repositories/%s/refs/%s/objects/stat" % (REPO, branch),
                            params={"path": path}, timeout=60)
        if r.status_code == 200 and r.json()["size_bytes"] == size:
            return
        check_abort()
        if time.monotonic() > end:
            raise RuntimeError("lakeFS never got %s" % path)
        time.sleep(0.2)


def tool(args):
    """A program a user would run on the mount; its output discarded, the tail of its errors kept."""
    r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (args[0], r.returncode, r.stderr.decode(errors="replace")[-300:]))


def walk_stat(root, want):
    """GNU find printing each entry's type, size, mode and mtime: an lstat of every entry, in find's
    order (each subdirectory entered when find reaches it). `want` entries below root, or the run
    fails: a system that lists less is not faster."""
    r = subprocess.run(["find", root, "-printf", "%y %s %m %T@\n"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    n = r.stdout.count(b"\n") - 1  # root itself
    if r.returncode != 0 or n != want:
        raise RuntimeError("find: exit %d, %d entries under %s, not %d: %s" % (
            r.returncode, n, root, want, r.stderr.decode(errors="replace")[-300:]))
    return n


def read_file(path, bs=MiB):
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(bs)
            if not b:
                return n
            n += len(b)


def make_tree_tar(tmp, files):
    """A synthetic source tree: nested directories of small text files (0.5-8 KiB)."""
    path = os.path.join(tmp, "tree.tar")
    if os.path.exists(path):
        return path
    rnd = random.Random(7)
    with tarfile.open(path, "w") as tar:
        for i in range(files):
            name = "src/m%02d/p%02d/file%05d.c" % (i % 20, (i // 20) % 25, i)
            data = (b"int f%d(void) { return %d; }\n" % (i, i)) * rnd.randint(16, 256)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def op_counts(server, before=None):
    """lakeFS requests since `before` (a requests_snapshot): calls, statObject calls, per operation."""
    total, ops = server.requests_snapshot()
    if before is None:
        return total, ops
    delta = {k: v - before[1].get(k, 0) for k, v in ops.items() if v != before[1].get(k, 0)}
    return dict(calls=total - before[0], stat_object=sum(v for k, v in delta.items() if k.lower() == "statobject"),
                ops=delta)


def measured(server, m, fn):
    """Runs fn() on mount m: seconds, lakeFS requests (statObject and per operation too), the daemon's
    CPU seconds (since it started) and peak RSS."""
    before = op_counts(server)
    t0 = time.monotonic()
    fn()
    secs = time.monotonic() - t0
    out = op_counts(server, before)
    check_abort()  # killed by the watchdog: fn may have seen only errors
    cpu, rss = m.stats()
    out.update(seconds=secs, cpu=cpu, rss=rss)
    return out


def tree_entries(sc):
    """What a walk of tree/ finds below it: its directories and their files."""
    return sc["tree_dirs"] * (sc["tree_files"] + 1)


def w7_empty_creates(sc):
    """Workload 7's second half, creates into an empty directory: a tenth of the first's, at least 100."""
    return min(sc["creates"], max(100, sc["creates"] // 10))


class FsRunner:
    def __init__(self, system, server, sc, tmp, large_src):
        self.system, self.server, self.sc, self.tmp, self.large_src = system, server, sc, tmp, large_src

    def _run(self, wl, branch, body, write=False, cache=None, remount_first=False):
        work = tempfile.mkdtemp(prefix="%s-" % self.system, dir=self.tmp)
        cache = cache or os.path.join(work, "cache")
        try:
            if write:
                self.server.branch(branch)
            if remount_first:
                m = Mounted(self.system, self.server, work, branch, cache)
                body(m, warmup=True)
                m.unmount()
            drop_page_cache()
            m = Mounted(self.system, self.server, work, branch, cache)
            try:
                return measured(self.server, m, lambda: body(m))
            finally:
                m.unmount()
        finally:
            if write:
                self.server.drop_branch(branch)
            shutil.rmtree(work, ignore_errors=True)

    def run(self, wl, rnd):
        sc, srv = self.sc, self.server
        branch = "b-%s-%s-%d" % (self.system, wl.replace("w", ""), rnd)
        ro = "main"
        if wl == "w1-find-cold":
            return self._run(wl, ro, lambda m, warmup=False: walk_stat(os.path.join(m.path, "tree"),
                                                                        tree_entries(sc)))
        if wl == "w1-find-warm":
            # warm: one walk first in the same mount, then the timed one
            work = tempfile.mkdtemp(prefix="%s-" % self.system, dir=self.tmp)
            try:
                m = Mounted(self.system, srv, work, ro, os.path.join(work, "cache"))
                try:
                    tree = os.path.join(m.path, "tree")
                    walk_stat(tree, tree_entries(sc))
                    return measured(srv, m, lambda: walk_stat(tree, tree_entries(sc)))
                finally:
                    m.unmount()
            finally:
                shutil.rmtree(work, ignore_errors=True)
        if wl == "w1-ls-big":
            def body(m, warmup=False):
                tool(["ls", "-l", os.path.join(m.path, "big")])
            return self._run(wl, ro, body)
        if wl == "w2-cat-small":
            def body(m, warmup=False):
                d = os.path.join(m.path, "small")
                names = sorted(os.listdir(d))
                tool(["cat"] + [os.path.join(d, n) for n in names])
            return self._run(wl, ro, body)
        if wl in ("w3-seq-cold", "w3-seq-remount"):
            def body(m, warmup=False):
                read_file(os.path.join(m.path, "large", "large.bin"))
            return self._run(wl, ro, body, remount_first=(wl == "w3-seq-remount"))
        if wl == "w4-rand":
            def body(m, warmup=False):
                tool(["fio", "--name=rand", "--filename=%s" % os.path.join(m.path, "large", "large.bin"),
                      "--rw=randread", "--bs=4k", "--numjobs=%d" % RAND_JOBS, "--ioengine=psync",
                      "--io_size=%d" % (sc["rand_ios"] * 4096), "--size=%d" % sc["large"],
                      "--readonly", "--invalidate=0", "--group_reporting", "--randrepeat=1"])
            return self._run(wl, ro, body)
        if wl == "w5-write-large":
            def body(m, warmup=False):
                shutil.copyfile(self.large_src, os.path.join(m.path, "out.bin"))
                wait_size(srv, branch, "out.bin", sc["large"])
            return self._run(wl, branch, body, write=True)
        if wl == "w5-write-small":
            def body(m, warmup=False):
                d = os.path.join(m.path, "new")
                os.mkdir(d)
                data = os.urandom(SMALL_SIZE)
                for i in range(sc["write_small"]):
                    with open(os.path.join(d, "n%05d.bin" % i), "wb") as f:
                        f.write(data)
                commit(self.system, srv, m, branch, "new/", sc["write_small"])
            return self._run(wl, branch, body, write=True)
        if wl in ("w6-untar", "w6-rm"):
            tar = make_tree_tar(self.tmp, sc["untar"])

            def untar(m):
                tool(["tar", "-xf", tar, "-C", m.path])
                wait_server(srv, branch, "src/", sc["untar"])

            if wl == "w6-untar":
                return self._run(wl, branch, lambda m, warmup=False: untar(m), write=True)
            # rm: untar in a first mount, then time rm -rf in a fresh one (same branch)
            work = tempfile.mkdtemp(prefix="%s-" % self.system, dir=self.tmp)
            try:
                srv.branch(branch)
                m = Mounted(self.system, srv, work, branch, os.path.join(work, "cache"))
                untar(m)
                m.unmount()
                m = Mounted(self.system, srv, work, branch, os.path.join(work, "cache2"))
                def rm():
                    tool(["rm", "-rf", os.path.join(m.path, "src")])
                    wait_server(srv, branch, "src/", 0)
                try:
                    return measured(srv, m, rm)
                finally:
                    m.unmount()
            finally:
                srv.drop_branch(branch)
                shutil.rmtree(work, ignore_errors=True)
        if wl == "w7-creates":
            # creates into the big directory (listed first), then into an empty one, in the same mount:
            # per-create seconds and requests of both, so that growth with the directory shows
            n_empty = w7_empty_creates(sc)

            def creates(m, d, prefix, n):
                for i in range(n):
                    check_abort()
                    os.close(os.open(os.path.join(m.path, d, "new%06d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
                wait_server(srv, branch, prefix, n)

            work = tempfile.mkdtemp(prefix="%s-" % self.system, dir=self.tmp)
            try:
                srv.branch(branch)
                m = Mounted(self.system, srv, work, branch, os.path.join(work, "cache"))
                try:
                    os.listdir(os.path.join(m.path, "big"))
                    cpu0 = m.stats()[0]
                    r = measured(srv, m, lambda: creates(m, "big", "big/new", sc["creates"]))
                    os.mkdir(os.path.join(m.path, "empty"))
                    os.listdir(os.path.join(m.path, "empty"))
                    cpu1 = m.stats()[0]
                    e = measured(srv, m, lambda: creates(m, "empty", "empty/", n_empty))
                    r.update(big_n=sc["creates"], small_n=n_empty, small_seconds=e["seconds"],
                             small_calls=e["calls"], big_cpu=cpu1 - cpu0, small_cpu=e["cpu"] - cpu1,
                             small_ops=e["ops"])
                    return r
                finally:
                    m.unmount()
            finally:
                srv.drop_branch(branch)
                shutil.rmtree(work, ignore_errors=True)
        raise ValueError(wl)


def commit(system, server, m, branch, prefix, want):
    """lakefuse commits through its control file (which first finishes its uploads, queued ones
    too); a peer cannot commit, so the benchmark waits until lakeFS has its files and commits
    through the API."""
    if system in LAKEFUSE_SYSTEMS:
        with open(os.path.join(m.path, ".lakefs", "commit"), "w") as f:
            f.write("bench")
        return
    wait_server(server, branch, prefix, want)
    server.api("POST", "/repositories/%s/branches/%s/commits" % (REPO, branch), json={"message": "bench"},
               op="Commit")


# ---- the limit ------------------------------------------------------------------------------------

def curl_parallel(urls, parallel, method=None, data_files=None, headers=()):
    """One curl process, keep-alive connections, up to `parallel` transfers at once."""
    cfg = []
    for i, url in enumerate(urls):
        cfg.append('url = "%s"' % url.replace('"', '\\"'))
        cfg.append('output = "/dev/null"')
        if data_files:
            cfg.append('upload-file = "%s"' % data_files[i])
        if method:
            cfg.append('request = "%s"' % method)
        for h in headers:
            cfg.append('header = "%s"' % h)
        cfg.append("next")
    if cfg:
        cfg.pop()
    r = subprocess.run(["curl", "-sS", "--fail", "--parallel", "--parallel-immediate", "--parallel-max", str(parallel),
                        "-K", "-"],
                       input="\n".join(cfg).encode(), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("curl: %s" % r.stderr.decode()[-500:])


class LimitRunner:
    system = "limit"

    def __init__(self, server, sc, tmp, large_src):
        self.server, self.sc, self.tmp, self.large_src = server, sc, tmp, large_src

    def _auth_header(self):
        import base64
        return "Authorization: Basic " + base64.b64encode(("%s:%s" % self.server.auth).encode()).decode()

    def run(self, wl, rnd):
        srv, sc = self.server, self.sc
        branch = "b-limit-%s-%d" % (wl.replace("w", ""), rnd)
        write = wl.startswith(("w5", "w6", "w7"))
        if write:
            srv.branch(branch)
        try:
            prep = None
            if wl == "w6-rm":
                prep = self._upload_tree(branch, sc["untar"])
            # the same start as a file system's run (FsRunner._run): nothing in the page cache, so
            # the limit reads what lakeFS and the S3 store hold from disk as a mount's first read does
            drop_page_cache()
            out = self._timed(lambda: self._body(wl, branch, prep))
            if wl == "w7-creates":  # the second half: the same creates into an empty directory
                n = w7_empty_creates(sc)
                f = os.path.join(self.tmp, "empty")
                e = self._timed(lambda: self._uploads(branch, [("empty/new%06d" % i, f) for i in range(n)]))
                out.update(big_n=sc["creates"], small_n=n, small_seconds=e["seconds"], small_calls=e["calls"],
                           small_ops=e["ops"])
            return out
        finally:
            if write:
                srv.drop_branch(branch)

    def _timed(self, fn):
        srv = self.server
        before = op_counts(srv)
        ru0 = os.times()
        t0 = time.monotonic()
        fn()
        secs = time.monotonic() - t0
        ru1 = os.times()
        out = op_counts(srv, before)
        out.update(seconds=secs, rss=None,
                   cpu=(ru1.children_user - ru0.children_user + ru1.children_system - ru0.children_system +
                        ru1.user - ru0.user + ru1.system - ru0.system))
        return out

    def _upload_tree(self, branch, files):
        tar = make_tree_tar(self.tmp, files)
        d = tempfile.mkdtemp(prefix="limit-tree-", dir=self.tmp)
        with tarfile.open(tar) as t:
            t.extractall(d)
        paths = []
        for dirpath, _, names in os.walk(d):
            for n in names:
                paths.append(os.path.join(dirpath, n))
        return d, sorted(paths)

    def _uploads(self, branch, items):
        """items: [(object path, local file)] uploaded through the API (uploadObject)."""
        urls = ["%s/repositories/%s/branches/%s/objects?path=%s" % (self.server.api_url, REPO, branch,
                                                                   urllib.parse.quote(p, safe="")) for p, _ in items]
        curl_parallel(urls, LIMIT_PARALLEL, method="POST", data_files=[f for _, f in items],
                      headers=[self._auth_header(), "Content-Type: application/octet-stream"])

    def _body(self, wl, branch, prep):
        srv, sc = self.server, self.sc
        if wl in ("w1-find-cold", "w1-find-warm"):
            srv.list_flat("main", "tree/", session=srv.http)
        elif wl == "w1-ls-big":
            srv.list_flat("main", "big/", session=srv.http)
        elif wl == "w2-cat-small":
            objs = srv.list_flat("main", "small/", presign=True, session=srv.http)
            curl_parallel([o["physical_address"] for o in objs], LIMIT_PARALLEL)
        elif wl in ("w3-seq-cold", "w3-seq-remount"):
            o = srv.api("GET", own=False, path="/repositories/%s/refs/main/objects/stat" % REPO,
                        params={"path": "large/large.bin", "presign": "true"}).json()
            subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", o["physical_address"]], check=True)
        elif wl == "w4-rand":
            o = srv.api("GET", own=False, path="/repositories/%s/refs/main/objects/stat" % REPO,
                        params={"path": "large/large.bin", "presign": "true"}).json()
            rand_reads(o["physical_address"], sc["large"], sc["rand_ios"], RAND_JOBS)
        elif wl == "w5-write-large":
            pa = srv.api("GET", own=False, path="/repositories/%s/branches/%s/staging/backing" % (REPO, branch),
                         params={"path": "out.bin", "presign": "true"}).json()
            r = subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-D", "-", "-T", self.large_src,
                                pa["presigned_url"]], capture_output=True, check=True)
            etag = re.search(rb'(?i)etag:\s*"?([0-9a-f]+)"?', r.stdout).group(1).decode()
            srv.api("PUT", own=False, path="/repositories/%s/branches/%s/staging/backing" % (REPO, branch),
                    params={"path": "out.bin"},
                    json={"staging": pa, "checksum": etag, "size_bytes": sc["large"]})
        elif wl == "w5-write-small":
            f = os.path.join(self.tmp, "small.bin")
            with open(f, "wb") as out:
                out.write(os.urandom(SMALL_SIZE))
            self._uploads(branch, [("new/n%05d.bin" % i, f) for i in range(sc["write_small"])])
            srv.api("POST", own=False, path="/repositories/%s/branches/%s/commits" % (REPO, branch), json={"message": "bench"})
        elif wl == "w6-untar":
            d, paths = self._upload_tree(branch, sc["untar"])
            try:
                self._uploads(branch, [(os.path.relpath(p, d), p) for p in paths])
            finally:
                shutil.rmtree(d, ignore_errors=True)
        elif wl == "w6-rm":
            d, paths = prep
            try:
                names = [os.path.relpath(p, d) for p in paths]
                for i in range(0, len(names), 1000):
                    srv.api("POST", own=False, path="/repositories/%s/branches/%s/objects/delete" % (REPO, branch),
                            json={"paths": names[i:i + 1000]})
            finally:
                shutil.rmtree(d, ignore_errors=True)
        elif wl == "w7-creates":
            f = os.path.join(self.tmp, "empty")
            open(f, "wb").close()
            self._uploads(branch, [("big/new%06d" % i, f) for i in range(sc["creates"])])
        else:
            raise ValueError(wl)


def rand_reads(url, size, ios, jobs):
    """`jobs` keep-alive connections, each `ios` random 4 KiB ranged GETs (fio's pattern)."""
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")

    def job(seed):
        rnd = random.Random(seed)
        c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=120)
        try:
            for _ in range(ios):
                off = rnd.randrange(0, size // 4096) * 4096
                c.request("GET", path, headers={"Range": "bytes=%d-%d" % (off, off + 4095)})
                r = c.getresponse()
                body = r.read()
                if r.status != 206 or len(body) != 4096:
                    raise RuntimeError("ranged GET: %d, %d bytes" % (r.status, len(body)))
        finally:
            c.close()

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        list(pool.map(job, range(jobs)))


# ---- the run ----------------------------------------------------------------------------------

def versions():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    from realserver import third_party_paths
    return {
        "lakefuse": first([LAKEFUSE, "--version"]),
        "lakeFS": first([third_party_paths()["LAKEFUSE_LAKEFS_BIN"], "--version"]),
        "rclone": first(["rclone", "version"]),
        "s3fs": first(["s3fs", "--version"]),
        "curl": first(["curl", "--version"]),
        "fio": first(["fio", "--version"]),
    }


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    return "%d cores (%s), %.0f GiB RAM, %s %s" % (os.cpu_count(), cpu, mem, platform.system(), platform.release())


fmt = summary.fmt


def summarize(results, systems, workloads, meta, out):
    """results.md (table, workload 7's halves, targets), results.json (runs, medians, per-workload
    ratios, targets) and results.png, all from the same runs."""
    med = summary.medians(results)
    text, tg, summ = summary.render(med, systems, workloads, meta, dict(WORKLOADS), PEERS)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": {"%s|%s" % k: v for k, v in results.items()},
                   "medians": {"%s|%s" % k: v for k, v in med.items()},
                   "summary": summ, "targets": tg}, f, indent=1, sort_keys=True)
    chart(med, systems, workloads, out)
    return med


def chart(med, systems, workloads, out):
    """Grouped bars: speed relative to the limit (limit time / system time), log scale."""
    if not shutil.which("gnuplot"):
        log("gnuplot missing: no chart")
        return
    others = [s for s in systems if s != "limit"]
    data = os.path.join(out, ".chart.dat")
    with open(data, "w") as f:
        f.write("workload " + " ".join(others) + "\n")
        for wl in workloads:
            lim = med.get((wl, "limit"), {}).get("seconds")
            vals = []
            for s in others:
                secs = med.get((wl, s), {}).get("seconds")
                vals.append("%.4f" % (lim / secs) if lim and secs else "NaN")
            f.write("%s %s\n" % (wl, " ".join(vals)))
    script = """
set terminal pngcairo size 1400,600 font ",10"
set output '%s'
set title 'Speed relative to the limit (limit time / system time; 1 = as fast as the limit; log scale)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.001:10]
set grid ytics
set xtics rotate by -30
set key top right
plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i), 1 with lines dt 2 lc rgb 'black' title 'limit'
""" % (os.path.join(out, "results.png"), len(others) + 1, data)
    r = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True)
    os.unlink(data)
    if r.returncode != 0:
        log("gnuplot: %s" % r.stderr.decode()[-300:])


def run_bounded(runner, wl, rnd, timeout):
    """One run, stopped after `timeout` seconds: the watchdog kills the run's mounts (every file
    operation then fails at once) and makes waits give up; the result says it timed out."""
    ABORT.clear()

    def fire():
        ABORT.set()
        for m in list(LIVE_MOUNTS):
            m.kill()

    dog = threading.Timer(timeout, fire)
    dog.daemon = True
    t0 = time.monotonic()
    dog.start()
    try:
        r = runner.run(wl, rnd)
    except Exception as err:  # one failed run is a result, not the end of the benchmark
        r = {"error": str(err) or type(err).__name__}
    finally:
        dog.cancel()
        dog.join()
    if ABORT.is_set() or time.monotonic() - t0 > timeout:
        r = {"error": "timed out after %d s" % timeout, "timed_out": timeout}
    ABORT.clear()
    r["wall"] = time.monotonic() - t0  # the whole run: mounting, preparing, waiting, cleaning up
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default=os.environ.get("BENCH_SCALE", "medium"), choices=sorted(SCALES))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--peer-rounds", type=int, default=int(os.environ["BENCH_PEER_ROUNDS"])
                    if os.environ.get("BENCH_PEER_ROUNDS") else None,
                    help="run the peers in the first N rounds only (default: the scale's, see PEER_ROUNDS)")
    ap.add_argument("--timeout", type=int, default=int(os.environ["BENCH_TIMEOUT"])
                    if os.environ.get("BENCH_TIMEOUT") else None,
                    help="seconds a run may take before it is stopped and recorded as timed out "
                         "(default: the scale's, see RUN_TIMEOUT)")
    ap.add_argument("--systems", default=os.environ.get("BENCH_SYSTEMS", "limit,lakefuse,lakefuse-async,rclone,s3fs"))
    ap.add_argument("--workloads", default=os.environ.get("BENCH_WORKLOADS", ",".join(w for w, _ in WORKLOADS)))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "bench"))
    ap.add_argument("--from-json", help="only write the table and chart again from a results.json")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            saved = json.load(f)
        results = {tuple(k.split("|")): v for k, v in saved["results"].items()}
        systems = [s for s in ("limit", "lakefuse", "lakefuse-async", "rclone", "s3fs")
                   if any(k[1] == s for k in results)]
        workloads = [w for w, _ in WORKLOADS if any(k[0] == w for k in results)]
        summarize(results, systems, workloads, saved["meta"], a.out)
        log("wrote %s/results.md, results.json, results.png" % a.out)
        return
    sc = SCALES[a.scale]
    timeout = a.timeout or RUN_TIMEOUT[a.scale]
    peer_rounds = min(a.rounds, a.peer_rounds if a.peer_rounds is not None else PEER_ROUNDS[a.scale] or a.rounds)
    workloads = [w for w in a.workloads.split(",") if w]
    known = dict(WORKLOADS)
    for w in workloads:
        if w not in known:
            ap.error("unknown workload %s" % w)
    systems, missing = [], {}
    for s in a.systems.split(","):
        if s == "limit" or s in LAKEFUSE_SYSTEMS or shutil.which(s):
            systems.append(s)
        else:
            missing[s] = "not installed (scripts/bench-peers.sh)"
    missing.update({
        "goofys": "v0.24.0 (the last release) has no go.mod and needs the FUSE fork github.com/kahing/fuse, "
                  "which the Go module proxy here does not serve",
        "GeeseFS": "github.com/yandex-cloud/geesefs is not served by the Go module proxy here",
        "Mountpoint for S3": "crates.io has only a 0.0.1 placeholder of the mountpoint-s3 crate, no release",
    })
    tmp = tempfile.mkdtemp(prefix="lakefuse-bench-", dir=os.environ.get("BENCH_TMPDIR"))
    server = None
    results = {}
    t_start = time.monotonic()
    try:
        server = Server(os.path.join(tmp, "server"))
        large = seed(server, sc, tmp)
        seed_seconds = time.monotonic() - t_start
        runners = {}
        for s in systems:
            runners[s] = LimitRunner(server, sc, tmp, large) if s == "limit" else FsRunner(s, server, sc, tmp, large)
        for rnd in range(a.rounds):
            for wl in workloads:
                order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
                for s in order:
                    if s not in summary.NOT_PEERS and rnd >= peer_rounds:
                        continue
                    if s == "lakefuse-async" and wl not in ASYNC_WORKLOADS:
                        continue
                    prev = results.get((wl, s), [])
                    if any(r.get("timed_out") is not None for r in prev):
                        log("round %d %-15s %-8s timed out before: not run again" % (rnd + 1, wl, s))
                        continue
                    r = run_bounded(runners[s], wl, rnd,
                                    timeout * TIMEOUT_PHASES.get(wl, 1) * TIMEOUT_SYSTEM.get(s, 1))
                    results.setdefault((wl, s), []).append(r)
                    log("round %d %-15s %-8s %s (run %.1fs)" % (
                        rnd + 1, wl, s, "error: %s" % r["error"] if "error" in r else
                        "%.3fs %d req cpu %s rss %s" % (r["seconds"], r["calls"], fmt(r.get("cpu")),
                                                        fmt(r.get("rss"), "MiB")), r["wall"]))
        commit = os.environ.get("BENCH_COMMIT") or subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        meta = {"date": datetime.date.today().isoformat(), "commit": commit, "scale": a.scale, "sizes": sc,
                "rounds": a.rounds, "peer_rounds": peer_rounds, "timeout": timeout,
                "elapsed": time.monotonic() - t_start, "seed_seconds": seed_seconds,
                "machine": machine(), "versions": versions(), "missing_peers": missing}
        summarize(results, systems, workloads, meta, a.out)
        log("wrote %s/results.md, results.json, results.png (%.0f s in all)" % (a.out, time.monotonic() - t_start))
    finally:
        # every exit path (error, Ctrl-C, SIGTERM): no mount, server or file left behind
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        unmount_all(tmp)
        if server:
            server.stop()
        left = [mp for mp in mount_points() if mp.startswith(tmp + "/")]
        if left:  # never delete through a mount point
            log("still mounted, not deleting %s: %s" % (tmp, ", ".join(left)))
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))
    main()
