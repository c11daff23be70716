#!/usr/bin/env bash
# Checks the VM harness itself (about 15 s): boot, module loading, NVMe disks,
# ext4 via the host's mke2fs, exit-code passthrough, kernel-log scan.
#   tests/vm/selftest.sh [WORKDIR]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${1:-$(mktemp -d /tmp/vm-selftest.XXXXXX)}
mkdir -p "$work"

cat >"$work/test.sh" <<'EOF'
#!/bin/sh
set -eu
grep -q '^loop ' /proc/modules
grep -q '^fuse ' /proc/modules
[ -b /dev/nvme0n1 ] && [ -b /dev/nvme0n2 ]
mkfs.ext4 -q /dev/nvme0n1
mkdir -p /mnt/a
mount -t ext4 /dev/nvme0n1 /mnt/a
cp -a /usr /mnt/a/
sync
umount /mnt/a
fsck.ext4 -fn /dev/nvme0n1
/usr/bin/stat --version | grep -q coreutils    # host binary + libs via -b
exit "$(cat /etc/vmtest/want-exit)"
EOF
mkdir -p "$work/overlay/etc/vmtest"

run() {
    local want=$1 got=0
    echo "$want" >"$work/overlay/etc/vmtest/want-exit"
    "$here/mkinitramfs.sh" -k loop,fuse -b /usr/bin/stat -s "$work/test.sh" "$work/initramfs.gz" "$work/overlay" >/dev/null
    "$here/run-vm.sh" -q -t 120 -l "$work/console.log" -n 64M -n 16M "$work/initramfs.gz" || got=$?
    if [[ $got -ne $want ]]; then
        echo "selftest: expected exit $want, got $got (log $work/console.log)" >&2
        exit 1
    fi
}

run 0
run 7
echo "selftest: 2 passed, 0 failed"
