//! The Bento runtime.
//!
//! * [`fs`] is libBentoFS: the [`fs::FileSystem`] trait, shaped like the FUSE low-level API, with
//!   typed requests and replies. Front ends (the bentofs kernel module, the FUSE adapter) turn their
//!   calls into calls of this trait.
//! * [`ks`] is libBentoKS: the kernel services a file system may use (block devices and buffers,
//!   sleeping locks, time, logging). Each has a userspace and a kernel implementation with the same
//!   interface, so a file system crate builds unchanged for both.
//! * `memfs` (userspace) is a small in-memory file system for testing front ends.
//!
//! Backends are chosen by cargo features: `std` (userspace), `fuse` (userspace plus the FUSE
//! adapter). With neither, locks fall back to spinning locks, which is only for `no_std` builds
//! that never block.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod errno;
pub mod fs;
pub mod ks;
pub mod upgrade;

#[cfg(feature = "fuse")]
pub mod fuse;
#[cfg(feature = "kernel")]
pub mod kernel;
#[cfg(feature = "std")]
pub mod memfs;
#[cfg(feature = "std")]
pub mod user;

pub use errno::Errno;
