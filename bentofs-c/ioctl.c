// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs ioctls: FS_IOC_GOINGDOWN (shut the mount down, as ext4, xfs and f2fs do for
 * xfstests' godown and for crash tests). And the file entry points that the page cache could
 * answer without calling the file system, which a shut-down mount refuses with EIO as ext4 does
 * (read_iter, write_iter, splice_read; mmap and page_mkwrite are in mmap.c): every other call
 * reaches bento_call(), which refuses it.
 *
 * A shutdown goes through the file system (the optional bento_ops.shutdown, in modules newer
 * than 0.4.1; an older module's mount answers EOPNOTSUPP): it commits what the flag asks, then
 * writes nothing more, not even at unmount. Nothing of it is on the device: the next mount
 * recovers what was durable, as after a crash.
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/blkdev.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/splice.h>
#include <linux/uaccess.h>
#include "bentofs.h"

/* ext4's EXT4_IOC_SHUTDOWN, xfs's XFS_IOC_GOINGDOWN, f2fs's F2FS_IOC_SHUTDOWN: one number. It
 * reads its u32 argument from the caller although declared _IOR, as all of them do. */
#define BENTO_IOC_GOINGDOWN	_IOR('X', 125, __u32)

static const char *const bento_shutdown_names[] = {
	[BENTO_SHUTDOWN_FULLSYNC] = "fullsync",
	[BENTO_SHUTDOWN_METAFLUSH] = "metaflush",
	[BENTO_SHUTDOWN_NOLOGFLUSH] = "nologflush",
};

static int bento_freeze_bdev(struct block_device *bdev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	return bdev_freeze(bdev);
#else
	return freeze_bdev(bdev);
#endif
}

static void bento_thaw_bdev(struct block_device *bdev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	bdev_thaw(bdev);
#else
	thaw_bdev(bdev);
#endif
}

/*
 * The call into the instance. The mount is marked inside it, still holding the upgrade lock's
 * read side: an upgrade sees a live instance or a shut-down one, never one that refuses its
 * export without being marked. 0, -EOPNOTSUPP (the module has no shutdown) or -errno.
 */
static int bento_shutdown_call(struct bento_sb_info *sbi, u32 how)
{
	struct bento_call_ctx ctx;
	int err = -EOPNOTSUPP;

	if (!bento_call_enter(sbi, &ctx, "shutdown"))
		return bento_shut_down(sbi) ? 0 : -EIO;
	if (bento_has_op(sbi->ops, shutdown)) {
		err = bento_guard(&ctx, sbi->ops, shutdown, sbi->fs, how);
		err = bento_status(sbi, "shutdown", err);
		if (!err)
			set_bit(BENTO_SB_SHUTDOWN, &sbi->flags);
	}
	bento_call_exit(sbi, &ctx);
	return err;
}

static int bento_goingdown(struct super_block *sb, unsigned long arg)
{
	struct bento_sb_info *sbi = BENTO_SB(sb);
	u32 how;
	int err;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (get_user(how, (u32 __user *)arg))
		return -EFAULT;
	if (how > BENTO_SHUTDOWN_NOLOGFLUSH)
		return -EINVAL;
	if (bento_shut_down(sbi))
		return 0;
	if (bento_failed(sbi))
		return -EIO;
	/* Checked again in the call (an upgrade may change the table): no freeze for nothing. */
	if (!bento_has_op(READ_ONCE(sbi->ops), shutdown))
		return -EOPNOTSUPP;

	if (how == BENTO_SHUTDOWN_FULLSYNC) {
		/*
		 * As ext4: freeze (every dirty page written, the file system committed, writers
		 * held), shut down, thaw (the held writers go on, to EIO). The instance has nothing
		 * left to write then.
		 */
		err = bento_freeze_bdev(sb->s_bdev);
		if (err)
			return err;
		err = bento_shutdown_call(sbi, how);
		bento_thaw_bdev(sb->s_bdev);
	} else {
		err = bento_shutdown_call(sbi, how);
	}
	if (!err)
		pr_warn_ratelimited("%s on %s: shut down (FS_IOC_GOINGDOWN %s): every call returns EIO, nothing more is written; unmount it\n",
				    sbi->name, sb->s_id, bento_shutdown_names[how]);
	return err;
}

long bento_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case BENTO_IOC_GOINGDOWN:
		return bento_goingdown(file_inode(file)->i_sb, arg);
	}
	return -ENOTTY;
}

/* ---- what the page cache would answer by itself ------------------------------------------- */

static bool bento_file_shut_down(struct file *file)
{
	return unlikely(bento_shut_down(BENTO_SB(file_inode(file)->i_sb)));
}

ssize_t bento_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	if (bento_file_shut_down(iocb->ki_filp))
		return -EIO;
	return generic_file_read_iter(iocb, to);
}

/* A write into folios already dirty would not ask the file system (no reserve). */
ssize_t bento_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	if (bento_file_shut_down(iocb->ki_filp))
		return -EIO;
	return generic_file_write_iter(iocb, from);
}

ssize_t bento_splice_read(struct file *in, loff_t *ppos, struct pipe_inode_info *pipe,
			  size_t len, unsigned int flags)
{
	if (bento_file_shut_down(in))
		return -EIO;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	return filemap_splice_read(in, ppos, pipe, len, flags);
#else
	return generic_file_splice_read(in, ppos, pipe, len, flags);
#endif
}
