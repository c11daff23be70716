//! The Bento runtime's kernel backend: the C-ABI edge between bentofs.ko and a Rust file system,
//! and libBentoKS over the kernel.
//!
//! All `unsafe` of the kernel build lives in this crate. bentofs calls the `extern "C"`
//! trampolines of [`ops`] through the table a file-system module registers; they turn pointers
//! into references and call the safe [`FileSystem`](bento_api::fs::FileSystem) trait. The
//! services a file system uses (memory, locks, block I/O, time, logging, panics) call the
//! `bento_ks_*` helpers bentofs exports (`bentofs-c/include/bento/bento_abi.h`, whose layout
//! [`ffi`] mirrors and pins with compile-time assertions); locks, time and logging reach the file
//! system through the backend [`host`] installs into `bento-api`.
//!
//! A file-system module is one line: `bento_kernel::declare_kernel_fs!(SYMBOL, Type);` defines
//! the operation table the module's C stub registers, the global allocator and the panic handler.
#![no_std]
// No panic reachable from a syscall's arguments or the disk's contents: in the kernel a panic
// is a BUG() with locks held (docs/architecture.md). Tests may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]
// Every unsafe operation sits in its own block with its SAFETY line, also in unsafe fns.
#![deny(unsafe_op_in_unsafe_fn)]
// Fallible allocation only (clippy.toml beside Cargo.toml): in the kernel a failed allocation
// is ENOMEM, never an abort. Tests allocate as they like (Cargo.toml allows these lints).
#![cfg_attr(
    not(test),
    deny(
        clippy::disallowed_methods,
        clippy::disallowed_macros,
        clippy::disallowed_types
    )
)]

extern crate alloc;

pub mod allocator;
pub mod block;
pub mod ffi;
pub mod host;
pub mod ops;

pub use block::KernelBlockDevice;
pub use ffi::BentoOps;

use core::fmt::{self, Write};

/// Formats into a fixed buffer, cutting what does not fit: usable when allocation is not.
pub(crate) struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub(crate) const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&self.buf)
    }
}

impl<const N: usize> Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let free = self.buf.get_mut(self.len..).unwrap_or_default();
        let n = free.len().min(s.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), s.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
            // n is at most the free space, so len stays at most N.
            self.len = self.len.saturating_add(n);
        }
        Ok(())
    }
}

/// Write one kernel log line.
pub(crate) fn log(level: u32, args: fmt::Arguments<'_>) {
    let mut line = StackBuf::<256>::new();
    let _ = line.write_fmt(args);
    let msg = line.as_bytes();
    // SAFETY: msg is valid for msg.len() bytes for the duration of the call.
    unsafe { ffi::bento_ks_log(level, msg.as_ptr(), msg.len() as u64) }
}

/// The panic handler of a kernel module: hand "FILE:LINE:COL: MESSAGE" to bentofs, which fails
/// the mount the panicking call was made on and gives that call up (it returns EIO; the frames
/// of this task from the call's entry down to here are abandoned, never returned to, and the
/// instance is never called again), or BUG()s outside a call. Never returns here. No `Drop`
/// of the abandoned frames runs: what they own is leaked with the instance, which nothing
/// touches again (docs/architecture.md §7 says why that is sound).
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut msg = StackBuf::<256>::new();
    let _ = match info.location() {
        Some(l) => write!(
            msg,
            "{}:{}:{}: {}",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        ),
        None => write!(msg, "?: {}", info.message()),
    };
    let m = msg.as_bytes();
    // SAFETY: m is valid for m.len() bytes. bento_ks_panic does not return; the trap after it
    // tells objtool (and the CPU, should it ever return) that nothing follows.
    unsafe {
        ffi::bento_ks_panic(m.as_ptr(), m.len() as u64);
        core::arch::asm!("ud2", options(noreturn))
    }
}

/// Define a file-system module's Rust half: the operation table `$ops` (an exported symbol the
/// C stub passes to `bento_register_fs`), the global allocator and the panic handler.
#[macro_export]
macro_rules! declare_kernel_fs {
    ($ops:ident, $fs:ty) => {
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static $ops: $crate::BentoOps = $crate::ops::table::<$fs>();

        #[global_allocator]
        static BENTO_ALLOCATOR: $crate::allocator::KernelAllocator =
            $crate::allocator::KernelAllocator;

        #[panic_handler]
        fn bento_panic(info: &core::panic::PanicInfo<'_>) -> ! {
            $crate::panic(info)
        }
    };
}
