//! Sleeping locks.
//!
//! A file system holds these across block I/O, so in the kernel they are mutexes and
//! rw-semaphores, never spinning locks. In userspace (`std`) they are the standard library's
//! locks. Poisoning is not propagated: a panic in a file system is fatal in the kernel anyway.
//!
//! Without `std` a lock pairs the installed backend's sleeping lock (see [`super::host`]), which
//! does the waiting, with a `spin` lock that owns the data and is never contended while the
//! sleeping lock is held, except briefly by `Mutex::try_lock` (memory reclaim, which takes the
//! spin lock alone and never sleeps under it): that is how the data is reached without `unsafe`
//! here. With no backend installed the spin lock alone excludes.

#[cfg(feature = "std")]
pub use with_std::*;

#[cfg(not(feature = "std"))]
pub use with_host::*;

#[cfg(feature = "std")]
mod with_std {
    use core::ops::{Deref, DerefMut};
    use std::sync as imp;

    /// A mutual-exclusion lock that may be held while sleeping.
    pub struct Mutex<T: ?Sized> {
        inner: imp::Mutex<T>,
    }

    pub struct MutexGuard<'a, T: ?Sized> {
        inner: imp::MutexGuard<'a, T>,
    }

    impl<T> Mutex<T> {
        pub const fn new(value: T) -> Self {
            Mutex {
                inner: imp::Mutex::new(value),
            }
        }

        /// As `new`; cannot fail here (the kernel's version allocates).
        pub fn try_new(value: T) -> Result<Self, crate::Errno> {
            Ok(Self::new(value))
        }

        pub fn into_inner(self) -> T {
            self.inner.into_inner().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T: ?Sized> Mutex<T> {
        pub fn lock(&self) -> MutexGuard<'_, T> {
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            MutexGuard { inner }
        }

        /// The lock if it is free now, without waiting (memory reclaim must not wait).
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            let inner = match self.inner.try_lock() {
                Ok(g) => g,
                Err(imp::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(imp::TryLockError::WouldBlock) => return None,
            };
            Some(MutexGuard { inner })
        }
    }

    impl<T: ?Sized> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.inner
        }
    }

    /// A readers-writer lock that may be held while sleeping.
    pub struct RwLock<T: ?Sized> {
        inner: imp::RwLock<T>,
    }

    pub struct ReadGuard<'a, T: ?Sized> {
        inner: imp::RwLockReadGuard<'a, T>,
    }

    pub struct WriteGuard<'a, T: ?Sized> {
        inner: imp::RwLockWriteGuard<'a, T>,
    }

    impl<T> RwLock<T> {
        pub const fn new(value: T) -> Self {
            RwLock {
                inner: imp::RwLock::new(value),
            }
        }

        pub fn try_new(value: T) -> Result<Self, crate::Errno> {
            Ok(Self::new(value))
        }
    }

    impl<T: ?Sized> RwLock<T> {
        pub fn read(&self) -> ReadGuard<'_, T> {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            ReadGuard { inner }
        }

        pub fn write(&self) -> WriteGuard<'_, T> {
            let inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            WriteGuard { inner }
        }
    }

    impl<T: ?Sized> Deref for ReadGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T: ?Sized> Deref for WriteGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.inner
        }
    }

    impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.inner
        }
    }
}

#[cfg(not(feature = "std"))]
mod with_host {
    use alloc::boxed::Box;
    use core::ops::{Deref, DerefMut};

    use crate::Errno;
    use crate::ks::host::{self, Held, RawMutex, RawRwLock};

    /// A mutual-exclusion lock that may be held while sleeping.
    pub struct Mutex<T: ?Sized> {
        raw: Option<Box<dyn RawMutex>>,
        data: spin::Mutex<T>,
    }

    /// Fields drop in order: the data's spin guard first, then the sleeping lock, so the next
    /// holder never finds the spin lock taken.
    pub struct MutexGuard<'a, T: ?Sized> {
        data: spin::MutexGuard<'a, T>,
        _raw: Unlock<'a>,
    }

    /// Releases a backend mutex (if any) when dropped.
    /// `NotSend`: a kernel mutex or rw-semaphore is released by the task that took it.
    struct Unlock<'a>(Option<&'a dyn RawMutex>, NotSend);

    type NotSend = core::marker::PhantomData<*const ()>;

    impl Drop for Unlock<'_> {
        fn drop(&mut self) {
            if let Some(raw) = self.0 {
                raw.unlock(Held::new());
            }
        }
    }

    // No infallible `new` here: the backend's lock is allocated, and a failure to make one
    // must reach the caller as an error, never as a panic (a BUG() in the kernel).
    impl<T> Mutex<T> {
        /// Fails with ENOMEM if the backend cannot allocate its lock.
        pub fn try_new(value: T) -> Result<Self, Errno> {
            // Without a host the lock would only spin, and a holder may sleep: refuse.
            let raw = match host::get() {
                Some(h) => Some(h.new_mutex()?),
                None => return Err(Errno::EINVAL),
            };
            Ok(Mutex {
                raw,
                data: spin::Mutex::new(value),
            })
        }

        pub fn into_inner(self) -> T {
            self.data.into_inner()
        }
    }

    impl<T: ?Sized> Mutex<T> {
        pub fn lock(&self) -> MutexGuard<'_, T> {
            let raw = self.raw.as_deref();
            if let Some(r) = raw {
                r.lock();
            }
            let unlock = Unlock(raw, NotSend::default());
            MutexGuard {
                data: self.data.lock(),
                _raw: unlock,
            }
        }

        /// The data if nobody holds it now, without waiting and without the sleeping lock (for
        /// memory reclaim, which must not wait for a holder doing I/O). A `lock` that comes in
        /// meanwhile spins until this guard drops: keep it short, never sleep under it.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            let data = self.data.try_lock()?;
            Some(MutexGuard {
                data,
                _raw: Unlock(None, NotSend::default()),
            })
        }
    }

    impl<T: ?Sized> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.data
        }
    }

    impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.data
        }
    }

    /// A readers-writer lock that may be held while sleeping.
    pub struct RwLock<T: ?Sized> {
        raw: Option<Box<dyn RawRwLock>>,
        data: spin::RwLock<T>,
    }

    /// As [`MutexGuard`]: the spin guard drops before the sleeping lock is released.
    pub struct ReadGuard<'a, T: ?Sized> {
        data: spin::RwLockReadGuard<'a, T>,
        _raw: ReadUnlock<'a>,
    }

    pub struct WriteGuard<'a, T: ?Sized> {
        data: spin::RwLockWriteGuard<'a, T>,
        _raw: WriteUnlock<'a>,
    }

    struct ReadUnlock<'a>(Option<&'a dyn RawRwLock>, NotSend);
    struct WriteUnlock<'a>(Option<&'a dyn RawRwLock>, NotSend);

    impl Drop for ReadUnlock<'_> {
        fn drop(&mut self) {
            if let Some(raw) = self.0 {
                raw.read_unlock(Held::new());
            }
        }
    }

    impl Drop for WriteUnlock<'_> {
        fn drop(&mut self) {
            if let Some(raw) = self.0 {
                raw.write_unlock(Held::new());
            }
        }
    }

    impl<T> RwLock<T> {
        pub fn try_new(value: T) -> Result<Self, Errno> {
            // Without a host the lock would only spin, and a holder may sleep: refuse.
            let raw = match host::get() {
                Some(h) => Some(h.new_rwlock()?),
                None => return Err(Errno::EINVAL),
            };
            Ok(RwLock {
                raw,
                data: spin::RwLock::new(value),
            })
        }
    }

    impl<T: ?Sized> RwLock<T> {
        pub fn read(&self) -> ReadGuard<'_, T> {
            let raw = self.raw.as_deref();
            if let Some(r) = raw {
                r.read();
            }
            let unlock = ReadUnlock(raw, NotSend::default());
            ReadGuard {
                data: self.data.read(),
                _raw: unlock,
            }
        }

        pub fn write(&self) -> WriteGuard<'_, T> {
            let raw = self.raw.as_deref();
            if let Some(r) = raw {
                r.write();
            }
            let unlock = WriteUnlock(raw, NotSend::default());
            WriteGuard {
                data: self.data.write(),
                _raw: unlock,
            }
        }
    }

    impl<T: ?Sized> Deref for ReadGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.data
        }
    }

    impl<T: ?Sized> Deref for WriteGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.data
        }
    }

    impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.data
        }
    }
}
