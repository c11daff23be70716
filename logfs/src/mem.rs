//! Fallible allocation. In the kernel an allocation that fails is no abort but ENOMEM for the
//! caller, so every growth of a `Vec` or a hash table on a syscall, writeback or mount path goes
//! through these helpers (or `try_reserve` directly): they reserve first, then insert into what
//! is already there. Infallible growth (`vec!`, `collect`, `push`, `BTreeMap::insert`, `format!`)
//! is refused by clippy (`logfs/clippy.toml`) outside of tests; the few calls here that would
//! allocate cannot, since the room was reserved just before.
#![allow(clippy::disallowed_methods)]

use alloc::vec::Vec;
use core::hash::{BuildHasher, Hash};

use bento_runtime::Errno;
use hashbrown::{HashMap, HashSet};

use crate::error::{Error, Result};

/// The error of a failed allocation.
pub fn oom<E>(_: E) -> Error {
    Error::Errno(Errno::ENOMEM)
}

/// An empty `Vec` with room for `n` elements.
pub fn with_capacity<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(oom)?;
    Ok(v)
}

/// `vec![value; n]`.
pub fn filled<T: Clone>(value: T, n: usize) -> Result<Vec<T>> {
    let mut v = with_capacity(n)?;
    v.resize(n, value);
    Ok(v)
}

/// `v.push(x)`.
pub fn push<T>(v: &mut Vec<T>, x: T) -> Result<()> {
    v.try_reserve(1).map_err(oom)?;
    v.push(x);
    Ok(())
}

/// `v.extend_from_slice(s)`.
pub fn extend_from_slice<T: Clone>(v: &mut Vec<T>, s: &[T]) -> Result<()> {
    v.try_reserve(s.len()).map_err(oom)?;
    v.extend_from_slice(s);
    Ok(())
}

/// `s.to_vec()`.
pub fn to_vec<T: Clone>(s: &[T]) -> Result<Vec<T>> {
    let mut v = with_capacity(s.len())?;
    v.extend_from_slice(s);
    Ok(v)
}

/// `iter.collect::<Vec<_>>()`, reserving the iterator's lower bound up front.
pub fn collect<T>(iter: impl IntoIterator<Item = T>) -> Result<Vec<T>> {
    let iter = iter.into_iter();
    let mut v = with_capacity(iter.size_hint().0)?;
    for x in iter {
        push(&mut v, x)?;
    }
    Ok(v)
}

/// `v.extend(iter)`.
pub fn extend<T>(v: &mut Vec<T>, iter: impl IntoIterator<Item = T>) -> Result<()> {
    let iter = iter.into_iter();
    v.try_reserve(iter.size_hint().0).map_err(oom)?;
    for x in iter {
        push(v, x)?;
    }
    Ok(())
}

/// `format!(...)` as bytes.
pub fn format(args: core::fmt::Arguments<'_>) -> Result<Vec<u8>> {
    struct W(Vec<u8>, bool);
    impl core::fmt::Write for W {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.1 = self.1 || extend_from_slice(&mut self.0, s.as_bytes()).is_err();
            Ok(())
        }
    }
    let mut w = W(Vec::new(), false);
    let _ = core::fmt::write(&mut w, args);
    if w.1 {
        return Err(Error::Errno(Errno::ENOMEM));
    }
    Ok(w.0)
}

/// `map.insert(k, v)`.
pub fn insert<K: Eq + Hash, V, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    k: K,
    v: V,
) -> Result<Option<V>> {
    map.try_reserve(1).map_err(oom)?;
    Ok(map.insert(k, v))
}

/// `set.insert(k)`.
pub fn set_insert<K: Eq + Hash, S: BuildHasher>(set: &mut HashSet<K, S>, k: K) -> Result<bool> {
    set.try_reserve(1).map_err(oom)?;
    Ok(set.insert(k))
}

/// `set.extend(iter)`.
pub fn set_extend<K: Eq + Hash, S: BuildHasher>(
    set: &mut HashSet<K, S>,
    iter: impl IntoIterator<Item = K>,
) -> Result<()> {
    let iter = iter.into_iter();
    set.try_reserve(iter.size_hint().0).map_err(oom)?;
    for k in iter {
        set_insert(set, k)?;
    }
    Ok(())
}
