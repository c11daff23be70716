//! The FUSE adapter: serves any [`FileSystem`] over `/dev/fuse` with [fuser].
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
//! A panic in the file system does not take a worker thread down (which would leave the request
//! unanswered and the caller hanging): the adapter catches it, answers `EIO`, and from then on
//! treats the file system as shut down, like a kernel file system after an oops: every call
//! fails with `EIO` and `destroy` is skipped, so in-memory state that may be inconsistent is
//! never written; the volume is left as a crash would leave it.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::boxed::Box;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::format;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::string::String;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use fuser::{
    AccessFlags, Config, FileHandle, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, WriteFlags,
};
pub use fuser::{MountOption, SessionACL};

use crate::errno::{Errno, Result};

#[path = "takeover.rs"]
pub mod takeover;
use takeover::Gate;
pub use takeover::{
    Handover, Takeover, TakeoverError, TakeoverOffer, TestFault, bind_control_socket,
};

/// How often the file system's `background` work runs.
const BACKGROUND_INTERVAL: Duration = Duration::from_secs(5);
use crate::fs::{
    DirFiller, Entry, FileAttr, FileSystem, FileType, Ino, Opened, RenameFlags, Request, SetAttr,
    TimeOrNow, Timespec,
};

/// How a file system is mounted and served.
#[derive(Clone, Debug)]
pub struct FuseOptions {
    /// The mount's source as `/proc/mounts` shows it (conventionally the image or device path).
    pub fsname: Option<String>,
    /// The file-system type shown as `fuse.SUBTYPE` (conventionally [`crate::fs::Mount::NAME`]).
    pub subtype: Option<String>,
    /// Mount read-only (`MS_RDONLY`); the kernel then refuses every change.
    pub read_only: bool,
    /// Who may use the mount: the mounting user (default), also root (`allow_root`), or
    /// everyone (`allow_other`). Permission bits are always checked by the kernel
    /// (`default_permissions`).
    pub acl: SessionACL,
    /// Worker threads; 0 picks the number of CPUs (at least 2).
    pub threads: usize,
    /// Give each worker its own `/dev/fuse` descriptor (`FUSE_DEV_IOC_CLONE`).
    pub clone_fd: bool,
    /// How long the kernel may cache attributes and directory entries.
    pub ttl: Duration,
    /// The largest write request, in bytes (the kernel may lower it).
    pub max_write: u32,
    /// Let the kernel cache writes and keep file sizes and times itself (`FUSE_WRITEBACK_CACHE`).
    /// Safe because nothing else writes to the file system behind the kernel's back.
    pub writeback_cache: bool,
    /// Keep a file's page cache across opens (`FOPEN_KEEP_CACHE`), as for a kernel file system.
    pub keep_cache: bool,
    /// Further kernel mount flags (`noexec`, `noatime`, `dev`, `suid`, `sync`, ...).
    pub mount_options: Vec<MountOption>,
    /// Let workers stop at a request boundary for a live takeover (see [`takeover`]): one
    /// atomic load after each request. Required by [`FuseSession::offer_takeover`].
    pub takeover: bool,
}

impl Default for FuseOptions {
    fn default() -> Self {
        FuseOptions {
            fsname: None,
            subtype: None,
            read_only: false,
            acl: SessionACL::Owner,
            threads: 0,
            clone_fd: true,
            ttl: Duration::from_secs(1),
            max_write: 1 << 20,
            writeback_cache: true,
            keep_cache: true,
            mount_options: Vec::new(),
            takeover: false,
        }
    }
}

impl FuseOptions {
    /// The worker count `threads` stands for.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        }
    }

    fn config(&self) -> Config {
        let mut options = std::vec![MountOption::DefaultPermissions];
        options.push(if self.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        });
        if let Some(name) = &self.fsname {
            options.push(MountOption::FSName(name.clone()));
        }
        if let Some(subtype) = &self.subtype {
            // fuser's own Subtype option only reaches fusermount; as a kernel option the type
            // shows as `fuse.SUBTYPE` with the direct mount(2) too.
            options.push(MountOption::CUSTOM(format!("subtype={subtype}")));
        }
        for option in &self.mount_options {
            if !options.contains(option) {
                options.push(option.clone());
            }
        }
        let mut config = Config::default();
        config.mount_options = options;
        config.acl = self.acl;
        config.n_threads = Some(self.effective_threads());
        config.clone_fd = self.clone_fd;
        config
    }
}

/// What the kernel and the adapter agreed on in `FUSE_INIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The kernel's FUSE ABI version (major, minor).
    pub abi: (u32, u32),
    /// Capabilities the kernel offered.
    pub offered: InitFlags,
    /// Capabilities in effect (requested and offered).
    pub enabled: InitFlags,
    /// The largest write request asked for; the kernel caps it at its `max_pages` limit.
    pub max_write: u32,
}

impl Negotiated {
    pub fn writeback_cache(&self) -> bool {
        self.enabled.contains(InitFlags::FUSE_WRITEBACK_CACHE)
    }
}

/// What the adapter, the session and its handles share.
struct Shared<F> {
    fs: F,
    /// `Some(result)` once `destroy` has run. A mutex, not a flag, so that a second caller
    /// waits for a destroy in progress instead of returning before the volume is clean.
    destroyed: Mutex<Option<Result<()>>>,
    /// Set after a panic in the file system: every call fails, `destroy` is skipped.
    failed: AtomicBool,
    negotiated: Mutex<Option<Negotiated>>,
    /// Where workers park for a takeover.
    gate: Gate,
}

impl<F: FileSystem> Shared<F> {
    /// Periodic background work. Holds the `destroyed` lock, so it never overlaps or follows
    /// `destroy`.
    fn background(&self) {
        let destroyed = self.destroyed.lock().unwrap_or_else(|e| e.into_inner());
        if destroyed.is_some() || self.failed.load(Ordering::Acquire) {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| self.fs.background())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => crate::error!("fuse: background work failed: {e}"),
            Err(_) => {
                self.failed.store(true, Ordering::Release);
                crate::error!("fuse: background work panicked");
            }
        }
    }

    fn destroy_once(&self) -> Result<()> {
        let mut destroyed = self.destroyed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(result) = *destroyed {
            return result;
        }
        let result = if self.failed.load(Ordering::Acquire) {
            crate::error!(
                "fuse: not writing back a file system that panicked; the volume is left as after a crash"
            );
            Err(Errno::EIO)
        } else {
            match catch_unwind(AssertUnwindSafe(|| self.fs.destroy())) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    crate::error!("fuse: destroy failed: {e}");
                    Err(e)
                }
                Err(_) => {
                    self.failed.store(true, Ordering::Release);
                    crate::error!("fuse: destroy panicked");
                    Err(Errno::EIO)
                }
            }
        };
        *destroyed = Some(result);
        result
    }
}

/// Serves a [`FileSystem`] to fuser.
pub struct FuseAdapter<F: FileSystem> {
    shared: Arc<Shared<F>>,
    ttl: Duration,
    max_write: u32,
    want_writeback: bool,
    keep_cache: bool,
    /// Set in `init` when the kernel accepted `FUSE_WRITEBACK_CACHE`.
    writeback: bool,
    /// Whether requests pass the takeover gate ([`FuseOptions::takeover`]).
    gated: bool,
}

impl<F: FileSystem> FuseAdapter<F> {
    /// An adapter serving `fs` with `opts`' caching settings. [`FuseSession`] makes one itself;
    /// this is for running a fuser session by hand.
    pub fn new(fs: F, opts: &FuseOptions) -> Self {
        FuseAdapter {
            shared: Arc::new(Shared {
                fs,
                destroyed: Mutex::new(None),
                failed: AtomicBool::new(false),
                negotiated: Mutex::new(None),
                gate: Gate::new(),
            }),
            ttl: opts.ttl,
            max_write: opts.max_write,
            want_writeback: opts.writeback_cache,
            keep_cache: opts.keep_cache,
            writeback: false,
            gated: opts.takeover,
        }
    }

    /// Taken at the start of every request; when dropped, after the reply went out, it parks
    /// the worker if a takeover is under way.
    #[inline]
    fn gate(&self) -> GateGuard<'_> {
        GateGuard(self.gated.then_some(&self.shared.gate))
    }

    /// Run one file-system call: converts a panic into `EIO` and refuses calls after one.
    fn call<T>(
        &self,
        op: &str,
        f: impl FnOnce(&F) -> Result<T>,
    ) -> core::result::Result<T, fuser::Errno> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(fuser::Errno::EIO);
        }
        match catch_unwind(AssertUnwindSafe(|| f(&self.shared.fs))) {
            Ok(result) => result.map_err(errno),
            Err(_) => {
                self.shared.failed.store(true, Ordering::Release);
                crate::error!(
                    "fuse: the file system panicked in {op}; shutting it down, every further call fails with EIO"
                );
                Err(fuser::Errno::EIO)
            }
        }
    }

    fn reply_entry(&self, reply: ReplyEntry, result: core::result::Result<Entry, fuser::Errno>) {
        match result {
            Ok(entry) => reply.entry(
                &self.ttl,
                &fuse_attr(&entry.attr),
                Generation(entry.attr.generation),
            ),
            Err(e) => reply.error(e),
        }
    }

    /// Open flags as the file system should see them. With the writeback cache the kernel
    /// reads pages of files opened write-only and positions appends itself, so a write-only
    /// open is widened to read-write and `O_APPEND` is dropped (as libfuse's examples do).
    fn open_flags(&self, flags: i32) -> i32 {
        if !self.writeback {
            return flags;
        }
        let mut flags = flags & !libc::O_APPEND;
        if flags & libc::O_ACCMODE == libc::O_WRONLY {
            flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR;
        }
        flags
    }

    fn fopen_flags(&self, opened: &Opened, file: bool) -> FopenFlags {
        let mut flags = FopenFlags::from_bits_retain(opened.flags) - FopenFlags::FOPEN_PASSTHROUGH;
        if file && self.keep_cache && !flags.contains(FopenFlags::FOPEN_DIRECT_IO) {
            flags |= FopenFlags::FOPEN_KEEP_CACHE;
        }
        flags
    }
}

impl<F: FileSystem> Drop for FuseAdapter<F> {
    fn drop(&mut self) {
        // fuser destroys at the end of a session; this covers sessions that never ran
        // (a failed mount or handshake) and any path that skips fuser's destroy.
        let _ = self.shared.destroy_once();
    }
}

/// See [`FuseAdapter::gate`].
struct GateGuard<'a>(Option<&'a Gate>);

impl Drop for GateGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(gate) = self.0 {
            gate.after_request();
        }
    }
}

fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

fn request(req: &fuser::Request) -> Request {
    Request {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn name(s: &OsStr) -> &[u8] {
    s.as_bytes()
}

fn fuse_kind(kind: FileType) -> fuser::FileType {
    match kind {
        FileType::RegularFile => fuser::FileType::RegularFile,
        FileType::Directory => fuser::FileType::Directory,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::CharDevice => fuser::FileType::CharDevice,
        FileType::BlockDevice => fuser::FileType::BlockDevice,
        FileType::NamedPipe => fuser::FileType::NamedPipe,
        FileType::Socket => fuser::FileType::Socket,
    }
}

/// A [`Timespec`] as a [`SystemTime`], exactly, including times before 1970 (whose `nsec` counts
/// forward from `sec`, as in `struct timespec`). Saturates at what `SystemTime` can hold.
pub fn system_time(t: Timespec) -> SystemTime {
    let nsec = Duration::from_nanos(u64::from(t.nsec.min(999_999_999)));
    let whole = Duration::from_secs(t.sec.unsigned_abs());
    let result = if t.sec >= 0 {
        UNIX_EPOCH
            .checked_add(whole)
            .and_then(|s| s.checked_add(nsec))
    } else {
        UNIX_EPOCH
            .checked_sub(whole)
            .and_then(|s| s.checked_add(nsec))
    };
    result.unwrap_or(if t.sec >= 0 { far_future() } else { far_past() })
}

fn far_future() -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::new(i64::MAX as u64, 999_999_999))
        .unwrap_or(UNIX_EPOCH)
}

fn far_past() -> SystemTime {
    UNIX_EPOCH
        .checked_sub(Duration::from_secs(i64::MAX as u64))
        .unwrap_or(UNIX_EPOCH)
}

/// A [`SystemTime`] as a [`Timespec`] (`sec` rounded down, `nsec` in `0..1e9`), saturating.
pub fn timespec(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => match i64::try_from(d.as_secs()) {
            Ok(sec) => Timespec::new(sec, d.subsec_nanos()),
            Err(_) => Timespec::new(i64::MAX, 999_999_999),
        },
        Err(e) => {
            let d = e.duration();
            match i64::try_from(d.as_secs()) {
                Ok(sec) if d.subsec_nanos() == 0 => Timespec::new(-sec, 0),
                Ok(sec) if sec < i64::MAX => {
                    Timespec::new(-sec - 1, 1_000_000_000 - d.subsec_nanos())
                }
                _ => Timespec::new(i64::MIN, 0),
            }
        }
    }
}

/// The kernel's timespec behind a time fuser 0.18 passes to `setattr`. fuser builds it as
/// `EPOCH + (sec, nsec)` for `sec >= 0` but as `EPOCH - (-sec, nsec)` for `sec < 0`, so for
/// times before 1970 the nanoseconds count the wrong way; this inverts that mapping exactly
/// (a negative kernel time always lies at least a second before the epoch, so the two halves
/// do not overlap). The integration tests set and read back a pre-1970 time to keep it honest.
fn setattr_timespec(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec::new(
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            Timespec::new(
                i64::try_from(d.as_secs()).map_or(i64::MIN, |s| -s),
                d.subsec_nanos(),
            )
        }
    }
}

fn setattr_time(t: fuser::TimeOrNow) -> TimeOrNow {
    match t {
        fuser::TimeOrNow::Now => TimeOrNow::Now,
        fuser::TimeOrNow::SpecificTime(t) => TimeOrNow::Time(setattr_timespec(t)),
    }
}

/// fuser's form of [`FileAttr`].
pub fn fuse_attr(a: &FileAttr) -> fuser::FileAttr {
    fuser::FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.crtime),
        kind: fuse_kind(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

/// Puts entries into a fuser directory reply.
struct Filler<'a> {
    reply: &'a mut ReplyDirectory,
    added: usize,
}

impl DirFiller for Filler<'_> {
    fn add(&mut self, ino: Ino, offset: u64, kind: FileType, name: &[u8]) -> bool {
        let full = self.reply.add(
            INodeNo(ino),
            offset,
            fuse_kind(kind),
            OsStr::from_bytes(name),
        );
        if !full {
            self.added += 1;
        }
        full
    }
}

std::thread_local! {
    /// Each worker's read buffer, reused across requests.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Capabilities the adapter asks for when the kernel offers them. fuser itself always asks for
/// `FUSE_ASYNC_READ`, `FUSE_BIG_WRITES` and `FUSE_MAX_PAGES`.
const WANTED: InitFlags = InitFlags::FUSE_ASYNC_READ
    .union(InitFlags::FUSE_BIG_WRITES)
    .union(InitFlags::FUSE_MAX_PAGES)
    .union(InitFlags::FUSE_PARALLEL_DIROPS)
    .union(InitFlags::FUSE_CACHE_SYMLINKS);

#[allow(clippy::too_many_arguments)]
impl<F: FileSystem + 'static> fuser::Filesystem for FuseAdapter<F> {
    fn init(&mut self, _req: &fuser::Request, config: &mut KernelConfig) -> io::Result<()> {
        let offered = config.capabilities();
        let mut wanted = WANTED;
        if self.want_writeback {
            wanted |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        // Not asked for: FUSE_DONT_MASK (so the kernel applies the umask), FUSE_ATOMIC_O_TRUNC
        // (the kernel truncates with setattr first, as the VFS does for kernel file systems),
        // FUSE_HANDLE_KILLPRIV{,_V2} (the kernel clears setuid/setgid with an explicit mode
        // change), FUSE_EXPORT_SUPPORT, FUSE_POSIX_ACL, readdirplus.
        let mut enabled = InitFlags::empty();
        for flag in wanted.iter() {
            if offered.contains(flag) && config.add_capabilities(flag).is_ok() {
                enabled |= flag;
            }
        }
        self.writeback = enabled.contains(InitFlags::FUSE_WRITEBACK_CACHE);
        // fuser sizes max_pages from max(max_write, max_readahead) and asks for FUSE_MAX_PAGES.
        let max_write = match config.set_max_write(self.max_write) {
            Ok(_) => self.max_write,
            Err(nearest) => {
                let _ = config.set_max_write(nearest);
                nearest
            }
        };
        let abi = config.kernel_abi();
        let negotiated = Negotiated {
            abi: (abi.0, abi.1),
            offered,
            enabled,
            max_write,
        };
        crate::debug!(
            "fuse: kernel ABI {}.{}, max_write {} KiB, writeback cache {}, enabled {:?}",
            abi.0,
            abi.1,
            max_write / 1024,
            if self.writeback { "on" } else { "off" },
            enabled
        );
        *self
            .shared
            .negotiated
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(negotiated);
        Ok(())
    }

    fn destroy(&mut self) {
        let _ = self.shared.destroy_once();
    }

    fn lookup(&self, req: &fuser::Request, parent: INodeNo, n: &OsStr, reply: ReplyEntry) {
        let _gate = self.gate();
        let result = self.call("lookup", |fs| fs.lookup(&request(req), parent.0, name(n)));
        self.reply_entry(reply, result);
    }

    fn forget(&self, _req: &fuser::Request, ino: INodeNo, nlookup: u64) {
        // No gate guard: fuser's default batch_forget calls this once per inode, and a
        // takeover must not park a worker halfway through a batch (the rest of it would be lost
        // with the old daemon, leaving lookup counts too high in the exported state). A forget
        // has no reply; the worker parks after its next request instead.
        let _ = self.call("forget", |fs| {
            fs.forget(ino.0, nlookup);
            Ok(())
        });
    }

    fn getattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        _fh: Option<FileHandle>,
        reply: ReplyAttr,
    ) {
        let _gate = self.gate();
        match self.call("getattr", |fs| fs.getattr(&request(req), ino.0)) {
            Ok(attr) => reply.attr(&self.ttl, &fuse_attr(&attr)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _gate = self.gate();
        let changes = SetAttr {
            // The kernel sends the whole mode; the type never changes.
            mode: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            atime: atime.map(setattr_time),
            mtime: mtime.map(setattr_time),
            // Sent by the kernel only with the writeback cache, along with its own mtime.
            ctime: ctime.map(setattr_timespec),
            // FATTR_KILL_SUIDGID comes only with FUSE_HANDLE_KILLPRIV_V2, which is not
            // negotiated: the kernel sends an explicit mode change instead.
            kill_suid: false,
        };
        match self.call("setattr", |fs| {
            fs.setattr(&request(req), ino.0, &changes, fh.map(|f| f.0))
        }) {
            Ok(attr) => reply.attr(&self.ttl, &fuse_attr(&attr)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, req: &fuser::Request, ino: INodeNo, reply: ReplyData) {
        let _gate = self.gate();
        match self.call("readlink", |fs| fs.readlink(&request(req), ino.0)) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    // Without FUSE_DONT_MASK (never negotiated) the kernel has already cleared the umask bits
    // in `mode`; masking here again changes nothing, and keeps the file system's contract
    // ("mode is already masked") independent of what was negotiated.

    fn mknod(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        n: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _gate = self.gate();
        let mode = mode & !(umask & 0o7777);
        let result = self.call("mknod", |fs| {
            fs.mknod(&request(req), parent.0, name(n), mode, rdev)
        });
        self.reply_entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        n: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _gate = self.gate();
        let mode = mode & !(umask & 0o7777);
        let result = self.call("mkdir", |fs| {
            fs.mkdir(&request(req), parent.0, name(n), mode)
        });
        self.reply_entry(reply, result);
    }

    fn unlink(&self, req: &fuser::Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        let _gate = self.gate();
        match self.call("unlink", |fs| fs.unlink(&request(req), parent.0, name(n))) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, req: &fuser::Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        let _gate = self.gate();
        match self.call("rmdir", |fs| fs.rmdir(&request(req), parent.0, name(n))) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        link: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _gate = self.gate();
        let result = self.call("symlink", |fs| {
            fs.symlink(
                &request(req),
                parent.0,
                name(link),
                target.as_os_str().as_bytes(),
            )
        });
        self.reply_entry(reply, result);
    }

    fn rename(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        n: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        let flags = RenameFlags(flags.bits());
        match self.call("rename", |fs| {
            fs.rename(
                &request(req),
                parent.0,
                name(n),
                newparent.0,
                name(newname),
                flags,
            )
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _gate = self.gate();
        let result = self.call("link", |fs| {
            fs.link(&request(req), ino.0, newparent.0, name(newname))
        });
        self.reply_entry(reply, result);
    }

    fn open(&self, req: &fuser::Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _gate = self.gate();
        let flags = self.open_flags(flags.0);
        match self.call("open", |fs| fs.open(&request(req), ino.0, flags)) {
            Ok(opened) => reply.opened(FileHandle(opened.fh), self.fopen_flags(&opened, true)),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _gate = self.gate();
        READ_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            let size = size as usize;
            if buf.len() < size {
                buf.resize(size, 0);
            }
            let buf = &mut buf[..size];
            match self.call("read", |fs| {
                fs.read(&request(req), ino.0, fh.0, offset, buf)
            }) {
                Ok(n) => reply.data(&buf[..n.min(size)]),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _gate = self.gate();
        let writeback = self.writeback;
        match self.call("write", |fs| {
            let n = fs.write(&request(req), ino.0, fh.0, offset, data)?;
            if !writeback {
                // Without the kernel's writeback cache nobody else updates the times.
                let now = SetAttr {
                    mtime: Some(TimeOrNow::Now),
                    ctime: None,
                    ..SetAttr::default()
                };
                fs.setattr(&request(req), ino.0, &now, Some(fh.0))?;
            }
            Ok(n)
        }) {
            // A write request is at most max_write (well below 4 GiB).
            Ok(n) => reply.written(u32::try_from(n.min(data.len())).unwrap_or(u32::MAX)),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        match self.call("flush", |fs| fs.flush(&request(req), ino.0, fh.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        let flags = self.open_flags(flags.0);
        match self.call("release", |fs| {
            fs.release(&request(req), ino.0, fh.0, flags)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        match self.call("fsync", |fs| fs.fsync(&request(req), ino.0, fh.0, datasync)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, req: &fuser::Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _gate = self.gate();
        match self.call("opendir", |fs| fs.opendir(&request(req), ino.0, flags.0)) {
            Ok(opened) => reply.opened(FileHandle(opened.fh), self.fopen_flags(&opened, false)),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _gate = self.gate();
        let mut filler = Filler {
            reply: &mut reply,
            added: 0,
        };
        let result = self.call("readdir", |fs| {
            fs.readdir(&request(req), ino.0, fh.0, offset, &mut filler)
        });
        let added = filler.added;
        match result {
            Ok(()) => reply.ok(),
            // Hand over what was listed; the next call from the last cookie meets the error.
            Err(_) if added > 0 => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        match self.call("releasedir", |fs| fs.releasedir(&request(req), ino.0, fh.0)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        match self.call("fsyncdir", |fs| {
            fs.fsyncdir(&request(req), ino.0, fh.0, datasync)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, req: &fuser::Request, ino: INodeNo, reply: ReplyStatfs) {
        let _gate = self.gate();
        match self.call("statfs", |fs| fs.statfs(&request(req), ino.0)) {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        n: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        match self.call("setxattr", |fs| {
            fs.setxattr(&request(req), ino.0, name(n), value, flags)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        n: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        let _gate = self.gate();
        let result = self.call("getxattr", |fs| fs.getxattr(&request(req), ino.0, name(n)));
        reply_xattr(reply, size, result);
    }

    fn listxattr(&self, req: &fuser::Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _gate = self.gate();
        let result = self.call("listxattr", |fs| fs.listxattr(&request(req), ino.0));
        reply_xattr(reply, size, result);
    }

    fn removexattr(&self, req: &fuser::Request, ino: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        let _gate = self.gate();
        match self.call("removexattr", |fs| {
            fs.removexattr(&request(req), ino.0, name(n))
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, req: &fuser::Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _gate = self.gate();
        match self.call("access", |fs| fs.access(&request(req), ino.0, mask.bits())) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &fuser::Request,
        parent: INodeNo,
        n: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _gate = self.gate();
        let mode = mode & !(umask & 0o7777);
        let flags = self.open_flags(flags);
        match self.call("create", |fs| {
            fs.create(&request(req), parent.0, name(n), mode, flags)
        }) {
            Ok((entry, opened)) => reply.created(
                &self.ttl,
                &fuse_attr(&entry.attr),
                Generation(entry.attr.generation),
                FileHandle(opened.fh),
                self.fopen_flags(&opened, true),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _gate = self.gate();
        match self.call("fallocate", |fs| {
            fs.fallocate(&request(req), ino.0, fh.0, offset, length, mode)
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

/// The FUSE size protocol of `getxattr` and `listxattr`: size 0 asks for the length; a value
/// longer than `size` is `ERANGE`.
fn reply_xattr(reply: ReplyXattr, size: u32, result: core::result::Result<Vec<u8>, fuser::Errno>) {
    match result {
        Ok(value) => match u32::try_from(value.len()) {
            Ok(len) if size == 0 => reply.size(len),
            Ok(len) if len <= size => reply.data(&value),
            Ok(_) => reply.error(fuser::Errno::ERANGE),
            Err(_) => reply.error(fuser::Errno::E2BIG),
        },
        Err(e) => reply.error(e),
    }
}

/// A mounted FUSE session that has completed the `FUSE_INIT` handshake and is ready to serve.
pub struct FuseSession<F: FileSystem + 'static> {
    session: fuser::Session<FuseAdapter<F>>,
    shared: Arc<Shared<F>>,
    mountpoint: PathBuf,
    options: FuseOptions,
    /// The `/dev/fuse` connection (a duplicate of the session's descriptor), for a takeover.
    fuse_fd: OwnedFd,
    offer: Option<TakeoverOffer>,
    /// Taken over from another process: fuser does not know the mount, unmount by path.
    taken_over: bool,
}

impl<F: FileSystem + 'static> FuseSession<F> {
    /// Mount `fs` on `mountpoint` (always with `default_permissions`) and answer the kernel's
    /// `FUSE_INIT`. Requests wait in the kernel until [`FuseSession::run`]. On failure `fs` is
    /// destroyed (it was mounted) and dropped.
    pub fn mount(fs: F, mountpoint: &Path, opts: &FuseOptions) -> io::Result<FuseSession<F>> {
        let adapter = FuseAdapter::new(fs, opts);
        let shared = adapter.shared.clone();
        let mountpoint = mountpoint.canonicalize().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("mount point {}: {e}", mountpoint.display()),
            )
        })?;
        if !mountpoint.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("mount point {} is not a directory", mountpoint.display()),
            ));
        }
        let session = fuser::Session::new(adapter, &mountpoint, &opts.config())?;
        let fuse_fd = session.as_fd().try_clone_to_owned()?;
        Ok(FuseSession {
            session,
            shared,
            mountpoint,
            options: opts.clone(),
            fuse_fd,
            offer: None,
            taken_over: false,
        })
    }

    /// Let another process take this mount over while it is served ([`takeover`]); needs
    /// [`FuseOptions::takeover`]. Requests on `offer.listener` are answered from
    /// [`FuseSession::run`] on; after a successful handover the process exits with status 0.
    pub fn offer_takeover(&mut self, offer: TakeoverOffer) -> io::Result<()> {
        if !self.options.takeover {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the session was mounted without the takeover option",
            ));
        }
        self.offer = Some(offer);
        Ok(())
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// What `FUSE_INIT` settled.
    pub fn negotiated(&self) -> Option<Negotiated> {
        *self
            .shared
            .negotiated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A handle that unmounts from another thread (a signal handler thread, say).
    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter {
            inner: (!self.taken_over).then(|| self.session.unmount_callable()),
            mountpoint: self.mountpoint.clone(),
        }
    }

    /// Serve until the file system is unmounted (or the connection aborted), then destroy the
    /// file system. Returns after `destroy` has finished; a failed `destroy` is an error.
    /// With a takeover offer, a successful handover ends the process instead (status 0).
    pub fn run(self) -> io::Result<()> {
        let FuseSession {
            session,
            shared,
            mountpoint,
            options,
            fuse_fd,
            offer,
            taken_over: _,
        } = self;
        if let Some(offer) = offer {
            let control = takeover::Control {
                shared: shared.clone(),
                offer,
                fuse_fd,
                mountpoint,
                workers: options.effective_threads(),
                options,
            };
            std::thread::Builder::new()
                .name("bento-takeover".into())
                .spawn(move || control.run())?;
        }
        // The file system's periodic work (checkpointing old changes) runs beside the workers.
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let ticker = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("bento-background".into())
                .spawn(move || {
                    let (lock, cv) = &*stop;
                    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while !*stopped {
                        stopped = cv
                            .wait_timeout(stopped, BACKGROUND_INTERVAL)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                        if !*stopped {
                            drop(stopped);
                            shared.background();
                            stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                        }
                    }
                })?
        };
        let served = session.run();
        *stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        stop.1.notify_all();
        let _ = ticker.join();
        // fuser has destroyed by now (or its adapter's drop has); this waits for or repeats
        // nothing, but guarantees it whichever way the session ended.
        let destroyed = shared.destroy_once();
        served?;
        destroyed.map_err(|e| io::Error::other(format!("destroying the file system: {e}")))
    }
}

impl Takeover {
    /// Resume serving the mount from what the old daemon handed over (see [`takeover`]).
    ///
    /// `resume` turns the [`Handover`] into the file system (with `Mount::resume`) and whatever
    /// else the caller needs (taking its descriptors); an `Err` refuses the state, with the
    /// reason, and the old daemon serves on. Dropping the file system must not write anything
    /// (only `destroy` may): it is dropped unused if the old daemon does not confirm. On
    /// success the returned session serves the mount from [`FuseSession::run`], and the
    /// control socket is returned, to offer takeover in turn.
    pub fn resume<F: FileSystem + 'static, T>(
        self,
        resume: impl FnOnce(&mut Handover) -> core::result::Result<(F, T), String>,
    ) -> core::result::Result<(FuseSession<F>, T, UnixListener), TakeoverError> {
        let Takeover {
            mut handover,
            conversation,
        } = self;
        let resumed = catch_unwind(AssertUnwindSafe(|| resume(&mut handover)))
            .unwrap_or_else(|_| Err("the file system panicked resuming".into()));
        let (fs, value) = match resumed {
            Ok(r) => r,
            Err(why) => {
                conversation.refused(&why);
                return Err(TakeoverError::Refused(why));
            }
        };
        let own_fd = match handover.fuse_fd.try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                let why = format!("cannot duplicate the /dev/fuse descriptor: {e}");
                conversation.refused(&why);
                return Err(TakeoverError::Refused(why));
            }
        };
        conversation.resumed()?;
        let negotiated = handover.negotiated;
        let mut options = handover.options.clone();
        options.takeover = true;
        let mountpoint = handover.mountpoint.clone();
        let Handover {
            fuse_fd, listener, ..
        } = handover;
        let mut adapter = FuseAdapter::new(fs, &options);
        adapter.writeback = negotiated.writeback_cache();
        adapter.max_write = negotiated.max_write;
        *adapter
            .shared
            .negotiated
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(negotiated);
        let shared = adapter.shared.clone();
        let session = fuser::Session::from_initialized_fd(
            adapter,
            fuse_fd,
            options.acl,
            options.config(),
            negotiated.abi,
        );
        Ok((
            FuseSession {
                session,
                shared,
                mountpoint,
                options,
                fuse_fd: own_fd,
                offer: None,
                taken_over: true,
            },
            value,
            listener,
        ))
    }
}

/// Mount `fs` on `mountpoint` and serve it until it is unmounted; see [`FuseSession`].
pub fn serve<F: FileSystem + 'static>(
    fs: F,
    mountpoint: &Path,
    opts: &FuseOptions,
) -> io::Result<()> {
    FuseSession::mount(fs, mountpoint, opts)?.run()
}

/// Unmounts a [`FuseSession`]'s mount from any thread.
pub struct Unmounter {
    /// fuser's handle; `None` for a mount taken over from another process (unmounted by path).
    inner: Option<fuser::SessionUnmounter>,
    mountpoint: PathBuf,
}

/// How [`Unmounter::unmount`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmounted {
    /// Unmounted (or it already was): the session is ending.
    Done,
    /// The mount was busy and has been detached (`MNT_DETACH`): it is gone from the namespace,
    /// and the session ends when the last open file or working directory in it goes away.
    Detached,
}

impl Unmounter {
    /// Unmount; if the mount is busy, detach it lazily.
    pub fn unmount(&mut self) -> io::Result<Unmounted> {
        let path = std::ffi::CString::new(self.mountpoint.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let result = match &mut self.inner {
            Some(inner) => inner.unmount(),
            // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
            None => match unsafe { libc::umount2(path.as_ptr(), 0) } {
                0 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            },
        };
        match result {
            Ok(()) => Ok(Unmounted::Done),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
                if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
                    Ok(Unmounted::Detached)
                } else {
                    Err(io::Error::last_os_error())
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Send fuser's own log messages (the `log` crate) to standard error: warnings and errors, or
/// with `debug` everything, including a line per request as libfuse's `-d` gives. Call once.
pub fn log_to_stderr(debug: bool) {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::max_level()
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                std::eprintln!(
                    "fuser {}: {}",
                    record.level().as_str().to_ascii_lowercase(),
                    record.args()
                );
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Warn
        });
    }
}

#[allow(dead_code)]
fn _assert_send<F: FileSystem + 'static>() {
    fn is_send<T: Send>() {}
    is_send::<Unmounter>();
    is_send::<Box<FuseAdapter<F>>>();
}

#[cfg(test)]
#[path = "fuse_tests.rs"]
mod tests;
