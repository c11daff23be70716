// SPDX-License-Identifier: GPL-2.0-only
/* logfs_v2.ko (make upgrade-modules): logfs built with the cargo feature v2. */
#define LOGFS_VERSION_SUFFIX "+v2"
#include "logfs_main.c"
