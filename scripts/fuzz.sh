#!/usr/bin/env bash
# Runs every libFuzzer target of fuzz/ (built by `make fuzz` with clang,
# ASan and UBSan) for SECONDS each (default 60; `make fuzz-smoke` and
# `make test` pass 8), starting from the seed corpus in fuzz/corpus/TARGET/,
# and prints per target the executions, coverage (cov: edges, ft: features)
# and corpus size reached. New inputs go to a scratch corpus under
# build/fuzz/work/ that is deleted at the end (FUZZ_KEEP=1 keeps it); a
# crash, leak or UB report fails the run and leaves its input in
# build/fuzz/artifacts/ (add it to fuzz/corpus/TARGET/ once fixed).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=()
    for src in fuzz/*.c; do
        targets+=("$(basename "$src" .c)")
    done
fi

make -s fuzz
work=build/fuzz/work
artifacts=build/fuzz/artifacts
mkdir -p "$work" "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

printf '%-16s %10s %8s %8s %8s %s\n' target execs cov ft corpus result
failed=0
for t in "${targets[@]}"; do
    bin=build/fuzz/fuzz_$t
    seeds=fuzz/corpus/$t
    scratch=$work/$t
    log=$work/$t.log
    rm -rf "$scratch"
    mkdir -p "$scratch"
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
    status=ok
    # -jobs/-workers stay at 1: the machine is shared.
    if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
        "${dict[@]}" "$scratch" "$seeds" >"$log" 2>&1; then
        status=FAILED
        failed=1
    fi
    # "#N DONE cov: C ft: F corp: K/..." is libFuzzer's last status line.
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
    printf '%-16s %10s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$status"
    if [ "$status" != ok ]; then
        grep -E 'ERROR|SUMMARY|broken promise|runtime error|Test unit written' "$log" | head -n 20 >&2 || true
        echo "full output: $log" >&2
    fi
done
if [ "${FUZZ_KEEP:-0}" != 1 ]; then
    rm -rf "$work"/*/
fi
if [ "$failed" -ne 0 ]; then
    echo "fuzz: a target failed (inputs in $artifacts/)" >&2
    exit 1
fi
