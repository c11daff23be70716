// SPDX-License-Identifier: GPL-2.0-only
/*
 * libBentoKS: kernel services for Rust file systems (see the bottom of bento_abi.h). These wrap
 * kernel APIs that are inline functions or macros in C, so Rust can call them through a plain
 * C ABI.
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/blkdev.h>
#include <linux/bio.h>
#include <linux/log2.h>
#include <linux/printk.h>
#include <linux/timekeeping.h>
#include <linux/bug.h>
#include <linux/ratelimit.h>
#include "bentofs.h"

/* ---- memory -------------------------------------------------------------------------------- */

/**
 * bento_ks_alloc - allocate kernel memory
 * @size: bytes (0 is treated as 1)
 * @align: a power of two, or 0 for "no requirement"
 * @zeroed: nonzero to zero the memory
 *
 * Alignment comes from kmalloc's guarantees: ARCH_KMALLOC_MINALIGN always, and natural
 * alignment for power-of-two sizes. So a stricter alignment is served by rounding the size up
 * to a power of two (at least @align); large sizes with an alignment of at most PAGE_SIZE come
 * from kvmalloc (kmalloc, or page-aligned vmalloc). Alignments above PAGE_SIZE need physically
 * contiguous memory of the rounded size and may fail for large sizes (at most
 * KMALLOC_MAX_SIZE). Free with bento_ks_free().
 *
 * Return: the memory, or NULL.
 */
void *bento_ks_alloc(u64 size, u64 align, u32 zeroed)
{
	gfp_t gfp = GFP_KERNEL | __GFP_NOWARN | (zeroed ? __GFP_ZERO : 0);

	if (!align)
		align = 1;
	if (!is_power_of_2(align))
		return NULL;
	if (!size)
		size = 1;
	if (size > INT_MAX || align > KMALLOC_MAX_SIZE)
		return NULL;

	if (align <= ARCH_KMALLOC_MINALIGN)
		return size <= PAGE_SIZE ? kmalloc(size, gfp) : kvmalloc(size, gfp);
	if (align <= PAGE_SIZE && size > PAGE_SIZE)
		return kvmalloc(size, gfp);
	/* Power-of-two sizes are naturally aligned by kmalloc. */
	size = roundup_pow_of_two(max(size, align));
	if (size > KMALLOC_MAX_SIZE)
		return NULL;
	return kmalloc(size, gfp);
}
EXPORT_SYMBOL_GPL(bento_ks_alloc);

void bento_ks_free(void *ptr)
{
	kvfree(ptr);
}
EXPORT_SYMBOL_GPL(bento_ks_free);

/* ---- sleeping locks ------------------------------------------------------------------------ */

/*
 * The locks a call holds are recorded in its context (bentofs.h), so a panic can release them:
 * calls of the mount waiting for one get it, see the mount failed and are thrown out at once
 * (bento_got_lock), instead of waiting for ever. They must never go further: bento-api pairs
 * each of these locks with a spin lock on the data, which the abandoned frames hold for good.
 * A lock taken outside a call, or beyond BENTO_HELD_MAX, is not recorded (a panic leaves it
 * held: its waiters wait for ever, and the mount cannot be unmounted).
 */
static void bento_release_lock(void *lock, int kind)
{
	switch (kind) {
	case BENTO_HELD_MUTEX:
		mutex_unlock(lock);
		break;
	case BENTO_HELD_READ:
		up_read(lock);
		break;
	default:
		up_write(lock);
		break;
	}
}

static void bento_got_lock(void *lock, int kind)
{
	struct bento_call_ctx *ctx = bento_current_ctx();

	if (!ctx)
		return;
	if (ctx->fail_mount && bento_failed(ctx->sbi)) {
		/* The mount failed while we waited: the data behind the lock may be torn. */
		bento_release_lock(lock, kind);
		bento_abandon_call(ctx);
	} else if (ctx->nr_held < BENTO_HELD_MAX) {
		ctx->held[ctx->nr_held].lock = lock;
		ctx->held[ctx->nr_held].kind = kind;
		ctx->nr_held++;
	} else {
		pr_warn_once("%s: more than %d locks held in one call: a panic would leave the others held\n",
			     ctx->sbi->sb->s_id, BENTO_HELD_MAX);
	}
}

static void bento_put_lock(void *lock)
{
	struct bento_call_ctx *ctx = bento_current_ctx();
	unsigned int i;

	if (!ctx)
		return;
	for (i = ctx->nr_held; i-- > 0;) {
		if (ctx->held[i].lock == lock) {
			ctx->held[i] = ctx->held[--ctx->nr_held];
			return;
		}
	}
}

void *bento_ks_mutex_new(void)
{
	struct mutex *m = kmalloc(sizeof(*m), GFP_KERNEL);

	if (m)
		mutex_init(m);
	return m;
}
EXPORT_SYMBOL_GPL(bento_ks_mutex_new);

void bento_ks_mutex_lock(void *m)
{
	mutex_lock(m);
	bento_got_lock(m, BENTO_HELD_MUTEX);
}
EXPORT_SYMBOL_GPL(bento_ks_mutex_lock);

void bento_ks_mutex_unlock(void *m)
{
	bento_put_lock(m);
	mutex_unlock(m);
}
EXPORT_SYMBOL_GPL(bento_ks_mutex_unlock);

void bento_ks_mutex_free(void *m)
{
	if (m)
		mutex_destroy(m);
	kfree(m);
}
EXPORT_SYMBOL_GPL(bento_ks_mutex_free);

void *bento_ks_rwsem_new(void)
{
	struct rw_semaphore *s = kmalloc(sizeof(*s), GFP_KERNEL);

	if (s)
		init_rwsem(s);
	return s;
}
EXPORT_SYMBOL_GPL(bento_ks_rwsem_new);

void bento_ks_rwsem_read(void *s)
{
	down_read(s);
	bento_got_lock(s, BENTO_HELD_READ);
}
EXPORT_SYMBOL_GPL(bento_ks_rwsem_read);

void bento_ks_rwsem_read_unlock(void *s)
{
	bento_put_lock(s);
	up_read(s);
}
EXPORT_SYMBOL_GPL(bento_ks_rwsem_read_unlock);

void bento_ks_rwsem_write(void *s)
{
	down_write(s);
	bento_got_lock(s, BENTO_HELD_WRITE);
}
EXPORT_SYMBOL_GPL(bento_ks_rwsem_write);

void bento_ks_rwsem_write_unlock(void *s)
{
	bento_put_lock(s);
	up_write(s);
}
EXPORT_SYMBOL_GPL(bento_ks_rwsem_write_unlock);

void bento_ks_rwsem_free(void *s)
{
	kfree(s);
}
EXPORT_SYMBOL_GPL(bento_ks_rwsem_free);

/* ---- block I/O ----------------------------------------------------------------------------- */

static struct page *bento_buf_page(const void *p)
{
	return is_vmalloc_addr(p) ? vmalloc_to_page(p) : virt_to_page(p);
}

/*
 * Synchronous I/O of [block * 4096, + len) to or from `buf`, in as many bios as it takes. The
 * buffer must be aligned to the device's logical block size and len a multiple of it (see
 * bento_bdev_io() for other buffers). With BENTO_IO_PREFLUSH the first bio flushes the cache
 * before writing; with BENTO_IO_FUA every bio is written through.
 */
static int bento_bdev_rw(struct block_device *bdev, u64 block, void *buf, u64 len,
			 blk_opf_t op, u32 flags)
{
	sector_t sector = block << (BENTO_BLOCK_SHIFT - SECTOR_SHIFT);
	unsigned int lbs;
	bool first = true;
	char *p = buf;
	u64 bytes;
	int err = 0;

	if (!bdev || !buf)
		return -EINVAL;
	if (!len)
		return 0;
	lbs = bdev_logical_block_size(bdev);
	bytes = bdev_nr_bytes(bdev);
	if ((len & (lbs - 1)) || block > (bytes >> BENTO_BLOCK_SHIFT) ||
	    len > bytes - (block << BENTO_BLOCK_SHIFT))
		return -EINVAL;

	while (len && !err) {
		unsigned int nr_vecs;
		struct bio *bio;
		blk_opf_t opf = op;

		if (op == REQ_OP_WRITE) {
			if ((flags & BENTO_IO_PREFLUSH) && first)
				opf |= REQ_PREFLUSH;
			if (flags & BENTO_IO_FUA)
				opf |= REQ_FUA;
		}
		nr_vecs = min_t(u64, BIO_MAX_VECS,
				DIV_ROUND_UP(offset_in_page(p) + len, PAGE_SIZE));
		bio = bio_alloc(bdev, nr_vecs, opf, GFP_NOIO);
		bio->bi_iter.bi_sector = sector;
		while (len) {
			unsigned int off = offset_in_page(p);
			unsigned int n = min_t(u64, PAGE_SIZE - off, len);

			if (bio_add_page(bio, bento_buf_page(p), n, off) != n)
				break;
			p += n;
			len -= n;
			sector += n >> SECTOR_SHIFT;
		}
		if (!bio->bi_iter.bi_size) {
			bio_put(bio);
			return -EIO;
		}
		/* Whole logical blocks: only the buffer's ends may be partial pages, and they
		 * are block-aligned. */
		if (submit_bio_wait(bio))
			err = -EIO;
		bio_put(bio);
		first = false;
	}
	return err;
}

/* Any buffer: one not aligned to the logical block size goes through an aligned copy. */
static int bento_bdev_io(struct block_device *bdev, u64 block, void *buf, u64 len,
			 blk_opf_t op, u32 flags)
{
	void *bounce;
	int err;

	if (!bdev || !buf || (len & (bdev_logical_block_size(bdev) - 1)))
		return -EINVAL;
	if (!len)
		return 0;
	if (!((uintptr_t)buf & (bdev_logical_block_size(bdev) - 1))) {
		if (op == REQ_OP_WRITE && is_vmalloc_addr(buf))
			flush_kernel_vmap_range(buf, len);
		err = bento_bdev_rw(bdev, block, buf, len, op, flags);
		if (!err && op == REQ_OP_READ && is_vmalloc_addr(buf))
			invalidate_kernel_vmap_range(buf, len);
		return err;
	}
	if (len > INT_MAX)
		return -EINVAL;
	/* kvmalloc of a multiple of 512 bytes: 512-byte aligned or better */
	bounce = kvmalloc(len, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	if (op == REQ_OP_WRITE)
		memcpy(bounce, buf, len);
	err = bento_bdev_rw(bdev, block, bounce, len, op, flags);
	if (!err && op == REQ_OP_READ)
		memcpy(buf, bounce, len);
	kvfree(bounce);
	return err;
}

int bento_ks_bdev_read(void *bdev, u64 block, void *buf, u64 len)
{
	return bento_bdev_io(bdev, block, buf, len, REQ_OP_READ, 0);
}
EXPORT_SYMBOL_GPL(bento_ks_bdev_read);

int bento_ks_bdev_write(void *bdev, u64 block, const void *buf, u64 len, u32 flags)
{
	return bento_bdev_io(bdev, block, (void *)buf, len, REQ_OP_WRITE, flags);
}
EXPORT_SYMBOL_GPL(bento_ks_bdev_write);

int bento_ks_bdev_flush(void *bdev)
{
	if (!bdev)
		return -EINVAL;
	return blkdev_issue_flush(bdev) ? -EIO : 0;
}
EXPORT_SYMBOL_GPL(bento_ks_bdev_flush);

int bento_ks_bdev_discard(void *bdev, u64 block, u64 count)
{
	struct block_device *b = bdev;
	u64 blocks;
	int err;

	if (!b)
		return -EINVAL;
	blocks = bdev_nr_bytes(b) >> BENTO_BLOCK_SHIFT;
	if (block > blocks || count > blocks - block)
		return -EINVAL;
	if (!count || !bdev_max_discard_sectors(b))
		return 0;
	err = blkdev_issue_discard(b, block << (BENTO_BLOCK_SHIFT - SECTOR_SHIFT),
				   count << (BENTO_BLOCK_SHIFT - SECTOR_SHIFT), GFP_NOFS);
	if (err == -EOPNOTSUPP)
		return 0;
	return err ? -EIO : 0;
}
EXPORT_SYMBOL_GPL(bento_ks_bdev_discard);

/* ---- time and log -------------------------------------------------------------------------- */

/*
 * The clock of current_time(), which the VFS uses for the times it sets itself (a write's mtime,
 * atime): with a finer clock here, a new file's atime from the file system could be later than
 * the mtime of the write right after it, and relatime would then never update it.
 */
void bento_ks_time_now(struct bento_timespec *ts)
{
	struct timespec64 now;

	ktime_get_coarse_real_ts64(&now);
	bento_to_ts(ts, now);
}
EXPORT_SYMBOL_GPL(bento_ks_time_now);

/* The message carries the file system's own prefix; at most 1 KiB of it is printed. */
void bento_ks_log(u32 level, const char *msg, u64 len)
{
	char lvl[3] = { KERN_SOH_ASCII, '0' + min_t(u32, level, 7), '\0' };

	if (!msg)
		len = 0;
	printk("%s%.*s\n", lvl, (int)min_t(u64, len, 1024), msg ? msg : "");
}
EXPORT_SYMBOL_GPL(bento_ks_log);

/*
 * Give up the current call: release the locks it holds (most recent first) and return -EIO from
 * its bento_invoke(). Does not return.
 */
void bento_abandon_call(struct bento_call_ctx *ctx)
{
	while (ctx->nr_held) {
		ctx->nr_held--;
		bento_release_lock(ctx->held[ctx->nr_held].lock, ctx->held[ctx->nr_held].kind);
	}
	bento_throw(ctx, -EIO);
}

static DEFINE_RATELIMIT_STATE(bento_panic_rs, 5 * HZ, 10);

/*
 * A file system panicked. Its message is "FILE:LINE:COL: MESSAGE" (bento-kernel 0.4.0 on;
 * 0.3.1 and before say "panicked at FILE:LINE:COL:\nMESSAGE"): one line, into @buf.
 */
static void bento_panic_msg(char *buf, size_t size, const char *msg, u64 len)
{
	size_t i, n;

	if (!msg)
		len = 0;
	if (len >= 12 && !memcmp(msg, "panicked at ", 12)) {
		msg += 12;
		len -= 12;
	}
	n = min_t(u64, len, size - 1);
	for (i = 0; i < n; i++)
		buf[i] = msg[i] == '\n' ? ' ' : msg[i];
	buf[n] = '\0';
}

/*
 * Inside a call (always, for a file system that runs only in calls): fail the mount (or, for an
 * instance the mount does not run on, only the call), log, and give the call up; the task goes
 * on. Outside one, or with preemption or interrupts not as the call began: BUG().
 */
void bento_ks_panic(const char *msg, u64 len)
{
	struct bento_call_ctx *ctx = bento_current_ctx();
	const char *dev;
	char buf[256];

	bento_panic_msg(buf, sizeof(buf), msg, len);
	if (!ctx || preempt_count() != ctx->preempt || irqs_disabled()) {
		pr_emerg("Rust panic %s: %s\n", ctx ? "in atomic context" : "outside a call", buf);
		BUG();
	}
	ctx->panicked = true;
	dev = ctx->sbi->sb->s_id;
	if (ctx->fail_mount) {
		/* The first panic of a mount is always logged; more (calls in flight) are
		 * rate-limited. */
		if (!test_and_set_bit(BENTO_SB_FAILED, &ctx->sbi->flags) ||
		    __ratelimit(&bento_panic_rs))
			pr_crit("%s (%s %s): file system panicked at %s (in %s); the mount is failed, every call returns EIO; unmount it\n",
				dev, ctx->sbi->name, bento_version(ctx->type), buf, ctx->op);
	} else if (__ratelimit(&bento_panic_rs)) {
		pr_crit("%s (%s %s): file system panicked at %s (in %s, of an instance the mount does not run on): the call fails with EIO, the mount goes on\n",
			dev, ctx->sbi->name, bento_version(ctx->type), buf, ctx->op);
	}
	bento_abandon_call(ctx);
	BUG();	/* not reached */
}
EXPORT_SYMBOL_GPL(bento_ks_panic);
