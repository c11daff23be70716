// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs directories as open files: opendir/releasedir, fsyncdir and readdir (the namespace
 * operations are in namei.c).
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/fs.h>
#include <linux/slab.h>
#include "bentofs.h"

static int bento_opendir(struct inode *inode, struct file *file)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	BENTO_REQ(req);
	u64 fh = 0;
	int err;

	if (test_bit(BENTO_I_BAD, &BENTO_I(inode)->state))
		return -EIO;
	err = bento_status(sbi, "opendir",
			   bento_call(sbi, 0, opendir, &req, bento_ino(inode), file->f_flags, &fh));
	if (err)
		return err;
	file->private_data = (void *)(uintptr_t)fh;
	return 0;
}

static int bento_releasedir(struct inode *inode, struct file *file)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	BENTO_REQ(req);

	bento_call(sbi, 0, releasedir, &req, bento_ino(inode), bento_fh(file));
	return 0;
}

static int bento_fsyncdir(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct inode *inode = file_inode(file);
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	BENTO_REQ(req);

	return bento_status(sbi, "fsyncdir", bento_call(sbi, 0, fsyncdir, &req, bento_ino(inode),
							 bento_fh(file), datasync));
}

/*
 * readdir: the file system fills a kernel buffer (one page) through bento_filldir(); the
 * entries go to userspace with dir_emit() after the call returns, so the file system never
 * runs while we copy to user memory (a fault there could re-enter bentofs).
 */
struct bento_dirent {
	u64 ino;
	u64 next_off;
	u32 namelen;
	u32 dtype;
	char name[];
};

struct bento_dirbuf {
	char *buf;
	size_t size;
	size_t used;
	unsigned int count;
	bool full;	/* an entry did not fit: call again from the last cookie */
	bool bad;	/* the file system gave a bad name */
};

static int bento_filldir(void *ctx, const char *name, u32 namelen, u64 ino, u64 next_off,
			 u32 dtype)
{
	struct bento_dirbuf *db = ctx;
	size_t reclen = ALIGN(offsetof(struct bento_dirent, name) + namelen, 8);
	struct bento_dirent *de;

	if (db->full || db->bad)
		return 1;
	if (!namelen || namelen > NAME_MAX || !name) {
		db->bad = true;
		return 1;
	}
	if (db->used + reclen > db->size) {
		db->full = true;
		return 1;
	}
	de = (struct bento_dirent *)(db->buf + db->used);
	de->ino = ino;
	de->next_off = next_off;
	de->namelen = namelen;
	de->dtype = dtype;
	memcpy(de->name, name, namelen);
	db->used += reclen;
	db->count++;
	return 0;
}

static int bento_iterate(struct file *file, struct dir_context *ctx)
{
	struct inode *inode = file_inode(file);
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	struct bento_dirbuf db = { .size = PAGE_SIZE };
	BENTO_REQ(req);
	int err = 0;

	if (test_bit(BENTO_I_BAD, &BENTO_I(inode)->state))
		return -EIO;
	db.buf = kmalloc(db.size, GFP_KERNEL);
	if (!db.buf)
		return -ENOMEM;
	for (;;) {
		loff_t start = ctx->pos;
		size_t off;
		bool stopped = false;

		db.used = 0;
		db.count = 0;
		db.full = false;
		err = bento_status(sbi, "readdir",
				   bento_call(sbi, -EOPNOTSUPP, readdir, &req, bento_ino(inode),
					      bento_fh(file), ctx->pos, bento_filldir, &db));
		if (db.bad) {
			pr_err_ratelimited("%s: readdir of inode %llu gave a bad name\n",
					   sbi->name, bento_ino(inode));
			err = -EIO;
		}
		for (off = 0; off < db.used;) {
			struct bento_dirent *de = (struct bento_dirent *)(db.buf + off);

			if (!dir_emit(ctx, de->name, de->namelen, de->ino, de->dtype)) {
				stopped = true;
				break;
			}
			ctx->pos = de->next_off;
			off += ALIGN(offsetof(struct bento_dirent, name) + de->namelen, 8);
		}
		if (err || stopped || !db.full)
			break;
		if (ctx->pos == start) {
			/* A full buffer that did not move the cookie: would loop forever. */
			pr_err_ratelimited("%s: readdir of inode %llu does not advance at %lld\n",
					   sbi->name, bento_ino(inode), start);
			err = -EIO;
			break;
		}
	}
	kfree(db.buf);
	return err;
}

const struct file_operations bento_dir_ops = {
	.llseek		= generic_file_llseek,
	.read		= generic_read_dir,
	.iterate_shared	= bento_iterate,
	.open		= bento_opendir,
	.release	= bento_releasedir,
	.fsync		= bento_fsyncdir,
	.unlocked_ioctl	= bento_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};
