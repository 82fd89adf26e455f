#!/bin/bash
# Runs an external POSIX conformance suite (pjdfstest, https://github.com/pjd/pjdfstest) on a branch
# mount of the bundled test server (or real lakeFS: POSIX_SUITE_SERVER), as root with -o allow_other, and prints counts per syscall group.
# It fetches and builds nothing: build pjdfstest yourself outside the repository, e.g.
#   git clone https://github.com/pjd/pjdfstest /tmp/pjdfstest && cd /tmp/pjdfstest &&
#   autoreconf -ifs && ./configure && make pjdfstest        # needs Debian's autoconf and automake
# then:   scripts/posix-suite.sh /tmp/pjdfstest [GROUP...]     (GROUP: chmod, rename, ... default all)
# Environment: LAKEFUSE_BIN (default build/lakefuse), POSIX_SUITE_WORK (scratch dir, default a
# mktemp -d under /tmp; removed at the end), POSIX_SUITE_LOG (the full TAP output, kept; default
# /tmp/posix-suite-<date>.log), POSIX_SUITE_OPTIONS (extra -o options), POSIX_SUITE_SERVER (bundled,
# the default; lakefs-local or lakefs-s3: the real lakeFS that `make test` uses, built by
# scripts/third-party.sh, started and stopped by tests/realserver.py).
# Everything it starts (server, mount) is stopped and its data deleted on exit, success or not.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
suite=${1:?usage: $0 PJDFSTEST_BUILD_DIR [GROUP...]}
shift
suite=$(cd "$suite" && pwd)
[ -x "$suite/pjdfstest" ] && [ -d "$suite/tests" ] || { echo "$suite: no built pjdfstest (pjdfstest binary and tests/)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "pjdfstest needs root (it changes owners and switches uids)" >&2; exit 2; }
bin=${LAKEFUSE_BIN:-$here/build/lakefuse}
[ -x "$bin" ] || { echo "$bin: not built (make)" >&2; exit 2; }
groups=("$@")
[ ${#groups[@]} -gt 0 ] || mapfile -t groups < <(cd "$suite/tests" && find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
work=${POSIX_SUITE_WORK:-$(mktemp -d /tmp/posix-suite.XXXXXX)}
log=${POSIX_SUITE_LOG:-/tmp/posix-suite-$(date -u +%Y%m%dT%H%M%S).log}
mkdir -p "$work/server" "$work/cache" "$work/mnt"
chmod 755 "$work" "$work/mnt"   # pjdfstest switches to other uids: they must reach the mount point
server_pid=
mnt="$work/mnt"

cleanup() {
    if mountpoint -q "$mnt"; then
        fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
    fi
    if [ -n "$mount_pid" ] && kill -0 "$mount_pid" 2>/dev/null; then
        deadline=$((SECONDS + 60))
        while kill -0 "$mount_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        kill "$mount_pid" 2>/dev/null
    fi
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
mount_pid=
trap cleanup EXIT
trap 'exit 130' INT TERM

# The bundled server (tests/lakefs_server), or real lakeFS, on a free port; the credentials (the
# same for both) go through the environment.
export LAKECTL_CREDENTIALS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
kind=${POSIX_SUITE_SERVER:-bundled}
: >"$work/server/out"
case $kind in
bundled)
    "$here/tests/lakefs_server/lakefs_server" --listen 127.0.0.1:0 --data-dir "$work/server/data" \
        >"$work/server/out" 2>"$work/server/log" </dev/null &
    pattern='s/^lakefs_server listening on //p' namespace=s3://bucket/posix ;;
lakefs-local|lakefs-s3)
    # its data under $work (TMPDIR), removed with it
    TMPDIR=$work/server /usr/bin/python3 "$here/tests/realserver.py" "$kind" \
        >"$work/server/out" 2>"$work/server/log" </dev/null &
    pattern="s/^$kind on \\(\\S*\\) .*/\\1/p"
    if [ "$kind" = lakefs-local ]; then namespace=local://posix; else namespace=s3://lakefuse-tests/posix; fi ;;
*) echo "POSIX_SUITE_SERVER=$kind: bundled, lakefs-local or lakefs-s3" >&2; exit 2 ;;
esac
server_pid=$!
deadline=$((SECONDS + 120))
url=
while [ -z "$url" ] && [ $SECONDS -lt $deadline ] && kill -0 $server_pid 2>/dev/null; do
    url=$(sed -n "$pattern" "$work/server/out")
    [ -n "$url" ] || sleep 0.1   # polling the server's 'listening' line, with a deadline
done
[ -n "$url" ] || { echo "the $kind server did not start: $(tail -5 "$work/server/log")" >&2; exit 1; }
export LAKECTL_SERVER_ENDPOINT_URL=$url
NAMESPACE=$namespace /usr/bin/python3 - <<'EOF' || exit 1
import base64, json, os, urllib.request
auth = base64.b64encode(("%s:%s" % (os.environ["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
                                    os.environ["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"])).encode()).decode()
req = urllib.request.Request(os.environ["LAKECTL_SERVER_ENDPOINT_URL"] + "/api/v1/repositories", method="POST",
                             data=json.dumps({"name": "posix", "default_branch": "main",
                                              "storage_namespace": os.environ["NAMESPACE"]}).encode(),
                             headers={"Content-Type": "application/json", "Authorization": "Basic " + auth})
urllib.request.urlopen(req, timeout=60)
EOF

opts=allow_other,cache_dir=$work/cache${POSIX_SUITE_OPTIONS:+,$POSIX_SUITE_OPTIONS}
"$bin" mount -f -o "$opts" lakefs://posix/main "$mnt" >"$work/mount.log" 2>&1 &
mount_pid=$!
deadline=$((SECONDS + 60))
until mountpoint -q "$mnt" || [ $SECONDS -ge $deadline ] || ! kill -0 $mount_pid 2>/dev/null; do sleep 0.1; done
mountpoint -q "$mnt" || { echo "mount failed: $(tail -5 "$work/mount.log")" >&2; exit 1; }

echo "pjdfstest $(cd "$suite" && cat .version 2>/dev/null || echo "(from $suite)") on $(findmnt -no FSTYPE,OPTIONS "$mnt")" | tee "$log"
mkdir "$mnt/t" && chmod 755 "$mnt/t"
total_files=0 total_tests=0 total_failed=0
printf '%-16s %6s %8s %8s  %s\n' group files tests failed "failed test files" | tee -a "$log"
for g in "${groups[@]}"; do
    out=$(cd "$mnt/t" && prove -v "$suite/tests/$g" 2>&1)
    printf '%s\n' "== $g" "$out" >>"$log"
    files=$(find "$suite/tests/$g" -name '*.t' | wc -l)
    tests=$(printf '%s\n' "$out" | grep -cE '^(not )?ok [0-9]')
    failed=$(printf '%s\n' "$out" | grep -E '^not ok [0-9]' | grep -vc '# TODO')  # TODOs are not failures
    bad=$(printf '%s\n' "$out" | sed -n 's/^\(\S*\.t\) *(Wstat.*//p; s/^\(\S*\.t\) .*Failed: .*//p' | sed 's|.*/tests/||' | sort -u | tr '\n' ' ')
    printf '%-16s %6d %8d %8d  %s\n' "$g" "$files" "$tests" "$failed" "$bad" | tee -a "$log"
    total_files=$((total_files + files)) total_tests=$((total_tests + tests)) total_failed=$((total_failed + failed))
done
printf '%-16s %6d %8d %8d\n' total "$total_files" "$total_tests" "$total_failed" | tee -a "$log"
rm -rf "$mnt/t"

# Why they failed (a heuristic, to read before trusting): "refusal" is a documented refusal itself
# (mkfifo, mknod, bind, link answering EPERM); "consequence" a later step of the same .t file on a
# name whose creation was refused (or ENOENT, or a check without a description, after one); "key-limit"
# a path whose object key would pass lakeFS's 1024 bytes (README refusal table); "other" anything else,
# listed in full: those are the ones to look at.
/usr/bin/python3 - "$log" <<'PY' | tee -a "$log"
import collections, re, sys
counts, others = collections.defaultdict(collections.Counter), []
group, refused = None, set()
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^== (\S+)", line)
    if m:
        group = m.group(1)
        continue
    m = re.match(r"^(\S+\.t) \.\.", line)
    if m:
        tfile, refused = m.group(1).split("/tests/")[-1], set()
        continue
    m = re.match(r"^not ok (\d+)(.*)", line)
    if not m or "# TODO" in m.group(2):
        continue
    t = re.search(r"tried '(.*)', expected (.*), got (.*)$", m.group(2))
    kind = "consequence" if refused else "other"
    if t:
        cmd = t.group(1).split()
        i = 0
        while i < len(cmd) and cmd[i].startswith("-"):
            i += 1 if cmd[i] == "--" else 2
        op, args = (cmd[i], cmd[i + 1:]) if i < len(cmd) else ("?", [])
        parts = {"/".join(a.split("/")[:k]) for a in args for k in range(1, a.count("/") + 2)}
        if any(len(a) + 2 > 1024 for a in args):  # the suite runs in t/: "t/" + path
            kind = "key-limit"
        elif op in ("mkfifo", "mknod", "bind", "link") and t.group(3) == "EPERM":
            kind = "refusal"
            refused |= set(args[:2]) if op == "link" else {args[0]}
        elif parts & refused or (refused and t.group(3) == "ENOENT"):
            kind = "consequence"
        else:
            kind = "other"
    counts[group][kind] += 1
    if kind == "other":
        others.append("%s #%s%s" % (tfile, m.group(1), re.sub(r"pjdfstest_[0-9a-f]{32}", "N", m.group(2))[:200]))
print("%-16s %8s %12s %10s %6s" % ("failures", "refusal", "consequence", "key-limit", "other"))
total = collections.Counter()
for g in sorted(counts):
    total.update(counts[g])
    print("%-16s %8d %12d %10d %6d" % (g, counts[g]["refusal"], counts[g]["consequence"], counts[g]["key-limit"],
                                       counts[g]["other"]))
print("%-16s %8d %12d %10d %6d" % ("total", total["refusal"], total["consequence"], total["key-limit"], total["other"]))
for o in others:
    print("other: " + o)
PY
echo "full output: $log"
