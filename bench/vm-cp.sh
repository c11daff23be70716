#!/usr/bin/env bash
# bench/vm-cp.sh - `cp -a /usr/include` + sync onto logfs in the kernel (mount -t bento) versus
# ext4, in ONE boot of the test VM (Debian's cloud kernel under QEMU; TCG, so absolute numbers
# are those of an emulated CPU: compare the ratio, not the seconds).
#
# Both file systems get the same emulated NVMe namespace (a sparse image on the host, QEMU
# cache=writeback), made afresh before every run (mkfs.logfs -f / mkfs.ext4 with eager inode
# table and journal initialisation, so no background init competes). The source is a tmpfs copy
# of /usr/include inside the VM (staged once from an ext4 image), so its reads cost the same for
# both. Per run: drop caches, then time `cp -a SRC MNT/` + `sync` (GNU cp), then `umount`
# separately. One unmeasured warm-up run per file system first; then REPS runs each, the order
# alternating (logfs first in odd repetitions, ext4 first in even ones). After every run, outside
# the timing, the copy is checked against the source (bento-t tree manifests, after a remount),
# and logfs with fsck.logfs -n.
#
#   bench/vm-cp.sh                      (as root; builds like tests/vm/kernel-suite.sh)
#
# Environment: REPS [5], WARMUP [1], SRC [/usr/include], VM_MEM [3G], VM_SMP [2],
#              RESULTS [bench/results]
# Output: a table (median [min..max] seconds per file system, ratio logfs/ext4 of the medians
# and of the minimums: > 1 means logfs is slower; the host's load average, since other work on
# the host stretches TCG runs), bench/results/vm-cp-<time>.tsv, and the console log next to it.
# A run takes about 5 + 2 * (REPS + WARMUP) * 0.5 minutes.
set -euo pipefail

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench/.." && pwd)
here=$repo/tests/vm
# shellcheck source=../tests/vm/lib.sh
. "$here/lib.sh"
# shellcheck source=../tests/vm/suite/host-lib.sh
. "$here/suite/host-lib.sh"
export KS_NAME=vm-cp

REPS=${REPS:-5}
WARMUP=${WARMUP:-1}
SRC=${SRC:-/usr/include}
RESULTS=${RESULTS:-$bench/results}
[[ $(id -u) -eq 0 ]] || ks_die "run as root"

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
work=$(mktemp -d /var/tmp/vm-cp.XXXXXX)
trap 'rm -rf "$work"' EXIT
logdir=$work/logs
mkdir -p "$logdir"

ks_make "$logdir" || ks_say "(continuing despite the warnings: this is a benchmark)"
ks_tools "$logdir"
ks_snapshot "$work" "$logdir" || true
ks_src_image "$work/src.img" "$SRC"
truncate -s 4G "$work/disk.img"

ov=$work/overlay
cat >"$ov/etc/vmtest/bench.conf" <<EOF
REPS=$REPS WARMUP=$WARMUP
PATH=\$PATH:$repo/target/release
EOF
cat >"$work/guest.sh" <<'EOF'
#!/bin/sh
. /etc/vmtest/bench.conf
SRCDEV=/dev/nvme0n1 D=/dev/nvme0n2
fail() { echo "BENCH-ERROR $*"; exit 1; }
insmod /lib/bento/bentofs.ko && insmod /lib/bento/logfs.ko || fail insmod
mkdir -p /src /mnt/t /tmp/stage
mount -t ext4 -o ro $SRCDEV /src || fail "mount source"
/usr/bin/cp -a /src/include /tmp/stage/ || fail "stage"
umount /src
bento-t tree /tmp/stage/include >/tmp/src.manifest || fail "manifest"
echo "# source: $(wc -l </tmp/src.manifest) entries, $(du -sk /tmp/stage/include | cut -f1) KiB in tmpfs"
mk() {
    case $1 in
        logfs) mkfs.logfs -q -f $D && mount -t bento -o fs=logfs $D /mnt/t ;;
        ext4) mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 $D && mount -t ext4 $D /mnt/t ;;
    esac
}
mnt() { case $1 in logfs) mount -t bento -o fs=logfs $D /mnt/t ;; ext4) mount -t ext4 $D /mnt/t ;; esac; }
run() {  # FS REP
    mk "$1" >/tmp/mk.out 2>&1 || { cat /tmp/mk.out; fail "mkfs/mount $1"; }
    sync; echo 3 >/proc/sys/vm/drop_caches
    t0=$(bento-t now)
    /usr/bin/cp -a /tmp/stage/include /mnt/t/ || fail "cp to $1"
    sync
    t1=$(bento-t now)
    umount /mnt/t || fail "umount $1"
    t2=$(bento-t now)
    cp_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    um_s=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
    # check, outside the timing
    mnt "$1" || fail "remount $1"
    bento-t tree /mnt/t/include >/tmp/copy.manifest || fail "manifest of the copy on $1"
    umount /mnt/t
    cmp -s /tmp/src.manifest /tmp/copy.manifest || { diff /tmp/src.manifest /tmp/copy.manifest | head; fail "copy on $1 differs"; }
    if [ "$1" = logfs ]; then fsck.logfs -n $D >/tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; fail "fsck.logfs"; }; fi
    echo "BENCH $1 $2 cp_sync_s=$cp_s umount_s=$um_s"
}
if [ "$WARMUP" = 1 ]; then run logfs 0; run ext4 0; fi
rep=1
while [ $rep -le "$REPS" ]; do
    if [ $((rep % 2)) = 1 ]; then run logfs $rep; run ext4 $rep; else run ext4 $rep; run logfs $rep; fi
    rep=$((rep + 1))
done
rmmod logfs && rmmod bentofs || fail rmmod
echo "BENCH-DONE"
EOF
"$here/mkinitramfs.sh" -k dm-mod -b /usr/bin/cp -b "$repo/target/release/mkfs.logfs" \
    -b "$repo/target/release/fsck.logfs" -s "$work/guest.sh" "$work/initramfs.gz" "$ov" >/dev/null
log=$RESULTS/vm-cp-$stamp.console.log
ks_say "booting: $REPS runs per file system (+ $WARMUP warm-up), console $log"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rc=0
"$here/run-vm.sh" -q -t 3600 -m "${VM_MEM:-3G}" -l "$log" -d "$work/src.img" -d "$work/disk.img" \
    "$work/initramfs.gz" || rc=$?
if [[ $rc -ne 0 ]] || ! grep -q '^BENCH-DONE' "$log"; then
    grep -E 'BENCH-ERROR|^#' "$log" >&2 || true
    ks_die "the VM run failed (exit $rc, log $log)"
fi

tsv=$RESULTS/vm-cp-$stamp.tsv
{
    printf 'fs\trep\tcp_sync_s\tumount_s\n'
    sed -n 's/^BENCH \([a-z0-9]*\) \([0-9]*\) cp_sync_s=\([0-9.]*\) umount_s=\([0-9.]*\).*/\1\t\2\t\3\t\4/p' "$log"
} >"$tsv"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$tsv" "$REPS" "$load0" "$load1" "$(nproc)" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter='\t') if r['rep'] != '0']
def stats(fs, key):
    v = sorted(float(r[key]) for r in rows if r['fs'] == fs)
    return statistics.median(v), v[0], v[-1], len(v)
print(f"cp -a /usr/include + sync in the VM (QEMU TCG, emulated NVMe), {sys.argv[2]} runs each:")
print(f"  {'':6} {'cp -a + sync (s)':>28} {'umount (s)':>12}")
med = {}
for fs in ('logfs', 'ext4'):
    m, lo, hi, n = stats(fs, 'cp_sync_s')
    um = stats(fs, 'umount_s')[0]
    med[fs] = (m, um)
    print(f"  {fs:6} {m:8.2f} [{lo:6.2f} .. {hi:6.2f}] n={n} {um:10.2f}")
r = med['logfs'][0] / med['ext4'][0]
r2 = (med['logfs'][0] + med['logfs'][1]) / (med['ext4'][0] + med['ext4'][1])
rmin = stats('logfs', 'cp_sync_s')[1] / stats('ext4', 'cp_sync_s')[1]
print(f"  ratio logfs/ext4: medians {r:.2f}x (with umount {r2:.2f}x), minimums {rmin:.2f}x  (> 1: logfs slower)")
print(f"  host load average before/after: {sys.argv[3]} / {sys.argv[4]} on {sys.argv[5]} CPUs"
      " (the VM's 2 vCPUs share them: a loaded host spreads the runs)")
EOF
echo "results: $tsv, console log $log"
