#!/usr/bin/env bash
# The demo behind `make demo`: starts the bundled lakeFS-compatible server
# on a free local port with a fresh data dir, checks the connection the way
# a user would (`lakefuse doctor`), runs the lakeFS getting-started
# walkthrough through lakefuse's C client, then mounts the repository,
# reads it with ordinary tools, and writes, commits and merges through it.
set -euo pipefail
cd "$(dirname "$0")/.."

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
tests/lakefs_server/lakefs_server --listen 127.0.0.1:0 \
    --data-dir "$work/data" >"$work/ready" 2>"$work/server.log" &
server_pid=$!
exec 3<"$work/ready"
read -r banner <&3
echo "$banner"
endpoint=${banner##* }

export LAKECTL_SERVER_ENDPOINT_URL=$endpoint
export LAKECTL_CREDENTIALS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

echo
echo "\$ lakefuse doctor"
build/lakefuse doctor

echo
echo "The lakeFS getting-started walkthrough, through lakefuse's C client:"
build/client_exercise walkthrough demo 2>/dev/null

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
echo "(the server ran from $work/data; it is removed now)"
