#!/usr/bin/env bash
# The main job: build everything, then in a VM running Debian's kernel: load bentofs.ko and
# logfs.ko, mkfs.logfs an NVMe disk, mount -t bento -o fs=logfs, copy a real tree onto it and
# verify it, remount, verify again, unmount and fsck.logfs. Without the kernel modules yet
# built into the suite, it does the same over FUSE on the host.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tests/setup.sh
cargo build --release
if [[ -x tests/vm/main-job.sh ]]; then
    exec tests/vm/main-job.sh
fi

bin=$PWD/target/release
work=$(mktemp -d /var/tmp/logfs-main.XXXXXX)
trap 'mountpoint -q "$work/mnt" && umount "$work/mnt"; rm -rf "$work"' EXIT
truncate -s 2G "$work/img"
"$bin/mkfs.logfs" "$work/img"
mkdir "$work/mnt"
"$bin/logfs-fuse" "$work/img" "$work/mnt"
cp -a /usr/include "$work/mnt/"
diff -r /usr/include "$work/mnt/include"
umount "$work/mnt" && flock "$work/img" true
"$bin/logfs-fuse" -o ro "$work/img" "$work/mnt"
diff -r /usr/include "$work/mnt/include"
umount "$work/mnt" && flock "$work/img" true
"$bin/fsck.logfs" -n "$work/img"
echo "main job: logfs-fuse copy, remount and fsck all good"
