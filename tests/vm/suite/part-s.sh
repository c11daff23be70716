# Part s of the kernel suite: shutdown (FS_IOC_GOINGDOWN) and freeze (FIFREEZE/FITHAW). Sourced
# by guest.sh (busybox sh), whose helpers and settings it uses; installed as
# /usr/lib/bento/part-s.sh. down-t (tests/vm/bentotest/down-t.c) makes the ioctls, the calls
# and a checksum of the device read with O_DIRECT.
#
# Shutdown, for each flag (0 fullsync, 1 metaflush, 2 nologflush): a file written and fsynced,
# another written only, a descriptor open on the first; shut down: EPERM without CAP_SYS_ADMIN,
# EINVAL for flag 3, then the shutdown, a second one a no-op; every call answers EIO (through
# the open descriptor: read, write, mmap, fsync; then open, create, mkdir, readdir, unlink,
# truncate, setxattr, statfs), the device's bytes unchanged by them and by umount; the volume
# is clean (fsck), mounts again with the fsynced file intact (and, after fullsync, the other).
# Freeze: data written but not synced, frozen: a writer blocks, closing the last descriptor of
# an unlinked file blocks, the device does not change while frozen (background work held) and
# fsck of it is clean; thaw releases both, the data is intact, fsck clean after umount.

# sw SECS FILE: FILE appears within SECS seconds
sw() { i=0; while [ $i -lt $(($1 * 5)) ]; do [ -e "$2" ] && return 0; sleep 0.2; i=$((i + 1)); done; return 1; }
# smounts: the mount's /proc/fs/bento/mounts line, without device and version
smounts() { awk -v d="$(kname "$S")" '$1 == d { print $2, $5 }' /proc/fs/bento/mounts; }

part_begin s "shutdown (FS_IOC_GOINGDOWN, three flags) and freeze/thaw"
S=$DISK_DOWN
mkdir -p /mnt/s
dd if=/dev/urandom of=/tmp/s-synced bs=64k count=16 2>/dev/null
dd if=/dev/urandom of=/tmp/s-loose bs=64k count=8 2>/dev/null
for flag in 0 1 2; do
    name=$(echo "fullsync metaflush nologflush" | cut -d' ' -f$((flag + 1)))
    if mkfs.logfs -q -f "$S" && mnt_logfs "$S" /mnt/s && /usr/bin/cp /tmp/s-synced /mnt/s/synced &&
        sync /mnt/s/synced && /usr/bin/cp /tmp/s-loose /mnt/s/loose; then :; else nok "$name: mkfs, mount, write"; fi
    exec 3<>/mnt/s/synced
    kclear
    teq "$name: FS_IOC_GOINGDOWN without CAP_SYS_ADMIN: EPERM" "errno=EPERM" down-t goingdown-nobody /mnt/s "$flag"
    teq "$name: FS_IOC_GOINGDOWN flag 3: EINVAL" "errno=EINVAL" down-t goingdown /mnt/s 3
    teq "$name: FS_IOC_GOINGDOWN $flag (on a directory)" "ok" down-t goingdown /mnt/s "$flag"
    klog "$name: ... the log names the device and the flag" "bento: logfs on $(kname "$S"): shut down (FS_IOC_GOINGDOWN $name)"
    teq "$name: ... /proc/fs/bento/mounts says shutdown" "logfs shutdown" smounts
    teq "$name: a second shutdown (on a file opened before): a no-op" "ok" down-t goingdown fd3 2
    teq "$name: ... opening anything there: EIO" "errno=EIO" down-t goingdown /mnt/s/synced 2
    s1=$(down-t sum "$S")
    teq "$name: every call answers EIO" \
        "read=EIO write=EIO mmap=EIO fsync=EIO open=EIO create=EIO mkdir=EIO readdir=EIO unlink=EIO truncate=EIO setxattr=EIO statfs=EIO" \
        down-t calls /mnt/s
    tf "$name: ... cat too" cat /mnt/s/synced
    tf "$name: ... and echo >" sh -c 'echo x >/mnt/s/new2'
    sleep 3     # the background work's interval is 2 s: it would have run
    teq "$name: the device is unchanged by them" "$s1" down-t sum "$S"
    exec 3>&-
    t "$name: umount" umount /mnt/s
    teq "$name: ... the device is unchanged by umount" "$s1" down-t sum "$S"
    knot "$name: ... no writeback complaint" "writeback of inode"
    knot "$name: ... no unmount complaint" "unmount failed"
    fsck_clean "$name: fsck.logfs -n clean" "$S"
    t "$name: mount again: the fsynced file intact" sh -c "mount -t bento -o fs=logfs $S /mnt/s && cmp /tmp/s-synced /mnt/s/synced"
    if [ "$flag" = 0 ]; then t "$name: ... and the other one (fullsync wrote it)" cmp /tmp/s-loose /mnt/s/loose; fi
    if [ "$flag" = 1 ]; then t "$name: ... and the other one's name (metaflush committed it)" test -e /mnt/s/loose; fi
    t "$name: umount, fsck" sh -c "umount /mnt/s && fsck.logfs -n $S >/dev/null"
done

# Freeze and thaw.
rm -f /tmp/s-wdone /tmp/s-closed /tmp/s-go /tmp/s-ready
if mkfs.logfs -q -f "$S" && mnt_logfs "$S" /mnt/s && /usr/bin/cp /tmp/s-synced /mnt/s/synced && sync &&
    /usr/bin/cp /tmp/s-loose /mnt/s/dirty; then :; else nok "freeze: mkfs, mount, write"; fi
# A descriptor on an unlinked file, closed while frozen: freeing the file must wait.
( exec 4<>/mnt/s/unlinked; rm /mnt/s/unlinked; touch /tmp/s-ready; sw 60 /tmp/s-go; exec 4>&-; touch /tmp/s-closed ) &
sw 10 /tmp/s-ready || nok "freeze: the unlinked file's holder did not start"
teq "FIFREEZE (data not synced before)" "ok" down-t freeze /mnt/s
( echo more >/mnt/s/w && touch /tmp/s-wdone ) &
touch /tmp/s-go
sleep 3
t "a writer blocks while frozen" test ! -e /tmp/s-wdone
t "closing an unlinked file's last descriptor waits too" test ! -e /tmp/s-closed
f1=$(down-t sum "$S")
sleep 3     # two intervals of the background work
teq "the device does not change while frozen" "$f1" down-t sum "$S"
echo 3 >/proc/sys/vm/drop_caches    # the block device's cache: fsck reads through it
fsck_clean "fsck.logfs -n of the frozen device: clean" "$S"
teq "a second FIFREEZE: EBUSY" "errno=EBUSY" down-t freeze /mnt/s
teq "FITHAW" "ok" down-t thaw /mnt/s
t "... the writer goes on" sw 10 /tmp/s-wdone
t "... and the close" sw 10 /tmp/s-closed
teq "a second FITHAW: EINVAL" "errno=EINVAL" down-t thaw /mnt/s
t "the data intact" sh -c "cmp /tmp/s-synced /mnt/s/synced && cmp /tmp/s-loose /mnt/s/dirty && grep -qx more /mnt/s/w"
t "umount, fsck" sh -c "umount /mnt/s && fsck.logfs -n $S >/dev/null"
t "mount again: the data intact" sh -c "mount -t bento -o fs=logfs $S /mnt/s && cmp /tmp/s-loose /mnt/s/dirty && grep -qx more /mnt/s/w && umount /mnt/s"
wait
part_end
