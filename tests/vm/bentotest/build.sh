# shellcheck shell=bash
# Build helper for the bentofs VM tests; source it (after tests/vm/lib.sh), don't run it.
#
#   bento_build WORK   builds, in a scratch copy of the sources under WORK/build (so it never
#                      races a build in the tree): bentofs.ko and bento_memfs.ko into
#                      WORK/overlay/usr/lib/bento/ (the guest's /lib/bento), and the static
#                      helper bento-t into WORK/overlay/usr/bin/. Fails on compiler warnings.

bento_build() {
    local work=$1 here repo krel kdir build overlay
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    repo=$(cd "$here/../../.." && pwd)
    krel=$(vm_krel)
    kdir=$(vm_kernel_headers "$krel")
    [[ -d $kdir ]] || vm_die "no kernel headers in $kdir (tests/vm/setup.sh)"
    build=$work/build overlay=$work/overlay
    rm -rf "$build" "$overlay"
    mkdir -p "$build/bentofs-c" "$build/bentotest" "$overlay/usr/lib/bento" "$overlay/usr/bin"
    rsync -a --include='*/' --include='*.[ch]' --include=Kbuild --exclude='*' \
        "$repo/bentofs-c/" "$build/bentofs-c/"
    rsync -a --include='*.[chS]' --include=Kbuild --exclude='*' "$here/" "$build/bentotest/"

    echo "bento_build: building in $build (kernel $krel)"
    make -C "$kdir" CONFIG_DEBUG_INFO_BTF_MODULES= M="$build/bentofs-c" modules \
        >"$work/build.log" 2>&1 || { cat "$work/build.log"; vm_die "bentofs build failed"; }
    make -C "$kdir" CONFIG_DEBUG_INFO_BTF_MODULES= M="$build/bentotest" \
        BENTO_INCLUDE="$build/bentofs-c/include" \
        KBUILD_EXTRA_SYMBOLS="$build/bentofs-c/Module.symvers" modules >>"$work/build.log" 2>&1 ||
        { cat "$work/build.log"; vm_die "bento_memfs build failed"; }
    if grep -q 'warning:' "$work/build.log"; then
        grep 'warning:' "$work/build.log" >&2
        vm_die "compiler warnings (log $work/build.log)"
    fi
    gcc -static -O2 -Wall -Werror -o "$overlay/usr/bin/bento-t" "$here/bento-t.c" \
        2>>"$work/build.log" || { cat "$work/build.log"; vm_die "bento-t build failed"; }
    install -m 644 "$build/bentofs-c/bentofs.ko" "$build/bentotest/bento_memfs.ko" \
        "$overlay/usr/lib/bento/"
}
