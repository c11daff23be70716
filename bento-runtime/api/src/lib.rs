//! The Bento runtime's API: everything a file system may use, and nothing else.
//!
//! * [`fs`] is libBentoFS: the [`fs::FileSystem`] trait, shaped like the FUSE low-level API, with
//!   typed requests and replies. Front ends (the bentofs kernel module through `bento-kernel`,
//!   the FUSE adapter of `bento-fuse`) turn their calls into calls of this trait.
//! * [`ks`] is libBentoKS: the kernel services a file system may use (block devices and buffers,
//!   sleeping locks, time, logging), with one interface in the kernel and in userspace.
//! * [`upgrade`] is the versioned state envelope of live upgrades; [`boxed`] a fallible `Box`.
//!
//! The crate is `no_std` and forbids `unsafe`, so a file system that depends on it alone is
//! safe Rust and builds for both worlds. With the `std` feature (userspace) the services are the
//! standard library's; without it they are the backend that `bento-kernel` installs at mount
//! ([`ks::host`]).
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
#![forbid(unsafe_code)]
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
#[cfg(feature = "std")]
extern crate std;

pub mod boxed;
pub mod errno;
pub mod fs;
pub mod ks;
pub mod upgrade;

pub use errno::Errno;
