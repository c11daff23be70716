/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * bentofs internals: the VFS side of Bento. See include/bento/bento_abi.h for the contract with
 * the file-system modules.
 */
#ifndef BENTOFS_H
#define BENTOFS_H

#include <linux/fs.h>
#include <linux/list.h>
#include <linux/percpu-rwsem.h>
#include <linux/sched/mm.h>
#include <linux/version.h>
#include <linux/uidgid.h>
#include <linux/cred.h>
#include <linux/workqueue.h>
#include <linux/shrinker.h>
#include <bento/bento_abi.h>

#define BENTO_SUPER_MAGIC	0x42454e54	/* "BENT" */
#define BENTO_ROOT_INO		1ULL
#define BENTO_BLOCK_SHIFT	12		/* bento_ks block I/O unit, and s_blocksize */

/*
 * The size of the operation table this bentofs needs: ABI version 1's table up to `reserve`;
 * the fields after it (export_state, import_state, drop) are needed only for live upgrade, and
 * shrink (memory pressure, shrink.c) only by modules built after 0.3.1.
 */
#define BENTO_OPS_SIZE_MIN	offsetofend(struct bento_ops, reserve)

/* ---- registry ------------------------------------------------------------------------------ */

/* The longest file-system name bento_register_fs() accepts. */
#define BENTO_NAME_MAX		64

/*
 * One registered file-system name (bentofs' private bookkeeping around bento_fs_type). A live
 * upgrade keeps the registration and points it at the new module's type.
 */
struct bento_registration {
	struct list_head link;			/* in bento_registry, under bento_registry_lock */
	struct bento_fs_type *type;		/* the current version; under bento_registry_lock */
	struct list_head mounts;		/* bento_sb_info.type_link, under bento_registry_lock */
	unsigned int nr_mounts;
	struct kobject *kobj;			/* /sys/fs/bento/NAME */
};

extern struct mutex bento_registry_lock;

/* A type's version for messages and /proc ("-" when it has none). */
static inline const char *bento_version(const struct bento_fs_type *type)
{
	return type->version && type->version[0] ? type->version : "-";
}

/* ---- per mount ----------------------------------------------------------------------------- */

struct bento_sb_info {
	/*
	 * The file system this mount calls. Read only under `upgrade` (shared), through
	 * bento_call(); a live upgrade takes `upgrade` exclusively, exports the state, swaps
	 * ops/fs/type and releases it.
	 */
	const struct bento_ops *ops;
	struct bento_fs *fs;			/* NULL before mount() and after destroy() */
	struct bento_fs_type *type;		/* its module is pinned (try_module_get) */
	struct percpu_rw_semaphore upgrade;
	bool upgrade_inited;
	/*
	 * Calls take `upgrade` (the module parameter quiesce at mount time). Without it (a
	 * benchmark setting, to measure what the semaphore costs) the mount cannot be upgraded.
	 */
	bool quiesce;
	/*
	 * The file system's name, for messages: unlike type->name it stays valid whichever
	 * module the mount runs on.
	 */
	char name[BENTO_NAME_MAX + 1];

	struct bento_registration *reg;		/* NULL once detached from the registry */
	struct list_head type_link;		/* in reg->mounts */
	struct super_block *sb;

	/* Orders attribute updates: a reply older than the inode's last change is dropped. */
	atomic64_t attr_version;

	/* ops->background every background_ms, except while read-only or frozen. */
	struct delayed_work bg_work;
	bool bg_active;

	/* Memory pressure asks the file system to give back clean caches (shrink.c). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
	struct shrinker *shrinker;
#else
	struct shrinker shrinker;
	bool shrinker_on;
#endif

	char *options;				/* options other than fs=, comma-joined, for mount() */
	u32 options_len;
	u32 mount_flags;			/* BENTO_MOUNT_* given to mount() */
};

static inline struct bento_sb_info *BENTO_SB(struct super_block *sb)
{
	return sb->s_fs_info;
}

/*
 * Entering and leaving the file system: the mount's upgrade lock, shared. A live upgrade takes it
 * exclusively, so it swaps ops/fs between calls, never during one. A percpu rw-semaphore makes
 * the shared side a per-CPU increment on the normal path; an upgrade pays an RCU grace period
 * and the wait for calls in flight. Never nest: a second down_read in the same task blocks
 * behind a waiting upgrade that waits for the first (bentofs never calls a file system from
 * inside a call into it: readdir, readlink and xattrs fill kernel buffers that are copied out
 * afterwards, page-cache I/O runs on kernel pages).
 */
static inline void bento_call_enter(struct bento_sb_info *sbi)
{
	if (sbi->quiesce)
		percpu_down_read(&sbi->upgrade);
}

static inline void bento_call_exit(struct bento_sb_info *sbi)
{
	if (sbi->quiesce)
		percpu_up_read(&sbi->upgrade);
}

/*
 * THE call wrapper: every call from bentofs into a mounted file system goes through here. It
 * holds the mount's upgrade lock shared (bento_call_enter), reads ops and fs under it, and runs the
 * call in a NOFS allocation scope (we are a file system: memory reclaim must not recurse into
 * file systems from inside one). An operation the table leaves NULL yields `dflt`.
 */
#define bento_call(sbi, dflt, op, ...)						\
({										\
	struct bento_sb_info *__sbi = (sbi);					\
	typeof(__sbi->ops->op(__sbi->fs, ##__VA_ARGS__)) __ret = (dflt);	\
	unsigned int __nofs;							\
										\
	bento_call_enter(__sbi);					\
	__nofs = memalloc_nofs_save();						\
	if (__sbi->ops->op)							\
		__ret = __sbi->ops->op(__sbi->fs, ##__VA_ARGS__);		\
	memalloc_nofs_restore(__nofs);						\
	bento_call_exit(__sbi);						\
	__ret;									\
})

/* The same for operations without a result (forget). */
#define bento_call_void(sbi, op, ...)						\
do {										\
	struct bento_sb_info *__sbi = (sbi);					\
	unsigned int __nofs;							\
										\
	bento_call_enter(__sbi);					\
	__nofs = memalloc_nofs_save();						\
	if (__sbi->ops->op)							\
		__sbi->ops->op(__sbi->fs, ##__VA_ARGS__);			\
	memalloc_nofs_restore(__nofs);						\
	bento_call_exit(__sbi);						\
} while (0)

/*
 * A result that must be 0 or a negative errno. Anything else from a file system is a bug there;
 * it becomes -EIO rather than leaking to userspace as a success value.
 */
int bento_status(struct bento_sb_info *sbi, const char *op, long ret);

/* shrink.c */
void bento_shrinker_start(struct bento_sb_info *sbi);
void bento_shrinker_stop(struct bento_sb_info *sbi);

/* ---- per inode ----------------------------------------------------------------------------- */

enum {
	BENTO_I_ATTR_STALE,	/* refresh attributes from the file system before stat */
	BENTO_I_BAD,		/* the number was reused by the file system: stop using it */
};

struct bento_inode {
	struct inode vfs_inode;
	u64 nodeid;			/* the file system's inode number */
	atomic64_t nlookup;		/* lookup references to give back with forget() */
	unsigned long state;		/* BENTO_I_* bits */
	u64 attr_version;		/* sbi->attr_version at the last change; under i_lock */
};

static inline struct bento_inode *BENTO_I(struct inode *inode)
{
	return container_of(inode, struct bento_inode, vfs_inode);
}

static inline u64 bento_ino(struct inode *inode)
{
	return BENTO_I(inode)->nodeid;
}

static inline void bento_invalidate_attr(struct inode *inode)
{
	set_bit(BENTO_I_ATTR_STALE, &BENTO_I(inode)->state);
}

/* The version to pass to bento_iget()/attribute updates for a reply to a call made now. */
static inline u64 bento_attr_version(struct super_block *sb)
{
	return atomic64_read(&BENTO_SB(sb)->attr_version);
}

/* Who is calling: the current task's fs ids in the initial user namespace. */
static inline struct bento_req bento_make_req(void)
{
	struct bento_req req = {
		.uid = from_kuid(&init_user_ns, current_fsuid()),
		.gid = from_kgid(&init_user_ns, current_fsgid()),
		.pid = task_tgid_nr(current),
	};

	return req;
}

#define BENTO_REQ(name)	struct bento_req name = bento_make_req()

/* fh of an open file, kept in file->private_data. */
static inline u64 bento_fh(struct file *file)
{
	return file ? (u64)(uintptr_t)file->private_data : 0;
}

/* ---- kernel-version shims (6.1 .. 6.12) ---------------------------------------------------- */

/*
 * A write-held percpu rw-semaphore handed from the task that took it to the one that releases
 * it: lockdep bookkeeping only, as percpu_rwsem_release() and _acquire() do for freeze_super(),
 * whose signatures differ between 6.1 and 6.12.
 */
#define bento_rwsem_handover(sem)	lock_release(&(sem)->dep_map, _THIS_IP_)
#define bento_rwsem_takeover(sem)	lock_acquire(&(sem)->dep_map, 0, 1, 0, 1, NULL, _THIS_IP_)

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define BENTO_IDMAP		struct mnt_idmap *idmap
#define BENTO_IDMAP_ARG		idmap
#else
#define BENTO_IDMAP		struct user_namespace *idmap
#define BENTO_IDMAP_ARG		idmap
#endif

static inline struct timespec64 bento_ts(const struct bento_timespec *t)
{
	struct timespec64 ts = { .tv_sec = t->sec, .tv_nsec = t->nsec };

	if (ts.tv_nsec >= NSEC_PER_SEC)
		ts.tv_nsec = NSEC_PER_SEC - 1;
	return ts;
}

static inline void bento_to_ts(struct bento_timespec *t, struct timespec64 ts)
{
	t->sec = ts.tv_sec;
	t->nsec = ts.tv_nsec;
	t->_pad = 0;
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static inline void bento_set_atime(struct inode *i, struct timespec64 t) { inode_set_atime_to_ts(i, t); }
static inline void bento_set_mtime(struct inode *i, struct timespec64 t) { inode_set_mtime_to_ts(i, t); }
static inline struct timespec64 bento_get_atime(struct inode *i) { return inode_get_atime(i); }
static inline struct timespec64 bento_get_mtime(struct inode *i) { return inode_get_mtime(i); }
#else
static inline void bento_set_atime(struct inode *i, struct timespec64 t) { i->i_atime = t; }
static inline void bento_set_mtime(struct inode *i, struct timespec64 t) { i->i_mtime = t; }
static inline struct timespec64 bento_get_atime(struct inode *i) { return i->i_atime; }
static inline struct timespec64 bento_get_mtime(struct inode *i) { return i->i_mtime; }
#endif
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 6, 0)
static inline void bento_set_ctime(struct inode *i, struct timespec64 t) { inode_set_ctime_to_ts(i, t); }
static inline struct timespec64 bento_get_ctime(struct inode *i) { return inode_get_ctime(i); }
#else
static inline void bento_set_ctime(struct inode *i, struct timespec64 t) { i->i_ctime = t; }
static inline struct timespec64 bento_get_ctime(struct inode *i) { return i->i_ctime; }
#endif

/* ---- across files -------------------------------------------------------------------------- */

/* registry.c */
int bento_registry_init(void);
void bento_registry_exit(void);
int bento_get_type(const char *name, bool load, struct bento_fs_type **type,
		   struct bento_registration **regp);
char *bento_registered_names(void);
bool bento_attach_mount(struct bento_sb_info *sbi, struct bento_registration *reg);
void bento_detach_mount(struct bento_sb_info *sbi);

/* upgrade.c */
int bento_upgrade_locked(struct bento_registration *reg, struct bento_fs_type *new,
			 struct super_block ***pinned, unsigned int *nr_pinned);
void bento_unpin_supers(struct super_block **pinned, unsigned int nr_pinned);
bool bento_can_export(const struct bento_ops *ops);
bool bento_can_import(const struct bento_ops *ops);

/* inode.c */
extern const struct inode_operations bento_file_inode_ops;
extern const struct inode_operations bento_symlink_inode_ops;
extern const struct inode_operations bento_special_inode_ops;
int bento_inode_cache_init(void);
void bento_inode_cache_exit(void);
struct inode *bento_alloc_inode(struct super_block *sb);
void bento_free_inode(struct inode *inode);
void bento_evict_inode(struct inode *inode);
int bento_write_inode(struct inode *inode, struct writeback_control *wbc);
struct inode *bento_iget(struct super_block *sb, const struct bento_attr *attr, bool counted,
			 u64 version);
int bento_refresh_attr(struct inode *inode);
bool bento_is_bad(struct inode *inode);
void bento_inode_changed(struct inode *inode, int nlink);
int bento_getattr(BENTO_IDMAP, const struct path *path, struct kstat *stat,
		  u32 request_mask, unsigned int flags);
int bento_setattr(BENTO_IDMAP, struct dentry *dentry, struct iattr *ia);

/* namei.c */
extern const struct inode_operations bento_dir_inode_ops;

/* xattr.c */
extern const struct xattr_handler *bento_xattr_handlers[];
ssize_t bento_listxattr(struct dentry *dentry, char *list, size_t size);

/* file.c */
extern const struct file_operations bento_file_ops;
extern const struct file_operations bento_dir_ops;
extern const struct address_space_operations bento_aops;
void bento_zero_tail(struct inode *inode, loff_t size);

#endif /* BENTOFS_H */
