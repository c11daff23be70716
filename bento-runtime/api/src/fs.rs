//! libBentoFS: the interface between a front end (the bentofs kernel module or FUSE) and a file
//! system.
//!
//! The shape follows the FUSE low-level API, because that is what the kernel's VFS operations map
//! onto cleanly: inodes are named by number, the front end keeps lookup counts and tells the file
//! system when it forgets an inode, and every call gets the caller's credentials. Calls take
//! `&self`: front ends call concurrently from many threads, so a file system uses interior
//! mutability (the runtime's sleeping locks) rather than `&mut self`.
//!
//! Names are byte strings (`&[u8]`), never UTF-8 checked: Linux names are bytes.

use alloc::vec::Vec;

use crate::errno::{Errno, Result};

/// Inode number as seen by the front end. The root directory is always [`ROOT_INO`].
pub type Ino = u64;

/// The root directory's inode number (FUSE's `FUSE_ROOT_ID`).
pub const ROOT_INO: Ino = 1;

/// Longest name of a directory entry.
pub const NAME_MAX: usize = 255;

/// Who is asking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl Request {
    /// A request made by root, for internal callers and tests.
    pub const ROOT: Request = Request {
        uid: 0,
        gid: 0,
        pid: 0,
    };
}

/// A point in time, seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

impl Timespec {
    pub const fn new(sec: i64, nsec: u32) -> Self {
        Timespec { sec, nsec }
    }
}

/// A time to set: a given time, or the file system's current time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOrNow {
    Time(Timespec),
    Now,
}

/// The type of an inode, as in the `S_IFMT` bits of a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileType {
    RegularFile,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    NamedPipe,
    Socket,
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;
pub const S_IXGRP: u32 = 0o010;

impl FileType {
    /// The type encoded in a mode's `S_IFMT` bits, if it is one.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & S_IFMT {
            S_IFREG => FileType::RegularFile,
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::NamedPipe,
            S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits of this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::RegularFile => S_IFREG,
            FileType::Directory => S_IFDIR,
            FileType::Symlink => S_IFLNK,
            FileType::CharDevice => S_IFCHR,
            FileType::BlockDevice => S_IFBLK,
            FileType::NamedPipe => S_IFIFO,
            FileType::Socket => S_IFSOCK,
        }
    }

    /// The `DT_*` value used in directory entries.
    pub fn dirent_type(self) -> u8 {
        match self {
            FileType::NamedPipe => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::RegularFile => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }
}

/// Attributes of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileAttr {
    pub ino: Ino,
    pub size: u64,
    /// Allocated space in 512-byte units, as `st_blocks`.
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub crtime: Timespec,
    pub kind: FileType,
    /// Permission bits including setuid, setgid and sticky (mode & 0o7777).
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    /// Preferred I/O size.
    pub blksize: u32,
    pub generation: u64,
}

impl FileAttr {
    /// The full mode: type bits and permission bits.
    pub fn mode(&self) -> u32 {
        self.kind.mode_bits() | u32::from(self.perm)
    }
}

/// The reply to operations that create or find a name: the inode's attributes. The front end
/// counts one lookup reference for every successful reply of this type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub attr: FileAttr,
}

/// Attribute changes requested by `setattr`. `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits (mode & 0o7777); the file type never changes.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
    /// An explicit change time (the kernel sets it on its own changes); otherwise "now" whenever
    /// anything changes.
    pub ctime: Option<Timespec>,
    /// Clear setuid and setgid (the kernel asks this when an unprivileged writer changes a file).
    pub kill_suid: bool,
}

/// How to shut a mounted file system down (`FS_IOC_GOINGDOWN`, whose flag values these are):
/// what to commit first. After it, whatever was committed, the instance writes nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// The front end has written everything back already: commit what is still dirty.
    FullSync,
    /// Make the metadata changed so far durable (no data the front end still caches).
    MetaFlush,
    /// Nothing more: what is durable now is what the next mount finds.
    NoLogFlush,
}

impl Shutdown {
    /// From `FS_GOING_DOWN_*` (0, 1, 2); `None` for any other value.
    pub fn from_flag(flag: u32) -> Option<Shutdown> {
        match flag {
            0 => Some(Shutdown::FullSync),
            1 => Some(Shutdown::MetaFlush),
            2 => Some(Shutdown::NoLogFlush),
            _ => None,
        }
    }
}

/// Flags of `rename`, the values of Linux `renameat2(2)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenameFlags(pub u32);

impl RenameFlags {
    pub const NOREPLACE: u32 = 1;
    pub const EXCHANGE: u32 = 2;
    pub const WHITEOUT: u32 = 4;

    pub fn noreplace(self) -> bool {
        self.0 & Self::NOREPLACE != 0
    }
    pub fn exchange(self) -> bool {
        self.0 & Self::EXCHANGE != 0
    }
    pub fn whiteout(self) -> bool {
        self.0 & Self::WHITEOUT != 0
    }
}

/// `setxattr` flags.
pub const XATTR_CREATE: i32 = 1;
pub const XATTR_REPLACE: i32 = 2;

/// `fallocate` mode bits (`linux/falloc.h`).
pub const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
pub const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;
/// Remove a block-aligned range; what follows moves down, the file shrinks.
pub const FALLOC_FL_COLLAPSE_RANGE: i32 = 0x08;
/// Make a range read as zeros with its space allocated.
pub const FALLOC_FL_ZERO_RANGE: i32 = 0x10;
/// Insert a block-aligned hole; what follows moves up, the file grows.
pub const FALLOC_FL_INSERT_RANGE: i32 = 0x20;

/// The reply to `open`, `opendir` and the open half of `create`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// A handle the file system chooses; the front end passes it back on later calls.
    pub fh: u64,
    /// `FOPEN_*` flags for the front end (0: use the page cache normally).
    pub flags: u32,
}

/// File-system statistics, as `statfs(2)` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// Where `readdir` puts entries. `add` returns `true` when the buffer is full and the entry was
/// not taken; the file system then stops and the front end asks again from that entry's offset.
pub trait DirFiller {
    /// `offset` is the cookie that resumes the listing *after* this entry.
    fn add(&mut self, ino: Ino, offset: u64, kind: FileType, name: &[u8]) -> bool;
}

/// Options every mount understands; file-system specific options arrive unparsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub read_only: bool,
    /// A probe (`mount` without `fs=`): a device that is not this file system's is expected
    /// and needs no log line.
    pub silent: bool,
    /// Comma-separated options the front end did not interpret itself.
    pub fs_options: alloc::string::String,
}

/// A mounted file system.
///
/// Every operation has a default that returns `ENOSYS`, so a file system implements what it
/// supports. Errors are Linux errno values.
///
/// Life cycle: a file-system crate constructs its type from a block device (see [`Mount`]); the
/// front end calls operations concurrently; `destroy` ends the mount and must leave the device
/// consistent. For live upgrade, `export_state` flushes and hands over what a newer version needs
/// to continue the same mount ([`Mount::resume`] takes it).
#[allow(unused_variables)]
pub trait FileSystem: Send + Sync {
    /// The mount is going away: write everything and leave a clean volume.
    fn destroy(&self) -> Result<()> {
        Ok(())
    }

    /// Make everything written so far durable (`sync(2)`, `syncfs(2)`).
    fn sync_fs(&self) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    /// Periodic work, called every few seconds while mounted: writing back old changes, and
    /// later background cleaning. Never called concurrently with `destroy` or after it.
    fn background(&self) -> Result<()> {
        Ok(())
    }

    /// Delayed allocation: bytes `[offset, offset+len)` of `ino` are about to be dirtied in a
    /// page cache and written back later. Succeed only if that writeback will find space (an
    /// ENOSPC now fails the write(2) instead of losing the data at writeback). Front ends
    /// without a page cache of their own never call it.
    fn reserve(&self, ino: Ino, offset: u64, len: u64) -> Result<()> {
        Ok(())
    }

    /// Flush and serialize the in-memory state for a newer version of the file system.
    fn export_state(&self) -> Result<Vec<u8>> {
        Err(Errno::ENOSYS)
    }

    fn lookup(&self, req: &Request, parent: Ino, name: &[u8]) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    /// Memory pressure: with `nr` 0, how many clean cache entries could be given back; else
    /// give back up to `nr` of them (least recently used first) and say how many went. `None`:
    /// busy (the caller is memory reclaim, which must never wait for a lock another call holds
    /// nor for I/O), ask again later.
    fn shrink(&self, nr: u64) -> Option<u64> {
        Some(0)
    }

    /// Shut down (`FS_IOC_GOINGDOWN`): commit what `how` asks, then, for good, write nothing
    /// more to the device, not even in `destroy` (which then only frees), do no background
    /// work, and answer every other call with EIO. The next mount recovers what was durable,
    /// as after a crash. A second shutdown does nothing. Without it: EOPNOTSUPP.
    fn shutdown(&self, how: Shutdown) -> Result<()> {
        Err(Errno::EOPNOTSUPP)
    }

    /// The front end dropped `nlookup` references to `ino`.
    fn forget(&self, ino: Ino, nlookup: u64) {}

    fn getattr(&self, req: &Request, ino: Ino) -> Result<FileAttr> {
        Err(Errno::ENOSYS)
    }

    fn setattr(
        &self,
        req: &Request,
        ino: Ino,
        attr: &SetAttr,
        fh: Option<u64>,
    ) -> Result<FileAttr> {
        Err(Errno::ENOSYS)
    }

    fn readlink(&self, req: &Request, ino: Ino) -> Result<Vec<u8>> {
        Err(Errno::ENOSYS)
    }

    /// `mode` carries the file type bits and is already masked by the caller's umask.
    fn mknod(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    fn mkdir(&self, req: &Request, parent: Ino, name: &[u8], mode: u32) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    fn unlink(&self, req: &Request, parent: Ino, name: &[u8]) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    fn rmdir(&self, req: &Request, parent: Ino, name: &[u8]) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    fn symlink(&self, req: &Request, parent: Ino, name: &[u8], target: &[u8]) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    fn rename(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    fn link(&self, req: &Request, ino: Ino, newparent: Ino, newname: &[u8]) -> Result<Entry> {
        Err(Errno::ENOSYS)
    }

    /// `flags` are the `open(2)` flags.
    fn open(&self, req: &Request, ino: Ino, flags: i32) -> Result<Opened> {
        Ok(Opened::default())
    }

    /// Read into `buf`; returns the number of bytes read, short only at end of file.
    fn read(&self, req: &Request, ino: Ino, fh: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        Err(Errno::ENOSYS)
    }

    /// Write `data` at `offset`; returns the number of bytes written (all of it, or an error:
    /// page-cache writeback has no use for a short count). Timestamps are the front end's
    /// business: a front end with a page cache owns a cached file's times and sets them with
    /// `setattr`; one without must call `setattr` itself after writing.
    fn write(&self, req: &Request, ino: Ino, fh: u64, offset: u64, data: &[u8]) -> Result<usize> {
        Err(Errno::ENOSYS)
    }

    /// Called on every `close(2)` of a file descriptor.
    fn flush(&self, req: &Request, ino: Ino, fh: u64) -> Result<()> {
        Ok(())
    }

    /// The last reference to an open file went away.
    fn release(&self, req: &Request, ino: Ino, fh: u64, flags: i32) -> Result<()> {
        Ok(())
    }

    fn fsync(&self, req: &Request, ino: Ino, fh: u64, datasync: bool) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    fn opendir(&self, req: &Request, ino: Ino, flags: i32) -> Result<Opened> {
        Ok(Opened::default())
    }

    /// List entries starting at cookie `offset` (0 = from the beginning).
    fn readdir(
        &self,
        req: &Request,
        ino: Ino,
        fh: u64,
        offset: u64,
        out: &mut dyn DirFiller,
    ) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    fn releasedir(&self, req: &Request, ino: Ino, fh: u64) -> Result<()> {
        Ok(())
    }

    fn fsyncdir(&self, req: &Request, ino: Ino, fh: u64, datasync: bool) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    fn statfs(&self, req: &Request, ino: Ino) -> Result<Statfs> {
        Err(Errno::ENOSYS)
    }

    /// `flags`: [`XATTR_CREATE`], [`XATTR_REPLACE`] or 0.
    fn setxattr(
        &self,
        req: &Request,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    fn getxattr(&self, req: &Request, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        Err(Errno::ENOSYS)
    }

    /// All names, each followed by a NUL byte.
    fn listxattr(&self, req: &Request, ino: Ino) -> Result<Vec<u8>> {
        Err(Errno::ENOSYS)
    }

    fn removexattr(&self, req: &Request, ino: Ino, name: &[u8]) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    /// `mask` is `access(2)`'s R_OK/W_OK/X_OK/F_OK. Front ends that check permissions themselves
    /// (the VFS, FUSE's `default_permissions`) do not call this.
    fn access(&self, req: &Request, ino: Ino, mask: i32) -> Result<()> {
        Err(Errno::ENOSYS)
    }

    /// Create and open a regular file.
    fn create(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        flags: i32,
    ) -> Result<(Entry, Opened)> {
        Err(Errno::ENOSYS)
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: Ino,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<()> {
        Err(Errno::ENOSYS)
    }
}

/// How a file-system type is brought up on a block device: a fresh mount, or a live upgrade that
/// continues a running mount from state exported by another version.
#[allow(unused_variables)]
pub trait Mount<D>: FileSystem + Sized {
    /// The name front ends register and users select (`-o fs=NAME`).
    const NAME: &'static str;
    /// This implementation's version, shown to users and checked on upgrade.
    const VERSION: &'static str;

    fn mount(dev: D, options: &MountOptions) -> Result<Self>;

    fn resume(dev: D, options: &MountOptions, state: &[u8]) -> Result<Self> {
        Err(Errno::ENOSYS)
    }
}
