#!/usr/bin/env bash
# bench/vm-fsync.sh - fsync after every 4 KiB write, on logfs in the kernel (mount -t bento) with
# fsync=rollforward (the default: fsync writes the file's data and nodes, no checkpoint), with
# fsync=checkpoint (a full checkpoint per fsync), and on ext4 (data=ordered, its journal), in ONE
# boot of the test VM (Debian's cloud kernel under QEMU; TCG, so absolute numbers are those of an
# emulated CPU and NVMe device: compare the ratios, not the numbers).
#
# Each configuration gets the same emulated NVMe namespace (a sparse image on the host, QEMU
# cache=writeback, so a flush costs the host an fdatasync), made afresh before every run
# (mkfs.logfs -f / mkfs.ext4 with eager inode table and journal initialisation). Per run, two
# phases (`fsync-t bench`, tests/vm/bentotest/fsync-t.c):
#   append     N 4 KiB writes at the end of a new file, each followed by fsync;
#   overwrite  N 4 KiB writes at random aligned offsets in a PREALLOC_MIB file (written and
#              fsync'd first, not timed), each followed by fsync.
# Measured: ops/s (writes + fsyncs, wall time of the phase) and the latency of each fsync call
# (p50, p99, max). After every run, outside the timing, the files are read back and compared with
# what was written, hashed again after a remount, and logfs is checked with fsck.logfs -n. The
# configurations' order rotates between repetitions.
#
#   bench/vm-fsync.sh                   (as root; builds like tests/vm/kernel-suite.sh)
#
# Environment: N [2000], PREALLOC_MIB [64], REPS [2], VM_MEM [2G], RESULTS [bench/results]
# Output: a table (per configuration and phase, medians over the repetitions), the ratios in the
# same run (logfs rollforward vs checkpoint, logfs rollforward vs ext4: ops/s and p50 latency),
# bench/results/vm-fsync-<time>.{txt,tsv} (the table, the runs) and the console log next to it.
# About 7 minutes with the defaults on 2 shared cores.
set -euo pipefail

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench/.." && pwd)
here=$repo/tests/vm
# shellcheck source=../tests/vm/lib.sh
. "$here/lib.sh"
# shellcheck source=../tests/vm/suite/host-lib.sh
. "$here/suite/host-lib.sh"
export KS_NAME=vm-fsync

N=${N:-2000}
PREALLOC_MIB=${PREALLOC_MIB:-64}
REPS=${REPS:-2}
RESULTS=${RESULTS:-$bench/results}
[[ $(id -u) -eq 0 ]] || ks_die "run as root"

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
work=$(mktemp -d /var/tmp/vm-fsync.XXXXXX)
trap 'rm -rf "$work"' EXIT
logdir=$work/logs
mkdir -p "$logdir"

ks_make "$logdir" || ks_say "(continuing despite the warnings: this is a benchmark)"
ks_tools "$logdir"
ks_snapshot "$work" "$logdir" || true
truncate -s 1G "$work/disk.img"

ov=$work/overlay
cat >"$ov/etc/vmtest/bench.conf" <<CONF
N=$N PREALLOC_MIB=$PREALLOC_MIB REPS=$REPS
PATH=\$PATH:$repo/target/release
CONF
cat >"$work/guest.sh" <<'GUEST'
#!/bin/sh
. /etc/vmtest/bench.conf
D=/dev/nvme0n1 M=/mnt/t
fail() { echo "BENCH-ERROR $*"; exit 1; }
insmod /lib/bento/bentofs.ko && insmod /lib/bento/logfs.ko || fail insmod
mkdir -p $M
mnt() {
    case $1 in
        rollforward|checkpoint) mount -t bento -o fs=logfs,fsync="$1" $D $M ;;
        ext4) mount -t ext4 $D $M ;;
    esac
}
run() {  # CONFIG REP
    case $1 in
        ext4) mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 $D ;;
        *) mkfs.logfs -q -f $D ;;
    esac >/tmp/mk.out 2>&1 || { cat /tmp/mk.out; fail "mkfs for $1"; }
    mnt "$1" || fail "mount $1"
    sync; echo 3 >/proc/sys/vm/drop_caches
    for phase in append overwrite; do
        out=$(fsync-t bench $M/$phase "$phase" "$N" "$PREALLOC_MIB") || fail "$1 $phase: $out"
        echo "BENCH $1 $2 $out"
        echo "$out" | sed -n 's/.* hash=\([0-9a-f]*\).*/\1/p' >/tmp/$phase.hash
    done
    umount $M || fail "umount $1"
    mnt "$1" || fail "remount $1"
    for phase in append overwrite; do
        [ "$(bento-t hash $M/$phase)" = "$(cat /tmp/$phase.hash)" ] || fail "$1: $phase differs after the remount"
    done
    umount $M || fail "umount $1"
    if [ "$1" != ext4 ]; then fsck.logfs -n $D >/tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; fail "fsck.logfs after $1"; }; fi
}
rep=1
while [ $rep -le "$REPS" ]; do
    case $((rep % 3)) in
        1) order="rollforward checkpoint ext4" ;;
        2) order="ext4 rollforward checkpoint" ;;
        0) order="checkpoint ext4 rollforward" ;;
    esac
    for c in $order; do run "$c" $rep; done
    rep=$((rep + 1))
done
rmmod logfs && rmmod bentofs || fail rmmod
echo "BENCH-DONE"
GUEST
"$here/mkinitramfs.sh" -b "$repo/target/release/mkfs.logfs" -b "$repo/target/release/fsck.logfs" \
    -s "$work/guest.sh" "$work/initramfs.gz" "$ov" >/dev/null
log=$RESULTS/vm-fsync-$stamp.console.log
ks_say "booting: $REPS runs of each configuration, $N fsyncs per phase, console $log"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rc=0
"$here/run-vm.sh" -q -t 3600 -m "${VM_MEM:-2G}" -l "$log" -d "$work/disk.img" "$work/initramfs.gz" || rc=$?
if [[ $rc -ne 0 ]] || ! grep -q '^BENCH-DONE' "$log"; then
    grep -E 'BENCH-ERROR|^#' "$log" >&2 || true
    ks_die "the VM run failed (exit $rc, log $log)"
fi
load1=$(cut -d' ' -f1-3 /proc/loadavg)

tsv=$RESULTS/vm-fsync-$stamp.tsv
{
    printf 'config\trep\tphase\tops\tsecs\tops_s\tfsync_p50_us\tfsync_p99_us\tfsync_max_us\tfsync_mean_us\n'
    # "BENCH CONFIG REP fsync-bench phase=P ops=N secs=S ops_s=R fsync_p50_us=.. ..."
    awk '$1 == "BENCH" && $4 == "fsync-bench" {
        for (i = 5; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", $2, $3, v["phase"], v["ops"], v["secs"],
            v["ops_s"], v["fsync_p50_us"], v["fsync_p99_us"], v["fsync_max_us"], v["fsync_mean_us"]
    }' "$log"
} >"$tsv"
python3 - "$tsv" "$N" "$REPS" "$load0" "$load1" "$(nproc)" >"$RESULTS/vm-fsync-$stamp.txt" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
med = lambda cfg, ph, k: statistics.median(float(r[k]) for r in rows if r['config'] == cfg and r['phase'] == ph)
cfgs = [('rollforward', 'logfs fsync=rollforward'), ('checkpoint', 'logfs fsync=checkpoint'), ('ext4', 'ext4')]
print(f"fsync after every 4 KiB write, in the VM (QEMU TCG, emulated NVMe), {sys.argv[2]} ops per phase, "
      f"medians of {sys.argv[3]} runs:")
for ph in ('append', 'overwrite'):
    print(f"  {ph}:")
    print(f"    {'':26} {'ops/s':>8} {'fsync p50':>10} {'p99':>9} {'max':>9}  (ms)")
    for c, name in cfgs:
        print(f"    {name:26} {med(c, ph, 'ops_s'):8.1f} {med(c, ph, 'fsync_p50_us') / 1000:10.2f} "
              f"{med(c, ph, 'fsync_p99_us') / 1000:9.2f} {med(c, ph, 'fsync_max_us') / 1000:9.2f}")
    rf, cp, e4 = (med(c, ph, 'ops_s') for c in ('rollforward', 'checkpoint', 'ext4'))
    lrf, lcp, le4 = (med(c, ph, 'fsync_p50_us') for c in ('rollforward', 'checkpoint', 'ext4'))
    print(f"    ratios (ops/s): rollforward/checkpoint {rf / cp:.2f}x, logfs rollforward/ext4 {rf / e4:.2f}x, "
          f"logfs checkpoint/ext4 {cp / e4:.2f}x  (> 1: the first is faster)")
    print(f"    ratios (fsync p50 latency): checkpoint/rollforward {lcp / lrf:.2f}x, ext4/logfs rollforward {le4 / lrf:.2f}x")
print(f"  host load average before/after: {sys.argv[4]} / {sys.argv[5]} on {sys.argv[6]} CPUs"
      " (the VM's 2 vCPUs share them: a loaded host spreads the latencies)")
PY
cat "$RESULTS/vm-fsync-$stamp.txt"
echo "results: $RESULTS/vm-fsync-$stamp.{txt,tsv}, console log $log"
