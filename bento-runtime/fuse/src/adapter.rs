//! [`FuseAdapter`]: fuser's low-level calls turned into calls of the [`FileSystem`] trait, with
//! panics caught (see the crate documentation).

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use std::vec::Vec;

use fuser::{
    AccessFlags, FileHandle, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner,
    OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, WriteFlags,
};

use crate::convert::*;
use crate::options::{FuseOptions, Negotiated};
use crate::takeover::Gate;
use bento_api::errno::{Errno, Result};
use bento_api::fs::{Entry, FileSystem, Opened, RenameFlags, SetAttr, TimeOrNow};

/// What the adapter, the session and its handles share.
pub(crate) struct Shared<F> {
    pub(crate) fs: F,
    /// `Some(result)` once `destroy` has run. A mutex, not a flag, so that a second caller
    /// waits for a destroy in progress instead of returning before the volume is clean.
    pub(crate) destroyed: Mutex<Option<Result<()>>>,
    /// Set after a panic in the file system: every call fails, `destroy` is skipped.
    pub(crate) failed: AtomicBool,
    pub(crate) negotiated: Mutex<Option<Negotiated>>,
    /// Where workers park for a takeover.
    pub(crate) gate: Gate,
}

impl<F: FileSystem> Shared<F> {
    /// Periodic background work. Holds the `destroyed` lock, so it never overlaps or follows
    /// `destroy`.
    pub(crate) fn background(&self) {
        let destroyed = self.destroyed.lock().unwrap_or_else(|e| e.into_inner());
        if destroyed.is_some() || self.failed.load(Ordering::Acquire) {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| self.fs.background())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bento_api::error!("fuse: background work failed: {e}"),
            Err(_) => {
                self.failed.store(true, Ordering::Release);
                bento_api::error!("fuse: background work panicked");
            }
        }
    }

    pub(crate) fn destroy_once(&self) -> Result<()> {
        let mut destroyed = self.destroyed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(result) = *destroyed {
            return result;
        }
        let result = if self.failed.load(Ordering::Acquire) {
            bento_api::error!(
                "fuse: not writing back a file system that panicked; the volume is left as after a crash"
            );
            Err(Errno::EIO)
        } else {
            match catch_unwind(AssertUnwindSafe(|| self.fs.destroy())) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    bento_api::error!("fuse: destroy failed: {e}");
                    Err(e)
                }
                Err(_) => {
                    self.failed.store(true, Ordering::Release);
                    bento_api::error!("fuse: destroy panicked");
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
    pub(crate) shared: Arc<Shared<F>>,
    pub(crate) ttl: Duration,
    pub(crate) max_write: u32,
    pub(crate) want_writeback: bool,
    pub(crate) keep_cache: bool,
    /// Set in `init` when the kernel accepted `FUSE_WRITEBACK_CACHE`.
    pub(crate) writeback: bool,
    /// Whether requests pass the takeover gate ([`FuseOptions::takeover`]).
    pub(crate) gated: bool,
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

    /// A call whose answer is an empty reply, under the takeover gate.
    fn reply_empty(&self, op: &str, reply: ReplyEmpty, f: impl FnOnce(&F) -> Result<()>) {
        let _gate = self.gate();
        match self.call(op, f) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
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
                bento_api::error!(
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
        bento_api::debug!(
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
        self.reply_empty("unlink", reply, |fs| {
            fs.unlink(&request(req), parent.0, name(n))
        });
    }

    fn rmdir(&self, req: &fuser::Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        self.reply_empty("rmdir", reply, |fs| {
            fs.rmdir(&request(req), parent.0, name(n))
        });
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
        self.reply_empty("flush", reply, |fs| fs.flush(&request(req), ino.0, fh.0));
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
        let flags = self.open_flags(flags.0);
        self.reply_empty("release", reply, |fs| {
            fs.release(&request(req), ino.0, fh.0, flags)
        });
    }

    fn fsync(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.reply_empty("fsync", reply, |fs| {
            fs.fsync(&request(req), ino.0, fh.0, datasync)
        });
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
        self.reply_empty("releasedir", reply, |fs| {
            fs.releasedir(&request(req), ino.0, fh.0)
        });
    }

    fn fsyncdir(
        &self,
        req: &fuser::Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.reply_empty("fsyncdir", reply, |fs| {
            fs.fsyncdir(&request(req), ino.0, fh.0, datasync)
        });
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
        self.reply_empty("setxattr", reply, |fs| {
            fs.setxattr(&request(req), ino.0, name(n), value, flags)
        });
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
        self.reply_empty("removexattr", reply, |fs| {
            fs.removexattr(&request(req), ino.0, name(n))
        });
    }

    fn access(&self, req: &fuser::Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.reply_empty("access", reply, |fs| {
            fs.access(&request(req), ino.0, mask.bits())
        });
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
        self.reply_empty("fallocate", reply, |fs| {
            fs.fallocate(&request(req), ino.0, fh.0, offset, length, mode)
        });
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

#[cfg(test)]
#[path = "adapter_tests.rs"]
mod tests;
