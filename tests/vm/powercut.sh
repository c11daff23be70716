#!/usr/bin/env bash
# The VM power-cut test (tests/all.sh runs it): logfs in the kernel (mount -t bento), an
# fsync-heavy workload, the power cut at a moment drawn from a seed, then a boot that recovers,
# checks what was promised and runs fsck; several cycles on the same volume. About 2-3 minutes.
#
#   tests/vm/powercut.sh
#
# 1. build as tests/vm/kernel-suite.sh does (make -C <repo> warning-free, the release tools, a
#    snapshot build of the modules, the static helpers bento-t and fsync-t);
# 2. a 256 MiB volume made by mkfs.logfs on the host, and a 1 MiB record disk;
# 3. boot K = 1..CYCLES (tests/vm/suite/powercut-guest.sh): mount (recovering the cut of boot
#    K-1, without fsck), `fsync-t check` of cycle K-1's directory against what its fsyncs were
#    promised (docs/consistency.md), the directories of older cycles unchanged, umount,
#    fsck.logfs -n; then mount with fsync=MODE, `fsync-t work` in a new directory (appends,
#    overwrites, buffered writes, truncates, creates, renames, unlinks, each durable one followed
#    by fsync, fdatasync, an fsync of the directory or syncfs, and acknowledged on the record
#    disk once it returned), and `echo b > /proc/sysrq-trigger` after DELAY seconds: the VM
#    resets (-no-reboot: QEMU exits). Boot CYCLES+1 only recovers and checks;
# 4. fsck.logfs -n of the volume on the host.
# Every boot's console must be free of BUG/Oops/WARNING/Call Trace/panic lines.
#
# Each cycle's workload seed and delay derive from SEED, printed first: PC_SEED=<it> repeats a
# run (the moment of the cut still varies with the host's speed).
#
# Environment:
#   PC_SEED     the seed (default: from the clock)
#   PC_CYCLES   cycles (default 4)
#   PC_MODES    fsync= mode of each cycle, in turn (default "rollforward rollforward
#               checkpoint rollforward")
#   PC_DELAY_MS the cut comes DELAY_MS + (seed % DELAY_SPREAD_MS) ms after the workload starts
#   PC_DELAY_SPREAD_MS  (defaults 1000 and 5000)
#   PC_KEEP=1   keep the images (always kept after a failure)
#   VM_TIMEOUT  per boot (default 300 s); VM_MEM (default 1G)
# Logs: target/vm-logs/powercut-<time>/ (powercut-latest): boot-<K>.console.log, summary.txt.
# Exit status: 0 when every cycle passed; 1 on a violation; 2 when the test could not run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=suite/host-lib.sh
. "$here/suite/host-lib.sh"
export KS_NAME=powercut

SEED=${PC_SEED:-$(( $(date +%s%N) / 1000 % 1000000000 ))}
CYCLES=${PC_CYCLES:-4}
read -ra MODES <<<"${PC_MODES:-rollforward rollforward checkpoint rollforward}"
DELAY_MS=${PC_DELAY_MS:-1000} SPREAD_MS=${PC_DELAY_SPREAD_MS:-5000}
bin=$repo/target/release
[[ $(id -u) -eq 0 ]] || ks_die "run as root"
[[ $CYCLES -ge 1 && ${#MODES[@]} -ge 1 ]] || ks_die "PC_CYCLES and PC_MODES"

stamp=$(date +%Y%m%d-%H%M%S)
logdir=$repo/target/vm-logs/powercut-$stamp
mkdir -p "$logdir"
ln -sfn "powercut-$stamp" "$repo/target/vm-logs/powercut-latest"
work=$(mktemp -d /var/tmp/powercut.XXXXXX)
failed=1
cleanup() {
    if [[ $failed == 1 || ${PC_KEEP:-} == 1 ]]; then ks_say "kept the images in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
t0=$SECONDS
summary=()
say() { summary+=("$*"); printf '%s\n' "$*" >&2; }
say "powercut: seed $SEED, $CYCLES cycles; logs in ${logdir#"$repo"/}"

# ---- 1. build ---------------------------------------------------------------------------------
ks_make "$logdir" || ks_die "the module build printed warnings"
ks_tools "$logdir"
ks_snapshot "$work" "$logdir" || ks_die "the module build printed warnings"
ov=$work/overlay
echo "PATH=\$PATH:$bin" >"$ov/etc/vmtest/pc.conf"
"$here/mkinitramfs.sh" -E -b "$bin/fsck.logfs" -s "$here/suite/powercut-guest.sh" \
    "$work/initramfs.gz" "$ov" >/dev/null

# ---- 2. the disks -----------------------------------------------------------------------------
img=$work/logfs.img rec=$work/record.img
truncate -s 256M "$img"
"$bin/mkfs.logfs" -q "$img"
truncate -s 1M "$rec"

# ---- 3. the boots -----------------------------------------------------------------------------
kernel_issue_re='\[ *[0-9]+\.[0-9]+\] .*(BUG:|kernel BUG at|Oops|WARNING:|Call Trace|general protection fault|Kernel panic|UBSAN:|Rust panic)'
cycle_seed() { echo $(( (SEED * 1000003 + $1 * 7919 + 17) % 2147483647 )); }
fail() {
    say "FAIL: $*"
    say "  seed $SEED (PC_SEED=$SEED $0 repeats the cycles' seeds and delays); images kept in $work"
    printf '%s\n' "${summary[@]}" >"$logdir/summary.txt"
    exit 1
}
prevseed=0 total_replayed=0
for ((k = 1; k <= CYCLES + 1; k++)); do
    seed=$(cycle_seed "$k")
    mode=${MODES[$(( (k - 1) % ${#MODES[@]} ))]}
    ms=$(( DELAY_MS + seed % SPREAD_MS ))
    delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
    log=$logdir/boot-$k.console.log
    s=$SECONDS rc=0
    "$here/run-vm.sh" -q -t "${VM_TIMEOUT:-300}" -m "${VM_MEM:-1G}" -l "$log" \
        -a "pc.cycle=$k pc.cycles=$CYCLES pc.seed=$seed pc.prevseed=$prevseed pc.mode=$mode pc.delay=$delay" \
        -d "$img" -d "$rec" "$work/initramfs.gz" 2>"$logdir/boot-$k.run-vm.log" || rc=$?
    took=$((SECONDS - s))
    # what this boot checked (the cycle before)
    if grep -q '^not ok' "$log" || ! grep -q '^PC-BOOT' "$log"; then
        grep -E '^(not ok|#   FAIL|#   +[a-z0-9]+ as file|#     )' "$log" | head -n 40 >&2 || true
        [[ $rc -ne 240 ]] || fail "boot $k: timeout after ${VM_TIMEOUT:-300}s (log $log)"
        fail "boot $k: $(grep -m1 '^not ok' "$log" || echo 'the guest did not start the test') (log $log)"
    fi
    if grep -Eq "$kernel_issue_re" "$log"; then
        grep -E "$kernel_issue_re" "$log" | head -n 20 >&2
        fail "boot $k: the kernel log has BUG/Oops/WARNING/Call Trace/panic lines (log $log)"
    fi
    replayed=$(sed -n 's/^# PC-RECOVERED \([0-9]*\).*/\1/p' "$log")
    if [[ $k -gt 1 ]]; then
        promised=$(sed -n 's/^#   check .*(profile \([a-z]*\)): operation \([0-9]*\) acknowledged.*up to \([0-9]*\) may.*/\1 workload, op \2 acknowledged, op \3 in flight/p' "$log")
        total_replayed=$((total_replayed + ${replayed:-0}))
        say "  cycle $((k - 1)) checked in boot $k (${took}s): recovery replayed ${replayed:-?} nodes; ${promised:-?}; all as promised; fsck clean"
    fi
    if [[ $k -le $CYCLES ]]; then
        # expected: the reset (no VMTEST-RESULT marker: exit 241) after the armed workload
        if [[ $rc -ne 241 ]] || ! grep -q '^PC-CUT-ARMED' "$log"; then
            tail -n 30 "$log" >&2
            fail "boot $k: expected the power cut during the workload, got run-vm exit $rc (log $log)"
        fi
        say "  cycle $k: fsync=$mode, seed $seed, power cut ${delay}s into the workload (boot ${took}s)"
    elif [[ $rc -ne 0 ]]; then
        tail -n 30 "$log" >&2
        fail "boot $k: the last boot did not pass (run-vm exit $rc, log $log)"
    fi
    prevseed=$seed
done

# ---- 4. host-side fsck ------------------------------------------------------------------------
"$bin/fsck.logfs" -n "$img" >"$logdir/fsck-host.log" 2>&1 ||
    { cat "$logdir/fsck-host.log" >&2; fail "fsck.logfs -n of the volume on the host"; }
say "  host: fsck.logfs -n clean"
# Not a failure (a cut may come just after a checkpoint), but the test would miss its point.
[[ $total_replayed -gt 0 ]] || say "  note: no cut left fsync records for recovery to replay"
say "powercut: PASS, $CYCLES power cuts, $((SECONDS - t0))s"
printf '%s\n' "${summary[@]}" >"$logdir/summary.txt"
failed=0
