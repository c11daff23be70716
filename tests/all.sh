#!/usr/bin/env bash
# Every test of the tree (this is what CI runs, through .ci/run). As root on Debian 12.
#
#   1. set-up (tests/setup.sh: apt packages, Rust components, the VM kernel and QEMU), and the
#      check that it provides every command the scripts call (tests/check-commands.py);
#   2. formatting and lints: cargo fmt, cargo clippy -D warnings (userspace and kernel backends);
#   3. unit, model and tool tests, and the FUSE system tests with pjdfstest (cargo test); a
#      minute of the mount fuzzer (logfs/fuzz/run.sh: damaged volumes, random operations);
#   4. the kernel modules (make, warning-free) and the VM suite against the real kernel;
#   5. the VM power-cut test (power cuts during an fsync-heavy workload, recovery, checks);
#   6. the main job on Debian 12's 6.12 kernel line (the whole suite there:
#      VM_LINE=6.12 tests/vm/kernel-suite.sh);
#   7. the Debian packages (make deb): installed with dpkg, DKMS builds the modules for both
#      kernel lines, one boot on each with them (tests/vm/dkms.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
step() { printf '\n==== %s (%ds)\n' "$*" $((SECONDS - start)); }

step "set-up"
tests/setup.sh
tests/check-commands.py

step "format and lints"
cargo fmt --all --check
(cd logfs/kmod && cargo fmt --check)
cargo clippy --workspace --all-targets --release -- -D warnings
# The API crate as the kernel sees it (no `std`), with the kernel crate.
cargo clippy -p bento-api -p bento-kernel --release -- -D warnings

step "build"
cargo build --release

step "unit, model, tool and FUSE system tests"
cargo test --workspace --release

step "the mount fuzzer, one minute"
logfs/fuzz/run.sh 60

if [[ -x tests/vm/kernel-suite.sh ]]; then
    step "kernel modules and the VM suite"
    tests/vm/kernel-suite.sh
fi

if [[ -x tests/vm/powercut.sh ]]; then
    step "the VM power-cut test"
    tests/vm/powercut.sh
fi

if [[ -x tests/vm/main-job.sh ]]; then
    step "the main job on the 6.12 kernel line"
    VM_LINE=6.12 tests/vm/main-job.sh
fi
step "the packages: make deb, dpkg -i, DKMS on both kernel lines, one boot on each"
tests/vm/dkms.sh

step "all tests passed"
