/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The Bento ABI: the boundary between bentofs.ko (C, VFS glue) and a file-system module
 * built from Rust (libBentoFS / libBentoKS).
 *
 * Two directions:
 *  - bentofs calls a file system through `struct bento_ops`, a table the file-system module
 *    passes to bento_register_fs(). Every operation is a plain C function: integer and pointer
 *    arguments, a negative errno or 0 (or a length) as the result.
 *  - a Rust file system calls kernel services through the bento_ks_* functions below, which
 *    bentofs.ko exports. They wrap kernel APIs that are inline or macros in C.
 *
 * The ABI is versioned: a module built against another BENTO_ABI_VERSION is refused at
 * registration, and `ops_size` lets a newer bentofs accept an older, shorter table. Live upgrade
 * swaps the table of a mounted file system; the two versions exchange their state as an opaque,
 * versioned byte string (export_state / import_state), never as a pointer to a Rust struct, since
 * the two modules may come from different compilers.
 *
 * Types are fixed-width and laid out identically by C and by Rust's #[repr(C)].
 */
#ifndef BENTO_ABI_H
#define BENTO_ABI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/stddef.h>
#else
#include <stdint.h>
#include <stddef.h>
typedef uint8_t u8;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;
#endif

#define BENTO_ABI_VERSION 1

/* Who is calling (fs{u,g}id in the initial user namespace). */
struct bento_req {
	u32 uid;
	u32 gid;
	u32 pid;
	u32 _pad;
};

struct bento_timespec {
	s64 sec;
	u32 nsec;
	u32 _pad;
};

/* File types in `mode` are the usual S_IF* bits. */
struct bento_attr {
	u64 ino;
	u64 size;
	u64 blocks;		/* 512-byte units */
	u64 generation;
	struct bento_timespec atime;
	struct bento_timespec mtime;
	struct bento_timespec ctime;
	struct bento_timespec crtime;
	u32 mode;
	u32 nlink;
	u32 uid;
	u32 gid;
	u32 rdev;
	u32 blksize;
};

/* bento_setattr.valid bits */
#define BENTO_SET_MODE		(1u << 0)
#define BENTO_SET_UID		(1u << 1)
#define BENTO_SET_GID		(1u << 2)
#define BENTO_SET_SIZE		(1u << 3)
#define BENTO_SET_ATIME		(1u << 4)	/* to `atime` */
#define BENTO_SET_ATIME_NOW	(1u << 5)
#define BENTO_SET_MTIME		(1u << 6)	/* to `mtime` */
#define BENTO_SET_MTIME_NOW	(1u << 7)
#define BENTO_SET_CTIME		(1u << 8)	/* to `ctime`; otherwise the fs uses "now" */
#define BENTO_SET_KILL_SUID	(1u << 9)

struct bento_setattr {
	u32 valid;
	u32 mode;		/* permission bits only */
	u32 uid;
	u32 gid;
	u64 size;
	struct bento_timespec atime;
	struct bento_timespec mtime;
	struct bento_timespec ctime;
};

struct bento_statfs {
	u64 blocks;
	u64 bfree;
	u64 bavail;
	u64 files;
	u64 ffree;
	u32 bsize;
	u32 namelen;
	u32 frsize;
	u32 _pad;
};

/*
 * readdir output. Called once per entry; `next_off` is the cookie that resumes after this
 * entry, `dtype` a DT_* value. Returns nonzero when the entry did not fit: the file system then
 * stops and returns 0, and the next readdir resumes from that entry's cookie.
 */
typedef int (*bento_filldir_t)(void *ctx, const char *name, u32 namelen, u64 ino, u64 next_off,
			       u32 dtype);

/* bento_ops.mount flags; a module ignores bits it does not know (added bits stay ABI 1). */
#define BENTO_MOUNT_RDONLY	(1u << 0)
/* A probe (mount without fs=): a device that is not this file system's needs no log line. */
#define BENTO_MOUNT_SILENT	(1u << 1)

/* An opaque mounted file system instance, owned by the file-system module. */
struct bento_fs;

/*
 * Operations of a file system. All may sleep; none is called under a spinlock. Names are
 * (pointer, length), not NUL-terminated. Inode numbers are the file system's; the root is 1.
 * Every successful reply that fills a `struct bento_attr *entry` (lookup, mknod, mkdir,
 * symlink, link, create) counts one lookup reference on that inode; bentofs gives them back
 * with forget() when the inode leaves the inode cache, and never forgets the root.
 */
struct bento_ops {
	u32 abi_version;	/* BENTO_ABI_VERSION */
	u32 ops_size;		/* sizeof(struct bento_ops) as the module was built */

	/* Life cycle. `bdev` is the struct block_device *, `nr_blocks` its size in 4 KiB
	 * blocks. mount() logs its own reason for failing. */
	int (*mount)(void *bdev, u64 nr_blocks, const char *options, u32 options_len, u32 flags,
		     struct bento_fs **fs_out);
	/* Unmount: write everything; the instance is freed whatever the result. */
	int (*destroy)(struct bento_fs *fs);
	int (*sync_fs)(struct bento_fs *fs);
	/* Live upgrade: serialize the state (into a buffer the callee allocates with
	 * bento_ks_alloc and the caller frees with bento_ks_free), and resume from it. */
	int (*export_state)(struct bento_fs *fs, u8 **state, u64 *len);
	int (*import_state)(void *bdev, u64 nr_blocks, const u8 *state, u64 len,
			    struct bento_fs **fs_out);

	int (*lookup)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen, struct bento_attr *entry);
	void (*forget)(struct bento_fs *fs, u64 ino, u64 nlookup);
	int (*getattr)(struct bento_fs *fs, const struct bento_req *req, u64 ino,
		       struct bento_attr *attr);
	int (*setattr)(struct bento_fs *fs, const struct bento_req *req, u64 ino,
		       const struct bento_setattr *set, struct bento_attr *attr);
	/* Returns the target's length (at most `size`), or -errno. */
	int (*readlink)(struct bento_fs *fs, const struct bento_req *req, u64 ino, char *buf,
			u32 size);
	/* mode includes the S_IF* type; rdev (here and in bento_attr) is in the userspace
	 * dev_t encoding (the kernel's new_encode_dev), as FUSE's. */
	int (*mknod)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		     const char *name, u32 namelen, u32 mode, u32 rdev, struct bento_attr *entry);
	/* mode is S_IFDIR | permissions. */
	int (*mkdir)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		     const char *name, u32 namelen, u32 mode, struct bento_attr *entry);
	int (*unlink)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen);
	int (*rmdir)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		     const char *name, u32 namelen);
	int (*symlink)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		       const char *name, u32 namelen, const char *target, u32 targetlen,
		       struct bento_attr *entry);
	/* flags: RENAME_NOREPLACE / RENAME_EXCHANGE values. */
	int (*rename)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen, u64 newparent, const char *newname,
		      u32 newnamelen, u32 flags);
	int (*link)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 newparent,
		    const char *newname, u32 newnamelen, struct bento_attr *entry);
	/* flags: open(2)'s, without O_CREAT, O_EXCL, O_NOCTTY and O_TRUNC (truncation arrives
	 * as setattr). */
	int (*open)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u32 flags,
		    u64 *fh);
	int (*release)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
		       u32 flags);
	/*
	 * File data moves through the kernel's page cache: read fills it, write is its writeback
	 * (at most 1 MiB per call, contiguous runs of pages). The kernel owns a cached file's
	 * size: writeback never writes past it, and the file grows by writes past its end (and
	 * setattr). fh is the open file's handle when there is one; page-cache I/O not tied to an
	 * open file (writeback, some reads) passes fh 0, possibly after release().
	 */
	/* Returns bytes read (short only at end of file) or -errno. */
	s64 (*read)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh, u64 off,
		    void *buf, u64 len);
	/* Returns bytes written or -errno. */
	s64 (*write)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh, u64 off,
		     const void *buf, u64 len);
	int (*fsync)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
		     u32 datasync);
	int (*opendir)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u32 flags,
		       u64 *fh);
	/* off: 0 to start, else a next_off given to fill(); names are 1..255 bytes. */
	int (*readdir)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
		       u64 off, bento_filldir_t fill, void *ctx);
	int (*releasedir)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh);
	int (*fsyncdir)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
			u32 datasync);
	int (*statfs)(struct bento_fs *fs, const struct bento_req *req, struct bento_statfs *st);
	/* Full names, prefix included ("user.x"). flags: XATTR_CREATE / XATTR_REPLACE. */
	int (*setxattr)(struct bento_fs *fs, const struct bento_req *req, u64 ino,
			const char *name, u32 namelen, const void *value, u32 size, u32 flags);
	/* Returns the value's length; with size 0 only the length; -ERANGE if it does not
	 * fit. */
	int (*getxattr)(struct bento_fs *fs, const struct bento_req *req, u64 ino,
			const char *name, u32 namelen, void *value, u32 size);
	/* NUL-separated names; length conventions as getxattr. */
	int (*listxattr)(struct bento_fs *fs, const struct bento_req *req, u64 ino, char *list,
			 u32 size);
	int (*removexattr)(struct bento_fs *fs, const struct bento_req *req, u64 ino,
			   const char *name, u32 namelen);
	/* mode includes S_IFREG. The VFS opens the new file with open() itself: bentofs gives
	 * this handle back with release() at once. */
	int (*create)(struct bento_fs *fs, const struct bento_req *req, u64 parent,
		      const char *name, u32 namelen, u32 mode, u32 flags,
		      struct bento_attr *entry, u64 *fh);
	int (*fallocate)(struct bento_fs *fs, const struct bento_req *req, u64 ino, u64 fh,
			 u64 off, u64 len, u32 mode);
	/* Periodic work (committing old changes, background cleaning): bentofs calls it every
	 * few seconds per mount from a workqueue, never concurrently with destroy. */
	int (*background)(struct bento_fs *fs);
	/*
	 * Space for page-cache data that will be written back later (delayed allocation): called
	 * before bytes [off, off+len) of a file become dirty (write_begin, page_mkwrite). 0 when
	 * their writeback will fit, -ENOSPC when the volume cannot take them, so write(2) and
	 * mmap stores fail at once instead of at writeback. Repeating it for a range already
	 * reserved or allocated costs nothing.
	 */
	int (*reserve)(struct bento_fs *fs, u64 ino, u64 off, u64 len);
	/*
	 * Free an instance without any I/O: the old version's instance once its state
	 * (export_state) lives on in a new version's instance (import_state), or a new instance
	 * that will not be used after all. See docs/upgrade.md: registering a name that is
	 * already registered by another module upgrades every mount of it, all or nothing:
	 * quiesce each (its upgrade semaphore for writing), export, import into the new table;
	 * then either drop every old instance and swap, or (a refusal) drop every new one and let
	 * the old ones continue. import_state must not write to the device.
	 */
	void (*drop)(struct bento_fs *fs);
	/*
	 * Added in 0.4.0, optional (bentofs calls it only when ops_size covers it): memory
	 * pressure. With nr 0, how many clean cache entries the instance could give back; else
	 * give back up to nr of them, least recently used first, and return how many went. Called
	 * from memory reclaim: it never waits for a lock another call holds and never does I/O
	 * (BENTO_SHRINK_BUSY instead). Hidden from genksyms, so the CRCs of bento_register_fs and
	 * bento_unregister_fs stay those of 0.3.1 (a module of either release loads into the other's
	 * bentofs.ko).
	 */
#ifndef __GENKSYMS__
	u64 (*shrink)(struct bento_fs *fs, u64 nr);
	/*
	 * Added after 0.4.1, optional like shrink (bentofs calls it only when ops_size covers it;
	 * without it FS_IOC_GOINGDOWN answers EOPNOTSUPP): shut the instance down (FS_IOC_GOINGDOWN).
	 * `how` is BENTO_SHUTDOWN_*: FULLSYNC after bentofs synced the file system (and froze it),
	 * commit what is still dirty; METAFLUSH, make the metadata changed so far durable (a
	 * checkpoint, or what recovery needs); NOLOGFLUSH, nothing more. Then, and for good: the
	 * instance writes nothing more to the device, not even in destroy (which then only frees
	 * it), does no background work and answers every call with -EIO (bentofs calls only
	 * destroy and shrink any more). 0 once shut down (also when it already was; a failed flush
	 * before it is the instance's to log); -EINVAL for an unknown `how`, and nothing changed.
	 */
	int (*shutdown)(struct bento_fs *fs, u32 how);
#endif
};

/* bento_ops.shutdown `how`: the values of FS_IOC_GOINGDOWN's flags (FS_GOING_DOWN_*). */
#define BENTO_SHUTDOWN_FULLSYNC		0u
#define BENTO_SHUTDOWN_METAFLUSH	1u
#define BENTO_SHUTDOWN_NOLOGFLUSH	2u

/* bento_ops.shrink: the instance is busy; ask again later. */
#define BENTO_SHRINK_BUSY	(~(u64)0)

/* A file-system type a module registers. */
struct bento_fs_type {
	const char *name;	/* selected by `mount -t bento -o fs=NAME` */
	const char *version;	/* shown in /proc/fs/bento and logs */
	struct module *owner;	/* pinned while a mount exists */
	const struct bento_ops *ops;
};

#ifdef __KERNEL__
int bento_register_fs(struct bento_fs_type *type);
void bento_unregister_fs(struct bento_fs_type *type);
#endif

/*
 * Kernel services for Rust (libBentoKS), exported by bentofs.ko.
 */

/* Memory: any size and alignment (alignment a power of two); NULL on failure. Allocations may
 * sleep. Large sizes may come from vmalloc. Alignments above 4 KiB need physically contiguous
 * memory of a power-of-two size (at most 4 MiB). */
void *bento_ks_alloc(u64 size, u64 align, u32 zeroed);
void bento_ks_free(void *ptr);

/* Sleeping locks, allocated and initialized by the kernel. NULL on failure. */
void *bento_ks_mutex_new(void);
void bento_ks_mutex_lock(void *m);
void bento_ks_mutex_unlock(void *m);
void bento_ks_mutex_free(void *m);
void *bento_ks_rwsem_new(void);
void bento_ks_rwsem_read(void *s);
void bento_ks_rwsem_read_unlock(void *s);
void bento_ks_rwsem_write(void *s);
void bento_ks_rwsem_write_unlock(void *s);
void bento_ks_rwsem_free(void *s);

/* Block I/O on a struct block_device *, in 4 KiB blocks. `buf` may be any kernel memory
 * (kmalloc or vmalloc; not aligned to 512 bytes costs a copy); `len` is in bytes, a multiple
 * of 512. Synchronous; returns 0 or -errno (-EIO on device errors, -EINVAL for a range past
 * the end of the device). */
#define BENTO_IO_PREFLUSH	(1u << 0)
#define BENTO_IO_FUA		(1u << 1)
int bento_ks_bdev_read(void *bdev, u64 block, void *buf, u64 len);
int bento_ks_bdev_write(void *bdev, u64 block, const void *buf, u64 len, u32 flags);
int bento_ks_bdev_flush(void *bdev);
int bento_ks_bdev_discard(void *bdev, u64 block, u64 count);

/* Wall-clock time (CLOCK_REALTIME). */
void bento_ks_time_now(struct bento_timespec *ts);

/* Kernel log; level as printk's: 3 err, 4 warning, 6 info, 7 debug. */
void bento_ks_log(u32 level, const char *msg, u64 len);

/*
 * A Rust panic ("FILE:LINE:COL: MESSAGE"). Never returns. Inside a call from bentofs: the mount
 * is failed (for an instance the mount does not run on, in mount, import_state or drop, only the
 * call), the kernel locks the call took through bento_ks_* are released and the call returns
 * -EIO to bentofs; the panicking frames are abandoned. Outside a call: BUG().
 */
void bento_ks_panic(const char *msg, u64 len) __attribute__((noreturn));

/*
 * The layout is pinned: these assertions, and their counterparts in Rust (bento-kernel's ffi.rs;
 * bento_fs_type only here, as Rust never sees it), fail the build if a size or an offset
 * changes. Function signatures are checked by the Rust compiler against ffi.rs only, not
 * against this header. A change is a new BENTO_ABI_VERSION.
 */
#define BENTO_ABI_SIZE(type, size, align) \
	_Static_assert(sizeof(struct type) == (size) && _Alignof(struct type) == (align), \
		       "struct " #type ": size or alignment changed")
#define BENTO_ABI_OFFSET(type, field, off) \
	_Static_assert(offsetof(struct type, field) == (off), "struct " #type "." #field " moved")

BENTO_ABI_SIZE(bento_req, 16, 4);
BENTO_ABI_OFFSET(bento_req, uid, 0);
BENTO_ABI_OFFSET(bento_req, gid, 4);
BENTO_ABI_OFFSET(bento_req, pid, 8);
BENTO_ABI_OFFSET(bento_req, _pad, 12);
BENTO_ABI_SIZE(bento_timespec, 16, 8);
BENTO_ABI_OFFSET(bento_timespec, sec, 0);
BENTO_ABI_OFFSET(bento_timespec, nsec, 8);
BENTO_ABI_OFFSET(bento_timespec, _pad, 12);
BENTO_ABI_SIZE(bento_attr, 120, 8);
BENTO_ABI_OFFSET(bento_attr, ino, 0);
BENTO_ABI_OFFSET(bento_attr, size, 8);
BENTO_ABI_OFFSET(bento_attr, blocks, 16);
BENTO_ABI_OFFSET(bento_attr, generation, 24);
BENTO_ABI_OFFSET(bento_attr, atime, 32);
BENTO_ABI_OFFSET(bento_attr, mtime, 48);
BENTO_ABI_OFFSET(bento_attr, ctime, 64);
BENTO_ABI_OFFSET(bento_attr, crtime, 80);
BENTO_ABI_OFFSET(bento_attr, mode, 96);
BENTO_ABI_OFFSET(bento_attr, nlink, 100);
BENTO_ABI_OFFSET(bento_attr, uid, 104);
BENTO_ABI_OFFSET(bento_attr, gid, 108);
BENTO_ABI_OFFSET(bento_attr, rdev, 112);
BENTO_ABI_OFFSET(bento_attr, blksize, 116);
BENTO_ABI_SIZE(bento_setattr, 72, 8);
BENTO_ABI_OFFSET(bento_setattr, valid, 0);
BENTO_ABI_OFFSET(bento_setattr, mode, 4);
BENTO_ABI_OFFSET(bento_setattr, uid, 8);
BENTO_ABI_OFFSET(bento_setattr, gid, 12);
BENTO_ABI_OFFSET(bento_setattr, size, 16);
BENTO_ABI_OFFSET(bento_setattr, atime, 24);
BENTO_ABI_OFFSET(bento_setattr, mtime, 40);
BENTO_ABI_OFFSET(bento_setattr, ctime, 56);
BENTO_ABI_SIZE(bento_statfs, 56, 8);
BENTO_ABI_OFFSET(bento_statfs, blocks, 0);
BENTO_ABI_OFFSET(bento_statfs, bfree, 8);
BENTO_ABI_OFFSET(bento_statfs, bavail, 16);
BENTO_ABI_OFFSET(bento_statfs, files, 24);
BENTO_ABI_OFFSET(bento_statfs, ffree, 32);
BENTO_ABI_OFFSET(bento_statfs, bsize, 40);
BENTO_ABI_OFFSET(bento_statfs, namelen, 44);
BENTO_ABI_OFFSET(bento_statfs, frsize, 48);
BENTO_ABI_OFFSET(bento_statfs, _pad, 52);
BENTO_ABI_SIZE(bento_ops, 312, 8);
BENTO_ABI_OFFSET(bento_ops, abi_version, 0);
BENTO_ABI_OFFSET(bento_ops, ops_size, 4);
BENTO_ABI_OFFSET(bento_ops, mount, 8);
BENTO_ABI_OFFSET(bento_ops, destroy, 16);
BENTO_ABI_OFFSET(bento_ops, sync_fs, 24);
BENTO_ABI_OFFSET(bento_ops, export_state, 32);
BENTO_ABI_OFFSET(bento_ops, import_state, 40);
BENTO_ABI_OFFSET(bento_ops, lookup, 48);
BENTO_ABI_OFFSET(bento_ops, forget, 56);
BENTO_ABI_OFFSET(bento_ops, getattr, 64);
BENTO_ABI_OFFSET(bento_ops, setattr, 72);
BENTO_ABI_OFFSET(bento_ops, readlink, 80);
BENTO_ABI_OFFSET(bento_ops, mknod, 88);
BENTO_ABI_OFFSET(bento_ops, mkdir, 96);
BENTO_ABI_OFFSET(bento_ops, unlink, 104);
BENTO_ABI_OFFSET(bento_ops, rmdir, 112);
BENTO_ABI_OFFSET(bento_ops, symlink, 120);
BENTO_ABI_OFFSET(bento_ops, rename, 128);
BENTO_ABI_OFFSET(bento_ops, link, 136);
BENTO_ABI_OFFSET(bento_ops, open, 144);
BENTO_ABI_OFFSET(bento_ops, release, 152);
BENTO_ABI_OFFSET(bento_ops, read, 160);
BENTO_ABI_OFFSET(bento_ops, write, 168);
BENTO_ABI_OFFSET(bento_ops, fsync, 176);
BENTO_ABI_OFFSET(bento_ops, opendir, 184);
BENTO_ABI_OFFSET(bento_ops, readdir, 192);
BENTO_ABI_OFFSET(bento_ops, releasedir, 200);
BENTO_ABI_OFFSET(bento_ops, fsyncdir, 208);
BENTO_ABI_OFFSET(bento_ops, statfs, 216);
BENTO_ABI_OFFSET(bento_ops, setxattr, 224);
BENTO_ABI_OFFSET(bento_ops, getxattr, 232);
BENTO_ABI_OFFSET(bento_ops, listxattr, 240);
BENTO_ABI_OFFSET(bento_ops, removexattr, 248);
BENTO_ABI_OFFSET(bento_ops, create, 256);
BENTO_ABI_OFFSET(bento_ops, fallocate, 264);
BENTO_ABI_OFFSET(bento_ops, background, 272);
BENTO_ABI_OFFSET(bento_ops, reserve, 280);
BENTO_ABI_OFFSET(bento_ops, drop, 288);
BENTO_ABI_OFFSET(bento_ops, shrink, 296);
BENTO_ABI_OFFSET(bento_ops, shutdown, 304);
BENTO_ABI_SIZE(bento_fs_type, 32, 8);
BENTO_ABI_OFFSET(bento_fs_type, name, 0);
BENTO_ABI_OFFSET(bento_fs_type, version, 8);
BENTO_ABI_OFFSET(bento_fs_type, owner, 16);
BENTO_ABI_OFFSET(bento_fs_type, ops, 24);

#endif /* BENTO_ABI_H */
