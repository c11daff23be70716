//! `#[repr(C)]` mirrors of `bento_abi.h` and the `bento_ks_*` helpers bentofs exports.
//! Field order and types must match the header exactly; the sizes and offsets are asserted
//! below, and by the header itself.

use core::ffi::{c_int, c_void};

pub const BENTO_ABI_VERSION: u32 = 1;
/// `shrink`: the instance is busy (bento_abi.h).
pub const BENTO_SHRINK_BUSY: u64 = u64::MAX;

/// Opaque file-system instance.
#[repr(C)]
pub struct BentoFs {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BentoReq {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BentoTimespec {
    pub sec: i64,
    pub nsec: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BentoAttr {
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub generation: u64,
    pub atime: BentoTimespec,
    pub mtime: BentoTimespec,
    pub ctime: BentoTimespec,
    pub crtime: BentoTimespec,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub blksize: u32,
}

pub const BENTO_SET_MODE: u32 = 1 << 0;
pub const BENTO_SET_UID: u32 = 1 << 1;
pub const BENTO_SET_GID: u32 = 1 << 2;
pub const BENTO_SET_SIZE: u32 = 1 << 3;
pub const BENTO_SET_ATIME: u32 = 1 << 4;
pub const BENTO_SET_ATIME_NOW: u32 = 1 << 5;
pub const BENTO_SET_MTIME: u32 = 1 << 6;
pub const BENTO_SET_MTIME_NOW: u32 = 1 << 7;
pub const BENTO_SET_CTIME: u32 = 1 << 8;
pub const BENTO_SET_KILL_SUID: u32 = 1 << 9;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BentoSetattr {
    pub valid: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: BentoTimespec,
    pub mtime: BentoTimespec,
    pub ctime: BentoTimespec,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct BentoStatfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
    pub _pad: u32,
}

pub type Filldir = unsafe extern "C" fn(*mut c_void, *const u8, u32, u64, u64, u32) -> c_int;

pub const BENTO_MOUNT_RDONLY: u32 = 1 << 0;
pub const BENTO_MOUNT_SILENT: u32 = 1 << 1;

type Fs = *mut BentoFs;
type Req = *const BentoReq;

/// `struct bento_ops`.
#[repr(C)]
pub struct BentoOps {
    pub abi_version: u32,
    pub ops_size: u32,
    pub mount:
        Option<unsafe extern "C" fn(*mut c_void, u64, *const u8, u32, u32, *mut Fs) -> c_int>,
    pub destroy: Option<unsafe extern "C" fn(Fs) -> c_int>,
    pub sync_fs: Option<unsafe extern "C" fn(Fs) -> c_int>,
    pub export_state: Option<unsafe extern "C" fn(Fs, *mut *mut u8, *mut u64) -> c_int>,
    pub import_state:
        Option<unsafe extern "C" fn(*mut c_void, u64, *const u8, u64, *mut Fs) -> c_int>,
    pub lookup: Option<unsafe extern "C" fn(Fs, Req, u64, *const u8, u32, *mut BentoAttr) -> c_int>,
    pub forget: Option<unsafe extern "C" fn(Fs, u64, u64)>,
    pub getattr: Option<unsafe extern "C" fn(Fs, Req, u64, *mut BentoAttr) -> c_int>,
    pub setattr:
        Option<unsafe extern "C" fn(Fs, Req, u64, *const BentoSetattr, *mut BentoAttr) -> c_int>,
    pub readlink: Option<unsafe extern "C" fn(Fs, Req, u64, *mut u8, u32) -> c_int>,
    pub mknod: Option<
        unsafe extern "C" fn(Fs, Req, u64, *const u8, u32, u32, u32, *mut BentoAttr) -> c_int,
    >,
    pub mkdir:
        Option<unsafe extern "C" fn(Fs, Req, u64, *const u8, u32, u32, *mut BentoAttr) -> c_int>,
    pub unlink: Option<unsafe extern "C" fn(Fs, Req, u64, *const u8, u32) -> c_int>,
    pub rmdir: Option<unsafe extern "C" fn(Fs, Req, u64, *const u8, u32) -> c_int>,
    pub symlink: Option<
        unsafe extern "C" fn(Fs, Req, u64, *const u8, u32, *const u8, u32, *mut BentoAttr) -> c_int,
    >,
    pub rename: Option<
        unsafe extern "C" fn(Fs, Req, u64, *const u8, u32, u64, *const u8, u32, u32) -> c_int,
    >,
    pub link:
        Option<unsafe extern "C" fn(Fs, Req, u64, u64, *const u8, u32, *mut BentoAttr) -> c_int>,
    pub open: Option<unsafe extern "C" fn(Fs, Req, u64, u32, *mut u64) -> c_int>,
    pub release: Option<unsafe extern "C" fn(Fs, Req, u64, u64, u32) -> c_int>,
    pub read: Option<unsafe extern "C" fn(Fs, Req, u64, u64, u64, *mut c_void, u64) -> i64>,
    pub write: Option<unsafe extern "C" fn(Fs, Req, u64, u64, u64, *const c_void, u64) -> i64>,
    pub fsync: Option<unsafe extern "C" fn(Fs, Req, u64, u64, u32) -> c_int>,
    pub opendir: Option<unsafe extern "C" fn(Fs, Req, u64, u32, *mut u64) -> c_int>,
    pub readdir:
        Option<unsafe extern "C" fn(Fs, Req, u64, u64, u64, Filldir, *mut c_void) -> c_int>,
    pub releasedir: Option<unsafe extern "C" fn(Fs, Req, u64, u64) -> c_int>,
    pub fsyncdir: Option<unsafe extern "C" fn(Fs, Req, u64, u64, u32) -> c_int>,
    pub statfs: Option<unsafe extern "C" fn(Fs, Req, *mut BentoStatfs) -> c_int>,
    pub setxattr: Option<
        unsafe extern "C" fn(Fs, Req, u64, *const u8, u32, *const c_void, u32, u32) -> c_int,
    >,
    pub getxattr:
        Option<unsafe extern "C" fn(Fs, Req, u64, *const u8, u32, *mut c_void, u32) -> c_int>,
    pub listxattr: Option<unsafe extern "C" fn(Fs, Req, u64, *mut u8, u32) -> c_int>,
    pub removexattr: Option<unsafe extern "C" fn(Fs, Req, u64, *const u8, u32) -> c_int>,
    pub create: Option<
        unsafe extern "C" fn(
            Fs,
            Req,
            u64,
            *const u8,
            u32,
            u32,
            u32,
            *mut BentoAttr,
            *mut u64,
        ) -> c_int,
    >,
    pub fallocate: Option<unsafe extern "C" fn(Fs, Req, u64, u64, u64, u64, u32) -> c_int>,
    pub background: Option<unsafe extern "C" fn(Fs) -> c_int>,
    pub reserve: Option<unsafe extern "C" fn(Fs, u64, u64, u64) -> c_int>,
    pub drop: Option<unsafe extern "C" fn(Fs)>,
    /// Added in 0.4.0: bentofs reads it only when `ops_size` covers it.
    pub shrink: Option<unsafe extern "C" fn(Fs, u64) -> u64>,
    /// Added after 0.4.1, optional as `shrink`: `FS_IOC_GOINGDOWN` (`how`: its flag).
    pub shutdown: Option<unsafe extern "C" fn(Fs, u32) -> c_int>,
}

pub const BENTO_IO_PREFLUSH: u32 = 1 << 0;
pub const BENTO_IO_FUA: u32 = 1 << 1;

// Defined by the file-system module's own C stub (`bento/bento_fault.h`), not by bentofs.
unsafe extern "C" {
    /// Tests: whether to fail this allocation (allocation-failure injection).
    pub fn bento_fs_fail_alloc() -> bool;
}

unsafe extern "C" {
    pub fn bento_ks_alloc(size: u64, align: u64, zeroed: u32) -> *mut c_void;
    pub fn bento_ks_free(ptr: *mut c_void);
    pub fn bento_ks_mutex_new() -> *mut c_void;
    pub fn bento_ks_mutex_lock(m: *mut c_void);
    pub fn bento_ks_mutex_unlock(m: *mut c_void);
    pub fn bento_ks_mutex_free(m: *mut c_void);
    pub fn bento_ks_rwsem_new() -> *mut c_void;
    pub fn bento_ks_rwsem_read(s: *mut c_void);
    pub fn bento_ks_rwsem_read_unlock(s: *mut c_void);
    pub fn bento_ks_rwsem_write(s: *mut c_void);
    pub fn bento_ks_rwsem_write_unlock(s: *mut c_void);
    pub fn bento_ks_rwsem_free(s: *mut c_void);
    pub fn bento_ks_bdev_read(bdev: *mut c_void, block: u64, buf: *mut c_void, len: u64) -> c_int;
    pub fn bento_ks_bdev_write(
        bdev: *mut c_void,
        block: u64,
        buf: *const c_void,
        len: u64,
        flags: u32,
    ) -> c_int;
    pub fn bento_ks_bdev_flush(bdev: *mut c_void) -> c_int;
    pub fn bento_ks_bdev_discard(bdev: *mut c_void, block: u64, count: u64) -> c_int;
    pub fn bento_ks_time_now(ts: *mut BentoTimespec);
    pub fn bento_ks_log(level: u32, msg: *const u8, len: u64);
    /// Does not return (it gives up the current call, or BUG()s), but objtool cannot know that
    /// of a Rust caller: see `kernel::panic`.
    pub fn bento_ks_panic(msg: *const u8, len: u64);
}

// The layout of `bento_abi.h`, pinned: the header asserts the same sizes and offsets with
// `_Static_assert`, so a change on either side fails the build instead of corrupting memory.
macro_rules! pin_layout {
    ($ty:ty, $size:literal, $align:literal; $($field:ident @ $off:literal),* $(,)?) => {
        const _: () = assert!(core::mem::size_of::<$ty>() == $size);
        const _: () = assert!(core::mem::align_of::<$ty>() == $align);
        $(const _: () = assert!(core::mem::offset_of!($ty, $field) == $off);)*
    };
}

pin_layout!(BentoReq, 16, 4;
    uid @ 0,
    gid @ 4,
    pid @ 8,
    _pad @ 12,
);
pin_layout!(BentoTimespec, 16, 8;
    sec @ 0,
    nsec @ 8,
    _pad @ 12,
);
pin_layout!(BentoAttr, 120, 8;
    ino @ 0,
    size @ 8,
    blocks @ 16,
    generation @ 24,
    atime @ 32,
    mtime @ 48,
    ctime @ 64,
    crtime @ 80,
    mode @ 96,
    nlink @ 100,
    uid @ 104,
    gid @ 108,
    rdev @ 112,
    blksize @ 116,
);
pin_layout!(BentoSetattr, 72, 8;
    valid @ 0,
    mode @ 4,
    uid @ 8,
    gid @ 12,
    size @ 16,
    atime @ 24,
    mtime @ 40,
    ctime @ 56,
);
pin_layout!(BentoStatfs, 56, 8;
    blocks @ 0,
    bfree @ 8,
    bavail @ 16,
    files @ 24,
    ffree @ 32,
    bsize @ 40,
    namelen @ 44,
    frsize @ 48,
    _pad @ 52,
);
pin_layout!(BentoOps, 312, 8;
    abi_version @ 0,
    ops_size @ 4,
    mount @ 8,
    destroy @ 16,
    sync_fs @ 24,
    export_state @ 32,
    import_state @ 40,
    lookup @ 48,
    forget @ 56,
    getattr @ 64,
    setattr @ 72,
    readlink @ 80,
    mknod @ 88,
    mkdir @ 96,
    unlink @ 104,
    rmdir @ 112,
    symlink @ 120,
    rename @ 128,
    link @ 136,
    open @ 144,
    release @ 152,
    read @ 160,
    write @ 168,
    fsync @ 176,
    opendir @ 184,
    readdir @ 192,
    releasedir @ 200,
    fsyncdir @ 208,
    statfs @ 216,
    setxattr @ 224,
    getxattr @ 232,
    listxattr @ 240,
    removexattr @ 248,
    create @ 256,
    fallocate @ 264,
    background @ 272,
    reserve @ 280,
    drop @ 288,
    shrink @ 296,
    shutdown @ 304,
);
