// SPDX-License-Identifier: GPL-2.0-only
/*
 * bento_kfail.ko: the kernel's allocation failure injection (failslab and fail_page_alloc with
 * a task filter) for a kernel that lacks it. Debian's kernels set neither CONFIG_FAULT_INJECTION
 * nor CONFIG_FUNCTION_ERROR_INJECTION, so this module puts kprobes on the allocators' entry
 * points instead and makes a chosen call return NULL at once, as bpf_override_return() does:
 * the probe sends the call to a bare `ret` (kfail_ret.S) with a NULL return value. Every slab
 * and page allocation of the chosen process is covered: the VFS's, the page cache's, bentofs's
 * and the file system's.
 *
 * Parameters (/sys/module/bento_kfail/parameters/), as failslab's debugfs files:
 *   pid              the process (tgid) whose allocations fail; 0 (default): off
 *   interval         fail every interval-th eligible allocation (default 1)
 *   times            fail at most this many (default -1: no limit)
 *   ignore_highmem   leave __GFP_HIGHMEM page allocations alone (user memory and the page
 *                    cache), as fail_page_alloc does by default (default Y)
 *   injected         allocations failed so far (write 0 to reset)
 * __GFP_NOFAIL allocations never fail; neither do those outside process context.
 */
#include <linux/gfp.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/sched.h>

void bento_kfail_return(void);

static int pid;
module_param(pid, int, 0644);
static int interval = 1;
module_param(interval, int, 0644);
static int times = -1;
module_param(times, int, 0644);
static bool ignore_highmem = true;
module_param(ignore_highmem, bool, 0644);
static atomic_t injected = ATOMIC_INIT(0);
module_param_named(injected, injected.counter, int, 0644);
static atomic_t eligible = ATOMIC_INIT(0);

/* The gfp argument's position; a slab entry point, or the page allocator. */
struct site {
	struct kprobe kp;
	unsigned int gfp_arg;
	bool pages;
};

#ifdef CONFIG_SLAB_BUCKETS
#define BUCKET_GFP 2	/* DECL_BUCKET_PARAMS(size, b), gfp */
#else
#define BUCKET_GFP 1
#endif

/*
 * The innermost exported entry points of 6.1 and 6.12 (the latter's carry _noprof); a symbol the
 * running kernel lacks is skipped. Nested ones may both count a call, which only shifts the
 * interval.
 */
static struct site sites[] = {
	{ .kp.symbol_name = "kmem_cache_alloc", .gfp_arg = 1 },
	{ .kp.symbol_name = "kmem_cache_alloc_lru", .gfp_arg = 2 },
	{ .kp.symbol_name = "kmem_cache_alloc_node", .gfp_arg = 1 },
	{ .kp.symbol_name = "__kmem_cache_alloc_node", .gfp_arg = 1 },
	{ .kp.symbol_name = "__alloc_pages", .gfp_arg = 0, .pages = true },
	{ .kp.symbol_name = "kmem_cache_alloc_noprof", .gfp_arg = 1 },
	{ .kp.symbol_name = "kmem_cache_alloc_lru_noprof", .gfp_arg = 2 },
	{ .kp.symbol_name = "kmem_cache_alloc_node_noprof", .gfp_arg = 1 },
	{ .kp.symbol_name = "__kmalloc_noprof", .gfp_arg = 1 },
	{ .kp.symbol_name = "__kmalloc_node_noprof", .gfp_arg = BUCKET_GFP },
	{ .kp.symbol_name = "__kmalloc_node_track_caller_noprof", .gfp_arg = BUCKET_GFP },
	{ .kp.symbol_name = "__kmalloc_cache_noprof", .gfp_arg = 1 },
	{ .kp.symbol_name = "__kmalloc_cache_node_noprof", .gfp_arg = 1 },
	{ .kp.symbol_name = "__alloc_pages_noprof", .gfp_arg = 0, .pages = true },
};

static int kfail_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct site *s = container_of(kp, struct site, kp);
	int target = READ_ONCE(pid), every = READ_ONCE(interval), limit = READ_ONCE(times);
	gfp_t gfp;

	if (!target || !in_task() || current->tgid != target)
		return 0;
	gfp = (gfp_t)regs_get_kernel_argument(regs, s->gfp_arg);
	if (gfp & __GFP_NOFAIL)
		return 0;
	if (s->pages && (gfp & __GFP_HIGHMEM) && READ_ONCE(ignore_highmem))
		return 0;
	if (every > 1 && atomic_inc_return(&eligible) % every)
		return 0;
	if (limit >= 0 && atomic_read(&injected) >= limit)
		return 0;
	atomic_inc(&injected);
	regs_set_return_value(regs, 0);
	instruction_pointer_set(regs, (unsigned long)bento_kfail_return);
	return 1;	/* the handler moved the instruction pointer */
}

static int __init kfail_init(void)
{
	unsigned int i, probed = 0, pagesites = 0;

	for (i = 0; i < ARRAY_SIZE(sites); i++) {
		sites[i].kp.pre_handler = kfail_pre;
		if (register_kprobe(&sites[i].kp)) {
			sites[i].kp.symbol_name = NULL;
			continue;
		}
		pr_info("bento_kfail: probing %s\n", sites[i].kp.symbol_name);
		probed++;
		pagesites += sites[i].pages;
	}
	if (!pagesites || probed == pagesites) {
		pr_err("bento_kfail: found no slab or no page allocator entry point to probe\n");
		for (i = 0; i < ARRAY_SIZE(sites); i++)
			if (sites[i].kp.symbol_name)
				unregister_kprobe(&sites[i].kp);
		return -ENOENT;
	}
	return 0;
}

static void __exit kfail_exit(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sites); i++)
		if (sites[i].kp.symbol_name)
			unregister_kprobe(&sites[i].kp);
}

module_init(kfail_init);
module_exit(kfail_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test-only allocation failure injection through kprobes (failslab's task filter)");
