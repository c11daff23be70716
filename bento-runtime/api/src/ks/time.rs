//! Wall-clock time.

use crate::fs::Timespec;

/// The current time (CLOCK_REALTIME).
#[cfg(feature = "std")]
pub fn now() -> Timespec {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timespec::new(d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            // Before the epoch; a clock billions of years off saturates.
            let d = e.duration();
            let secs = i64::try_from(d.as_secs())
                .unwrap_or(i64::MAX)
                .saturating_neg();
            match d.subsec_nanos() {
                0 => Timespec::new(secs, 0),
                // subsec_nanos() < 10^9, so the difference is positive.
                n => Timespec::new(secs.saturating_sub(1), 1_000_000_000u32.saturating_sub(n)),
            }
        }
    }
}

/// The current time from the installed backend (in the kernel, the coarse realtime clock that
/// current_time() reads, so times the file system sets agree with those the VFS sets); without one (a bare `no_std` build), time stands
/// still at the epoch.
#[cfg(not(feature = "std"))]
pub fn now() -> Timespec {
    match super::host::get() {
        Some(h) => h.now(),
        None => Timespec::new(0, 0),
    }
}
