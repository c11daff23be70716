/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Containing a panic of a file system (docs/architecture.md, "A panic"). Every call into a file
 * system goes through bento_invoke(), which records its stack pointer in the call's context;
 * bento_ks_panic() gives the call up with bento_throw(), which returns -EIO from that
 * bento_invoke(). The frames in between (the file system's: Rust with panic=abort, which cannot
 * unwind) are abandoned, never returned to; bentofs has marked the mount failed, released the
 * kernel locks the call took through bento_ks_* and never calls that instance again.
 *
 * The layout of struct bento_call_ctx read here is asserted in bentofs.h.
 */
#include <linux/linkage.h>
#include <linux/objtool.h>
#include <asm/nospec-branch.h>

#define CTX_FN		8
#define CTX_ARG0	16
#define CTX_SP		24
/* Stack arguments passed on: the longest operations (create, rename) have 9, 3 on the stack. */
#define STACK_ARGS	4
#define FRAME		(STACK_ARGS * 8 + 8)	/* and 8 to keep %rsp 16-byte aligned at the call */

	.text
/*
 * long bento_invoke(struct bento_call_ctx *ctx, ARG1, ARG2, ...): calls ctx->fn(ctx->arg0,
 * ARG1, ARG2, ...) and returns its result. C calls it under each operation's own type
 * (bento_invoke_OP in bentofs.h), so the arguments are where the operation expects them:
 * registers as they are, stack arguments copied (always four words: reading a few unused words
 * of the caller's frame is harmless). The callee-saved registers are saved here, as the
 * abandoned frames would have restored them.
 *
 * SYM_FUNC_START gives it an ENDBR (IBT; it is only called directly), CALL_NOSPEC makes the
 * indirect call a retpoline where the kernel uses them, RET is the kernel's return (thunk); the
 * frame is a standard one, which objtool follows and describes for the ORC unwinder.
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

/*
 * void bento_throw(struct bento_call_ctx *ctx, long ret): returns @ret from the bento_invoke()
 * of @ctx, which must be on the current task's stack, below our caller. Does not return.
 *
 * Its stack pointer comes from memory, which objtool cannot follow: hence "non-standard" (no
 * ORC data for it; only a stack trace taken inside these few instructions stops here). The
 * return stack buffer still predicts returns into the abandoned frames: it is refilled as on a
 * context switch (__switch_to_asm; on 6.12 that also resets call-depth tracking). The kernel
 * has no shadow stack for itself (x86 user shadow stacks only), so nothing else tracks the
 * returns skipped.
 */
SYM_FUNC_START(bento_throw)
	mov	CTX_SP(%rdi), %rsp
	FILL_RETURN_BUFFER %r12, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_CTXSW
	mov	%rsi, %rax
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
