#!/usr/bin/env bash
# Boots the Debian cloud kernel under QEMU/TCG with an initramfs from mkinitramfs.sh
# and exits with the test's result.
#
#   run-vm.sh [options] INITRAMFS [DISK_IMAGE...]
#
#   -d IMAGE     attach a raw disk image (repeatable; positional images work too)
#   -n SIZE      attach a fresh sparse scratch disk of SIZE (e.g. 1G; repeatable,
#                deleted afterwards)
#   -t SECONDS   hard timeout                        (env VM_TIMEOUT, default 600)
#   -m MEM       guest memory                        (env VM_MEM, default 2G)
#   -c CPUS      guest CPUs                          (env VM_SMP, default 2;
#                CPU model: env VM_CPU, default max)
#   -l LOGFILE   console log                         (env VM_LOG, default ./vm-console.log)
#   -a ARGS      extra kernel command line arguments (env VM_APPEND)
#   -k KERNEL    kernel image                        (env VM_KERNEL, default: the
#                cloud kernel tests/vm/setup.sh installed; VM_KREL picks another ABI)
#   -W           don't fail on kernel BUG/Oops/WARNING/Call Trace in the log
#   -i           interactive: boot to a shell (vmtest.shell=1), no log scan; Ctrl-A x quits
#   -q           don't stream the console, only write the log
#
# Disks are namespaces 1..N of one NVMe controller, so in the guest they are
# /dev/nvme0n1, /dev/nvme0n2, ... in command-line order (-d/-n options in the
# order given, then positional images).
#
# Exit status: the test's own exit code (keep those below 240), or
#   240  timeout          241  no VMTEST-RESULT marker (guest crashed/panicked)
#   242  the test passed but the kernel log has BUG:/Oops/WARNING:/Call Trace
#   243  usage or environment error
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

EXIT_TIMEOUT=240 EXIT_NO_MARKER=241 EXIT_KERNEL_ISSUE=242 EXIT_USAGE=243
fail_usage() { echo "run-vm: $*" >&2; exit $EXIT_USAGE; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit $EXIT_USAGE; }

timeout_s=${VM_TIMEOUT:-600} mem=${VM_MEM:-2G} smp=${VM_SMP:-2}
log=${VM_LOG:-./vm-console.log} append=${VM_APPEND:-} kernel=${VM_KERNEL:-}
scan=1 interactive='' quiet=''
disks=()
while getopts d:n:t:m:c:l:a:k:Wiqh opt; do
    case $opt in
        d) disks+=("$OPTARG") ;;
        n) disks+=("scratch:$OPTARG") ;;
        t) timeout_s=$OPTARG ;;
        m) mem=$OPTARG ;;
        c) smp=$OPTARG ;;
        l) log=$OPTARG ;;
        a) append="$append $OPTARG" ;;
        k) kernel=$OPTARG ;;
        W) scan= ;;
        i) interactive=1 ;;
        q) quiet=1 ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
initramfs=$1; shift
disks+=("$@")

[[ -f $initramfs ]] || fail_usage "initramfs not found: $initramfs"
command -v qemu-system-x86_64 >/dev/null || fail_usage "qemu-system-x86_64 missing; run tests/vm/setup.sh"
if [[ -z $kernel ]]; then
    krel=$( (vm_krel) 2>&1) || fail_usage "$krel"
    kernel=$(vm_kernel_image "$krel") || fail_usage "no kernel image for $krel; run tests/vm/setup.sh"
fi
[[ -f $kernel ]] || fail_usage "kernel not found: $kernel"

workdir=$(mktemp -d /tmp/run-vm.XXXXXX)
qemu_pid=
# shellcheck disable=SC2317  # invoked via trap
cleanup() {
    [[ -z $qemu_pid ]] || kill "$qemu_pid" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for i in "${!disks[@]}"; do
    if [[ ${disks[$i]} == scratch:* ]]; then
        truncate -s "${disks[$i]#scratch:}" "$workdir/scratch$i.img" || fail_usage "bad scratch size ${disks[$i]}"
        disks[i]=$workdir/scratch$i.img
    fi
done

qemu=(qemu-system-x86_64 -accel tcg -cpu "${VM_CPU:-max}" -m "$mem" -smp "$smp"
      -nographic -no-reboot -nic none -kernel "$kernel" -initrd "$initramfs")
if [[ ${#disks[@]} -gt 0 ]]; then
    qemu+=(-device "nvme,id=nvme0,serial=vmtest")
    for i in "${!disks[@]}"; do
        [[ -f ${disks[$i]} || -b ${disks[$i]} ]] || fail_usage "disk not found: ${disks[$i]}"
        qemu+=(-drive "file=${disks[$i]},if=none,id=disk$i,format=raw,cache=${VM_DISK_CACHE:-writeback}"
               -device "nvme-ns,drive=disk$i,bus=nvme0,nsid=$((i + 1))")
    done
fi
# panic=-1 + -no-reboot: a guest panic ends QEMU at once instead of waiting for the timeout.
cmdline="console=ttyS0 loglevel=7 panic=-1 vmtest.disks=${#disks[@]}"
[[ -z $interactive ]] || cmdline+=" vmtest.shell=1"
qemu+=(-append "$cmdline${append:+ $append}")

if [[ -n $interactive ]]; then
    rc=0; "${qemu[@]}" || rc=$?
    exit $rc
fi

mkdir -p "$(dirname "$log")"
start=$EPOCHREALTIME
# QEMU's output, CRs stripped, goes to the log (and stdout unless -q). QEMU runs in
# the background under our own timer so that a timeout is told apart from a crash.
fifo=$workdir/console
mkfifo "$fifo"
"${qemu[@]}" </dev/null >"$fifo" 2>&1 &
qemu_pid=$!
if [[ -n $quiet ]]; then
    sed -u 's/\r//g' <"$fifo" >"$log" &
else
    sed -u 's/\r//g' <"$fifo" | tee "$log" &
fi
reader_pid=$!

timed_out=
deadline=$((SECONDS + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
        timed_out=1
        kill "$qemu_pid" 2>/dev/null || true
        break
    fi
    sleep 0.2
done
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
wait "$reader_pid" || true
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# The console usually ends mid-line ("reboot: Power down"); start ours on a fresh one.
[[ -n $quiet || ! -s $log || -z $(tail -c1 "$log") ]] || echo
summary() { echo "run-vm: $* (wall ${elapsed}s, log $log)" >&2; }

tail_log() { [[ -z $quiet ]] || { echo "--- last lines of $log:"; tail -n 25 "$log"; } >&2; }

if [[ -n $timed_out ]]; then
    tail_log
    summary "TIMEOUT after ${timeout_s}s"
    exit $EXIT_TIMEOUT
fi
result=$(sed -n 's/^.*VMTEST-RESULT: \([0-9][0-9]*\).*$/\1/p' "$log" | tail -n1)
if [[ -z $result ]]; then
    tail_log
    summary "no VMTEST-RESULT marker (qemu exit $qemu_rc; guest crashed or panicked?)"
    exit $EXIT_NO_MARKER
fi

# Only kernel lines (they carry a "[ seconds.micros]" timestamp) are scanned, so a
# test that prints "WARNING:" itself doesn't trip this.
kernel_issue_re='\[ *[0-9]+\.[0-9]+\] .*(BUG:|kernel BUG at|Oops|WARNING:|Call Trace|general protection fault|Kernel panic|UBSAN:)'
if [[ -n $scan ]] && grep -Eq "$kernel_issue_re" "$log"; then
    echo "run-vm: kernel problems in the log:" >&2
    grep -E "$kernel_issue_re" "$log" | head -n 20 >&2
    if [[ $result -eq 0 ]]; then
        summary "test passed but the kernel log has problems"
        exit $EXIT_KERNEL_ISSUE
    fi
fi
summary "VMTEST-RESULT $result"
exit "$result"
