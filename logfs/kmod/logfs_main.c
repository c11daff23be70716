// SPDX-License-Identifier: GPL-2.0-only
/*
 * logfs.ko: registers logfs (Rust, in logfs_rust.o) with bentofs. Registering it while another
 * logfs module is registered upgrades every logfs mount to this one (docs/upgrade.md); the
 * builds of `make upgrade-modules` include this file with a version suffix.
 */
#include <linux/module.h>
#include <bento/bento_abi.h>
#include <bento/bento_fault.h>

#ifndef LOGFS_VERSION_SUFFIX
#define LOGFS_VERSION_SUFFIX ""
#endif

extern const struct bento_ops logfs_rust_ops;

static struct bento_fs_type logfs_type = {
	.name = "logfs",
	.version = LOGFS_VERSION LOGFS_VERSION_SUFFIX,
	.owner = THIS_MODULE,
	.ops = &logfs_rust_ops,
};

static int __init logfs_init(void)
{
	return bento_register_fs(&logfs_type);
}

static void __exit logfs_exit(void)
{
	bento_unregister_fs(&logfs_type);
}

module_init(logfs_init);
module_exit(logfs_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("logfs, a log-structured file system for flash, on Bento");
MODULE_VERSION(LOGFS_VERSION LOGFS_VERSION_SUFFIX);
MODULE_SOFTDEP("pre: bentofs");
/* mount -t bento -o fs=logfs loads this module (bentofs requests bento-fs-NAME). */
MODULE_ALIAS("bento-fs-logfs");
