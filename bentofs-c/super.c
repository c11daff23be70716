// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs: the file-system type "bento", mount options, super-block operations and the module
 * itself. The registry of file systems is in registry.c.
 */
#define pr_fmt(fmt) "bento: " fmt

#include <linux/module.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/blkdev.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/writeback.h>
#include <linux/string.h>
#include "bentofs.h"

int bento_status(struct bento_sb_info *sbi, const char *op, long ret)
{
	if (ret <= 0 && ret >= -MAX_ERRNO)
		return ret;
	pr_err_ratelimited("%s: %s returned %ld, not 0 or -errno; using -EIO\n",
			   sbi->name, op, ret);
	return -EIO;
}

/* Read at mount time into bento_sb_info.quiesce; see there. */
static bool quiesce = true;
module_param(quiesce, bool, 0644);
MODULE_PARM_DESC(quiesce, "New mounts take the upgrade semaphore around every call (default Y; N only to measure its cost: such mounts cannot be upgraded)");

/* ---- background work ----------------------------------------------------------------------- */

static unsigned int background_ms = 2000;
module_param(background_ms, uint, 0644);
MODULE_PARM_DESC(background_ms, "Interval of the file systems' background work, in ms (default 2000)");

static void bento_bg_queue(struct bento_sb_info *sbi)
{
	queue_delayed_work(system_unbound_wq, &sbi->bg_work,
			   msecs_to_jiffies(max(READ_ONCE(background_ms), 10U)));
}

static void bento_bg_work(struct work_struct *work)
{
	struct bento_sb_info *sbi = container_of(to_delayed_work(work), struct bento_sb_info,
						 bg_work);
	struct super_block *sb = sbi->sb;
	int err;

	/* Not on a read-only mount (the file system may not know: remount), nor frozen; never
	 * again on a failed or shut-down one. */
	if (bento_dead(sbi))
		return;
	if (!sb_rdonly(sb) && sb_start_write_trylock(sb)) {
		err = bento_status(sbi, "background", bento_call(sbi, 0, background));
		sb_end_write(sb);
		if (err && !bento_dead(sbi))	/* a panic or the shutdown said more */
			pr_warn_ratelimited("%s on %s: background work failed: %d\n",
					    sbi->name, sb->s_id, err);
	}
	if (READ_ONCE(sbi->bg_active) && !bento_dead(sbi))
		bento_bg_queue(sbi);
}

static void bento_bg_start(struct bento_sb_info *sbi)
{
	/* Every version of a file system has background work, or none: checked once. */
	if (!READ_ONCE(sbi->ops)->background)
		return;
	WRITE_ONCE(sbi->bg_active, true);
	bento_bg_queue(sbi);
}

/* Returns with no background call running or queued. */
static void bento_bg_stop(struct bento_sb_info *sbi)
{
	WRITE_ONCE(sbi->bg_active, false);
	cancel_delayed_work_sync(&sbi->bg_work);
}

/* ---- super block --------------------------------------------------------------------------- */

/*
 * Unmount the file system: destroy and forget the instance in one call, so an upgrade (which
 * skips a mount without an instance) never sees a destroyed one. A shut-down instance is
 * destroyed too: it knows, and only frees itself.
 */
static int bento_destroy_fs(struct bento_sb_info *sbi)
{
	struct bento_call_ctx ctx;
	int err;

	if (!__bento_call_enter(sbi, &ctx, "destroy", true))
		return -EIO;
	err = bento_guard(&ctx, sbi->ops, destroy, sbi->fs);
	sbi->fs = NULL;		/* freed, or (a panic) abandoned */
	bento_call_exit(sbi, &ctx);
	return err;
}

static void bento_put_super(struct super_block *sb)
{
	struct bento_sb_info *sbi = BENTO_SB(sb);
	int err;

	/* generic_shutdown_super() has synced the file system and evicted all inodes. */
	bento_shrinker_stop(sbi);
	if (!sbi->fs)
		return;
	bento_bg_stop(sbi);
	if (bento_failed(sbi)) {
		/* Its locks may be held for good, its state torn: no destroy. */
		pr_warn("%s (%s %s): unmounted the failed mount without calling the file system; its instance is leaked\n",
			sb->s_id, sbi->name, bento_version(sbi->type));
		sbi->fs = NULL;
		return;
	}
	err = bento_destroy_fs(sbi);
	if (err)
		pr_err("%s on %s: unmount failed: %d\n", sbi->name, sb->s_id, err);
}

static int bento_sync_fs(struct super_block *sb, int wait)
{
	struct bento_sb_info *sbi = BENTO_SB(sb);

	/* The VFS calls with wait=0 then wait=1; one call into the file system is enough. */
	if (!wait || !sbi->fs)
		return 0;
	/*
	 * Nothing to write on a frozen file system (sync(2) comes here all the same; freeze_fs
	 * committed everything) nor on a shut-down one (not an error then, as ext4: unmount and
	 * freeze sync too).
	 */
	if (sb->s_writers.frozen == SB_FREEZE_COMPLETE || bento_shut_down(sbi))
		return 0;
	return bento_status(sbi, "sync_fs", bento_call(sbi, 0, sync_fs));
}

/*
 * freeze_super() wrote the dirty pages and synced (sync_fs) with writes and page faults held,
 * then waited for the internal writers (bento_evict_inode freeing an unlinked inode, under
 * sb_start_intwrite), which may have changed the file system since: commit once more, so the
 * device holds a complete, consistent image while frozen. The background work is held by its
 * sb_start_write_trylock() until the thaw; nothing else writes (a live upgrade refuses a frozen
 * mount). No unfreeze_fs: nothing to restart.
 */
static int bento_freeze_fs(struct super_block *sb)
{
	struct bento_sb_info *sbi = BENTO_SB(sb);

	if (!sbi->fs || bento_shut_down(sbi))
		return 0;
	return bento_status(sbi, "sync_fs", bento_call(sbi, 0, sync_fs));
}

static int bento_statfs(struct dentry *dentry, struct kstatfs *buf)
{
	struct super_block *sb = dentry->d_sb;
	struct bento_sb_info *sbi = BENTO_SB(sb);
	struct bento_statfs st = {};
	u64 id = huge_encode_dev(sb->s_bdev->bd_dev);
	BENTO_REQ(req);
	int err;

	err = bento_status(sbi, "statfs", bento_call(sbi, -EOPNOTSUPP, statfs, &req, &st));
	if (err)
		return err;
	buf->f_type = BENTO_SUPER_MAGIC;
	buf->f_bsize = st.bsize ? st.bsize : PAGE_SIZE;
	buf->f_frsize = st.frsize ? st.frsize : buf->f_bsize;
	buf->f_blocks = st.blocks;
	buf->f_bfree = st.bfree;
	buf->f_bavail = st.bavail;
	buf->f_files = st.files;
	buf->f_ffree = st.ffree;
	buf->f_namelen = st.namelen ? st.namelen : NAME_MAX;
	buf->f_fsid = u64_to_fsid(id);
	return 0;
}

static int bento_show_options(struct seq_file *m, struct dentry *root)
{
	struct bento_sb_info *sbi = BENTO_SB(root->d_sb);

	seq_puts(m, ",fs=");
	seq_escape(m, sbi->name, ", \t\n\\");
	if (sbi->options_len) {
		seq_putc(m, ',');
		seq_escape(m, sbi->options, " \t\n\\");
	}
	return 0;
}

static const struct super_operations bento_super_ops = {
	.alloc_inode	= bento_alloc_inode,
	.free_inode	= bento_free_inode,
	.write_inode	= bento_write_inode,
	.evict_inode	= bento_evict_inode,
	.put_super	= bento_put_super,
	.sync_fs	= bento_sync_fs,
	.freeze_fs	= bento_freeze_fs,
	.statfs		= bento_statfs,
	.show_options	= bento_show_options,
};

/* ---- mount: fs_context --------------------------------------------------------------------- */

#define BENTO_OPTIONS_MAX	PAGE_SIZE

struct bento_fs_context {
	char *fs_name;			/* fs= */
	char *options;			/* everything else, comma-joined */
	size_t options_len;
	struct bento_fs_type *type;	/* found at get_tree; holds a module reference */
	struct bento_registration *reg;
};

/* An error for the kernel log and, with the new mount API, for the caller's fs_context log. */
#define bento_fc_err(fc, fmt, ...)						\
do {										\
	pr_err(fmt "\n", ##__VA_ARGS__);					\
	if ((fc)->log.log)							\
		errorfc(fc, fmt, ##__VA_ARGS__);				\
} while (0)

static int bento_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	struct bento_fs_context *ctx = fc->fs_private;
	size_t klen = strlen(param->key), vlen = 0, need;
	char *p;

	/* The block device: let the VFS take it. */
	if (!strcmp(param->key, "source"))
		return -ENOPARAM;

	if (param->type == fs_value_is_string)
		vlen = param->size;
	else if (param->type != fs_value_is_flag) {
		bento_fc_err(fc, "option %s: only text values are supported", param->key);
		return -EINVAL;
	}

	if (!strcmp(param->key, "fs")) {
		if (param->type != fs_value_is_string || !vlen) {
			bento_fc_err(fc, "fs= needs a file-system name");
			return -EINVAL;
		}
		kfree(ctx->fs_name);
		ctx->fs_name = param->string;
		param->string = NULL;
		return 0;
	}

	/* Anything else goes to the file system verbatim: "key" or "key=value". */
	need = ctx->options_len + (ctx->options_len ? 1 : 0) + klen +
	       (param->type == fs_value_is_string ? 1 + vlen : 0);
	if (need >= BENTO_OPTIONS_MAX) {
		bento_fc_err(fc, "mount options too long");
		return -EINVAL;
	}
	p = krealloc(ctx->options, need + 1, GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	ctx->options = p;
	p += ctx->options_len;
	if (ctx->options_len)
		*p++ = ',';
	memcpy(p, param->key, klen);
	p += klen;
	if (param->type == fs_value_is_string) {
		*p++ = '=';
		memcpy(p, param->string, vlen);
		p += vlen;
	}
	*p = '\0';
	ctx->options_len = need;
	return 0;
}

static int bento_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct bento_fs_context *ctx = fc->fs_private;
	/*
	 * Probing (no fs=): "not mine" is no news for the kernel log. MS_SILENT is not enough
	 * reason: busybox mount passes it on every mount, and fs= names what the user expects.
	 */
	bool silent = !ctx->fs_name;
	struct bento_sb_info *sbi;
	struct bento_attr attr = {};
	struct bento_fs *fs = NULL;
	struct bento_call_ctx cctx;
	struct inode *root;
	BENTO_REQ(req);
	u64 nr_blocks;
	int err;

	if (bdev_logical_block_size(sb->s_bdev) > (1 << BENTO_BLOCK_SHIFT)) {
		bento_fc_err(fc, "%s: logical block size %u is larger than %u", sb->s_id,
			     bdev_logical_block_size(sb->s_bdev), 1 << BENTO_BLOCK_SHIFT);
		return -EINVAL;
	}

	sbi = kzalloc(sizeof(*sbi), GFP_KERNEL);
	if (!sbi)
		return -ENOMEM;
	INIT_LIST_HEAD(&sbi->type_link);
	INIT_DELAYED_WORK(&sbi->bg_work, bento_bg_work);
	sbi->sb = sb;
	atomic64_set(&sbi->attr_version, 1);
	sb->s_fs_info = sbi;		/* bento_kill_sb() frees it from here on */
	err = percpu_init_rwsem(&sbi->upgrade);
	if (err)
		return err;
	sbi->upgrade_inited = true;

	/* The module reference moves from the context to the mount. */
	sbi->type = ctx->type;
	sbi->ops = ctx->type->ops;
	ctx->type = NULL;
	strscpy(sbi->name, sbi->type->name, sizeof(sbi->name));
	sbi->quiesce = READ_ONCE(quiesce);
	/* A copy: without fs=, the next file system tried needs them too (bento_probe). */
	sbi->options = kstrdup(ctx->options ? ctx->options : "", GFP_KERNEL);
	if (!sbi->options)
		return -ENOMEM;
	sbi->options_len = ctx->options_len;

	if (!bento_attach_mount(sbi, ctx->reg)) {
		bento_fc_err(fc, "file system %s was unregistered", sbi->name);
		return -ENODEV;
	}

	sb->s_magic = BENTO_SUPER_MAGIC;
	sb->s_op = &bento_super_ops;
	sb->s_xattr = bento_xattr_handlers;
	sb->s_maxbytes = MAX_LFS_FILESIZE;
	sb->s_time_gran = 1;
	/* The kernel is the only writer: once a file is seen without setuid bits or file
	 * capabilities, writes need not ask for security.capability again (as ext4). */
	sb->s_flags |= SB_NOSEC;
	sb->s_blocksize = 1 << BENTO_BLOCK_SHIFT;
	sb->s_blocksize_bits = BENTO_BLOCK_SHIFT;
	/* Data is handed to the file system straight from the page cache; don't let it change
	 * while a write is in progress (the file system may checksum it). */
	sb->s_iflags |= SB_I_STABLE_WRITES;

	sbi->mount_flags = sb_rdonly(sb) ? BENTO_MOUNT_RDONLY : 0;
	nr_blocks = bdev_nr_bytes(sb->s_bdev) >> BENTO_BLOCK_SHIFT;

	/*
	 * The mount is in the registry: a live upgrade may come for it and must wait until it
	 * has an instance (or failed to get one), so mount under the upgrade lock, with the raw
	 * table (bento_call would nest the lock). A panic here fails the mount(2) only: the
	 * new instance is abandoned.
	 */
	bento_sem_down(sbi);
	bento_ctx_begin(&cctx, sbi, sbi->type, "mount", false);
	err = bento_guard(&cctx, sbi->ops, mount, sb->s_bdev, nr_blocks, sbi->options,
			  sbi->options_len, sbi->mount_flags | (silent ? BENTO_MOUNT_SILENT : 0), &fs);
	err = bento_status(sbi, "mount", err);
	if (!err && !fs) {
		pr_err("%s: mount returned no instance\n", sbi->name);
		err = -EIO;
	}
	if (!err) {
		cctx.op = "getattr";
		err = bento_guard(&cctx, sbi->ops, getattr, fs, &req, BENTO_ROOT_INO, &attr);
		err = bento_status(sbi, "getattr", err);
		if (!err && !S_ISDIR(attr.mode)) {
			pr_err("%s: the root (inode 1) is not a directory\n", sbi->name);
			err = -EIO;
		}
		cctx.op = "destroy";
		if (err && !cctx.panicked)
			bento_guard(&cctx, sbi->ops, destroy, fs);
		else if (!err)
			sbi->fs = fs;
	}
	bento_ctx_end(&cctx);
	bento_sem_up(sbi);
	if (err)
		return err;
	attr.ino = BENTO_ROOT_INO;
	root = bento_iget(sb, &attr, false, 0, NULL);
	if (IS_ERR(root)) {
		err = PTR_ERR(root);
		goto out_destroy;
	}
	sb->s_root = d_make_root(root);
	if (!sb->s_root) {
		err = -ENOMEM;
		goto out_destroy;
	}
	bento_bg_start(sbi);
	bento_shrinker_start(sbi);
	return 0;

out_destroy:
	/* put_super only runs once s_root is set, so undo the mount here. */
	bento_destroy_fs(sbi);
	return err;
}

/*
 * Mount ctx->type. Then ctx->type is NULL if the new mount took over its module reference.
 * With fs=, an existing mount of the device is shared only if it is of the same file system;
 * when probing (@fs_name NULL) whatever is mounted there is what the device holds.
 */
static int bento_get_tree_type(struct fs_context *fc, const char *fs_name)
{
	struct bento_sb_info *sbi;
	struct super_block *sb;
	int err;

	err = get_tree_bdev(fc, bento_fill_super);
	if (err)
		return err;

	sb = fc->root->d_sb;
	sbi = BENTO_SB(sb);
	if (fs_name && strcmp(sbi->name, fs_name)) {
		bento_fc_err(fc, "%s is already mounted with fs=%s", sb->s_id, sbi->name);
		dput(fc->root);
		fc->root = NULL;
		deactivate_locked_super(sb);
		return -EBUSY;
	}
	return 0;
}

/*
 * No fs=: try each registered file system (its current version) in turn, as mount(8) without
 * -t tries each type in /proc/filesystems. EINVAL is "not mine" and goes on to the next; any
 * other error stops there.
 */
static int bento_probe(struct fs_context *fc)
{
	struct bento_fs_context *ctx = fc->fs_private;
	char name[BENTO_NAME_MAX + 1];
	char *names, *p, *end;
	int err = -EINVAL;

	if (!fc->source) {
		bento_fc_err(fc, "no device given");
		return -EINVAL;
	}
	names = bento_registered_names();
	if (!names)
		return -ENOMEM;
	for (p = names; *p && err == -EINVAL; p = *end ? end + 1 : end) {
		end = strchrnul(p, ',');
		strscpy(name, p, min_t(size_t, end - p + 1, sizeof(name)));
		/* Unregistered since: skip it. */
		if (bento_get_type(name, false, &ctx->type, &ctx->reg))
			continue;
		err = bento_get_tree_type(fc, NULL);
		if (ctx->type) {
			module_put(ctx->type->owner);
			ctx->type = NULL;
		}
	}
	if (err == -EINVAL)
		bento_fc_err(fc, "no registered Bento file system recognises %s; loaded: %s",
			     fc->source, names[0] ? names : "none");
	kfree(names);
	return err;
}

static int bento_get_tree(struct fs_context *fc)
{
	struct bento_fs_context *ctx = fc->fs_private;
	int err;

	if (!ctx->fs_name)
		return bento_probe(fc);

	err = bento_get_type(ctx->fs_name, true, &ctx->type, &ctx->reg);
	if (err == -EINVAL) {
		bento_fc_err(fc, "invalid file system name \"%s\"", ctx->fs_name);
		return err;
	}
	if (err) {
		bento_fc_err(fc, "no file system named %s (and no module bento-fs-%s to load)",
			     ctx->fs_name, ctx->fs_name);
		return err;
	}
	return bento_get_tree_type(fc, ctx->fs_name);
}

static int bento_reconfigure(struct fs_context *fc)
{
	struct bento_fs_context *ctx = fc->fs_private;
	struct super_block *sb = fc->root->d_sb;
	struct bento_sb_info *sbi = BENTO_SB(sb);

	if (ctx->fs_name && strcmp(ctx->fs_name, sbi->name)) {
		bento_fc_err(fc, "remount: fs= cannot change (mounted with fs=%s)",
			     sbi->name);
		return -EINVAL;
	}
	/* Other options are fixed at mount time and ignored here. */

	if (!(fc->sb_flags_mask & SB_RDONLY))
		return 0;
	if ((fc->sb_flags & SB_RDONLY) && !sb_rdonly(sb)) {
		int err;

		/* rw -> ro: no more background work, then write everything out (dirty pages,
		 * inodes, then sync_fs). The VFS has already refused this if files are open for
		 * writing. */
		bento_bg_stop(sbi);
		err = sync_filesystem(sb);
		if (err)
			bento_bg_start(sbi);
		return err;
	}
	if (!(fc->sb_flags & SB_RDONLY) && sb_rdonly(sb) &&
	    (sbi->mount_flags & BENTO_MOUNT_RDONLY)) {
		/* The file system was mounted read-only and may not be ready to write (it did
		 * not recover, for one). */
		bento_fc_err(fc, "%s: cannot remount read-write a file system mounted read-only; unmount and mount it again",
			     sb->s_id);
		return -EINVAL;
	}
	/* ro -> rw of a file system mounted rw (and remounted ro since): it never knew. */
	if (!(fc->sb_flags & SB_RDONLY) && sb_rdonly(sb))
		bento_bg_start(sbi);
	return 0;
}

static void bento_fc_free(struct fs_context *fc)
{
	struct bento_fs_context *ctx = fc->fs_private;

	if (!ctx)
		return;
	if (ctx->type)
		module_put(ctx->type->owner);
	kfree(ctx->fs_name);
	kfree(ctx->options);
	kfree(ctx);
}

static const struct fs_context_operations bento_context_ops = {
	.free		= bento_fc_free,
	.parse_param	= bento_parse_param,
	.get_tree	= bento_get_tree,
	.reconfigure	= bento_reconfigure,
};

static int bento_init_fs_context(struct fs_context *fc)
{
	struct bento_fs_context *ctx;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	fc->fs_private = ctx;
	fc->ops = &bento_context_ops;
	return 0;
}

static void bento_kill_sb(struct super_block *sb)
{
	struct bento_sb_info *sbi = BENTO_SB(sb);

	/* sync, evict inodes (forget), put_super (destroy), release the device */
	kill_block_super(sb);
	if (!sbi)
		return;
	bento_detach_mount(sbi);
	/*
	 * Even after a panic: no task runs the instance's code any more (none is in a call, none
	 * can enter one), and nothing calls into what it leaked.
	 */
	if (sbi->type)
		module_put(sbi->type->owner);
	if (sbi->upgrade_inited)
		percpu_free_rwsem(&sbi->upgrade);
	kfree(sbi->options);
	kfree(sbi);
}

static struct file_system_type bento_fs_type = {
	.owner			= THIS_MODULE,
	.name			= "bento",
	.init_fs_context	= bento_init_fs_context,
	.kill_sb		= bento_kill_sb,
	.fs_flags		= FS_REQUIRES_DEV,
};
MODULE_ALIAS_FS("bento");

/* ---- module -------------------------------------------------------------------------------- */

static int __init bento_init(void)
{
	int err;

	err = bento_inode_cache_init();
	if (err)
		return err;
	err = bento_registry_init();
	if (err)
		goto out_cache;
	err = register_filesystem(&bento_fs_type);
	if (err)
		goto out_registry;
	pr_info("Bento VFS glue loaded (ABI %u)\n", BENTO_ABI_VERSION);
	return 0;

out_registry:
	bento_registry_exit();
out_cache:
	bento_inode_cache_exit();
	return err;
}

static void __exit bento_exit(void)
{
	unregister_filesystem(&bento_fs_type);
	bento_registry_exit();
	bento_inode_cache_exit();
}

module_init(bento_init);
module_exit(bento_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Bento: file systems in safe Rust, VFS glue and kernel services");
