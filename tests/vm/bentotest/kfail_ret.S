/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Where bento_kfail's probe sends an allocation it fails: the probe fires at the function's
 * entry, before its frame exists, so a bare return goes straight back to the caller, with the
 * NULL the probe put in %rax. (arch/x86/lib/error-inject.c's just_return_func, which the kernel
 * builds only with CONFIG_FUNCTION_ERROR_INJECTION.)
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>

SYM_FUNC_START(bento_kfail_return)
	RET
SYM_FUNC_END(bento_kfail_return)
