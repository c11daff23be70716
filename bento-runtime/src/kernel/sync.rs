//! Sleeping locks over the kernel's `struct mutex` and `struct rw_semaphore`, allocated by
//! bentofs (their layout depends on the kernel configuration, and they must not move).

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use super::ffi;
use crate::Errno;

pub struct Mutex<T: ?Sized> {
    raw: NonNull<c_void>,
    data: UnsafeCell<T>,
}

// SAFETY: the kernel mutex serializes all access to `data`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    pub fn try_new(value: T) -> Result<Self, Errno> {
        // SAFETY: plain allocation call.
        let raw = NonNull::new(unsafe { ffi::bento_ks_mutex_new() }).ok_or(Errno::ENOMEM)?;
        Ok(Mutex {
            raw,
            data: UnsafeCell::new(value),
        })
    }

    /// Panics (BUG) if the kernel cannot allocate a mutex; mounts use `try_new`.
    pub fn new(value: T) -> Self {
        match Self::try_new(value) {
            Ok(m) => m,
            Err(_) => panic!("out of memory allocating a mutex"), // ok-panic: only callers that cannot fail use new
        }
    }

    pub fn into_inner(self) -> T {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again, so reading the data out moves it; the
        // kernel mutex is freed exactly once here.
        unsafe {
            ffi::bento_ks_mutex_free(me.raw.as_ptr());
            core::ptr::read(me.data.get())
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // SAFETY: raw is a live kernel mutex; the guard unlocks it.
        unsafe { ffi::bento_ks_mutex_lock(self.raw.as_ptr()) };
        MutexGuard { lock: self }
    }
}

impl<T: ?Sized> Drop for Mutex<T> {
    fn drop(&mut self) {
        // SAFETY: no guard can exist (they borrow self); the mutex is freed once.
        unsafe { ffi::bento_ks_mutex_free(self.raw.as_ptr()) }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held, so no one else accesses the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held and the guard is borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard locked the mutex.
        unsafe { ffi::bento_ks_mutex_unlock(self.lock.raw.as_ptr()) }
    }
}

pub struct RwLock<T: ?Sized> {
    raw: NonNull<c_void>,
    data: UnsafeCell<T>,
}

// SAFETY: the rw-semaphore gives shared access to readers and exclusive access to a writer.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: readers share &T across threads, so T must be Sync too.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

pub struct ReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

pub struct WriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    pub fn try_new(value: T) -> Result<Self, Errno> {
        // SAFETY: plain allocation call.
        let raw = NonNull::new(unsafe { ffi::bento_ks_rwsem_new() }).ok_or(Errno::ENOMEM)?;
        Ok(RwLock {
            raw,
            data: UnsafeCell::new(value),
        })
    }

    pub fn new(value: T) -> Self {
        match Self::try_new(value) {
            Ok(l) => l,
            Err(_) => panic!("out of memory allocating an rw-semaphore"), // ok-panic: as Mutex::new
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    pub fn read(&self) -> ReadGuard<'_, T> {
        // SAFETY: raw is a live rw-semaphore; the guard releases it.
        unsafe { ffi::bento_ks_rwsem_read(self.raw.as_ptr()) };
        ReadGuard { lock: self }
    }

    pub fn write(&self) -> WriteGuard<'_, T> {
        // SAFETY: as read.
        unsafe { ffi::bento_ks_rwsem_write(self.raw.as_ptr()) };
        WriteGuard { lock: self }
    }
}

impl<T: ?Sized> Drop for RwLock<T> {
    fn drop(&mut self) {
        // SAFETY: no guard exists; freed once.
        unsafe { ffi::bento_ks_rwsem_free(self.raw.as_ptr()) }
    }
}

impl<T: ?Sized> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held: only shared access exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the read lock.
        unsafe { ffi::bento_ks_rwsem_read_unlock(self.lock.raw.as_ptr()) }
    }
}

impl<T: ?Sized> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the write lock.
        unsafe { ffi::bento_ks_rwsem_write_unlock(self.lock.raw.as_ptr()) }
    }
}
