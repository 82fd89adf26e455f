#!/usr/bin/env bash
# Builds, once per machine, the third-party programs the real-server test
# configurations need, into a cache OUTSIDE the repository, keyed by version:
#
#   $CACHE/lakefs-v1.84.0/bin/{lakefs,lakectl}
#       lakeFS and lakectl v1.84.0, built from the Go module proxy:
#       `go mod download github.com/treeverse/lakefs@v1.84.0` fetches the
#       module (and, during the build, its dependencies, also from the Go
#       module proxy); the module directory is read-only and has replace
#       directives (so `go install ...@v1.84.0` refuses it), hence a temporary
#       writable copy in which `go build ./cmd/lakefs ./cmd/lakectl` runs.
#       The module ships webui/dist with only a .gitkeep; `//go:embed all:dist`
#       accepts that, so the binaries build without the web UI's generated
#       assets (the UI answers with its fallback page; the API is complete).
#   $CACHE/moto-<version>/venv
#       moto's S3 server (`moto[server]` from PyPI) in a virtualenv: the S3-
#       compatible object store behind the lakefs-s3 configuration (presigned
#       URLs and multipart uploads, loopback only).
#   $CACHE/lakefs-sdk-<sdk version>-lakefs-<version>/venv
#       The official lakeFS Python SDKs, from PyPI with pip: `lakefs-sdk` (the
#       generated client) pinned at the server's version, 1.84.0, and the
#       high-level `lakefs` package pinned at 0.16.0 (which needs
#       lakefs-sdk>=1.50,<2 and pyyaml; pip fetches those and their
#       dependencies: urllib3, pydantic, python-dateutil, typing-extensions...).
#       tests/sdk runs the lakeFS getting-started walkthrough with them, as a
#       subprocess under this venv's python.
#
# CACHE is ${LAKEFUSE_THIRD_PARTY:-${XDG_CACHE_HOME:-$HOME/.cache}/lakefuse-third-party}.
# Cached programs are reused when they run (`lakefs --version`); the first
# lakeFS build takes several minutes on 2 cores (the Go build cache,
# ~/.cache/go-build, makes later ones quicker).
#
# Usage: scripts/third-party.sh [lakefs|s3|sdk|all]   (default all)
#        scripts/third-party.sh --print-env        prints the paths as
#                                                  shell assignments
set -euo pipefail

LAKEFS_VERSION=${LAKEFS_VERSION:-v1.84.0}
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
CACHE=${LAKEFUSE_THIRD_PARTY:-${XDG_CACHE_HOME:-$HOME/.cache}/lakefuse-third-party}
LAKEFS_DIR=$CACHE/lakefs-$LAKEFS_VERSION
MOTO_DIR=$CACHE/moto-$MOTO_VERSION
LAKEFS_SDK_VERSION=${LAKEFS_SDK_VERSION:-${LAKEFS_VERSION#v}}
LAKEFS_PY_VERSION=${LAKEFS_PY_VERSION:-0.16.0}
SDK_DIR=$CACHE/lakefs-sdk-$LAKEFS_SDK_VERSION-lakefs-$LAKEFS_PY_VERSION

say() { echo "third-party: $*" >&2; }

print_env() {
    echo "LAKEFUSE_LAKEFS_BIN=$LAKEFS_DIR/bin/lakefs"
    echo "LAKEFUSE_LAKECTL_BIN=$LAKEFS_DIR/bin/lakectl"
    echo "LAKEFUSE_MOTO_SERVER=$MOTO_DIR/venv/bin/moto_server"
    echo "LAKEFUSE_SDK_PYTHON=$SDK_DIR/venv/bin/python"
}

lakefs_ok() {
    [ -x "$LAKEFS_DIR/bin/lakefs" ] && [ -x "$LAKEFS_DIR/bin/lakectl" ] &&
        "$LAKEFS_DIR/bin/lakefs" --version >/dev/null 2>&1 &&
        "$LAKEFS_DIR/bin/lakectl" --version >/dev/null 2>&1
}

build_lakefs() {
    if lakefs_ok; then
        say "lakeFS $LAKEFS_VERSION: cached in $LAKEFS_DIR ($("$LAKEFS_DIR/bin/lakefs" --version 2>&1 | head -1))"
        return 0
    fi
    command -v go >/dev/null || { say "go is not installed"; exit 1; }
    local start tmp moddir
    start=$(date +%s)
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/lakefuse-lakefs-build.XXXXXX")
    # shellcheck disable=SC2064
    trap "chmod -R u+w '$tmp' 2>/dev/null; rm -rf '$tmp'" EXIT
    say "lakeFS $LAKEFS_VERSION: downloading github.com/treeverse/lakefs@$LAKEFS_VERSION from the Go module proxy"
    moddir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/treeverse/lakefs@$LAKEFS_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$moddir" ] || { say "go mod download gave no module directory"; exit 1; }
    say "lakeFS $LAKEFS_VERSION: copying the module to $tmp/src"
    cp -r "$moddir" "$tmp/src"
    chmod -R u+w "$tmp/src"
    # Only the modules the two commands import (`go mod download` would fetch every module in the
    # graph, tools included: ~2.4 GB instead of about half).
    say "lakeFS $LAKEFS_VERSION: downloading the modules ./cmd/lakefs and ./cmd/lakectl import"
    (cd "$tmp/src" && go list -deps -f '{{with .Module}}{{.Path}}@{{.Version}}{{end}}' ./cmd/lakefs ./cmd/lakectl |
        sort -u | wc -l | sed 's/^/third-party:   modules: /' >&2)
    mkdir -p "$LAKEFS_DIR/bin.tmp"
    local cmd
    for cmd in lakefs lakectl; do
        say "lakeFS $LAKEFS_VERSION: go build ./cmd/$cmd (minutes on a small machine; packages compiled are listed)"
        (cd "$tmp/src" && go build -v -trimpath \
            -ldflags "-s -w -X github.com/treeverse/lakefs/pkg/version.Version=${LAKEFS_VERSION#v}" \
            -o "$LAKEFS_DIR/bin.tmp/$cmd" "./cmd/$cmd" 2>&1 |
            awk '{ n++; if (n % 50 == 0) { printf "third-party:   %d packages compiled (%s)\n", n, $0; fflush() } } END { printf "third-party:   %d packages compiled\n", n }' >&2)
        [ -x "$LAKEFS_DIR/bin.tmp/$cmd" ] || { say "go build ./cmd/$cmd failed"; exit 1; }
    done
    rm -rf "$LAKEFS_DIR/bin"
    mv "$LAKEFS_DIR/bin.tmp" "$LAKEFS_DIR/bin"
    chmod -R u+w "$tmp" 2>/dev/null || true
    rm -rf "$tmp"
    trap - EXIT
    lakefs_ok || { say "built lakefs does not run"; exit 1; }
    say "lakeFS $LAKEFS_VERSION: built in $(( $(date +%s) - start ))s: $("$LAKEFS_DIR/bin/lakefs" --version 2>&1 | head -1)"
}

moto_ok() {
    [ -x "$MOTO_DIR/venv/bin/moto_server" ] &&
        "$MOTO_DIR/venv/bin/python" -c 'import moto, flask, flask_cors' >/dev/null 2>&1
}

install_moto() {
    if moto_ok; then
        say "moto $MOTO_VERSION: cached in $MOTO_DIR"
        return 0
    fi
    local start
    start=$(date +%s)
    say "moto $MOTO_VERSION: creating a virtualenv in $MOTO_DIR/venv and installing moto[server]==$MOTO_VERSION from PyPI"
    rm -rf "$MOTO_DIR"
    mkdir -p "$MOTO_DIR"
    /usr/bin/python3 -m venv "$MOTO_DIR/venv"
    "$MOTO_DIR/venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
    moto_ok || { say "moto install failed"; exit 1; }
    say "moto $MOTO_VERSION: installed in $(( $(date +%s) - start ))s"
}

sdk_ok() {
    [ -x "$SDK_DIR/venv/bin/python" ] &&
        "$SDK_DIR/venv/bin/python" - "$LAKEFS_SDK_VERSION" "$LAKEFS_PY_VERSION" >/dev/null 2>&1 <<'PY'
import sys
from importlib.metadata import version
import lakefs, lakefs_sdk  # noqa: F401  (both import)
sys.exit(0 if (version("lakefs-sdk"), version("lakefs")) == tuple(sys.argv[1:3]) else 1)
PY
}

install_sdk() {
    if sdk_ok; then
        say "lakefs-sdk $LAKEFS_SDK_VERSION + lakefs $LAKEFS_PY_VERSION: cached in $SDK_DIR"
        return 0
    fi
    local start
    start=$(date +%s)
    say "lakefs-sdk $LAKEFS_SDK_VERSION + lakefs $LAKEFS_PY_VERSION: creating a virtualenv in $SDK_DIR/venv" \
        "and installing lakefs-sdk==$LAKEFS_SDK_VERSION lakefs==$LAKEFS_PY_VERSION (and their dependencies) from PyPI"
    rm -rf "$SDK_DIR"
    mkdir -p "$SDK_DIR"
    /usr/bin/python3 -m venv "$SDK_DIR/venv"
    "$SDK_DIR/venv/bin/pip" install -q --disable-pip-version-check \
        "lakefs-sdk==$LAKEFS_SDK_VERSION" "lakefs==$LAKEFS_PY_VERSION" >&2
    sdk_ok || { say "lakefs-sdk/lakefs install failed"; exit 1; }
    say "lakefs-sdk $LAKEFS_SDK_VERSION + lakefs $LAKEFS_PY_VERSION: installed in $(( $(date +%s) - start ))s"
}

case "${1:-all}" in
    lakefs) build_lakefs ;;
    s3) install_moto ;;
    sdk) install_sdk ;;
    all) build_lakefs; install_moto; install_sdk ;;
    --print-env) print_env ;;
    *) echo "usage: $0 [lakefs|s3|sdk|all|--print-env]" >&2; exit 2 ;;
esac
