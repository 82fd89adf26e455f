#!/usr/bin/env bash
# The demo behind `make demo`: starts the bundled lakeFS-compatible server
# on a free local port with a fresh data dir, checks the connection the way
# a user would (`lakefuse doctor`), then runs the lakeFS getting-started
# walkthrough through lakefuse's C client and shows the result.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/lakefuse-demo.XXXXXX)
server_pid=""
cleanup() {
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

echo
echo "main now holds the merged file:"
curl -s -u "$LAKECTL_CREDENTIALS_ACCESS_KEY_ID:$LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY" \
    "$endpoint/api/v1/repositories/demo/refs/main/objects?path=test.txt"
echo
echo "(the server ran from $work/data; it is removed now)"
