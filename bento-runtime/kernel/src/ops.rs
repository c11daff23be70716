//! libBentoFS in the kernel: `extern "C"` trampolines from `struct bento_ops` to the safe
//! [`FileSystem`] trait.
//!
//! The instance pointer bentofs holds is a `Box<F>` leaked at mount and reclaimed at destroy.
//! Calls arrive concurrently, so they only ever make shared references to it (`&F`); the file
//! system synchronizes internally. Every other pointer is valid for the duration of the call, as
//! the header documents.
//!
//! Every operation's trampoline comes from one macro, [`trampoline!`]: it turns the instance
//! and the request into `&F` and a [`Request`], each pointer argument into a slice or an [`Out`]
//! (one narrow `unsafe` conversion apiece, justified by the ABI's contract), and runs a body of
//! safe code. Only the life-cycle entry points (mount, import, export, destroy, drop), which
//! create and free the instance, are written out by hand.

use core::ffi::{c_int, c_void};

use alloc::string::String;
use alloc::vec::Vec;

use crate::KernelBlockDevice;
use crate::ffi::*;
use bento_api::errno::{Errno, Result};
use bento_api::fs::{
    DirFiller, Entry, FileAttr, FileSystem, FileType, Ino, Mount, MountOptions, RenameFlags,
    Request, SetAttr, Shutdown, TimeOrNow, Timespec,
};

/// The operation table for file-system type `F`.
pub const fn table<F: Mount<KernelBlockDevice> + 'static>() -> BentoOps {
    BentoOps {
        abi_version: BENTO_ABI_VERSION,
        ops_size: core::mem::size_of::<BentoOps>() as u32,
        mount: Some(mount::<F>),
        destroy: Some(destroy::<F>),
        sync_fs: Some(sync_fs::<F>),
        export_state: Some(export_state::<F>),
        import_state: Some(import_state::<F>),
        lookup: Some(lookup::<F>),
        forget: Some(forget::<F>),
        getattr: Some(getattr::<F>),
        setattr: Some(setattr::<F>),
        readlink: Some(readlink::<F>),
        mknod: Some(mknod::<F>),
        mkdir: Some(mkdir::<F>),
        unlink: Some(unlink::<F>),
        rmdir: Some(rmdir::<F>),
        symlink: Some(symlink::<F>),
        rename: Some(rename::<F>),
        link: Some(link::<F>),
        open: Some(open::<F>),
        release: Some(release::<F>),
        read: Some(read::<F>),
        write: Some(write::<F>),
        fsync: Some(fsync::<F>),
        opendir: Some(opendir::<F>),
        readdir: Some(readdir::<F>),
        releasedir: Some(releasedir::<F>),
        fsyncdir: Some(fsyncdir::<F>),
        statfs: Some(statfs::<F>),
        setxattr: Some(setxattr::<F>),
        getxattr: Some(getxattr::<F>),
        listxattr: Some(listxattr::<F>),
        removexattr: Some(removexattr::<F>),
        create: Some(create::<F>),
        fallocate: Some(fallocate::<F>),
        background: Some(background::<F>),
        reserve: Some(reserve::<F>),
        drop: Some(drop_instance::<F>),
        shrink: Some(shrink::<F>),
        shutdown: Some(shutdown::<F>),
    }
}

// ---- pointer conversions ----------------------------------------------------------------------

/// # Safety
/// `fs` must come from `mount`/`import_state` of the same `F` and not yet be destroyed.
unsafe fn fs_ref<'a, F>(fs: *mut BentoFs) -> &'a F {
    // SAFETY: per the contract above, fs is a live Box<F>; only shared references are made.
    unsafe { &*(fs as *const F) }
}

/// # Safety
/// `req` must point to a valid `bento_req`.
unsafe fn request(req: *const BentoReq) -> Request {
    // SAFETY: per the contract above.
    let r = unsafe { &*req };
    Request {
        uid: r.uid,
        gid: r.gid,
        pid: r.pid,
    }
}

/// # Safety
/// `ptr` must be valid for reads of `len` bytes (or `len` is 0) for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: u64) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: per the contract above.
    unsafe { core::slice::from_raw_parts(ptr, len as usize) }
}

/// # Safety
/// `ptr` must be valid for writes of `len` bytes and not aliased for `'a`.
unsafe fn bytes_mut<'a>(ptr: *mut u8, len: u64) -> &'a mut [u8] {
    if len == 0 || ptr.is_null() {
        return &mut [];
    }
    // SAFETY: per the contract above.
    unsafe { core::slice::from_raw_parts_mut(ptr, len as usize) }
}

/// An out-parameter of the call: written at most once, by [`Out::put`].
struct Out<T>(*mut T);

impl<T> Out<T> {
    /// # Safety
    /// `ptr` must be valid for a write of `T` for the duration of the call.
    unsafe fn new(ptr: *mut T) -> Out<T> {
        Out(ptr)
    }

    fn put(self, value: T) {
        // SAFETY: valid for a write, as `new`'s caller promised.
        unsafe { self.0.write(value) }
    }
}

fn ts(t: Timespec) -> BentoTimespec {
    BentoTimespec {
        sec: t.sec,
        nsec: t.nsec,
        _pad: 0,
    }
}

fn from_ts(t: BentoTimespec) -> Timespec {
    Timespec::new(t.sec, t.nsec.min(999_999_999))
}

fn attr_out(a: &FileAttr) -> BentoAttr {
    BentoAttr {
        ino: a.ino,
        size: a.size,
        blocks: a.blocks,
        generation: a.generation,
        atime: ts(a.atime),
        mtime: ts(a.mtime),
        ctime: ts(a.ctime),
        crtime: ts(a.crtime),
        mode: a.mode(),
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
    }
}

fn status(r: Result<()>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.negated(),
    }
}

/// Store a reply and return the status.
fn reply<T>(r: Result<T>, put: impl FnOnce(T)) -> c_int {
    match r {
        Ok(v) => {
            put(v);
            0
        }
        Err(e) => e.negated(),
    }
}

/// Store an entry reply and return the status.
fn entry(r: Result<Entry>, out: Out<BentoAttr>) -> c_int {
    reply(r, |e| out.put(attr_out(&e.attr)))
}

/// A byte count or a negative errno.
fn count(r: Result<usize>) -> i64 {
    match r {
        Ok(n) => n as i64,
        Err(e) => i64::from(e.negated()),
    }
}

/// Copy a variable-length reply with the xattr size protocol (size 0 asks for the length).
fn sized_reply(r: Result<Vec<u8>>, buf: &mut [u8]) -> c_int {
    match r {
        Ok(v) if buf.is_empty() => v.len() as c_int,
        Ok(v) => match buf.get_mut(..v.len()) {
            Some(dst) => {
                dst.copy_from_slice(&v);
                v.len() as c_int
            }
            None => Errno::ERANGE.negated(),
        },
        Err(e) => e.negated(),
    }
}

/// Box a new instance with a fallible allocation: the kernel must not abort on ENOMEM.
fn boxed<F>(fs: F) -> Result<*mut BentoFs> {
    let layout = core::alloc::Layout::new::<F>();
    if layout.size() == 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc::alloc(layout) } as *mut F;
    if p.is_null() {
        return Err(Errno::ENOMEM);
    }
    // SAFETY: p is freshly allocated for an F and properly aligned.
    unsafe { p.write(fs) };
    Ok(p as *mut BentoFs)
}

/// Feeds entries to bentofs's filldir callback.
struct CFiller {
    fill: Filldir,
    ctx: *mut c_void,
}

impl CFiller {
    /// # Safety
    /// `fill` and `ctx` must be the callback and context bentofs passed to this readdir call.
    unsafe fn new(fill: Filldir, ctx: *mut c_void) -> CFiller {
        CFiller { fill, ctx }
    }
}

impl DirFiller for CFiller {
    fn add(&mut self, ino: Ino, offset: u64, kind: FileType, name: &[u8]) -> bool {
        // SAFETY: fill and ctx are this readdir call's (see `new`); name is valid for its
        // length during the call.
        unsafe {
            (self.fill)(
                self.ctx,
                name.as_ptr(),
                name.len() as u32,
                ino,
                offset,
                u32::from(kind.dirent_type()),
            ) != 0
        }
    }
}

/// Define the trampoline of one operation:
///
/// ```text
/// trampoline!(name(fs, req, arg: CType, ...) -> CRet {
///     let view = unsafe_conversion(arg, ...);   // zero or more, each `unsafe` alone
///     ...
/// } => safe body using fs, req and the views);
/// ```
///
/// `fs` becomes `&F` and `req` a [`Request`] (`fs` alone for the calls without a request). Each
/// `let` is evaluated in its own `unsafe` block, under the contract every operation has (see
/// `bento_abi.h`): bentofs calls it on a live instance (after mount or import, before destroy or
/// drop) with every pointer valid for the duration of the call, buffers for their stated length.
macro_rules! trampoline {
    ($(#[$m:meta])* $name:ident($fs:ident, $req:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty {
        $(let $view:pat = $conv:expr;)*
    } => $body:expr) => {
        $(#[$m])*
        unsafe extern "C" fn $name<F: FileSystem>(
            $fs: *mut BentoFs,
            $req: *const BentoReq,
            $($arg: $ty),*
        ) -> $ret {
            // SAFETY: a live instance and a valid request, per the operation contract above.
            let ($fs, $req) = unsafe { (fs_ref::<F>($fs), request($req)) };
            $(
                // SAFETY: the argument is valid for the call, per the operation contract above.
                let $view = unsafe { $conv };
            )*
            $body
        }
    };
    ($(#[$m:meta])* $name:ident($fs:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty
        => $body:expr) => {
        $(#[$m])*
        unsafe extern "C" fn $name<F: FileSystem>($fs: *mut BentoFs, $($arg: $ty),*) -> $ret {
            // SAFETY: a live instance, per the operation contract above.
            let $fs = unsafe { fs_ref::<F>($fs) };
            $body
        }
    };
}

// ---- life cycle -------------------------------------------------------------------------------

unsafe extern "C" fn mount<F: Mount<KernelBlockDevice>>(
    bdev: *mut c_void,
    nr_blocks: u64,
    options: *const u8,
    options_len: u32,
    flags: u32,
    out: *mut *mut BentoFs,
) -> c_int {
    crate::host::install();
    // SAFETY: bentofs passes its options string, valid for options_len bytes.
    let opts = unsafe { bytes(options, u64::from(options_len)) };
    let Ok(opts) = core::str::from_utf8(opts) else {
        bento_api::error!("{}: mount options are not UTF-8", F::NAME);
        return -Errno::EINVAL.0;
    };
    let mut fs_options = String::new();
    if fs_options.try_reserve_exact(opts.len()).is_err() {
        return -Errno::ENOMEM.0;
    }
    #[allow(clippy::disallowed_methods)] // Room reserved: no allocation.
    fs_options.push_str(opts);
    let options = MountOptions {
        read_only: flags & BENTO_MOUNT_RDONLY != 0,
        silent: flags & BENTO_MOUNT_SILENT != 0,
        fs_options,
    };
    // SAFETY: bentofs holds the block device open for the whole mount.
    let dev = unsafe { KernelBlockDevice::new(bdev, nr_blocks) };
    match F::mount(dev, &options).and_then(boxed) {
        Ok(fs) => {
            // SAFETY: out is valid for a pointer write.
            unsafe { out.write(fs) };
            0
        }
        Err(e) => e.negated(),
    }
}

unsafe extern "C" fn import_state<F: Mount<KernelBlockDevice>>(
    bdev: *mut c_void,
    nr_blocks: u64,
    state: *const u8,
    len: u64,
    out: *mut *mut BentoFs,
) -> c_int {
    crate::host::install();
    let Ok(len) = u32::try_from(len) else {
        return -Errno::EINVAL.0;
    };
    // SAFETY: the state buffer is valid for len bytes during the call.
    let state = unsafe { bytes(state, u64::from(len)) };
    // SAFETY: as in mount.
    let dev = unsafe { KernelBlockDevice::new(bdev, nr_blocks) };
    match F::resume(dev, &MountOptions::default(), state).and_then(boxed) {
        Ok(fs) => {
            // SAFETY: out is valid for a pointer write.
            unsafe { out.write(fs) };
            0
        }
        Err(e) => e.negated(),
    }
}

unsafe extern "C" fn destroy<F: FileSystem>(fs: *mut BentoFs) -> c_int {
    // SAFETY: bentofs calls destroy once, after every other call returned; the Box is reclaimed.
    let fs = unsafe { alloc::boxed::Box::from_raw(fs as *mut F) };
    status(fs.destroy())
}

unsafe extern "C" fn drop_instance<F: FileSystem>(fs: *mut BentoFs) {
    // SAFETY: bentofs drops an instance once, after every call into it returned and its state
    // moved to another instance; the Box is reclaimed without any I/O.
    drop(unsafe { alloc::boxed::Box::from_raw(fs as *mut F) });
}

unsafe extern "C" fn export_state<F: FileSystem>(
    fs: *mut BentoFs,
    state: *mut *mut u8,
    len: *mut u64,
) -> c_int {
    // SAFETY: live instance.
    let v: Vec<u8> = match unsafe { fs_ref::<F>(fs) }.export_state() {
        Ok(v) => v,
        Err(e) => return e.negated(),
    };
    // SAFETY: a plain allocation; the caller frees it with bento_ks_free.
    let buf = unsafe { bento_ks_alloc(v.len().max(1) as u64, 1, 0) } as *mut u8;
    if buf.is_null() {
        return -Errno::ENOMEM.0;
    }
    // SAFETY: buf holds v.len() bytes; state and len are valid for writes.
    unsafe {
        core::ptr::copy_nonoverlapping(v.as_ptr(), buf, v.len());
        state.write(buf);
        len.write(v.len() as u64);
    }
    0
}

// ---- operations -------------------------------------------------------------------------------

trampoline!(background(fs) -> c_int => status(fs.background()));
trampoline!(sync_fs(fs) -> c_int => status(fs.sync_fs()));
trampoline!(reserve(fs, ino: u64, off: u64, len: u64) -> c_int
    => status(fs.reserve(ino, off, len)));
trampoline!(forget(fs, ino: u64, nlookup: u64) -> () => fs.forget(ino, nlookup));
trampoline!(shrink(fs, nr: u64) -> u64 => fs.shrink(nr).unwrap_or(BENTO_SHRINK_BUSY));
trampoline!(shutdown(fs, how: u32) -> c_int => match Shutdown::from_flag(how) {
    Some(how) => status(fs.shutdown(how)),
    None => -Errno::EINVAL.0,
});

trampoline!(lookup(
    fs, req, parent: u64, name: *const u8, namelen: u32, out: *mut BentoAttr,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let out = Out::new(out);
} => entry(fs.lookup(&req, parent, name), out));

trampoline!(getattr(fs, req, ino: u64, out: *mut BentoAttr) -> c_int {
    let out = Out::new(out);
} => reply(fs.getattr(&req, ino), |a| out.put(attr_out(&a))));

trampoline!(setattr(fs, req, ino: u64, set: *const BentoSetattr, out: *mut BentoAttr) -> c_int {
    let set = &*set;
    let out = Out::new(out);
} => reply(fs.setattr(&req, ino, &setattr_changes(set), None), |a| out.put(attr_out(&a))));

trampoline!(readlink(fs, req, ino: u64, buf: *mut u8, size: u32) -> c_int {
    let buf = bytes_mut(buf, u64::from(size));
} => match fs.readlink(&req, ino) {
    Ok(target) => {
        // A target longer than the buffer is cut, as readlink(2) does.
        let n = target.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), target.get(..n)) {
            dst.copy_from_slice(src);
        }
        n as c_int
    }
    Err(e) => e.negated(),
});

trampoline!(#[allow(clippy::too_many_arguments)] mknod(
    fs, req, parent: u64, name: *const u8, namelen: u32, mode: u32, rdev: u32, out: *mut BentoAttr,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let out = Out::new(out);
} => entry(fs.mknod(&req, parent, name, mode, rdev), out));

trampoline!(mkdir(
    fs, req, parent: u64, name: *const u8, namelen: u32, mode: u32, out: *mut BentoAttr,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let out = Out::new(out);
} => entry(fs.mkdir(&req, parent, name, mode), out));

trampoline!(unlink(fs, req, parent: u64, name: *const u8, namelen: u32) -> c_int {
    let name = bytes(name, u64::from(namelen));
} => status(fs.unlink(&req, parent, name)));

trampoline!(rmdir(fs, req, parent: u64, name: *const u8, namelen: u32) -> c_int {
    let name = bytes(name, u64::from(namelen));
} => status(fs.rmdir(&req, parent, name)));

trampoline!(#[allow(clippy::too_many_arguments)] symlink(
    fs, req, parent: u64, name: *const u8, namelen: u32, target: *const u8, targetlen: u32,
    out: *mut BentoAttr,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let target = bytes(target, u64::from(targetlen));
    let out = Out::new(out);
} => entry(fs.symlink(&req, parent, name, target), out));

trampoline!(#[allow(clippy::too_many_arguments)] rename(
    fs, req, parent: u64, name: *const u8, namelen: u32, newparent: u64, newname: *const u8,
    newnamelen: u32, flags: u32,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let newname = bytes(newname, u64::from(newnamelen));
} => status(fs.rename(&req, parent, name, newparent, newname, RenameFlags(flags))));

trampoline!(#[allow(clippy::too_many_arguments)] link(
    fs, req, ino: u64, newparent: u64, newname: *const u8, newnamelen: u32, out: *mut BentoAttr,
) -> c_int {
    let newname = bytes(newname, u64::from(newnamelen));
    let out = Out::new(out);
} => entry(fs.link(&req, ino, newparent, newname), out));

trampoline!(open(fs, req, ino: u64, flags: u32, fh: *mut u64) -> c_int {
    let fh = Out::new(fh);
} => reply(fs.open(&req, ino, flags as i32), |o| fh.put(o.fh)));

trampoline!(release(fs, req, ino: u64, fh: u64, flags: u32) -> c_int {
} => status(fs.release(&req, ino, fh, flags as i32)));

trampoline!(#[allow(clippy::too_many_arguments)] read(
    fs, req, ino: u64, fh: u64, off: u64, buf: *mut c_void, len: u64,
) -> i64 {
    // bentofs passes folio memory it owns for the call.
    let buf = bytes_mut(buf as *mut u8, len);
} => count(fs.read(&req, ino, fh, off, buf)));

trampoline!(#[allow(clippy::too_many_arguments)] write(
    fs, req, ino: u64, fh: u64, off: u64, buf: *const c_void, len: u64,
) -> i64 {
    let data = bytes(buf as *const u8, len);
} => count(fs.write(&req, ino, fh, off, data)));

trampoline!(fsync(fs, req, ino: u64, fh: u64, datasync: u32) -> c_int {
} => status(fs.fsync(&req, ino, fh, datasync != 0)));

trampoline!(opendir(fs, req, ino: u64, flags: u32, fh: *mut u64) -> c_int {
    let fh = Out::new(fh);
} => reply(fs.opendir(&req, ino, flags as i32), |o| fh.put(o.fh)));

trampoline!(#[allow(clippy::too_many_arguments)] readdir(
    fs, req, ino: u64, fh: u64, off: u64, fill: Filldir, ctx: *mut c_void,
) -> c_int {
    let mut filler = CFiller::new(fill, ctx);
} => status(fs.readdir(&req, ino, fh, off, &mut filler)));

trampoline!(releasedir(fs, req, ino: u64, fh: u64) -> c_int {
} => status(fs.releasedir(&req, ino, fh)));

trampoline!(fsyncdir(fs, req, ino: u64, fh: u64, datasync: u32) -> c_int {
} => status(fs.fsyncdir(&req, ino, fh, datasync != 0)));

trampoline!(statfs(fs, req, out: *mut BentoStatfs) -> c_int {
    let out = Out::new(out);
} => reply(fs.statfs(&req, bento_api::fs::ROOT_INO), |s| {
    out.put(BentoStatfs {
        blocks: s.blocks,
        bfree: s.bfree,
        bavail: s.bavail,
        files: s.files,
        ffree: s.ffree,
        bsize: s.bsize,
        namelen: s.namelen,
        frsize: s.frsize,
        _pad: 0,
    })
}));

trampoline!(#[allow(clippy::too_many_arguments)] setxattr(
    fs, req, ino: u64, name: *const u8, namelen: u32, value: *const c_void, size: u32, flags: u32,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let value = bytes(value as *const u8, u64::from(size));
} => status(fs.setxattr(&req, ino, name, value, flags as i32)));

trampoline!(#[allow(clippy::too_many_arguments)] getxattr(
    fs, req, ino: u64, name: *const u8, namelen: u32, value: *mut c_void, size: u32,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let value = bytes_mut(value as *mut u8, u64::from(size));
} => sized_reply(fs.getxattr(&req, ino, name), value));

trampoline!(listxattr(fs, req, ino: u64, list: *mut u8, size: u32) -> c_int {
    let list = bytes_mut(list, u64::from(size));
} => sized_reply(fs.listxattr(&req, ino), list));

trampoline!(removexattr(fs, req, ino: u64, name: *const u8, namelen: u32) -> c_int {
    let name = bytes(name, u64::from(namelen));
} => status(fs.removexattr(&req, ino, name)));

trampoline!(#[allow(clippy::too_many_arguments)] create(
    fs, req, parent: u64, name: *const u8, namelen: u32, mode: u32, flags: u32,
    out: *mut BentoAttr, fh: *mut u64,
) -> c_int {
    let name = bytes(name, u64::from(namelen));
    let out = Out::new(out);
    let fh = Out::new(fh);
} => reply(fs.create(&req, parent, name, mode, flags as i32), |(e, o)| {
    out.put(attr_out(&e.attr));
    fh.put(o.fh);
}));

trampoline!(#[allow(clippy::too_many_arguments)] fallocate(
    fs, req, ino: u64, fh: u64, off: u64, len: u64, mode: u32,
) -> c_int {
} => status(fs.fallocate(&req, ino, fh, off, len, mode as i32)));

/// The changes a `bento_setattr` asks for.
fn setattr_changes(s: &BentoSetattr) -> SetAttr {
    let v = s.valid;
    let time = |now: u32, given: u32, t: BentoTimespec| {
        if v & now != 0 {
            Some(TimeOrNow::Now)
        } else if v & given != 0 {
            Some(TimeOrNow::Time(from_ts(t)))
        } else {
            None
        }
    };
    SetAttr {
        mode: (v & BENTO_SET_MODE != 0).then_some(s.mode),
        uid: (v & BENTO_SET_UID != 0).then_some(s.uid),
        gid: (v & BENTO_SET_GID != 0).then_some(s.gid),
        size: (v & BENTO_SET_SIZE != 0).then_some(s.size),
        atime: time(BENTO_SET_ATIME_NOW, BENTO_SET_ATIME, s.atime),
        mtime: time(BENTO_SET_MTIME_NOW, BENTO_SET_MTIME, s.mtime),
        ctime: (v & BENTO_SET_CTIME != 0).then(|| from_ts(s.ctime)),
        kill_suid: v & BENTO_SET_KILL_SUID != 0,
    }
}
