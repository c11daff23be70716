#!/usr/bin/env bash
# bench/vm-upgrade.sh - live upgrade in the kernel, in ONE boot of the test VM (Debian's cloud
# kernel under QEMU TCG: absolute times are those of an emulated CPU; compare ratios, and
# compare stalls with care).
#
# 1. Stall: two logfs mounts, each under 3 `bento-t churn` processes (write, fsync every 4th
#    file, rename over slots, read back and compare, readdir, unlink, mkdir/xattr/rmdir; every
#    call timed). UPGRADES upgrades alternate logfs.ko and logfs_v2.ko (`bento-t insmod`:
#    finit_module), the replaced module unloaded after each, PAUSE s apart. Per upgrade: the
#    longest call of the workload that overlapped the insmod (what an application saw), and the
#    time bentofs held calls (its "upgraded ... calls held N us" log line: from the first
#    mount's upgrade semaphore taken to the last one released; the line also splits the upgrade
#    into quiesce, export and import). Distribution over the upgrades: min / median / p90 / max.
# 2. Normal-path cost of the quiesce mechanism (the per-mount percpu rw-semaphore around every
#    call): two fresh mounts side by side, one made with bentofs quiesce=Y, one with quiesce=N
#    (module parameter read at mount time; such a mount cannot be upgraded). Per round, on
#    each mount in turn (which goes first alternates): `bento-t oploop` statfs, getxattr and
#    create+unlink for OPSECS s each (one cheap call into the file system per syscall, where
#    the semaphore's share is largest), and the churn, 2 processes, no fsync (CHURN_FSYNC=0:
#    metadata and small I/O), for SECS s. An unmeasured round 0, then REPS rounds. Ops per
#    second, medians, and the median of the per-round ratios Y/N.
#
#   bench/vm-upgrade.sh                 (as root; builds like tests/vm/kernel-suite.sh)
#
# Also: 4 upgrades of the idle mounts first (calls held: grace periods, export, import alone), and
# 10 s of the workload without upgrades after, cut into windows as long as the median insmod
# (the longest call in each: what the workload sees anyway on this emulated CPU).
#
# Environment: UPGRADES [20], PAUSE [1], REPS [5], SECS [6], OPSECS [3], VM_MEM [2G],
#              RESULTS [bench/results]
# Output: a table, bench/results/vm-upgrade-<time>.{tsv,txt} and the console log next to them.
# Takes about 5 + UPGRADES * (PAUSE + 3) / 60 + 2 * (REPS + 1) * (3 * OPSECS + SECS + 2) / 60
# minutes (10-12 with the defaults).
set -euo pipefail

bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$bench/.." && pwd)
here=$repo/tests/vm
# shellcheck source=../tests/vm/lib.sh
. "$here/lib.sh"
# shellcheck source=../tests/vm/suite/host-lib.sh
. "$here/suite/host-lib.sh"
export KS_NAME=vm-upgrade

UPGRADES=${UPGRADES:-20}
PAUSE=${PAUSE:-1}
REPS=${REPS:-5}
SECS=${SECS:-6}
OPSECS=${OPSECS:-3}
RESULTS=${RESULTS:-$bench/results}
[[ $(id -u) -eq 0 ]] || ks_die "run as root"

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"
work=$(mktemp -d /var/tmp/vm-upgrade.XXXXXX)
trap 'rm -rf "$work"' EXIT
logdir=$work/logs
mkdir -p "$logdir"

ks_make "$logdir" upgrade-modules || ks_say "(continuing despite the warnings: this is a benchmark)"
ks_tools "$logdir"
KS_UPGRADE=1 ks_snapshot "$work" "$logdir" || true
for d in 1 2 3 4; do truncate -s 1G "$work/d$d.img"; done

ov=$work/overlay
cat >"$ov/etc/vmtest/bench.conf" <<EOF
UPGRADES=$UPGRADES PAUSE=$PAUSE REPS=$REPS SECS=$SECS OPSECS=$OPSECS
PATH=\$PATH:$repo/target/release
EOF
cat >"$work/guest.sh" <<'EOF'
#!/bin/sh
. /etc/vmtest/bench.conf
D1=/dev/nvme0n1 D2=/dev/nvme0n2 D3=/dev/nvme0n3 D4=/dev/nvme0n4
fail() { echo "BENCH-ERROR $*"; exit 1; }
insmod /lib/bento/bentofs.ko && insmod /lib/bento/logfs.ko || fail insmod
mkdir -p /mnt/u1 /mnt/u2 /mnt/q
echo 4 >/proc/sys/vm/drop_caches

# upgrade I KIND: one upgrade (odd I: to logfs_v2, even: back to logfs), logged, old module out
upgrade() {
    if [ $(($1 % 2)) -eq 1 ]; then new=logfs_v2 old=logfs; else new=logfs old=logfs_v2; fi
    dmesg -c >/dev/null
    w=$(bento-t insmod /lib/bento/$new.ko) || fail "upgrade $1: $w"
    q=$(dmesg | sed -n 's/.*bento: upgraded logfs .* 2 mounts, calls held \([0-9]*\) us.*/\1/p')
    echo "$2 $1 $w ${q:-0}"
    dmesg | grep 'bento: upgraded' | sed "s/^/KLOG $2 /"
    bento-t rmmod $old >/dev/null || fail "rmmod $old"
}

# 1. stall per upgrade
mkfs.logfs -q $D1 && mkfs.logfs -q $D2 || fail mkfs
mount -t bento -o fs=logfs $D1 /mnt/u1 && mount -t bento -o fs=logfs $D2 /mnt/u2 || fail mount
# idle: some data on the mounts, no calls during the upgrades
for m in u1 u2; do for w in 1 2 3; do
    mkdir -p /mnt/$m/w$w; bento-t pwrite /mnt/$m/w$w/seed 0 1M $w >/dev/null
done; done
sync
i=1
while [ $i -le 4 ]; do upgrade $i IDLE; sleep 1; i=$((i + 1)); done
pids=""
for m in u1 u2; do for w in 1 2 3; do
    bento-t churn /mnt/$m/w$w /tmp/stop /tmp/churn-$m-$w.out 2>/tmp/churn-$m-$w.err &
    pids="$pids $!"
done; done
sleep 3
i=1
while [ $i -le "$UPGRADES" ]; do upgrade $i WINDOW; sleep "$PAUSE"; i=$((i + 1)); done
# the same workload without upgrades, for comparison
c0=$(bento-t now | tr -d .)000
sleep 10
c1=$(bento-t now | tr -d .)000
echo "CONTROL $c0 $c1"
touch /tmp/stop
for p in $pids; do wait $p || fail "a churn process failed: $(cat /tmp/churn-*.err | head -5)"; done
cat /tmp/churn-*.out | awk '/^calls/ { c += $2; f += $4 } END { print "CHURN calls=" c " fails=" f }'
cat /tmp/churn-*.out | grep -v '^calls' | sed 's/^/SLOW /'
umount /mnt/u1 && umount /mnt/u2 || fail umount
fsck.logfs -n $D1 >/dev/null && fsck.logfs -n $D2 >/dev/null || fail fsck

# 2. quiesce on / off: two fresh mounts side by side, one made with quiesce=Y, one with N;
# short runs alternate between them (so a change in the host's load hits both alike)
mkdir -p /mnt/qY /mnt/qN
mkfs.logfs -q $D3 && mkfs.logfs -q $D4 || fail mkfs
mount -t bento -o fs=logfs $D3 /mnt/qY || fail "mount quiesce=Y"
echo N >/sys/module/bentofs/parameters/quiesce
mount -t bento -o fs=logfs $D4 /mnt/qN || fail "mount quiesce=N"
echo Y >/sys/module/bentofs/parameters/quiesce
run() {  # Y|N REP WORKLOAD
    case $3 in
        churn)
            rm -f /tmp/qstop
            CHURN_FSYNC=0 bento-t churn /mnt/q$1/a /tmp/qstop /tmp/qa.out 2>/tmp/qa.err & pa=$!
            CHURN_FSYNC=0 bento-t churn /mnt/q$1/b /tmp/qstop /tmp/qb.out 2>/tmp/qb.err & pb=$!
            t0=$(bento-t now)
            sleep "$SECS"
            touch /tmp/qstop
            wait $pa && wait $pb || fail "churn with quiesce=$1: $(cat /tmp/qa.err /tmp/qb.err | head -5)"
            t1=$(bento-t now)
            awk -v q="$1" -v r="$2" -v a="$t0" -v b="$t1" '/^calls/ { c += $2 } END { printf "QUIESCE churn %s %s %d %.3f\n", q, r, c, b - a }' /tmp/qa.out /tmp/qb.out ;;
        *)
            o=$(bento-t oploop "$3" /mnt/q$1 "$OPSECS") || fail "oploop $3 on quiesce=$1"
            echo "QUIESCE $3 $1 $2 $(echo "$o" | cut -d' ' -f2,4)" ;;
    esac
}
rep=0
while [ $rep -le "$REPS" ]; do
    for w in statfs getxattr create churn; do
        if [ $((rep % 2)) = 1 ]; then run Y $rep $w; run N $rep $w; else run N $rep $w; run Y $rep $w; fi
    done
    rep=$((rep + 1))
done
umount /mnt/qY && umount /mnt/qN || fail umount
fsck.logfs -n $D3 >/dev/null && fsck.logfs -n $D4 >/dev/null || fail fsck
rmmod logfs && rmmod bentofs || fail rmmod
echo "BENCH-DONE"
EOF
"$here/mkinitramfs.sh" -b "$repo/target/release/mkfs.logfs" -b "$repo/target/release/fsck.logfs" \
    -s "$work/guest.sh" "$work/initramfs.gz" "$ov" >/dev/null
log=$RESULTS/vm-upgrade-$stamp.console.log
ks_say "booting: $UPGRADES upgrades, then $REPS rounds of Y/N runs; console $log"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rc=0
"$here/run-vm.sh" -q -t 3600 -m "${VM_MEM:-2G}" -l "$log" -d "$work/d1.img" -d "$work/d2.img" \
    -d "$work/d3.img" -d "$work/d4.img" "$work/initramfs.gz" || rc=$?
if [[ $rc -ne 0 ]] || ! grep -q '^BENCH-DONE' "$log"; then
    grep -E 'BENCH-ERROR|^#' "$log" >&2 || true
    ks_die "the VM run failed (exit $rc, log $log)"
fi
load1=$(cut -d' ' -f1-3 /proc/loadavg)

tsv=$RESULTS/vm-upgrade-$stamp.tsv
python3 - "$log" "$tsv" "$load0" "$load1" "$(nproc)" <<'EOF' | tee "$RESULTS/vm-upgrade-$stamp.txt"
import re, statistics, sys
log, tsv = sys.argv[1], sys.argv[2]
windows, slow, quiesce, churn, phases, idle, control = [], [], [], '', [], [], None
for line in open(log, errors='replace'):
    f = line.split()
    if not f:
        continue
    if f[0] == 'WINDOW':
        windows.append((int(f[1]), int(f[2]), int(f[3]), int(f[4])))
    elif f[0] == 'IDLE':
        idle.append(int(f[4]) / 1e3)
    elif f[0] == 'CONTROL':
        control = (int(f[1]), int(f[2]))
    elif f[0] == 'SLOW':
        slow.append((int(f[1]), int(f[2])))
    elif f[0] == 'QUIESCE':
        quiesce.append((f[1], f[2], int(f[3]), int(f[4]), float(f[5])))
    elif f[0] == 'CHURN':
        churn = ' '.join(f[1:])
    elif f[0] == 'KLOG' and f[1] == 'WINDOW':
        m = re.search(r'quiesce (\d+) us, export (\d+) us, import (\d+) us', line)
        if m:
            phases.append([int(x) / 1e3 for x in m.groups()])
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]
def dist(v):
    return f"min {min(v):7.1f}  median {statistics.median(v):7.1f}  p90 {pct(v, 90):7.1f}  max {max(v):7.1f}"
stall, held = [], []
with open(tsv, 'w') as out:
    out.write('kind\tn\tvalue1\tvalue2\n')
    for n, s, e, q in windows:
        w = max([d for t, d in slow if t < e and t + d > s] or [0])
        stall.append(w / 1e6)
        held.append(q / 1e3)
        out.write(f"upgrade\t{n}\t{w / 1e6:.3f}\t{q / 1e3:.3f}\n")
    for w, q, r, c, secs in quiesce:
        out.write(f"{w}-quiesce-{q}\t{r}\t{c}\t{secs:.3f}\n")
# Without upgrades: the longest call in consecutive windows as long as the median insmod.
base = []
if control:
    L = statistics.median([e - s for n, s, e, q in windows])
    t = control[0]
    while t + L <= control[1]:
        base.append(max([d for s, d in slow if s < t + L and s + d > t] or [0]) / 1e6)
        t += L
print(f"live upgrade, 2 mounts under 6 checked churn processes ({churn}), {len(windows)} upgrades v1 <-> v2:")
print(f"  longest call overlapping an upgrade (ms):        {dist(stall)}")
if base:
    print(f"  the same without upgrades, {len(base)} windows (ms):     {dist(base)}")
print(f"  calls held by bentofs, both mounts (ms):         {dist(held)}")
for i, name in enumerate(('quiesce (slowest mount)', 'export (slowest mount)', 'import (slowest mount)')):
    print(f"    {name + ' (ms):':45} {dist([p[i] for p in phases])}")
print(f"  idle mounts, calls held (ms), {len(idle)} upgrades:     {dist(idle)}")
print("normal path, quiesce=Y (percpu rw-semaphore around every call) vs N, same boot, runs alternating:")
print(f"  {'workload':34} {'Y ops/s':>10} {'N ops/s':>10}  Y/N per round: median [min .. max]")
for w, desc in (('statfs', 'statfs(2) (one call each)'), ('getxattr', 'getxattr(2) (one call each)'),
                ('create', 'open(O_CREAT)+close+unlink'), ('churn', 'churn x2, no fsync (calls)')):
    y = {r: c / s for ww, q, r, c, s in quiesce if ww == w and q == 'Y' and r != 0}
    n = {r: c / s for ww, q, r, c, s in quiesce if ww == w and q == 'N' and r != 0}
    if not y or not n:
        continue
    ratios = [y[r] / n[r] for r in y if r in n]
    print(f"  {desc:34} {statistics.median(y.values()):10.0f} {statistics.median(n.values()):10.0f}  "
          f"{statistics.median(ratios):.3f} [{min(ratios):.3f} .. {max(ratios):.3f}] n={len(ratios)}  (< 1: the semaphore costs)")
print(f"  host load average before/after: {sys.argv[3]} / {sys.argv[4]} on {sys.argv[5]} CPUs")
EOF
echo "results: $tsv, console log $log"
