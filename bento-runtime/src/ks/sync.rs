//! Sleeping locks.
//!
//! A file system holds these across block I/O, so in the kernel they are mutexes and
//! rw-semaphores, never spinning locks. In userspace they are the standard library's locks.
//! Poisoning is not propagated: a panic in a file system is fatal in the kernel anyway.

#[cfg(any(feature = "std", not(feature = "kernel")))]
pub use portable::*;

#[cfg(all(feature = "kernel", not(feature = "std")))]
pub use crate::kernel::sync::*;

/// std locks in userspace; spinning locks for a bare `no_std` build that never blocks.
#[cfg(any(feature = "std", not(feature = "kernel")))]
mod portable {
    use core::ops::{Deref, DerefMut};

    #[cfg(feature = "std")]
    use std::sync as imp;

    #[cfg(not(feature = "std"))]
    use spin as imp;

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
            #[cfg(feature = "std")]
            {
                self.inner.into_inner().unwrap_or_else(|e| e.into_inner())
            }
            #[cfg(not(feature = "std"))]
            {
                self.inner.into_inner()
            }
        }
    }

    impl<T: ?Sized> Mutex<T> {
        pub fn lock(&self) -> MutexGuard<'_, T> {
            #[cfg(feature = "std")]
            let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            #[cfg(not(feature = "std"))]
            let inner = self.inner.lock();
            MutexGuard { inner }
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
            #[cfg(feature = "std")]
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            #[cfg(not(feature = "std"))]
            let inner = self.inner.read();
            ReadGuard { inner }
        }

        pub fn write(&self) -> WriteGuard<'_, T> {
            #[cfg(feature = "std")]
            let inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            #[cfg(not(feature = "std"))]
            let inner = self.inner.write();
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
