//! libBentoKS over the kernel: the [`Host`] backend `bento-api` uses without `std`. Its locks are
//! the kernel's `struct mutex` and `struct rw_semaphore`, allocated by bentofs (their layout
//! depends on the kernel configuration, and they must not move); the clock and the log are
//! bentofs helpers too.

use alloc::boxed::Box;
use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;

use bento_api::Errno;
use bento_api::fs::Timespec;
use bento_api::ks::host::{self, Held, Host, RawMutex, RawRwLock};
use bento_api::ks::log::Level;

use crate::ffi;

struct KernelHost;

static HOST: KernelHost = KernelHost;

/// Install the kernel backend (idempotent); the mount entry points call it before anything of
/// the file system runs, so every lock it makes sleeps.
pub(crate) fn install() {
    host::install(&HOST);
}

impl Host for KernelHost {
    fn new_mutex(&self) -> Result<Box<dyn RawMutex>, Errno> {
        // SAFETY: plain allocation call.
        let raw = NonNull::new(unsafe { ffi::bento_ks_mutex_new() }).ok_or(Errno::ENOMEM)?;
        // Made first, so a failed box frees the mutex through Drop.
        let m = KernelMutex(raw);
        Ok(try_box(m)?)
    }

    fn new_rwlock(&self) -> Result<Box<dyn RawRwLock>, Errno> {
        // SAFETY: plain allocation call.
        let raw = NonNull::new(unsafe { ffi::bento_ks_rwsem_new() }).ok_or(Errno::ENOMEM)?;
        let s = KernelRwsem(raw);
        Ok(try_box(s)?)
    }

    fn now(&self) -> Timespec {
        let mut ts = ffi::BentoTimespec::default();
        // SAFETY: ts is a valid, writable bento_timespec.
        unsafe { ffi::bento_ks_time_now(&mut ts) };
        Timespec::new(ts.sec, ts.nsec)
    }

    fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        let printk_level = match level {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug => 7,
        };
        crate::log(printk_level, args);
    }
}

/// `Box::new` that reports ENOMEM instead of panicking (a panic fails the mount in the kernel).
fn try_box<T>(value: T) -> Result<Box<T>, Errno> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        #[allow(clippy::disallowed_methods)] // A zero-sized box allocates nothing.
        return Ok(Box::new(value));
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc::alloc(layout) } as *mut T;
    if p.is_null() {
        return Err(Errno::ENOMEM);
    }
    // SAFETY: p is freshly allocated for a T by the global allocator with T's layout, which is
    // what Box::from_raw requires; writing initializes it.
    unsafe {
        p.write(value);
        Ok(Box::from_raw(p))
    }
}

/// A kernel `struct mutex` owned by this value.
struct KernelMutex(NonNull<c_void>);

// SAFETY: a kernel mutex may be locked and unlocked from any task.
unsafe impl Send for KernelMutex {}
// SAFETY: as above; the mutex is the synchronization.
unsafe impl Sync for KernelMutex {}

impl RawMutex for KernelMutex {
    fn lock(&self) {
        // SAFETY: self.0 is a live kernel mutex.
        unsafe { ffi::bento_ks_mutex_lock(self.0.as_ptr()) }
    }

    fn unlock(&self, _held: Held) {
        // SAFETY: live mutex; `Held` proves this task locked it.
        unsafe { ffi::bento_ks_mutex_unlock(self.0.as_ptr()) }
    }
}

impl Drop for KernelMutex {
    fn drop(&mut self) {
        // SAFETY: no guard can exist (they borrow the lock); freed once.
        unsafe { ffi::bento_ks_mutex_free(self.0.as_ptr()) }
    }
}

/// A kernel `struct rw_semaphore` owned by this value.
struct KernelRwsem(NonNull<c_void>);

// SAFETY: an rw-semaphore may be taken and released from any task.
unsafe impl Send for KernelRwsem {}
// SAFETY: as above.
unsafe impl Sync for KernelRwsem {}

impl RawRwLock for KernelRwsem {
    fn read(&self) {
        // SAFETY: self.0 is a live rw-semaphore.
        unsafe { ffi::bento_ks_rwsem_read(self.0.as_ptr()) }
    }

    fn read_unlock(&self, _held: Held) {
        // SAFETY: live semaphore; `Held` proves this task holds it for reading.
        unsafe { ffi::bento_ks_rwsem_read_unlock(self.0.as_ptr()) }
    }

    fn write(&self) {
        // SAFETY: self.0 is a live rw-semaphore.
        unsafe { ffi::bento_ks_rwsem_write(self.0.as_ptr()) }
    }

    fn write_unlock(&self, _held: Held) {
        // SAFETY: live semaphore; `Held` proves this task holds it for writing.
        unsafe { ffi::bento_ks_rwsem_write_unlock(self.0.as_ptr()) }
    }
}

impl Drop for KernelRwsem {
    fn drop(&mut self) {
        // SAFETY: no guard exists; freed once.
        unsafe { ffi::bento_ks_rwsem_free(self.0.as_ptr()) }
    }
}
