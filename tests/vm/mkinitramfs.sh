#!/usr/bin/env bash
# Builds a gzip'd cpio initramfs for the test VM from busybox-static.
#
#   mkinitramfs.sh [options] OUTPUT [OVERLAY_DIR...]
#
#   -s SCRIPT   install SCRIPT as /test.sh (an overlay may also provide /test.sh)
#   -k MODS     comma-separated modules from the guest kernel's tree (e.g. loop,fuse);
#               their dependencies are added and all are insmod'ed in order at boot
#   -b BINARY   copy a host binary plus its shared libraries (ldd) into the image,
#               at the same path (repeatable)
#   -E          leave out e2fsprogs (mke2fs/mkfs.ext4, e2fsck, tune2fs, dumpe2fs),
#               which are included by default: busybox's mke2fs only makes ext2
#
# util-linux's blkid and wipefs are always included: mkfs.logfs runs them.
#
# Each OVERLAY_DIR is copied over the root (so callers add .ko files, static
# binaries, scripts). A file /etc/vmtest/insmod in the overlay lists further
# modules to load at boot, one "path [params]" per line.
#
# Boot protocol of /init (see run-vm.sh): mounts proc/sys/devtmpfs and tmpfs on
# /tmp, loads modules, waits for vmtest.disks=N NVMe namespaces, runs /test.sh with
# output on the console, prints "VMTEST-RESULT: <exit code>", syncs, powers off.
# With vmtest.shell=1 on the kernel command line it runs an interactive shell instead.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 2; }

script='' kmods='' e2fs=1
bins=()
while getopts s:k:b:Eh opt; do
    case $opt in
        s) script=$OPTARG ;;
        k) kmods=$OPTARG ;;
        b) bins+=("$OPTARG") ;;
        E) e2fs= ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
out=$1; shift
overlays=("$@")

busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
    ldd "$busybox" 2>&1 | grep -q 'not a dynamic executable' ||
    vm_die "$busybox is not static; install busybox-static (tests/vm/setup.sh)"

tree=$(mktemp -d /tmp/vm-initramfs.XXXXXX)
trap 'rm -rf "$tree"' EXIT

# Merged-/usr layout like the host, so host binaries and their ldd paths land in one place.
mkdir -p "$tree"/{usr/bin,usr/sbin,usr/lib,usr/lib64,dev,proc,sys,tmp,run,mnt,root,etc/vmtest}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$tree/$d"; done
cp "$busybox" "$tree/usr/bin/busybox"
mknod -m 600 "$tree/dev/console" c 5 1
mknod -m 666 "$tree/dev/null" c 1 3

# Copies a host binary and the shared libraries it needs to the same paths in the tree.
copy_binary() {
    local bin=$1 lib
    [[ -e $bin ]] || bin=$(command -v "$bin") || vm_die "binary not found: $1"
    install -D -m 755 "$(readlink -f "$bin")" "$tree$bin"
    # ldd lines: "libx.so => /path (addr)" or "/lib64/ld-linux... (addr)"; vdso has no path.
    while read -r lib; do
        [[ -e $tree$lib ]] || install -D -m 755 "$(readlink -f "$lib")" "$tree$lib"
    done < <(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' || true)
}

if [[ -n $e2fs ]]; then
    for b in /sbin/mke2fs /sbin/e2fsck /sbin/tune2fs /sbin/dumpe2fs; do copy_binary "$b"; done
    for t in ext2 ext3 ext4; do
        ln -sf mke2fs "$tree/sbin/mkfs.$t"
        ln -sf e2fsck "$tree/sbin/fsck.$t"
    done
    [[ ! -f /etc/mke2fs.conf ]] || cp /etc/mke2fs.conf "$tree/etc/"
fi
# util-linux's blkid and wipefs, which mkfs.logfs runs (busybox's blkid cannot --probe).
for b in /sbin/blkid /sbin/wipefs; do copy_binary "$b"; done
for b in "${bins[@]}"; do copy_binary "$b"; done

: >"$tree/etc/vmtest/kmods"
if [[ -n $kmods ]]; then
    krel=$(vm_krel)
    moddir=$(vm_kernel_modules "$krel") || vm_die "no module tree for $krel"
    root=${moddir%/lib/modules/*}
    # --show-depends prints "insmod /path/x.ko [params]" in load order, deps first,
    # and "builtin x" for built-in ones (nothing to do for those).
    IFS=, read -ra mods <<<"$kmods"
    for m in "${mods[@]}"; do
        modprobe -d "${root:-/}" -S "$krel" --show-depends "$m" ||
            vm_die "module $m not found for $krel"
    done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++' |
    while read -r ko; do
        install -D -m 644 "$ko" "$tree/lib/modules/$krel/${ko#"$moddir"/}"
        echo "/lib/modules/$krel/${ko#"$moddir"/}" >>"$tree/etc/vmtest/kmods"
    done
fi

cat >"$tree/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s    # doesn't overwrite, so host binaries copied in win
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin HOME=/root TERM=${TERM:-linux}
read -r up _ </proc/uptime
echo "VMTEST-INIT: uptime ${up}s, kernel $(uname -r)"

cmdline_opt() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n1; }

rc=0
# insmod in order; a failure here fails the run (marker code 250).
for list in /etc/vmtest/kmods /etc/vmtest/insmod; do
    [ -f "$list" ] || continue
    while read -r ko params; do
        [ -n "$ko" ] || continue
        insmod "$ko" $params || { echo "VMTEST: insmod $ko failed"; rc=250; }
    done <"$list"
done

# NVMe probing is asynchronous: wait (max ~30 s) for the namespaces run-vm.sh attached.
disks=$(cmdline_opt vmtest.disks)
if [ -n "$disks" ] && [ "$disks" -gt 0 ]; then
    i=0
    while [ "$(ls -d /sys/block/nvme0n* 2>/dev/null | wc -l)" -lt "$disks" ] && [ $i -lt 300 ]; do
        sleep 0.1; i=$((i + 1))
    done
    [ -b "/dev/nvme0n$disks" ] || { echo "VMTEST: only $(ls /dev/nvme0n* 2>/dev/null) of $disks disks"; rc=251; }
    # Newer kernels (6.12) scan namespaces in parallel, so nvme0nK need not be namespace K:
    # name the device nodes after the namespace id, the order run-vm.sh attached them in.
    for b in /sys/block/nvme0n*; do
        [ "$(cat "$b/nsid" 2>/dev/null)" = "${b##*nvme0n}" ] && continue
        mkdir -p /tmp/nvme-ns
        for b in /sys/block/nvme0n*; do
            mknod "/tmp/nvme-ns/nvme0n$(cat "$b/nsid")" b $(tr ':' ' ' <"$b/dev")
        done
        rm -f /dev/nvme0n*
        mv /tmp/nvme-ns/* /dev/
        echo "VMTEST: NVMe device nodes renamed after their namespace ids"
        break
    done
fi

if [ "$(cmdline_opt vmtest.shell)" = 1 ]; then
    echo "VMTEST: interactive shell; exit it to power off"
    setsid cttyhack sh -l
elif [ $rc -eq 0 ]; then
    if [ -x /test.sh ]; then
        cd /tmp && /test.sh </dev/null; rc=$?
    elif [ -f /test.sh ]; then
        cd /tmp && sh /test.sh </dev/null; rc=$?
    else
        echo "VMTEST: no /test.sh"; rc=127
    fi
fi
cd /
echo "VMTEST-RESULT: $rc"
sync
poweroff -f
EOF
chmod 755 "$tree/init"

for o in "${overlays[@]}"; do
    [[ -d $o ]] || vm_die "overlay is not a directory: $o"
    cp -a "$o/." "$tree/"
done
[[ -z $script ]] || install -m 755 "$script" "$tree/test.sh"

mkdir -p "$(dirname "$out")"
(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
    gzip -6 -n >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1))"
