// SPDX-License-Identifier: GPL-2.0-only
/*
 * logfs_panic.ko (make upgrade-modules): logfs built with the cargo feature panic-trigger, for
 * the kernel suite's panic containment test (part p): trusted.logfs.panic makes a mount panic.
 * A test build only.
 */
#define LOGFS_VERSION_SUFFIX "+panic"
#include "logfs_main.c"
