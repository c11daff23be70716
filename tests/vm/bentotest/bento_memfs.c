// SPDX-License-Identifier: GPL-2.0-only
/*
 * bento_memfs.ko: a small in-memory file system behind the Bento ABI, in C, to test bentofs
 * without the Rust side. Simple rather than efficient: one mutex, an xarray of inodes, file
 * data in one flat buffer per file. It ignores the block device.
 *
 * It also checks bentofs' side of the contract: forget() never returns more lookups than were
 * counted, and at unmount no inode but the root still holds lookups ("leak" lines in the log).
 *
 * Test hooks:
 *  - mount options: "verbose" (log each mount), "maxfile=MIB" (file size limit, default 64),
 *    "kstest" (exercise the bento_ks_* services, block I/O on the device included, and log
 *    "kstest ok"); anything else is refused ("bento_memfs: unknown option ...").
 *  - files created with a name starting with "err-" fail: read -EIO, write -ENOSPC, setxattr
 *    -E2BIG, fsync -EROFS.
 *  - getxattr "user.memfs.stats" on any inode: counters (reads, writes, largest read/write,
 *    background calls).
 */
#define pr_fmt(fmt) "bento_memfs: " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/mutex.h>
#include <linux/xarray.h>
#include <linux/string.h>
#include <linux/fcntl.h>
#include <linux/fs.h>
#include <linux/xattr.h>
#include <linux/falloc.h>
#include <linux/timekeeping.h>
#include <bento/bento_abi.h>

struct mfs_xattr {
	struct list_head link;
	char *name;
	u32 namelen;
	void *value;
	u32 size;
};

struct mfs_dirent {
	struct list_head link;
	u64 cookie;
	u64 ino;
	u32 namelen;
	char name[];
};

struct mfs_inode {
	u64 ino;
	u64 generation;
	u32 mode, uid, gid, nlink, rdev;
	u64 size;
	struct bento_timespec atime, mtime, ctime, crtime;
	u64 nlookup;
	bool inject;			/* "err-" file */
	char *data;			/* regular files */
	size_t cap;
	struct list_head entries;	/* directories, by cookie */
	u64 next_cookie;
	u64 parent;
	char *target;			/* symlinks */
	u32 targetlen;
	struct list_head xattrs;
};

struct bento_fs {
	struct mutex lock;
	struct xarray inodes;
	u64 next_ino;
	u64 next_fh;
	u64 nr_inodes;
	u64 data_bytes;
	u64 maxfile;
	bool rdonly;
	/* counters */
	u64 reads, writes, max_read, max_write, forgets, background;
};

static u64 mfs_generation;

static void mfs_now(struct bento_timespec *t)
{
	struct timespec64 ts;

	ktime_get_real_ts64(&ts);
	t->sec = ts.tv_sec;
	t->nsec = ts.tv_nsec;
	t->_pad = 0;
}

static struct mfs_inode *mfs_get(struct bento_fs *fs, u64 ino)
{
	return xa_load(&fs->inodes, ino);
}

static void mfs_fill(struct mfs_inode *i, struct bento_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = i->ino;
	a->size = i->size;
	a->blocks = S_ISREG(i->mode) ? DIV_ROUND_UP(i->size, 512) : 0;
	a->generation = i->generation;
	a->atime = i->atime;
	a->mtime = i->mtime;
	a->ctime = i->ctime;
	a->crtime = i->crtime;
	a->mode = i->mode;
	a->nlink = i->nlink;
	a->uid = i->uid;
	a->gid = i->gid;
	a->rdev = i->rdev;
	a->blksize = 4096;
}

static void mfs_free_inode(struct bento_fs *fs, struct mfs_inode *i)
{
	struct mfs_xattr *x, *xt;
	struct mfs_dirent *d, *dt;

	xa_erase(&fs->inodes, i->ino);
	fs->nr_inodes--;
	fs->data_bytes -= i->cap;
	kvfree(i->data);
	kfree(i->target);
	list_for_each_entry_safe(x, xt, &i->xattrs, link) {
		kfree(x->name);
		kfree(x->value);
		kfree(x);
	}
	list_for_each_entry_safe(d, dt, &i->entries, link)
		kfree(d);
	kfree(i);
}

/* Drops the inode once it has no name and no lookup reference. */
static void mfs_maybe_free(struct bento_fs *fs, struct mfs_inode *i)
{
	if (!i->nlink && !i->nlookup && i->ino != 1)
		mfs_free_inode(fs, i);
}

static struct mfs_inode *mfs_new_inode(struct bento_fs *fs, const struct bento_req *req,
				       u32 mode, u32 rdev)
{
	struct mfs_inode *i = kzalloc(sizeof(*i), GFP_KERNEL);

	if (!i)
		return NULL;
	i->ino = fs->next_ino++;
	i->generation = ++mfs_generation;
	i->mode = mode;
	i->uid = req ? req->uid : 0;
	i->gid = req ? req->gid : 0;
	i->rdev = rdev;
	i->nlink = S_ISDIR(mode) ? 2 : 1;
	mfs_now(&i->atime);
	i->mtime = i->ctime = i->crtime = i->atime;
	INIT_LIST_HEAD(&i->entries);
	INIT_LIST_HEAD(&i->xattrs);
	i->next_cookie = 2;
	if (xa_err(xa_store(&fs->inodes, i->ino, i, GFP_KERNEL))) {
		kfree(i);
		return NULL;
	}
	fs->nr_inodes++;
	return i;
}

static struct mfs_dirent *mfs_find(struct mfs_inode *dir, const char *name, u32 namelen)
{
	struct mfs_dirent *d;

	list_for_each_entry(d, &dir->entries, link)
		if (d->namelen == namelen && !memcmp(d->name, name, namelen))
			return d;
	return NULL;
}

static int mfs_add_entry(struct mfs_inode *dir, const char *name, u32 namelen, u64 ino)
{
	struct mfs_dirent *d = kmalloc(sizeof(*d) + namelen, GFP_KERNEL);

	if (!d)
		return -ENOMEM;
	d->cookie = dir->next_cookie++;
	d->ino = ino;
	d->namelen = namelen;
	memcpy(d->name, name, namelen);
	list_add_tail(&d->link, &dir->entries);
	return 0;
}

static int mfs_dir(struct bento_fs *fs, u64 ino, struct mfs_inode **out)
{
	struct mfs_inode *i = mfs_get(fs, ino);

	if (!i)
		return -ENOENT;
	if (!S_ISDIR(i->mode))
		return -ENOTDIR;
	*out = i;
	return 0;
}

/* Capacity for `size` bytes of file data, zero-filled. */
static int mfs_reserve(struct bento_fs *fs, struct mfs_inode *i, u64 size)
{
	size_t cap;
	char *p;

	if (size > fs->maxfile)
		return -EFBIG;
	if (size <= i->cap)
		return 0;
	cap = max_t(size_t, size, min_t(size_t, i->cap * 2, fs->maxfile));
	cap = round_up(cap, PAGE_SIZE);
	p = kvzalloc(cap, GFP_KERNEL);
	if (!p)
		return -ENOSPC;
	if (i->data)
		memcpy(p, i->data, i->size);
	kvfree(i->data);
	fs->data_bytes += cap - i->cap;
	i->data = p;
	i->cap = cap;
	return 0;
}

static void mfs_resize(struct mfs_inode *i, u64 size)
{
	if (size < i->size && i->data)
		memset(i->data + size, 0, i->size - size);
	i->size = size;
}

/* ---- bento_ks_* self-test ------------------------------------------------------------------- */

#define KS_CHECK(cond)								\
do {										\
	if (!(cond)) {								\
		pr_err("kstest: line %d: %s\n", __LINE__, #cond);		\
		err = -EIO;							\
	}									\
} while (0)

static void ks_fill(u8 *p, size_t len, u32 seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (u8)((i * 31 + seed * 7) ^ (i >> 9));
}

/* Writes `len` bytes from `src` at `block`, reads them back into `dst`, compares. */
static int ks_io(void *bdev, u64 block, u8 *src, u8 *dst, size_t len, u32 flags, u32 seed)
{
	int err = 0, e;

	ks_fill(src, len, seed);
	memset(dst, 0xaa, len);
	e = bento_ks_bdev_write(bdev, block, src, len, flags);
	KS_CHECK(e == 0);
	e = bento_ks_bdev_read(bdev, block, dst, len);
	KS_CHECK(e == 0);
	KS_CHECK(!memcmp(src, dst, len));
	if (err)
		pr_err("kstest: I/O of %zu bytes at block %llu (flags %u, %s buffers) failed\n",
		       len, block, flags, is_vmalloc_addr(src) ? "vmalloc" : "kmalloc");
	return err;
}

static int mfs_kstest(void *bdev, u64 nr_blocks)
{
	static const struct { u64 size, align; } allocs[] = {
		{ 0, 0 }, { 1, 1 }, { 100, 8 }, { 100, 64 }, { 3000, 4096 }, { 4096, 4096 },
		{ 5000, 4096 }, { 100000, 16 }, { 100000, 4096 }, { 3 << 20, 4096 },
		{ 8192, 8192 }, { 100, 65536 }, { 1 << 20, 1 << 20 },
	};
	struct bento_timespec now;
	u8 *k1, *k2, *v1, *v2;
	void *lock;
	size_t i;
	int err = 0, e;

	for (i = 0; i < ARRAY_SIZE(allocs); i++) {
		u64 align = allocs[i].align ? allocs[i].align : 1;
		u64 size = allocs[i].size ? allocs[i].size : 1;
		u8 *p = bento_ks_alloc(allocs[i].size, allocs[i].align, 1);

		KS_CHECK(p != NULL);
		if (!p)
			continue;
		KS_CHECK(IS_ALIGNED((unsigned long)p, align));
		KS_CHECK(!memchr_inv(p, 0, size));
		memset(p, 0x5a, size);
		bento_ks_free(p);
	}
	KS_CHECK(bento_ks_alloc(10, 3, 0) == NULL);
	bento_ks_free(NULL);

	lock = bento_ks_mutex_new();
	KS_CHECK(lock != NULL);
	if (lock) {
		bento_ks_mutex_lock(lock);
		bento_ks_mutex_unlock(lock);
		bento_ks_mutex_free(lock);
	}
	lock = bento_ks_rwsem_new();
	KS_CHECK(lock != NULL);
	if (lock) {
		bento_ks_rwsem_read(lock);
		bento_ks_rwsem_read(lock);
		bento_ks_rwsem_read_unlock(lock);
		bento_ks_rwsem_read_unlock(lock);
		bento_ks_rwsem_write(lock);
		bento_ks_rwsem_write_unlock(lock);
		bento_ks_rwsem_free(lock);
	}
	bento_ks_time_now(&now);
	KS_CHECK(now.sec > 1500000000 && now.nsec < 1000000000);
	bento_ks_log(6, "bento_memfs: kstest log line", 28);

	/* Block I/O: kmalloc and vmalloc buffers, unaligned to pages, several bios. */
	KS_CHECK(nr_blocks >= 2048);
	k1 = kmalloc(65536, GFP_KERNEL);
	k2 = kmalloc(65536, GFP_KERNEL);
	v1 = vmalloc(3 << 20);
	v2 = vmalloc(3 << 20);
	if (k1 && k2 && v1 && v2 && !err) {
		err |= ks_io(bdev, 0, k1, k2, 4096, 0, 1);
		err |= ks_io(bdev, 1, k1, k2, 65536, BENTO_IO_FUA, 2);
		err |= ks_io(bdev, 20, k1 + 512, k2 + 1024, 4096 * 3, BENTO_IO_PREFLUSH, 3);
		err |= ks_io(bdev, 40, v1, v2, 3 << 20, BENTO_IO_PREFLUSH | BENTO_IO_FUA, 4);
		err |= ks_io(bdev, 1000, v1 + 512, v2 + 3584, (2 << 20) + 512, 0, 5);
		err |= ks_io(bdev, nr_blocks - 1, k1, k2, 4096, 0, 6);
		e = bento_ks_bdev_read(bdev, nr_blocks, k2, 4096);
		KS_CHECK(e == -EINVAL);
		e = bento_ks_bdev_read(bdev, nr_blocks - 1, k2, 8192);
		KS_CHECK(e == -EINVAL);
		err |= ks_io(bdev, 60, k1 + 3, k2 + 5, 8192, BENTO_IO_FUA, 7);
		e = bento_ks_bdev_read(bdev, 0, k2, 100);
		KS_CHECK(e == -EINVAL);
		e = bento_ks_bdev_flush(bdev);
		KS_CHECK(e == 0);
		e = bento_ks_bdev_discard(bdev, 40, 256);
		KS_CHECK(e == 0);
		e = bento_ks_bdev_discard(bdev, nr_blocks, 1);
		KS_CHECK(e == -EINVAL);
	} else {
		KS_CHECK(k1 && k2 && v1 && v2);
	}
	kfree(k1);
	kfree(k2);
	vfree(v1);
	vfree(v2);
	if (!err)
		pr_info("kstest ok\n");
	return err;
}

/* ---- operations ---------------------------------------------------------------------------- */

static int mfs_mount(void *bdev, u64 nr_blocks, const char *options, u32 options_len, u32 flags,
		     struct bento_fs **fs_out)
{
	struct bento_fs *fs;
	struct mfs_inode *root;
	bool verbose = false, kstest = false;
	u64 maxfile = 64;
	char *opts, *o, *p;
	int err = 0;

	opts = kmemdup_nul(options ? options : "", options_len, GFP_KERNEL);
	if (!opts)
		return -ENOMEM;
	pr_info("mount options \"%s\" flags %u blocks %llu\n", opts, flags, nr_blocks);
	p = opts;
	while ((o = strsep(&p, ",")) != NULL) {
		if (!*o)
			continue;
		if (!strcmp(o, "verbose")) {
			verbose = true;
		} else if (!strcmp(o, "kstest")) {
			kstest = true;
		} else if (!strncmp(o, "maxfile=", 8)) {
			if (kstrtoull(o + 8, 10, &maxfile) || !maxfile || maxfile > 1024) {
				pr_err("bad maxfile= value \"%s\"\n", o + 8);
				err = -EINVAL;
			}
		} else {
			pr_err("unknown option \"%s\"\n", o);
			err = -EINVAL;
		}
	}
	kfree(opts);
	if (!err && kstest)
		err = mfs_kstest(bdev, nr_blocks);
	if (err)
		return err;

	fs = kzalloc(sizeof(*fs), GFP_KERNEL);
	if (!fs)
		return -ENOMEM;
	mutex_init(&fs->lock);
	xa_init(&fs->inodes);
	fs->next_ino = 1;
	fs->next_fh = 1;
	fs->maxfile = maxfile << 20;
	fs->rdonly = flags & BENTO_MOUNT_RDONLY;
	root = mfs_new_inode(fs, NULL, S_IFDIR | 0755, 0);
	if (!root) {
		kfree(fs);
		return -ENOMEM;
	}
	root->parent = 1;
	if (verbose)
		pr_info("mounted (%s)\n", fs->rdonly ? "ro" : "rw");
	*fs_out = fs;
	return 0;
}

static int mfs_destroy(struct bento_fs *fs)
{
	struct mfs_inode *i;
	unsigned long idx;
	u64 leaks = 0;

	pr_info("stats reads=%llu writes=%llu max_read=%llu max_write=%llu forgets=%llu\n",
		fs->reads, fs->writes, fs->max_read, fs->max_write, fs->forgets);
	xa_for_each(&fs->inodes, idx, i) {
		if (i->ino != 1 && i->nlookup) {
			pr_err("leak: inode %llu still has %llu lookups at unmount\n", i->ino,
			       i->nlookup);
			leaks++;
		}
		if (i->ino == 1 && i->nlookup)
			pr_err("leak: the root was counted %llu times\n", i->nlookup);
	}
	pr_info("unmounted: %llu inodes, %llu lookup leaks\n", fs->nr_inodes, leaks);
	xa_for_each(&fs->inodes, idx, i)
		mfs_free_inode(fs, i);
	xa_destroy(&fs->inodes);
	kfree(fs);
	return 0;
}

static int mfs_sync_fs(struct bento_fs *fs)
{
	return 0;
}

static int mfs_background(struct bento_fs *fs)
{
	mutex_lock(&fs->lock);
	if (fs->rdonly)
		pr_err("background work on a read-only mount\n");
	fs->background++;
	mutex_unlock(&fs->lock);
	return 0;
}

static int mfs_lookup(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen, struct bento_attr *entry)
{
	struct mfs_inode *dir, *i;
	struct mfs_dirent *d;
	int err;

	mutex_lock(&fs->lock);
	err = mfs_dir(fs, parent, &dir);
	if (err)
		goto out;
	d = mfs_find(dir, name, namelen);
	if (!d) {
		err = -ENOENT;
		goto out;
	}
	i = mfs_get(fs, d->ino);
	if (!i) {
		err = -EIO;
		goto out;
	}
	i->nlookup++;
	mfs_fill(i, entry);
out:
	mutex_unlock(&fs->lock);
	return err;
}

static void mfs_forget(struct bento_fs *fs, u64 ino, u64 nlookup)
{
	struct mfs_inode *i;

	mutex_lock(&fs->lock);
	fs->forgets++;
	i = mfs_get(fs, ino);
	if (!i) {
		pr_err("forget of unknown inode %llu\n", ino);
	} else if (ino == 1) {
		pr_err("forget of the root (%llu)\n", nlookup);
	} else if (nlookup > i->nlookup) {
		pr_err("forget of inode %llu by %llu but it has %llu lookups\n", ino, nlookup,
		       i->nlookup);
		i->nlookup = 0;
		mfs_maybe_free(fs, i);
	} else {
		i->nlookup -= nlookup;
		mfs_maybe_free(fs, i);
	}
	mutex_unlock(&fs->lock);
}

static int mfs_getattr(struct bento_fs *fs, const struct bento_req *req, u64 ino,
		       struct bento_attr *attr)
{
	struct mfs_inode *i;
	int err = 0;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (i)
		mfs_fill(i, attr);
	else
		err = -ENOENT;
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_setattr(struct bento_fs *fs, const struct bento_req *req, u64 ino,
		       const struct bento_setattr *set, struct bento_attr *attr)
{
	struct mfs_inode *i;
	struct bento_timespec now;
	int err = 0;

	mfs_now(&now);
	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		err = -ENOENT;
		goto out;
	}
	if (fs->rdonly) {
		err = -EROFS;
		goto out;
	}
	if (set->valid & BENTO_SET_SIZE) {
		if (!S_ISREG(i->mode)) {
			err = -EINVAL;
			goto out;
		}
		err = mfs_reserve(fs, i, set->size);
		if (err)
			goto out;
		mfs_resize(i, set->size);
		i->mtime = now;
	}
	if (set->valid & BENTO_SET_MODE)
		i->mode = (i->mode & S_IFMT) | (set->mode & 07777);
	if (set->valid & BENTO_SET_UID)
		i->uid = set->uid;
	if (set->valid & BENTO_SET_GID)
		i->gid = set->gid;
	if (set->valid & BENTO_SET_KILL_SUID) {
		i->mode &= ~S_ISUID;
		if (i->mode & S_IXGRP)
			i->mode &= ~S_ISGID;
	}
	if (set->valid & BENTO_SET_ATIME)
		i->atime = set->atime;
	if (set->valid & BENTO_SET_ATIME_NOW)
		i->atime = now;
	if (set->valid & BENTO_SET_MTIME)
		i->mtime = set->mtime;
	if (set->valid & BENTO_SET_MTIME_NOW)
		i->mtime = now;
	i->ctime = (set->valid & BENTO_SET_CTIME) ? set->ctime : now;
	mfs_fill(i, attr);
out:
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_readlink(struct bento_fs *fs, const struct bento_req *req, u64 ino, char *buf,
			u32 size)
{
	struct mfs_inode *i;
	int ret;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i)
		ret = -ENOENT;
	else if (!S_ISLNK(i->mode))
		ret = -EINVAL;
	else {
		ret = min(size, i->targetlen);
		memcpy(buf, i->target, ret);
	}
	mutex_unlock(&fs->lock);
	return ret;
}

/* Creates an entry; returns the new inode (counted) or an ERR_PTR. Under fs->lock. */
static struct mfs_inode *mfs_make(struct bento_fs *fs, const struct bento_req *req, u64 parent,
				  const char *name, u32 namelen, u32 mode, u32 rdev)
{
	struct mfs_inode *dir, *i;
	int err;

	if (fs->rdonly)
		return ERR_PTR(-EROFS);
	if (!namelen || namelen > NAME_MAX)
		return ERR_PTR(-ENAMETOOLONG);
	err = mfs_dir(fs, parent, &dir);
	if (err)
		return ERR_PTR(err);
	if (!dir->nlink)
		return ERR_PTR(-ENOENT);
	if (mfs_find(dir, name, namelen))
		return ERR_PTR(-EEXIST);
	i = mfs_new_inode(fs, req, mode, rdev);
	if (!i)
		return ERR_PTR(-ENOMEM);
	if ((dir->mode & S_ISGID)) {
		i->gid = dir->gid;
		if (S_ISDIR(mode))
			i->mode |= S_ISGID;
	}
	err = mfs_add_entry(dir, name, namelen, i->ino);
	if (err) {
		mfs_free_inode(fs, i);
		return ERR_PTR(err);
	}
	if (S_ISDIR(mode)) {
		i->parent = dir->ino;
		dir->nlink++;
	}
	i->inject = namelen > 4 && !memcmp(name, "err-", 4);
	dir->mtime = dir->ctime = i->ctime;
	i->nlookup++;
	return i;
}

static int mfs_make_entry(struct bento_fs *fs, const struct bento_req *req, u64 parent,
			  const char *name, u32 namelen, u32 mode, u32 rdev,
			  struct bento_attr *entry, struct mfs_inode **out)
{
	struct mfs_inode *i;

	mutex_lock(&fs->lock);
	i = mfs_make(fs, req, parent, name, namelen, mode, rdev);
	if (!IS_ERR(i))
		mfs_fill(i, entry);
	if (out && !IS_ERR(i))
		*out = i;
	mutex_unlock(&fs->lock);
	return PTR_ERR_OR_ZERO(i);
}

static int mfs_mknod(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		     const char *name, u32 namelen, u32 mode, u32 rdev, struct bento_attr *entry)
{
	return mfs_make_entry(fs, req, parent, name, namelen, mode, rdev, entry, NULL);
}

static int mfs_mkdir(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		     const char *name, u32 namelen, u32 mode, struct bento_attr *entry)
{
	return mfs_make_entry(fs, req, parent, name, namelen, S_IFDIR | (mode & 07777), 0, entry,
			      NULL);
}

static int mfs_create(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen, u32 mode, u32 flags,
		      struct bento_attr *entry, u64 *fh)
{
	int err = mfs_make_entry(fs, req, parent, name, namelen, S_IFREG | (mode & 07777), 0,
				 entry, NULL);

	if (!err) {
		mutex_lock(&fs->lock);
		*fh = fs->next_fh++;
		mutex_unlock(&fs->lock);
	}
	return err;
}

static int mfs_symlink(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		       const char *name, u32 namelen, const char *target, u32 targetlen,
		       struct bento_attr *entry)
{
	struct mfs_inode *i;
	char *t;

	t = kmemdup(target, targetlen, GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	mutex_lock(&fs->lock);
	i = mfs_make(fs, req, parent, name, namelen, S_IFLNK | 0777, 0);
	if (IS_ERR(i)) {
		mutex_unlock(&fs->lock);
		kfree(t);
		return PTR_ERR(i);
	}
	i->target = t;
	i->targetlen = targetlen;
	i->size = targetlen;
	mfs_fill(i, entry);
	mutex_unlock(&fs->lock);
	return 0;
}

static int mfs_link(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 newparent,
		    const char *newname, u32 newnamelen, struct bento_attr *entry)
{
	struct mfs_inode *dir, *i;
	int err;

	mutex_lock(&fs->lock);
	err = -EROFS;
	if (fs->rdonly)
		goto out;
	err = mfs_dir(fs, newparent, &dir);
	if (err)
		goto out;
	i = mfs_get(fs, ino);
	err = -ENOENT;
	if (!i)
		goto out;
	err = -EPERM;
	if (S_ISDIR(i->mode))
		goto out;
	err = -EEXIST;
	if (mfs_find(dir, newname, newnamelen))
		goto out;
	err = mfs_add_entry(dir, newname, newnamelen, ino);
	if (err)
		goto out;
	i->nlink++;
	i->nlookup++;
	mfs_now(&i->ctime);
	dir->mtime = dir->ctime = i->ctime;
	mfs_fill(i, entry);
out:
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_remove(struct bento_fs *fs, u64 parent, const char *name, u32 namelen,
		      bool isdir)
{
	struct mfs_inode *dir, *i;
	struct mfs_dirent *d;
	int err;

	mutex_lock(&fs->lock);
	err = -EROFS;
	if (fs->rdonly)
		goto out;
	err = mfs_dir(fs, parent, &dir);
	if (err)
		goto out;
	d = mfs_find(dir, name, namelen);
	err = -ENOENT;
	if (!d)
		goto out;
	i = mfs_get(fs, d->ino);
	err = -EIO;
	if (!i)
		goto out;
	if (isdir) {
		err = -ENOTDIR;
		if (!S_ISDIR(i->mode))
			goto out;
		err = -ENOTEMPTY;
		if (!list_empty(&i->entries))
			goto out;
		i->nlink = 0;
		dir->nlink--;
	} else {
		err = -EISDIR;
		if (S_ISDIR(i->mode))
			goto out;
		i->nlink--;
	}
	err = 0;
	list_del(&d->link);
	kfree(d);
	mfs_now(&i->ctime);
	dir->mtime = dir->ctime = i->ctime;
	mfs_maybe_free(fs, i);
out:
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_unlink(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen)
{
	return mfs_remove(fs, parent, name, namelen, false);
}

static int mfs_rmdir(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		     const char *name, u32 namelen)
{
	return mfs_remove(fs, parent, name, namelen, true);
}

static int mfs_rename(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen, u64 newparent, const char *newname,
		      u32 newnamelen, u32 flags)
{
	struct mfs_inode *odir, *ndir, *src, *dst = NULL;
	struct mfs_dirent *od, *nd;
	struct bento_timespec now;
	int err;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	mfs_now(&now);
	mutex_lock(&fs->lock);
	err = -EROFS;
	if (fs->rdonly)
		goto out;
	err = mfs_dir(fs, parent, &odir);
	if (!err)
		err = mfs_dir(fs, newparent, &ndir);
	if (err)
		goto out;
	od = mfs_find(odir, name, namelen);
	err = -ENOENT;
	if (!od)
		goto out;
	src = mfs_get(fs, od->ino);
	nd = mfs_find(ndir, newname, newnamelen);
	if (nd)
		dst = mfs_get(fs, nd->ino);
	err = -EIO;
	if (!src || (nd && !dst))
		goto out;
	err = 0;
	if (nd == od)
		goto out;

	if (flags & RENAME_EXCHANGE) {
		err = -ENOENT;
		if (!nd)
			goto out;
		od->ino = dst->ino;
		nd->ino = src->ino;
		if (S_ISDIR(src->mode) != S_ISDIR(dst->mode) && odir != ndir) {
			if (S_ISDIR(src->mode)) {
				odir->nlink--;
				ndir->nlink++;
			} else {
				odir->nlink++;
				ndir->nlink--;
			}
		}
		if (S_ISDIR(src->mode))
			src->parent = ndir->ino;
		if (S_ISDIR(dst->mode))
			dst->parent = odir->ino;
		src->ctime = dst->ctime = now;
		err = 0;
		goto done;
	}

	if (nd) {
		err = -EEXIST;
		if (flags & RENAME_NOREPLACE)
			goto out;
		if (S_ISDIR(src->mode)) {
			err = -ENOTDIR;
			if (!S_ISDIR(dst->mode))
				goto out;
			err = -ENOTEMPTY;
			if (!list_empty(&dst->entries))
				goto out;
			dst->nlink = 0;
			ndir->nlink--;
		} else {
			err = -EISDIR;
			if (S_ISDIR(dst->mode))
				goto out;
			dst->nlink--;
		}
		dst->ctime = now;
		/* The target entry now names the source. */
		nd->ino = src->ino;
		list_del(&od->link);
		kfree(od);
		mfs_maybe_free(fs, dst);
	} else {
		err = mfs_add_entry(ndir, newname, newnamelen, src->ino);
		if (err)
			goto out;
		list_del(&od->link);
		kfree(od);
	}
	if (S_ISDIR(src->mode) && odir != ndir) {
		odir->nlink--;
		ndir->nlink++;
		src->parent = ndir->ino;
	}
	src->ctime = now;
	err = 0;
done:
	odir->mtime = odir->ctime = now;
	ndir->mtime = ndir->ctime = now;
out:
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_open(struct bento_fs *fs, const struct bento_req *req, u64 ino, u32 flags,
		    u64 *fh)
{
	struct mfs_inode *i;
	int err = 0;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i)
		err = -ENOENT;
	else if (fs->rdonly && (flags & O_ACCMODE) != O_RDONLY)
		err = -EROFS;
	else
		*fh = fs->next_fh++;
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_release(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
		       u32 flags)
{
	return 0;
}

static s64 mfs_read(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh, u64 off,
		    void *buf, u64 len)
{
	struct mfs_inode *i;
	s64 ret;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		ret = -ENOENT;
	} else if (!S_ISREG(i->mode)) {
		ret = -EISDIR;
	} else if (i->inject) {
		ret = -EIO;
	} else {
		ret = off < i->size ? min(len, i->size - off) : 0;
		if (ret)
			memcpy(buf, i->data + off, ret);
		fs->reads++;
		fs->max_read = max(fs->max_read, len);
	}
	mutex_unlock(&fs->lock);
	return ret;
}

static s64 mfs_write(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh, u64 off,
		     const void *buf, u64 len)
{
	struct mfs_inode *i;
	s64 ret;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		ret = -ENOENT;
	} else if (!S_ISREG(i->mode)) {
		ret = -EISDIR;
	} else if (fs->rdonly) {
		ret = -EROFS;
	} else if (i->inject) {
		ret = -ENOSPC;
	} else if (off + len < off) {
		ret = -EFBIG;
	} else {
		ret = mfs_reserve(fs, i, off + len);
		if (!ret) {
			memcpy(i->data + off, buf, len);
			if (off + len > i->size)
				i->size = off + len;
			mfs_now(&i->mtime);
			i->ctime = i->mtime;
			ret = len;
		}
		fs->writes++;
		fs->max_write = max(fs->max_write, len);
	}
	mutex_unlock(&fs->lock);
	return ret;
}

static int mfs_fsync(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
		     u32 datasync)
{
	struct mfs_inode *i;
	int err = 0;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i)
		err = -ENOENT;
	else if (i->inject)
		err = -EROFS;
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_opendir(struct bento_fs *fs, const struct bento_req *req, u64 ino, u32 flags,
		       u64 *fh)
{
	struct mfs_inode *i;
	int err;

	mutex_lock(&fs->lock);
	err = mfs_dir(fs, ino, &i);
	if (!err)
		*fh = fs->next_fh++;
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_readdir(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
		       u64 off, bento_filldir_t fill, void *ctx)
{
	struct mfs_inode *dir, *i;
	struct mfs_dirent *d;
	int err;

	mutex_lock(&fs->lock);
	err = mfs_dir(fs, ino, &dir);
	if (err)
		goto out;
	if (off == 0 && fill(ctx, ".", 1, dir->ino, 1, DT_DIR))
		goto out;
	if (off <= 1 && fill(ctx, "..", 2, dir->parent, 2, DT_DIR))
		goto out;
	list_for_each_entry(d, &dir->entries, link) {
		if (d->cookie < off)
			continue;
		i = mfs_get(fs, d->ino);
		if (fill(ctx, d->name, d->namelen, d->ino, d->cookie + 1,
			 i ? (i->mode & S_IFMT) >> 12 : DT_UNKNOWN))
			break;
	}
out:
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_releasedir(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh)
{
	return 0;
}

static int mfs_fsyncdir(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
			u32 datasync)
{
	return 0;
}

static int mfs_statfs(struct bento_fs *fs, const struct bento_req *req, struct bento_statfs *st)
{
	const u64 blocks = 1 << 18, files = 1 << 16;	/* 1 GiB, 64 Ki inodes */

	mutex_lock(&fs->lock);
	st->blocks = blocks;
	st->bfree = blocks - min(blocks, fs->data_bytes >> 12);
	st->bavail = st->bfree;
	st->files = files;
	st->ffree = files - min(files, fs->nr_inodes);
	st->bsize = 4096;
	st->frsize = 4096;
	st->namelen = NAME_MAX;
	mutex_unlock(&fs->lock);
	return 0;
}

static struct mfs_xattr *mfs_xattr_find(struct mfs_inode *i, const char *name, u32 namelen)
{
	struct mfs_xattr *x;

	list_for_each_entry(x, &i->xattrs, link)
		if (x->namelen == namelen && !memcmp(x->name, name, namelen))
			return x;
	return NULL;
}

static int mfs_setxattr(struct bento_fs *fs, const struct bento_req *req, u64 ino,
			const char *name, u32 namelen, const void *value, u32 size, u32 flags)
{
	struct mfs_inode *i;
	struct mfs_xattr *x;
	void *v;
	int err = 0;

	v = kmemdup(value, size ? size : 1, GFP_KERNEL);
	if (!v)
		return -ENOMEM;
	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		err = -ENOENT;
		goto out;
	}
	if (fs->rdonly) {
		err = -EROFS;
		goto out;
	}
	if (i->inject) {
		err = -E2BIG;
		goto out;
	}
	x = mfs_xattr_find(i, name, namelen);
	if (x && (flags & XATTR_CREATE)) {
		err = -EEXIST;
		goto out;
	}
	if (!x && (flags & XATTR_REPLACE)) {
		err = -ENODATA;
		goto out;
	}
	if (!x) {
		x = kzalloc(sizeof(*x), GFP_KERNEL);
		if (x)
			x->name = kmemdup(name, namelen, GFP_KERNEL);
		if (!x || !x->name) {
			kfree(x);
			err = -ENOMEM;
			goto out;
		}
		x->namelen = namelen;
		list_add_tail(&x->link, &i->xattrs);
	}
	kfree(x->value);
	x->value = v;
	x->size = size;
	v = NULL;
	mfs_now(&i->ctime);
out:
	mutex_unlock(&fs->lock);
	kfree(v);
	return err;
}

static int mfs_getxattr(struct bento_fs *fs, const struct bento_req *req, u64 ino,
			const char *name, u32 namelen, void *value, u32 size)
{
	static const char stats[] = "user.memfs.stats";
	struct mfs_inode *i;
	struct mfs_xattr *x;
	char buf[160];
	int ret;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	if (namelen == sizeof(stats) - 1 && !memcmp(name, stats, namelen)) {
		ret = scnprintf(buf, sizeof(buf),
				"reads=%llu writes=%llu max_read=%llu max_write=%llu background=%llu",
				fs->reads, fs->writes, fs->max_read, fs->max_write, fs->background);
		if (size && ret > size)
			ret = -ERANGE;
		else if (size)
			memcpy(value, buf, ret);
		goto out;
	}
	x = mfs_xattr_find(i, name, namelen);
	if (!x) {
		ret = -ENODATA;
		goto out;
	}
	ret = x->size;
	if (size && x->size > size)
		ret = -ERANGE;
	else if (size)
		memcpy(value, x->value, x->size);
out:
	mutex_unlock(&fs->lock);
	return ret;
}

static int mfs_listxattr(struct bento_fs *fs, const struct bento_req *req, u64 ino, char *list,
			 u32 size)
{
	struct mfs_inode *i;
	struct mfs_xattr *x;
	u32 total = 0;
	int ret;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		ret = -ENOENT;
		goto out;
	}
	list_for_each_entry(x, &i->xattrs, link)
		total += x->namelen + 1;
	ret = total;
	if (!size)
		goto out;
	if (total > size) {
		ret = -ERANGE;
		goto out;
	}
	list_for_each_entry(x, &i->xattrs, link) {
		memcpy(list, x->name, x->namelen);
		list[x->namelen] = '\0';
		list += x->namelen + 1;
	}
out:
	mutex_unlock(&fs->lock);
	return ret;
}

static int mfs_removexattr(struct bento_fs *fs, const struct bento_req *req, u64 ino,
			   const char *name, u32 namelen)
{
	struct mfs_inode *i;
	struct mfs_xattr *x;
	int err = 0;

	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		err = -ENOENT;
		goto out;
	}
	if (fs->rdonly) {
		err = -EROFS;
		goto out;
	}
	x = mfs_xattr_find(i, name, namelen);
	if (!x) {
		err = -ENODATA;
		goto out;
	}
	list_del(&x->link);
	kfree(x->name);
	kfree(x->value);
	kfree(x);
	mfs_now(&i->ctime);
out:
	mutex_unlock(&fs->lock);
	return err;
}

static int mfs_fallocate(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
			 u64 off, u64 len, u32 mode)
{
	struct mfs_inode *i;
	u64 end = off + len;
	int err = 0;

	if (end < off)
		return -EFBIG;
	mutex_lock(&fs->lock);
	i = mfs_get(fs, ino);
	if (!i) {
		err = -ENOENT;
		goto out;
	}
	if (!S_ISREG(i->mode)) {
		err = -ENODEV;
		goto out;
	}
	if (fs->rdonly) {
		err = -EROFS;
		goto out;
	}
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		err = -EOPNOTSUPP;
		goto out;
	}
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		u64 zend = min(end, i->size);

		if (off < zend)
			memset(i->data + off, 0, zend - off);
	}
	if (!(mode & FALLOC_FL_PUNCH_HOLE)) {
		err = mfs_reserve(fs, i, end);
		if (err)
			goto out;
		if (!(mode & FALLOC_FL_KEEP_SIZE) && end > i->size)
			i->size = end;
	}
	mfs_now(&i->mtime);
	i->ctime = i->mtime;
out:
	mutex_unlock(&fs->lock);
	return err;
}

static const struct bento_ops mfs_ops = {
	.abi_version	= BENTO_ABI_VERSION,
	.ops_size	= sizeof(struct bento_ops),
	.mount		= mfs_mount,
	.destroy	= mfs_destroy,
	.sync_fs	= mfs_sync_fs,
	.lookup		= mfs_lookup,
	.forget		= mfs_forget,
	.getattr	= mfs_getattr,
	.setattr	= mfs_setattr,
	.readlink	= mfs_readlink,
	.mknod		= mfs_mknod,
	.mkdir		= mfs_mkdir,
	.unlink		= mfs_unlink,
	.rmdir		= mfs_rmdir,
	.symlink	= mfs_symlink,
	.rename		= mfs_rename,
	.link		= mfs_link,
	.open		= mfs_open,
	.release	= mfs_release,
	.read		= mfs_read,
	.write		= mfs_write,
	.fsync		= mfs_fsync,
	.opendir	= mfs_opendir,
	.readdir	= mfs_readdir,
	.releasedir	= mfs_releasedir,
	.fsyncdir	= mfs_fsyncdir,
	.statfs		= mfs_statfs,
	.setxattr	= mfs_setxattr,
	.getxattr	= mfs_getxattr,
	.listxattr	= mfs_listxattr,
	.removexattr	= mfs_removexattr,
	.create		= mfs_create,
	.fallocate	= mfs_fallocate,
	.background	= mfs_background,
};

static struct bento_fs_type mfs_type = {
	.name		= "memfs",
	.version	= "1.0",
	.owner		= THIS_MODULE,
	.ops		= &mfs_ops,
};

/* The same file system under a second name: two registrations, one module. */
static struct bento_fs_type mfs_type2 = {
	.name		= "memfs2",
	.version	= "2.0",
	.owner		= THIS_MODULE,
	.ops		= &mfs_ops,
};

/* Registry checks bentofs must refuse: a taken name, another ABI version, a short table. */
static void mfs_registry_selfcheck(void)
{
	static struct bento_ops bad_ops;
	static struct bento_fs_type dup = { .name = "memfs", .version = "dup" };
	static struct bento_fs_type bad = { .name = "memfs-bad", .version = "bad" };
	int e1, e2, e3;

	dup.owner = THIS_MODULE;
	dup.ops = &mfs_ops;
	e1 = bento_register_fs(&dup);
	bad_ops = mfs_ops;
	bad_ops.abi_version = BENTO_ABI_VERSION + 1;
	bad.owner = THIS_MODULE;
	bad.ops = &bad_ops;
	e2 = bento_register_fs(&bad);
	if (!e2)
		bento_unregister_fs(&bad);
	bad_ops.abi_version = BENTO_ABI_VERSION;
	bad_ops.ops_size = offsetof(struct bento_ops, background);
	e3 = bento_register_fs(&bad);
	if (!e3)
		bento_unregister_fs(&bad);
	if (!e1)
		bento_unregister_fs(&dup);
	if (e1 == -EEXIST && e2 == -EINVAL && e3 == -EINVAL)
		pr_info("registry self-check ok\n");
	else
		pr_err("registry self-check FAILED: dup %d, abi %d, size %d\n", e1, e2, e3);
}

static int __init mfs_init(void)
{
	int err = bento_register_fs(&mfs_type);

	if (err)
		return err;
	err = bento_register_fs(&mfs_type2);
	if (err) {
		bento_unregister_fs(&mfs_type);
		return err;
	}
	mfs_registry_selfcheck();
	return 0;
}

static void __exit mfs_exit(void)
{
	bento_unregister_fs(&mfs_type2);
	bento_unregister_fs(&mfs_type);
}

module_init(mfs_init);
module_exit(mfs_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("In-memory test file system for bentofs");
