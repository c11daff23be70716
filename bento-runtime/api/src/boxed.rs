//! A heap value allocated fallibly.
//!
//! `Box::new` aborts when memory runs out, which in the kernel is a BUG(); `Box::try_new` is not
//! stable. A one-element boxed array is allocated through `Vec::try_reserve_exact` without
//! `unsafe`, and dereferences to its element.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};

use crate::Errno;

/// A `T` on the heap; moving it moves a pointer, which keeps large values off the stack.
pub struct TryBox<T>(Box<[T; 1]>);

impl<T> TryBox<T> {
    /// Moves `value` to the heap, or ENOMEM.
    pub fn new(value: T) -> Result<TryBox<T>, Errno> {
        Self::new_with(|| value)
    }

    /// The value `make` returns, built after the allocation succeeded and in a frame of its own:
    /// a large value built in place costs the caller's frame nothing (kernel stacks).
    #[inline(never)]
    pub fn new_with(make: impl FnOnce() -> T) -> Result<TryBox<T>, Errno> {
        let mut v = Vec::new();
        v.try_reserve_exact(1).map_err(|_| Errno::ENOMEM)?;
        // These checks cannot fail; they let the compiler drop the infallible paths of `push`
        // (growth) and `into_boxed_slice` (shrinking), which would panic on allocation failure.
        if v.len() >= v.capacity() {
            return Err(Errno::ENOMEM);
        }
        #[allow(clippy::disallowed_methods)] // room reserved and checked above
        v.push(make());
        if v.capacity() != v.len() {
            return Err(Errno::ENOMEM);
        }
        let b: Box<[T; 1]> = v.into_boxed_slice().try_into().map_err(|_| Errno::ENOMEM)?;
        Ok(TryBox(b))
    }

    /// The value, moved back to the caller.
    pub fn into_inner(self) -> T {
        let [value] = *self.0;
        value
    }
}

impl<T> Deref for TryBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        let [value] = &*self.0;
        value
    }
}

impl<T> DerefMut for TryBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        let [value] = &mut *self.0;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::TryBox;

    #[test]
    fn holds_and_returns_its_value() {
        let mut b = TryBox::new([7u8; 4096]).unwrap();
        b[1] = 8;
        assert_eq!((b[0], b[1]), (7, 8));
        assert_eq!(b.into_inner()[1], 8);
    }
}
