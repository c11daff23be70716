//! Errors. Whatever comes from the disk says which kind of problem it is: the volume is corrupt,
//! it is incompatible with this version, or the device failed. Everything else is a plain errno
//! for the caller (ENOENT, ENOSPC, ...).

use core::fmt;

use bento_runtime::Errno;

use crate::fs::now;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// On-disk data fails its checks: `what` names the structure, `block` where it was read.
    Corrupt { what: &'static str, block: u64 },
    /// The device holds no logfs at all (no signature in either superblock).
    NotLogfs,
    /// The volume needs something this version does not have.
    Incompatible(&'static str),
    /// The device failed.
    Io(Errno),
    /// An ordinary error for the caller.
    Errno(Errno),
}

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    pub fn corrupt(what: &'static str, block: u64) -> Error {
        Error::Corrupt { what, block }
    }

    pub fn errno(self) -> Errno {
        match self {
            Error::Corrupt { .. } => Errno::EFSCORRUPTED,
            // As ext4 and f2fs answer for a bad magic: "wrong fs type".
            Error::NotLogfs | Error::Incompatible(_) => Errno::EINVAL,
            Error::Io(e) => e,
            Error::Errno(e) => e,
        }
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Error {
        Error::Errno(e)
    }
}

impl From<Error> for Errno {
    fn from(e: Error) -> Errno {
        e.errno()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Corrupt { what, block } => write!(f, "corrupt {what} at block {block}"),
            Error::NotLogfs => write!(f, "not a logfs volume (no logfs superblock signature)"),
            Error::Incompatible(why) => write!(f, "incompatible volume: {why}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Errno(e) => write!(f, "{e}"),
        }
    }
}

/// An invariant of the in-memory state does not hold (say, a log position that was validated
/// when it was loaded is out of range): the call fails with EIO instead of panicking.
pub(crate) fn invariant() -> Error {
    Error::Errno(Errno::EIO)
}

/// Turn a device error into an [`Error::Io`].
pub(crate) fn io(e: Errno) -> Error {
    Error::Io(e)
}

/// Seconds between two log lines about corruption: a damaged directory that every `ls` walks
/// must not flood the log.
const CORRUPT_LOG_INTERVAL_SECS: i64 = 5;

/// Rate limit of a log line: true (and `last` updated) at most every few seconds.
pub(crate) fn may_log(last: &mut Option<i64>) -> bool {
    let t = now().sec;
    if last.is_none_or(|l| t.saturating_sub(l) >= CORRUPT_LOG_INTERVAL_SECS) {
        *last = Some(t);
        return true;
    }
    false
}

/// Errors about the volume itself are worth a log line; plain errnos are the caller's business.
/// Corruption is logged at most once per interval, naming the block; the runtime gives no
/// device name to log (TODO once it does).
pub(crate) fn report(e: Error, last_corrupt_log: &mut Option<i64>) -> Errno {
    match e {
        Error::Errno(_) => {}
        Error::Corrupt { .. } => {
            let t = now().sec;
            if last_corrupt_log.is_none_or(|l| t.saturating_sub(l) >= CORRUPT_LOG_INTERVAL_SECS) {
                *last_corrupt_log = Some(t);
                bento_runtime::error!("logfs: {e} (EUCLEAN; run fsck.logfs)");
            }
        }
        _ => bento_runtime::error!("logfs: {e}"),
    }
    e.errno()
}
