#!/usr/bin/env bash
# The README's main job (tests/main.sh runs it): build everything (make -C <repo>, warning-free;
# the release tools), boot the VM with Debian's cloud kernel, load bentofs.ko and logfs.ko,
# mkfs.logfs an NVMe disk, mount -t bento -o fs=logfs, cp -a /usr/include onto it and compare
# it with the source (names, types, modes, owners, sizes, ns mtimes, contents, links, xattrs),
# unmount, mount again, compare again, unmount, fsck.logfs -n; unload the modules; then on the
# host, mount the disk the kernel wrote with logfs-fuse and compare once more. A few minutes.
#
#   tests/vm/main-job.sh [WORKDIR]
#
# It is tests/vm/kernel-suite.sh with only its part m (and g): same logs (target/vm-logs/).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KSUITE_PARTS=m KS_TITLE="main job" KS_DETAIL=m KS_NAME=main-job exec "$here/kernel-suite.sh" "$@"
