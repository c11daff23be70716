//! A set of (inode, key) pairs with fallible insertion and per-inode range questions: the
//! blocks and index nodes promised to delayed allocation (`Volume::delayed`,
//! `Volume::delayed_nodes`). A hash set (a `BTreeSet` cannot report a failed allocation), with
//! a count per inode so that questions about one inode's range cost the smaller of the range
//! and the set.

use alloc::vec::Vec;
use core::hash::Hash;

use hashbrown::{HashMap, HashSet};

use crate::error::Result;
use crate::mem;

pub struct KeySet<K> {
    set: HashSet<(u32, K)>,
    per_ino: HashMap<u32, usize>,
}

impl<K> Default for KeySet<K> {
    fn default() -> Self {
        KeySet {
            set: HashSet::new(),
            per_ino: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash + Ord + Into<u64> + TryFrom<u64>> KeySet<K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn contains(&self, k: &(u32, K)) -> bool {
        self.set.contains(k)
    }

    /// Insert; ENOMEM leaves the set as it was.
    #[allow(clippy::disallowed_methods)] // Room reserved first.
    pub fn insert(&mut self, k: (u32, K)) -> Result<bool> {
        self.set.try_reserve(1).map_err(mem::oom)?;
        self.per_ino.try_reserve(1).map_err(mem::oom)?;
        let new = self.set.insert(k);
        if new {
            let n = self.per_ino.entry(k.0).or_default();
            *n = n.saturating_add(1);
        }
        Ok(new)
    }

    /// Insert all of `keys`, or none (ENOMEM).
    pub fn extend(&mut self, keys: &[(u32, K)]) -> Result<()> {
        self.set.try_reserve(keys.len()).map_err(mem::oom)?;
        self.per_ino.try_reserve(keys.len()).map_err(mem::oom)?;
        for &k in keys {
            self.insert(k)?;
        }
        Ok(())
    }

    pub fn remove(&mut self, k: &(u32, K)) -> bool {
        let gone = self.set.remove(k);
        if gone {
            self.uncount(k.0, 1);
        }
        gone
    }

    fn uncount(&mut self, ino: u32, n: usize) {
        if let Some(c) = self.per_ino.get_mut(&ino) {
            *c = c.saturating_sub(n);
            if *c == 0 {
                self.per_ino.remove(&ino);
            }
        }
    }

    /// Keys of `ino` in the set.
    pub fn count_of(&self, ino: u32) -> usize {
        self.per_ino.get(&ino).copied().unwrap_or(0)
    }

    /// Whether the range `[from, to)` is short enough to probe key by key.
    fn probe(&self, ino: u32, from: u64, to: u64) -> bool {
        to.saturating_sub(from) <= self.count_of(ino) as u64
    }

    /// How many keys of `ino` lie in `[from, to)`.
    pub fn count_range(&self, ino: u32, from: u64, to: u64) -> usize {
        if self.count_of(ino) == 0 {
            return 0;
        }
        if self.probe(ino, from, to) {
            (from..to)
                .filter_map(|k| K::try_from(k).ok())
                .filter(|&k| self.set.contains(&(ino, k)))
                .count()
        } else {
            self.set
                .iter()
                .filter(|&&(i, k)| i == ino && (from..to).contains(&k.into()))
                .count()
        }
    }

    /// Remove the keys of `ino` in `[from, to)`.
    pub fn remove_range(&mut self, ino: u32, from: u64, to: u64) {
        if self.count_of(ino) == 0 {
            return;
        }
        if self.probe(ino, from, to) {
            for k in (from..to).filter_map(|k| K::try_from(k).ok()) {
                self.remove(&(ino, k));
            }
        } else {
            let mut gone = 0usize;
            self.set.retain(|&(i, k)| {
                let drop = i == ino && (from..to).contains(&k.into());
                if drop {
                    gone = gone.saturating_add(1);
                }
                !drop
            });
            self.uncount(ino, gone);
        }
    }

    /// Every key, sorted (deterministic output, e.g. for the upgrade state).
    pub fn sorted(&self) -> Result<Vec<(u32, K)>> {
        let mut v = mem::collect(self.set.iter().copied())?;
        v.sort_unstable();
        Ok(v)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(u32, K)> {
        self.set.iter()
    }
}
