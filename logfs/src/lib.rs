//! logfs: a log-structured file system for flash.
//!
//! Every write is appended to a log; nothing is overwritten in place except the superblock and
//! the shadow-paged tables a checkpoint commits. See `docs/format.md` for the on-disk format.
//! The crate is `no_std` and free of `unsafe`, so it runs unchanged in the kernel (through
//! bentofs) and in userspace (over FUSE); the runtime supplies block I/O, locks and time.
//!
//! Modules, one mechanism each (as in F2FS):
//! * [`format`]: every on-disk structure and its validator, the one definition of the format;
//! * tables and caches: [`checkpoint`], [`segment`] (usage table), [`nat`] (node address table),
//!   [`node`] (node cache), [`dir`] (hashed directories), [`xattr`];
//! * mechanisms: [`log`] (append-only writing), [`space`] (space accounting, delayed allocation,
//!   node allocation), [`file`](mod@file) (block mapping, read, write), [`truncate`] (truncate, freeing
//!   blocks), [`falloc`] (fallocate: preallocation, holes, zeroing), [`shift`] (collapse and
//!   insert range), [`fsync`] (roll-forward records), [`inode`] (inode lifecycle, getattr,
//!   setattr), [`namei`] (lookup, create, link, unlink, rename), [`gc`] (segment cleaning),
//!   [`recovery`] (roll-forward of fsync records and orphans at mount), [`upgrade`] (the
//!   live-upgrade state), [`mkfs`];
//! * [`fs`]: the mounted file system ([`LogFs`], `Volume`, mount options, loading);
//!   [`vfs`]: the Bento `Mount` and `FileSystem` implementations over it;
//!   [`error`]: errors, and the rate-limited report of corruption.
#![no_std]
// No panic reachable from a syscall's arguments or the disk's contents: in the kernel a panic
// is a BUG() with locks held (docs/architecture.md). What comes from the disk and fails a check
// is `Error::Corrupt`; an in-memory invariant that does not hold is EIO (`error::invariant`).
// Tests may panic.
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
// Fallible allocation only (logfs/clippy.toml, `mem`): allocation failure is ENOMEM, never an
// abort. Tests may allocate as they like (Cargo.toml allows these lints for every target).
#![cfg_attr(
    not(test),
    deny(
        clippy::disallowed_methods,
        clippy::disallowed_macros,
        clippy::disallowed_types
    )
)]

extern crate alloc;

pub mod checkpoint;
pub mod dir;
pub mod error;
pub mod falloc;
pub mod file;
pub mod format;
pub mod fs;
pub mod fsync;
pub mod gc;
pub mod inode;
pub mod keyset;
pub mod log;
mod lru;
pub mod mem;
pub mod mkfs;
pub mod namei;
pub mod nat;
pub mod node;
#[cfg(feature = "panic-trigger")]
pub mod panic_trigger;
pub mod recovery;
pub mod segment;
pub mod shift;
pub mod space;
pub mod truncate;
pub mod upgrade;
pub mod vfs;
pub mod xattr;

pub use error::{Error, Result};
pub use format::layout::{BLOCK_SIZE, SEG_BLOCKS};
pub use fs::LogFs;
