#!/usr/bin/env bash
# bench/run.sh - first logfs-fuse vs ext4 benchmark.
#
# Both file systems run on a loop device over a sparse image file of the same size, in the same
# directory of the host file system ($WORK), so both go through the block layer the same way.
# Every measured run gets a fresh image, a fresh mkfs and a fresh mount; the page cache is
# dropped right before each timed section. Runs are interleaved (ext4 first in odd repetitions,
# logfs first in even ones) so that drift in the shared host's load hits both alike.
#
# Phases (each REPS times per file system):
#   copy  cp -a of a tmpfs snapshot of /usr/include (same content, taken once, so the source's
#         reads never touch the host disk) into the mount, then `sync -f MOUNT` (syncfs).
#           copy_s          cp -a + syncfs.  For logfs-fuse syncfs only pushes dirty pages to the
#                           daemon (FUSE has no syncfs request for it), so it is NOT durable.
#           copy_durable_s  cp -a + syncfs + umount (+ for logfs: waiting for the daemon's
#                           exclusive flock on the device, i.e. its final checkpoint).
#           daemon_hwm_mib  logfs-fuse VmHWM (peak RSS) read after the syncfs, before umount.
#   seq   dd if=<200 MiB of random data in tmpfs> of=MOUNT/seq bs=1M conv=fsync -> seq_mibs.
#           seq_durable_s   the dd + umount (+ flock).
#   rand  a 256 MiB file is written (dd conv=fsync), the fs is unmounted and mounted again, the
#         cache dropped; then 20000 buffered 4 KiB pwrite()s at distinct random 4 KiB-aligned
#         offsets (fixed seed) and one fsync (bench/tools.py randwrite) -> rand_iops =
#         writes / (time of the writes + the fsync). O_DIRECT is not used (FUSE writeback
#         cache mode does not support it), for either file system.
#   raw   reference: the seq phase's dd straight onto a loop device over a fresh sparse image.
# Each run also records how much was written to the loop device (/sys/block/loopN/stat) up to
# the durable point, and the number of flushes it received; for logfs-fuse the daemon's CPU time.
# After every run (outside the timing) the result is checked: the fs is mounted again and the
# copy compared with the source (tools.py treecmp / cmp / randverify), and for logfs
# fsck.logfs -n is run on the device when the binary exists.
#
# Usage: bench/run.sh            (as root)
# Environment (defaults in brackets):
#   FSES may also name memfs: logfs-fuse -o fs=memfs (in memory), the FUSE floor, shown as an
#         extra column (not verified: it forgets everything at unmount).
#   REPS [3]  IMG_SIZE [4G]  WORK [/var/tmp/logfs-bench]  SEQ_MB [200]  RAND_FILE_MB [256]
#   RAND_WRITES [20000]  SEED [42]  PHASES ["copy seq rand raw"]  FSES ["ext4 logfs"]
#   COPY_SRC [/usr/include]  VERIFY [1]  BUILD [1] (cargo build --release first)
#   LOOP_DIO [0] (1: losetup --direct-io=on for both)  THREADS [] (logfs-fuse -o threads=N)
#   PROFILE [] "perf", "strace" or "perf strace": after the measured runs, one extra logfs run
#         per phase with the profiler attached to the daemon (not counted in the statistics);
#         reports go next to the results.
#   RESULTS [bench/results]
# Output: a table on stdout; $RESULTS/<timestamp>.tsv (every measurement), .json (summary and
# raw values), .meta.json (configuration, host), .log (progress).

set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)

REPS=${REPS:-3}
IMG_SIZE=${IMG_SIZE:-4G}
WORK=${WORK:-/var/tmp/logfs-bench}
SEQ_MB=${SEQ_MB:-200}
RAND_FILE_MB=${RAND_FILE_MB:-256}
RAND_WRITES=${RAND_WRITES:-20000}
SEED=${SEED:-42}
PHASES=${PHASES:-copy seq rand raw}
FSES=${FSES:-ext4 logfs}
COPY_SRC=${COPY_SRC:-/usr/include}
VERIFY=${VERIFY:-1}
BUILD=${BUILD:-1}
LOOP_DIO=${LOOP_DIO:-0}
THREADS=${THREADS:-}
PROFILE=${PROFILE:-}
RESULTS=${RESULTS:-$BENCH/results}
FLOCK_TIMEOUT=${FLOCK_TIMEOUT:-900}

TOOLS="$BENCH/tools.py"
LOGFS_FUSE="$REPO/target/release/logfs-fuse"
MKFS_LOGFS="$REPO/target/release/mkfs.logfs"
FSCK_LOGFS="$REPO/target/release/fsck.logfs"
SHM=/dev/shm/logfs-bench.$$
MNT="$WORK/mnt"
IMG="$WORK/image"
TS=$(date +%Y%m%d-%H%M%S)
RAW="$RESULTS/$TS.tsv"
LOG="$RESULTS/$TS.log"
CLK_TCK=$(getconf CLK_TCK)

# State for cleanup.
LOOP=""
DAEMON=""
MOUNTED=""
BG_PIDS=()

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- requirements -------------------------------------------------------------------------

[[ $(id -u) == 0 ]] || { echo "bench/run.sh: must run as root" >&2; exit 1; }
[[ -c /dev/fuse ]] || { echo "bench/run.sh: /dev/fuse missing" >&2; exit 1; }
need_pkgs=()
command -v mkfs.ext4 >/dev/null || need_pkgs+=(e2fsprogs)
command -v losetup >/dev/null || need_pkgs+=(mount)
command -v flock >/dev/null || need_pkgs+=(util-linux)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v cmp >/dev/null || need_pkgs+=(diffutils)
[[ $PROFILE == *perf* ]] && ! command -v perf >/dev/null && need_pkgs+=(linux-perf)
[[ $PROFILE == *strace* ]] && ! command -v strace >/dev/null && need_pkgs+=(strace)
if ((${#need_pkgs[@]})); then
    echo "bench/run.sh: installing ${need_pkgs[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
fi
if [[ $BUILD == 1 ]]; then
    (cd "$REPO" && cargo build --release -q -p logfs-fuse -p mkfs-logfs) ||
        { echo "bench/run.sh: cargo build failed (BUILD=0 uses the binaries as they are)" >&2; exit 1; }
fi
[[ -x $LOGFS_FUSE && -x $MKFS_LOGFS ]] || { echo "bench/run.sh: build logfs first" >&2; exit 1; }
[[ -x $FSCK_LOGFS ]] || FSCK_LOGFS=""

mkdir -p "$RESULTS" "$WORK" "$MNT" "$SHM"
mountpoint -q "$MNT" && die "$MNT is already a mount point"
printf 'phase\tfs\trep\tmetric\tvalue\n' >"$RAW"

# --- helpers ------------------------------------------------------------------------------

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RAW"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Sectors written and flushes done by the current loop device.
dev_stat() {
    local s
    read -ra s <"/sys/block/${LOOP#/dev/}/stat"
    echo "${s[6]} ${s[15]:-0}"
}

daemon_cpu_ticks() {
    [[ -n $DAEMON && -r /proc/$DAEMON/stat ]] || { echo 0; return; }
    local st
    st=$(<"/proc/$DAEMON/stat")
    st=${st##*) }
    # After "pid (comm) ": field 3 is state; utime and stime are fields 14 and 15.
    awk '{ print $12 + $13 }' <<<"$st"
}

daemon_hwm_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON/status"
}

# The logfs-fuse daemon serving LOOP on MNT (the forking parent is gone by then).
find_daemon() {
    local p a
    for p in /proc/[0-9]*; do
        mapfile -d '' -t a 2>/dev/null <"$p/cmdline" || continue
        if ((${#a[@]} >= 3)) && [[ ${a[0]} == "$LOGFS_FUSE" && ${a[-2]} == "$LOOP" && ${a[-1]} == "$MNT" ]]; then
            echo "${p#/proc/}"
            return 0
        fi
    done
    return 1
}

new_device() {
    rm -f "$IMG"
    truncate -s "$IMG_SIZE" "$IMG"
    local dio=()
    [[ $LOOP_DIO == 1 ]] && dio=(--direct-io=on)
    LOOP=$(losetup -f --show "${dio[@]}" "$IMG")
}

free_device() {
    if [[ -n $LOOP ]]; then
        losetup -d "$LOOP" || log "losetup -d $LOOP failed"
        LOOP=""
    fi
    rm -f "$IMG"
}

mkfs_dev() {
    case $1 in
        ext4) mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$LOOP" ;;
        logfs) "$MKFS_LOGFS" -q -f "$LOOP" ;;
        memfs) ;; # a blank device is a blank memfs
    esac
}

mount_dev() {
    case $1 in
        ext4) mount -t ext4 "$LOOP" "$MNT" ;;
        logfs | memfs)
            local opts=(-o "fs=$1")
            [[ -n $THREADS ]] && opts+=(-o "threads=$THREADS")
            "$LOGFS_FUSE" "${opts[@]}" "$LOOP" "$MNT"
            DAEMON=$(find_daemon) || die "logfs-fuse daemon not found"
            ;;
    esac
    MOUNTED=$1
}

# Unmount; for logfs wait until the daemon has let go of the device (final checkpoint done).
unmount_dev() {
    local i
    for i in 1 2 3 4 5; do
        umount "$MNT" && break
        sleep 1
        ((i < 5)) || die "umount $MNT failed"
    done
    if [[ $MOUNTED != ext4 ]]; then
        flock -w "$FLOCK_TIMEOUT" "$LOOP" true || die "logfs-fuse did not let go of $LOOP"
        DAEMON=""
    fi
    MOUNTED=""
}

cleanup() {
    local rc=$?
    set +e
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    if [[ -n $MOUNTED ]] || mountpoint -q "$MNT"; then
        umount "$MNT" 2>/dev/null || umount -l "$MNT"
    fi
    if [[ -n $DAEMON ]] && [[ -d /proc/$DAEMON ]]; then
        [[ -n $LOOP ]] && flock -w 120 "$LOOP" true
        [[ -d /proc/$DAEMON ]] && kill "$DAEMON" 2>/dev/null
    fi
    [[ -n $LOOP ]] && losetup -d "$LOOP"
    rm -f "$IMG"
    rm -rf "$SHM"
    rmdir "$MNT" 2>/dev/null
    ((rc == 0)) || echo "bench/run.sh: failed (exit $rc); see $LOG" >&2
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Snapshot of the state before the timed section; finish_io records what the device saw.
# CPU time of the shell's waited-for children (the workload commands): cutime + cstime.
client_cpu_ticks() {
    local st
    st=$(<"/proc/$$/stat")
    st=${st##*) }
    awk '{ print $14 + $15 }' <<<"$st"
}
start_io() {
    read -r IO_SECT0 IO_FL0 < <(dev_stat)
    CPU0=$(daemon_cpu_ticks)
    CCPU0=$(client_cpu_ticks)
    read -r LOAD0 _ </proc/loadavg
}
finish_io() {
    local phase=$1 fs=$2 rep=$3 s f
    read -r s f < <(dev_stat)
    rec "$phase" "$fs" "$rep" dev_write_mib "$(awk -v a="$IO_SECT0" -v b="$s" 'BEGIN { printf "%.1f", (b - a) * 512 / 1048576 }')"
    rec "$phase" "$fs" "$rep" dev_flushes "$((f - IO_FL0))"
    rec "$phase" "$fs" "$rep" loadavg1 "$LOAD0"
}
record_cpu() {
    local phase=$1 fs=$2 rep=$3
    [[ $fs != ext4 ]] || return 0
    rec "$phase" "$fs" "$rep" daemon_cpu_s "$(awk -v a="$CPU0" -v b="$(daemon_cpu_ticks)" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')"
}
record_client_cpu() {
    rec "$1" "$2" "$3" client_cpu_s "$(awk -v a="$CCPU0" -v b="$(client_cpu_ticks)" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')"
}

# Mount again, run a check, record its verdict; fsck the logfs device afterwards.
verify() {
    local phase=$1 fs=$2 rep=$3 out rc
    shift 3
    [[ $VERIFY == 1 ]] || return 0
    [[ $fs != memfs ]] || return 0 # memfs forgets everything at unmount
    mount_dev "$fs"
    out=$("$@" 2>&1) && rc=0 || rc=$?
    unmount_dev
    rec "$phase" "$fs" "$rep" verify "$( ((rc == 0)) && echo "ok" || echo "FAIL: ${out//$'\t'/ }" | head -c 400)"
    ((rc == 0)) || log "VERIFY FAILED: $phase $fs rep $rep: $out"
    if [[ $fs == logfs && -n $FSCK_LOGFS ]]; then
        out=$("$FSCK_LOGFS" -n "$LOOP" 2>&1) && rc=0 || rc=$?
        rec "$phase" "$fs" "$rep" fsck "$( ((rc == 0)) && echo "ok" || echo "exit $rc: $(tr '\n\t' '  ' <<<"$out" | head -c 300)")"
        ((rc == 0)) || log "fsck.logfs exit $rc after $phase rep $rep: $out"
    fi
}

# Profilers for the extra profiling runs (PROFILING=1): attached to the daemon after mount.
PROFILING=0
PROF_PIDS=()
start_profilers() {
    local phase=$1
    PROF_PIDS=()
    ((PROFILING)) || return 0
    if [[ $PROFILE == *perf* ]]; then
        perf record -q -F 999 -e cpu-clock -g -p "$DAEMON" -o "$RESULTS/$TS-perf-$phase.data" \
            >/dev/null 2>&1 &
        PROF_PIDS+=($!)
        BG_PIDS+=($!)
    fi
    if [[ $PROFILE == *strace* ]]; then
        strace -c -f -q -p "$DAEMON" -o "$RESULTS/$TS-strace-$phase.txt" &
        PROF_PIDS+=($!)
        BG_PIDS+=($!)
    fi
    ((${#PROF_PIDS[@]} == 0)) || sleep 1 # let them attach
}
# The daemon has exited (after the flock); perf and strace end with it.
finish_profilers() {
    local phase=$1 p
    ((PROFILING)) || return 0
    for p in "${PROF_PIDS[@]}"; do wait "$p" || true; done
    BG_PIDS=()
    if [[ $PROFILE == *perf* ]]; then
        perf report -q --stdio --no-children --sort dso,symbol -g none --percent-limit 0.5 \
            -i "$RESULTS/$TS-perf-$phase.data" >"$RESULTS/$TS-perf-$phase.txt" 2>/dev/null || true
        log "perf profile: $RESULTS/$TS-perf-$phase.txt"
    fi
    [[ $PROFILE == *strace* ]] && log "strace summary: $RESULTS/$TS-strace-$phase.txt"
    return 0
}

# --- phases -------------------------------------------------------------------------------

run_copy() {
    local fs=$1 rep=$2 t0 t1 t2
    new_device
    mkfs_dev "$fs"
    mount_dev "$fs"
    start_profilers copy
    drop_caches
    start_io
    t0=$(now)
    cp -a "$SHM/src/$(basename "$COPY_SRC")" "$MNT/"
    sync -f "$MNT"
    t1=$(now)
    record_client_cpu copy "$fs" "$rep"
    if [[ $fs != ext4 ]]; then
        rec copy "$fs" "$rep" daemon_hwm_mib "$(awk -v k="$(daemon_hwm_kib)" 'BEGIN { printf "%.1f", k / 1024 }')"
        record_cpu copy "$fs" "$rep"
    fi
    unmount_dev
    t2=$(now)
    finish_io copy "$fs" "$rep"
    finish_profilers copy
    rec copy "$fs" "$rep" copy_s "$(elapsed "$t0" "$t1")"
    rec copy "$fs" "$rep" copy_durable_s "$(elapsed "$t0" "$t2")"
    verify copy "$fs" "$rep" python3 "$TOOLS" treecmp "$SHM/src/$(basename "$COPY_SRC")" "$MNT/$(basename "$COPY_SRC")"
    free_device
    log "copy  $fs rep $rep: $(elapsed "$t0" "$t1") s, durable $(elapsed "$t0" "$t2") s"
}

run_seq() {
    local fs=$1 rep=$2 t0 t1 t2 s
    new_device
    mkfs_dev "$fs"
    mount_dev "$fs"
    start_profilers seq
    drop_caches
    start_io
    t0=$(now)
    dd if="$SHM/data" of="$MNT/seq" bs=1M count="$SEQ_MB" conv=fsync status=none
    t1=$(now)
    record_client_cpu seq "$fs" "$rep"
    record_cpu seq "$fs" "$rep"
    unmount_dev
    t2=$(now)
    finish_io seq "$fs" "$rep"
    finish_profilers seq
    s=$(elapsed "$t0" "$t1")
    rec seq "$fs" "$rep" seq_s "$s"
    rec seq "$fs" "$rep" seq_mibs "$(awk -v m="$SEQ_MB" -v s="$s" 'BEGIN { printf "%.2f", m / s }')"
    rec seq "$fs" "$rep" seq_durable_s "$(elapsed "$t0" "$t2")"
    verify seq "$fs" "$rep" cmp -n "$((SEQ_MB * 1048576))" "$SHM/data" "$MNT/seq"
    free_device
    log "seq   $fs rep $rep: $s s, $(awk -v m="$SEQ_MB" -v s="$s" 'BEGIN { printf "%.1f", m / s }') MiB/s"
}

run_rand() {
    local fs=$1 rep=$2 size=$((RAND_FILE_MB * 1048576)) out w f t2
    new_device
    mkfs_dev "$fs"
    mount_dev "$fs"
    dd if="$SHM/data" of="$MNT/rand" bs=1M count="$RAND_FILE_MB" conv=fsync status=none
    if [[ $fs != memfs ]]; then
        unmount_dev
        mount_dev "$fs"
    fi
    start_profilers rand
    drop_caches
    start_io
    out=$(python3 "$TOOLS" randwrite "$MNT/rand" --size "$size" --writes "$RAND_WRITES" --seed "$SEED")
    read -r w f <<<"$out"
    record_client_cpu rand "$fs" "$rep"
    record_cpu rand "$fs" "$rep"
    local t1
    t1=$(now)
    unmount_dev
    t2=$(now)
    finish_io rand "$fs" "$rep"
    finish_profilers rand
    rec rand "$fs" "$rep" rand_write_s "$w"
    rec rand "$fs" "$rep" rand_fsync_s "$f"
    rec rand "$fs" "$rep" rand_iops "$(awk -v n="$RAND_WRITES" -v w="$w" -v f="$f" 'BEGIN { printf "%.1f", n / (w + f) }')"
    rec rand "$fs" "$rep" rand_umount_s "$(elapsed "$t1" "$t2")"
    verify rand "$fs" "$rep" python3 "$TOOLS" randverify "$MNT/rand" "$SHM/data" --size "$size" --writes "$RAND_WRITES" --seed "$SEED"
    free_device
    log "rand  $fs rep $rep: writes $w s + fsync $f s = $(awk -v n="$RAND_WRITES" -v w="$w" -v f="$f" 'BEGIN { printf "%.0f", n / (w + f) }') IOPS"
}

run_raw() {
    local rep=$1 t0 t1 s
    new_device
    drop_caches
    start_io
    t0=$(now)
    dd if="$SHM/data" of="$LOOP" bs=1M count="$SEQ_MB" conv=fsync status=none
    t1=$(now)
    finish_io raw raw "$rep"
    s=$(elapsed "$t0" "$t1")
    rec raw raw "$rep" raw_s "$s"
    rec raw raw "$rep" raw_mibs "$(awk -v m="$SEQ_MB" -v s="$s" 'BEGIN { printf "%.2f", m / s }')"
    free_device
    log "raw       rep $rep: $s s, $(awk -v m="$SEQ_MB" -v s="$s" 'BEGIN { printf "%.1f", m / s }') MiB/s"
}

# --- main ---------------------------------------------------------------------------------

: >"$LOG"
log "results: $RAW (log $LOG)"
log "staging $COPY_SRC and $(( SEQ_MB > RAND_FILE_MB ? SEQ_MB : RAND_FILE_MB )) MiB of random data in $SHM"
mkdir -p "$SHM/src"
cp -a "$COPY_SRC" "$SHM/src/"
head -c "$(( (SEQ_MB > RAND_FILE_MB ? SEQ_MB : RAND_FILE_MB) * 1048576 ))" /dev/urandom >"$SHM/data"

entries=$(find "$SHM/src/$(basename "$COPY_SRC")" | wc -l)
python3 - "$RESULTS/$TS.meta.json" <<EOF
import json, os, platform, subprocess, sys
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
json.dump({
  "timestamp": "$TS", "reps": $REPS, "img_size": "$IMG_SIZE", "work": "$WORK",
  "host_fs": sh("findmnt -no FSTYPE,OPTIONS -T $WORK"),
  "seq_mb": $SEQ_MB, "rand_file_mb": $RAND_FILE_MB, "rand_writes": $RAND_WRITES, "seed": $SEED,
  "copy_src": "$COPY_SRC", "copy_entries": $entries, "loop_dio": $LOOP_DIO, "threads": "$THREADS",
  "kernel": platform.release(), "cpus": os.cpu_count(),
  "git": sh("cd $REPO && git rev-parse HEAD") + (" (dirty)" if sh("cd $REPO && git status --porcelain --untracked-files=no") else ""),
  "loadavg_start": open("/proc/loadavg").read().split()[:3],
}, open(sys.argv[1], "w"), indent=1)
EOF
log "copy source: $entries entries, $(du -sh "$SHM/src" | cut -f1)"

order() { # odd repetitions in FSES order, even ones reversed
    local rep=$1 list=($FSES)
    if ((rep % 2 == 0)); then
        local i
        for ((i = ${#list[@]} - 1; i >= 0; i--)); do echo "${list[i]}"; done
    else
        printf '%s\n' "${list[@]}"
    fi
}

for ((rep = 1; rep <= REPS; rep++)); do
    for phase in $PHASES; do
        if [[ $phase == raw ]]; then
            run_raw "$rep"
            continue
        fi
        for fs in $(order "$rep"); do
            "run_$phase" "$fs" "$rep"
        done
    done
done

if [[ -n $PROFILE ]]; then
    PROFILING=1
    RAW_MEASURED=$RAW
    RAW="$RESULTS/$TS-profile.tsv"
    printf 'phase\tfs\trep\tmetric\tvalue\n' >"$RAW"
    for phase in $PHASES; do
        [[ $phase == raw ]] && continue
        log "profiling run ($PROFILE): $phase"
        "run_$phase" logfs 0
    done
    RAW=$RAW_MEASURED
fi

python3 - "$RESULTS/$TS.meta.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF
echo
python3 "$TOOLS" summarize "$RAW" "$RESULTS/$TS.json" | tee -a "$LOG"
echo
echo "raw measurements: $RAW"
echo "summary:          $RESULTS/$TS.json"
