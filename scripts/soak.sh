#!/usr/bin/env bash
# Soak run of issue 9's differential test (tests/mount/test_differential.py): the same harness as
# `make test`, longer. Prints the figures (operations, seeds, mismatches, kill cycles, wall time)
# and removes everything it made. Exit status 1 if any seed found a mismatch or a run failed otherwise (a harness error).
#
#   scripts/soak.sh [OPS [KILLS]]        defaults: 200000 plain operations, 300 kill cycles
#   env: SOAK_OPS, SOAK_KILLS, SOAK_FAULT_OPS (default OPS/10), SOAK_SEEDS (plain seeds, default 20),
#        SOAK_SEED_BASE (first seed, default 1000), LAKEFUSE_BIN (e.g. build/asan/lakefuse),
#        SOAK_LOG (a file that gets every run's whole pytest output: a mismatch's full history; the
#        terminal shows each run's last 60 lines)
# Needs `make all` (or `make sanitize` for LAKEFUSE_BIN=build/asan/lakefuse).
set -uo pipefail
cd "$(dirname "$0")/.."

ops=${1:-${SOAK_OPS:-200000}}
kills=${2:-${SOAK_KILLS:-300}}
fault_ops=${SOAK_FAULT_OPS:-$((ops / 10))}
nseeds=${SOAK_SEEDS:-20}
base=${SOAK_SEED_BASE:-1000}
fault_seeds=$(( nseeds / 2 > 0 ? nseeds / 2 : 1 ))
kill_seeds=$(( kills / 30 > 0 ? kills / 30 : 1 ))

work=$(mktemp -d "${TMPDIR:-/tmp}/lakefuse-soak.XXXXXX")
trap 'rm -rf "$work"' EXIT
report=$work/report.jsonl

seq_csv() { seq -s, "$1" "$2"; }

run() {  # run NAME SEEDS ENV...
    local name=$1 seeds=$2
    shift 2
    echo "== $name: seeds $seeds"
    env LAKEFUSE_DIFF_SEEDS="$seeds" LAKEFUSE_DIFF_REPORT="$report" "$@" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider --basetemp="$work/$name" \
        tests/mount/test_differential.py -k "$name" 2>&1 | tee -a "${SOAK_LOG:-/dev/null}" | tail -n 60
    # a harness error fails the run too (it is in no seed's mismatch count)
    [ "${PIPESTATUS[0]}" -eq 0 ] || runs_failed=$((runs_failed + 1))
    rm -rf "${work:?}/$name"
}

runs_failed=0
start=$(date +%s)
run plain "$(seq_csv "$base" $((base + nseeds - 1)))" LAKEFUSE_DIFF_OPS=$(( (ops + nseeds - 1) / nseeds ))
fb=$((base + 10000))
run faults "$(seq_csv "$fb" $((fb + fault_seeds - 1)))" \
    LAKEFUSE_DIFF_FAULT_OPS=$(( (fault_ops + fault_seeds - 1) / fault_seeds ))
kb=$((base + 20000))
run kill "$(seq_csv "$kb" $((kb + kill_seeds - 1)))" LAKEFUSE_DIFF_KILLS="$kills"
end=$(date +%s)

/usr/bin/python3 - "$report" $((end - start)) "$runs_failed" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])] if sys.argv[1] else []
wall = int(sys.argv[2])
print("\n== soak figures")
total_mismatch = 0
for mode in ("plain", "faults", "kill"):
    rs = [r for r in rows if r["mode"] == mode]
    bad = [r for r in rs if r.get("mismatches")]
    n = sum(r.get("mismatches", 0) for r in rs)
    total_mismatch += n
    print("%-7s seeds %3d  operations %8d  mount errors %6d  compares %5d  kill cycles %4d (%d during an operation)"
          "  conflicts %3d  commits %5d  mismatches %d (in %d seeds)  seconds %.0f" % (
              mode, len(rs), sum(r["ops"] for r in rs), sum(r["mount_errors"] for r in rs),
              sum(r["compares"] for r in rs), sum(r["kills"] for r in rs), sum(r["kills_during_op"] for r in rs),
              sum(r["conflicts"] for r in rs), sum(r["commits"] for r in rs), n, len(bad),
              sum(r.get("seconds", 0) for r in rs)))
    for r in bad:
        for line in r.get("first_lines", []):
            print("   %s" % line)
print("wall time %d s" % wall)
if int(sys.argv[3]):
    print("%s pytest run(s) failed: see their output above (a harness error is no seed's mismatch)" % sys.argv[3])
sys.exit(1 if total_mismatch or int(sys.argv[3]) else 0)
PY
