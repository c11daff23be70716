#!/usr/bin/env bash
# Tests bentofs.ko in the VM with the in-memory C test file system bento_memfs.ko (no Rust
# needed). Builds both modules in a scratch copy of the sources (so it never races a build in
# the tree), fails on any compiler warning, builds the static helper bento-t, boots the VM with
# two NVMe disks and runs tests/vm/bentotest/guest.sh there (under a minute with TCG).
#
#   tests/vm/bentofs-selftest.sh [WORKDIR]
#
# Env: VM_KREL (kernel ABI, see lib.sh), VM_TIMEOUT (default 1200 s).
# Exit status: run-vm.sh's (0 = all checks passed and the kernel log is clean; else the number
# of failed checks, or run-vm.sh's codes 240-243).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=bentotest/build.sh
. "$here/bentotest/build.sh"

work=${1:-$(mktemp -d /tmp/bentofs-selftest.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

bento_build "$work"
"$here/mkinitramfs.sh" -E -s "$here/bentotest/guest.sh" "$work/initramfs.gz" "$work/overlay"
rc=0
"$here/run-vm.sh" -t "${VM_TIMEOUT:-1200}" -l "$work/console.log" -n 64M -n 64M \
    "$work/initramfs.gz" || rc=$?
grep -E '^(not ok|# [0-9]+ checks)' "$work/console.log" >&2 || true
echo "bentofs-selftest: exit $rc (log $work/console.log)" >&2
exit $rc
