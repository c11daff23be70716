# shellcheck shell=bash
# Shared helpers for the VM test scripts; source it, don't run it.
#
# Kernel naming: ABI = "6.1.0-48", KREL = "6.1.0-48-cloud-amd64" (uname -r in the VM).
# Where the kernel lives:
#   installed package   -> /boot/vmlinuz-$KREL, /lib/modules/$KREL, /boot/config-$KREL
#   extracted (no-boot) -> $VM_KERNEL_CACHE/$KREL/{boot,lib/modules}/...
# setup.sh extracts instead of installing when the host has a bootloader that
# would pick the cloud kernel up (see setup.sh).

VM_FLAVOUR=cloud-amd64
# The kernel line: empty for Debian 12's own (6.1, meta packages linux-image-cloud-amd64 and
# linux-headers-cloud-amd64), or e.g. 6.12 (linux-image-6.12-cloud-amd64, same repositories).
VM_LINE=${VM_LINE:-}
VM_META=${VM_LINE:+$VM_LINE-}$VM_FLAVOUR
VM_KERNEL_CACHE=${VM_KERNEL_CACHE:-/var/cache/logfs-vm/kernel}

vm_die() { echo "error: $*" >&2; exit 1; }

# ABI that a meta package (linux-image-cloud-amd64 / linux-headers-cloud-amd64)
# currently points at, according to apt's candidate. Needs up-to-date apt lists.
vm_candidate_abi() {
    local meta=${1:-linux-image-$VM_META} kind
    kind=${meta%-"$VM_META"}    # linux-image / linux-headers
    apt-cache depends "$meta" 2>/dev/null |
        sed -n "s/^ *Depends: $kind-\([0-9][^ ]*\)-$VM_FLAVOUR\$/\1/p" | head -n1
}

# KREL to use: $VM_KREL if set, else the ABI of the installed headers meta package of the line.
vm_krel() {
    if [[ -n ${VM_KREL:-} ]]; then echo "$VM_KREL"; return; fi
    local abi
    abi=$(dpkg-query -W -f='${Depends}' "linux-headers-$VM_META" 2>/dev/null |
          tr ',' '\n' | sed -n "s/^ *linux-headers-\([0-9][^ ]*\)-$VM_FLAVOUR.*/\1/p" | head -n1)
    [[ -n $abi ]] || vm_die "linux-headers-$VM_META not installed; run ${VM_LINE:+VM_LINE=$VM_LINE }tests/vm/setup.sh"
    echo "$abi-$VM_FLAVOUR"
}

# Root of the kernel files for $1 (KREL): "/" if installed, else the extract dir.
vm_kernel_root() {
    local krel=$1
    if [[ -f /boot/vmlinuz-$krel ]]; then echo /
    elif [[ -f $VM_KERNEL_CACHE/$krel/boot/vmlinuz-$krel ]]; then echo "$VM_KERNEL_CACHE/$krel"
    else return 1
    fi
}

vm_kernel_image() { local r; r=$(vm_kernel_root "$1") || return 1; echo "${r%/}/boot/vmlinuz-$1"; }
vm_kernel_config() { local r; r=$(vm_kernel_root "$1") || return 1; echo "${r%/}/boot/config-$1"; }
vm_kernel_modules() { local r; r=$(vm_kernel_root "$1") || return 1; echo "${r%/}/lib/modules/$1"; }
vm_kernel_headers() { echo "/usr/src/linux-headers-$1"; }
