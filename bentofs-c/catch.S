/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Containing a panic of a file system (docs/architecture.md, "A panic"). Every call into a file
 * system goes through bento_invoke(), which records its stack pointer in the call's context;
 * bento_ks_panic() gives up the call with bento_throw(), which returns from that bento_invoke()
 * with -EIO. The frames in between (the file system's, which panicked: Rust with panic=abort,
 * which cannot unwind) are abandoned, never returned to; bentofs marks the mount failed, releases
 * the kernel locks the call took through bento_ks_* and never calls that instance again.
 *
 * The layout of struct bento_call_ctx that this file reads is asserted in bentofs.h.
 */
#include <linux/linkage.h>
#include <linux/objtool.h>
#include <asm/nospec-branch.h>

#define CTX_FN		8
#define CTX_ARG0	16
#define CTX_SP		24
/* Stack arguments passed on: the longest operation (create, rename) has 9 arguments, 3 on the
 * stack. */
#define STACK_ARGS	4
#define FRAME		(STACK_ARGS * 8 + 8)	/* and 8 to keep %rsp 16-byte aligned at the call */

	.text
/*
 * long bento_invoke(struct bento_call_ctx *ctx, ARG1, ARG2, ...): calls ctx->fn(ctx->arg0,
 * ARG1, ARG2, ...) and returns its result. Called as bento_invoke_OP, of the operation's own type,
 * so the arguments are where the operation expects them: registers as they are, stack arguments
 * copied (always four words: reading a few unused words of the caller's frame is harmless).
 */
SYM_FUNC_START(bento_invoke)
	push	%rbp
	mov	%rsp, %rbp
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	sub	$FRAME, %rsp
	mov	16(%rbp), %rax
	mov	%rax, 0(%rsp)
	mov	24(%rbp), %rax
	mov	%rax, 8(%rsp)
	mov	32(%rbp), %rax
	mov	%rax, 16(%rsp)
	mov	40(%rbp), %rax
	mov	%rax, 24(%rsp)
	mov	%rsp, CTX_SP(%rdi)
	mov	CTX_FN(%rdi), %rax
	mov	CTX_ARG0(%rdi), %rdi
	CALL_NOSPEC rax
	add	$FRAME, %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	RET
SYM_FUNC_END(bento_invoke)

/* One name per operation, each declared in C with the operation's type (bentofs.h): the calls
 * stay direct and type-correct. */
SYM_FUNC_ALIAS(bento_invoke_mount, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_destroy, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_sync_fs, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_export_state, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_import_state, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_lookup, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_forget, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_getattr, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_setattr, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_readlink, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_mknod, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_mkdir, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_unlink, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_rmdir, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_symlink, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_rename, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_link, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_open, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_release, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_read, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_write, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_fsync, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_opendir, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_readdir, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_releasedir, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_fsyncdir, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_statfs, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_setxattr, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_getxattr, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_listxattr, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_removexattr, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_create, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_fallocate, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_background, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_reserve, bento_invoke)
SYM_FUNC_ALIAS(bento_invoke_drop, bento_invoke)

/*
 * void bento_throw(struct bento_call_ctx *ctx, long ret): returns @ret from the bento_invoke()
 * of @ctx, which must be on the current task's stack, below our caller. Does not return.
 * Its stack pointer comes from memory: objtool cannot follow that, hence "non-standard" (no ORC
 * data: the unwinder stops here, which only matters to a sampling profiler).
 */
SYM_FUNC_START(bento_throw)
	mov	%rsi, %rax
	mov	CTX_SP(%rdi), %rsp
	add	$FRAME, %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	RET
SYM_FUNC_END(bento_throw)
STACK_FRAME_NON_STANDARD bento_throw
