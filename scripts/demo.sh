#!/usr/bin/env bash
# The demo behind `make demo`: starts real lakeFS v1.84.0 (local KV store
# and local blockstore, as `lakefs run --quickstart` does; built once per
# machine by scripts/third-party.sh, a few minutes the first time) on a free
# local port with a fresh data dir, checks the connection the way a user
# would (`lakefuse doctor`), runs the lakeFS getting-started walkthrough
# through lakefuse's C client, then mounts the repository, reads it with
# ordinary tools, and writes, commits and merges through it. Everything it
# starts is stopped, unmounted and deleted when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/third-party.sh lakefs

work=$(mktemp -d /tmp/lakefuse-demo.XXXXXX)
server_pid=""
cleanup() {
    if mountpoint -q "$work/mnt" 2>/dev/null; then
        fusermount3 -u "$work/mnt" || true
    fi
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/ready"
# tests/realserver.py starts lakeFS in a temporary directory of its own,
# prints "lakefs-local on URL (access key ID)" once it answers, and stops
# it and deletes that directory on SIGTERM.
/usr/bin/python3 tests/realserver.py lakefs-local >"$work/ready" 2>"$work/server.log" &
server_pid=$!
exec 3<"$work/ready"
if ! read -r banner <&3; then
    echo "lakeFS did not start; its log:" >&2
    tail -n 30 "$work/server.log" >&2
    exit 1
fi
echo "$banner"
endpoint=$(echo "$banner" | awk '{print $3}')

export LAKECTL_SERVER_ENDPOINT_URL=$endpoint
export LAKECTL_CREDENTIALS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

echo
echo "\$ lakefuse doctor"
build/lakefuse doctor

echo
echo "The lakeFS getting-started walkthrough, through lakefuse's C client:"
LAKEFUSE_TEST_NAMESPACE_PREFIX=local:// build/client_exercise walkthrough demo 2>/dev/null

mkdir "$work/mnt"
echo
echo "\$ lakefuse mount -o cache_dir=... lakefs://demo \$MNT"
build/lakefuse mount -o "cache_dir=$work/cache,log_file=$work/lakefuse.log" \
    lakefs://demo "$work/mnt"
cd "$work/mnt"
show() {
    echo
    echo "\$ $*"
    "$@"
}
show ls -l
show ls -l main
show cat main/test.txt
show find main~1 main -type f
show du -b --apparent-size main
show sha256sum main/test.txt
show getfattr -d -m user.lakefs main/test.txt
show cat main/.lakefs/head
echo
echo "Writing and the lakeFS workflow, from the directory:"
show mkdir experiment
echo "\$ echo 'hello from lakefuse' > experiment/hello.txt"
echo 'hello from lakefuse' > experiment/hello.txt
show cat experiment/.lakefs/status
echo "\$ echo '{\"message\": \"Add hello\", \"metadata\": {\"via\": \"demo\"}}' > experiment/.lakefs/commit"
echo '{"message": "Add hello", "metadata": {"via": "demo"}}' > experiment/.lakefs/commit
show cat experiment/.lakefs/commit
show cat experiment/.lakefs/diff/main
echo "\$ echo experiment > main/.lakefs/merge"
echo experiment > main/.lakefs/merge
show cat main/hello.txt
show "$OLDPWD/build/lakefuse" status main
show cat .lakefs/stats
cd - >/dev/null
show build/lakefuse umount "$work/mnt"
echo
echo "(lakeFS and its data are removed now)"
