// SPDX-License-Identifier: GPL-2.0-only
/* logfs_badstate.ko (make upgrade-modules): logfs built with the cargo feature bad-state. */
#define LOGFS_VERSION_SUFFIX "+bad-state"
#include "logfs_main.c"
