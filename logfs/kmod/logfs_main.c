// SPDX-License-Identifier: GPL-2.0-only
/*
 * logfs.ko: registers logfs (Rust, in logfs_rust.o) with bentofs.
 */
#include <linux/module.h>
#include <bento/bento_abi.h>

extern const struct bento_ops logfs_rust_ops;

static struct bento_fs_type logfs_type = {
	.name = "logfs",
	.version = LOGFS_VERSION,
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
MODULE_VERSION(LOGFS_VERSION);
MODULE_SOFTDEP("pre: bentofs");
