#!/usr/bin/env bash
# Runs every test: the C unit tests (normal and sanitizer builds), a short
# run of each fuzz target (scripts/fuzz.sh), then the
# pytest suites (test server conformance and semantics, the C client
# against the test server, real FUSE mounts, the official Python SDKs with a
# mount), then the mount suite again on
# the sanitizer build. `run-tests.sh unit` runs only the C unit tests; `run-tests.sh real` the
# client and mount suites against real lakeFS (not part of `make test`).
# Expects `make all sanitize` to have run.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
failed=0

run_unit_tests() {
    local dir=$1
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        echo "== $t"
        if ! "$t"; then
            failed=1
        fi
    done
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_unit_tests build
run_unit_tests build/asan
if [ "$failed" -ne 0 ]; then
    echo "C unit tests failed" >&2
    exit 1
fi

[ "$mode" = unit ] && exit 0

# The libFuzzer targets of fuzz/ (clang, ASan + UBSan), 8 seconds each from their seed corpora.
scripts/fuzz.sh 8

# `run-tests.sh real [lakefs-local|lakefs-s3 ...]`: the client and mount suites against real
# lakeFS v1.84.0 (scripts/third-party.sh builds it once per machine), each configuration in turn;
# not part of `make test` (see tests/REALSERVER.md for what still fails there and why).
if [ "$mode" = real ]; then
    shift
    scripts/third-party.sh
    status=0
    kinds=("$@")
    [ ${#kinds[@]} -eq 0 ] && kinds=(lakefs-local lakefs-s3)
    for kind in "${kinds[@]}"; do
        echo "== client and mount suites against $kind"
        LAKEFUSE_TEST_SERVER=$kind /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/client tests/mount tests/sdk ||
            status=1
    done
    exit $status
fi

# The suites that talk to lakeFS the most directly, against real lakeFS v1.84.0 too (built once per
# machine by scripts/third-party.sh; tests/REALSERVER.md): the C client, and the mount's write path,
# recovery, workflow files and open-file semantics, on the local and the S3 blockstore. Tests about
# presigned traffic skip themselves (with the reason) where the server cannot presign. The whole
# mount suite against real lakeFS is `make test-real` (about 20 minutes a configuration here).
REAL_SUITES=(tests/client tests/mount/test_mount_write_durable.py tests/mount/test_mount_write.py
             tests/mount/test_mount_write_recovery.py tests/mount/test_mount_open_files.py
             tests/mount/test_mount_control.py)
# The lakeFS walkthrough with the official Python SDKs, and the SDKs interleaved with a mount (tests/sdk).
REAL_SUITES+=(tests/sdk)
REAL_SUITES+=(tests/mount/test_mount_lakectl.py)  # lakectl fs upload/cat/stat and lakectl local with the mount
REAL_SUITES+=(tests/mount/test_mount_counts.py)  # exact API-call counts of issue 13 workloads 1, 2 and 5
# The two configurations run side by side (each has its own servers, ports and temporary
# directories; most of their time is spent waiting on lakeFS), their outputs shown one after the other.
run_real() {
    local out status=0 pids=() kinds=(lakefs-local lakefs-s3)
    out=$(mktemp -d "${TMPDIR:-/tmp}/lakefuse-real-tests.XXXXXX")
    for kind in "${kinds[@]}"; do
        LAKEFUSE_TEST_SERVER=$kind /usr/bin/python3 -m pytest -q -p no:cacheprovider "${REAL_SUITES[@]}" \
            >"$out/$kind.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!kinds[@]}"; do
        wait "${pids[$i]}" || status=1
        echo "== against real lakeFS: ${kinds[$i]}"
        cat "$out/${kinds[$i]}.log"
    done
    rm -rf "$out"
    return $status
}

# Third-party programs first, with their progress shown (built/installed once per machine): lakeFS and
# lakectl (the lakectl interoperability tests use lakectl against the bundled server too), moto's S3
# server, and the official lakeFS Python SDKs (tests/sdk).
scripts/third-party.sh all
# Debian's python3: the one that sees python3-pytest, -yaml, -jsonschema.
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests

# The mount suite once more on the sanitizer build of the daemon: a memory
# error kills the mount and a leak makes its exit status non-zero, and the
# fixtures fail the test on either.
# The differential test (issue 9) runs shorter there: the normal build already did >= 20,000 operations.
LAKEFUSE_BIN=build/asan/lakefuse LAKEFUSE_DIFF_OPS=${LAKEFUSE_DIFF_OPS:-1000} \
    LAKEFUSE_DIFF_FAULT_OPS=${LAKEFUSE_DIFF_FAULT_OPS:-500} LAKEFUSE_DIFF_KILLS=${LAKEFUSE_DIFF_KILLS:-10} \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/mount

run_real
