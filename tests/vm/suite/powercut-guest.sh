#!/bin/sh
# One boot of the power-cut test inside the VM (busybox sh; tests/vm/powercut.sh installs it as
# /test.sh with fsync-t, bento-t and fsck.logfs). Disks: /dev/nvme0n1 the logfs volume,
# /dev/nvme0n2 the record disk (fsync-t's acknowledgement record in its first 8 KiB, and from
# 64 KiB a text "state": one line "c<K> <md5 of bento-t tree>" per checked cycle).
# Settings on the kernel command line: pc.cycle=K pc.cycles=N pc.seed=S pc.prevseed=P
# pc.mode=rollforward|checkpoint pc.delay=SECONDS.
#
#   1. mount -t bento -o fs=logfs (recovery of the power cut of the boot before: no fsck first);
#   2. cycle > 1: fsync-t check of c<K-1> (what cycle K-1's workload was promised), and the
#      directories of older cycles unchanged; umount; fsck.logfs -n;
#   3. cycle <= N: mount with fsync=MODE, fsync-t setup c<K>, fsync-t work c<K> in the
#      background, and after pc.delay seconds (and once the workload is seen to complete one more
#      operation: a hang fails the test) `echo b > /proc/sysrq-trigger`: the power cut (QEMU's
#      -no-reboot turns the reset into an exit). The last boot (K = N + 1) stops after 2.
#
# Output: "ok N - ..." / "not ok N - ..." lines, "# " notes; PC-CUT-ARMED before the workload
# starts. The exit code (the last boot, or a failed check) is the number of failed checks.
. /etc/vmtest/pc.conf  # PATH: where fsck.logfs is
D=/dev/nvme0n1 REC=/dev/nvme0n2 M=/mnt/pc
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^pc\.$1=//p" | tail -n1; }
cycle=$(arg cycle) cycles=$(arg cycles) seed=$(arg seed) prevseed=$(arg prevseed)
mode=$(arg mode) delay=$(arg delay)
fails=0 n=0
ok()  { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
note() { echo "# $*"; }
# t DESC CMD...: CMD succeeds (its output is shown either way)
t() {
    desc=$1; shift
    if "$@" >/tmp/t.out 2>&1; then ok "$desc"; else nok "$desc (exit $?)"; fi
    sed 's/^/#   /; s/^#   # /#   /' /tmp/t.out | head -n 100
}
finish() { echo "PC-RESULT cycle $cycle: $fails failed"; exit "$fails"; }
klog() { dmesg | grep -E 'bento|logfs' | grep -v 'loading out-of-tree\|module verification' | sed 's/^/#   klog: /'; }

echo "PC-BOOT cycle $cycle of $cycles (seed $seed, mode $mode, cut after ${delay}s)"
mkdir -p $M
insmod /lib/bento/bentofs.ko && insmod /lib/bento/logfs.ko || { nok "insmod bentofs, logfs"; finish; }
echo 1 >/proc/sys/kernel/sysrq
dmesg -c >/dev/null

# 1. mount: recovery
if mount -t bento -o fs=logfs $D $M 2>/tmp/mount.err; then
    ok "cycle $cycle: mount -t bento -o fs=logfs (after the power cut: recovery, no fsck)"
else
    nok "cycle $cycle: mount after the power cut failed: $(cat /tmp/mount.err)"; klog; finish
fi
klog
recovered=$(dmesg | sed -n 's/.*logfs: replayed \([0-9]*\) nodes.*/\1/p' | tail -n1)
note "PC-RECOVERED ${recovered:-0} nodes replayed"

# 2. what the last cycle was promised; the cycles before it
dd if=$REC bs=4096 skip=16 count=16 2>/dev/null | tr -d '\000' >/tmp/state
if [ "$cycle" -gt 1 ]; then
    prev=c$((cycle - 1))
    t "cycle $((cycle - 1)): $prev holds what its fsyncs promised (fsync-t check, seed $prevseed)" \
        fsync-t check $M/$prev "$prevseed" $REC
    while read -r dir sum; do
        got=$(bento-t tree $M/"$dir" | md5sum | cut -d' ' -f1)
        if [ "$got" = "$sum" ]; then ok "$dir (an older cycle's) unchanged"
        else nok "$dir (an older cycle's) changed: manifest md5 $got, was $sum"; fi
    done </tmp/state
    echo "$prev $(bento-t tree $M/$prev | md5sum | cut -d' ' -f1)" >>/tmp/state
fi
if umount $M; then ok "umount"; else nok "umount"; finish; fi
t "fsck.logfs -n $D: clean" fsck.logfs -n $D
[ "$fails" -eq 0 ] || finish
[ "$cycle" -le "$cycles" ] || finish

# 3. the workload, and the power cut
dd if=/tmp/state of=$REC bs=4096 seek=16 conv=sync,fsync 2>/dev/null || { nok "write the state"; finish; }
if mount -t bento -o fs=logfs,fsync="$mode" $D $M 2>/tmp/mount.err; then
    ok "mount -o fs=logfs,fsync=$mode"
else
    nok "mount -o fs=logfs,fsync=$mode: $(cat /tmp/mount.err)"; finish
fi
t "fsync-t setup $M/c$cycle (seed $seed)" fsync-t setup $M/c"$cycle" "$seed" $REC
[ "$fails" -eq 0 ] || finish
echo "PC-CUT-ARMED cycle $cycle: the workload runs; the power goes in ${delay}s"
FSYNC_T_PROGRESS=/tmp/progress fsync-t work $M/c"$cycle" "$seed" $REC &
pid=$!
sleep "$delay"
if ! kill -0 $pid 2>/dev/null; then
    wait $pid
    nok "the workload stopped before the power cut (exit $?)"; finish
fi
# The workload must be moving: a hang in logfs would otherwise pass unnoticed. Wait (up to 60 s)
# until one more operation completes, then cut.
progress() { tr -d ' \n' </tmp/progress 2>/dev/null; }
p0=$(progress) i=0
while sleep 0.2; [ "$(progress)" = "$p0" ]; do
    i=$((i + 1))
    if [ $i -ge 300 ]; then
        nok "the workload made no progress for 60 s (last operation done: ${p0:-none}); blocked tasks:"
        echo w >/proc/sysrq-trigger; sleep 2; finish
    fi
done
[ $i -lt 10 ] || note "the workload was stuck for $((i / 5)) s at operation ${p0:-0} (a slow host?)"
echo "PC-CUT cycle $cycle: echo b > /proc/sysrq-trigger"
echo b >/proc/sysrq-trigger
sleep 5
nok "still running 5 s after sysrq b"
finish
