#!/usr/bin/env bash
# Runs the pjdfstest POSIX suite (tests/pjdfstest/pjdfstest.toml) in the VM on a bentofs mount
# (tests/vm/kernel-suite.sh runs it for logfs as its part c, with an allowlist):
# the C test file system bento_memfs (default), or logfs from logfs/kmod/logfs.ko on a fresh
# mkfs.logfs image (checked with fsck.logfs -n afterwards). As tests/pjdfstest/run.sh does, the
# EROFS cases, which remount read-only, run in a second pjdfstest process.
#
#   tests/vm/bentofs-pjdfstest.sh [-f memfs|logfs] [WORKDIR] [-- PJDFSTEST_ARGS...]
#
# Env: PJDFSTEST (binary; default target/pjdfstest/bin/pjdfstest, which
#      tests/pjdfstest/run.sh installs), LOGFS_KO (default logfs/kmod/logfs.ko, from `make`;
#      the bentofs.ko next to it in the same tree is used with it),
#      LOGFS_BIN_DIR (mkfs.logfs, fsck.logfs; default target/release), VM_TIMEOUT (1800 s).
# Exit status: 0 when no test failed (and, for logfs, fsck is clean); the number of failed
# tests; 1 for an unclean fsck; or run-vm.sh's codes 240-243.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=bentotest/build.sh
. "$here/bentotest/build.sh"

fs=memfs
while getopts f:h opt; do
    case $opt in
        f) fs=$OPTARG ;;
        *) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 243 ;;
    esac
done
shift $((OPTIND - 1))
work=
if [[ $# -gt 0 && $1 != -- ]]; then work=$1; shift; fi
[[ ${1:-} != -- ]] || shift
work=${work:-$(mktemp -d /tmp/bentofs-pjdfstest.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
[[ $fs == memfs || $fs == logfs ]] || vm_die "-f memfs or -f logfs"

pjdfstest=${PJDFSTEST:-$repo/target/pjdfstest/bin/pjdfstest}
[[ -x $pjdfstest ]] || vm_die "no pjdfstest at $pjdfstest (tests/pjdfstest/run.sh installs it)"
bin_dir=${LOGFS_BIN_DIR:-$repo/target/release}

bento_build "$work"
overlay=$work/overlay
mkdir -p "$overlay/etc"
cat >"$overlay/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
tests:x:999:999:Dummy user for pjdfstest:/:/usr/sbin/nologin
EOF
cat >"$overlay/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
tests:x:999:
EOF
cp "$repo/tests/pjdfstest/pjdfstest.toml" "$overlay/etc/pjdfstest.toml"
grep -q '^allow_remount = true' "$overlay/etc/pjdfstest.toml" || vm_die "pjdfstest.toml: expected allow_remount = true"

disk=()
if [[ $fs == logfs ]]; then
    ko=${LOGFS_KO:-$repo/logfs/kmod/logfs.ko}
    [[ -f $ko ]] || vm_die "no $ko (run make)"
    install -m 644 "$ko" "$overlay/usr/lib/bento/fs.ko"
    # logfs.ko only loads next to the bentofs.ko of the same build (symbol CRCs): `make`'s one,
    # not bento_build's scratch copy, which may be newer than the last `make`.
    install -m 644 "$(dirname "$ko")/../../bentofs-c/bentofs.ko" "$overlay/usr/lib/bento/bentofs.ko"
    truncate -s 0 "$work/disk.img"
    truncate -s 1G "$work/disk.img"
    "$bin_dir/mkfs.logfs" -q "$work/disk.img" || vm_die "mkfs.logfs failed"
    disk=(-d "$work/disk.img")
else
    ln -s bento_memfs.ko "$overlay/usr/lib/bento/fs.ko"
    disk=(-n 64M)
fi

cat >"$work/guest.sh" <<EOF
#!/bin/sh
fs=$fs args="$*" pjd=$pjdfstest
EOF
cat >>"$work/guest.sh" <<'EOF'
insmod /lib/bento/bentofs.ko && insmod /lib/bento/fs.ko || exit 200
mkdir -p /mnt/p /tmp/secondary
chmod 755 /tmp /tmp/secondary
mount -t bento -o fs=$fs /dev/nvme0n1 /mnt/p || exit 201
chmod 755 /mnt/p
cd /
export NO_COLOR=1 CLICOLOR=0 RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0
sed 's/^allow_remount = true/allow_remount = false/' /etc/pjdfstest.toml >/tmp/main.toml
$pjd -c /tmp/main.toml -p /mnt/p -s /tmp/secondary -- $args >/tmp/main.log 2>&1
remount=$(awk '/^[A-Za-z0-9_:]+ +skipped$/ { name = $1; next }
    /^\t/ && name { if (/allow_remount/) { print "pjdfstest::tests::" name; name = "" } next }
    { name = "" }' /tmp/main.log)
: >/tmp/remount.log
[ -z "$remount" ] || $pjd -c /etc/pjdfstest.toml -p /mnt/p -s /tmp/secondary -e -- $remount >/tmp/remount.log 2>&1
cat /tmp/main.log /tmp/remount.log | grep -E '^[A-Za-z0-9_:]+ +(FAILED|skipped)$' -A3
grep -h '^Summary' /tmp/main.log /tmp/remount.log
failed=$(cat /tmp/main.log /tmp/remount.log | grep -cE '^[A-Za-z0-9_:]+ +FAILED$')
[ -n "$(grep -h '^Summary' /tmp/main.log)" ] || { cat /tmp/main.log; failed=202; }
umount /mnt/p || failed=203
echo "pjdfstest: $failed failed"
exit $failed
EOF
"$here/mkinitramfs.sh" -E -b "$pjdfstest" -s "$work/guest.sh" "$work/initramfs.gz" "$overlay"
rc=0
"$here/run-vm.sh" -q -t "${VM_TIMEOUT:-1800}" -l "$work/console.log" "${disk[@]}" \
    "$work/initramfs.gz" || rc=$?
grep -E '^(Summary|pjdfstest:)|FAILED' "$work/console.log" >&2 || true
if [[ $fs == logfs && $rc -eq 0 ]]; then
    "$bin_dir/fsck.logfs" -n "$work/disk.img" >"$work/fsck.log" 2>&1 ||
        { cat "$work/fsck.log" >&2; echo "bentofs-pjdfstest: fsck.logfs found problems" >&2; rc=1; }
fi
echo "bentofs-pjdfstest: $fs: exit $rc (log $work/console.log)" >&2
exit $rc
