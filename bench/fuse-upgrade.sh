#!/usr/bin/env bash
# bench/fuse-upgrade.sh - live upgrade of logfs-fuse (`--takeover`): how long a running
# workload stalls per handover, and what offering takeover costs on the normal path.
# See bench/fuse_upgrade.py for what is measured; bench/README.md for results.
#
# Usage: bench/fuse-upgrade.sh   (as root)
# Environment: HANDOVERS [20] LOAD_THREADS [4] COST_SECONDS [5] COST_REPS [3] GAP [0.5]
#   IMG_SIZE [1G] WORK [/var/tmp/logfs-upgrade-bench] BUILD [1] RESULTS [bench/results]
# Output: a table on stdout; $RESULTS/fuse-upgrade-<timestamp>.{json,txt}.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
IMG_SIZE=${IMG_SIZE:-1G}
WORK=${WORK:-/var/tmp/logfs-upgrade-bench}
BUILD=${BUILD:-1}
RESULTS=${RESULTS:-$BENCH/results}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

if [[ $BUILD == 1 ]]; then
    (cd "$REPO" && cargo build --release -p logfs-fuse -p mkfs-logfs -p fsck \
        && cargo build --release -p logfs-fuse --features v2 --target-dir "$TARGET/v2")
fi
mkdir -p "$WORK/mnt" "$RESULTS"
if mountpoint -q "$WORK/mnt"; then umount "$WORK/mnt"; fi
rm -f "$WORK/image"
truncate -s "$IMG_SIZE" "$WORK/image"
python3 "$BENCH/fuse_upgrade.py" "$TARGET/release/logfs-fuse" "$TARGET/v2/release/logfs-fuse" \
    "$TARGET/release/mkfs.logfs" "$WORK/image" "$WORK/mnt" \
    "$RESULTS/fuse-upgrade-$(date +%Y%m%d-%H%M%S)"
rm -f "$WORK/image"
