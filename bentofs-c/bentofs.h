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
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/build_bug.h>
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
 * shrink (memory pressure, shrink.c) only by modules of 0.4.0 and later, shutdown
 * (FS_IOC_GOINGDOWN, ioctl.c) only by modules newer than 0.4.1.
 */
#define BENTO_OPS_SIZE_MIN	offsetofend(struct bento_ops, reserve)

/* The table has the optional operation @op: its ops_size covers it and it is set. */
#define bento_has_op(ops, op)	\
	((ops)->ops_size >= offsetofend(struct bento_ops, op) && (ops)->op)

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
	unsigned long flags;			/* BENTO_SB_* */
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

enum {
	/*
	 * A file system panicked in a call into this mount: every call returns -EIO at once,
	 * the instance is never called again (nor destroyed: leaked).
	 */
	BENTO_SB_FAILED,
	/*
	 * Shut down (FS_IOC_GOINGDOWN, ioctl.c): every call returns -EIO at once, the instance
	 * knows (bento_ops.shutdown) and writes nothing more; at unmount it is destroyed, which
	 * then only frees it. Set inside the shutdown call, under the upgrade lock (read side),
	 * so an upgrade sees either a live instance or a shut-down one.
	 */
	BENTO_SB_SHUTDOWN,
};

static inline struct bento_sb_info *BENTO_SB(struct super_block *sb)
{
	return sb->s_fs_info;
}

/* ---- calls into a file system, and its panics ------------------------------------------------ */

/*
 * A panic of a file system (Rust, panic=abort: no unwinding) takes down its mount, not the
 * machine (docs/architecture.md, "A panic"). Every call into a file system runs through
 * bento_invoke() (catch.S) with a context on the calling task's stack, found through
 * current->journal_info for the duration of the call. bento_ks_panic() finds it, marks the mount
 * failed (when the call was into the mount's instance), logs where, releases the kernel locks
 * the call holds (taken through bento_ks_*, recorded here) and returns -EIO from the call with
 * bento_throw(): the panicking frames are abandoned and the instance is never called again (its
 * memory is leaked). From then on every call into the mount returns -EIO before taking the
 * upgrade semaphore; a call of the mount that takes one of its locks after the panic is thrown
 * out the same way.
 */
#define BENTO_CTX_MAGIC		0x78746374656e6562UL	/* "benctctx" */
#define BENTO_HELD_MAX		8

enum { BENTO_HELD_MUTEX, BENTO_HELD_READ, BENTO_HELD_WRITE };

struct bento_call_ctx {
	unsigned long magic;		/* BENTO_CTX_MAGIC; offsets 0-24 are read by catch.S */
	void *fn;			/* the operation */
	void *arg0;			/* its first argument: the instance (the device for mount and
					 * import_state) */
	unsigned long sp;		/* bento_invoke's stack pointer, for bento_throw */
	struct bento_sb_info *sbi;	/* the mount (for the log) */
	struct bento_fs_type *type;	/* whose code runs */
	const char *op;
	bool fail_mount;		/* a panic fails the mount (a call into its instance);
					 * otherwise only this call (a new or old instance: mount,
					 * import_state, drop) */
	bool panicked;			/* the call panicked (bento_ks_panic) */
	unsigned int nofs;
	int preempt;			/* preempt_count() at the call: a panic with another
					 * cannot be given up (BUG) */
	void *prev;			/* current->journal_info before */
	unsigned int nr_held;
	struct {
		void *lock;
		int kind;
	} held[BENTO_HELD_MAX];
};

static_assert(offsetof(struct bento_call_ctx, magic) == 0);
static_assert(offsetof(struct bento_call_ctx, fn) == 8);
static_assert(offsetof(struct bento_call_ctx, arg0) == 16);
static_assert(offsetof(struct bento_call_ctx, sp) == 24);

/*
 * bento_invoke_OP is catch.S's bento_invoke under the type of operation OP (the same symbol:
 * the asm label), so each call is direct and its arguments are type-checked and laid out as
 * the operation expects; only the first argument is the context in place of the instance (see
 * bento_guard).
 */
#define BENTO_EACH_OP(X) \
	X(mount) X(destroy) X(sync_fs) X(export_state) X(import_state) X(lookup) \
	X(forget) X(getattr) X(setattr) X(readlink) X(mknod) X(mkdir) \
	X(unlink) X(rmdir) X(symlink) X(rename) X(link) X(open) \
	X(release) X(read) X(write) X(fsync) X(opendir) X(readdir) \
	X(releasedir) X(fsyncdir) X(statfs) X(setxattr) X(getxattr) X(listxattr) \
	X(removexattr) X(create) X(fallocate) X(background) X(reserve) X(drop) \
	X(shrink) X(shutdown)
#define BENTO_INVOKE_DECL(op) \
	extern typeof(*((struct bento_ops *)NULL)->op) bento_invoke_##op __asm__("bento_invoke");
BENTO_EACH_OP(BENTO_INVOKE_DECL)
/* Does not return; not declared so, as objtool could not know that of an assembly function. */
void bento_throw(struct bento_call_ctx *ctx, long ret);

/* The call context of the current task, or NULL outside a call into a file system. */
static inline struct bento_call_ctx *bento_current_ctx(void)
{
	struct bento_call_ctx *ctx = current->journal_info;

	return ctx && ctx->magic == BENTO_CTX_MAGIC ? ctx : NULL;
}

/*
 * Around a call: the context (found through journal_info, which no other file system uses while
 * we run: bentofs never calls another file system from inside a call, and block I/O below us
 * runs in its own tasks or does not look) and the NOFS allocation scope (we are a file system:
 * memory reclaim must not recurse into file systems from inside one).
 */
static inline void bento_ctx_begin(struct bento_call_ctx *ctx, struct bento_sb_info *sbi,
				   struct bento_fs_type *type, const char *op, bool fail_mount)
{
	ctx->magic = BENTO_CTX_MAGIC;
	ctx->sbi = sbi;
	ctx->type = type;
	ctx->op = op;
	ctx->fail_mount = fail_mount;
	ctx->panicked = false;
	ctx->nr_held = 0;
	ctx->preempt = preempt_count();
	ctx->nofs = memalloc_nofs_save();
	ctx->prev = current->journal_info;
	current->journal_info = ctx;
}

static inline void bento_ctx_end(struct bento_call_ctx *ctx)
{
	current->journal_info = ctx->prev;
	memalloc_nofs_restore(ctx->nofs);
}

/* Call @ops->@op(@first, ...) under @cctx (begun): its result, or -EIO when it panicked. */
#define bento_guard(cctx, ops, op, first, ...)					\
({										\
	(cctx)->fn = (void *)(ops)->op;						\
	(cctx)->arg0 = (void *)(first);						\
	bento_invoke_##op((void *)(cctx), ##__VA_ARGS__);			\
})

/* The mount failed: a file system panicked in a call into it. */
static inline bool bento_failed(struct bento_sb_info *sbi)
{
	return test_bit(BENTO_SB_FAILED, &sbi->flags);
}

/* The mount was shut down (FS_IOC_GOINGDOWN). */
static inline bool bento_shut_down(struct bento_sb_info *sbi)
{
	return test_bit(BENTO_SB_SHUTDOWN, &sbi->flags);
}

/* Failed or shut down: no call reaches the instance (but destroy, after a shutdown). */
static inline bool bento_dead(struct bento_sb_info *sbi)
{
	return bento_failed(sbi) || bento_shut_down(sbi);
}

/*
 * The mount's upgrade lock, shared. A live upgrade takes it exclusively, so it swaps ops/fs
 * between calls, never during one. A percpu rw-semaphore makes the shared side a per-CPU
 * increment on the normal path; an upgrade pays an RCU grace period and the wait for calls in
 * flight. Never nest: a second down_read in the same task blocks behind a waiting upgrade that
 * waits for the first (bentofs never calls a file system from inside a call into it: readdir,
 * readlink and xattrs fill kernel buffers that are copied out afterwards, page-cache I/O runs on
 * kernel pages).
 */
static inline void bento_sem_down(struct bento_sb_info *sbi)
{
	if (sbi->quiesce)
		percpu_down_read(&sbi->upgrade);
}

static inline void bento_sem_up(struct bento_sb_info *sbi)
{
	if (sbi->quiesce)
		percpu_up_read(&sbi->upgrade);
}

/*
 * Entering a call into the mount's instance: false (the call returns -EIO at once) when the mount
 * failed or was shut down, checked before the semaphore (a dead mount's calls never wait for
 * anything) and again under it (it may have died meanwhile, in an upgrade's export or a
 * shutdown).
 */
static inline bool __bento_call_enter(struct bento_sb_info *sbi, struct bento_call_ctx *ctx,
				      const char *op, bool shut_down_ok)
{
	if (bento_failed(sbi) || (!shut_down_ok && bento_shut_down(sbi)))
		return false;
	bento_sem_down(sbi);
	if (unlikely(bento_failed(sbi) || (!shut_down_ok && bento_shut_down(sbi)))) {
		bento_sem_up(sbi);
		return false;
	}
	bento_ctx_begin(ctx, sbi, sbi->type, op, true);
	return true;
}

static inline bool bento_call_enter(struct bento_sb_info *sbi, struct bento_call_ctx *ctx,
				    const char *op)
{
	return __bento_call_enter(sbi, ctx, op, false);
}

static inline void bento_call_exit(struct bento_sb_info *sbi, struct bento_call_ctx *ctx)
{
	bento_ctx_end(ctx);
	bento_sem_up(sbi);
}

/*
 * THE call wrapper: every call from bentofs into a mounted file system goes through here. It
 * holds the mount's upgrade lock shared (bento_call_enter), reads ops and fs under it, and runs the
 * call under a call context (bento_guard). An operation the table leaves NULL yields `dflt`; a
 * failed mount, or a panic in the call, -EIO.
 */
#define bento_call(sbi, dflt, op, ...)						\
({										\
	struct bento_sb_info *__sbi = (sbi);					\
	typeof(__sbi->ops->op(__sbi->fs, ##__VA_ARGS__)) __ret = (dflt);	\
	struct bento_call_ctx __ctx;						\
										\
	if (!bento_call_enter(__sbi, &__ctx, #op)) {				\
		__ret = -EIO;							\
	} else {								\
		if (__sbi->ops->op)						\
			__ret = bento_guard(&__ctx, __sbi->ops, op, __sbi->fs,	\
					    ##__VA_ARGS__);			\
		bento_call_exit(__sbi, &__ctx);					\
	}									\
	__ret;									\
})

/* The same for operations without a result (forget); nothing happens on a failed mount. */
#define bento_call_void(sbi, op, ...)						\
do {										\
	struct bento_sb_info *__sbi = (sbi);					\
	struct bento_call_ctx __ctx;						\
										\
	if (bento_call_enter(__sbi, &__ctx, #op)) {				\
		if (__sbi->ops->op)						\
			bento_guard(&__ctx, __sbi->ops, op, __sbi->fs,		\
				    ##__VA_ARGS__);				\
		bento_call_exit(__sbi, &__ctx);					\
	}									\
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
	struct rw_semaphore wb_sem;	/* writeback (shared) against a shrinking setattr */
	struct timespec64 crtime;	/* creation (statx's btime); 0 if the fs keeps none */
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

/* ks.c */
void bento_abandon_call(struct bento_call_ctx *ctx);

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
			 u64 version, struct inode *spare);
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
int bento_reserve(struct inode *inode, loff_t pos, size_t len);

/* mmap.c */
int bento_mmap(struct file *file, struct vm_area_struct *vma);

/* ioctl.c */
long bento_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
ssize_t bento_read_iter(struct kiocb *iocb, struct iov_iter *to);
ssize_t bento_write_iter(struct kiocb *iocb, struct iov_iter *from);
ssize_t bento_splice_read(struct file *in, loff_t *ppos, struct pipe_inode_info *pipe,
			  size_t len, unsigned int flags);

#endif /* BENTOFS_H */
