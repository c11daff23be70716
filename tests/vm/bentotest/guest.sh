#!/bin/sh
# The bentofs test, inside the VM (busybox sh): tests/vm/bentofs-selftest.sh installs it as
# /test.sh with bentofs.ko and bento_memfs.ko in /lib/bento and bento-t in /usr/bin. Output is
# TAP-like; the exit code is the number of failed checks.
D1=${D1:-/dev/nvme0n1} D2=${D2:-/dev/nvme0n2} M=/mnt/b M2=/mnt/c
fails=0 n=0

ok()  { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
# t DESC CMD...: CMD succeeds
t() {
    desc=$1; shift
    if "$@" >/tmp/t.out 2>&1; then ok "$desc"; else nok "$desc"; sed 's/^/#   /' /tmp/t.out; fi
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
# klog DESC TEXT: the kernel log has TEXT (fixed string)
klog() { if dmesg | grep -qF -- "$2"; then ok "$1"; else nok "$1: no '$2' in dmesg"; fi; }
nolog() { if dmesg | grep -qF -- "$2"; then nok "$1: '$2' in dmesg"; dmesg | grep -F -- "$2" | head -5; else ok "$1"; fi; }
dropcaches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
stats() { bento-t getx $M user.memfs.stats; }
statval() { stats | tr ' ' '\n' | sed -n "s/^$1=//p"; }

echo "# bentofs test on $(uname -r)"
t "insmod bentofs" insmod /lib/bento/bentofs.ko background_ms=200
t "insmod bento_memfs" insmod /lib/bento/bento_memfs.ko
klog "registry refuses a taken name, another ABI version and a short table" "registry self-check ok"
teq "/proc/fs/bento/filesystems lists memfs and memfs2" "memfs 1.0 0 memfs2 2.0 0" sh -c 'echo $(cat /proc/fs/bento/filesystems)'
teq "/sys/fs/bento: a directory per name" "memfs memfs2" sh -c 'echo $(ls /sys/fs/bento)'
teq "... version of each" "1.0 2.0" sh -c 'echo $(cat /sys/fs/bento/memfs/version /sys/fs/bento/memfs2/version)'
teq "... no mounts" "" cat /sys/fs/bento/memfs/mounts
mkdir -p $M $M2

# ---- mount options ----
# Without fs= every registered file system is tried in turn; memfs takes any device.
t "mount without fs=: the first registered file system that accepts the device" mount -t bento $D1 $M
t "... memfs, as /proc/mounts shows" grep -q "^$D1 $M bento rw,.*fs=memfs" /proc/mounts
t "... umount" umount $M
tf "mount with an unknown fs fails" mount -t bento -o fs=nosuch $D1 $M
klog "... with a log line" "bento: no file system named nosuch"
tf "mount with an option memfs refuses fails" mount -t bento -o fs=memfs,bogus=1 $D1 $M
klog "... memfs got it verbatim" 'bento_memfs: unknown option "bogus=1"'
t "mount with kstest (bento_ks_* services, block I/O)" mount -t bento -o fs=memfs,kstest $D1 $M
klog "... kstest ok" "bento_memfs: kstest ok"
klog "... bento_ks_log" "bento_memfs: kstest log line"
t "... umount" umount $M
t "mount fs=memfs" mount -t bento -o fs=memfs,verbose,maxfile=128 $D1 $M
klog "options other than fs= passed through verbatim" 'mount options "verbose,maxfile=128" flags 0 '
teq "/proc/fs/bento/filesystems counts the mount" "memfs 1.0 1 memfs2 2.0 0" sh -c 'echo $(cat /proc/fs/bento/filesystems)'
tf "the same device with another fs= fails" mount -t bento -o fs=memfs2 $D1 $M2
# The kernel's name of $D1 (the node may be named after its namespace id instead: /init).
kname=$(basename "$(readlink -f "/sys/dev/block/$((0x$(stat -c %t "$D1"))):$((0x$(stat -c %T "$D1")))")")
klog "... with a log line" "bento: $kname is already mounted with fs=memfs"
t "the same device with the same fs= shares the mount" sh -c "mount -t bento -o fs=memfs $D1 $M2 && echo shared >$M/sh && [ \$(cat $M2/sh) = shared ] && rm $M/sh && umount $M2"
t "/proc/mounts shows the options" grep -q "^$D1 $M bento rw,.*fs=memfs,verbose,maxfile=128" /proc/mounts
teq "statfs f_type is BENT" "42454e54" bento-t fstype $M
t "df" df $M
cd $M || exit 99

# ---- file data ----
echo hello >hello
teq "write and read a small file" "hello" cat hello
for sz in 1 100 4095 4096 4097 12345 65536 131073 1000000; do
    bento-t pwrite s$sz 0 $sz $sz || nok "pwrite $sz"
done
dropcaches
for sz in 1 100 4095 4096 4097 12345 65536 131073 1000000; do
    if bento-t pcheck s$sz 0 $sz $sz && [ "$(bento-t sizeof s$sz)" = $sz ]; then ok "size $sz read back after writeback"; else nok "size $sz"; fi
done
t "write 24 MiB" bento-t pwrite big 0 24M 5
t "... read back from the page cache" bento-t pcheck big 0 24M 5
dropcaches
t "... read back from the file system" bento-t pcheck big 0 24M 5
teq "... size" 25165824 bento-t sizeof big
mr=$(statval max_read) mw=$(statval max_write)
echo "# memfs: $(stats)"
if [ "${mr:-0}" -ge 131072 ]; then ok "readahead reads a window in one call (max read $mr)"; else nok "readahead batching: max read $mr"; fi
if [ "${mw:-0}" -ge 262144 ]; then ok "writeback writes runs of folios in one call (max write $mw)"; else nok "writeback batching: max write $mw"; fi
t "unaligned rewrite inside the big file" bento-t pwrite big 5000 70000 8
t "... read back" bento-t pcheck big 5000 70000 8
t "... neighbours intact" bento-t pcheck big 0 5000 5
dropcaches
t "... after writeback" bento-t pcheck big 5000 70000 8
t "... after writeback, neighbours" bento-t pcheck big 75000 100000 5

t "sparse: write at 10 MiB" bento-t pwrite sparse 10M 5000 6
teq "... size" 10490760 bento-t sizeof sparse
t "... hole reads as zeroes" bento-t zcheck sparse 0 10M
dropcaches
t "... hole after writeback" bento-t zcheck sparse 0 10M
t "... data after writeback" bento-t pcheck sparse 10M 5000 6

t "truncate down" truncate -s 5000 big
teq "... size" 5000 bento-t sizeof big
t "... data kept" bento-t pcheck big 0 5000 5
t "truncate up" truncate -s 100000 big
t "... new part is zeroes" bento-t zcheck big 5000 95000
dropcaches
t "... zeroes after writeback" bento-t zcheck big 5000 95000
t "... data after writeback" bento-t pcheck big 0 5000 5
echo abc >trunc; t "O_TRUNC" sh -c ': >trunc'
teq "... size 0" 0 bento-t sizeof trunc

t "mmap write" bento-t mmapw mm 300000 11
dropcaches
t "... reached the file system" bento-t pcheck mm 0 300000 11
t "mmap read" bento-t mmapr mm 4000 200000 11

t "mmap writes past EOF in the last page, msync" bento-t mmaptail mt1 sync
dropcaches
teq "... writeback kept the size" 5000 bento-t sizeof mt1
t "... data" bento-t pcheck mt1 0 5000 1
t "mmap writes past EOF, no msync, then truncate up" sh -c 'bento-t mmaptail mt2 nosync && truncate -s 8192 mt2'
t "... the tail reads as zeroes" bento-t zcheck mt2 5000 3192
dropcaches
t "... also after writeback" bento-t zcheck mt2 5000 3192
t "mmap writes past EOF, then write() further on" sh -c 'bento-t mmaptail mt3 nosync && bento-t pwrite mt3 6000 100 2'
t "... the gap reads as zeroes" bento-t zcheck mt3 5000 1000
dropcaches
t "... also after writeback" sh -c 'bento-t zcheck mt3 5000 1000 && bento-t pcheck mt3 6000 100 2 && bento-t pcheck mt3 0 5000 1'
t "fallocate" bento-t falloc fa 0 1M
teq "... extends" 1048576 bento-t sizeof fa
t "fallocate KEEP_SIZE" bento-t falloc fa 0 2M keep
teq "... keeps the size" 1048576 bento-t sizeof fa
bento-t pwrite ph 0 100K 3
t "punch a hole (dirty pages)" bento-t punch ph 8K 16K
t "... zeroes" bento-t zcheck ph 8K 16K
t "... around it" sh -c 'bento-t pcheck ph 0 8K 3 && bento-t pcheck ph 24K 76K 3'
dropcaches
t "... after writeback" sh -c 'bento-t zcheck ph 8K 16K && bento-t pcheck ph 0 8K 3 && bento-t pcheck ph 24K 76K 3'
t "punch an unaligned hole (clean pages)" bento-t punch ph 30001 5000
dropcaches
t "... after writeback" sh -c 'bento-t zcheck ph 30001 5000 && bento-t pcheck ph 24K 5425 3 && bento-t pcheck ph 35001 67399 3'

t "unlink an open file, read it back" bento-t unlinkopen unl

# ---- errors from the file system reach userspace as they are ----
teq "write error at writeback: fsync says ENOSPC" "errno=ENOSPC" bento-t fsyncw err-w
truncate -s 100 err-r
teq "read error: EIO" "errno=EIO" bento-t readerr err-r
teq "setxattr error: E2BIG" "errno=E2BIG" bento-t setx err-r user.x v
teq "O_EXCL on an existing file: EEXIST" "errno=EEXIST" bento-t openx hello

# ---- directories ----
t "mkdir" mkdir -p d/sub
i=0
while [ $i -lt 600 ]; do : >"d/file-with-a-longish-name-$i"; i=$((i + 1)); done
teq "ls sees 601 entries" 601 sh -c 'ls d | wc -l'
teq "getdents with a 200-byte buffer sees 603 (. and ..)" 603 bento-t getdents d 200
dropcaches
teq "... after the inodes were forgotten" 603 bento-t getdents d 200
t "ls -l" sh -c 'ls -l d >/dev/null'
teq "stat of a directory: link count" 3 stat -c %h d
tf "rmdir a non-empty directory" rmdir d
t "rm -r" rm -r d
t "... gone" test ! -e d
tf "lookup of a removed name" stat d

# ---- rename ----
echo A >ra; echo B >rb; mkdir rd
t "rename" mv ra rc
teq "... content moved" "A" cat rc
t "... old name gone" test ! -e ra
teq "RENAME_NOREPLACE onto an existing name" "errno=EEXIST" bento-t rename2 noreplace rc rb
t "RENAME_NOREPLACE to a new name" bento-t rename2 noreplace rc ra
t "RENAME_EXCHANGE" bento-t rename2 exchange ra rb
teq "... swapped" "B A" sh -c 'echo $(cat ra) $(cat rb)'
t "RENAME_EXCHANGE of a file and a directory" bento-t rename2 exchange ra rd
t "... types swapped" sh -c 'test -d ra && test -f rd'
teq "RENAME_WHITEOUT is refused" "errno=EINVAL" bento-t rename2 whiteout rb rx
t "rename over an existing file" mv rd rb
teq "... content" "B" cat rb
t "rename a directory into another one" sh -c 'mkdir -p p1 p2 && mv ra p1/ && mv p1/ra p2/ && test -d p2/ra'
teq "... parent link counts" "2 3" sh -c 'echo $(stat -c %h p1) $(stat -c %h p2)'

# ---- links ----
echo linked >lf
t "hard link" ln lf lf2
teq "... link count 2" 2 stat -c %h lf
rm lf
teq "... content through the other name" "linked" cat lf2
teq "... link count 1" 1 stat -c %h lf2
t "symlink" ln -s lf2 sl
teq "... readlink" "lf2" readlink sl
teq "... follow" "linked" cat sl
long=$(printf '%0999d' 0)
t "long symlink" ln -s "$long" sl2
teq "... readlink" "$long" readlink sl2
dropcaches
teq "... after forget" "lf2" readlink sl

# ---- attributes ----
echo x >at
t "chmod" chmod 4751 at
teq "... mode" 4751 stat -c %a at
t "chown" chown 1234:5678 at
teq "... owner, setuid cleared by chown" "751 1234:5678" stat -c '%a %u:%g' at
t "utimensat" bento-t utimens at 1000000000 1200000000
teq "... times" "1000000000 1200000000" stat -c '%X %Y' at
dropcaches
teq "... mode, owner and times from the file system" "751 1234:5678 1000000000 1200000000" stat -c '%a %u:%g %X %Y' at
t "touch" touch at
t "... mtime is now" sh -c '[ $(stat -c %Y at) -gt 1200000000 ]'
chown 0:0 at; chmod 4777 at
t "write as another user" bento-t asuser 1000 1000 sh -c "echo y >>$M/at"
teq "... kills setuid" 777 stat -c %a at
chmod 644 at
tf "permissions are enforced" bento-t asuser 1000 1000 sh -c "echo z >>$M/at"
t "mkfifo" mkfifo fifo
teq "... type" "fifo" stat -c %F fifo
t "mknod char device" mknod null c 1 3
teq "... device numbers" "1,3" stat -c %t,%T null
t "... works" sh -c 'echo discard >null'

# ---- xattrs ----
t "setxattr user." bento-t setx at user.color blue
teq "... getxattr" "blue" bento-t getx at user.color
teq "... size query and ERANGE" 4 bento-t sizex at user.color
teq "XATTR_CREATE on an existing name" "errno=EEXIST" bento-t setx at user.color red create
teq "XATTR_REPLACE on a missing name" "errno=ENODATA" bento-t setx at user.nope red replace
t "XATTR_REPLACE" bento-t setx at user.color red replace
t "trusted. and security." sh -c 'bento-t setx at trusted.t 1 && bento-t setx at security.s 2'
teq "listxattr" "user.color trusted.t security.s" sh -c 'echo $(bento-t listx at)'
dropcaches
teq "... after forget" "red" bento-t getx at user.color
t "removexattr" bento-t rmx at user.color
teq "... gone" "errno=ENODATA" bento-t getx at user.color
t "xattr on a directory" sh -c 'mkdir xd && bento-t setx xd user.d 1 && [ "$(bento-t getx xd user.d)" = 1 ]'
teq "unsupported namespace" "errno=EOPNOTSUPP" bento-t setx at os2.x 1

# ---- random I/O checked against a model ----
# bento_memfs has no collapse or insert range
t "fsx, 3000 ops" env FSX_NOSHIFT=1 bento-t fsx fsx1 3000 1
t "fsx, 3000 ops, another seed" env FSX_NOSHIFT=1 bento-t fsx fsx2 3000 2

# ---- fsync, concurrency ----
t "fsync" sh -c 'dd if=/dev/zero of=fs bs=4k count=10 conv=fsync 2>/dev/null'
t "sync" sync
pids=""
for w in 1 2 3 4; do
    (bento-t pwrite par$w 0 3M $w && bento-t pcheck par$w 0 3M $w && ls -l >/dev/null) &
    pids="$pids $!"
done
(for r in 1 2 3 4 5; do echo 1 >/proc/sys/vm/drop_caches; ls -R >/dev/null; done) &
pids="$pids $!"
cfail=0; for p in $pids; do wait $p || cfail=1; done
if [ $cfail = 0 ]; then ok "parallel writers, readers and cache drops"; else nok "parallel writers"; fi

# ---- background work ----
b1=$(statval background); sleep 1; b2=$(statval background)
if [ "$b2" -gt "$b1" ]; then ok "background work runs ($b1 -> $b2)"; else nok "background work: $b1 -> $b2"; fi

# ---- remount, module pinning ----
cd /
t "remount ro" mount -o remount,ro $M
t "... /proc/mounts says ro" grep -q "^$D1 $M bento ro," /proc/mounts
tf "... writes refused" touch $M/new
t "... data readable" bento-t pcheck $M/s1000000 0 1000000 1000000
b1=$(statval background); sleep 1; b2=$(statval background)
teq "... no background work while read-only" "$b1" echo "$b2"
t "remount rw (mounted rw)" mount -o remount,rw $M
t "... writable again" touch $M/new
sleep 1; b3=$(statval background)
if [ "$b3" -gt "$b2" ]; then ok "... background work again"; else nok "background work after remount rw: $b2 -> $b3"; fi
t "mount a second device read-only" mount -t bento -o ro,fs=memfs $D2 $M2
teq "... two mounts counted" "memfs 1.0 2 memfs2 2.0 0" sh -c 'echo $(cat /proc/fs/bento/filesystems)' 
kname2=$(basename "$(readlink -f "/sys/dev/block/$((0x$(stat -c %t "$D2"))):$((0x$(stat -c %T "$D2")))")")
teq "... /sys/fs/bento/memfs/mounts lists both" "$(echo $(printf '%s 1.0\n' $kname $kname2 | sort))" sh -c 'echo $(sort /sys/fs/bento/memfs/mounts)'
teq "... and memfs2 none" "" cat /sys/fs/bento/memfs2/mounts
tf "... remount rw refused" mount -o remount,rw $M2
klog "... with a log line" "cannot remount read-write a file system mounted read-only"
tf "rmmod bento_memfs while mounted" rmmod bento_memfs
t "umount" umount $M2
teq "... its line is gone from /sys/fs/bento/memfs/mounts" "$kname 1.0" cat /sys/fs/bento/memfs/mounts
t "umount" umount $M
nolog "no lookup leaks" "leak:"
nolog "no bad forgets" "forget of"
nolog "no background work on read-only mounts" "background work on a read-only mount"
klog "memfs saw 0 leaks" "0 lookup leaks"
teq "no mounts left" "memfs 1.0 0 memfs2 2.0 0" sh -c 'echo $(cat /proc/fs/bento/filesystems)' 
t "rmmod bento_memfs" rmmod bento_memfs
teq "... its directories are gone from /sys/fs/bento" "" ls /sys/fs/bento
t "rmmod bentofs" rmmod bentofs
t "/proc/fs/bento removed" test ! -e /proc/fs/bento
t "/sys/fs/bento removed" test ! -e /sys/fs/bento

echo "# bento kernel log:"
dmesg | grep -E 'bento' | sed 's/^/#   /'
echo "# $n checks, $fails failed"
[ $fails -lt 200 ] || fails=200
exit $fails
