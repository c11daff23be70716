// SPDX-License-Identifier: GPL-2.0-only
/* logfs_badformat.ko (make upgrade-modules): logfs built with the cargo feature bad-format. */
#define LOGFS_VERSION_SUFFIX "+bad-format"
#include "logfs_main.c"
