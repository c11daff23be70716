// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs directories: lookup and the namespace operations (create, mknod, mkdir, symlink, link,
 * unlink, rmdir, rename), and the directory inode operations. Every reply that fills a
 * bento_attr entry counts a lookup reference on that inode (see the top of inode.c).
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/namei.h>
#include <linux/kdev_t.h>
#include "bentofs.h"

static struct dentry *bento_lookup(struct inode *dir, struct dentry *dentry, unsigned int flags)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	struct bento_attr attr = {};
	struct inode *inode = NULL;
	u64 version = bento_attr_version(dir->i_sb);
	BENTO_REQ(req);
	int err;

	if (dentry->d_name.len > NAME_MAX)
		return ERR_PTR(-ENAMETOOLONG);
	if (bento_is_bad(dir))
		return ERR_PTR(-EIO);
	err = bento_status(sbi, "lookup",
			   bento_call(sbi, -EIO, lookup, &req, bento_ino(dir), dentry->d_name.name,
				      dentry->d_name.len, &attr));
	if (err && err != -ENOENT)
		return ERR_PTR(err);
	if (!err) {
		inode = bento_iget(dir->i_sb, &attr, true, version, NULL);
		if (IS_ERR(inode))
			return ERR_CAST(inode);
	}
	/* A NULL inode makes a negative dentry: nobody but us changes the namespace. */
	return d_splice_alias(inode, dentry);
}

/*
 * A new entry from create/mknod/mkdir/symlink/link: attach its inode to the dentry. `spare`
 * (from new_inode(), NULL for link) is consumed. Once the file system has made the entry
 * nothing here may fail for memory: the call would fail while the entry exists, and the negative
 * dentry left behind would hide it.
 */
static int bento_instantiate(struct inode *dir, struct dentry *dentry,
			     const struct bento_attr *attr, u64 version, struct inode *spare)
{
	struct inode *inode;

	inode = bento_iget(dir->i_sb, attr, true, version, spare);
	if (IS_ERR(inode))
		return PTR_ERR(inode);
	if (S_ISDIR(inode->i_mode)) {
		struct dentry *alias = d_find_any_alias(inode);

		if (alias) {
			/* A "new" directory we already know: the file system is confused. */
			pr_err_ratelimited("%s: new directory %llu already exists\n",
					   BENTO_SB(dir->i_sb)->name, attr->ino);
			dput(alias);
			iput(inode);
			return -EIO;
		}
	}
	bento_invalidate_attr(dir);
	d_instantiate(dentry, inode);
	return 0;
}

static int bento_create(BENTO_IDMAP, struct inode *dir, struct dentry *dentry, umode_t mode,
			bool excl)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	u32 flags = O_CREAT | O_WRONLY | (excl ? O_EXCL : 0);
	struct bento_attr attr = {};
	u64 version = bento_attr_version(dir->i_sb);
	BENTO_REQ(req);
	struct inode *spare = new_inode(dir->i_sb);
	u64 fh = 0;
	int err;

	if (!spare)
		return -ENOMEM;
	err = bento_status(sbi, "create",
			   bento_call(sbi, -EOPNOTSUPP, create, &req, bento_ino(dir),
				      dentry->d_name.name, dentry->d_name.len, mode, flags, &attr,
				      &fh));
	if (err) {
		iput(spare);
		return err;
	}
	err = bento_instantiate(dir, dentry, &attr, version, spare);
	/* The VFS opens the file itself (f_op->open): this handle is not needed. */
	bento_call(sbi, 0, release, &req, attr.ino, fh, flags);
	return err;
}

static int bento_mknod(BENTO_IDMAP, struct inode *dir, struct dentry *dentry, umode_t mode,
		       dev_t rdev)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	struct bento_attr attr = {};
	u64 version = bento_attr_version(dir->i_sb);
	struct inode *spare = new_inode(dir->i_sb);
	BENTO_REQ(req);
	int err;

	if (!spare)
		return -ENOMEM;
	err = bento_status(sbi, "mknod",
			   bento_call(sbi, -EOPNOTSUPP, mknod, &req, bento_ino(dir),
				      dentry->d_name.name, dentry->d_name.len, mode,
				      new_encode_dev(rdev), &attr));
	if (err) {
		iput(spare);
		return err;
	}
	return bento_instantiate(dir, dentry, &attr, version, spare);
}

static int bento_mkdir(BENTO_IDMAP, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	struct bento_attr attr = {};
	u64 version = bento_attr_version(dir->i_sb);
	struct inode *spare = new_inode(dir->i_sb);
	BENTO_REQ(req);
	int err;

	if (!spare)
		return -ENOMEM;
	err = bento_status(sbi, "mkdir",
			   bento_call(sbi, -EOPNOTSUPP, mkdir, &req, bento_ino(dir),
				      dentry->d_name.name, dentry->d_name.len, mode | S_IFDIR,
				      &attr));
	if (err) {
		iput(spare);
		return err;
	}
	return bento_instantiate(dir, dentry, &attr, version, spare);
}

static int bento_symlink(BENTO_IDMAP, struct inode *dir, struct dentry *dentry,
			 const char *target)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	struct bento_attr attr = {};
	u64 version = bento_attr_version(dir->i_sb);
	struct inode *spare = new_inode(dir->i_sb);
	BENTO_REQ(req);
	int err;

	if (!spare)
		return -ENOMEM;
	err = bento_status(sbi, "symlink",
			   bento_call(sbi, -EOPNOTSUPP, symlink, &req, bento_ino(dir),
				      dentry->d_name.name, dentry->d_name.len, target,
				      strlen(target), &attr));
	if (err) {
		iput(spare);
		return err;
	}
	return bento_instantiate(dir, dentry, &attr, version, spare);
}

static int bento_link(struct dentry *old, struct inode *dir, struct dentry *dentry)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	struct inode *inode = d_inode(old);
	struct bento_attr attr = {};
	u64 version = bento_attr_version(dir->i_sb);
	BENTO_REQ(req);
	int err;

	if (bento_is_bad(inode))
		return -EIO;
	err = bento_status(sbi, "link",
			   bento_call(sbi, -EOPNOTSUPP, link, &req, bento_ino(inode),
				      bento_ino(dir), dentry->d_name.name, dentry->d_name.len,
				      &attr));
	if (err)
		return err;
	err = bento_instantiate(dir, dentry, &attr, version, NULL);
	if (!err && S_ISREG(inode->i_mode)) {
		spin_lock(&inode->i_lock);
		bento_set_ctime(inode, current_time(inode));
		spin_unlock(&inode->i_lock);
	}
	return err;
}

static int bento_unlink(struct inode *dir, struct dentry *dentry)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	struct inode *inode = d_inode(dentry);
	BENTO_REQ(req);
	int err;

	err = bento_status(sbi, "unlink",
			   bento_call(sbi, -EOPNOTSUPP, unlink, &req, bento_ino(dir),
				      dentry->d_name.name, dentry->d_name.len));
	if (err)
		return err;
	bento_invalidate_attr(dir);
	bento_inode_changed(inode, -1);
	return 0;
}

static int bento_rmdir(struct inode *dir, struct dentry *dentry)
{
	struct bento_sb_info *sbi = BENTO_SB(dir->i_sb);
	struct inode *inode = d_inode(dentry);
	BENTO_REQ(req);
	int err;

	err = bento_status(sbi, "rmdir",
			   bento_call(sbi, -EOPNOTSUPP, rmdir, &req, bento_ino(dir),
				      dentry->d_name.name, dentry->d_name.len));
	if (err)
		return err;
	bento_invalidate_attr(dir);
	bento_inode_changed(inode, -2);
	return 0;
}

static int bento_rename(BENTO_IDMAP, struct inode *olddir, struct dentry *old,
			struct inode *newdir, struct dentry *new, unsigned int flags)
{
	struct bento_sb_info *sbi = BENTO_SB(olddir->i_sb);
	BENTO_REQ(req);
	int err;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	/*
	 * Replacing a file (the write-to-temp-then-rename idiom): hand the new file's dirty pages
	 * to the file system first, so that no commit can hold the rename without the data and a
	 * crash never leaves an empty file under the name (ext4's auto_da_alloc).
	 */
	if (d_really_is_positive(new)) {
		struct inode *src = d_inode(old);

		if (S_ISREG(src->i_mode)) {
			err = filemap_write_and_wait(src->i_mapping);
			if (err)
				return err;
		}
		if ((flags & RENAME_EXCHANGE) && S_ISREG(d_inode(new)->i_mode)) {
			err = filemap_write_and_wait(d_inode(new)->i_mapping);
			if (err)
				return err;
		}
	}
	err = bento_status(sbi, "rename",
			   bento_call(sbi, -EOPNOTSUPP, rename, &req, bento_ino(olddir),
				      old->d_name.name, old->d_name.len, bento_ino(newdir),
				      new->d_name.name, new->d_name.len, flags));
	if (err)
		return err;
	bento_invalidate_attr(olddir);
	bento_invalidate_attr(newdir);
	bento_inode_changed(d_inode(old), 0);
	if (d_really_is_positive(new)) {
		struct inode *victim = d_inode(new);

		if (flags & RENAME_EXCHANGE)
			bento_inode_changed(victim, 0);
		else
			bento_inode_changed(victim, S_ISDIR(victim->i_mode) ? -2 : -1);
	}
	return 0;
}

/* ---- operation tables ---------------------------------------------------------------------- */

const struct inode_operations bento_dir_inode_ops = {
	.lookup		= bento_lookup,
	.create		= bento_create,
	.mknod		= bento_mknod,
	.mkdir		= bento_mkdir,
	.symlink	= bento_symlink,
	.link		= bento_link,
	.unlink		= bento_unlink,
	.rmdir		= bento_rmdir,
	.rename		= bento_rename,
	.getattr	= bento_getattr,
	.setattr	= bento_setattr,
	.listxattr	= bento_listxattr,
};
