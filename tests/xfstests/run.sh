#!/usr/bin/env bash
# tests/xfstests/run.sh - xfstests' generic quick tests on logfs (mount -t bento -o fs=logfs) and
# on ext4, in the project's test VM (Debian's cloud kernel under QEMU TCG, tests/vm/run-vm.sh),
# and a results file comparing the two. Not part of tests/all.sh: a full run takes hours under TCG.
#
#   tests/xfstests/run.sh                 (as root; see tests/xfstests/README.md)
#
# xfstests itself is not fetched, built or patched here: give run.sh a tree you built yourself
# (XFSTESTS_DIR; README.md says how). The guest is a Debian 12 root file system (debootstrap) with
# xfstests' run-time packages and a copy of that tree in /opt/xfstests, cached as an ext4 image
# under target/xfstests/ and reused while the package list, the kernel and the tree stay the same.
# Each file system gets its own boot: the busybox initramfs of tests/vm/mkinitramfs.sh mounts a
# scratch copy of that image, puts the tree's bentofs.ko, logfs.ko, mkfs.logfs and fsck.logfs in
# it and runs guest.sh there under chroot.
#
# Environment:
#   XFSTESTS_DIR      (required) an xfstests tree, already built (`make`) on Debian 12: its
#                     `check` and its binaries (ltp/fsstress, ltp/fsx, src/...) run in the guest
#   XFSTESTS_FS       the file systems, in order ["logfs ext4"]
#   XFSTESTS_TESTS    check's arguments selecting the tests ["-g generic/quick"]
#   XFSTESTS_TIMEOUT  seconds one test may take before the watchdog kills it as a hang [900]
#   XFSTESTS_DEV_SIZE size of the test and scratch devices (sparse) [6G]
#   XFSTESTS_VM_TIMEOUT  seconds one boot may take [43200]
#   XFSTESTS_PARALLEL=1  boot the file systems at the same time (two VMs) instead of in turn
#   XFSTESTS_MIRROR   the Debian mirror for debootstrap [http://deb.debian.org/debian]
#   XFSTESTS_RESULTS  where the results file goes [tests/xfstests/results]
#   VM_MEM [2G], VM_SMP [2]
# Output: tests/xfstests/results/<date>-<kernel>.txt (commit it), and the logs (console, check
# output, xfstests' results directory) under target/vm-logs/xfstests-<time>/.
set -euo pipefail

xt=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$xt/../.." && pwd)
here=$repo/tests/vm
# shellcheck source=../vm/lib.sh
. "$here/lib.sh"
# shellcheck source=../vm/suite/host-lib.sh
. "$here/suite/host-lib.sh"
export KS_NAME=xfstests

XFSTESTS_FS=${XFSTESTS_FS:-logfs ext4}
XFSTESTS_TESTS=${XFSTESTS_TESTS:--g generic/quick}
XFSTESTS_TIMEOUT=${XFSTESTS_TIMEOUT:-900}
XFSTESTS_DEV_SIZE=${XFSTESTS_DEV_SIZE:-6G}
XFSTESTS_VM_TIMEOUT=${XFSTESTS_VM_TIMEOUT:-43200}
XFSTESTS_MIRROR=${XFSTESTS_MIRROR:-http://deb.debian.org/debian}
XFSTESTS_RESULTS=${XFSTESTS_RESULTS:-$xt/results}
[[ $(id -u) -eq 0 ]] || ks_die "run as root (debootstrap, chroot)"
command -v debootstrap >/dev/null || ks_die "debootstrap missing; run tests/setup.sh"

# ---- the user's xfstests tree, built ------------------------------------------------------------
[[ -n ${XFSTESTS_DIR:-} ]] ||
    ks_die "set XFSTESTS_DIR to an xfstests tree you built (make) on Debian 12; see tests/xfstests/README.md"
src=$(cd "$XFSTESTS_DIR" 2>/dev/null && pwd) || ks_die "XFSTESTS_DIR=$XFSTESTS_DIR: no such directory"
[[ -f $src/check && -d $src/tests/generic && -f $src/common/rc ]] ||
    ks_die "XFSTESTS_DIR=$src is not an xfstests tree (no check, tests/generic or common/rc)"
for f in ltp/fsstress ltp/fsx src/godown; do
    [[ -x $src/$f ]] || ks_die "XFSTESTS_DIR=$src is not built: no $f (run make there; README.md)"
done
# What the tree is, for the results file and the image's cache key: its git commit (and a hash
# of its local changes) if it is a git work tree, else a hash of its files' names, sizes and
# modification times.
xgit() { git -c safe.directory="$src" -C "$src" "$@"; } # the tree may be someone else's
if xgit rev-parse --is-inside-work-tree >/dev/null 2>&1 && [[ $(xgit rev-parse --show-toplevel) == "$src" ]]; then
    xfstests_id=$(xgit rev-parse HEAD)
    [[ -z $(xgit status --porcelain --untracked-files=no) ]] ||
        xfstests_id+=" + local changes $(xgit diff HEAD | sha256sum | cut -c1-12)"
    xfstests_id+=" ($(xgit describe --tags --always 2>/dev/null || echo no tag))"
else
    xfstests_id="not a git tree; files hash $(find "$src" -path "$src/results" -prune -o -type f \
        -printf '%P %s %T@\n' | LC_ALL=C sort | sha256sum | cut -c1-12)"
fi
# and that of the built binaries, so that a rebuild gives a new image
xfstests_bin=$(find "$src/ltp" "$src/src" -type f -perm -u+x -printf '%P %s %T@\n' | LC_ALL=C sort |
    sha256sum | cut -c1-12)

krel=$(vm_krel)
cache=$repo/target/xfstests
stamp=$(date -u +%Y%m%d-%H%M%S)
logdir=$repo/target/vm-logs/xfstests-$stamp
mkdir -p "$cache" "$logdir"
ln -sfn "xfstests-$stamp" "$repo/target/vm-logs/xfstests-latest"
work=$(mktemp -d /var/tmp/xfstests.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- the modules and tools of the tree ----------------------------------------------------------
ks_make "$logdir" || ks_say "(continuing despite the build warnings)"
ks_tools "$logdir"
for f in bentofs-c/bentofs.ko logfs/kmod/logfs.ko target/release/mkfs.logfs target/release/fsck.logfs; do
    [[ -f $repo/$f ]] || ks_die "no $f after the build"
done
modinfo -F vermagic "$repo/logfs/kmod/logfs.ko" | grep -q "^$krel " || ks_die "logfs.ko was not built for $krel"

# ---- the guest's root image (cached) -----------------------------------------------------------
pkgs=$(tr -s ' \n' ',' <"$xt/guest-packages.txt" | sed 's/^,//; s/,$//')
rootfs=$cache/rootfs-bookworm-$(sha256sum "$xt/guest-packages.txt" | cut -c1-12)
if [[ ! -f $rootfs/.complete ]]; then
    ks_say "debootstrap bookworm into $rootfs (a few minutes)"
    rm -rf "$rootfs"
    nice -n 19 ionice -c3 debootstrap --variant=minbase --include="$pkgs" bookworm "$rootfs" \
        "$XFSTESTS_MIRROR" >"$logdir/debootstrap.log" 2>&1 ||
        { tail -n 20 "$logdir/debootstrap.log" >&2; ks_die "debootstrap failed (log $logdir/debootstrap.log)"; }
    touch "$rootfs/.complete"
fi
key=$(cat "$xt/guest-packages.txt" <(echo "$xfstests_id $xfstests_bin $krel v2") | sha256sum | cut -c1-12)
image=$cache/root-$key.img
if [[ ! -f $image ]]; then
    ks_say "building the guest image $image: the Debian root and $src in /opt/xfstests"
    stage=$cache/stage
    rm -rf "$stage" && cp -a "$rootfs" "$stage"
    rm -f "$stage/.complete"
    # the tree as it is, without its git directory, an earlier run's results or its local.config
    # (guest.sh writes its own)
    mkdir -p "$stage/opt/xfstests"
    tar -C "$src" --exclude=./.git --exclude=./results --exclude=./local.config -cf - . |
        tar -C "$stage/opt/xfstests" -xf - || ks_die "copying $src into the image failed"
    # the binaries must run in the guest: every shared library they need is there
    missing=$(chroot "$stage" /bin/sh -c 'find /opt/xfstests/ltp /opt/xfstests/src -type f -perm -u+x \
        -exec ldd {} + 2>/dev/null | grep "not found" | sort -u') || true
    [[ -z $missing ]] || { echo "$missing" >&2; ks_die "xfstests' binaries need libraries the guest lacks (built on another release than Debian 12, or guest-packages.txt lacks them)"; }
    # the users xfstests switches to
    chroot "$stage" /bin/sh -c 'useradd -m fsgqa && useradd -m fsgqa2 && useradd 123456-fsgqa'
    echo xfstests-vm >"$stage/etc/hostname"
    mkdir -p "$stage/lib/modules"
    cp -a "$(vm_kernel_modules "$krel")" "$stage/lib/modules/"
    mkdir -p "$stage/mnt/test" "$stage/mnt/scratch"
    mke2fs -q -t ext4 -d "$stage" -L xfstests-root "$image.tmp" 4G ||
        ks_die "mke2fs -d of the guest root failed"
    mv "$image.tmp" "$image"
    rm -rf "$stage"
fi

# ---- one boot per file system ------------------------------------------------------------------
ov=$work/overlay
mkdir -p "$ov/usr/lib/bento" "$ov/etc/vmtest"
install -m 644 "$repo/bentofs-c/bentofs.ko" "$repo/logfs/kmod/logfs.ko" "$ov/usr/lib/bento/"
install -m 755 "$repo/target/release/mkfs.logfs" "$repo/target/release/fsck.logfs" "$ov/usr/lib/bento/"
install -m 755 "$xt/guest.sh" "$ov/usr/lib/bento/xfstests-guest.sh"
cat >"$work/boot.sh" <<'EOF'
#!/bin/sh
# Mounts the Debian root (namespace 1) and runs the xfstests guest script in it under chroot.
R=/newroot
mkdir -p $R
mount -t ext4 /dev/nvme0n1 $R || { echo "XFST-ERROR cannot mount the root image"; exit 1; }
mkdir -p $R/usr/local/sbin $R/opt/bento
cp /usr/lib/bento/bentofs.ko /usr/lib/bento/logfs.ko /usr/lib/bento/xfstests-guest.sh /etc/vmtest/xfstests.conf $R/opt/bento/
cp /usr/lib/bento/mkfs.logfs /usr/lib/bento/fsck.logfs $R/usr/local/sbin/
mount -o bind /dev $R/dev
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t tmpfs tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
chroot $R /bin/bash /opt/bento/xfstests-guest.sh
rc=$?
umount $R/run $R/tmp $R/sys/kernel/debug $R/sys $R/proc $R/dev/shm $R/dev/pts $R/dev
sync
umount $R || mount -o remount,ro $R
exit $rc
EOF

# One file system's boot: FS. Its per-test results and check's output come from the image.
boot_fs() {
    local fs=$1 w=$work/$1 t0 rc=0
    mkdir -p "$w/overlay/etc/vmtest"
    cp -a "$ov/." "$w/overlay/"
    cat >"$w/overlay/etc/vmtest/xfstests.conf" <<EOF
FS=$fs
TESTS="$XFSTESTS_TESTS"
TEST_TIMEOUT=$XFSTESTS_TIMEOUT
EOF
    "$here/mkinitramfs.sh" -s "$work/boot.sh" "$w/initramfs.gz" "$w/overlay" >"$logdir/mkinitramfs-$fs.log" 2>&1 ||
        { cat "$logdir/mkinitramfs-$fs.log" >&2; ks_die "mkinitramfs failed"; }
    cp --sparse=always "$image" "$w/root.img"
    ks_say "$fs: booting (console $logdir/console-$fs.log; tail -f it to follow)"
    t0=$(ks_now)
    nice -n 19 "$here/run-vm.sh" -q -W -t "$XFSTESTS_VM_TIMEOUT" -m "${VM_MEM:-2G}" -c "${VM_SMP:-2}" \
        -l "$logdir/console-$fs.log" -d "$w/root.img" -n "$XFSTESTS_DEV_SIZE" -n "$XFSTESTS_DEV_SIZE" \
        "$w/initramfs.gz" >"$logdir/run-vm-$fs.log" 2>&1 || rc=$?
    ks_say "$fs: boot ended with $rc after $(ks_since "$t0") s"
    echo "$rc $(ks_since "$t0")" >"$logdir/vm-$fs.rc"
    # A boot that did not end cleanly leaves the root's journal to replay (up to half a minute
    # of check's output may be lost then; the console log has it).
    e2fsck -y -E journal_only "$w/root.img" >/dev/null 2>&1 || true
    mkdir -p "$logdir/$fs"
    debugfs -R "rdump /opt/bento/out $logdir/$fs" "$w/root.img" >/dev/null 2>&1 || true
    rm -f "$w/root.img"
}

pids=()
for fs in $XFSTESTS_FS; do
    case $fs in logfs | ext4) ;; *) ks_die "XFSTESTS_FS: logfs or ext4, not $fs" ;; esac
    if [[ ${XFSTESTS_PARALLEL:-} == 1 ]]; then
        boot_fs "$fs" &
        pids+=($!)
    else
        boot_fs "$fs"
    fi
done
for p in "${pids[@]}"; do wait "$p" || ks_die "a boot failed"; done

mkdir -p "$XFSTESTS_RESULTS"
result=$XFSTESTS_RESULTS/$(date -u +%Y-%m-%d)-$krel.txt
python3 "$xt/report.py" --logdir "$logdir" --fs "$XFSTESTS_FS" --kernel "$krel" \
    --xfstests "$xfstests_id" --project "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" \
    --tests "$XFSTESTS_TESTS" --timeout "$XFSTESTS_TIMEOUT" --devsize "$XFSTESTS_DEV_SIZE" --src "$src" >"$result"
sed -n '1,/^## Per test/p' "$result"
ks_say "results: $result (logs $logdir)"
