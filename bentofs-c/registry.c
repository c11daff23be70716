// SPDX-License-Identifier: GPL-2.0-only
/*
 * bentofs: the registry of Bento file systems. Modules register a name (bento_register_fs);
 * mounts look it up, loading the module on demand, and join its list of mounts; /proc/fs/bento
 * and /sys/fs/bento show both. super.c calls in here; nothing here calls super.c.
 *
 * Locks: bento_registry_lock (bentofs.h) guards the list, and the sysfs show() callbacks take
 * it. Removing a sysfs directory waits for show() calls in flight, so directories are created
 * and removed only under bento_register_lock, never under bento_registry_lock.
 */
#define pr_fmt(fmt) "bento: " fmt

/*
 * With CONFIG_MODVERSIONS a module links against the CRC of bento_register_fs's expanded type,
 * which depends on the kernel structures visible here. These are the headers super.c exported it
 * under through v0.2.0; dropping one changes the CRC and a newer logfs.ko cannot load into an
 * older bentofs.ko (ks_build_release compares Module.symvers with the previous release).
 */
#include <linux/module.h>
#include <linux/ctype.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/blkdev.h>
#include <linux/kmod.h>
#include <linux/kobject.h>
#include <linux/mutex.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/writeback.h>
#include <linux/string.h>
#include "bentofs.h"

DEFINE_MUTEX(bento_registry_lock);
static LIST_HEAD(bento_registry);

/*
 * Serialises register and unregister (outside bento_registry_lock), so a name's directory in
 * /sys/fs/bento is gone before a new registration of the name creates it again.
 */
static DEFINE_MUTEX(bento_register_lock);
static struct kobject *bento_kobj;		/* /sys/fs/bento */

static struct bento_registration *bento_find_locked(const char *name)
{
	struct bento_registration *reg;

	list_for_each_entry(reg, &bento_registry, link)
		if (!strcmp(reg->type->name, name))
			return reg;
	return NULL;
}

/* ---- /sys/fs/bento/NAME/{version,mounts} ---- */

/* The registration a directory belongs to; NULL while it is being added or removed. */
static struct bento_registration *bento_kobj_reg_locked(struct kobject *kobj)
{
	struct bento_registration *reg;

	list_for_each_entry(reg, &bento_registry, link)
		if (reg->kobj == kobj)
			return reg;
	return NULL;
}

/* The version new mounts of the name get. */
static ssize_t version_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct bento_registration *reg;
	ssize_t len = 0;

	mutex_lock(&bento_registry_lock);
	reg = bento_kobj_reg_locked(kobj);
	if (reg)
		len = sysfs_emit(buf, "%s\n", bento_version(reg->type));
	mutex_unlock(&bento_registry_lock);
	return len;
}

/* "DEVICE VERSION" per mount, the version serving it now. */
static ssize_t mounts_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct bento_registration *reg;
	struct bento_sb_info *sbi;
	int len = 0, n;

	mutex_lock(&bento_registry_lock);
	reg = bento_kobj_reg_locked(kobj);
	if (reg) {
		list_for_each_entry(sbi, &reg->mounts, type_link) {
			n = sysfs_emit_at(buf, len, "%s %s\n", sbi->sb->s_id,
					  bento_version(sbi->type));
			/* One page: end at the last whole line (/proc/fs/bento/mounts has all). */
			if (!n || buf[len + n - 1] != '\n')
				break;
			len += n;
		}
	}
	mutex_unlock(&bento_registry_lock);
	return len;
}

static struct kobj_attribute bento_kattr_version = __ATTR_RO(version);
static struct kobj_attribute bento_kattr_mounts = __ATTR_RO(mounts);

static struct attribute *bento_fs_attrs[] = {
	&bento_kattr_version.attr,
	&bento_kattr_mounts.attr,
	NULL,
};
ATTRIBUTE_GROUPS(bento_fs);

static void bento_kobj_release(struct kobject *kobj)
{
	kfree(kobj);
}

static const struct kobj_type bento_fs_ktype = {
	.release	= bento_kobj_release,
	.sysfs_ops	= &kobj_sysfs_ops,
	.default_groups	= bento_fs_groups,
};

/* /sys/fs/bento/NAME with its attributes, for a registration not yet listed. */
static int bento_sysfs_add(struct bento_registration *reg)
{
	struct kobject *kobj;
	int err;

	lockdep_assert_held(&bento_register_lock);
	kobj = kzalloc(sizeof(*kobj), GFP_KERNEL);
	if (!kobj)
		return -ENOMEM;
	err = kobject_init_and_add(kobj, &bento_fs_ktype, bento_kobj, "%s", reg->type->name);
	if (err) {
		kobject_put(kobj);
		return err;
	}
	reg->kobj = kobj;
	return 0;
}

/**
 * bento_register_fs - make a file system available to `mount -t bento -o fs=NAME`
 * @type: name, version, owner module and operation table; must stay valid until
 *	bento_unregister_fs() (normally static data of the calling module).
 *
 * A name another module registered is a live upgrade (upgrade.c): every mount of it moves to
 * @type, or none does and this fails with the reason in the kernel log.
 *
 * Return: 0, -EINVAL for an incompatible or incomplete table, -EEXIST for a name this module
 * already registered, or why the upgrade was refused.
 */
int bento_register_fs(struct bento_fs_type *type)
{
	const struct bento_ops *ops;
	struct bento_registration *reg, *cur;
	struct super_block **pinned = NULL;
	unsigned int nr_pinned = 0;
	const char *old_version = NULL;
	int err = 0;

	if (!type || !type->name || !type->name[0] || !type->ops) {
		pr_err("register: incomplete bento_fs_type\n");
		return -EINVAL;
	}
	ops = type->ops;
	if (ops->abi_version != BENTO_ABI_VERSION) {
		pr_err("register %s: ABI version %u, bentofs has %u\n", type->name,
		       ops->abi_version, BENTO_ABI_VERSION);
		return -EINVAL;
	}
	if (ops->ops_size < BENTO_OPS_SIZE_MIN) {
		pr_err("register %s: operation table of %u bytes, bentofs needs %zu\n", type->name,
		       ops->ops_size, (size_t)BENTO_OPS_SIZE_MIN);
		return -EINVAL;
	}
	if (!ops->mount || !ops->destroy || !ops->lookup || !ops->getattr) {
		pr_err("register %s: mount, destroy, lookup and getattr are required\n",
		       type->name);
		return -EINVAL;
	}
	if (strlen(type->name) > BENTO_NAME_MAX || strpbrk(type->name, ", \t\n=")) {
		pr_err("register: bad file-system name \"%s\"\n", type->name);
		return -EINVAL;
	}

	reg = kzalloc(sizeof(*reg), GFP_KERNEL);
	if (!reg)
		return -ENOMEM;
	reg->type = type;
	INIT_LIST_HEAD(&reg->mounts);

	mutex_lock(&bento_register_lock);
	mutex_lock(&bento_registry_lock);
	cur = bento_find_locked(type->name);
	if (!cur) {
		/* A new name: its directory first, outside bento_registry_lock (see the top);
		 * bento_register_lock keeps the name free meanwhile. */
		mutex_unlock(&bento_registry_lock);
		err = bento_sysfs_add(reg);
		mutex_lock(&bento_registry_lock);
		if (!err) {
			list_add_tail(&reg->link, &bento_registry);
			reg = NULL;
		}
	} else if (cur->type == type || cur->type->owner == type->owner) {
		err = -EEXIST;
	} else {
		old_version = bento_version(cur->type);
		err = bento_upgrade_locked(cur, type, &pinned, &nr_pinned);
	}
	mutex_unlock(&bento_registry_lock);
	mutex_unlock(&bento_register_lock);
	/* After the lock: a last reference may unmount, which takes it. */
	bento_unpin_supers(pinned, nr_pinned);
	kfree(reg);
	if (err == -EEXIST)
		pr_err("register %s: this module already registered that name\n", type->name);
	if (err)
		return err;
	if (old_version)
		pr_info("file system %s is now version %s (was %s)\n", type->name,
			bento_version(type), old_version);
	else
		pr_info("registered file system %s %s\n", type->name, bento_version(type));
	return 0;
}
EXPORT_SYMBOL_GPL(bento_register_fs);

/**
 * bento_unregister_fs - withdraw a file system registered with bento_register_fs()
 * @type: the same pointer that was registered
 *
 * New mounts fail from now on. Existing mounts pin the owner module, so a module unloading
 * itself never gets here with mounts left; another caller that does is logged and the mounts
 * are detached from the registry (they keep working with the old table). A type a live upgrade
 * replaced is no longer registered: the registration, found by pointer, belongs to the new
 * version and stays.
 */
void bento_unregister_fs(struct bento_fs_type *type)
{
	struct bento_registration *reg, *found = NULL;
	struct bento_sb_info *sbi, *tmp;
	bool replaced = false;

	mutex_lock(&bento_register_lock);
	mutex_lock(&bento_registry_lock);
	list_for_each_entry(reg, &bento_registry, link) {
		if (reg->type == type) {
			found = reg;
			break;
		}
		if (type && type->name && !strcmp(reg->type->name, type->name))
			replaced = true;
	}
	if (found) {
		list_del(&found->link);
		if (found->nr_mounts)
			pr_err("unregister %s: %u mounts still use it\n", type->name,
			       found->nr_mounts);
		list_for_each_entry_safe(sbi, tmp, &found->mounts, type_link) {
			list_del_init(&sbi->type_link);
			sbi->reg = NULL;
		}
	}
	mutex_unlock(&bento_registry_lock);
	/* Waits for show() calls in flight, which take bento_registry_lock: after it. */
	if (found)
		kobject_put(found->kobj);
	mutex_unlock(&bento_register_lock);
	if (!found && replaced) {
		pr_info("unloaded %s %s (replaced by a live upgrade)\n", type->name,
			bento_version(type));
		return;
	}
	if (!found) {
		pr_err("unregister: %s is not registered\n", type && type->name ? type->name : "?");
		return;
	}
	pr_info("unregistered file system %s\n", type->name);
	kfree(found);
}
EXPORT_SYMBOL_GPL(bento_unregister_fs);

/* /proc/fs/bento/filesystems: "NAME VERSION MOUNTS" per registered file system. */
static int bento_filesystems_show(struct seq_file *m, void *v)
{
	struct bento_registration *reg;

	mutex_lock(&bento_registry_lock);
	list_for_each_entry(reg, &bento_registry, link)
		seq_printf(m, "%s %s %u\n", reg->type->name, bento_version(reg->type),
			   reg->nr_mounts);
	mutex_unlock(&bento_registry_lock);
	return 0;
}

/*
 * /proc/fs/bento/mounts: "DEVICE NAME VERSION MODULE" per mount, the version it runs now, and
 * " failed" after a mount whose file system panicked, " shutdown" after one shut down
 * (FS_IOC_GOINGDOWN).
 */
static int bento_mounts_show(struct seq_file *m, void *v)
{
	struct bento_registration *reg;
	struct bento_sb_info *sbi;

	mutex_lock(&bento_registry_lock);
	list_for_each_entry(reg, &bento_registry, link)
		list_for_each_entry(sbi, &reg->mounts, type_link)
			seq_printf(m, "%s %s %s %s%s\n", sbi->sb->s_id, sbi->name,
				   bento_version(sbi->type), module_name(sbi->type->owner),
				   bento_failed(sbi) ? " failed" :
				   bento_shut_down(sbi) ? " shutdown" : "");
	mutex_unlock(&bento_registry_lock);
	return 0;
}

/*
 * Finds the registration of @name and pins its module. With @load, an unregistered name loads
 * the module that declares MODULE_ALIAS("bento-fs-NAME"), as the VFS loads fs-TYPE for
 * mount -t TYPE. Return: 0, -EINVAL for a bad name, -ENODEV for no such file system.
 */
int bento_get_type(const char *name, bool load, struct bento_fs_type **type,
		   struct bento_registration **regp)
{
	const char *c;
	int tries;

	for (c = name; *c; c++)
		if (!isalnum(*c) && *c != '_' && *c != '-')
			return -EINVAL;
	if (!*name || c - name > BENTO_NAME_MAX)
		return -EINVAL;

	for (tries = 0; tries < (load ? 2 : 1); tries++) {
		struct bento_registration *reg;

		/* request_module sleeps in modprobe: never under the registry lock. */
		if (tries && request_module("bento-fs-%s", name))
			break;
		mutex_lock(&bento_registry_lock);
		reg = bento_find_locked(name);
		if (reg && try_module_get(reg->type->owner)) {
			*type = reg->type;
			*regp = reg;
		}
		mutex_unlock(&bento_registry_lock);
		if (*type)
			return 0;
	}
	return -ENODEV;
}

/*
 * The registered names, oldest registration first, as "NAME,NAME" ("" for none), to try in
 * turn for a mount without fs=. kfree() it; NULL when out of memory.
 */
char *bento_registered_names(void)
{
	struct bento_registration *reg;
	size_t len = 1;
	char *names;

	mutex_lock(&bento_registry_lock);
	list_for_each_entry(reg, &bento_registry, link)
		len += strlen(reg->type->name) + 1;
	names = kzalloc(len, GFP_KERNEL);
	if (names) {
		list_for_each_entry(reg, &bento_registry, link) {
			if (names[0])
				strcat(names, ",");
			strcat(names, reg->type->name);
		}
	}
	mutex_unlock(&bento_registry_lock);
	return names;
}

/*
 * Enters a new mount in the list of its registration @reg, unless the name was unregistered
 * since bento_get_type(). Return: true when it is in.
 */
bool bento_attach_mount(struct bento_sb_info *sbi, struct bento_registration *reg)
{
	mutex_lock(&bento_registry_lock);
	/* Still registered? (the module pin keeps the type itself valid either way) */
	if (bento_find_locked(sbi->name) == reg) {
		sbi->reg = reg;
		list_add_tail(&sbi->type_link, &sbi->reg->mounts);
		sbi->reg->nr_mounts++;
		/* A live upgrade since get_tree: mount the version it installed. */
		if (sbi->reg->type != sbi->type && try_module_get(sbi->reg->type->owner)) {
			module_put(sbi->type->owner);
			sbi->type = sbi->reg->type;
			sbi->ops = sbi->type->ops;
		}
	}
	mutex_unlock(&bento_registry_lock);
	return sbi->reg;
}

void bento_detach_mount(struct bento_sb_info *sbi)
{
	mutex_lock(&bento_registry_lock);
	if (sbi->reg) {
		list_del_init(&sbi->type_link);
		sbi->reg->nr_mounts--;
		sbi->reg = NULL;
	}
	mutex_unlock(&bento_registry_lock);
}

static struct proc_dir_entry *bento_proc_dir;

int bento_registry_init(void)
{
	bento_proc_dir = proc_mkdir("fs/bento", NULL);
	if (!bento_proc_dir ||
	    !proc_create_single("filesystems", 0444, bento_proc_dir, bento_filesystems_show) ||
	    !proc_create_single("mounts", 0444, bento_proc_dir, bento_mounts_show))
		goto out_proc;
	bento_kobj = kobject_create_and_add("bento", fs_kobj);
	if (!bento_kobj)
		goto out_proc;
	return 0;

out_proc:
	proc_remove(bento_proc_dir);
	return -ENOMEM;
}

/* Module exit: every file system has unregistered (each module holds a reference on ours). */
void bento_registry_exit(void)
{
	kobject_put(bento_kobj);
	proc_remove(bento_proc_dir);
}
