#!/bin/bash
# Runs xfstests in the Debian guest (under chroot; tests/xfstests/run.sh's boot script starts it)
# on one file system, FS=logfs or ext4 from /opt/bento/xfstests.conf. Test device /dev/nvme0n2,
# scratch device /dev/nvme0n3. Leaves check's output, the watchdog's kills, xfstests' results
# directory and the kernel log in /opt/bento/out for the host.
# check-commands: packages from tests/xfstests/guest-packages.txt
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# No udev in the guest: libdevmapper makes the /dev/mapper nodes itself (dm-flakey tests).
export DM_DISABLE_UDEV=1
# shellcheck source=/dev/null
. /opt/bento/xfstests.conf
out=/opt/bento/out
rm -rf "$out" && mkdir -p "$out"
TEST_DEV=/dev/nvme0n2 SCRATCH_DEV=/dev/nvme0n3
fail() { echo "XFST-ERROR $*"; exit 1; }

# xfstests' generic paths run `mkfs -t $FSTYP -- [OPTIONS] DEVICE [SIZE]` and
# `fsck -t $FSTYP -n DEVICE`; bentofs's type is "bento" (also in /proc/mounts), logfs runs in it.
cat >/usr/local/sbin/mkfs.bento <<'EOF'
#!/bin/sh
exec mkfs.logfs -f "$@"
EOF
cat >/usr/local/sbin/fsck.bento <<'EOF'
#!/bin/sh
exec fsck.logfs "$@"
EOF
chmod 755 /usr/local/sbin/mkfs.bento /usr/local/sbin/fsck.bento

echo xfstests-vm >/proc/sys/kernel/hostname # check and some tests print it
cfg=/opt/xfstests/local.config
{
    echo "export TEST_DEV=$TEST_DEV TEST_DIR=/mnt/test SCRATCH_DEV=$SCRATCH_DEV SCRATCH_MNT=/mnt/scratch"
    echo "export RESULT_BASE=/opt/xfstests/results"
} >"$cfg"
case $FS in
    logfs)
        insmod /opt/bento/bentofs.ko && insmod /opt/bento/logfs.ko || fail "insmod"
        echo 'export FSTYP=bento MOUNT_OPTIONS="-o fs=logfs" TEST_FS_MOUNT_OPTS="-o fs=logfs"' >>"$cfg"
        mkfs.logfs -f -q $TEST_DEV || fail "mkfs.logfs $TEST_DEV"
        ;;
    ext4)
        echo 'export FSTYP=ext4' >>"$cfg"
        mkfs.ext4 -q -F $TEST_DEV || fail "mkfs.ext4 $TEST_DEV"
        ;;
    *) fail "unknown FS=$FS" ;;
esac
echo "XFST: $FS on kernel $(uname -r), tests: $TESTS, watchdog ${TEST_TIMEOUT}s per test"

# xfstests has no per-test timeout: kill a test (and what it started) that runs longer than
# TEST_TIMEOUT; check then records it as failed, and the report calls it a hang. A test stuck in
# the kernel (D state) cannot be killed: then the VM's own timeout ends the run.
kill_tree() {
    local c
    kill -STOP "$1" 2>/dev/null
    for c in $(pgrep -P "$1"); do kill_tree "$c"; done
    kill -KILL "$1" 2>/dev/null
}
watchdog() {
    local pid et t seen=" "
    while sleep 10; do
        for pid in $(pgrep -f '^/bin/bash \./tests/'); do
            et=$(ps -o etimes= -p "$pid" | tr -d ' ') || continue
            [[ -n $et && $et -gt $TEST_TIMEOUT ]] || continue
            t=$(tr '\0' ' ' <"/proc/$pid/cmdline" | awk '{ print $2 }')
            t=${t#./tests/}
            [[ $seen == *" $pid "* ]] || echo "$t $et" >>"$out/hangs"
            seen+="$pid "
            echo "XFST-HANG $t: running for ${et}s, killing it"
            kill_tree "$pid"
        done
    done
}
watchdog &
wd=$!

cd /opt/xfstests || fail "no /opt/xfstests"
start=$(date +%s)
# shellcheck disable=SC2086  # TESTS is check's argument list
./check $TESTS 2>&1 | tee "$out/check.out"
rc=${PIPESTATUS[0]}
kill_tree "$wd" # and its sleep, which holds the console open
echo "XFST: check exited $rc after $(($(date +%s) - start)) s"
cp -a /opt/xfstests/results "$out/results"
dmesg >"$out/dmesg.txt"
[[ $FS != logfs ]] || { umount /mnt/test /mnt/scratch 2>/dev/null; rmmod logfs && rmmod bentofs || echo "XFST: rmmod failed"; }
echo "XFST-DONE $FS"
sync
exit 0
