#!/usr/bin/env bash
# Run the pjdfstest POSIX conformance suite (the Rust rewrite, crates.io `pjdfstest` 0.2.2)
# against logfs mounted with logfs-fuse.
#
#   tests/pjdfstest/run.sh [PATTERN...]     (as root; PATTERNs select tests by substring)
#
# What it does:
#   1. installs pjdfstest into <workspace>/target/pjdfstest if it is not there
#      (cargo install --locked from crates.io), and builds the release binaries if missing;
#   2. creates the dummy user `tests` (group `tests`) that pjdfstest switches to, if missing;
#   3. makes a 1 GiB logfs image, mounts it with `logfs-fuse -o allow_other`, and runs
#      pjdfstest in it with pjdfstest.toml. pjdfstest leaks descriptors open for writing
#      (e.g. posix_fallocate::affected_only_create_flags), after which `mount -o remount,ro`
#      fails with EBUSY; so the EROFS tests, which remount, run in a second, fresh pjdfstest
#      process;
#   4. unmounts and checks the image with `fsck.logfs -n` (must be clean);
#   5. compares the failures with expected-failures.txt (each entry carries its reason).
#
# Exit status: 0 when every failure is in expected-failures.txt and fsck is clean (also when
# skipped: not root, or no /dev/fuse); 1 on unexpected failures or an unclean image; 2 when the
# run could not be set up.
#
# Environment:
#   LOGFS_BIN_DIR         mkfs.logfs, logfs-fuse, fsck.logfs (default <workspace>/target/release)
#   PJDFSTEST             a pjdfstest binary to use instead of installing one
#   PJDFSTEST_IMAGE_SIZE  image size for truncate(1) (default 1G)
#   PJDFSTEST_KEEP=1      keep the scratch directory (image and logs) afterwards
#   PJDFSTEST_LOG         where to copy the full pjdfstest output
#                         (default <workspace>/target/pjdfstest/last-run.log)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ws=$(cd "$here/../.." && pwd)
config=$here/pjdfstest.toml
allowlist=$here/expected-failures.txt
version=0.2.2
install_root=$ws/target/pjdfstest
bin_dir=${LOGFS_BIN_DIR:-$ws/target/release}
log_copy=${PJDFSTEST_LOG:-$install_root/last-run.log}

say() { printf 'pjdfstest/run.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

if [[ $(id -u) -ne 0 ]]; then
    say "SKIPPED: pjdfstest needs root (it switches users and makes device nodes)"
    exit 0
fi
if ! { exec 9<>/dev/fuse; } 2>/dev/null; then
    say "SKIPPED: cannot open /dev/fuse"
    exit 0
fi
exec 9>&-

# --- Binaries --------------------------------------------------------------------------------
for b in mkfs.logfs logfs-fuse fsck.logfs; do
    if [[ ! -x $bin_dir/$b ]]; then
        if [[ -n ${LOGFS_BIN_DIR:-} ]]; then
            die "$bin_dir/$b is missing (LOGFS_BIN_DIR=$LOGFS_BIN_DIR)"
        fi
        say "$b is missing; running cargo build --release"
        (cd "$ws" && cargo build --release) || die "cargo build --release failed"
        break
    fi
done

pjdfstest=${PJDFSTEST:-$install_root/bin/pjdfstest}
if [[ -z ${PJDFSTEST:-} ]] && ! "$pjdfstest" --version 2>/dev/null | grep -qx "pjdfstest $version"; then
    say "installing pjdfstest $version into $install_root"
    # cargo install builds in a target directory of its own; keep it out of the workspace's
    # (and of a CARGO_TARGET_DIR pointing there) so that it can run while cargo test does.
    env -u CARGO_TARGET_DIR cargo install pjdfstest --locked --version "$version" \
        --root "$install_root" --quiet || die "cargo install pjdfstest $version failed"
fi
[[ -x $pjdfstest ]] || die "no pjdfstest binary at $pjdfstest"

# --- Dummy users -----------------------------------------------------------------------------
# pjdfstest.toml names two users and their primary groups: nobody (whose group is called
# nogroup on Debian, nobody elsewhere) and tests.
getent passwd nobody >/dev/null || die "there is no user nobody"
getent group tests >/dev/null || groupadd --system tests || die "groupadd tests failed"
if ! getent passwd tests >/dev/null; then
    useradd --system --no-create-home --gid tests --home-dir / --shell /usr/sbin/nologin \
        --comment "Dummy user for pjdfstest" tests || die "useradd tests failed"
fi
[[ $(id -gn tests) == tests ]] || die "user tests exists but its primary group is not tests"
nobody_group=$(id -gn nobody)

# --- Scratch directory, image, mount ---------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/logfs-pjdfstest.XXXXXX")
image=$work/image
mnt=$work/mnt
secondary=$work/secondary   # on the scratch directory's file system: another one, for EXDEV
# pjdfstest switches to unprivileged users, who must be able to reach the mount point.
chmod 0755 "$work"
mkdir -p "$mnt" "$secondary"
mounted=0

cleanup() {
    if [[ $mounted -eq 1 ]] && mountpoint -q "$mnt"; then
        umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
        flock -w 120 "$image" true || true
    fi
    if [[ ${PJDFSTEST_KEEP:-0} == 1 ]]; then
        say "kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# The configuration with nobody's real group, and one with remounting off for the main run.
sed "s/\[\"nobody\", \"nogroup\"\]/[\"nobody\", \"$nobody_group\"]/" "$config" >"$work/remount.toml"
grep -q '^allow_remount = true' "$work/remount.toml" || die "$config: expected allow_remount = true"
sed 's/^allow_remount = true/allow_remount = false/' "$work/remount.toml" >"$work/main.toml"

truncate -s "${PJDFSTEST_IMAGE_SIZE:-1G}" "$image"
"$bin_dir/mkfs.logfs" -q "$image" || die "mkfs.logfs failed"
"$bin_dir/logfs-fuse" -o allow_other "$image" "$mnt" || die "logfs-fuse failed"
mounted=1

# --- Run -------------------------------------------------------------------------------------
# Plain output (no colours, no backtraces) to parse: "<name> <padding> ok|FAILED|skipped".
export NO_COLOR=1 CLICOLOR=0 RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0
start=$(date +%s)
say "running pjdfstest $version on $mnt (log: $log_copy)"
set +e
(cd / && "$pjdfstest" -c "$work/main.toml" -p "$mnt" -s "$secondary" -- "$@") >"$work/main.log" 2>&1
status_main=$?
set -e
# The EROFS tests that the main run skipped for want of remounting, in a fresh process.
mapfile -t remount_tests < <(awk '
    /^[A-Za-z0-9_:]+ +skipped$/ { name = $1; next }
    /^\t/ && name { if (/allow_remount/) { print name; name = "" } next }
    { name = "" }' "$work/main.log")
: >"$work/remount.log"
if [[ ${#remount_tests[@]} -gt 0 ]]; then
    set +e
    # -e matches the untrimmed names, which carry the crate's module path.
    (cd / && "$pjdfstest" -c "$work/remount.toml" -p "$mnt" -s "$secondary" -e -- \
        "${remount_tests[@]/#/pjdfstest::tests::}") >"$work/remount.log" 2>&1
    status_remount=$?
    set -e
else
    status_remount=0
fi
elapsed=$(($(date +%s) - start))
mkdir -p "$(dirname "$log_copy")"
cat "$work/main.log" "$work/remount.log" >"$log_copy"

# Unmount and check the image the suite leaves behind.
umount "$mnt"
flock -w 120 "$image" true || die "logfs-fuse did not let go of the image after umount"
mounted=0
set +e
"$bin_dir/fsck.logfs" -n "$image" >"$work/fsck.log" 2>&1
fsck_status=$?
set -e

# --- Results ---------------------------------------------------------------------------------
# name -> status; the remount run's results replace the main run's "skipped".
declare -A result
while read -r name status; do
    result[$name]=$status
done < <(cat "$work/main.log" "$work/remount.log" |
    sed -nE 's/^([A-Za-z0-9_:]+) +(ok|FAILED|skipped|failed as expected|PASSED UNEXPECTEDLY)$/\1 \2/p' |
    sed 's/failed as expected/FAILED/; s/PASSED UNEXPECTEDLY/ok/')

if [[ ${#result[@]} -eq 0 ]]; then
    cat "$work/main.log" >&2
    die "pjdfstest ran no test (exit status $status_main)"
fi
if grep -q '^Error reading config file' "$work/main.log"; then
    cat "$work/main.log" >&2
    die "pjdfstest could not read its configuration"
fi

declare -A allowed
while IFS= read -r line; do
    line=${line%%$'\r'}
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ ! $line =~ ^([A-Za-z0-9_:]+)[[:space:]]+#[[:space:]]*(.+)$ ]]; then
        die "$allowlist: each entry is 'test::name  # reason': $line"
    fi
    allowed[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done <"$allowlist"

passed=0 failed=0 skipped=0 known=0
unexpected=() known_list=() fixed=()
for name in $(printf '%s\n' "${!result[@]}" | sort); do
    case ${result[$name]} in
    ok)
        passed=$((passed + 1))
        [[ -n ${allowed[$name]:-} ]] && fixed+=("$name")
        ;;
    skipped) skipped=$((skipped + 1)) ;;
    FAILED)
        if [[ -n ${allowed[$name]:-} ]]; then
            known=$((known + 1))
            known_list+=("$name  (${allowed[$name]})")
        else
            failed=$((failed + 1))
            unexpected+=("$name")
        fi
        ;;
    esac
done

echo "pjdfstest $version on logfs-fuse: ${#result[@]} test cases in ${elapsed}s (pjdfstest exit statuses $status_main, $status_remount)"
if [[ $skipped -gt 0 ]]; then
    echo "skipped (and why):"
    cat "$work/main.log" "$work/remount.log" |
        awk -v done="$(printf '%s\n' "${remount_tests[@]}")" '
            BEGIN { n = split(done, d, "\n"); for (i = 1; i <= n; i++) ran[d[i]] = 1 }
            /^[A-Za-z0-9_:]+ +skipped$/ { name = $1; next }
            /^\t/ && name { if (!(name in ran)) { sub(/^\t+/, ""); printf "  %s: %s\n", name, $0 } next }
            { name = "" }'
fi
if [[ ${#known_list[@]} -gt 0 ]]; then
    echo "known failures (expected-failures.txt):"
    printf '  %s\n' "${known_list[@]}"
fi
if [[ ${#fixed[@]} -gt 0 ]]; then
    echo "in expected-failures.txt but passed now (remove them from the list?):"
    printf '  %s\n' "${fixed[@]}"
fi
if [[ ${#unexpected[@]} -gt 0 ]]; then
    echo "UNEXPECTED FAILURES:"
    for name in "${unexpected[@]}"; do
        echo "  $name"
        # The failure message: the indented lines after the test's line.
        cat "$work/main.log" "$work/remount.log" |
            awk -v n="$name" '$1 == n { on = 1; next } on && /^\t/ { print "      " $0; next } { on = 0 }' |
            head -5
    done
fi
if [[ $fsck_status -ne 0 ]]; then
    echo "fsck.logfs -n after pjdfstest: exit $fsck_status"
    cat "$work/fsck.log"
    failed=$((failed + 1))
else
    echo "fsck.logfs -n after pjdfstest: clean"
fi
echo "pjdfstest: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
