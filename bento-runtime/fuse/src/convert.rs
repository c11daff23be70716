//! Conversions between fuser's types and libBentoFS's.

use core::time::Duration;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{SystemTime, UNIX_EPOCH};

use fuser::{INodeNo, ReplyDirectory};

use bento_api::errno::Errno;
use bento_api::fs::{DirFiller, FileAttr, FileType, Ino, Request, TimeOrNow, Timespec};

pub(crate) fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

pub(crate) fn request(req: &fuser::Request) -> Request {
    Request {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

pub(crate) fn name(s: &OsStr) -> &[u8] {
    s.as_bytes()
}

pub(crate) fn fuse_kind(kind: FileType) -> fuser::FileType {
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

pub(crate) fn far_future() -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::new(i64::MAX as u64, 999_999_999))
        .unwrap_or(UNIX_EPOCH)
}

pub(crate) fn far_past() -> SystemTime {
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
pub(crate) fn setattr_timespec(t: SystemTime) -> Timespec {
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

pub(crate) fn setattr_time(t: fuser::TimeOrNow) -> TimeOrNow {
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
pub(crate) struct Filler<'a> {
    pub(crate) reply: &'a mut ReplyDirectory,
    pub(crate) added: usize,
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
