# shellcheck shell=bash disable=SC2154
# Host-side helpers of tests/vm/kernel-suite.sh, tests/vm/main-job.sh and bench/vm-cp.sh; source
# it after tests/vm/lib.sh, with $repo (the repository) and $here (tests/vm) set. Don't run it.

ks_say() { printf '%s: %s\n' "${KS_NAME:-kernel-suite}" "$*" >&2; }
ks_die() { ks_say "error: $*"; exit 2; }
ks_now() { date +%s.%N; }
ks_since() { awk -v a="$1" -v b="$(ks_now)" 'BEGIN { printf "%.1f", b - a }'; }

# ks_warnings LOG: the warning lines of a build log (gcc, rustc, modpost, objtool)
ks_warnings() { grep -E '(^|[^A-Za-z_])(warning|WARNING)(:|\[| )' "$1" || true; }

# ks_make LOGDIR [TARGET]: `make -C $repo [TARGET]`; 1 if it printed warnings (dies if it failed).
ks_make() {
    local log=$1/make.log
    ks_say "make -C $repo ${2:-}"
    if ! make -C "$repo" ${2:+"$2"} >"$log" 2>&1; then
        cat "$log" >&2
        ks_die "make failed (log $log)"
    fi
    if [[ -n $(ks_warnings "$log") ]]; then
        ks_warnings "$log" >&2
        ks_say "FAIL: the module build printed warnings (log $log)"
        return 1
    fi
}

# ks_tools LOGDIR: the release tools (mkfs.logfs, fsck.logfs, logfs-fuse): `cargo build --release`,
# which is quick when they are up to date (stale tools would test the wrong format code).
ks_tools() {
    local log=$1/cargo-release.log
    if ! (cd "$repo" && cargo build --release) >"$log" 2>&1; then
        cat "$log" >&2
        ks_die "cargo build --release failed (log $log)"
    fi
}

# ks_snapshot WORK LOGDIR: bentofs.ko, logfs.ko, bento_memfs.ko and bento_kfail.ko built by one Kbuild run over
# a snapshot of their sources (the Rust object as `make` left it), so the three always agree
# and the VM gets a consistent set even while the tree changes; also a warning is seen even
# when `make` had nothing to rebuild. Installs them, memfs-guest.sh, part-p.sh, part-s.sh and
# the static helpers bento-t, fsync-t, nomem-t and down-t into WORK/overlay (/usr/lib/bento, /usr/bin). With KS_UPGRADE=1
# also logfs_v2.ko, logfs_badstate.ko, logfs_badformat.ko and logfs_panic.ko (`make
# upgrade-modules` must have run).
# 1 on warnings; dies on errors.
ks_snapshot() {
    local logdir=$2 krel kdir b=$1/build ov=$1/overlay version log=$2/build-snapshot.log
    local upg=() v
    krel=$(vm_krel)
    kdir=$(vm_kernel_headers "$krel")
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
    [[ -f $repo/logfs/kmod/logfs_rust.o_shipped ]] || ks_die "no logfs/kmod/logfs_rust.o_shipped (run make)"
    rm -rf "$b" "$ov"
    mkdir -p "$b/logfs/kmod" "$b/tests/vm/bentotest" "$ov/usr/lib/bento" "$ov/usr/bin" "$ov/etc/vmtest"
    rsync -a --include='*/' --include='*.[chS]' --include=Kbuild --exclude='*' \
        "$repo/bentofs-c/" "$b/bentofs-c/"
    cp "$repo/logfs/kmod/Kbuild" "$repo/logfs/kmod/logfs_main.c" \
        "$repo/logfs/kmod/logfs_rust.o_shipped" "$b/logfs/kmod/"
    if [[ ${KS_UPGRADE:-} == 1 ]]; then
        upg=(LOGFS_UPGRADE_MODULES=m)
        for v in v2 badstate badformat panic; do
            [[ -f $repo/logfs/kmod/logfs_rust_$v.o_shipped ]] ||
                ks_die "no logfs/kmod/logfs_rust_$v.o_shipped (run make upgrade-modules)"
            cp "$repo/logfs/kmod/logfs_main_$v.c" "$repo/logfs/kmod/logfs_rust_$v.o_shipped" \
                "$b/logfs/kmod/"
        done
    fi
    cp "$here/bentotest/Kbuild" "$here/bentotest/bento_memfs.c" "$here/bentotest/kfail.c" \
        "$here/bentotest/kfail_ret.S" "$b/tests/vm/bentotest/"
    { cat "$repo/Kbuild"; echo "obj-m += tests/vm/bentotest/"; } >"$b/Kbuild"
    if ! make -C "$kdir" M="$b" LOGFS_VERSION="$version" CONFIG_DEBUG_INFO_BTF_MODULES= \
        "${upg[@]}" modules >"$log" 2>&1; then
        cat "$log" >&2
        ks_die "module build (snapshot) failed (log $log)"
    fi
    gcc -static -O2 -Wall -Werror -o "$ov/usr/bin/fsync-t" "$here/bentotest/fsync-t.c" \
        2>"$logdir/fsync-t.log" || { cat "$logdir/fsync-t.log" >&2; ks_die "fsync-t build failed"; }
    gcc -static -O2 -Wall -Werror -o "$ov/usr/bin/bento-t" "$here/bentotest/bento-t.c" \
        2>"$logdir/bento-t.log" || { cat "$logdir/bento-t.log" >&2; ks_die "bento-t build failed"; }
    gcc -static -O2 -Wall -Werror -o "$ov/usr/bin/nomem-t" "$here/bentotest/nomem-t.c" \
        2>"$logdir/nomem-t.log" || { cat "$logdir/nomem-t.log" >&2; ks_die "nomem-t build failed"; }
    gcc -static -O2 -Wall -Werror -o "$ov/usr/bin/down-t" "$here/bentotest/down-t.c" \
        2>"$logdir/down-t.log" || { cat "$logdir/down-t.log" >&2; ks_die "down-t build failed"; }
    install -m 644 "$here/suite/guest-nomem.sh" "$ov/usr/lib/bento/guest-nomem.sh"
    install -m 644 "$b/bentofs-c/bentofs.ko" "$b/logfs/kmod/logfs.ko" \
        "$b/tests/vm/bentotest/bento_memfs.ko" "$b/tests/vm/bentotest/bento_kfail.ko" \
        "$ov/usr/lib/bento/"
    if [[ ${KS_UPGRADE:-} == 1 ]]; then
        install -m 644 "$b"/logfs/kmod/logfs_{v2,badstate,badformat,panic}.ko "$ov/usr/lib/bento/"
    fi
    install -m 644 "$here/bentotest/guest.sh" "$ov/usr/lib/bento/memfs-guest.sh"
    install -m 644 "$here/suite/part-p.sh" "$ov/usr/lib/bento/part-p.sh"
    install -m 644 "$here/suite/part-s.sh" "$ov/usr/lib/bento/part-s.sh"
    modinfo -F vermagic "$ov/usr/lib/bento/logfs.ko" | grep -q "^$krel " ||
        ks_die "logfs.ko was not built for $krel"
    if [[ -n $(ks_warnings "$log") ]]; then
        ks_warnings "$log" >&2
        ks_say "FAIL: the module build printed warnings (log $log)"
        return 1
    fi
}

# ks_src_image IMAGE [DIR]: an ext4 image holding DIR (default /usr/include) as /include
# (mke2fs -d keeps modes, owners, ns times, hard links and symlinks).
ks_src_image() {
    local img=$1 src=${2:-/usr/include} stage
    stage=$(mktemp -d /var/tmp/ks-stage.XXXXXX)
    cp -a "$src" "$stage/include"
    rm -f "$img"
    mke2fs -q -t ext4 -d "$stage" -L src "$img" 512M >/dev/null || { rm -rf "$stage"; ks_die "mke2fs -d of $src failed"; }
    rm -rf "$stage"
}

# Busybox's /etc/passwd and /etc/group with the users pjdfstest switches to.
ks_users() {
    local ov=$1
    cat >"$ov/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
tests:x:999:999:Dummy user for pjdfstest:/:/usr/sbin/nologin
EOF
    cat >"$ov/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
tests:x:999:
EOF
}

# ks_prev_release: "vX.Y.Z REV" of the newest release older than the tree's version: its tag, or
# in a clone without tags its commit from tests/vm/releases.txt ("vX.Y.Z COMMIT").
ks_prev_release() {
    local ver t c
    ver=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)
    for t in $(git -C "$repo" tag -l 'v[0-9]*' --sort=-v:refname); do
        if dpkg --compare-versions "${t#v}" lt "$ver"; then echo "$t $t"; return 0; fi
    done
    while read -r t c; do
        if dpkg --compare-versions "${t#v}" lt "$ver" && git -C "$repo" cat-file -e "$c^{commit}"; then
            echo "$t $c"; return 0
        fi
    done < <(grep -v '^#' "$here/releases.txt" | sort -r -V)
    return 1
}

# ks_build_release REV DEST LOGDIR: bentofs.ko and logfs.ko of release REV (a tag or commit), from
# `git archive` into target/releases/REV (kept: later runs reuse the build), installed into DEST.
ks_build_release() {
    local tag=$1 dest=$2 log=$3/build-$1.log src=$repo/target/releases/$1
    if [[ ! -f $src/logfs/kmod/logfs.ko || ! -f $src/bentofs-c/bentofs.ko ]]; then
        ks_say "building $tag's modules from the git history (target/releases/$tag)"
        rm -rf "$src" && mkdir -p "$src"
        git -C "$repo" archive "$tag" | tar -x -C "$src" ||
            { ks_say "FAIL: git archive $tag"; return 1; }
        if ! make -C "$src" KREL="$(vm_krel)" >"$log" 2>&1; then
            cat "$log" >&2; ks_say "FAIL: building $tag (log $log)"; return 1
        fi
    fi
    install -D -m 644 "$src/bentofs-c/bentofs.ko" "$dest/bentofs.ko"
    install -D -m 644 "$src/logfs/kmod/logfs.ko" "$dest/logfs.ko"
    # Modules link against bentofs's exports by CRC (MODVERSIONS): one that changed means a
    # logfs.ko of one release cannot load into the other's bentofs.ko.
    local changed
    changed=$(awk 'NR == FNR { crc[$2] = $1; next } ($2 in crc) && crc[$2] != $1 { print $2 }' \
        "$src/Module.symvers" "$repo/Module.symvers")
    if [[ -n $changed ]]; then
        ks_say "FAIL: exported symbols whose CRC changed since $tag:" $changed; return 1
    fi
}
