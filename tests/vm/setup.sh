#!/usr/bin/env bash
# Installs everything the VM tests need (Debian 12 bookworm, x86_64, run as root).
# Idempotent: when everything is present it does no apt work at all.
#
#   tests/vm/setup.sh            # install what is missing
#   SETUP_REFRESH=1 setup.sh     # apt-get update and move to the newest cloud kernel ABI
#   VM_KERNEL_MODE=extract|install setup.sh   # force how the guest kernel is provided
#   VM_LINE=6.12 setup.sh        # the 6.12 kernel line instead of Debian 12's 6.1 (lib.sh)
#
# The guest kernel is Debian's linux-image-<abi>-cloud-amd64 (ext4, fuse, nvme built in)
# plus the matching linux-headers for building the module with Kbuild.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[[ $(id -u) -eq 0 ]] || vm_die "run as root"
[[ $(dpkg --print-architecture) == amd64 ]] || vm_die "amd64 only"
. /etc/os-release
[[ ${VERSION_CODENAME:-} == bookworm ]] || echo "warning: written for bookworm, this is ${VERSION_CODENAME:-unknown}" >&2

export DEBIAN_FRONTEND=noninteractive
APT_INSTALL=(apt-get install -y --no-install-recommends -o Dpkg::Use-Pty=0)
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.sources

# Host packages (besides qemu and the kernel). gcc-12 is what Debian's 6.1 headers
# were built with; linux-headers depends on it, build-essential brings make/libc-dev.
BASE_PKGS=(busybox-static cpio gzip kmod e2fsprogs build-essential binutils)

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

have_backports() {
    grep -rqsE '(^deb .*|^Suites:.*)[[:space:]]bookworm-backports([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/
}

# bookworm's qemu 7.2 breaks against the image's backported qemu-utils 10, so require >= 8.
qemu_ok() {
    local v
    v=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null) || return 1
    is_installed qemu-system-x86 && dpkg --compare-versions "$v" ge 1:8
}

# Installing a -cloud-amd64 image on a host that boots through grub would add it
# as a (possibly default) boot entry; the cloud kernel lacks most hardware drivers.
# On such hosts only unpack the package into a cache dir instead.
kernel_mode() {
    if [[ -n ${VM_KERNEL_MODE:-} ]]; then echo "$VM_KERNEL_MODE"
    elif command -v update-grub >/dev/null || [[ -d /boot/grub || -d /boot/efi/EFI ]]; then echo extract
    else echo install
    fi
}

kernel_present() {
    local krel=$1
    is_installed "linux-headers-$krel" || return 1
    case $(kernel_mode) in
        install) is_installed "linux-image-$krel" ;;
        extract) [[ -f $VM_KERNEL_CACHE/$krel/boot/vmlinuz-$krel || -f /boot/vmlinuz-$krel ]] ;;
    esac
}

rust_ok() {
    command -v rustup >/dev/null || return 1
    (cd "$here/../.." &&
        rustup target list --installed | grep -qx x86_64-unknown-none &&
        rustup component list --installed | grep -q '^rust-src')
}

fast_path_ok() {
    [[ -z ${SETUP_REFRESH:-} ]] || return 1
    have_backports && qemu_ok || return 1
    local p krel
    for p in "${BASE_PKGS[@]}" "linux-headers-$VM_META"; do is_installed "$p" || return 1; done
    krel=$(vm_krel 2>/dev/null) || return 1
    kernel_present "$krel"
}

if fast_path_ok; then
    krel=$(vm_krel)
    echo "setup: all present"
else
    if ! have_backports; then
        echo "setup: adding bookworm-backports"
        cat >"$BACKPORTS_LIST" <<'EOS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
    fi
    apt-get update -o Dpkg::Use-Pty=0 -qq

    abi=$(vm_candidate_abi "linux-image-$VM_META")
    [[ -n $abi ]] || vm_die "cannot resolve the ABI of linux-image-$VM_META"
    hdr_abi=$(vm_candidate_abi "linux-headers-$VM_META")
    [[ $abi == "$hdr_abi" ]] || vm_die "image meta -> $abi but headers meta -> $hdr_abi"
    krel=$abi-$VM_FLAVOUR

    "${APT_INSTALL[@]}" "${BASE_PKGS[@]}" "linux-headers-$VM_META" "linux-headers-$krel"
    qemu_ok || "${APT_INSTALL[@]}" -t bookworm-backports qemu-system-x86
    qemu_ok || vm_die "qemu-system-x86 from bookworm-backports did not install"

    case $(kernel_mode) in
        install)
            is_installed "linux-image-$krel" || "${APT_INSTALL[@]}" "linux-image-$krel"
            ;;
        extract)
            dest=$VM_KERNEL_CACHE/$krel
            if [[ ! -f $dest/boot/vmlinuz-$krel ]]; then
                echo "setup: unpacking linux-image-$krel into $dest (not installing it as a boot kernel)"
                tmp=$(mktemp -d)
                chown _apt "$tmp" 2>/dev/null || true    # else apt warns "unsandboxed"
                (cd "$tmp" && apt-get download -o Dpkg::Use-Pty=0 "linux-image-$krel")
                mkdir -p "$dest.tmp" && dpkg-deb -x "$tmp"/linux-image-"$krel"_*.deb "$dest.tmp"
                depmod -b "$dest.tmp" "$krel"    # the package ships no modules.dep
                rm -rf "$tmp" "$dest" && mv "$dest.tmp" "$dest"
            fi
            ;;
        *) vm_die "VM_KERNEL_MODE must be install or extract" ;;
    esac
    # The headers meta now decides what vm_krel returns; it must match.
    [[ $(vm_krel) == "$krel" ]] || vm_die "installed headers meta does not point at $krel"
fi

if ! rust_ok; then
    command -v rustup >/dev/null || vm_die "rustup not found (install Rust via rustup first)"
    # Run inside the repo so a rust-toolchain.toml there picks the toolchain.
    (cd "$here/../.." &&
        rustup target add x86_64-unknown-none &&
        rustup component add rust-src)
fi

kimg=$(vm_kernel_image "$krel") || vm_die "kernel image for $krel not found"
[[ -d $(vm_kernel_headers "$krel") ]] || vm_die "headers for $krel not found"
echo "setup: qemu     $(qemu-system-x86_64 --version | head -n1)"
echo "setup: kernel   $krel ($kimg)"
echo "setup: headers  $(vm_kernel_headers "$krel")"
echo "setup: rust     $(cd "$here/../.." && rustc --version), target x86_64-unknown-none + rust-src"
echo "VM_KREL=$krel"
