#!/bin/sh
# The kernel suite inside the VM (busybox sh, plus host binaries: cp, mkfs.logfs, fsck.logfs,
# dmsetup, pjdfstest). tests/vm/kernel-suite.sh installs it as /test.sh, with the modules in
# /lib/bento, bento-t in /usr/bin and its settings in /etc/vmtest/suite.conf (the parts to run
# and which NVMe namespace is which disk). Output is TAP-like, grouped in parts:
#
#   PART-BEGIN <id> <name>
#   ok N - ... / not ok N - ...
#   PART-END <id> PASS|FAIL <failed checks> <seconds>
#
# Files for the host (manifests, pjdfstest logs) are written as a tar onto the "out" disk.
# The exit code is the number of failed checks (at most 200).
. /etc/vmtest/suite.conf

fails=0 n=0 part="" part_fails=0 part_t0=0
mkdir -p /out /mnt/w /mnt/x /mnt/b /mnt/p /src /tmp/secondary

ok()  { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
note() { echo "# $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
# took T0: " (N s)" when at least a second went by since T0
took() { awk -v a="$1" -v b="$(up)" 'BEGIN { if (b - a >= 1) printf " (%.1f s)", b - a }'; }
# t DESC CMD...: CMD succeeds
t() {
    desc=$1 t0=$(up); shift
    if "$@" >/tmp/t.out 2>&1; then ok "$desc$(took "$t0")"; else nok "$desc$(took "$t0")"; sed 's/^/#   /' /tmp/t.out | head -40; fi
}
# manifest DIR OUT: bento-t tree, timed
manifest() {
    t0=$(up)
    bento-t tree "$1" >"$2" || nok "manifest of $1"
    note "manifest of $1: $(wc -l <"$2") entries$(took "$t0")"
}
# tf DESC CMD...: CMD fails
tf() {
    desc=$1; shift
    if "$@" >/tmp/t.out 2>&1; then nok "$desc (succeeded)"; else ok "$desc"; fi
}
# teq DESC WANT CMD...: CMD prints WANT
teq() {
    desc=$1 want=$2; shift 2
    got=$("$@" 2>&1)
    if [ "$got" = "$want" ]; then ok "$desc"; else nok "$desc: got '$got', want '$want'"; fi
}
# known ID: the issue is listed in tests/vm/kernel-known-issues.txt
known() { grep -q "^$1[[:space:]]" /etc/vmtest/known-issues 2>/dev/null; }
# tk ID DESC WANT CMD...: like teq, but a listed known issue does not fail the run
tk() {
    id=$1 desc=$2 want=$3; shift 3
    got=$("$@" 2>&1)
    if [ "$got" = "$want" ]; then
        if known "$id"; then ok "$desc # FIXED? known issue $id no longer happens: remove it from the list"
        else ok "$desc"; fi
    elif known "$id"; then
        ok "$desc: got '$got', want '$want' # KNOWN $id"
    else
        nok "$desc: got '$got', want '$want'"
    fi
}
# The kernel log: kclear empties the ring buffer (the console log keeps everything).
kclear() { dmesg -c >/dev/null; }
klog() { if dmesg | grep -qF -- "$2"; then ok "$1"; else nok "$1: no '$2' in dmesg"; dmesg | tail -n 8 | sed 's/^/#   /'; fi; }
knot() { if dmesg | grep -qF -- "$2"; then nok "$1: '$2' in dmesg"; dmesg | grep -F -- "$2" | head -n 3 | sed 's/^/#   /'; else ok "$1"; fi; }
klogre() { if dmesg | grep -qE -- "$2"; then ok "$1"; else nok "$1: no /$2/ in dmesg"; dmesg | tail -n 8 | sed 's/^/#   /'; fi; }
kshow() { dmesg | grep -E 'bento|logfs|device-mapper|dm-' | sed 's/^/#   klog: /' | head -n "${1:-10}"; }
BAD_RE='BUG:|kernel BUG at|Oops|WARNING:|Call Trace|general protection fault|Kernel panic|UBSAN:|Rust panic|hung_task|blocked for more than'
# kclean DESC: no oops/warning/panic since the last kclear
kclean() {
    if dmesg | grep -qE "$BAD_RE"; then nok "$1: kernel problems"; dmesg | grep -E -A5 "$BAD_RE" | head -40 | sed 's/^/#   /'
    else ok "$1"; fi
}
dropcaches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# kname DEV: the kernel's name of a block device, as /proc/fs/bento/mounts shows it (/init may
# have named the node after its NVMe namespace id instead)
kname() { basename "$(readlink -f "/sys/dev/block/$((0x$(stat -c %t "$1"))):$((0x$(stat -c %T "$1")))")"; }
part_begin() {
    part=$1 part_fails=$fails part_t0=$(up)
    echo "PART-BEGIN $1 $2"
    kclear
}
part_end() {
    f=$((fails - part_fails))
    kclean "part $part: kernel log clean (no BUG/Oops/WARNING/Call Trace/Rust panic)"
    f=$((fails - part_fails))
    res=PASS; [ $f -eq 0 ] || res=FAIL
    echo "PART-END $part $res $f $(awk -v a="$part_t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }')"
    cd /
}
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
mnt_logfs() { mount -t bento -o fs=logfs${3:+,$3} "$1" "$2"; }
# fsck DESC DEV: fsck.logfs -n exits 0
fsck_clean() {
    if fsck.logfs -n "$2" >/tmp/fsck.out 2>&1; then ok "$1"
    else nok "$1 (exit $?)"; sed 's/^/#   /' /tmp/fsck.out | head -30; fi
}
# cmpf DESC A B: files are identical (shows the first differences)
cmpf() {
    if cmp -s "$2" "$3"; then ok "$1"
    else nok "$1"; diff "$2" "$3" | head -20 | sed 's/^/#   /'; fi
}

echo 4 >/proc/sys/vm/drop_caches    # no "drop_caches: 1" line in the kernel log for every drop
echo "# kernel suite on $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs, parts: $PARTS"

# ---- a: the bentofs self-test with the C file system bento_memfs ----------------------------
if want a; then
    part_begin a "bentofs self-test (bento_memfs)"
    (set -o pipefail; D1=$DISK_MEMFS1 D2=$DISK_MEMFS2 sh /lib/bento/memfs-guest.sh 2>&1 |
        tee /tmp/a.out | sed 's/^/[a] /')
    rc=$?
    grep -q '^# [0-9]* checks' /tmp/a.out || rc=$((rc + 1))
    if [ $rc -eq 0 ]; then ok "bentofs self-test: $(sed -n 's/^# \([0-9]* checks.*\)/\1/p' /tmp/a.out)"
    else nok "bentofs self-test: exit $rc: $(grep -c '^not ok' /tmp/a.out) checks failed"; fi
    t "bentofs unloaded at its end" sh -c '! grep -q "^bentofs " /proc/modules'
    part_end
fi

W=$DISK_WORK
# The Bento modules for the logfs parts, loaded as on an installed system, without insmod: they
# sit in /lib/modules/<release>/updates with a depmod index; mount -t bento loads bentofs (alias
# fs-bento) and fs=NAME makes bentofs load the module with alias bento-fs-NAME.
kmoddir=/lib/modules/$(uname -r)/updates
mkdir -p "$kmoddir" && cp /lib/bento/bentofs.ko /lib/bento/logfs.ko "$kmoddir/"
t "depmod" depmod -a
if [ -n "$W" ]; then
    tf "mount -t bento -o fs=nosuch: fails" mount -t bento -o fs=nosuch "$W" /mnt/w
    klog "... no file system, no module, as the log says" "no file system named nosuch (and no module bento-fs-nosuch to load)"
    teq "... and mount -t bento loaded bentofs" "bentofs" sh -c "grep -o '^bentofs ' /proc/modules | tr -d ' '"
    tf "fs=../x: fails" mount -t bento -o fs=../x "$W" /mnt/w
    klog "... as an invalid name, before any module is requested" 'invalid file system name "../x"'
    # $W is still blank: logfs.ko loads, then refuses the disk (parts m and b mkfs it).
    tf "mount -t bento -o fs=logfs of a blank disk: fails" mnt_logfs "$W" /mnt/w
    klog "... after loading logfs.ko, which refused the disk" "not a logfs volume"
else
    t "modprobe logfs (pulls in bentofs)" modprobe logfs
fi
klogre "logfs registered with bentofs" 'bento: registered file system logfs'
teq "/proc/fs/bento/filesystems" "logfs" sh -c "cut -d' ' -f1 /proc/fs/bento/filesystems"
teq "/sys/fs/bento/logfs/version: $VER" "$VER" cat /sys/fs/bento/logfs/version
teq "... no mounts" "" cat /sys/fs/bento/logfs/mounts

# ---- m: the main job (tests/vm/main-job.sh): copy, verify, remount, verify, fsck -------------
if want m; then
    part_begin m "main job: mkfs.logfs, mount -t bento, cp -a /usr/include, verify, remount, verify, fsck"
    t "mkfs.logfs $W" mkfs.logfs -q "$W"
    t "mount -t bento -o fs=logfs $W /mnt/w" mnt_logfs "$W" /mnt/w
    t "mount the source tree (ext4, read-only)" mount -t ext4 -o ro "$DISK_SRC" /src
    manifest /src/include /tmp/src.manifest
    t "cp -a /usr/include /mnt/w/ ($(wc -l </tmp/src.manifest) entries, $(du -sk /src/include | cut -f1) KiB)" /usr/bin/cp -a /src/include /mnt/w/include
    t "sync" sync
    manifest /mnt/w/include /tmp/copy.manifest
    cmpf "the copy is identical to the source (names, types, modes, owners, sizes, ns mtimes, contents, links, xattrs)" /tmp/src.manifest /tmp/copy.manifest
    df -k /mnt/w | sed 's/^/# /'
    t "umount" umount /mnt/w
    t "mount again" mnt_logfs "$W" /mnt/w
    manifest /mnt/w/include /tmp/copy2.manifest
    cmpf "after the remount: still identical" /tmp/src.manifest /tmp/copy2.manifest
    t "umount" umount /mnt/w
    t "umount the source" umount /src
    fsck_clean "fsck.logfs -n $W: clean" "$W"
    part_end
fi

# ---- b: a real workload, remount, compare, fsck ---------------------------------------------
# The files besides the copied tree; check_files checks them again after the remount.
workload_files() {
    cd /mnt/w || return 1
    t "200 MiB file (pattern)" bento-t pwrite big 0 200M 42
    m1=$(stat -c %y big)
    t "... read back (page cache)" bento-t pcheck big 0 200M 42
    t "... sync" sync
    echo 3 >/proc/sys/vm/drop_caches
    teq "... mtime unchanged by writeback (read again from logfs after dropping caches)" "$m1" stat -c %y big
    touch -d "2024-02-29 12:34:56.789012345" big    # a known mtime for the manifests
    mkdir -p links/sub
    echo "linked data" >links/a
    t "hard link" ln links/a links/b
    t "hard link in another directory" ln links/a links/sub/c
    teq "... nlink 3" 3 stat -c %h links/a
    teq "... same inode" "$(stat -c %i links/a) $(stat -c %i links/a)" sh -c 'echo $(stat -c %i links/b) $(stat -c %i links/sub/c)'
    t "symlink (relative)" ln -s ../include/linux/fs.h links/rel
    t "symlink (absolute)" ln -s /mnt/w/big links/abs
    t "symlink (dangling)" ln -s nowhere/at/all links/dangling
    long=$(printf '%01000d' 7)
    t "symlink (1000-byte target)" ln -s "$long" links/long
    t "sparse: 1 GiB file" truncate -s 1G sparse
    t "... data at 0, 512 MiB and at the end" sh -c 'bento-t pwrite sparse 0 64K 5 && bento-t pwrite sparse 512M 100000 6 && bento-t pwrite sparse 1073737728 4096 7'
    teq "... size" 1073741824 bento-t sizeof sparse
    echo old >ro1; echo new >ro2
    t "rename over an existing file" mv ro2 ro1
    teq "... content" new cat ro1
    t "... old name gone" test ! -e ro2
    mkdir -p rd1/x rd2
    t "rename a directory over an empty one" bento-t rename2 none rd1 rd2
    t "... moved" sh -c 'test -d rd2/x && test ! -e rd1'
    echo x >xa; mkdir -p xd
    t "xattrs: user., trusted., security." sh -c 'bento-t setx xa user.color blue && bento-t setx xa trusted.t 1 && bento-t setx xa security.s two'
    big=$(printf '%03000d' 9)
    t "xattr: a 3000-byte value" bento-t setx xa user.big "$big"
    t "xattr on a directory" bento-t setx xd user.dir yes
    t "removexattr" sh -c 'bento-t setx xa user.gone 1 && bento-t rmx xa user.gone'
    teq "listxattr" "user.color trusted.t security.s user.big" sh -c 'echo $(bento-t listx xa)'
    teq "listxattr as an unprivileged user: no trusted.* names" "user.color security.s user.big" sh -c 'echo $(bento-t asuser 1000 1000 bento-t listx xa)'
    # Dirty pages in a range a fallocate mode touches are written back first, so a refused
    # mode or a failed call loses nothing (ZERO_RANGE used to drop them).
    t "dirty data, then fallocate ZERO_RANGE|KEEP_SIZE" bento-t pwrite zr 0 64K 11
    t "... accepted" bento-t zero zr 4096 8192
    t "... zeroed the range" bento-t zcheck zr 4096 8192
    t "... and kept the rest" sh -c 'bento-t pcheck zr 0 4096 11 && bento-t pcheck zr 12288 53248 11'
    t "ZERO_RANGE past the end, without KEEP_SIZE" bento-t zero zr 60000 10000 size
    teq "... the size grew" 70000 bento-t sizeof zr
    t "... zeroed" sh -c 'bento-t zcheck zr 60000 10000 && bento-t pcheck zr 12288 47712 11'
    echo 3 >/proc/sys/vm/drop_caches
    t "... and on disk" sh -c 'bento-t zcheck zr 4096 8192 && bento-t zcheck zr 60000 10000 && bento-t pcheck zr 12288 47712 11'
    # COLLAPSE_RANGE and INSERT_RANGE: dirty pages after the offset are written back and
    # dropped first; the blocks move; reads (cached and from disk) see the new layout.
    bento-t pwrite cr 0 256K 12; cp cr /tmp/cr.0
    bento-t pwrite cr 100K 20K 13; cp cr /tmp/cr.1   # dirty, not written back
    touch -d "2001-01-01 00:00:00" cr
    t "COLLAPSE_RANGE of 16 KiB at 8 KiB, over dirty pages" bento-t collapse cr 8K 16K
    { head -c 8192 /tmp/cr.1; tail -c +24577 /tmp/cr.1; } >/tmp/cr.2
    cmpf "... the file is the rest moved down" cr /tmp/cr.2
    teq "... size" 245760 bento-t sizeof cr
    teq "... set mtime (not 2001 any more)" 1 sh -c "[ \$(stat -c %Y cr) -gt 978307200 ] && echo 1"
    t "INSERT_RANGE of 12 KiB at 4 KiB" bento-t insert cr 4K 12K
    { head -c 4096 /tmp/cr.2; head -c 12288 /dev/zero; tail -c +4097 /tmp/cr.2; } >/tmp/cr.3
    cmpf "... the rest moved up, a hole in between" cr /tmp/cr.3
    echo 3 >/proc/sys/vm/drop_caches
    cmpf "... and on disk" cr /tmp/cr.3
    teq "COLLAPSE_RANGE unaligned: EINVAL" errno=EINVAL bento-t collapse cr 1000 4096
    teq "COLLAPSE_RANGE reaching the end: EINVAL" errno=EINVAL bento-t collapse cr 4096 258048
    teq "INSERT_RANGE at the end: EINVAL" errno=EINVAL bento-t insert cr 258048 4096
    teq "INSERT_RANGE past the largest file: EFBIG" errno=EFBIG bento-t insert cr 0 0x7ffffffffffff000
    cmpf "... none of them changed the file" cr /tmp/cr.3
    t "COLLAPSE_RANGE of the first block" bento-t collapse cr 0 4K
    tail -c +4097 /tmp/cr.3 >/tmp/cr.4
    cmpf "... the file starts at its second block" cr /tmp/cr.4
    rm -f cr /tmp/cr.[0-4]
    rm -f zr
    # truncate(2) changes mtime and ctime when the size changes (xfstests generic/313)
    echo data >tt; touch -d "2001-01-01 00:00:00" tt; c0=$(stat -c %Z tt)
    sleep 1
    t "truncate(2) up" bento-t trunc tt 5000
    teq "... set mtime (not 2001 any more)" 1 sh -c "[ \$(stat -c %Y tt) -gt 978307200 ] && echo 1"
    teq "... and ctime" 1 sh -c "[ \$(stat -c %Z tt) -gt $c0 ] && echo 1"
    touch -d "2001-01-01 00:00:00" tt
    t "truncate(2) down" bento-t trunc tt 10
    teq "... set mtime" 1 sh -c "[ \$(stat -c %Y tt) -gt 978307200 ] && echo 1"
    rm -f tt
    # atime under relatime, the default (xfstests generic/003): the first read after a write
    # updates it, the next one does not.
    echo aaa >at; a0=$(stat -c %X at)
    sleep 1; cat at >/dev/null; a1=$(stat -c %X at)
    teq "relatime: the first read after a write updates atime" 1 sh -c "[ $a1 -gt $a0 ] && echo 1"
    sleep 1; cat at >/dev/null
    teq "... the second read does not" "$a1" stat -c %X at
    rm -f at
    # One clock for the times logfs sets and those the kernel sets: no new file's atime is later
    # than the mtime of the write right after its creation (relatime would never update it).
    mkdir at; i=0; while [ $i -lt 200 ]; do echo aaa >at/$i; i=$((i + 1)); done
    late=0
    for f in at/*; do
        if [ "$(stat -c %x "$f")" \> "$(stat -c %y "$f")" ]; then late=$((late + 1)); fi
    done
    teq "... 200 new files: none has an atime later than its first write's mtime" 0 echo $late
    rm -rf at
    # statx birth time: logfs keeps the creation time; later writes leave it alone.
    echo born >bt
    t "statx reports a birth time" sh -c 'bento-t btime bt >/tmp/bt.btime'
    sleep 1; echo more >>bt
    teq "... not later than mtime, unchanged by a write" 1 sh -c "bento-t btime bt | { read b m; [ \$b = $(cut -d' ' -f1 /tmp/bt.btime) ] && [ \$b -lt \$m ] && echo 1; }"
    cd /
}
# check_files WHEN: what workload_files made is still there (also covered by the manifest)
check_files() {
    cd /mnt/w || return 1
    t "$1: 200 MiB file" bento-t pcheck big 0 200M 42
    teq "$1: hard links: nlink, one inode" "3 1" sh -c 'echo $(stat -c %h links/a) $(stat -c %i links/a links/b links/sub/c | sort -u | wc -l)'
    teq "$1: symlinks" "../include/linux/fs.h /mnt/w/big nowhere/at/all 1000" sh -c 'echo $(readlink links/rel) $(readlink links/abs) $(readlink links/dangling) $(printf %s "$(readlink links/long)" | wc -c)'
    t "$1: sparse: data" sh -c 'bento-t pcheck sparse 0 64K 5 && bento-t pcheck sparse 512M 100000 6 && bento-t pcheck sparse 1073737728 4096 7'
    t "$1: sparse: holes read as zeroes" sh -c 'bento-t zcheck sparse 64K 536805376 && bento-t zcheck sparse 536970912 536766816'
    blocks=$(stat -c %b sparse)
    if [ "$blocks" -le 4096 ]; then ok "$1: sparse: st_blocks small ($blocks)"; else nok "$1: sparse: st_blocks $blocks (want <= 4096, 2 MiB)"; fi
    teq "$1: xattr" "blue" bento-t getx xa user.color
    teq "$1: big xattr" "3000" bento-t sizex xa user.big
    teq "$1: birth time" "$(cut -d' ' -f1 /tmp/bt.btime)" sh -c 'bento-t btime bt | cut -d" " -f1'
    cd /
}
if want b; then
    part_begin b "logfs workload: copy, big/sparse files, links, xattrs, remount, fsck"
    t "mkfs.logfs" mkfs.logfs -q "$W"
    t "mount -t bento -o fs=logfs" mnt_logfs "$W" /mnt/w
    t "/proc/mounts" grep -q "^$W /mnt/w bento rw,.*fs=logfs" /proc/mounts
    teq "statfs f_type is BENT" "42454e54" bento-t fstype /mnt/w
    t "mount the source tree (ext4, read-only)" mount -t ext4 -o ro "$DISK_SRC" /src
    manifest /src/include /tmp/src.manifest
    note "source: $(wc -l </tmp/src.manifest) entries, $(du -sk /src/include | cut -f1) KiB"
    # busybox sh runs its own applets first: GNU cp by its path (it keeps ns times of symlinks)
    t "cp -a of /usr/include (GNU cp)" /usr/bin/cp -a /src/include /mnt/w/include
    t "sync" sync
    manifest /mnt/w/include /tmp/copy.manifest
    cmpf "the copy is identical (names, types, modes, owners, sizes, ns mtimes, contents, links, xattrs)" /tmp/src.manifest /tmp/copy.manifest
    workload_files
    df -k /mnt/w | sed 's/^/# /'
    manifest /mnt/w /tmp/b1.manifest
    t "umount" umount /mnt/w
    fsck_clean "fsck.logfs -n after the first umount: clean" "$W"
    t "mount again" mnt_logfs "$W" /mnt/w
    manifest /mnt/w /tmp/b2.manifest
    cmpf "after remount: the whole volume is identical" /tmp/b1.manifest /tmp/b2.manifest
    check_files "after remount"
    dropcaches
    manifest /mnt/w/include /tmp/copy2.manifest
    cmpf "after remount and dropping caches: the copy is still identical to the source" /tmp/src.manifest /tmp/copy2.manifest
    t "umount" umount /mnt/w
    t "umount the source" umount /src
    fsck_clean "fsck.logfs -n: clean" "$W"
    part_end
fi

# ---- d: fsx against a model, with remounts -------------------------------------------------
if want d; then
    part_begin d "fsx: random read/write/truncate/mmap/punch/zero/collapse/insert against a model, remounts"
    [ -n "$(want b && echo y)" ] || t "mkfs.logfs" mkfs.logfs -q -f "$W"
    t "mount" mnt_logfs "$W" /mnt/w
    mkdir -p /mnt/w/fsx /tmp/models
    round=1 seed=1
    while [ $round -le "$FSX_ROUNDS" ]; do
        pids=""
        for _ in 1 2; do
            (bento-t fsx /mnt/w/fsx/f$seed "$FSX_OPS" $seed /tmp/models/f$seed >/tmp/fsx$seed.out 2>&1; echo $? >/tmp/fsx$seed.rc) &
            pids="$pids $!"
            seed=$((seed + 1))
        done
        for p in $pids; do wait "$p"; done
        for s in $((seed - 2)) $((seed - 1)); do
            if [ "$(cat /tmp/fsx$s.rc)" = 0 ]; then ok "fsx seed $s, $FSX_OPS ops: $(cat /tmp/fsx$s.out)"
            else nok "fsx seed $s"; sed 's/^/#   /' /tmp/fsx$s.out; fi
        done
        t "remount after round $round" sh -c 'umount /mnt/w && mount -t bento -o fs=logfs '"$W"' /mnt/w'
        s=1
        while [ $s -lt $seed ]; do
            cmpf "after remount $round: fsx file $s equals its model" /mnt/w/fsx/f$s /tmp/models/f$s
            s=$((s + 1))
        done
        round=$((round + 1))
    done
    t "umount" umount /mnt/w
    fsck_clean "fsck.logfs -n: clean" "$W"
    part_end
fi

# ---- final state of the work disk, for the host (part f: kernel -> logfs-fuse) --------------
if want b || want d || want m; then
    if mnt_logfs "$W" /mnt/w ro; then
        manifest /mnt/w /out/work.manifest
        umount /mnt/w
    else
        nok "read-only mount of the work disk for the host's manifest"
    fi
fi

# ---- f (in the VM): an image logfs-fuse wrote on the host, mounted by the kernel ------------
if want f; then
    part_begin f "one format: a logfs-fuse image in the kernel (and the work disk to the host)"
    X=$DISK_CROSS
    fsck_clean "fsck.logfs -n of the host's image" "$X"
    t "mount the host's image" mnt_logfs "$X" /mnt/x
    manifest /mnt/x /tmp/x.manifest
    cmpf "identical to what the host wrote (manifest from logfs-fuse)" /etc/vmtest/cross-host.manifest /tmp/x.manifest
    t "the host's 64 MiB pattern file" bento-t pcheck /mnt/x/pattern 0 64M 77
    # The way back: the kernel changes the image, the host checks it with logfs-fuse.
    t "write into it from the kernel" sh -c 'bento-t pwrite /mnt/x/from-kernel 0 3M 78 && mkdir /mnt/x/kdir && ln -s ../from-kernel /mnt/x/kdir/sl && ln /mnt/x/from-kernel /mnt/x/kdir/hl && bento-t setx /mnt/x/from-kernel user.k kernel && mv /mnt/x/tree /mnt/x/tree-renamed && rm -r /mnt/x/tree-renamed/linux'
    manifest /mnt/x /out/cross-kernel.manifest
    t "umount" umount /mnt/x
    fsck_clean "fsck.logfs -n: clean" "$X"
    part_end
fi

# ---- c: pjdfstest ---------------------------------------------------------------------------
if want c; then
    part_begin c "pjdfstest on logfs in the kernel"
    P=$DISK_PJD
    t "mkfs + mount" sh -c "mkfs.logfs -q $P && mount -t bento -o fs=logfs $P /mnt/p && chmod 755 /mnt/p"
    chmod 755 /tmp /tmp/secondary
    sed 's/^allow_remount = true/allow_remount = false/' /etc/pjdfstest.toml >/tmp/main.toml
    (cd / && NO_COLOR=1 CLICOLOR=0 RUST_BACKTRACE=0 pjdfstest -c /tmp/main.toml -p /mnt/p -s /tmp/secondary >/out/pjdfstest-main.log 2>&1)
    remount=$(awk '/^[A-Za-z0-9_:]+ +skipped$/ { name = $1; next }
        /^\t/ && name { if (/allow_remount/) { print "pjdfstest::tests::" name; name = "" } next }
        { name = "" }' /out/pjdfstest-main.log)
    : >/out/pjdfstest-remount.log
    [ -z "$remount" ] || (cd / && NO_COLOR=1 pjdfstest -c /etc/pjdfstest.toml -p /mnt/p -s /tmp/secondary -e -- $remount >/out/pjdfstest-remount.log 2>&1)
    t "pjdfstest ran to its summary" grep -q '^Summary' /out/pjdfstest-main.log
    cat /out/pjdfstest-main.log /out/pjdfstest-remount.log | grep -E '^[A-Za-z0-9_:]+ +FAILED$' |
        awk '{ print $1 }' | sort >/out/pjdfstest-failed.txt
    cat /out/pjdfstest-main.log /out/pjdfstest-remount.log | grep -E '^[A-Za-z0-9_:]+ +skipped$' |
        awk '{ print $1 }' | sort >/out/pjdfstest-skipped.txt
    grep -h '^Summary' /out/pjdfstest-main.log /out/pjdfstest-remount.log | sed 's/^/# /'
    cat /out/pjdfstest-main.log /out/pjdfstest-remount.log | grep -E '^[A-Za-z0-9_:]+ +FAILED$' -A4 | sed 's/^/#   /' | head -60
    note "pjdfstest: $(wc -l </out/pjdfstest-failed.txt) failed, $(wc -l </out/pjdfstest-skipped.txt) skipped (compared with the allowlist on the host)"
    t "umount" umount /mnt/p
    fsck_clean "fsck.logfs -n: clean" "$P"
    part_end
fi

# ---- e: bad input, errors, a full volume, I/O errors ----------------------------------------
if want e; then
    part_begin e "bad input: mount options, foreign and corrupt disks, rmmod, ENOSPC, EIO"
    B=$DISK_BAD
    kclear
    # Without fs= bentofs tries every registered file system; none takes a zeroed disk.
    teq "mount -t bento without fs= of a zeroed disk: EINVAL" "errno=EINVAL" bento-t mount "$B" /mnt/b bento ""
    klog "... log line" "bento: no registered Bento file system recognises $B; loaded: logfs"
    knot "... and none from logfs: a probe is silent about a disk that is not logfs" "logfs: cannot mount"
    kclear
    tf "mount -t bento $B (no options): fails" mount -t bento "$B" /mnt/b
    t "... not mounted" sh -c "! grep -q ' /mnt/b ' /proc/mounts"
    klog "... log line" "bento: no registered Bento file system recognises $B; loaded: logfs"
    kclear
    tf "mount $B (no -t: every type in /proc/filesystems): fails" mount "$B" /mnt/b
    t "... not mounted" sh -c "! grep -q ' /mnt/b ' /proc/mounts"
    klog "... log line" "bento: no registered Bento file system recognises $B; loaded: logfs"
    kshow 4
    kclear
    teq "mount with fs=nosuch: ENODEV" "errno=ENODEV" bento-t mount "$B" /mnt/b bento fs=nosuch
    klog "... log line" "bento: no file system named nosuch"
    kclear
    teq "mount with fs= empty: EINVAL" "errno=EINVAL" bento-t mount "$B" /mnt/b bento fs=
    klog "... log line" "bento: fs= needs a file-system name"
    kclear
    teq "mount of a zeroed disk: EINVAL" "errno=EINVAL" bento-t mount "$B" /mnt/b bento fs=logfs
    klogre "... log line" "logfs: cannot mount: .*(not a logfs|no logfs.*signature)"
    t "mkfs.ext4 on it" mkfs.ext4 -q -F "$B"
    kclear
    teq "mount of an ext4 disk: EINVAL" "errno=EINVAL" bento-t mount "$B" /mnt/b bento fs=logfs
    klogre "... log line" "logfs: cannot mount: .*(not a logfs|no logfs.*signature)"
    t "... the ext4 file system is untouched" fsck.ext4 -fn "$B"
    t "mkfs.logfs -f over it" mkfs.logfs -q -f "$B"
    t "mount -t bento $B (no options): logfs found" sh -c "mount -t bento $B /mnt/b && grep -q '^$B /mnt/b bento rw,.*fs=logfs' /proc/mounts && umount /mnt/b"
    t "mount $B (no -t): logfs found" sh -c "mount $B /mnt/b && grep -q '^$B /mnt/b bento rw,.*fs=logfs' /proc/mounts && umount /mnt/b"
    kclear
    teq "an unknown mount option: EINVAL" "errno=EINVAL" bento-t mount "$B" /mnt/b bento fs=logfs,bogus=1
    klogre "... log line" 'logfs: .*bogus'
    # superblock copy 0 corrupt: copy 1 is used
    printf '\377\377\377\377' | dd of="$B" bs=1 seek=200 conv=notrunc 2>/dev/null
    kclear
    t "superblock copy 0 corrupt: mounts from copy 1" mnt_logfs "$B" /mnt/b
    t "... and works" sh -c 'echo hi >/mnt/b/f && umount /mnt/b'
    printf '\377\377\377\377' | dd of="$B" bs=1 seek=4296 conv=notrunc 2>/dev/null
    kclear
    teq "both superblocks corrupt: EUCLEAN" "errno=EUCLEAN" bento-t mount "$B" /mnt/b bento fs=logfs
    klogre "... log line" "logfs: cannot mount: corrupt superblock.* at block 0"
    t "... fsck.logfs -n says so (exit 4)" sh -c 'fsck.logfs -n '"$B"' >/tmp/o 2>&1; [ $? = 4 ]'
    t "read-only mount refused as well" sh -c '! mount -t bento -o fs=logfs,ro '"$B"' /mnt/b'
    kclean "bad mounts: no oops"

    # rmmod while mounted
    t "mkfs + mount" sh -c "mkfs.logfs -q -f $B && mount -t bento -o fs=logfs $B /mnt/b"
    teq "rmmod logfs while mounted: EWOULDBLOCK (in use)" "errno=EAGAIN" bento-t rmmod logfs
    t "... logfs still loaded" grep -q '^logfs ' /proc/modules
    teq "rmmod bentofs while logfs uses it: EWOULDBLOCK" "errno=EAGAIN" bento-t rmmod bentofs
    t "... the mount still works" sh -c 'echo after >/mnt/b/g && [ "$(cat /mnt/b/g)" = after ]'
    t "umount" umount /mnt/b
    fsck_clean "fsck.logfs -n: clean" "$B"

    # a full volume
    F=$DISK_FULL
    t "64 MiB volume: mkfs + mount" sh -c "mkfs.logfs -q $F && mount -t bento -o fs=logfs $F /mnt/b"
    i=1; kept=""
    while [ $i -le 5 ]; do
        bento-t pwrite /mnt/b/keep$i 0 1M $i && bento-t fsync /mnt/b/keep$i && kept="$kept $i"
        i=$((i + 1))
    done
    teq "5 files written and fsync'd" " 1 2 3 4 5" echo "$kept"
    df -k /mnt/b | sed 's/^/# /'
    kclear
    r=$(bento-t fill /mnt/b/fill 256)
    note "fill: $r"
    case $r in
        write=ENOSPC*)
            if known enospc-at-fsync; then ok "filling the volume: write(2) returns ENOSPC # FIXED? known issue enospc-at-fsync no longer happens: remove it from the list"
            else ok "filling the volume: write(2) returns ENOSPC"; fi ;;
        *fsync=ENOSPC*)
            if known enospc-at-fsync; then ok "filling the volume: ENOSPC from fsync, write(2) succeeded ($r) # KNOWN enospc-at-fsync"
            else nok "filling the volume: ENOSPC only from fsync, not from write(2) ($r)"; fi ;;
        *) nok "filling the volume: no ENOSPC ($r)" ;;
    esac
    fsync_r=$(echo "$r" | sed -n 's/.*fsync=\([^ ]*\).*/\1/p')
    bytes=$(echo "$r" | sed -n 's/.*bytes=\([0-9]*\).*/\1/p')
    tk enospc-writeback-loss "... what write(2) accepted is written back: fsync succeeds" "ok" echo "$fsync_r"
    kshow 6
    df -k /mnt/b | sed 's/^/# /'
    t "the fsync'd files are intact" sh -c 'for i in 1 2 3 4 5; do bento-t pcheck /mnt/b/keep$i 0 1M $i || exit 1; done'
    t "umount" umount /mnt/b
    t "mount again" mnt_logfs "$F" /mnt/b
    t "after remount: the fsync'd files are intact" sh -c 'for i in 1 2 3 4 5; do bento-t pcheck /mnt/b/keep$i 0 1M $i || exit 1; done'
    if [ "$fsync_r" = ok ]; then
        t "after remount: the $bytes bytes write(2) accepted are intact" bento-t pcheck /mnt/b/fill 0 "$bytes" 99
    fi
    t "delete the big file" rm /mnt/b/fill
    t "... then 4 MiB can be written and fsync'd again" sh -c 'bento-t pwrite /mnt/b/after 0 4M 9 && bento-t fsync /mnt/b/after'
    t "umount" umount /mnt/b
    t "mount again" mnt_logfs "$F" /mnt/b
    t "after remount: everything intact" sh -c 'for i in 1 2 3 4 5; do bento-t pcheck /mnt/b/keep$i 0 1M $i || exit 1; done && bento-t pcheck /mnt/b/after 0 4M 9'
    t "umount" umount /mnt/b
    fsck_clean "fsck.logfs -n: clean" "$F"
    kclean "full volume: no oops"

    # a full volume: metadata changes on thousands of files, sync, delete, write again (a sync
    # every 1000 files: until writeback, each dirty folio of a tiny file holds a promised block)
    t "full volume, metadata: mkfs, mount, 6000 small files, 100 xattrs" sh -c "mkfs.logfs -q -f $F && mount -t bento -o fs=logfs $F /mnt/b && mkdir /mnt/b/m && i=0 && while [ \$i -lt 6000 ]; do echo \"file \$i\" >/mnt/b/m/f\$i || exit 1; [ \$i -ge 100 ] || bento-t setx /mnt/b/m/f\$i user.tag first || exit 1; [ \$((i % 1000)) != 999 ] || sync; i=\$((i + 1)); done && sync"
    r=$(bento-t fill /mnt/b/fill 256)
    case $r in write=ENOSPC*fsync=ok*) ok "... filled: write(2) says ENOSPC, fsync works ($r)" ;; *) nok "... filled: $r" ;; esac
    kclear
    t "chmod -R of 6000 files (more inodes to rewrite than the reserve has blocks) on the full volume" chmod -R 600 /mnt/b/m
    t "touch (utimes) of 6000 files" sh -c 'cd /mnt/b/m && touch f*'
    t "replace 100 xattrs" sh -c 'i=0; while [ $i -lt 100 ]; do bento-t setx /mnt/b/m/f$i user.tag other replace || exit 1; i=$((i + 1)); done'
    t "syncfs" /usr/bin/sync -f /mnt/b
    knot "... no failed checkpoint, the volume stays writable" "read-only until remounted"
    # (read, a shell builtin: a process per file takes a minute under TCG)
    t "every file intact, mode 600" sh -c 'i=0; while [ $i -lt 6000 ]; do read -r l </mnt/b/m/f$i && [ "$l" = "file $i" ] || exit 1; i=$((i + 1)); done && [ "$(ls -l /mnt/b/m | grep -c "^-rw------- ")" = 6000 ]'
    t "delete the filler and 3000 files" sh -c 'rm /mnt/b/fill && cd /mnt/b/m && rm f*[02468] && [ "$(ls | wc -l)" = 3000 ]'
    t "... then 8 MiB can be written and fsync'd" sh -c 'bento-t pwrite /mnt/b/again 0 8M 7 && bento-t fsync /mnt/b/again'
    t "umount" umount /mnt/b
    fsck_clean "fsck.logfs -n: clean" "$F"
    t "mount again" mnt_logfs "$F" /mnt/b
    t "after remount: files, modes, xattrs and the new data intact" sh -c 'i=1; while [ $i -lt 6000 ]; do read -r l </mnt/b/m/f$i && [ "$l" = "file $i" ] || exit 1; i=$((i + 2)); done && [ "$(ls -l /mnt/b/m | grep -c "^-rw------- ")" = 3000 ] && [ "$(bento-t getx /mnt/b/m/f99 user.tag)" = other ] && bento-t pcheck /mnt/b/again 0 8M 7'
    t "umount" umount /mnt/b
    fsck_clean "fsck.logfs -n: clean" "$F"
    kclean "full volume, metadata: no oops"

    # I/O errors: device-mapper, a linear device switched to the error target
    E=$DISK_EIO
    sz=$(blockdev --getsz "$E")
    export DM_DISABLE_UDEV=1
    dm() { dmsetup "$@" >/tmp/dm.out 2>&1 || { cat /tmp/dm.out; return 1; }; }
    dmtable() { dm suspend --nolockfs lfs && dm load lfs --table "$1" && dm resume lfs; }
    if t "dmsetup create (linear)" dm create lfs --table "0 $sz linear $E 0"; then
        dm mknodes
        ED=/dev/mapper/lfs
        t "mkfs + mount on the dm device" sh -c "mkfs.logfs -q $ED && mount -t bento -o fs=logfs $ED /mnt/b"
        t "write files, sync" sh -c 'mkdir /mnt/b/d && bento-t pwrite /mnt/b/a 0 2M 3 && bento-t pwrite /mnt/b/d/b 0 100K 4 && echo 1 >/mnt/b/c && sync'
        bento-t pwrite /mnt/b/dirty 0 1M 5    # left dirty in the page cache
        bento-t pwrite /mnt/b/dirty2 0 1M 6
        echo 3 >/proc/sys/vm/drop_caches
        kclear
        t "the device starts failing every I/O" dmtable "0 $sz error"
        teq "read of uncached data: EIO" "errno=EIO" bento-t ioerr read /mnt/b/a
        teq "write + fsync: EIO" "errno=EIO" bento-t ioerr write /mnt/b/c
        r=$(bento-t ioerr stat /mnt/b/d/b)
        case $r in "no error"|errno=EIO) ok "stat of an uncached name: EIO or success (logfs keeps metadata in memory): $r" ;; *) nok "stat of an uncached name: $r" ;; esac
        r=$(bento-t ioerr write /mnt/b/newfile 2>&1)
        case $r in errno=EIO|errno=EROFS) ok "create + write + fsync a new file: $r" ;; *) nok "create + write + fsync a new file: '$r', want EIO or EROFS" ;; esac
        r=$(sync -f /mnt/b 2>&1; echo "rc=$?")
        note "syncfs on the failing device: $r"
        klogre "... log line about the I/O error" 'logfs: .*(I/O error|EIO|error -5|errno 5)|bento: .*failed: -5'
        kshow 12
        t "umount with a failing device" umount /mnt/b
        kclean "I/O errors: no oops"
        t "the device works again" dmtable "0 $sz linear $E 0"
        fsck_clean "fsck.logfs -n: the last checkpoint is consistent" "$ED"
        kclear
        t "mount again" mnt_logfs "$ED" /mnt/b
        t "... data written before the errors is intact" sh -c 'bento-t pcheck /mnt/b/a 0 2M 3 && bento-t pcheck /mnt/b/d/b 0 100K 4'
        t "umount" umount /mnt/b
        fsck_clean "fsck.logfs -n: clean" "$ED"
        # writes fail during a checkpoint: sync gets the error, the volume turns read-only
        t "mkfs, mount; a committed file and an fsync'd one" sh -c "mkfs.logfs -q -f $ED && mount -t bento -o fs=logfs $ED /mnt/b && bento-t pwrite /mnt/b/committed 0 1M 11 && sync && bento-t pwrite /mnt/b/synced 0 300K 12 && bento-t fsync /mnt/b/synced"
        t "... changes waiting for the checkpoint" sh -c 'mkdir /mnt/b/n && i=0; while [ $i -lt 200 ]; do echo $i >/mnt/b/n/f$i || exit 1; i=$((i + 1)); done && chmod 600 /mnt/b/committed && bento-t setx /mnt/b/synced user.a b'
        kclear
        t "writes start failing" dmtable "0 $sz error"
        r=$(/usr/bin/sync -f /mnt/b 2>&1; echo "rc=$?")
        case $r in *rc=0) nok "syncfs (a checkpoint) with failing writes: no error" ;; *) ok "syncfs (a checkpoint) with failing writes: fails ($r)" ;; esac
        klogre "... log line: read-only until remounted" 'logfs: .* failed .*read-only until remounted'
        teq "... a change after the failure: EROFS" "errno=EROFS" bento-t openx /mnt/b/later
        kshow 6
        t "umount" umount /mnt/b
        t "the device works again" dmtable "0 $sz linear $E 0"
        fsck_clean "fsck.logfs -n: the last checkpoint is consistent" "$ED"
        t "mount again" mnt_logfs "$ED" /mnt/b
        t "... the committed and the fsync'd files are intact" sh -c 'bento-t pcheck /mnt/b/committed 0 1M 11 && bento-t pcheck /mnt/b/synced 0 300K 12'
        # writes fail during fsync
        t "an fsync'd file, another rewritten in the page cache" sh -c 'bento-t pwrite /mnt/b/f3 0 200K 15 && bento-t fsync /mnt/b/f3 && bento-t pwrite /mnt/b/f2 0 200K 13 && bento-t fsync /mnt/b/f2 && bento-t pwrite /mnt/b/f2 0 200K 14'
        kclear
        t "writes start failing" dmtable "0 $sz error"
        teq "fsync with failing writes: EIO" "errno=EIO" bento-t fsyncw /mnt/b/f2
        klogre "... log line: read-only until remounted" 'logfs: .* failed .*read-only until remounted'
        teq "... a change after the failure: EROFS" "errno=EROFS" bento-t openx /mnt/b/later
        t "umount" umount /mnt/b
        t "the device works again" dmtable "0 $sz linear $E 0"
        fsck_clean "fsck.logfs -n: the last checkpoint is consistent" "$ED"
        t "mount again" mnt_logfs "$ED" /mnt/b
        t "... the fsync'd files are intact (the rewrite was never acknowledged)" sh -c 'bento-t pcheck /mnt/b/f3 0 200K 15 && bento-t pcheck /mnt/b/committed 0 1M 11 && { bento-t pcheck /mnt/b/f2 0 200K 13 || bento-t pcheck /mnt/b/f2 0 200K 14; }'
        t "umount" umount /mnt/b
        fsck_clean "fsck.logfs -n: clean" "$ED"
        kclean "writes failing in a checkpoint and in fsync: no oops"
        # mount on failing devices
        t "superblocks unreadable" dmtable "0 16 error
16 $((sz - 16)) linear $E 16"
        kclear
        teq "mount: EIO" "errno=EIO" bento-t mount "$ED" /mnt/b bento fs=logfs
        klogre "... log line" 'logfs: cannot mount: .*(I/O|EIO|-5)'
        kshow 4
        t "everything unreadable" dmtable "0 $sz error"
        kclear
        teq "mount: EIO" "errno=EIO" bento-t mount "$ED" /mnt/b bento fs=logfs
        klogre "... log line" 'logfs: cannot mount: .*(I/O|EIO|-5)'
        # errors past the superblocks (checkpoint and tables)
        t "the first 64 KiB readable, the rest failing" dmtable "0 128 linear $E 0
128 $((sz - 128)) error"
        kclear
        teq "mount: EIO" "errno=EIO" bento-t mount "$ED" /mnt/b bento fs=logfs
        klogre "... log line" 'logfs: cannot mount: .*(I/O|EIO|-5)'
        kshow 4
        t "dmsetup remove" dm remove lfs
        kclean "I/O errors at mount: no oops"
    fi
    part_end
fi

# ---- n: allocation failures and memory pressure (its own file: guest-nomem.sh) -------------
if want n; then . /lib/bento/guest-nomem.sh; fi

# ---- u: live upgrade ------------------------------------------------------------------------
# Two logfs mounts under a checked workload (bento-t churn: 3 processes per mount writing,
# fsyncing, renaming, reading back and comparing, listing, unlinking, mkdir/xattr/rmdir);
# meanwhile UPG_ROUNDS upgrades alternate logfs.ko ($VER) and logfs_v2.ko ($VER+v2), the
# replaced module unloaded after each; then bad upgrades (a state version it does not read, another
# format major) are refused with a log line while the workload goes on. Then: no failed call,
# the data written before is intact, a remount sees the same tree, fsck is clean.
# upg_versions: "VERSION/MODULE" that /proc/fs/bento/mounts shows for the two mounts
upg_versions() { for d in $U1 $U2; do awk -v d="$(kname "$d")" '$1 == d { print $3 "/" $4 }' /proc/fs/bento/mounts; done | sort -u | tr '\n' ' ' | sed 's/ $//'; }
# upg_sysfs VERSION: what /sys/fs/bento/logfs/mounts shows (sorted) with both mounts on VERSION
upg_sysfs() { for d in $U1 $U2; do echo "$(kname "$d") $1"; done | sort; }
if want u; then
    part_begin u "live upgrade: $UPG_ROUNDS upgrades v1 <-> v2 of two mounts under a checked workload; refused bad upgrades"
    U1=$DISK_UPG1 U2=$DISK_UPG2
    mkdir -p /mnt/u1 /mnt/u2
    t "mkfs.logfs $U1, $U2" sh -c "mkfs.logfs -q $U1 && mkfs.logfs -q $U2"
    t "mount both" sh -c "mount -t bento -o fs=logfs $U1 /mnt/u1 && mount -t bento -o fs=logfs $U2 /mnt/u2"
    for m in u1 u2; do
        mkdir -p /mnt/$m/base/d
        bento-t pwrite /mnt/$m/base/big 0 8M 31 >/dev/null
        echo hello >/mnt/$m/base/d/h; ln /mnt/$m/base/d/h /mnt/$m/base/d/h2; ln -s d/h /mnt/$m/base/sym
        bento-t setx /mnt/$m/base/d user.k v1 >/dev/null
    done
    sync
    manifest /mnt/u1/base /tmp/u1-base.manifest
    manifest /mnt/u2/base /tmp/u2-base.manifest
    teq "/proc/fs/bento/mounts: both mounts on logfs $VER" "$VER/logfs" upg_versions
    teq "/sys/fs/bento/logfs/mounts: both mounts on $VER" "$(upg_sysfs "$VER")" sort /sys/fs/bento/logfs/mounts
    rm -f /tmp/upg-stop /tmp/upg-windows /tmp/churn-*
    pids=""
    for m in u1 u2; do for w in 1 2 3; do
        bento-t churn /mnt/$m/w$w /tmp/upg-stop /tmp/churn-$m-$w.out 2>/tmp/churn-$m-$w.err &
        pids="$pids $!"
    done; done
    sleep 3
    okn=0 badv=0 badsys=0 badrm=0 i=1
    t0=$(up)
    while [ $i -le "$UPG_ROUNDS" ]; do
        if [ $((i % 2)) -eq 1 ]; then new=logfs_v2 old=logfs ver=$VER+v2
        else new=logfs old=logfs_v2 ver=$VER; fi
        if w=$(bento-t insmod /lib/bento/$new.ko); then
            okn=$((okn + 1)); echo "$i $w" >>/tmp/upg-windows
        else
            nok "upgrade $i to $new: $w"; dmesg | tail -n 5 | sed 's/^/#   /'
        fi
        v=$(upg_versions)
        [ "$v" = "$ver/$new" ] || { badv=$((badv + 1)); note "after upgrade $i: mounts on '$v', want '$ver/$new'"; }
        v=$(cat /sys/fs/bento/logfs/version; sort /sys/fs/bento/logfs/mounts)
        [ "$v" = "$(echo "$ver"; upg_sysfs "$ver")" ] || { badsys=$((badsys + 1)); note "after upgrade $i: /sys/fs/bento/logfs: $(echo $v)"; }
        if [ $i -eq $((UPG_ROUNDS - 1)) ] && [ $new = logfs_v2 ]; then
            teq "v2 reports the upgrades of the mount (trusted.logfs.stats)" "upgrades $i" sh -c "bento-t getx /mnt/u1 trusted.logfs.stats | grep upgrades"
        fi
        r=$(bento-t rmmod $old) || { badrm=$((badrm + 1)); note "rmmod $old after upgrade $i: $r"; }
        sleep 1
        i=$((i + 1))
    done
    [ "$okn" -eq "$UPG_ROUNDS" ] && ok "$UPG_ROUNDS upgrades of both mounts, each insmod succeeded$(took "$t0")" || nok "only $okn of $UPG_ROUNDS upgrades succeeded"
    [ $badv -eq 0 ] && ok "after each, /proc/fs/bento/mounts shows both mounts on the new version" || nok "$badv times a mount was not on the new version"
    [ $badsys -eq 0 ] && ok "after each, /sys/fs/bento/logfs: version and both mounts' lines are the new version" || nok "$badsys times /sys/fs/bento/logfs did not show the new version"
    [ $badrm -eq 0 ] && ok "after each, the replaced module unloads (rmmod)" || nok "$badrm times the replaced module could not be unloaded"
    teq "/proc/fs/bento/filesystems: logfs $VER, 2 mounts" "logfs $VER 2" cat /proc/fs/bento/filesystems
    dmesg | grep 'bento: upgraded logfs' | sed -n '1p;$p' | sed 's/^/# klog: /'

    # bad upgrades, while the workload goes on
    kclear
    teq "insmod logfs_badstate.ko (state version 0xbad only): refused" "errno=EINVAL" bento-t insmod /lib/bento/logfs_badstate.ko
    klog "... log line: the state version" "logfs: upgrade state refused: state version 1 (from $VER) is older than this version ($VER+bad-state) reads (2989)"
    klog "... log line: nothing changed" "every mount stays on $VER"
    kshow 4
    teq "... both mounts still on $VER" "$VER/logfs" upg_versions
    kclear
    teq "insmod logfs_badformat.ko (format major 2): refused" "errno=EINVAL" bento-t insmod /lib/bento/logfs_badformat.ko
    klog "... log line: the format" "logfs: upgrade state refused: the volume's format major version is not ours"
    klog "... log line: nothing changed" "every mount stays on $VER"
    kshow 4
    teq "... both mounts still on $VER" "$VER/logfs" upg_versions
    teq "... no bad module left loaded" "" sh -c 'grep -E "^logfs_bad" /proc/modules'
    sleep 2

    touch /tmp/upg-stop
    wfail=0
    for p in $pids; do wait $p || wfail=$((wfail + 1)); done
    cat /tmp/churn-*.err | head -20 | sed 's/^/#   /'
    tot=$(cat /tmp/churn-*.out | awk '/^calls/ { c += $2; f += $4; k += $6; if ($8 > m) m = $8 } END { printf "%d calls, %d failed, %d reads checked, longest call %.1f ms", c, f, k, m / 1000 }')
    [ $wfail -eq 0 ] && ok "workload (6 processes on two mounts): no failed call, every read as written: $tot" || nok "workload: $wfail processes failed: $tot"
    # The longest call that overlapped each upgrade (insmod start..end).
    cat /tmp/churn-*.out | grep -v '^calls' >/tmp/upg-slow
    awk 'NR == FNR { s[NR] = $2; e[NR] = $3; n = NR; next }
         { for (i = 1; i <= n; i++) if ($1 < e[i] && $1 + $2 > s[i] && $2 > w[i]) w[i] = $2 }
         END { for (i = 1; i <= n; i++) printf "%.1f\n", w[i] / 1e6 }' /tmp/upg-windows /tmp/upg-slow | sort -n >/tmp/upg-stalls
    note "longest call overlapping each upgrade, ms (sorted): $(tr '\n' ' ' </tmp/upg-stalls)"
    cp /tmp/upg-windows /tmp/upg-stalls /out/ 2>/dev/null
    dmesg | grep 'bento: upgraded' >/out/upg-klog.txt 2>/dev/null

    manifest /mnt/u1/base /tmp/u1-base.after
    manifest /mnt/u2/base /tmp/u2-base.after
    cmpf "the data written before the upgrades is intact (mount 1)" /tmp/u1-base.manifest /tmp/u1-base.after
    cmpf "the data written before the upgrades is intact (mount 2)" /tmp/u2-base.manifest /tmp/u2-base.after
    manifest /mnt/u1 /tmp/u1-all.manifest
    manifest /mnt/u2 /tmp/u2-all.manifest
    t "umount both" sh -c "umount /mnt/u1 && umount /mnt/u2"
    fsck_clean "fsck.logfs -n $U1: clean" "$U1"
    fsck_clean "fsck.logfs -n $U2: clean" "$U2"
    t "mount both again" sh -c "mount -t bento -o fs=logfs $U1 /mnt/u1 && mount -t bento -o fs=logfs $U2 /mnt/u2"
    manifest /mnt/u1 /tmp/u1-all.after
    manifest /mnt/u2 /tmp/u2-all.after
    cmpf "after a remount, mount 1 holds what the workload left" /tmp/u1-all.manifest /tmp/u1-all.after
    cmpf "after a remount, mount 2 holds what the workload left" /tmp/u2-all.manifest /tmp/u2-all.after
    t "umount both" sh -c "umount /mnt/u1 && umount /mnt/u2"
    teq "logfs $VER is registered, no mounts" "logfs $VER 0" cat /proc/fs/bento/filesystems
    # without mounts: the registration alone moves; new mounts get the new version
    t "insmod logfs_v2.ko without mounts" insmod /lib/bento/logfs_v2.ko
    teq "... registered as $VER+v2" "logfs $VER+v2 0" cat /proc/fs/bento/filesystems
    teq "... /sys/fs/bento/logfs/version: $VER+v2" "$VER+v2" cat /sys/fs/bento/logfs/version
    t "... rmmod logfs (replaced)" rmmod logfs
    teq "... /sys/fs/bento/logfs stays" "$VER+v2" cat /sys/fs/bento/logfs/version
    t "... a new mount" mount -t bento -o fs=logfs $U1 /mnt/u1
    teq "... runs $VER+v2 (/proc/fs/bento/mounts)" "$(kname "$U1") logfs $VER+v2 logfs_v2" cat /proc/fs/bento/mounts
    teq "... and /sys/fs/bento/logfs/mounts" "$(kname "$U1") $VER+v2" cat /sys/fs/bento/logfs/mounts
    teq "... logfs_v2 is in use (delete_module O_NONBLOCK: EAGAIN)" "errno=EAGAIN" bento-t rmmod logfs_v2
    t "... umount" umount /mnt/u1
    teq "... its line is gone from /sys/fs/bento/logfs/mounts" "" cat /sys/fs/bento/logfs/mounts
    t "... back to logfs.ko, logfs_v2 unloaded" sh -c "insmod /lib/bento/logfs.ko && rmmod logfs_v2"
    teq "... registered as $VER" "logfs $VER 0" cat /proc/fs/bento/filesystems

    # More mounts than the kernel runs work items at once (512): an upgrade whose work items
    # waited for each other used to hang there. Read-only loop mounts of one image (the export
    # of a read-only mount writes nothing).
    many=${UPG_MANY:-600}
    t "a 64 MiB logfs image with a file" sh -c 'truncate -s 64M /tmp/many.img && mkfs.logfs -q /tmp/many.img && mkdir -p /mnt/many/w && mount -t bento -o loop,fs=logfs /tmp/many.img /mnt/many/w && echo hello >/mnt/many/w/f && umount /mnt/many/w && rmdir /mnt/many/w'
    memavail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
    sync; echo 3 >/proc/sys/vm/drop_caches; m0=$(memavail)
    t0=$(up) i=0
    while [ $i -lt "$many" ]; do
        mkdir -p /mnt/many/$i
        mount -t bento -o ro,loop,fs=logfs /tmp/many.img /mnt/many/$i 2>/tmp/many.err || break
        i=$((i + 1))
    done
    [ $i -eq "$many" ] && ok "$many read-only loop mounts of it$(took "$t0")" || { nok "only $i of $many loop mounts"; sed 's/^/#   /' /tmp/many.err; }
    sync; echo 3 >/proc/sys/vm/drop_caches
    mounted=$i; [ "$mounted" -gt 0 ] || mounted=1
    per=$(( (m0 - $(memavail)) / mounted ))
    [ "$per" -le 1024 ] && ok "memory per read-only mount (with its loop device): $per KiB" || nok "memory per read-only mount: $per KiB (a segment buffer is 2 MiB)"
    kclear
    t "insmod logfs_v2.ko: one upgrade of all $many mounts" insmod /lib/bento/logfs_v2.ko
    klog "... in one step" "upgraded logfs $VER -> $VER+v2: $many mounts"
    teq "... every mount runs $VER+v2" "$many" sh -c "grep -c ' logfs $VER+v2 logfs_v2\$' /proc/fs/bento/mounts"
    # one page of whole lines, each a mount on the new version
    teq "... /sys/fs/bento/logfs/mounts: at most a page of whole lines, all $VER+v2" "ok" sh -c "f=/sys/fs/bento/logfs/mounts; [ \$(wc -c <\$f) -le 4096 ] && [ \$(wc -l <\$f) -ge 100 ] && ! grep -qv '^loop[0-9]* $VER+v2\$' \$f && echo ok"
    t "... and back: rmmod logfs, insmod logfs.ko" sh -c "rmmod logfs && insmod /lib/bento/logfs.ko"
    teq "... every mount runs $VER" "$many" sh -c "grep -c ' logfs $VER logfs\$' /proc/fs/bento/mounts"
    t "... rmmod logfs_v2" rmmod logfs_v2
    teq "... the first and the last mount read the file" "hello hello" sh -c "echo \$(cat /mnt/many/0/f /mnt/many/$((many - 1))/f)"
    t0=$(up)
    t "umount all $many" sh -c 'for d in /mnt/many/*; do umount "$d" || exit 1; done'
    note "unmounted$(took "$t0")"
    teq "logfs $VER is registered, no mounts" "logfs $VER 0" cat /proc/fs/bento/filesystems
    part_end
fi

# ---- r: upgrade between releases: the previous release's bentofs.ko stays loaded; busy mounts
# move from its logfs.ko to the working tree's (logfs_v2.ko: $VER+v2) and back, RELEASE_ROUNDS
# times, under the churn workload of part u.
if want r; then
    part_begin r "upgrade between releases: $PREV (its bentofs.ko stays) <-> the working tree ($VER+v2), two busy mounts"
    P=/lib/bento/prev R1=$DISK_REL1 R2=$DISK_REL2
    t "unload the working tree's modules" sh -c "rmmod logfs && rmmod bentofs"
    t "insmod $PREV's bentofs.ko and logfs.ko" sh -c "insmod $P/bentofs.ko && insmod $P/logfs.ko"
    teq "... logfs ${PREV#v} registered" "logfs ${PREV#v} 0" cat /proc/fs/bento/filesystems
    mkdir -p /mnt/r1 /mnt/r2
    t "mkfs.logfs $R1, $R2; mount both" sh -c "mkfs.logfs -q $R1 && mkfs.logfs -q $R2 && mount -t bento -o fs=logfs $R1 /mnt/r1 && mount -t bento -o fs=logfs $R2 /mnt/r2"
    for m in r1 r2; do mkdir -p /mnt/$m/base; bento-t pwrite /mnt/$m/base/big 0 8M 41 >/dev/null; done
    sync
    manifest /mnt/r1/base /tmp/r1-base.manifest
    manifest /mnt/r2/base /tmp/r2-base.manifest
    rel_versions() { for d in $R1 $R2; do awk -v d="$(kname "$d")" '$1 == d { print $3 "/" $4 }' /proc/fs/bento/mounts; done | sort -u | tr '\n' ' ' | sed 's/ $//'; }
    rm -f /tmp/rel-stop /tmp/churn-r*
    pids=""
    for m in r1 r2; do for w in 1 2 3; do
        bento-t churn /mnt/$m/w$w /tmp/rel-stop /tmp/churn-r-$m-$w.out 2>/tmp/churn-r-$m-$w.err &
        pids="$pids $!"
    done; done
    sleep 3
    i=1 okn=0 bad=0
    while [ $i -le "$RELEASE_ROUNDS" ]; do
        if [ $((i % 2)) -eq 1 ]; then ko=/lib/bento/logfs_v2.ko new=logfs_v2 old=logfs ver=$VER+v2
        else ko=$P/logfs.ko new=logfs old=logfs_v2 ver=${PREV#v}; fi
        if w=$(bento-t insmod $ko); then okn=$((okn + 1)); else nok "upgrade $i to $ver: $w"; dmesg | tail -n 5 | sed 's/^/#   /'; fi
        v=$(rel_versions)
        [ "$v" = "$ver/$new" ] || { bad=$((bad + 1)); note "after upgrade $i: mounts on '$v', want '$ver/$new'"; }
        r=$(bento-t rmmod $old) || { bad=$((bad + 1)); note "rmmod $old after upgrade $i: $r"; }
        sleep 1
        i=$((i + 1))
    done
    [ "$okn" -eq "$RELEASE_ROUNDS" ] && ok "$RELEASE_ROUNDS upgrades $PREV <-> $VER+v2 of both mounts succeeded" || nok "only $okn of $RELEASE_ROUNDS upgrades succeeded"
    [ $bad -eq 0 ] && ok "after each, both mounts on the new version and the old module unloaded" || nok "$bad version or unload problems"
    dmesg | grep 'bento: upgraded logfs' | sed -n '1,2p' | sed 's/^/# klog: /'
    touch /tmp/rel-stop
    wfail=0
    for p in $pids; do wait $p || wfail=$((wfail + 1)); done
    cat /tmp/churn-r-*.err | head -20 | sed 's/^/#   /'
    tot=$(cat /tmp/churn-r-*.out | awk '/^calls/ { c += $2; f += $4; k += $6 } END { printf "%d calls, %d failed, %d reads checked", c, f, k }')
    [ $wfail -eq 0 ] && ok "workload (6 processes on two mounts): no failed call, every read as written: $tot" || nok "workload: $wfail processes failed: $tot"
    manifest /mnt/r1/base /tmp/r1-base.after
    manifest /mnt/r2/base /tmp/r2-base.after
    cmpf "the data written before the upgrades is intact (mount 1)" /tmp/r1-base.manifest /tmp/r1-base.after
    cmpf "the data written before the upgrades is intact (mount 2)" /tmp/r2-base.manifest /tmp/r2-base.after
    t "umount both" sh -c "umount /mnt/r1 && umount /mnt/r2"
    fsck_clean "fsck.logfs -n $R1: clean" "$R1"
    fsck_clean "fsck.logfs -n $R2: clean" "$R2"
    # The other way round: $PREV's logfs.ko on the working tree's bentofs.ko, then upgraded.
    t "the working tree's bentofs.ko under $PREV's logfs.ko" sh -c "rmmod logfs && rmmod bentofs && insmod /lib/bento/bentofs.ko && insmod $P/logfs.ko"
    t "... mount, the data intact, write" sh -c "mount -t bento -o fs=logfs $R1 /mnt/r1 && bento-t tree /mnt/r1/base | cmp -s - /tmp/r1-base.manifest && echo new >/mnt/r1/new && sync"
    t "... a live upgrade to logfs_v2.ko ($VER+v2); $PREV's unloads" sh -c "bento-t insmod /lib/bento/logfs_v2.ko >/dev/null && rmmod logfs"
    teq "... the mount on $VER+v2" "logfs $VER+v2 1" cat /proc/fs/bento/filesystems
    t "... umount, fsck; back to logfs.ko" sh -c "grep -qx new /mnt/r1/new && umount /mnt/r1 && fsck.logfs -n $R1 >/dev/null && insmod /lib/bento/logfs.ko && rmmod logfs_v2"
    part_end
fi

# ---- s: shutdown and freeze (part-s.sh) --------------------------------------------------------
if want s; then . /usr/lib/bento/part-s.sh; fi

# ---- p: panic containment (part-p.sh) ---------------------------------------------------------
if want p; then . /usr/lib/bento/part-p.sh; fi

# ---- g: unload ------------------------------------------------------------------------------
part_begin g "unload the modules, kernel log"
teq "no bento mounts left" "" sh -c 'grep " bento " /proc/mounts'
t "rmmod logfs" rmmod logfs
klog "... unregistered" "bento: unregistered file system logfs"
t "... /sys/fs/bento/logfs removed" test ! -e /sys/fs/bento/logfs
t "rmmod bentofs" rmmod bentofs
t "no Bento module left" sh -c '! grep -qE "^(bentofs|logfs|bento_memfs) " /proc/modules'
t "/proc/fs/bento removed" test ! -e /proc/fs/bento
t "/sys/fs/bento removed" test ! -e /sys/fs/bento
part_end

echo "# $n checks, $fails failed"
echo "$n $fails" >/out/result
(cd /out && tar -cf "$DISK_OUT" .) || echo "# could not write the results disk"
[ $fails -lt 200 ] || fails=200
exit $fails
