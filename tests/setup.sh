#!/usr/bin/env bash
# Installs what building and testing need on Debian 12 (run as root). Idempotent and quick when
# everything is present: apt only runs for what is missing.
#   - Rust: clippy, rustfmt, rust-src and the x86_64-unknown-none target (the kernel build),
#     cargo-deb (make deb), a nightly toolchain and cargo-fuzz (the mount fuzzer, logfs/fuzz);
#   - every Debian package whose commands the scripts and tests run (tests/packages.txt);
#   - the VM: QEMU, Debian's cloud kernels (6.1 and 6.12) and their headers (tests/vm/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ $(id -u) -eq 0 ]] || { echo "tests/setup.sh: run as root" >&2; exit 1; }

# tests/packages.txt names every Debian package whose commands the tree runs (checked by
# tests/check-commands.py); lines marked @vm are tests/vm/setup.sh's (backports, kernel).
mapfile -t pkgs < <(sed -e 's/#.*//' -e '/@vm/d' "$here/packages.txt" | awk 'NF { print $1 }')
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
fi

components=$(rustup component list --installed 2>/dev/null)
for c in clippy rustfmt rust-src; do
    grep -q "^$c" <<<"$components" || rustup component add "$c"
done
rustup target list --installed | grep -qx x86_64-unknown-none || rustup target add x86_64-unknown-none
# cargo-deb, for `make deb` (the Debian packages; tests/vm/dkms.sh)
cargo deb --version 2>/dev/null | grep -qx 'cargo-deb 3.8.0' ||
    cargo install cargo-deb --locked --version 3.8.0 --quiet
# the mount fuzzer (logfs/fuzz/run.sh, run by tests/all.sh): cargo-fuzz, which needs nightly
rustup toolchain list | grep -q '^nightly-' || rustup toolchain install nightly --profile minimal
cargo fuzz --version 2>/dev/null | grep -qx 'cargo-fuzz 0.13.1' ||
    cargo install cargo-fuzz --locked --version 0.13.1 --quiet

"$here/vm/setup.sh"
VM_LINE=6.12 "$here/vm/setup.sh"    # the 6.12 kernel line too (tests/all.sh runs the main job there)
