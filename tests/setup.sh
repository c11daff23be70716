#!/usr/bin/env bash
# Installs what building and testing need on Debian 12 (run as root). Idempotent and quick when
# everything is present: apt only runs for what is missing.
#   - Rust: clippy, rustfmt, rust-src and the x86_64-unknown-none target (the kernel build);
#   - host tools the tests use: e2fsprogs (mkfs.ext4 for comparisons), util-linux, python3;
#   - the VM: QEMU, Debian's cloud kernel and its headers, busybox (tests/vm/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ $(id -u) -eq 0 ]] || { echo "tests/setup.sh: run as root" >&2; exit 1; }

missing=()
for p in e2fsprogs util-linux python3 ca-certificates; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
fi

components=$(rustup component list --installed 2>/dev/null)
for c in clippy rustfmt rust-src; do
    grep -q "^$c" <<<"$components" || rustup component add "$c"
done
rustup target list --installed | grep -qx x86_64-unknown-none || rustup target add x86_64-unknown-none

"$here/vm/setup.sh"
