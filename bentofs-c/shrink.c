// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory pressure: a shrinker per mount asks the file system to give back clean cache entries
 * (bento_ops.shrink). The op is optional: a module built before it existed has a shorter table
 * (ops_size), and its mounts count nothing. Reclaim never waits here: the upgrade lock is only
 * tried, and the file system answers BENTO_SHRINK_BUSY rather than wait for a call in progress.
 */
#define pr_fmt(fmt) "bento: " fmt

#include "bentofs.h"

static bool bento_has_shrink(const struct bento_ops *ops)
{
	return ops->ops_size >= offsetofend(struct bento_ops, shrink) && ops->shrink;
}

/*
 * nr 0: count; else scan. Returns BENTO_SHRINK_BUSY when the mount cannot be asked now. A call
 * into the instance like any other (a failed mount is never called; a panic fails the mount),
 * but the upgrade lock is only tried.
 */
static u64 bento_shrink_call(struct bento_sb_info *sbi, u64 nr)
{
	struct bento_call_ctx ctx;
	u64 ret = 0;

	if (bento_failed(sbi))
		return BENTO_SHRINK_BUSY;
	if (sbi->quiesce && !percpu_down_read_trylock(&sbi->upgrade))
		return BENTO_SHRINK_BUSY;
	if (!bento_failed(sbi) && sbi->fs && bento_has_shrink(sbi->ops)) {
		bento_ctx_begin(&ctx, sbi, sbi->type, "shrink", true);
		ret = bento_guard(&ctx, sbi->ops, shrink, sbi->fs, nr);
		bento_ctx_end(&ctx);
		if (ctx.panicked)
			ret = BENTO_SHRINK_BUSY;
	}
	bento_sem_up(sbi);
	return ret;
}

static struct bento_sb_info *bento_shrinker_sbi(struct shrinker *s)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	return s->private_data;
#else
	return container_of(s, struct bento_sb_info, shrinker);
#endif
}

static unsigned long bento_shrink_count(struct shrinker *s, struct shrink_control *sc)
{
	u64 n;

	/* As the VFS's own superblock shrinker: not from reclaim inside a file system (NOFS). */
	if (!(sc->gfp_mask & __GFP_FS))
		return 0;
	n = bento_shrink_call(bento_shrinker_sbi(s), 0);
	if (n == BENTO_SHRINK_BUSY)
		return 0;
	return n ? min_t(u64, n, LONG_MAX) : SHRINK_EMPTY;
}

static unsigned long bento_shrink_scan(struct shrinker *s, struct shrink_control *sc)
{
	u64 n;

	if (!(sc->gfp_mask & __GFP_FS))
		return SHRINK_STOP;
	n = bento_shrink_call(bento_shrinker_sbi(s), max_t(u64, sc->nr_to_scan, 1));
	if (n == BENTO_SHRINK_BUSY)
		return SHRINK_STOP;
	return min_t(u64, n, LONG_MAX);
}

/* After a successful mount. Without a shrinker the mount works; its caches stay bounded. */
void bento_shrinker_start(struct bento_sb_info *sbi)
{
	struct super_block *sb = sbi->sb;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	struct shrinker *s = shrinker_alloc(0, "bento-%s:%s", sbi->name, sb->s_id);

	if (!s) {
		pr_warn("%s on %s: no shrinker (out of memory)\n", sbi->name, sb->s_id);
		return;
	}
	s->count_objects = bento_shrink_count;
	s->scan_objects = bento_shrink_scan;
	s->seeks = DEFAULT_SEEKS;
	s->private_data = sbi;
	shrinker_register(s);
	sbi->shrinker = s;
#else
	sbi->shrinker.count_objects = bento_shrink_count;
	sbi->shrinker.scan_objects = bento_shrink_scan;
	sbi->shrinker.seeks = DEFAULT_SEEKS;
	if (register_shrinker(&sbi->shrinker, "bento-%s:%s", sbi->name, sb->s_id)) {
		pr_warn("%s on %s: no shrinker (out of memory)\n", sbi->name, sb->s_id);
		return;
	}
	sbi->shrinker_on = true;
#endif
}

/* Before the instance goes; returns with no shrinker call running. Idempotent. */
void bento_shrinker_stop(struct bento_sb_info *sbi)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	if (sbi->shrinker)
		shrinker_free(sbi->shrinker);
	sbi->shrinker = NULL;
#else
	if (sbi->shrinker_on)
		unregister_shrinker(&sbi->shrinker);
	sbi->shrinker_on = false;
#endif
}
