#!/usr/bin/env bash
# The mount fuzzer (issue 10) for a bounded time:
#
#   logfs/fuzz/run.sh SECONDS [libFuzzer options...]
#
# Installs the nightly toolchain and cargo-fuzz when they are missing (tests/setup.sh installs
# both), builds the target mount_ops (optimised, with debug assertions and overflow checks; no
# sanitizer: logfs forbids `unsafe`), writes the seed corpus (inputs over the volumes
# logfs/tests/common/seeds.rs builds) into corpus/mount_ops, and fuzzes for SECONDS seconds on
# one core. Exits non-zero when the run found something (a panic, a timeout, an out-of-memory)
# and prints the reproducer's path. `cargo +nightly fuzz run -O -a -s none mount_ops PATH` (in
# logfs/fuzz) replays one, and with LOGFS_FUZZ_TRACE=1 prints the damages and each operation with
# its outcome (src/lib.rs). Extra options go to libFuzzer: a campaign that keeps going after a
# finding is
#   logfs/fuzz/run.sh 1800 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
secs=${1:?usage: logfs/fuzz/run.sh SECONDS [libFuzzer options...]}
shift
target=mount_ops
cd "$here"

# cargo-fuzz needs a nightly compiler (-Z flags, sanitizer coverage).
rustup toolchain list | grep -q '^nightly-' || rustup toolchain install nightly --profile minimal
cargo fuzz --version 2>/dev/null | grep -qx 'cargo-fuzz 0.13.1' ||
    cargo install cargo-fuzz --locked --version 0.13.1 --quiet

build=(-O -a -s none)
cargo +nightly fuzz build "${build[@]}" "$target"

corpus=corpus/$target
artifacts=artifacts/$target
mkdir -p "$corpus" "$artifacts"
# The seed inputs: deterministic, rewritten every run (the target writes them and exits).
LOGFS_FUZZ_WRITE_SEEDS=$corpus cargo +nightly fuzz run "${build[@]}" "$target" >/dev/null

before=$(mktemp)
log=$(mktemp)
trap 'rm -f "$before" "$log"' EXIT
ls "$artifacts" >"$before"
status=0
cargo +nightly fuzz run "${build[@]}" "$target" "$corpus" -- \
    -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 "$@" >"$log" 2>&1 || status=$?
# libFuzzer prints a line per new coverage (tens of thousands a minute): only its end is shown.
found=$(ls "$artifacts" | grep -vxFf "$before" || true)
if [[ -n $found || $status -ne 0 ]]; then
    tail -n 60 "$log" >&2
    echo "logfs/fuzz/run.sh: the fuzzer found a problem (exit status $status)" >&2
    grep -E '^(thread .* panicked|==[0-9]+== ERROR|SUMMARY)' "$log" | sort | uniq -c >&2 || true
    for f in $found; do
        echo "reproducer: $here/$artifacts/$f" >&2
    done
    exit 1
fi
grep -E '^#[0-9]+' "$log" | tail -n 1
grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
echo "logfs/fuzz/run.sh: ${secs}s of fuzzing, no finding"
