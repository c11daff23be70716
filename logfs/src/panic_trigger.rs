//! Test builds only (cargo feature `panic-trigger`, `logfs_panic.ko` of `make upgrade-modules`):
//! a way for the VM suite to make one mount panic, to check that the panic takes down that mount
//! and not the machine. `setfattr -n trusted.logfs.panic -v WHERE` on any file of the mount:
//!
//! * `now`: panics in that call, holding the volume lock;
//! * `background`: arms the mount's next background call (bentofs's work item) to panic;
//! * `export`: arms the mount's next `export_state` (a live upgrade) to panic.
//!
//! The armed mount is remembered by its volume's address, one at a time.

// Panicking on demand is what this module is for (the crate denies it everywhere else).
#![allow(clippy::panic)]

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use bento_runtime::Errno;

use crate::error::Result;
use crate::fs::Volume;

/// The attribute that triggers it.
pub const XATTR: &[u8] = b"trusted.logfs.panic";

/// Where an armed panic happens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Background = 1,
    Export = 2,
}

static ARMED_VOLUME: AtomicUsize = AtomicUsize::new(0);
static ARMED_PLACE: AtomicU8 = AtomicU8::new(0);

fn id<D>(v: &Volume<D>) -> usize {
    core::ptr::from_ref(v) as usize
}

/// `setxattr` of [`XATTR`] with `value`.
pub(crate) fn trigger<D>(v: &Volume<D>, value: &[u8]) -> Result<()> {
    let place = match value {
        // ok-panic below: the point of this test-only feature (`panic-trigger`, never in logfs.ko).
        b"now" => panic!("panic-trigger: trusted.logfs.panic=now (a test build)"), // ok-panic
        b"background" => Place::Background,
        b"export" => Place::Export,
        _ => return Err(Errno::EINVAL.into()),
    };
    ARMED_PLACE.store(place as u8, Ordering::SeqCst);
    ARMED_VOLUME.store(id(v), Ordering::SeqCst);
    Ok(())
}

/// Panic if this volume was armed for `place`.
pub(crate) fn check<D>(v: &Volume<D>, place: Place) {
    if ARMED_VOLUME.load(Ordering::SeqCst) == id(v)
        && ARMED_PLACE.load(Ordering::SeqCst) == place as u8
    {
        ARMED_VOLUME.store(0, Ordering::SeqCst);
        // ok-panic below: both arms are this test-only feature's purpose (logfs_panic.ko, part p).
        match place {
            Place::Background => panic!("panic-trigger: armed for the background work"), // ok-panic
            Place::Export => panic!("panic-trigger: armed for the export of a live upgrade"), // ok-panic
        }
    }
}
