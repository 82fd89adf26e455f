#!/bin/bash
# Runs the file-system exerciser fsx (xfstests' ltp/fsx.c) on a branch mount of the bundled test
# server: one fsx run per seed and variant, each on a fresh server, cache directory and mount, and
# prints one line per run. After fsx passes, the mount is unmounted (uploading what is pending) and
# the object lakeFS holds must equal the file as the mount showed it once fsx had closed it ("final
# upload" check; with the `check` variant fsx has compared the whole file after every operation, so
# that is the bytes fsx expected).
# It fetches and builds nothing: build fsx yourself outside the repository, e.g.
#   git clone https://github.com/kdave/xfstests /tmp/xfstests && cd /tmp/xfstests &&
#   printf '%s\n' '#define _GNU_SOURCE 1' '#define STDC_HEADERS 1' '#define HAVE_SYS_TYPES_H 1' \
#     '#define HAVE_SYS_STAT_H 1' '#define HAVE_SYS_IOCTL_H 1' '#define HAVE_SYS_PARAM_H 1' \
#     '#define HAVE_UNISTD_H 1' '#define HAVE_SYS_FCNTL_H 1' '#define HAVE_ASSERT_H 1' \
#     '#define HAVE_STRING_H 1' '#define HAVE_LINUX_FALLOC_H 1' '#define HAVE_SYS_MMAN_H 1' \
#     '#define HAVE_ERR_H 1' '#define HAVE_COPY_FILE_RANGE 1' '#include <linux/fs.h>' \
#     '#include <getopt.h>' >config.h &&
#   gcc -O2 -I. -Isrc -o /tmp/fsx ltp/fsx.c        # a config.h of our own: no AIO/io_uring/xfslibs
# then:   scripts/fsx-suite.sh /tmp/fsx [OPS [SEED...]]      (default 10000 operations, seeds 1 to 5)
# Variants (FSX_SUITE_VARIANTS, default all five, space-separated):
#   rw         -R -W: read/write system calls only, no mmap
#   mmap       mapped reads and writes as well (each mapped write is an msync, so an fsync: an upload)
#   closeopen  as mmap, plus -c 50: close and reopen the file (and drop the page cache: needs root)
#              at about one operation in 50 (each close of a changed file uploads it)
#   fsync      -R -W -y: fsync after every write (an upload each), a file of at most 256 KiB
#   check      as mmap, plus -X: fsx reads the whole file back after every operation
# Every run: -S SEED -N OPS -l FSX_SUITE_LEN (1572864 = 1.5 MiB: the file crosses lakefuse's
# direct_upload_max of 1 MiB both ways) -o 65536 -a (no atomic writes: they need O_DIRECT), plus
# FSX_SUITE_FSX_FLAGS; fsx probes fallocate modes, punch hole, zero range, collapse/insert range,
# clone, dedupe, copy_file_range and RWF_DONTCACHE itself and disables what the file system refuses
# (listed per run). The bundled server keeps every uploaded version: a 10000-operation run uploads
# up to about 1 GiB (closeopen; mmap and check 0.8, fsync 0.45), a run whose estimate passes
# FSX_SUITE_MAX_UPLOAD (1 GiB) gets a smaller -l (said in its line), and each run's server data is
# deleted after it.
# Environment: LAKEFUSE_BIN (default build/lakefuse), FSX_SUITE_WORK (scratch dir, default a mktemp -d
# under /tmp; removed at the end), FSX_SUITE_KEEP (where failed runs are kept: fsx's output, its
# .fsxgood/.fsxlog/.fsxops, the file as the mount and as the server showed it, the daemon's and the
# server's logs; default /tmp/fsx-suite-<date>, made only if a run fails or its daemon logs more than its
# 'mounted' line), FSX_SUITE_OPTIONS (extra
# -o options, e.g. async_close), FSX_SUITE_VARIANTS, FSX_SUITE_LEN, FSX_SUITE_MAX_UPLOAD,
# FSX_SUITE_FSX_FLAGS (more fsx flags for every run, e.g. "-e 1"),
# FSX_SUITE_TIMEOUT (seconds per fsx run, default 900; then the FUSE connection is aborted).
# Exit status 1 if any run failed, 2 on a usage error. Everything it starts is stopped on exit.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
fsx=${1:?usage: $0 FSX_BINARY [OPS [SEED...]]}
[ -x "$fsx" ] && [ -f "$fsx" ] || { echo "$fsx: not an executable fsx" >&2; exit 2; }
fsx=$(readlink -f "$fsx")
ops=${2:-10000}
case $ops in ''|*[!0-9]*) echo "OPS must be a number: $ops" >&2; exit 2;; esac
shift $(( $# >= 2 ? 2 : 1 ))
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4 5)
for s in "${seeds[@]}"; do case $s in ''|*[!0-9]*) echo "a seed must be a number: $s" >&2; exit 2;; esac; done
read -r -a variants <<<"${FSX_SUITE_VARIANTS:-rw mmap closeopen fsync check}"
bin=${LAKEFUSE_BIN:-$here/build/lakefuse}
[ -x "$bin" ] || { echo "$bin: not built (make)" >&2; exit 2; }
len=${FSX_SUITE_LEN:-1572864}
timeout_s=${FSX_SUITE_TIMEOUT:-900}
keep=${FSX_SUITE_KEEP:-/tmp/fsx-suite-$(date -u +%Y%m%dT%H%M%S)}
variant_flags() {
    case $1 in
        rw) echo "-R -W" ;;
        mmap) echo "" ;;
        closeopen) echo "-c 50" ;;
        fsync) echo "-R -W -y" ;;
        check) echo "-X" ;;
        *) return 1 ;;
    esac
}
# The file length of a variant's run: FSX_SUITE_LEN (fsync: at most 256 KiB), made smaller when the
# run would upload more than FSX_SUITE_MAX_UPLOAD bytes. Measured on 10 seeds of 10000 operations
# (-l 1.5 MiB, 256 KiB for fsync): bytes uploaded per operation and byte of -l, in thousandths:
# mmap and check 48, closeopen 62, fsync 161 (rw: one upload at the end).
max_upload=${FSX_SUITE_MAX_UPLOAD:-1073741824}
variant_len() {
    local l=$len per
    case $1 in
        rw) echo "$l"; return ;;
        fsync) [ "$l" -gt 262144 ] && l=262144; per=170 ;;
        closeopen) per=65 ;;
        *) per=50 ;;
    esac
    if [ $((ops * l / 1000 * per)) -gt "$max_upload" ]; then
        l=$((max_upload / per * 1000 / ops / 65536 * 65536))
        [ "$l" -ge 65536 ] || l=65536
    fi
    echo "$l"
}
for v in "${variants[@]}"; do variant_flags "$v" >/dev/null || { echo "unknown variant $v" >&2; exit 2; }; done
work=${FSX_SUITE_WORK:-$(mktemp -d /tmp/fsx-suite.XXXXXX)}
mkdir -p "$work"
mnt=$work/mnt
server_pid= mount_pid= fsx_pid=

stop_mount() {  # unmount (the daemon uploads what is pending and exits); status: the daemon's
    local rc=0 deadline
    if mountpoint -q "$mnt" 2>/dev/null; then
        fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
    fi
    if [ -n "$mount_pid" ]; then
        deadline=$((SECONDS + 120))
        while kill -0 "$mount_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
        kill "$mount_pid" 2>/dev/null
        wait "$mount_pid" 2>/dev/null
        rc=$?
        mount_pid=
    fi
    return $rc
}
stop_stack() {
    stop_mount
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=
    fi
}
cleanup() {
    if [ -n "$fsx_pid" ] && kill -0 "$fsx_pid" 2>/dev/null; then  # interrupted: stop fsx first
        kill "$fsx_pid" 2>/dev/null
        wait "$fsx_pid" 2>/dev/null
    fi
    stop_stack
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export LAKECTL_CREDENTIALS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

api() {  # api create | api get PATH OUTFILE : the lakeFS API of the bundled server
    /usr/bin/python3 - "$@" <<'EOF'
import base64, json, os, sys, urllib.parse, urllib.request
auth = base64.b64encode(("%s:%s" % (os.environ["LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
                                    os.environ["LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"])).encode()).decode()
base = os.environ["LAKECTL_SERVER_ENDPOINT_URL"] + "/api/v1/repositories"
hdrs = {"Content-Type": "application/json", "Authorization": "Basic " + auth}
if sys.argv[1] == "create":
    urllib.request.urlopen(urllib.request.Request(base, method="POST", headers=hdrs, data=json.dumps(
        {"name": "fsx", "default_branch": "main", "storage_namespace": "s3://bucket/fsx"}).encode()), timeout=60)
else:
    url = base + "/fsx/refs/main/objects?" + urllib.parse.urlencode({"path": sys.argv[2], "presign": "false"})
    with urllib.request.urlopen(urllib.request.Request(url, headers=hdrs), timeout=120) as r, \
            open(sys.argv[3], "wb") as out:
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            out.write(b)
EOF
}

start_stack() {  # a fresh server, repository fsx and mount of fsx/main for one run; logs in $1
    local dir=$1 url= deadline
    rm -rf "$work/server" "$work/cache"
    mkdir -p "$work/server" "$work/cache" "$mnt"
    chmod 700 "$work/cache"
    : >"$work/server/out"
    "$here/tests/lakefs_server/lakefs_server" --listen 127.0.0.1:0 --data-dir "$work/server/data" \
        >"$work/server/out" 2>"$dir/server.log" </dev/null &
    server_pid=$!
    deadline=$((SECONDS + 60))
    while [ -z "$url" ] && [ $SECONDS -lt $deadline ] && kill -0 $server_pid 2>/dev/null; do
        url=$(sed -n 's/^lakefs_server listening on //p' "$work/server/out")
        [ -n "$url" ] || sleep 0.1
    done
    [ -n "$url" ] || { echo "the bundled server did not start: $(tail -5 "$dir/server.log")" >&2; return 1; }
    export LAKECTL_SERVER_ENDPOINT_URL=$url
    api create || return 1
    "$bin" mount -f -o "cache_dir=$work/cache${FSX_SUITE_OPTIONS:+,$FSX_SUITE_OPTIONS}" \
        lakefs://fsx/main "$mnt" >"$dir/mount.log" 2>&1 &
    mount_pid=$!
    deadline=$((SECONDS + 60))
    until mountpoint -q "$mnt" || [ $SECONDS -ge $deadline ] || ! kill -0 $mount_pid 2>/dev/null; do sleep 0.1; done
    mountpoint -q "$mnt" || { echo "mount failed: $(tail -5 "$dir/mount.log")" >&2; return 1; }
}

abort_fuse() {  # a hung run: abort the mount's FUSE connection so that everything returns
    local minor=${1#*:}
    [ -w "/sys/fs/fuse/connections/$minor/abort" ] && echo 1 >"/sys/fs/fuse/connections/$minor/abort"
}

can_drop=1
[ -w /proc/sys/vm/drop_caches ] || can_drop=0
echo "fsx $fsx: $ops operations, seeds ${seeds[*]}, variants ${variants[*]}, -l $len," \
     "options ${FSX_SUITE_OPTIONS:-(default)}, lakefuse $bin"
printf '%-6s %-10s %-8s %7s  %s\n' seed variant result seconds "notes"
failed=0 runs=0
declare -A opcount=() disabled=()
for seed in "${seeds[@]}"; do
    for v in "${variants[@]}"; do
        runs=$((runs + 1))
        if [ "$v" = closeopen ] && [ $can_drop = 0 ]; then
            printf '%-6s %-10s %-8s %7s  %s\n' "$seed" "$v" skipped - "needs a writable /proc/sys/vm/drop_caches (root)"
            continue
        fi
        run=$work/run.$seed.$v
        rm -rf "$run"
        mkdir -p "$run/fsx"
        name=fsx.$seed.$v
        notes= result=ok secs= extra=0
        if ! start_stack "$run"; then
            result=FAILED notes="setup failed"
        else
            dev=$(mountpoint -d "$mnt")
            vlen=$(variant_len "$v")
            # shellcheck disable=SC2046,SC2206
            cmd=("$fsx" -S "$seed" -N "$ops" -l "$vlen" -o 65536 -a $(variant_flags "$v") ${FSX_SUITE_FSX_FLAGS:-}
                 -P "$run/fsx/" --record-ops "$mnt/$name")
            { echo "# the suite's run (a fresh server and mount):"
              echo "LAKEFUSE_BIN=$bin FSX_SUITE_OPTIONS='${FSX_SUITE_OPTIONS:-}' FSX_SUITE_VARIANTS=$v" \
                   "FSX_SUITE_LEN=$len FSX_SUITE_FSX_FLAGS='${FSX_SUITE_FSX_FLAGS:-}' $here/scripts/fsx-suite.sh $fsx $ops $seed"
              echo "# fsx's command line (in the suite's scratch mount):"
              echo "${cmd[*]}"; } >"$run/command"
            t0=$SECONDS
            timeout -s KILL "$timeout_s" "${cmd[@]}" >"$run/fsx.out" 2>&1 &
            fsx_pid=$!
            wait $fsx_pid
            rc=$?
            fsx_pid=
            secs=$((SECONDS - t0))
            if [ $rc = 137 ]; then
                abort_fuse "$dev"
                result=FAILED notes="timeout after ${timeout_s}s (FUSE connection aborted)"
            elif [ $rc != 0 ]; then
                result=FAILED
                notes="fsx exit $rc: $(grep -m1 -E 'READ BAD DATA|Size error|bad|fail|error|short' "$run/fsx.out" | cut -c1-100)"
            fi
            dis=$(sed -n 's/^main: .*does not support \(fallocate mode FALLOC_FL_\)\{0,1\}\(.*\), disabling!$/\2/p' "$run/fsx.out" |
                  tr 'A-Z ' 'a-z_' | sed 's/_range$//' | sort | tr '\n' ' ' | sed 's/ $//')
            disabled[$dis]=1
            # the final upload: what the mount shows after fsx's close vs the object lakeFS holds after
            # the unmount (with async_close the unmount uploads what is queued)
            if [ $result = ok ]; then
                [ $can_drop = 1 ] && echo 3 >/proc/sys/vm/drop_caches
                cp "$mnt/$name" "$run/file.mount" 2>"$run/cp.err" || { result=FAILED notes="reading the file back: $(cat "$run/cp.err")"; }
            else
                timeout 60 cp "$mnt/$name" "$run/file.mount" 2>/dev/null
            fi
            stop_mount
            mrc=$?
            api get "$name" "$run/file.server" 2>"$run/get.err" || rm -f "$run/file.server"
            if [ $result = ok ]; then
                if [ ! -f "$run/file.server" ]; then
                    result=FAILED notes="no object after unmount: $(tail -1 "$run/get.err")"
                elif ! cmp -s "$run/file.mount" "$run/file.server"; then
                    result=FAILED
                    notes="final upload differs: mount $(stat -c %s "$run/file.mount") bytes, lakeFS $(stat -c %s "$run/file.server"), $(cmp "$run/file.mount" "$run/file.server" 2>&1 | head -1)"
                fi
            fi
            if [ $mrc != 0 ]; then
                [ $result = ok ] && notes=
                result=FAILED notes="${notes:+$notes; }lakefuse exited with status $mrc"
            fi
            extra=$(grep -vc '^mounted lakefs://' "$run/mount.log")
            [ "$extra" -gt 0 ] && notes="${notes:+$notes; }daemon log: $extra line(s), first: $(grep -v -m1 '^mounted lakefs://' "$run/mount.log" | cut -c1-120)"
            if [ -f "$run/fsx/$name.fsxops" ]; then
                while read -r n op; do opcount[$op]=$(( ${opcount[$op]:-0} + n )); done < <(
                    awk '{print ($1 == "skip") ? "skip_" $2 : $1} / close_open/ {print "(close_open)"}' "$run/fsx/$name.fsxops" | sort | uniq -c)
            fi
            [ $result = ok ] && notes="disabled: ${dis:-none}${notes:+; $notes}"
            [ "$vlen" = "$len" ] || notes="-l $vlen; $notes"
        fi
        printf '%-6s %-10s %-8s %7s  %s\n' "$seed" "$v" "$result" "${secs:--}" "$notes"
        if [ $result != ok ] || [ "${extra:-0}" -gt 0 ]; then
            mkdir -p "$keep"
            rm -rf "${keep:?}/$seed.$v"
            mv "$run" "$keep/$seed.$v"
            [ $result != ok ] && failed=$((failed + 1))
            echo "       kept in $keep/$seed.$v (command: $keep/$seed.$v/command)"
        else
            rm -rf "$run"
        fi
        stop_stack
        rm -rf "$work/server" "$work/cache"
    done
done
echo "operations done (all runs; skip_X: chosen but disabled or of no length; (close_open): -c's close+reopen):"
for op in "${!opcount[@]}"; do printf '  %-22s %d\n' "$op" "${opcount[$op]}"; done | sort
echo "disabled by fsx's probes: $(printf '[%s] ' "${!disabled[@]}")"
echo "$failed of $runs runs failed$([ $failed = 0 ] || echo "; kept in $keep")"
[ $failed = 0 ]
