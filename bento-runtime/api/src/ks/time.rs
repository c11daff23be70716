//! Wall-clock time.

use crate::fs::Timespec;

/// The current time (CLOCK_REALTIME).
#[cfg(feature = "std")]
pub fn now() -> Timespec {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timespec::new(d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            if d.subsec_nanos() == 0 {
                Timespec::new(-(d.as_secs() as i64), 0)
            } else {
                Timespec::new(-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

/// The current time from the installed backend; without one (a bare `no_std` build), time stands
/// still at the epoch.
#[cfg(not(feature = "std"))]
pub fn now() -> Timespec {
    match super::host::get() {
        Some(h) => h.now(),
        None => Timespec::new(0, 0),
    }
}
