#!/usr/bin/env bash
# What `make bench` needs besides lakeFS and moto (scripts/third-party.sh), installed once per machine:
#
#   Debian packages (apt-get): rclone, s3fs (the peers: S3 FUSE file systems mounted on lakeFS's S3
#       gateway), fio (random reads), gnuplot-nox (the chart), curl (the limit's HTTP client).
#   $CACHE/versitygw-v1.8.0/bin/versitygw
#       Versity's S3 gateway, built from the Go module proxy (`go install
#       github.com/versity/versitygw/cmd/versitygw@v1.8.0`): the S3 store behind lakeFS in the
#       benchmark. moto, the tests' store, reads a whole object for every ranged GET, so a benchmark
#       on it would measure moto; versitygw serves objects from files. About 8 minutes to build here.
#
# Peers that do not install from this machine's registries (said in docs/bench/results.md):
#   goofys  - v0.24.0 has no go.mod and needs the FUSE fork github.com/kahing/fuse, not served by the
#             Go module proxy here; GeeseFS - github.com/yandex-cloud/geesefs is not served;
#   Mountpoint for S3 - crates.io holds only a 0.0.1 placeholder of mountpoint-s3.
#
# CACHE is the one scripts/third-party.sh uses. Usage: scripts/bench-peers.sh [--print-env]
set -euo pipefail

VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
CACHE=${LAKEFUSE_THIRD_PARTY:-${XDG_CACHE_HOME:-$HOME/.cache}/lakefuse-third-party}
VGW_DIR=$CACHE/versitygw-$VERSITYGW_VERSION

if [ "${1:-}" = --print-env ]; then
    echo "BENCH_VERSITYGW=$VGW_DIR/bin/versitygw"
    exit 0
fi

say() { echo "bench-peers: $*" >&2; }

missing=""
for pkg in rclone s3fs fio gnuplot-nox curl; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ -x "$VGW_DIR/bin/versitygw" ] && "$VGW_DIR/bin/versitygw" --version >/dev/null 2>&1; then
    say "versitygw $VERSITYGW_VERSION: cached in $VGW_DIR"
else
    command -v go >/dev/null || { say "go is not installed"; exit 1; }
    start=$(date +%s)
    say "versitygw $VERSITYGW_VERSION: go install github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION (minutes)"
    rm -rf "$VGW_DIR"
    mkdir -p "$VGW_DIR"
    GOBIN="$VGW_DIR/bin.tmp" GOFLAGS=-mod=mod go install -trimpath \
        "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
    mv "$VGW_DIR/bin.tmp" "$VGW_DIR/bin"
    say "versitygw $VERSITYGW_VERSION: built in $(( $(date +%s) - start ))s"
fi
