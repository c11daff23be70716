//! The services' backend without `std`: installed once, before the first mount, by the crate
//! that owns the platform (`bento-kernel` calls [`install`] from its mount entry points).
//!
//! This is how a `no_std`, `unsafe`-free API gets the kernel's sleeping locks, clock and log:
//! the implementations (and their `unsafe`) live in the kernel crate, which depends on this one,
//! never the other way round. Until a backend is installed, locks spin, the clock stands at the
//! epoch and log lines are dropped (a bare `no_std` build that never blocks).

use alloc::boxed::Box;
use core::fmt;

use super::log::Level;
use crate::Errno;
use crate::fs::Timespec;

/// Proof that the caller holds the lock it releases. Only this crate's guards make one, so an
/// implementation may trust it: a release without the matching acquire cannot be written in safe
/// code.
pub struct Held(());

impl Held {
    #[cfg(not(feature = "std"))]
    pub(crate) fn new() -> Held {
        Held(())
    }
}

/// A sleeping mutual-exclusion lock without data (the kernel's `struct mutex`).
pub trait RawMutex: Send + Sync {
    fn lock(&self);
    fn unlock(&self, held: Held);
}

/// A sleeping readers-writer lock without data (the kernel's `struct rw_semaphore`).
pub trait RawRwLock: Send + Sync {
    fn read(&self);
    fn read_unlock(&self, held: Held);
    fn write(&self);
    fn write_unlock(&self, held: Held);
}

/// The platform's services.
pub trait Host: Sync {
    fn new_mutex(&self) -> Result<Box<dyn RawMutex>, Errno>;
    fn new_rwlock(&self) -> Result<Box<dyn RawRwLock>, Errno>;
    /// The current time (CLOCK_REALTIME).
    fn now(&self) -> Timespec;
    /// Write one log line.
    fn log(&self, level: Level, args: fmt::Arguments<'_>);
}

static HOST: spin::Once<&'static dyn Host> = spin::Once::new();

/// Install the backend; the first call wins, later ones are no-ops.
pub fn install(host: &'static dyn Host) {
    HOST.call_once(|| host);
}

/// The installed backend, if any.
pub fn get() -> Option<&'static dyn Host> {
    HOST.get().copied()
}
