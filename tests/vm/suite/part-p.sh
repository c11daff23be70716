# Part p of the kernel suite: panic containment (docs/architecture.md §7). Sourced by guest.sh
# (busybox sh), whose helpers and settings it uses; installed as /usr/lib/bento/part-p.sh.
#
# Four mounts A B C D on logfs_panic.ko (a test build: `setfattr -n trusted.logfs.panic` panics
# on demand). B runs a checked workload throughout. A panics in a call (setxattr, holding the
# volume lock) with calls of A in flight, C in its background work, D in the export of a live
# upgrade to logfs.ko. Each panic fails only its mount: the panicking call and every later call
# there get EIO at once, calls in flight end, B never sees an error and is upgraded, the failed
# mounts unmount, their module then unloads, and the volumes are consistent (fsck) with their
# synced data. No oops: part_end checks the kernel log.

# within SECS CMD...: CMD with a deadline; its exit status, or 124 when it has not finished (it is
# left behind: a hang is what this part looks for). Its output in /tmp/within.out.
within() {
    secs=$1; shift
    rm -f /tmp/within.rc
    ( "$@" >/tmp/within.out 2>&1; echo $? >/tmp/within.rc ) &
    w_end=$(awk -v a="$(up)" -v s="$secs" 'BEGIN { print a + s }')
    while [ ! -s /tmp/within.rc ]; do
        awk -v a="$(up)" -v e="$w_end" 'BEGIN { exit !(a >= e) }' && return 124
        sleep 0.1 2>/dev/null || sleep 1
    done
    return "$(cat /tmp/within.rc)"
}
# peio DESC CMD...: CMD fails with EIO at once (within 5 s, on a slow emulated machine)
peio() {
    desc=$1 t0=$(up); shift
    within 5 "$@"; rc=$?
    if [ $rc -eq 124 ]; then nok "$desc: still running after 5 s"
    elif [ $rc -ne 0 ] && grep -qE 'EIO|Input/output error' /tmp/within.out; then ok "$desc: EIO$(took "$t0")"
    else nok "$desc: exit $rc, not EIO"; sed 's/^/#   /' /tmp/within.out | head -5; fi
}
# pstate DEV: its /proc/fs/bento/mounts line without the device: "logfs VERSION MODULE [failed]"
pstate() { awk -v d="$(kname "$1")" '$1 == d { $1 = ""; sub(/^ /, ""); print }' /proc/fs/bento/mounts; }
# pwait DEV SECS: until the mount is failed
pwait() { i=0; while [ $i -lt "$2" ]; do pstate "$1" | grep -q ' failed$' && return 0; sleep 1; i=$((i + 1)); done; return 1; }

part_begin p "panic containment: a panic fails its mount only (in a call, the background work, an upgrade's export)"
PA=$DISK_PAN1 PB=$DISK_PAN2 PC=$DISK_PAN3 PD=$DISK_PAN4
pver="$VER+panic" pre=$(echo "$VER" | sed 's/[.]/[.]/g')'[+]panic'
t "insmod logfs_panic.ko (a test build: trusted.logfs.panic panics on demand)" insmod /lib/bento/logfs_panic.ko
t "... rmmod logfs (replaced, no mounts)" rmmod logfs
dd if=/dev/urandom of=/tmp/pdata bs=64k count=32 2>/dev/null
for x in a b c d; do
    eval dev=\$P$(echo $x | tr a-z A-Z)
    mkdir -p /mnt/p$x
    if mkfs.logfs -q "$dev" && mnt_logfs "$dev" /mnt/p$x && /usr/bin/cp /tmp/pdata /mnt/p$x/data &&
        mkdir /mnt/p$x/dir && echo "$x" >/mnt/p$x/dir/small; then :; else nok "mkfs, mount, write $dev"; fi
done
t "sync" sync
teq "four mounts A B C D on $pver" "4" sh -c "grep -c ' logfs $pver logfs_panic$' /proc/fs/bento/mounts"

# B busy for the whole part: two checked workloads (every read compared with what was written).
rm -f /tmp/pstop /tmp/pchurn-*
pids=""
for w in 1 2; do
    bento-t churn /mnt/pb/w$w /tmp/pstop /tmp/pchurn-$w.out 2>/tmp/pchurn-$w.err &
    pids="$pids $!"
done

# 1. A panic in a call (setxattr, holding the volume lock), with calls of the mount in flight.
rm -f /tmp/ploop1 /tmp/ploop2
for j in 1 2; do
    ( i=0; while touch /mnt/pa/dir/f$j.$i 2>/dev/null && ls /mnt/pa/dir >/dev/null 2>&1; do i=$((i + 1)); done; echo $i >/tmp/ploop$j ) &
done
sleep 2
t0=$(up)
within 60 bento-t setx /mnt/pa trusted.logfs.panic now; rc=$?
if [ $rc -eq 124 ]; then nok "A: setxattr trusted.logfs.panic=now: still running after 60 s"
elif grep -qx 'errno=EIO' /tmp/within.out; then ok "A: setxattr trusted.logfs.panic=now panics in the call; the caller gets EIO and lives on$(took "$t0")"
else nok "A: setxattr trusted.logfs.panic=now: exit $rc, $(cat /tmp/within.out)"; fi
i=0; while [ $i -lt 60 ] && ! { [ -s /tmp/ploop1 ] && [ -s /tmp/ploop2 ]; }; do sleep 1; i=$((i + 1)); done
if [ -s /tmp/ploop1 ] && [ -s /tmp/ploop2 ]; then
    ok "A: the two loops of calls in flight ended on a failed call (after $(cat /tmp/ploop1) and $(cat /tmp/ploop2) files)$(took "$t0")"
else
    nok "A: calls in flight still running 60 s after the panic"
fi
teq "A: /proc/fs/bento/mounts says failed" "logfs $pver logfs_panic failed" pstate "$PA"
klogre "A: the kernel log names the device, the file system, where (file:line:column) and what" \
    "bento: $(kname "$PA") \\(logfs $pre\\): file system panicked at [^ ]*logfs/src/panic_trigger[.]rs:[0-9]+:[0-9]+: panic-trigger: trusted[.]logfs[.]panic=now [(]a test build[)] \\(in setxattr\\); the mount is failed, every call returns EIO; unmount it$"
teq "A: one panic logged (the calls in flight were thrown out silently)" "1" sh -c 'dmesg | grep -c "file system panicked"'
peio "A: create" bento-t openx /mnt/pa/new
peio "A: readdir" ls /mnt/pa/dir
peio "A: mkdir" mkdir /mnt/pa/d2
peio "A: setxattr" bento-t setx /mnt/pa/data user.x 1
peio "A: statfs" bento-t fstype /mnt/pa
peio "A: syncfs" /usr/bin/sync -f /mnt/pa
within 60 sh -c 'echo 3 >/proc/sys/vm/drop_caches'; rc=$?
[ $rc -eq 0 ] && ok "drop_caches (evicts A's inodes: no forget into the failed mount)" || nok "drop_caches: exit $rc (124: hangs)"
peio "A: lookup after the cache drop" cat /mnt/pa/data
for x in b c d; do cmpf "$(echo $x | tr a-z A-Z): the other mounts read their data" /tmp/pdata /mnt/p$x/data; done
t "B: create, write, sync" sh -c 'echo more >/mnt/pb/dir/new && sync && grep -qx more /mnt/pb/dir/new'

# 2. A panic in the background work item (bentofs's delayed work, every 2 s).
t "C: arm the next background call to panic (trusted.logfs.panic=background)" bento-t setx /mnt/pc trusted.logfs.panic background
t0=$(up)
pwait "$PC" 30 && ok "C: failed by its background work$(took "$t0")" || nok "C: not failed 30 s after arming the background panic"
klogre "C: logged, in background" "bento: $(kname "$PC") \\(logfs $pre\\): file system panicked at [^ ]*panic_trigger[.]rs:[0-9]+:[0-9]+: panic-trigger: armed for the background work \\(in background\\); the mount is failed"
peio "C: readdir" ls /mnt/pc/dir
peio "C: create" bento-t openx /mnt/pc/new

# 3. A panic in a live upgrade's export: that mount fails, the healthy (busy) one moves.
t "D: arm the next export to panic (trusted.logfs.panic=export)" bento-t setx /mnt/pd trusted.logfs.panic export
t0=$(up)
within 180 bento-t insmod /lib/bento/logfs.ko; rc=$?
if [ $rc -eq 0 ]; then ok "insmod logfs.ko ($VER): the live upgrade succeeds$(took "$t0")"
elif [ $rc -eq 124 ]; then nok "insmod logfs.ko: still running after 180 s"
else nok "insmod logfs.ko: exit $rc: $(cat /tmp/within.out)"; dmesg | tail -n 8 | sed 's/^/#   /'; fi
teq "B moved to $VER" "logfs $VER logfs" pstate "$PB"
teq "D failed in the export and stays" "logfs $pver logfs_panic failed" pstate "$PD"
pboth() { echo "$(pstate "$PA")|$(pstate "$PC")"; }
teq "A and C (failed before) stay" "logfs $pver logfs_panic failed|logfs $pver logfs_panic failed" pboth
klogre "D: logged, in export_state" "bento: $(kname "$PD") \\(logfs $pre\\): file system panicked at [^ ]*panic_trigger[.]rs:[0-9]+:[0-9]+: panic-trigger: armed for the export of a live upgrade \\(in export_state\\); the mount is failed"
klog "the upgrade skipped A" "upgrade logfs: $(kname "$PA") is failed (a panic), it stays on $pver"
klog "the upgrade moved one mount" "upgraded logfs $pver -> $VER: 1 mounts"
peio "D: readdir" ls /mnt/pd/dir
sleep 2
touch /tmp/pstop
wfail=0
for p in $pids; do wait $p || wfail=$((wfail + 1)); done
cat /tmp/pchurn-*.err | head -20 | sed 's/^/#   /'
tot=$(cat /tmp/pchurn-*.out | awk '/^calls/ { c += $2; f += $4; k += $6 } END { printf "%d calls, %d failed, %d reads checked", c, f, k }')
[ $wfail -eq 0 ] && ok "B: its workload (2 processes, through the panics and the upgrade): no failed call, every read as written: $tot" || nok "B: workload: $wfail processes failed: $tot"
cmpf "B: data intact after the upgrade" /tmp/pdata /mnt/pb/data
t "B: create, write, sync on $VER" sh -c 'echo again >/mnt/pb/dir/new2 && sync && grep -qx again /mnt/pb/dir/new2'
teq "rmmod logfs_panic: in use (the failed mounts pin it)" "errno=EAGAIN" bento-t rmmod logfs_panic

# 4. Unmount the failed mounts: no call into their file system; the volumes are consistent.
for x in a c d; do
    X=$(echo $x | tr a-z A-Z) t0=$(up)
    within 60 umount /mnt/p$x; rc=$?
    [ $rc -eq 0 ] && ok "$X: umount of the failed mount$(took "$t0")" || nok "$X: umount: exit $rc (124: hangs): $(cat /tmp/within.out)"
done
teq "logged for each: unmounted without calling the file system" "3" sh -c 'dmesg | grep -c "unmounted the failed mount without calling the file system; its instance is leaked"'
t "rmmod logfs_panic after the umounts (nothing runs its code any more)" rmmod logfs_panic
for x in a c d; do
    X=$(echo $x | tr a-z A-Z); eval dev=\$P$X
    fsck_clean "$X: fsck.logfs -n of the failed volume: clean" "$dev"
    if mnt_logfs "$dev" /mnt/p$x; then
        cmpf "$X: mounted again ($VER): the data synced before the panic is intact" /tmp/pdata /mnt/p$x/data
        teq "$X: ... and the small file" "$x" cat /mnt/p$x/dir/small
        t "$X: umount" umount /mnt/p$x
        fsck_clean "$X: fsck.logfs -n: clean" "$dev"
    else
        nok "$X: mount again"
    fi
done
t "B: umount" umount /mnt/pb
fsck_clean "B: fsck.logfs -n: clean" "$PB"
part_end
