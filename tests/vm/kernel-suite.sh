#!/usr/bin/env bash
# The kernel part of the test command (tests/all.sh runs it): bentofs.ko and logfs.ko in a VM
# running Debian's cloud kernel under QEMU (TCG), checked from the host before and after.
# About 8-10 minutes on 2 cores (plus 5 minutes when the four Rust builds of `make upgrade-modules`
# are cold).
#
#   tests/vm/kernel-suite.sh [WORKDIR]
#
# 1. build: `make -C <repo>` (fails on any gcc, rustc, modpost or objtool warning), the release
#    tools (cargo build --release: quick when up to date), `make install` and `uninstall` into a
#    staging directory, pjdfstest if missing; then the modules once more, from a snapshot of their
#    sources, together with bento_memfs.ko and bento_kfail.ko (same checks: a warning is seen even when `make` had
#    nothing to rebuild, and the VM gets one consistent set even while the tree changes); the
#    static helper bento-t (tests/vm/bentotest/bento-t.c);
# 2. prepare: /usr/include as an ext4 image (the source tree); a logfs image written on the
#    host by logfs-fuse, with its manifest;
# 3. one boot (tests/vm/suite/guest.sh), parts in this order, each timed:
#      a  bentofs self-test with the C file system bento_memfs (tests/vm/bentotest/guest.sh)
#      b  logfs workload: mkfs, mount -t bento, cp -a /usr/include and compare, a 200 MiB file,
#         hard links, symlinks, a 1 GiB sparse file, rename over a file, xattrs, fallocate
#         (zero, collapse and insert ranges over dirty pages, their EINVAL/EFBIG cases),
#         remount, compare everything again, fsck.logfs -n
#      d  fsx (bento-t fsx: writes, truncates, mmap, punch, zero, collapse and insert ranges,
#         fsync, cache drops, checked against a model), two at a time, remount and compare
#         with the models after every round
#      f  one format, kernel side: the host's logfs-fuse image mounted by the kernel, compared,
#         changed; host side (after the boot): both images mounted with logfs-fuse, compared
#         with what the kernel saw, fsck.logfs -n
#      c  pjdfstest; failures compared with tests/vm/pjdfstest-expected-failures.txt
#      e  bad input: mount options, zeroed/ext4/corrupt disks, rmmod while mounted, a full
#         volume (ENOSPC), I/O errors through device-mapper (EIO); errno and log line each
#      n  allocation failures: nomem-t works on a mount while logfs.ko fails every Nth Rust
#         allocation of it (fail_alloc_*), then while bento_kfail.ko fails every Nth slab and
#         page allocation its system calls make anywhere in the kernel (failslab and
#         fail_page_alloc with a task filter, through kprobes: the Debian kernels have no
#         fault injection); only ENOMEM, no oops, the mount still works, data intact, remount,
#         fsck; drop_caches runs the shrinker (tests/vm/suite/guest-nomem.sh)
#      u  live upgrade: two mounts under a checked workload (6 processes: write, fsync, rename,
#         read back and compare, readdir, unlink, mkdir/xattr/rmdir), 20 upgrades alternating
#         logfs.ko and logfs_v2.ko (make upgrade-modules), the replaced module unloaded each
#         time; logfs_badstate.ko and logfs_badformat.ko refused with a log line, the mounts
#         staying on the old version; no failed call, data intact, remount, fsck
#      r  upgrade between releases: the previous release (the newest vX.Y.Z tag older than the
#         tree's version, built from `git archive` into target/releases/) keeps its bentofs.ko
#         loaded while two busy mounts move from its logfs.ko to the tree's logfs_v2.ko and back
#         (KSUITE_RELEASE_ROUNDS, default 6); no failed call, data intact, fsck; then its
#         logfs.ko on the tree's bentofs.ko: a mount, the data intact, a live upgrade to the
#         tree's logfs_v2.ko
#      s  shutdown and freeze (suite/part-s.sh): for each FS_IOC_GOINGDOWN flag (fullsync,
#         metaflush, nologflush) a file fsynced and one not, a descriptor open; EPERM without
#         CAP_SYS_ADMIN, EINVAL for an unknown flag, a second shutdown a no-op; every call then
#         EIO (read, write, mmap, fsync through the descriptor; open, create, mkdir, readdir,
#         unlink, truncate, setxattr, statfs), the device's bytes (read with O_DIRECT) unchanged
#         by them and by umount, fsck clean, the fsynced file intact at the next mount (the other
#         too after fullsync); FIFREEZE with unsynced data: a writer and the close of an
#         unlinked file's last descriptor block, the device does not change while frozen and
#         fsck of it is clean, FITHAW releases both, data intact, fsck
#      p  panic containment (suite/part-p.sh): four mounts on logfs_panic.ko (a test build that
#         panics on demand), one under a checked workload throughout; a panic in a call (with
#         calls of the mount in flight), in the background work and in a live upgrade's export
#         each fail only their mount: calls there return EIO at once, the log names the device
#         and file:line, the busy mount never sees an error and is upgraded; umount of the failed
#         ones works, then their module unloads, fsck is clean, the volumes mount again with
#         their data; no oops
#      g  rmmod logfs, rmmod bentofs; no BUG/Oops/WARNING/Call Trace/Rust panic in the log
#    (run-vm.sh also fails the run on any of those in the whole console log);
# 4. a summary with the time and result of every part.
#
# Known bugs that do not fail the run, each with its reason: tests/vm/kernel-known-issues.txt.
# Logs: target/vm-logs/kernel-suite-<time>/ (main-job-<time>/ for main-job.sh): console.log (the whole VM run), make.log,
# build-snapshot.log, out/ (manifests and pjdfstest logs from the VM), summary.txt;
# target/vm-logs/kernel-suite-latest points at the last one.
#
# Environment:
#   KSUITE_PARTS      parts to run (default "a b d f c e n u r s p"; g always runs; m is the main job's
#                     lighter workload, see main-job.sh)
#   KSUITE_UPGRADES   upgrades in part u (default 20)
#   KSUITE_PREV       the release part r loads, a tag (default: the newest older than the tree)
#   KSUITE_FSX_OPS    operations per fsx run (default 4000)
#   KSUITE_FSX_ROUNDS rounds of two fsx runs, each followed by a remount (default 3)
#   KSUITE_KEEP=1     keep WORKDIR (disk images) afterwards
#   VM_TIMEOUT        for the boot (default 1800 s); VM_KREL, VM_MEM, VM_SMP: see run-vm.sh
# Exit status: 0 when every part passed; 1 otherwise; 2 when the suite could not run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=suite/host-lib.sh
. "$here/suite/host-lib.sh"
KS_NAME=${KS_NAME:-kernel-suite}

# Part r needs the previous release built for this kernel; releases before 0.2.0 predate the
# 6.12 line, so another line runs it only when asked.
part_r=" r"; [[ -z ${VM_LINE:-} ]] || part_r=
PARTS=${KSUITE_PARTS:-a b d f c e n u$part_r s p}
bin=$repo/target/release
pjdfstest=$repo/target/pjdfstest/bin/pjdfstest
pjd_version=0.2.2
bento_t=
want() { [[ " $PARTS " == *" $1 "* ]]; }

[[ $(id -u) -eq 0 ]] || ks_die "run as root"
stamp=$(date +%Y%m%d-%H%M%S)
logdir=$repo/target/vm-logs/$KS_NAME-$stamp
mkdir -p "$logdir"
ln -sfn "$KS_NAME-$stamp" "$repo/target/vm-logs/$KS_NAME-latest"
work=${1:-$(mktemp -d /var/tmp/kernel-suite.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
fuse_mnt=
cleanup() {
    if [[ -n $fuse_mnt ]] && mountpoint -q "$fuse_mnt"; then umount "$fuse_mnt" || umount -l "$fuse_mnt"; fi
    if [[ ${KSUITE_KEEP:-} == 1 ]]; then ks_say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Results: "name|PASS or FAIL|seconds|detail", printed as a table at the end.
results=()
t_start=$SECONDS
record() { results+=("$1|$2|$3|${4:-}"); }
passfail() { if [[ $1 == 1 ]]; then echo PASS; else echo FAIL; fi; }

# ---- 1. build ---------------------------------------------------------------------------------
s=$(ks_now) ok=1
if want u || want r || want p; then ks_make "$logdir" upgrade-modules || ok=0; else ks_make "$logdir" || ok=0; fi
ks_tools "$logdir"
# make install / uninstall, staged: the tools, and the modules with the aliases autoload needs.
stage=$work/stage
if make -C "$repo" install DESTDIR="$stage" >"$logdir/install.log" 2>&1 &&
    [[ -x $stage/usr/sbin/mkfs.logfs && -x $stage/usr/sbin/fsck.logfs && -x $stage/usr/sbin/logfs-fuse ]] &&
    [[ $(modinfo -F alias "$stage/lib/modules/$(vm_krel)/updates/logfs.ko") == bento-fs-logfs ]] &&
    [[ $(modinfo -F alias "$stage/lib/modules/$(vm_krel)/updates/bentofs.ko") == fs-bento ]] &&
    make -C "$repo" uninstall DESTDIR="$stage" >>"$logdir/install.log" 2>&1 &&
    [[ -z $(find "$stage" -type f) ]]; then
    rm -rf "$stage"
else
    ok=0; ks_say "FAIL: make install/uninstall DESTDIR=$stage (log $logdir/install.log)"
fi
if want c && ! "$pjdfstest" --version 2>/dev/null | grep -qx "pjdfstest $pjd_version"; then
    ks_say "installing pjdfstest $pjd_version into target/pjdfstest"
    env -u CARGO_TARGET_DIR cargo install pjdfstest --locked --version "$pjd_version" \
        --root "$repo/target/pjdfstest" --quiet || ks_die "cargo install pjdfstest failed"
fi
KS_UPGRADE=$( (want u || want r || want p) && echo 1 || true) ks_snapshot "$work" "$logdir" || ok=0
# Part r: the previous release's bentofs.ko and logfs.ko, built from the git history.
prev=
if want r; then
    if [[ -n ${KSUITE_PREV:-} ]]; then prev=$KSUITE_PREV prev_rev=$KSUITE_PREV
    else read -r prev prev_rev < <(ks_prev_release) || ks_die "part r: no earlier release"; fi
    ks_build_release "$prev_rev" "$work/overlay/usr/lib/bento/prev" "$logdir" || ok=0
fi
bento_t=$work/overlay/usr/bin/bento-t
record "build: make -C repo (warning-free), module snapshot, bento-t" "$(passfail $ok)" "$(ks_since "$s")"

# ---- 2. prepare -------------------------------------------------------------------------------
s=$(ks_now) ok=1
if want b || want m; then ks_src_image "$work/src.img"; fi

fuse_mount() {  # IMAGE MNT [OPTIONS]
    "$bin/logfs-fuse" ${3:+-o "$3"} "$1" "$2" || return 1
    fuse_mnt=$2
}
fuse_umount() {  # IMAGE: and wait for the daemon's final checkpoint (its flock on the image)
    umount "$fuse_mnt" && flock -w 120 "$1" true
    fuse_mnt=
}

# An image written by logfs-fuse on the host, for the kernel to read (part f).
if want f; then
    [[ -c /dev/fuse ]] || ks_die "part f needs /dev/fuse on the host"
    img=$work/cross.img m=$work/cross.mnt
    rm -f "$img"; truncate -s 512M "$img"; mkdir -p "$m"
    "$bin/mkfs.logfs" -q "$img"
    fuse_mount "$img" "$m" || ks_die "logfs-fuse $img failed"
    (
        set -e
        mkdir "$m/tree"
        cp -a /usr/include/linux /usr/include/asm-generic "$m/tree/"
        "$bento_t" pwrite "$m/pattern" 0 64M 77
        mkdir "$m/links"
        echo "hard" >"$m/links/h1"; ln "$m/links/h1" "$m/links/h2"
        ln -s ../pattern "$m/links/sym"; ln -s "$(printf '%0900d' 3)" "$m/links/longsym"
        truncate -s 300M "$m/sparse"
        "$bento_t" pwrite "$m/sparse" 200M 5000 8
        "$bento_t" setx "$m/pattern" user.host written-by-fuse
        "$bento_t" setx "$m/tree" user.dir 1
        mkfifo "$m/fifo"; mknod "$m/null" c 1 3
        chown 1234:5678 "$m/links/h1"; chmod 4750 "$m/links/h1"
        touch -h -d '1969-07-20 20:17:40.123456789 UTC' "$m/links/sym"
        touch -d '2100-01-01 00:00:00.5 UTC' "$m/fifo"
    ) || { ok=0; ks_say "FAIL: populating the logfs-fuse image"; }
    "$bento_t" tree "$m" >"$work/cross-mounted.manifest" || ok=0
    fuse_umount "$img"
    "$bin/fsck.logfs" -n "$img" >"$logdir/fsck-cross-host.log" 2>&1 ||
        { ok=0; ks_say "FAIL: fsck.logfs -n of the logfs-fuse image"; cat "$logdir/fsck-cross-host.log" >&2; }
    # What the kernel must see is what is on the image: mounted again, read-only.
    mkdir -p "$work/overlay/etc/vmtest"
    if fuse_mount "$img" "$m" ro; then
        "$bento_t" tree "$m" >"$work/overlay/etc/vmtest/cross-host.manifest" || ok=0
        fuse_umount "$img"
    else
        ok=0
    fi
    if ! cmp -s "$work/cross-mounted.manifest" "$work/overlay/etc/vmtest/cross-host.manifest"; then
        if grep -q '^mtime-writeback' "$here/kernel-known-issues.txt"; then
            ks_say "KNOWN mtime-writeback, over FUSE too: mtimes changed when logfs-fuse wrote data back at unmount:"
        else
            ks_say "FAIL: the logfs-fuse image changed across a remount:"; ok=0
        fi
        diff "$work/cross-mounted.manifest" "$work/overlay/etc/vmtest/cross-host.manifest" |
            grep '^[-+]\.' | head -n 6 >&2 || true
    fi
fi
record "prepare: source tree image, logfs-fuse image" "$(passfail $ok)" "$(ks_since "$s")"

# ---- 3. the boot ------------------------------------------------------------------------------
ov=$work/overlay
cp "$repo/tests/pjdfstest/pjdfstest.toml" "$ov/etc/pjdfstest.toml"
ks_users "$ov"
grep -v '^#' "$here/kernel-known-issues.txt" 2>/dev/null | grep . >"$ov/etc/vmtest/known-issues" || true

disks=() conf=()
# disk NAME IMAGE: attach IMAGE as the next NVMe namespace, $DISK_NAME in the guest
disk() { disks+=(-d "$2"); conf+=("DISK_$1=/dev/nvme0n$(( ${#disks[@]} / 2 ))"); }
# scratch NAME IMAGE SIZE: the same, a fresh sparse file
scratch() { rm -f "$2"; truncate -s "$3" "$2"; disk "$1" "$2"; }
if want a; then scratch MEMFS1 "$work/memfs1.img" 64M; scratch MEMFS2 "$work/memfs2.img" 64M; fi
if want b || want m; then disk SRC "$work/src.img"; fi
if want b || want d || want m; then scratch WORK "$work/work.img" 2G; fi
if want f; then disk CROSS "$work/cross.img"; fi
if want c; then scratch PJD "$work/pjd.img" 1G; fi
if want e; then
    scratch BAD "$work/bad.img" 64M
    scratch FULL "$work/full.img" 64M
    scratch EIO "$work/eio.img" 256M
fi
if want n; then scratch NOMEM "$work/nomem.img" 256M; fi
if want s; then scratch DOWN "$work/down.img" 64M; fi
if want u; then scratch UPG1 "$work/upg1.img" 512M; scratch UPG2 "$work/upg2.img" 512M; fi
if want r; then scratch REL1 "$work/rel1.img" 512M; scratch REL2 "$work/rel2.img" 512M; fi
if want p; then for i in 1 2 3 4; do scratch PAN$i "$work/pan$i.img" 128M; done; fi
scratch OUT "$work/out.img" 64M
guest_parts=$(for p in a m b d f c e n u r s p; do if want "$p"; then printf '%s ' "$p"; fi; done)
{
    echo "PARTS='$guest_parts'"
    echo "FSX_OPS=${KSUITE_FSX_OPS:-4000} FSX_ROUNDS=${KSUITE_FSX_ROUNDS:-3} UPG_ROUNDS=${KSUITE_UPGRADES:-20}"
    echo "VER=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)"
    echo "PREV=${prev:-} RELEASE_ROUNDS=${KSUITE_RELEASE_ROUNDS:-6}"
    echo "PATH=\$PATH:$bin:$(dirname "$pjdfstest")"
    printf '%s\n' "${conf[@]}"
} >"$ov/etc/vmtest/suite.conf"
bins=(-b /usr/bin/cp -b /usr/bin/sync -b "$bin/mkfs.logfs" -b "$bin/fsck.logfs" -b /usr/sbin/dmsetup)
if want c; then bins+=(-b "$pjdfstest"); fi
"$here/mkinitramfs.sh" -k "dm-mod$(want u && echo ,loop)" "${bins[@]}" -s "$here/suite/guest.sh" "$work/initramfs.gz" "$ov" >/dev/null

log=$logdir/console.log
ks_say "booting the VM: parts '$guest_parts'g, $(( ${#disks[@]} / 2 )) disks (console: $log)"
s=$(ks_now) rc=0
"$here/run-vm.sh" -q -t "${VM_TIMEOUT:-1800}" -m "${VM_MEM:-2G}" -l "$log" \
    "${disks[@]}" "$work/initramfs.gz" || rc=$?
wall=$(ks_since "$s")
mkdir -p "$logdir/out"
tar -xf "$work/out.img" -C "$logdir/out" 2>/dev/null || true

case $rc in
    0) detail="" ;;
    240) detail="TIMEOUT; last part begun: $(grep -o 'PART-BEGIN .*' "$log" | tail -n1)" ;;
    241) detail="guest crashed (no result marker); last part begun: $(grep -o 'PART-BEGIN .*' "$log" | tail -n1)" ;;
    242) detail="kernel log has BUG/Oops/WARNING/Call Trace" ;;
    243) detail="run-vm.sh usage or environment error" ;;
    *) detail="$rc checks failed" ;;
esac
vm_ok=0; [[ $rc -ne 0 ]] || vm_ok=1
record "VM boot (wall time, incl. boot and power-off)" "$(passfail $vm_ok)" "$wall" "$detail"
while read -r _ id pres pfails psecs; do
    name=$(grep -o "PART-BEGIN $id .*" "$log" | head -n1 | cut -d' ' -f3-)
    d=""; [[ $pfails -eq 0 ]] || d="$pfails checks failed"
    record "  $id  $name" "$pres" "$psecs" "$d"
done < <(grep -o 'PART-END .*' "$log" || true)
for id in $guest_parts g; do
    grep -q "PART-END $id " "$log" || record "  $id  (did not finish)" FAIL 0 ""
done

# ---- 4. host side -----------------------------------------------------------------------------
o=$logdir/out

# c: pjdfstest failures against the allowlist
if want c && [[ -f $o/pjdfstest-failed.txt ]]; then
    s=$(ks_now) ok=1
    grep -v '^#' "$here/pjdfstest-expected-failures.txt" | sed 's/[[:space:]]*#.*//' | grep . |
        sort >"$work/allow.txt" || true
    unexpected=$(comm -23 "$o/pjdfstest-failed.txt" "$work/allow.txt")
    fixed=$(comm -13 "$o/pjdfstest-failed.txt" "$work/allow.txt")
    summary() { grep -h '^Summary' "$1" | sed -n "s/.* \([0-9]*\) $2.*/\1/p" | head -n1 || true; }
    mp=$(summary "$o/pjdfstest-main.log" passed) ms=$(summary "$o/pjdfstest-main.log" skipped)
    rp=$(summary "$o/pjdfstest-remount.log" passed) rt=$(summary "$o/pjdfstest-remount.log" total)
    nf=$(wc -l <"$o/pjdfstest-failed.txt")
    pjd="$(( ${mp:-0} + ${rp:-0} )) passed, $(( ${ms:-0} - ${rt:-0} )) skipped, $nf failed"
    if [[ -n $unexpected ]]; then ok=0; ks_say "pjdfstest: failures not in the allowlist:"; echo "$unexpected" >&2; fi
    [[ -z $fixed ]] || ks_say "pjdfstest: allowlisted but passing now (remove them): $fixed"
    record "  c  host: pjdfstest failures vs tests/vm/pjdfstest-expected-failures.txt" "$(passfail $ok)" "$(ks_since "$s")" "$pjd"
elif want c; then
    record "  c  host: pjdfstest results" FAIL 0 "no results from the VM"
fi

# f: the kernel's images, mounted with logfs-fuse on the host
hostcheck() {  # IMAGE MANIFEST WHAT
    local m=$work/check.mnt name
    name=$(basename "$1" .img)
    mkdir -p "$m"
    if [[ ! -s $2 ]]; then ks_say "FAIL: $3: no manifest from the VM"; return 1; fi
    "$bin/fsck.logfs" -n "$1" >"$logdir/fsck-host-$name.log" 2>&1 ||
        { ks_say "FAIL: $3: fsck.logfs -n on the host: exit $?"; cat "$logdir/fsck-host-$name.log" >&2; return 1; }
    fuse_mount "$1" "$m" ro || { ks_say "FAIL: $3: logfs-fuse cannot mount it"; return 1; }
    "$bento_t" tree "$m" >"$logdir/host-$name.manifest" || true
    fuse_umount "$1"
    if ! cmp -s "$2" "$logdir/host-$name.manifest"; then
        ks_say "FAIL: $3: logfs-fuse sees something else than the kernel did:"
        diff "$2" "$logdir/host-$name.manifest" | head -n 20 >&2 || true
        return 1
    fi
    ks_say "$3: identical ($(wc -l <"$2") entries), fsck clean"
}
if want f || want m; then
    s=$(ks_now) ok=1
    if want b || want d || want m; then
        hostcheck "$work/work.img" "$o/work.manifest" "the work disk written by the kernel, read by logfs-fuse" || ok=0
    fi
    if want f; then
        hostcheck "$work/cross.img" "$o/cross-kernel.manifest" "the logfs-fuse image after the kernel changed it, read by logfs-fuse" || ok=0
    fi
    record "  f  host: the kernel's images with logfs-fuse, fsck.logfs -n" "$(passfail $ok)" "$(ks_since "$s")"
fi

# ---- summary ----------------------------------------------------------------------------------
fail=0
for r in "${results[@]}"; do [[ $(cut -d'|' -f2 <<<"$r") == PASS ]] || fail=1; done
{
    echo
    echo "${KS_TITLE:-kernel suite}: guest kernel $(vm_krel), QEMU TCG; logs in ${logdir#"$repo"/}"
    if [[ -n ${KS_DETAIL:-} ]]; then
        sed -n "/PART-BEGIN $KS_DETAIL /,/PART-END $KS_DETAIL /p" "$log" | grep -E '^(ok|not ok|# )' |
            grep -v 'kernel log clean' | sed 's/^ok [0-9]* - /  ok   /; s/^not ok [0-9]* - /  FAIL /; s/^# /       /'
        echo
    fi
    for r in "${results[@]}"; do
        IFS='|' read -r name res secs detail <<<"$r"
        printf '  %-82s %-4s %6ss  %s\n' "$name" "$res" "$secs" "$detail"
    done
    known=$(grep -ho '# KNOWN [A-Za-z0-9_-]*' "$log" 2>/dev/null | sort | uniq -c |
        awk '{ printf "%s%s (%dx)", sep, $4, $1; sep = ", " }' || true)
    [[ -z $known ]] || echo "  known issues seen (tests/vm/kernel-known-issues.txt): $known"
    grep -h '# FIXED?' "$log" 2>/dev/null | sed 's/^/  /' || true
    grep -h '^not ok' "$log" 2>/dev/null | sed 's/^/  FAILED: /' | head -n 30 || true
    echo "  total $((SECONDS - t_start))s: $([[ $fail == 0 ]] && echo PASS || echo FAIL)"
} | tee "$logdir/summary.txt" || true
[[ $fail == 0 ]] || exit 1
