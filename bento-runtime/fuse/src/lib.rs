//! The Bento runtime's FUSE front end: serves any [`FileSystem`] over `/dev/fuse` with [fuser].
//!
//! [`FuseAdapter`] turns fuser's low-level calls into calls of the [`FileSystem`] trait.
//! [`FuseSession`] mounts (the `mount(2)` call and the `FUSE_INIT` handshake) and then serves
//! with several worker threads until the file system is unmounted; [`serve`] does both.
//!
//! Life cycle: [`FileSystem::destroy`] runs exactly once, when the session ends. For a plain
//! (non-`fuseblk`) mount the kernel sends no `FUSE_DESTROY`: `umount` aborts the connection, the
//! workers' reads fail with `ENODEV`, and fuser then calls the adapter's `destroy` after it has
//! joined every worker. The adapter also destroys on drop and [`FuseSession::run`] destroys once
//! more after the session (a no-op when done), so the file system is flushed before `run`
//! returns whichever way the session ended. Note that `umount(8)` itself returns as soon as the
//! kernel has let go of the mount, before `destroy` has finished: a program that needs the final
//! state on disk waits for the serving process (for `logfs-fuse`, its lock on the image).
//!
//! Live upgrade: a serving session can hand its mount to a new process
//! ([`FuseSession::offer_takeover`], [`Takeover`]); see [`takeover`].
//!
//! [`daemon`] has the process plumbing a FUSE daemon of any Bento file system needs; [`memfs`]
//! is a small in-memory file system for testing front ends.
//!
//! A panic in the file system does not take a worker thread down (which would leave the request
//! unanswered and the caller hanging): the adapter catches it, answers `EIO`, and from then on
//! treats the file system as shut down, like a kernel file system after an oops: every call
//! fails with `EIO` and `destroy` is skipped, so in-memory state that may be inconsistent is
//! never written; the volume is left as a crash would leave it.

mod adapter;
mod convert;
pub mod daemon;
pub mod memfs;
mod options;
mod session;
pub mod takeover;

pub use adapter::FuseAdapter;
pub use convert::{fuse_attr, system_time, timespec};
pub use fuser::{MountOption, SessionACL};
pub use options::{FuseOptions, Negotiated};
pub use session::{FuseSession, Unmounted, Unmounter, log_to_stderr, serve};
pub use takeover::{
    Handover, Takeover, TakeoverError, TakeoverOffer, TestFault, bind_control_socket,
};
