//! libBentoFS in the kernel: `extern "C"` trampolines from `struct bento_ops` to the safe
//! [`FileSystem`] trait.
//!
//! The instance pointer bentofs holds is a `Box<F>` leaked at mount and reclaimed at destroy.
//! Calls arrive concurrently, so they only ever make shared references to it (`&F`); the file
//! system synchronizes internally. Every other pointer is valid for the duration of the call, as
//! the header documents, and is turned into a reference or slice exactly once, here.

use core::ffi::{c_int, c_void};

use alloc::string::String;
use alloc::vec::Vec;

use crate::KernelBlockDevice;
use crate::ffi::*;
use bento_api::errno::{Errno, Result};
use bento_api::fs::{
    DirFiller, Entry, FileAttr, FileSystem, FileType, Ino, Mount, MountOptions, RenameFlags,
    Request, SetAttr, TimeOrNow, Timespec,
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
/// `ptr` must be valid for reads of `len` bytes (or `len` is 0).
unsafe fn bytes<'a>(ptr: *const u8, len: u32) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: per the contract above.
    unsafe { core::slice::from_raw_parts(ptr, len as usize) }
}

/// # Safety
/// `ptr` must be valid for writes of `len` bytes and not aliased during the call.
unsafe fn bytes_mut<'a>(ptr: *mut u8, len: u64) -> &'a mut [u8] {
    if len == 0 || ptr.is_null() {
        return &mut [];
    }
    // SAFETY: per the contract above.
    unsafe { core::slice::from_raw_parts_mut(ptr, len as usize) }
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

/// Store an attribute reply.
///
/// # Safety
/// `out` must be valid for a write of `BentoAttr`.
unsafe fn put_attr(out: *mut BentoAttr, a: &FileAttr) {
    // SAFETY: per the contract above.
    unsafe { out.write(attr_out(a)) }
}

fn status(r: Result<()>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => -e.0,
    }
}

/// Store an entry reply and return the status.
///
/// # Safety
/// `out` must be valid for a write of `BentoAttr`.
unsafe fn entry(r: Result<Entry>, out: *mut BentoAttr) -> c_int {
    match r {
        Ok(e) => {
            // SAFETY: per the contract above.
            unsafe { put_attr(out, &e.attr) };
            0
        }
        Err(e) => -e.0,
    }
}

/// Box a new instance with a fallible allocation: the kernel must not abort on ENOMEM.
fn boxed<F>(fs: F) -> Result<*mut BentoFs> {
    let layout = core::alloc::Layout::new::<F>();
    if layout.size() == 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { ::alloc::alloc::alloc(layout) } as *mut F;
    if p.is_null() {
        return Err(Errno::ENOMEM);
    }
    // SAFETY: p is freshly allocated for an F and properly aligned.
    unsafe { p.write(fs) };
    Ok(p as *mut BentoFs)
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
    let opts = unsafe { bytes(options, options_len) };
    let Ok(opts) = core::str::from_utf8(opts) else {
        bento_api::error!("{}: mount options are not UTF-8", F::NAME);
        return -Errno::EINVAL.0;
    };
    let options = MountOptions {
        read_only: flags & BENTO_MOUNT_RDONLY != 0,
        fs_options: String::from(opts),
    };
    // SAFETY: bentofs holds the block device open for the whole mount.
    let dev = unsafe { KernelBlockDevice::new(bdev, nr_blocks) };
    match F::mount(dev, &options).and_then(boxed) {
        Ok(fs) => {
            // SAFETY: out is valid for a pointer write.
            unsafe { out.write(fs) };
            0
        }
        Err(e) => -e.0,
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
    let state = unsafe { bytes(state, len) };
    // SAFETY: as in mount.
    let dev = unsafe { KernelBlockDevice::new(bdev, nr_blocks) };
    match F::resume(dev, &MountOptions::default(), state).and_then(boxed) {
        Ok(fs) => {
            // SAFETY: out is valid for a pointer write.
            unsafe { out.write(fs) };
            0
        }
        Err(e) => -e.0,
    }
}

unsafe extern "C" fn destroy<F: FileSystem>(fs: *mut BentoFs) -> c_int {
    // SAFETY: bentofs calls destroy once, after every other call returned; the Box is reclaimed.
    let fs = unsafe { ::alloc::boxed::Box::from_raw(fs as *mut F) };
    status(fs.destroy())
}

unsafe extern "C" fn background<F: FileSystem>(fs: *mut BentoFs) -> c_int {
    // SAFETY: live instance.
    status(unsafe { fs_ref::<F>(fs) }.background())
}

unsafe extern "C" fn reserve<F: FileSystem>(
    fs: *mut BentoFs,
    ino: u64,
    off: u64,
    len: u64,
) -> c_int {
    // SAFETY: live instance.
    status(unsafe { fs_ref::<F>(fs) }.reserve(ino, off, len))
}

unsafe extern "C" fn drop_instance<F: FileSystem>(fs: *mut BentoFs) {
    // SAFETY: bentofs drops an instance once, after every call into it returned and its state
    // moved to another instance; the Box is reclaimed without any I/O.
    drop(unsafe { ::alloc::boxed::Box::from_raw(fs as *mut F) });
}

unsafe extern "C" fn sync_fs<F: FileSystem>(fs: *mut BentoFs) -> c_int {
    // SAFETY: live instance.
    status(unsafe { fs_ref::<F>(fs) }.sync_fs())
}

unsafe extern "C" fn export_state<F: FileSystem>(
    fs: *mut BentoFs,
    state: *mut *mut u8,
    len: *mut u64,
) -> c_int {
    // SAFETY: live instance.
    let v: Vec<u8> = match unsafe { fs_ref::<F>(fs) }.export_state() {
        Ok(v) => v,
        Err(e) => return -e.0,
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

unsafe extern "C" fn lookup<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
    out: *mut BentoAttr,
) -> c_int {
    // SAFETY: arguments valid per the ABI for the duration of the call.
    unsafe {
        entry(
            fs_ref::<F>(fs).lookup(&request(req), parent, bytes(name, namelen)),
            out,
        )
    }
}

unsafe extern "C" fn forget<F: FileSystem>(fs: *mut BentoFs, ino: u64, nlookup: u64) {
    // SAFETY: live instance.
    unsafe { fs_ref::<F>(fs) }.forget(ino, nlookup)
}

unsafe extern "C" fn getattr<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    out: *mut BentoAttr,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    match unsafe { fs_ref::<F>(fs).getattr(&request(req), ino) } {
        Ok(a) => {
            // SAFETY: out valid for a write.
            unsafe { put_attr(out, &a) };
            0
        }
        Err(e) => -e.0,
    }
}

unsafe extern "C" fn setattr<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    set: *const BentoSetattr,
    out: *mut BentoAttr,
) -> c_int {
    // SAFETY: set valid for reads per the ABI.
    let s = unsafe { &*set };
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
    let attr = SetAttr {
        mode: (v & BENTO_SET_MODE != 0).then_some(s.mode),
        uid: (v & BENTO_SET_UID != 0).then_some(s.uid),
        gid: (v & BENTO_SET_GID != 0).then_some(s.gid),
        size: (v & BENTO_SET_SIZE != 0).then_some(s.size),
        atime: time(BENTO_SET_ATIME_NOW, BENTO_SET_ATIME, s.atime),
        mtime: time(BENTO_SET_MTIME_NOW, BENTO_SET_MTIME, s.mtime),
        ctime: (v & BENTO_SET_CTIME != 0).then(|| from_ts(s.ctime)),
        kill_suid: v & BENTO_SET_KILL_SUID != 0,
    };
    // SAFETY: arguments valid per the ABI.
    match unsafe { fs_ref::<F>(fs).setattr(&request(req), ino, &attr, None) } {
        Ok(a) => {
            // SAFETY: out valid for a write.
            unsafe { put_attr(out, &a) };
            0
        }
        Err(e) => -e.0,
    }
}

unsafe extern "C" fn readlink<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    buf: *mut u8,
    size: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    match unsafe { fs_ref::<F>(fs).readlink(&request(req), ino) } {
        Ok(target) => {
            let n = target.len().min(size as usize);
            // SAFETY: buf is valid for size bytes.
            unsafe { bytes_mut(buf, u64::from(size))[..n].copy_from_slice(&target[..n]) };
            n as c_int
        }
        Err(e) => -e.0,
    }
}

unsafe extern "C" fn mknod<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
    mode: u32,
    rdev: u32,
    out: *mut BentoAttr,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    unsafe {
        entry(
            fs_ref::<F>(fs).mknod(&request(req), parent, bytes(name, namelen), mode, rdev),
            out,
        )
    }
}

unsafe extern "C" fn mkdir<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
    mode: u32,
    out: *mut BentoAttr,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    unsafe {
        entry(
            fs_ref::<F>(fs).mkdir(&request(req), parent, bytes(name, namelen), mode),
            out,
        )
    }
}

unsafe extern "C" fn unlink<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).unlink(&request(req), parent, bytes(name, namelen)) })
}

unsafe extern "C" fn rmdir<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).rmdir(&request(req), parent, bytes(name, namelen)) })
}

unsafe extern "C" fn symlink<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
    target: *const u8,
    targetlen: u32,
    out: *mut BentoAttr,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    unsafe {
        entry(
            fs_ref::<F>(fs).symlink(
                &request(req),
                parent,
                bytes(name, namelen),
                bytes(target, targetlen),
            ),
            out,
        )
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn rename<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
    newparent: u64,
    newname: *const u8,
    newnamelen: u32,
    flags: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe {
        fs_ref::<F>(fs).rename(
            &request(req),
            parent,
            bytes(name, namelen),
            newparent,
            bytes(newname, newnamelen),
            RenameFlags(flags),
        )
    })
}

unsafe extern "C" fn link<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    newparent: u64,
    newname: *const u8,
    newnamelen: u32,
    out: *mut BentoAttr,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    unsafe {
        entry(
            fs_ref::<F>(fs).link(&request(req), ino, newparent, bytes(newname, newnamelen)),
            out,
        )
    }
}

unsafe extern "C" fn open<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    flags: u32,
    fh: *mut u64,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    match unsafe { fs_ref::<F>(fs).open(&request(req), ino, flags as i32) } {
        Ok(o) => {
            // SAFETY: fh valid for a write.
            unsafe { fh.write(o.fh) };
            0
        }
        Err(e) => -e.0,
    }
}

unsafe extern "C" fn release<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
    flags: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).release(&request(req), ino, fh, flags as i32) })
}

unsafe extern "C" fn read<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
    off: u64,
    buf: *mut c_void,
    len: u64,
) -> i64 {
    // SAFETY: bentofs passes folio memory it owns for the call, valid for len bytes.
    match unsafe {
        fs_ref::<F>(fs).read(&request(req), ino, fh, off, bytes_mut(buf as *mut u8, len))
    } {
        Ok(n) => n as i64,
        Err(e) => -i64::from(e.0),
    }
}

unsafe extern "C" fn write<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
    off: u64,
    buf: *const c_void,
    len: u64,
) -> i64 {
    let data: &[u8] = if len == 0 || buf.is_null() {
        &[]
    } else {
        // SAFETY: bentofs passes folio memory valid for len bytes during the call.
        unsafe { core::slice::from_raw_parts(buf as *const u8, len as usize) }
    };
    // SAFETY: arguments valid per the ABI.
    match unsafe { fs_ref::<F>(fs).write(&request(req), ino, fh, off, data) } {
        Ok(n) => n as i64,
        Err(e) => -i64::from(e.0),
    }
}

unsafe extern "C" fn fsync<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
    datasync: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).fsync(&request(req), ino, fh, datasync != 0) })
}

unsafe extern "C" fn opendir<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    flags: u32,
    fh: *mut u64,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    match unsafe { fs_ref::<F>(fs).opendir(&request(req), ino, flags as i32) } {
        Ok(o) => {
            // SAFETY: fh valid for a write.
            unsafe { fh.write(o.fh) };
            0
        }
        Err(e) => -e.0,
    }
}

/// Feeds entries to bentofs's filldir callback.
struct CFiller {
    fill: Filldir,
    ctx: *mut c_void,
}

impl DirFiller for CFiller {
    fn add(&mut self, ino: Ino, offset: u64, kind: FileType, name: &[u8]) -> bool {
        // SAFETY: fill and ctx come from bentofs for this readdir call; name is valid for its
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

unsafe extern "C" fn readdir<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
    off: u64,
    fill: Filldir,
    ctx: *mut c_void,
) -> c_int {
    let mut filler = CFiller { fill, ctx };
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).readdir(&request(req), ino, fh, off, &mut filler) })
}

unsafe extern "C" fn releasedir<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).releasedir(&request(req), ino, fh) })
}

unsafe extern "C" fn fsyncdir<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
    datasync: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).fsyncdir(&request(req), ino, fh, datasync != 0) })
}

unsafe extern "C" fn statfs<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    out: *mut BentoStatfs,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    match unsafe { fs_ref::<F>(fs).statfs(&request(req), bento_api::fs::ROOT_INO) } {
        Ok(s) => {
            let st = BentoStatfs {
                blocks: s.blocks,
                bfree: s.bfree,
                bavail: s.bavail,
                files: s.files,
                ffree: s.ffree,
                bsize: s.bsize,
                namelen: s.namelen,
                frsize: s.frsize,
                _pad: 0,
            };
            // SAFETY: out valid for a write.
            unsafe { out.write(st) };
            0
        }
        Err(e) => -e.0,
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn setxattr<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    name: *const u8,
    namelen: u32,
    value: *const c_void,
    size: u32,
    flags: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe {
        fs_ref::<F>(fs).setxattr(
            &request(req),
            ino,
            bytes(name, namelen),
            bytes(value as *const u8, size),
            flags as i32,
        )
    })
}

/// Copy a variable-length reply with the xattr size protocol.
///
/// # Safety
/// `buf` must be valid for writes of `size` bytes.
unsafe fn sized_reply(r: Result<Vec<u8>>, buf: *mut u8, size: u32) -> c_int {
    match r {
        Ok(v) if size == 0 => v.len() as c_int,
        Ok(v) if v.len() > size as usize => -Errno::ERANGE.0,
        Ok(v) => {
            // SAFETY: per the contract above.
            unsafe { bytes_mut(buf, u64::from(size))[..v.len()].copy_from_slice(&v) };
            v.len() as c_int
        }
        Err(e) => -e.0,
    }
}

unsafe extern "C" fn getxattr<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    name: *const u8,
    namelen: u32,
    value: *mut c_void,
    size: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    unsafe {
        sized_reply(
            fs_ref::<F>(fs).getxattr(&request(req), ino, bytes(name, namelen)),
            value as *mut u8,
            size,
        )
    }
}

unsafe extern "C" fn listxattr<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    list: *mut u8,
    size: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    unsafe { sized_reply(fs_ref::<F>(fs).listxattr(&request(req), ino), list, size) }
}

unsafe extern "C" fn removexattr<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    name: *const u8,
    namelen: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).removexattr(&request(req), ino, bytes(name, namelen)) })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn create<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    parent: u64,
    name: *const u8,
    namelen: u32,
    mode: u32,
    flags: u32,
    out: *mut BentoAttr,
    fh: *mut u64,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    match unsafe {
        fs_ref::<F>(fs).create(
            &request(req),
            parent,
            bytes(name, namelen),
            mode,
            flags as i32,
        )
    } {
        Ok((e, o)) => {
            // SAFETY: out and fh valid for writes.
            unsafe {
                put_attr(out, &e.attr);
                fh.write(o.fh);
            }
            0
        }
        Err(e) => -e.0,
    }
}

unsafe extern "C" fn fallocate<F: FileSystem>(
    fs: *mut BentoFs,
    req: *const BentoReq,
    ino: u64,
    fh: u64,
    off: u64,
    len: u64,
    mode: u32,
) -> c_int {
    // SAFETY: arguments valid per the ABI.
    status(unsafe { fs_ref::<F>(fs).fallocate(&request(req), ino, fh, off, len, mode as i32) })
}
