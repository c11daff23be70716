# Part n of the kernel suite, sourced by guest.sh (its helpers, $DISK_NOMEM): allocation
# failures and memory pressure.
#
# nomem-t (tests/vm/bentotest/nomem-t.c) is a workload in which every call must succeed or fail
# with ENOMEM while its allocations fail, through two injectors. The Debian kernels have neither
# failslab / fail_page_alloc (CONFIG_FAULT_INJECTION) nor bpf_override_return
# (CONFIG_FUNCTION_ERROR_INJECTION), so: logfs.ko's fail_alloc_* parameters
# (bentofs-c/include/bento/bento_fault.h) fail every Nth Rust allocation of the process; then
# bento_kfail.ko (tests/vm/bentotest/kfail.c) does what failslab and fail_page_alloc with a task
# filter do, through kprobes on the allocators: every Nth slab or page allocation the process's
# system calls make fails, in the VFS, the page cache, bentofs and logfs alike (a second pass
# includes the page cache's own pages). Then, without injection: the mount still works, the
# files hold what was written, data from before is intact, umount, fsck clean, mount again, the
# same. Last, memory pressure: drop_caches runs the mount's shrinker, which gives back clean node,
# directory and NAT cache entries.
part_begin n "allocation failures (logfs fail_alloc_*, kernel: bento_kfail), memory pressure (shrinker)"
N=$DISK_NOMEM P=/sys/module/logfs/parameters
# count KEY OUTPUT: the number after KEY in nomem-t's summary line, 0 if none
count() { echo "$2" | sed -n "s/.* $1 \([0-9]*\).*/\1/p" | grep . || echo 0; }
t "mkfs.logfs" mkfs.logfs -q "$N"
t "mount" mnt_logfs "$N" /mnt/b
t "data from before: 8 MiB" sh -c "head -c 8388608 /dev/urandom >/mnt/b/before && sync"
sum_before=$(md5sum </mnt/b/before)
teq "fail_alloc_pid is 0 (off) by default" "0" cat $P/fail_alloc_pid
t "mkdir w" mkdir /mnt/b/w
kclear
# Every interval from 1 (each allocation fails: hardly a call succeeds) to 97.
total_enomem=0
for every in 1 2 3 5 7 11 17 31 97; do
    t0=$(up)
    if out=$(nomem-t work /mnt/b/w/e$every "$every" 3 2>&1); then
        ok "every ${every}th allocation failing: only ENOMEM ($out)$(took "$t0")"
    else
        nok "every ${every}th allocation failing: other failures"; echo "$out" | head -20 | sed 's/^/#   /'
    fi
    total_enomem=$((total_enomem + $(count enomem "$out")))
done
teq "the injection is off again" "0" cat $P/fail_alloc_pid
t "some calls failed with ENOMEM ($total_enomem)" test "$total_enomem" -gt 20
kclean "allocation failures: no oops, BUG or warning"

# The kernel's allocations: bento_kfail fails every Nth of nomem-t's slab and page allocations.
K=/sys/module/bento_kfail/parameters
t "insmod bento_kfail" insmod /usr/lib/bento/bento_kfail.ko
probes=$(dmesg | sed -n 's/.*bento_kfail: probing //p' | sort -u | tr '\n' ' ')
t "... probes slab and page allocators: $probes" sh -c "echo '$probes' | grep -q kmem_cache_alloc && echo '$probes' | grep -q __alloc_pages"
t "mkdir k" mkdir /mnt/b/k
kinj_enomem=0 kinj_injected=0
# ignore_highmem=Y leaves user memory and page-cache pages alone (fail_page_alloc's default);
# the second pass fails page-cache pages too.
for highmem in Y N; do
    echo "$highmem" >$K/ignore_highmem
    for every in 1 2 3 5 7 11 13 17 23 31 47 97; do
        t0=$(up)
        if out=$(timeout -s KILL 300 nomem-t work /mnt/b/k/h$highmem-e$every "$every" 2 kernel 2>&1); then
            ok "kernel: every ${every}th allocation failing (ignore_highmem=$highmem): only ENOMEM ($out)$(took "$t0")"
        else
            nok "kernel: every ${every}th allocation failing (ignore_highmem=$highmem): other failures"; echo "$out" | head -20 | sed 's/^/#   /'
        fi
        kinj_enomem=$((kinj_enomem + $(count enomem "$out")))
        kinj_injected=$((kinj_injected + $(count injected "$out")))
    done
done
teq "the kernel injection is off again" "0" cat $K/pid
t "allocations failed ($kinj_injected) and calls saw ENOMEM ($kinj_enomem)" \
    test "$kinj_injected" -gt 100 -a "$kinj_enomem" -gt 20
t "rmmod bento_kfail" rmmod bento_kfail
kclean "kernel allocation failures: no oops, BUG or warning"
knot "... and the volume did not fail" "read-only until remounted"
t "the mount still works: a new file" sh -c 'echo after >/mnt/b/after && test "$(cat /mnt/b/after)" = after'
t "files written under failures hold what was written" nomem-t check /mnt/b/w
t "... and under the kernel's failures" nomem-t check /mnt/b/k
teq "data from before intact" "$sum_before" sh -c "md5sum </mnt/b/before"
manifest /mnt/b /tmp/nomem-1.tree
t "umount" umount /mnt/b
fsck_clean "fsck.logfs -n: clean" "$N"
t "mount again" mnt_logfs "$N" /mnt/b
manifest /mnt/b /tmp/nomem-2.tree
cmpf "the same tree after the remount" /tmp/nomem-1.tree /tmp/nomem-2.tree
t "... and the same data" nomem-t check /mnt/b/w
t "... under both" nomem-t check /mnt/b/k
teq "data from before intact" "$sum_before" sh -c "md5sum </mnt/b/before"

# Memory pressure: reading the tree fills the caches; drop_caches asks every shrinker.
stat_of() { bento-t getx /mnt/b trusted.logfs.stats | sed -n "s/^$1 //p"; }
dropcaches
t "read everything (fills the node and directory caches)" sh -c 'find /mnt/b -type f -exec cat {} + >/dev/null'
nodes=$(stat_of cached_nodes)
t "cached nodes: $nodes" test "${nodes:-0}" -gt 20
echo 2 >/proc/sys/vm/drop_caches
after=$(stat_of cached_nodes)
t "drop_caches: the shrinker gave nodes back ($nodes -> $after)" test "${after:-0}" -lt "$nodes"
t "... and they come back when needed" nomem-t check /mnt/b/w
t "umount" umount /mnt/b
fsck_clean "fsck.logfs -n: clean" "$N"
kclean "memory pressure: no oops, BUG or warning"
part_end
