#!/bin/sh
# Installs, with apt-get (Debian 12), exactly the packages lakefuse needs to
# build and test that are not installed yet. Quiet and quick when all are
# there; safe to run any number of times.
set -eu

PACKAGES="
  build-essential pkg-config
  libfuse3-dev fuse3
  libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev libxxhash-dev
  libcmocka-dev
  python3 python3-yaml python3-jsonschema python3-requests python3-pytest python3-venv
  attr rsync
  clang libclang-rt-14-dev
"

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        "install ok installed") ;;
        *) missing="$missing $pkg" ;;
    esac
done

[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
