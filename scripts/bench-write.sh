#!/usr/bin/env bash
# Write benchmark (not a test): starts the bundled lakeFS-compatible server
# on a free local port with a fresh data dir, mounts a new repository's
# main branch, writes one large file through the mount with dd, and reports
# the throughput and the daemon's peak RSS (VmHWM), which must stay under
# RSS_LIMIT_MB: writes are staged on disk and uploaded streaming, never held
# in memory. Exits non-zero when the limit is exceeded or the object on the
# branch does not have the size written. Run from anywhere after `make`.
#   SIZE_MB=2048 RSS_LIMIT_MB=64 LAKEFUSE_BIN=build/lakefuse scripts/bench-write.sh
# The temporary directory (TMPDIR) needs about twice SIZE_MB free: the
# staged copy and the server's copy.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mb=${SIZE_MB:-2048}
limit_mb=${RSS_LIMIT_MB:-64}
lakefuse=${LAKEFUSE_BIN:-build/lakefuse}
repo=bench
access_key=AKIAIOSFODNN7EXAMPLE
secret_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

if [ ! -x "$lakefuse" ]; then
    echo "bench-write: $lakefuse not found; run make first" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lakefuse-bench.XXXXXX")
server_pid=""
mount_pid=""
cleanup() {
    if mountpoint -q "$work/mnt" 2>/dev/null; then
        fusermount3 -u "$work/mnt" 2>/dev/null || fusermount3 -u -z "$work/mnt" || true
    fi
    if [ -n "$mount_pid" ]; then
        kill "$mount_pid" 2>/dev/null || true
        wait "$mount_pid" 2>/dev/null || true
    fi
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "bench-write: $*" >&2
    exit 1
}

now() {
    date +%s.%N
}

# --- the server ---------------------------------------------------------------
mkfifo "$work/server.out"
tests/lakefs_server/lakefs_server --listen 127.0.0.1:0 --data-dir "$work/data" \
    --access-key-id "$access_key" --secret-access-key "$secret_key" \
    >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
exec 3<"$work/server.out"
banner=""
read -r -t 60 banner <&3 || true
case "$banner" in
    "lakefs_server listening on "*) ;;
    *) fail "the server did not start: $(tail -5 "$work/server.log")" ;;
esac
endpoint=${banner##* }

curl -fsS -u "$access_key:$secret_key" -H 'Content-Type: application/json' \
    -d "{\"name\": \"$repo\", \"storage_namespace\": \"s3://lakefuse-bench/$repo\", \"default_branch\": \"main\"}" \
    "$endpoint/api/v1/repositories" >/dev/null || fail "could not create repository $repo"

# --- the mount ----------------------------------------------------------------
export LAKECTL_SERVER_ENDPOINT_URL=$endpoint
export LAKECTL_CREDENTIALS_ACCESS_KEY_ID=$access_key
export LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=$secret_key
mkdir "$work/mnt"
mkfifo "$work/mount.out"
"$lakefuse" mount -f -o "cache_dir=$work/cache,log_file=$work/lakefuse.log" \
    "lakefs://$repo/main" "$work/mnt" >"$work/mount.out" 2>"$work/lakefuse.err" &
mount_pid=$!
exec 4<"$work/mount.out"
mounted=""
read -r -t 60 mounted <&4 || true
case "$mounted" in
    "mounted "*) ;;
    *) fail "lakefuse did not mount: $(tail -5 "$work/lakefuse.err")" ;;
esac

# --- the write ----------------------------------------------------------------
# dd exits after close(2), which returns once the upload is done.
start=$(now)
dd if=/dev/zero of="$work/mnt/big.bin" bs=1M count="$size_mb" status=none ||
    fail "dd failed; log: $(tail -5 "$work/lakefuse.log")"
end=$(now)
peak_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$mount_pid/status")
[ -n "$peak_kb" ] || fail "could not read VmHWM of lakefuse (pid $mount_pid)"

fusermount3 -u "$work/mnt" || fail "fusermount3 -u failed"
status=0
wait "$mount_pid" || status=$?
mount_pid=""
[ "$status" -eq 0 ] || fail "lakefuse exited with status $status: $(tail -5 "$work/lakefuse.err")"

# --- checks -------------------------------------------------------------------
stat_json=$(curl -fsS -u "$access_key:$secret_key" \
    "$endpoint/api/v1/repositories/$repo/refs/main/objects/stat?path=big.bin") ||
    fail "big.bin is not on the branch"
size=$(printf '%s' "$stat_json" | grep -o '"size_bytes": *[0-9]*' | grep -o '[0-9]*$')
want=$((size_mb * 1024 * 1024))
[ "$size" = "$want" ] || fail "big.bin on the branch has $size bytes, not $want"

awk -v mb="$size_mb" -v s="$start" -v e="$end" 'BEGIN {
    t = e - s; if (t <= 0) t = 0.001
    printf "wrote %d MiB in %.1f s (%.0f MiB/s)\n", mb, t, mb / t
}'
verdict=OK
if [ "$peak_kb" -gt $((limit_mb * 1024)) ]; then
    verdict="OVER THE LIMIT"
fi
awk -v kb="$peak_kb" -v limit="$limit_mb" -v verdict="$verdict" 'BEGIN {
    printf "lakefuse peak RSS: %.1f MiB (limit %d MiB): %s\n", kb / 1024, limit, verdict
}'
[ "$verdict" = OK ]
