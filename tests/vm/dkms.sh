#!/usr/bin/env bash
# The Debian packages as an administrator meets them: `make deb` builds logfs-tools and
# logfs-dkms; dpkg installs them on this machine, which has the headers of both kernel lines
# (6.1 and 6.12), and DKMS builds bentofs.ko and logfs.ko for each. Then one boot per kernel with
# the DKMS-built modules under /lib/modules/<release>/updates/dkms and the packaged tools:
# `mkfs -t logfs`, `mount -t bento -o fs=logfs` with no insmod (the kernel loads both modules),
# a workload compared file by file, umount, mount, compare, umount, `fsck -t logfs`.
# Bad input: headers of a kernel the package cannot build for (code-generation flags no prebuilt
# object matches) are reported while the package installs and stays configured. Both packages are
# purged at the end (and at the start, if a run was interrupted).
#
#   tests/vm/dkms.sh [WORKDIR]        about 4 minutes; tests/all.sh runs it
#
# Logs: target/vm-logs/dkms-<time>/ (dpkg.log, console-<release>.log).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $(id -u) -eq 0 ]] || vm_die "tests/vm/dkms.sh: run as root (it installs packages)"
work=${1:-$(mktemp -d /tmp/vm-dkms.XXXXXX)}
logdir=$repo/target/vm-logs/dkms-$(date +%Y%m%d-%H%M%S)
mkdir -p "$work" "$logdir"
ln -sfn "$(basename "$logdir")" "$repo/target/vm-logs/dkms-latest"

# lib.sh derives the kernel line's packages when sourced: one shell per line.
line_krel() { VM_LINE=$1 bash -c ". '$here/lib.sh' && vm_krel"; }
krels=("$(line_krel '')" "$(line_krel 6.12)")
# A kernel whose headers ask for function padding no prebuilt object has (see the Makefile).
fake=${krels[0]%-cloud-amd64}-logfstest
fail=0
say() { echo "dkms: $*"; }
check() {  # DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@" >>"$logdir/checks.log" 2>&1; then say "ok - $d"; else say "not ok - $d"; fail=1; fi
}

purge() {
    dpkg --purge logfs-tools logfs-dkms >>"$logdir/dpkg.log" 2>&1 || true
    rm -rf "/usr/src/linux-headers-$fake" "/lib/modules/$fake"
}
trap purge EXIT
purge

# ---- build and install -------------------------------------------------------------------------
say "make deb (log $logdir/make-deb.log)"
make -C "$repo" deb >"$logdir/make-deb.log" 2>&1 || { tail -n 30 "$logdir/make-deb.log"; vm_die "make deb failed"; }
ver=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
debs=("$repo/target/debian/logfs-tools_${ver}-1_amd64.deb" "$repo/target/debian/logfs-dkms_${ver}-1_amd64.deb")
for d in "${debs[@]}"; do [[ -f $d ]] || vm_die "make deb made no $d"; done

cp -a "/usr/src/linux-headers-${krels[0]}" "/usr/src/linux-headers-$fake"
sed -i '/^CONFIG_CALL_PADDING=/d; /^CONFIG_FUNCTION_PADDING_BYTES=/d' "/usr/src/linux-headers-$fake/.config"
printf 'CONFIG_CALL_PADDING=y\nCONFIG_FUNCTION_PADDING_BYTES=32\n' >>"/usr/src/linux-headers-$fake/.config"
mkdir -p "/lib/modules/$fake"
ln -s "/usr/src/linux-headers-$fake" "/lib/modules/$fake/build"

say "dpkg -i ${debs[*]##*/} (log $logdir/dpkg.log)"
rc=0
dpkg -i "${debs[@]}" >"$logdir/dpkg.log" 2>&1 || rc=$?
check "dpkg -i exits 0" test "$rc" -eq 0
for p in logfs-tools logfs-dkms; do
    check "$p: install ok installed" \
        test "$(dpkg-query -W -f='${Status}' "$p")" = "install ok installed"
done
check "dpkg --audit: nothing half-installed" test -z "$(dpkg --audit)"
for k in "${krels[@]}"; do
    check "dkms: logfs/$ver installed for $k" grep -qx "logfs/$ver, $k, x86_64: installed" <(dkms status)
    for m in bentofs logfs; do
        check "$k: $m.ko under updates/dkms, for $k" sh -c \
            "modinfo -k '$k' -F vermagic $m | grep -q '^$k ' && modinfo -k '$k' -n $m | grep -q '/updates/dkms/'"
    done
done
check "$fake: the failure is reported" grep -q "logfs-dkms: the modules could not be built for $fake" "$logdir/dpkg.log"
check "$fake: dkms build fails again, and make.log says why" sh -c \
    "! dkms build -m logfs -v '$ver' -k '$fake' &&
     grep -q 'no prebuilt Rust object for $fake' /var/lib/dkms/logfs/'$ver'/build/make.log"
check "$fake: not installed" sh -c "! dkms status -k '$fake' | grep -q installed"
for t in mkfs.logfs fsck.logfs logfs-fuse; do
    check "/usr/sbin/$t and its man page" sh -c "test -x /usr/sbin/$t && man -w $t | grep -q /usr/share/man/man8/"
done
check "logfs(5)" sh -c "man -w 5 logfs | grep -q /usr/share/man/man5/logfs.5"

# ---- one boot per kernel -----------------------------------------------------------------------
cat >"$work/test.sh" <<'EOF'
#!/bin/sh
# In the guest: the DKMS modules, found by modprobe through the kernel's request_module.
k=$(uname -r) W=/dev/nvme0n1 fail=0
t() {
    desc=$1; shift
    if "$@" >/tmp/t.out 2>&1; then echo "ok - $desc"; else echo "not ok - $desc"; sed 's/^/# /' /tmp/t.out; fail=1; fi
}
sums() { (cd "$1" && find . -type f | sort | xargs md5sum) >"$2"; }
t "no Bento module loaded" sh -c '! grep -qE "^(bentofs|logfs) " /proc/modules'
t "modules from the package: $(ls /lib/modules/$k/updates/dkms | tr '\n' ' ')" \
    ls "/lib/modules/$k/updates/dkms/bentofs.ko"* "/lib/modules/$k/updates/dkms/logfs.ko"*
t "depmod -a (kmod's: busybox sh would run its own applet)" /usr/sbin/depmod -a
t "mkfs -t logfs $W" /usr/sbin/mkfs -t logfs -q "$W"
mkdir -p /mnt/w
t "mount -t bento -o fs=logfs $W /mnt/w (no insmod)" mount -t bento -o fs=logfs "$W" /mnt/w
t "... loaded bentofs and logfs" sh -c 'grep -q "^bentofs " /proc/modules && grep -q "^logfs " /proc/modules'
t "... version $(cat /etc/vmtest/version)" sh -c '[ "$(cat /sys/module/logfs/version)" = "$(cat /etc/vmtest/version)" ]'
t "workload: cp -a /usr" cp -a /usr /mnt/w/usr
t "workload: 64 MiB of random data" dd if=/dev/urandom of=/mnt/w/random bs=1M count=64
t "workload: 2,000 small files in 20 directories" sh -c 'for d in $(seq 20); do mkdir /mnt/w/d$d &&
    for f in $(seq 100); do echo "file $d/$f" >/mnt/w/d$d/$f || exit 1; done; done'
t "workload: links, rename, unlink" sh -c 'ln /mnt/w/random /mnt/w/hard && ln -s random /mnt/w/sym &&
    mv /mnt/w/usr/bin /mnt/w/bin-moved && rm -r /mnt/w/usr/lib64'
sums /mnt/w /tmp/before
t "sync" sync
t "umount" umount /mnt/w
t "mount again" mount -t bento -o fs=logfs "$W" /mnt/w
sums /mnt/w /tmp/after
t "every file as written ($(wc -l </tmp/before) files)" cmp /tmp/before /tmp/after
t "the symlink" sh -c '[ "$(readlink /mnt/w/sym)" = random ]'
t "umount" umount /mnt/w
t "fsck -t logfs $W" /usr/sbin/fsck -t logfs "$W"
t "rmmod logfs bentofs" sh -c 'rmmod logfs && rmmod bentofs'
exit $fail
EOF
for k in "${krels[@]}"; do
    ov=$work/overlay-$k
    rm -rf "$ov"; mkdir -p "$ov/etc/vmtest" "$ov/usr/lib/modules/$k"    # /lib is a link to usr/lib there
    echo "$ver" >"$ov/etc/vmtest/version"
    cp -a "/lib/modules/$k/updates" "$ov/usr/lib/modules/$k/"
    # kmod's modprobe and depmod (busybox's cannot read every compression the kernels use), and
    # util-linux's mkfs and fsck front ends, which run mkfs.logfs and fsck.logfs.
    VM_KREL=$k "$here/mkinitramfs.sh" -E -b /sbin/modprobe -b /sbin/depmod -b /sbin/modinfo \
        -b /usr/sbin/mkfs -b /usr/sbin/fsck -b /usr/sbin/mkfs.logfs -b /usr/sbin/fsck.logfs \
        -s "$work/test.sh" "$work/initramfs-$k.gz" "$ov" >/dev/null
    say "boot $k (log $logdir/console-$k.log)"
    rc=0
    VM_KREL=$k "$here/run-vm.sh" -q -t 900 -l "$logdir/console-$k.log" -n 2G "$work/initramfs-$k.gz" || rc=$?
    grep -E '^(not )?ok - ' "$logdir/console-$k.log" | sed "s/^/dkms: $k: /"
    check "$k: the boot passed (exit $rc)" test "$rc" -eq 0
done

purge
trap - EXIT
check "purged: no module left under /lib/modules" sh -c '! ls /lib/modules/*/updates/dkms/*logfs* /lib/modules/*/updates/dkms/bentofs* 2>/dev/null'
check "purged: no tool left" sh -c '! ls /usr/sbin/mkfs.logfs /usr/sbin/fsck.logfs 2>/dev/null'
if [[ $fail -eq 0 ]]; then say "PASS (logs $logdir)"; else say "FAIL (logs $logdir)"; exit 1; fi
