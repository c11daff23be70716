// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs inodes: the inode cache keyed by the file system's inode numbers, attributes, and the
 * symlink, file and special inode operations. Directory operations are in namei.c, extended
 * attributes in xattr.c.
 *
 * Attributes are cached in the inode and the kernel serves stat from the cache. Who owns what:
 *  - regular files: once an inode is in the cache, the kernel owns its size (writes go to the
 *    page cache and reach the file system at writeback, like FUSE's writeback_cache mode) and
 *    its times (write_inode pushes them with setattr). Replies from the file system refresh
 *    only mode, owner, link count, blocks and generation.
 *  - everything else: the file system owns all attributes; after an operation that changes
 *    them, the inode is marked stale and the next stat asks the file system (getattr).
 *
 * Lookup references: every reply that fills a bento_attr entry (lookup, create, mknod, mkdir,
 * symlink, link) counts one reference on that inode in the file system; bentofs counts them in
 * bento_inode.nlookup and gives them all back with forget() when the inode is evicted. The
 * root is read with getattr at mount and never counted nor forgotten.
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/pagemap.h>
#include <linux/writeback.h>
#include <linux/kdev_t.h>
#include "bentofs.h"

static struct kmem_cache *bento_inode_cachep;

static void bento_inode_init_once(void *p)
{
	struct bento_inode *bi = p;

	inode_init_once(&bi->vfs_inode);
	init_rwsem(&bi->wb_sem);
}

int bento_inode_cache_init(void)
{
	bento_inode_cachep = kmem_cache_create("bento_inode_cache", sizeof(struct bento_inode), 0,
					       SLAB_RECLAIM_ACCOUNT | SLAB_ACCOUNT,
					       bento_inode_init_once);
	return bento_inode_cachep ? 0 : -ENOMEM;
}

void bento_inode_cache_exit(void)
{
	/* Inodes are freed after an RCU grace period. */
	rcu_barrier();
	kmem_cache_destroy(bento_inode_cachep);
}

struct inode *bento_alloc_inode(struct super_block *sb)
{
	struct bento_inode *bi;

	bi = alloc_inode_sb(sb, bento_inode_cachep, GFP_KERNEL);
	if (!bi)
		return NULL;
	bi->nodeid = 0;
	atomic64_set(&bi->nlookup, 0);
	bi->state = 0;
	bi->attr_version = 0;
	bi->crtime = (struct timespec64){};
	return &bi->vfs_inode;
}

void bento_free_inode(struct inode *inode)
{
	kmem_cache_free(bento_inode_cachep, BENTO_I(inode));
}

void bento_evict_inode(struct inode *inode)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	struct bento_inode *bi = BENTO_I(inode);
	u64 nlookup;

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);

	nlookup = atomic64_xchg(&bi->nlookup, 0);
	if (nlookup && bi->nodeid != BENTO_ROOT_INO && sbi->fs) {
		/* An unlinked inode's last reference frees it in the file system, a change to
		 * commit: not while frozen (as ext4's evict). */
		bool freeing = !inode->i_nlink;

		if (freeing)
			sb_start_intwrite(inode->i_sb);
		bento_call_void(sbi, forget, bi->nodeid, nlookup);
		if (freeing)
			sb_end_intwrite(inode->i_sb);
	}
}

bool bento_is_bad(struct inode *inode)
{
	return test_bit(BENTO_I_BAD, &BENTO_I(inode)->state);
}

/* ---- attributes ---------------------------------------------------------------------------- */

static bool bento_valid_attr(const struct bento_attr *a)
{
	if (!a->ino)
		return false;
	switch (a->mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK:
	case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return true;
	}
	return false;
}

/* Under i_lock: the inode's attributes just changed; older replies must not undo that. */
static void bento_attr_changed_locked(struct inode *inode)
{
	BENTO_I(inode)->attr_version = atomic64_inc_return(&BENTO_SB(inode->i_sb)->attr_version);
}

/*
 * Copies a reply into the cached inode. `all`: the whole of it (a new inode, or not a regular
 * file); otherwise size and times stay the kernel's (see the top of this file). `version`:
 * bento_attr_version() from before the call that produced the reply; if the inode changed
 * since, the reply is stale and dropped (as FUSE's attr_version). 0: apply unconditionally.
 * Returns whether it was applied.
 */
static bool bento_apply_attr(struct inode *inode, const struct bento_attr *a, bool all,
			     u64 version)
{
	bool local = !all && S_ISREG(inode->i_mode);

	spin_lock(&inode->i_lock);
	if (version && BENTO_I(inode)->attr_version > version) {
		spin_unlock(&inode->i_lock);
		return false;
	}
	bento_attr_changed_locked(inode);
	inode->i_mode = (inode->i_mode & S_IFMT) | (a->mode & 07777);
	inode->i_uid = make_kuid(&init_user_ns, a->uid);
	inode->i_gid = make_kgid(&init_user_ns, a->gid);
	set_nlink(inode, a->nlink);
	inode->i_blocks = a->blocks;
	inode->i_generation = a->generation;
	if (!local) {
		i_size_write(inode, a->size);
		bento_set_atime(inode, bento_ts(&a->atime));
		bento_set_mtime(inode, bento_ts(&a->mtime));
		bento_set_ctime(inode, bento_ts(&a->ctime));
	}
	spin_unlock(&inode->i_lock);
	return true;
}

/*
 * An operation changed the inode's ctime and maybe its link count in the file system:
 * `nlink` -1 drops a link, -2 clears them, 0 leaves them.
 */
void bento_inode_changed(struct inode *inode, int nlink)
{
	spin_lock(&inode->i_lock);
	if (nlink == -2)
		clear_nlink(inode);
	else if (nlink == -1 && inode->i_nlink)
		drop_nlink(inode);
	if (S_ISREG(inode->i_mode))
		bento_set_ctime(inode, current_time(inode));
	bento_attr_changed_locked(inode);
	spin_unlock(&inode->i_lock);
	bento_invalidate_attr(inode);
}

int bento_refresh_attr(struct inode *inode)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	struct bento_inode *bi = BENTO_I(inode);
	struct bento_attr attr = {};
	u64 version = bento_attr_version(inode->i_sb);
	BENTO_REQ(req);
	int err;

	if (bento_is_bad(inode))
		return -EIO;
	clear_bit(BENTO_I_ATTR_STALE, &bi->state);
	err = bento_status(sbi, "getattr",
			   bento_call(sbi, -EIO, getattr, &req, bi->nodeid, &attr));
	if (!err && ((attr.mode ^ inode->i_mode) & S_IFMT)) {
		pr_err_ratelimited("%s: inode %llu changed type\n", sbi->name, bi->nodeid);
		err = -EIO;
	}
	if (err) {
		set_bit(BENTO_I_ATTR_STALE, &bi->state);
		return err;
	}
	bento_apply_attr(inode, &attr, false, version);
	return 0;
}

/* ---- the inode cache ----------------------------------------------------------------------- */

static int bento_inode_eq(struct inode *inode, void *data)
{
	return BENTO_I(inode)->nodeid == *(u64 *)data;
}

static int bento_inode_set(struct inode *inode, void *data)
{
	BENTO_I(inode)->nodeid = *(u64 *)data;
	return 0;
}

static void bento_init_inode(struct inode *inode, const struct bento_attr *a)
{
	inode->i_mode = a->mode & (S_IFMT | 07777);
	inode->i_ino = a->ino;
	BENTO_I(inode)->crtime = bento_ts(&a->crtime);	/* never changes */
	bento_apply_attr(inode, a, true, 0);

	switch (a->mode & S_IFMT) {
	case S_IFREG:
		inode->i_op = &bento_file_inode_ops;
		inode->i_fop = &bento_file_ops;
		inode->i_mapping->a_ops = &bento_aops;
		break;
	case S_IFDIR:
		/* Directories and symlinks: the file system keeps their times. */
		inode->i_flags |= S_NOATIME;
		inode->i_op = &bento_dir_inode_ops;
		inode->i_fop = &bento_dir_ops;
		break;
	case S_IFLNK:
		inode->i_flags |= S_NOATIME;
		inode->i_op = &bento_symlink_inode_ops;
		break;
	default:
		inode->i_op = &bento_special_inode_ops;
		init_special_inode(inode, inode->i_mode, new_decode_dev(a->rdev));
		break;
	}
}

static void bento_forget_one(struct super_block *sb, u64 nodeid)
{
	struct bento_sb_info *sbi = BENTO_SB(sb);

	if (nodeid && nodeid != BENTO_ROOT_INO)
		bento_call_void(sbi, forget, nodeid, 1);
}

/**
 * bento_iget - the cached inode for a reply from the file system
 * @sb: the mount
 * @attr: the reply's attributes (attr->ino is the key)
 * @counted: the reply counted a lookup reference (entry replies); it is recorded in the inode,
 *	or given back at once if no inode results.
 * @version: bento_attr_version() from before the call (for an inode already cached)
 * @spare: NULL, or an inode from new_inode() to use if none is cached, so that no allocation
 *	can fail once the file system has created the inode (bento_new_entry()); given back
 *	here if unused
 */
struct inode *bento_iget(struct super_block *sb, const struct bento_attr *attr, bool counted,
			 u64 version, struct inode *spare)
{
	u64 nodeid = attr->ino;
	struct inode *inode;

	if (!bento_valid_attr(attr)) {
		pr_err_ratelimited("%s: invalid inode %llu (mode %#o) in a reply\n",
				   BENTO_SB(sb)->name, attr->ino, attr->mode);
		if (counted)
			bento_forget_one(sb, nodeid);
		if (spare)
			iput(spare);
		return ERR_PTR(-EIO);
	}
retry:
	if (spare)
		inode = inode_insert5(spare, (unsigned long)nodeid, bento_inode_eq, bento_inode_set,
				      &nodeid);
	else
		inode = iget5_locked(sb, (unsigned long)nodeid, bento_inode_eq, bento_inode_set,
				     &nodeid);
	if (!inode) {
		if (counted)
			bento_forget_one(sb, nodeid);
		if (spare)
			iput(spare);
		return ERR_PTR(-ENOMEM);
	}
	if (inode == spare)
		spare = NULL;
	if (inode->i_state & I_NEW) {
		bento_init_inode(inode, attr);
		unlock_new_inode(inode);
	} else if (nodeid != BENTO_ROOT_INO && (inode_wrong_type(inode, attr->mode) ||
						inode->i_generation != attr->generation)) {
		/* The file system reused the number: the cached inode is a dead one. */
		set_bit(BENTO_I_BAD, &BENTO_I(inode)->state);
		remove_inode_hash(inode);
		iput(inode);
		goto retry;
	} else {
		bento_apply_attr(inode, attr, false, version);
	}
	if (spare)
		iput(spare);	/* unhashed, never used: evicted at once */
	if (counted)
		atomic64_inc(&BENTO_I(inode)->nlookup);
	return inode;
}

int bento_write_inode(struct inode *inode, struct writeback_control *wbc)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	struct bento_setattr set = {};
	struct bento_attr attr = {};
	BENTO_REQ(req);
	int err;

	/*
	 * Dirty inodes carry times the kernel set: atime, and the mtime/ctime of writes to regular
	 * files and fifos. Directories and symlinks never get here (S_NOATIME; the file system
	 * keeps their times).
	 */
	if (S_ISDIR(inode->i_mode) || S_ISLNK(inode->i_mode) || bento_is_bad(inode) ||
	    sb_rdonly(inode->i_sb))
		return 0;
	set.valid = BENTO_SET_ATIME | BENTO_SET_MTIME | BENTO_SET_CTIME;
	bento_to_ts(&set.atime, bento_get_atime(inode));
	bento_to_ts(&set.mtime, bento_get_mtime(inode));
	bento_to_ts(&set.ctime, bento_get_ctime(inode));
	err = bento_status(sbi, "setattr", bento_call(sbi, -EOPNOTSUPP, setattr, &req,
						       bento_ino(inode), &set, &attr));
	/* The reply is not applied: it may race with a setattr and we only pushed times. */
	return err == -EOPNOTSUPP ? 0 : err;
}

/* ---- inode operations ---------------------------------------------------------------------- */

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
#define bento_fillattr(idmap, mask, inode, stat) generic_fillattr(idmap, mask, inode, stat)
#else
#define bento_fillattr(idmap, mask, inode, stat) generic_fillattr(idmap, inode, stat)
#endif

int bento_getattr(BENTO_IDMAP, const struct path *path, struct kstat *stat,
		  u32 request_mask, unsigned int flags)
{
	struct inode *inode = d_inode(path->dentry);
	int err;

	if (bento_is_bad(inode))
		return -EIO;
	if ((flags & AT_STATX_SYNC_TYPE) == AT_STATX_FORCE_SYNC ||
	    (test_bit(BENTO_I_ATTR_STALE, &BENTO_I(inode)->state) &&
	     (flags & AT_STATX_SYNC_TYPE) != AT_STATX_DONT_SYNC)) {
		err = bento_refresh_attr(inode);
		if (err)
			return err;
	}
	bento_fillattr(idmap, request_mask, inode, stat);
	if (BENTO_I(inode)->crtime.tv_sec || BENTO_I(inode)->crtime.tv_nsec) {
		stat->btime = BENTO_I(inode)->crtime;
		stat->result_mask |= STATX_BTIME;
	}
	return 0;
}

int bento_setattr(BENTO_IDMAP, struct dentry *dentry, struct iattr *ia)
{
	struct inode *inode = d_inode(dentry);
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	unsigned int v = ia->ia_valid;
	struct bento_setattr set = {};
	struct bento_attr attr = {};
	loff_t oldsize = i_size_read(inode);
	bool size = (v & ATTR_SIZE) && S_ISREG(inode->i_mode);
	bool shrink;
	BENTO_REQ(req);
	int err;

	if (bento_is_bad(inode))
		return -EIO;
	err = setattr_prepare(idmap, dentry, ia);
	if (err)
		return err;

	if (v & ATTR_MODE) {
		set.valid |= BENTO_SET_MODE;
		set.mode = ia->ia_mode & 07777;
	}
	if (v & ATTR_UID) {
		set.valid |= BENTO_SET_UID;
		set.uid = from_kuid(&init_user_ns, ia->ia_uid);
	}
	if (v & ATTR_GID) {
		set.valid |= BENTO_SET_GID;
		set.gid = from_kgid(&init_user_ns, ia->ia_gid);
	}
	if (v & ATTR_SIZE) {
		set.valid |= BENTO_SET_SIZE;
		set.size = ia->ia_size;
	}
	if (v & ATTR_ATIME) {
		if (v & ATTR_ATIME_SET) {
			set.valid |= BENTO_SET_ATIME;
			bento_to_ts(&set.atime, ia->ia_atime);
		} else {
			set.valid |= BENTO_SET_ATIME_NOW;
		}
	}
	if (v & ATTR_MTIME) {
		if (v & ATTR_MTIME_SET) {
			set.valid |= BENTO_SET_MTIME;
			bento_to_ts(&set.mtime, ia->ia_mtime);
		} else {
			set.valid |= BENTO_SET_MTIME_NOW;
		}
	}
	if (v & ATTR_CTIME) {
		set.valid |= BENTO_SET_CTIME;
		bento_to_ts(&set.ctime, ia->ia_ctime);
	}
	if (v & (ATTR_KILL_SUID | ATTR_KILL_SGID))
		set.valid |= BENTO_SET_KILL_SUID;
	/* truncate(2) passes no times (ftruncate(2) does): a size change sets both, as ext4. */
	if (size && ia->ia_size != oldsize && !(v & (ATTR_MTIME | ATTR_CTIME))) {
		struct timespec64 now = current_time(inode);

		set.valid |= BENTO_SET_MTIME | BENTO_SET_CTIME;
		bento_to_ts(&set.mtime, now);
		bento_to_ts(&set.ctime, now);
	}
	if (!set.valid)
		return 0;

	/*
	 * Shrinking: the file system goes first, with this inode's writeback held off, so that no
	 * write of a folio beyond the new size reaches it after its truncate and a failure
	 * changes nothing (the folios beyond stay, the dirty ones dirty). Then the page cache
	 * follows: truncate_setsize() drops the folios beyond and zeroes the tail of the last.
	 */
	shrink = size && ia->ia_size < oldsize;
	if (shrink)
		down_write(&BENTO_I(inode)->wb_sem);
	err = bento_status(sbi, "setattr", bento_call(sbi, -EOPNOTSUPP, setattr, &req,
						       bento_ino(inode), &set, &attr));
	if (shrink) {
		if (!err)
			truncate_setsize(inode, ia->ia_size);
		up_write(&BENTO_I(inode)->wb_sem);
	}
	if (err)
		return err;
	if (size && ia->ia_size >= oldsize) {
		if (ia->ia_size > oldsize)
			bento_zero_tail(inode, oldsize);
		truncate_setsize(inode, ia->ia_size);
	}

	if (!S_ISREG(inode->i_mode) || !bento_valid_attr(&attr) ||
	    ((attr.mode ^ inode->i_mode) & S_IFMT)) {
		/* Non-regular: the file system owns the attributes. A bad reply: ask again. */
		if (bento_valid_attr(&attr) && !((attr.mode ^ inode->i_mode) & S_IFMT))
			bento_apply_attr(inode, &attr, true, 0);
		else
			bento_invalidate_attr(inode);
		return 0;
	}
	bento_apply_attr(inode, &attr, false, 0);
	spin_lock(&inode->i_lock);
	if (set.valid & (BENTO_SET_ATIME | BENTO_SET_ATIME_NOW))
		bento_set_atime(inode, bento_ts(&attr.atime));
	if (set.valid & (BENTO_SET_MTIME | BENTO_SET_MTIME_NOW))
		bento_set_mtime(inode, bento_ts(&attr.mtime));
	bento_set_ctime(inode, bento_ts(&attr.ctime));
	spin_unlock(&inode->i_lock);
	return 0;
}

static const char *bento_get_link(struct dentry *dentry, struct inode *inode,
				  struct delayed_call *done)
{
	struct bento_sb_info *sbi = BENTO_SB(inode->i_sb);
	char *buf;
	int len;

	if (!dentry)
		return ERR_PTR(-ECHILD);	/* may sleep: not in RCU walk */
	if (bento_is_bad(inode))
		return ERR_PTR(-EIO);
	buf = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!buf)
		return ERR_PTR(-ENOMEM);
	{
		BENTO_REQ(req);

		len = bento_call(sbi, -EOPNOTSUPP, readlink, &req, bento_ino(inode), buf,
				 PATH_MAX - 1);
	}
	if (len < 0 || len > PATH_MAX - 1) {
		kfree(buf);
		return ERR_PTR(len < 0 ? bento_status(sbi, "readlink", len) : -EIO);
	}
	buf[len] = '\0';
	set_delayed_call(done, kfree_link, buf);
	return buf;
}

/* ---- operation tables ---------------------------------------------------------------------- */

const struct inode_operations bento_file_inode_ops = {
	.getattr	= bento_getattr,
	.setattr	= bento_setattr,
	.listxattr	= bento_listxattr,
};

const struct inode_operations bento_symlink_inode_ops = {
	.get_link	= bento_get_link,
	.getattr	= bento_getattr,
	.setattr	= bento_setattr,
	.listxattr	= bento_listxattr,
};

const struct inode_operations bento_special_inode_ops = {
	.getattr	= bento_getattr,
	.setattr	= bento_setattr,
	.listxattr	= bento_listxattr,
};
