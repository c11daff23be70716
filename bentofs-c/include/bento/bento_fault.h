/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Allocation-failure injection for a file-system module's Rust allocations, for tests (the
 * Debian kernels have no failslab). The Rust runtime (bento-kernel's allocator) asks
 * bento_fs_fail_alloc() before every allocation; a file-system module's C stub includes this
 * header once, which defines it with the module's parameters:
 *
 *   fail_alloc_pid       fail only allocations of this process (tgid); 0 (default): never
 *   fail_alloc_interval  fail every Nth allocation of that process (default 1: each)
 *   fail_alloc_times     at most this many failures, counting down; -1: no limit
 *   fail_alloc_failed    failures injected so far (read it; write 0 to reset)
 *
 * It lives in the module itself, not in bentofs.ko, so modules built with it still load into
 * a bentofs.ko that never heard of it. Allocations bentofs makes in C are not covered.
 */
#ifndef BENTO_FAULT_H
#define BENTO_FAULT_H

#include <linux/moduleparam.h>
#include <linux/sched.h>

static int fail_alloc_pid;
module_param(fail_alloc_pid, int, 0600);
MODULE_PARM_DESC(fail_alloc_pid, "Tests: fail the Rust allocations of this process (0: off)");
static unsigned int fail_alloc_interval = 1;
module_param(fail_alloc_interval, uint, 0600);
MODULE_PARM_DESC(fail_alloc_interval, "Tests: fail every Nth allocation of fail_alloc_pid");
static int fail_alloc_times = -1;
module_param(fail_alloc_times, int, 0600);
MODULE_PARM_DESC(fail_alloc_times, "Tests: failures left to inject (-1: no limit)");
static unsigned int fail_alloc_failed;
module_param(fail_alloc_failed, uint, 0600);
MODULE_PARM_DESC(fail_alloc_failed, "Tests: failures injected so far");

static unsigned int bento_fail_alloc_seen;

bool bento_fs_fail_alloc(void);
bool bento_fs_fail_alloc(void)
{
	int pid = READ_ONCE(fail_alloc_pid), times;
	unsigned int every;

	if (likely(!pid) || task_tgid_nr(current) != pid)
		return false;
	/* One process, usually one task: the counters need no atomicity beyond test use. */
	times = READ_ONCE(fail_alloc_times);
	if (!times)
		return false;
	every = max(READ_ONCE(fail_alloc_interval), 1U);
	if (++bento_fail_alloc_seen % every)
		return false;
	if (times > 0)
		WRITE_ONCE(fail_alloc_times, times - 1);
	WRITE_ONCE(fail_alloc_failed, READ_ONCE(fail_alloc_failed) + 1);
	return true;
}

#endif
