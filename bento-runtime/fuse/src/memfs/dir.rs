//! Directory contents: entries by name and by readdir cookie, and the rules for names.

use std::collections::{BTreeMap, HashMap};
use std::vec::Vec;

use bento_api::errno::{Errno, Result};
use bento_api::fs::{Ino, NAME_MAX};

pub(super) struct Dir {
    pub(super) parent: Ino,
    /// Entries by cookie; cookies only grow, so a listing resumes correctly after changes.
    pub(super) by_cookie: BTreeMap<u64, (Vec<u8>, Ino)>,
    by_name: HashMap<Vec<u8>, u64>,
    next_cookie: u64,
}

/// Cookies of "." and ".."; entries start after them.
pub(super) const DOT_COOKIE: u64 = 1;
pub(super) const DOTDOT_COOKIE: u64 = 2;

impl Dir {
    pub(super) fn new(parent: Ino) -> Dir {
        Dir {
            parent,
            by_cookie: BTreeMap::new(),
            by_name: HashMap::new(),
            next_cookie: DOTDOT_COOKIE + 1,
        }
    }

    pub(super) fn get(&self, name: &[u8]) -> Option<Ino> {
        self.by_name.get(name).map(|c| self.by_cookie[c].1)
    }

    pub(super) fn insert(&mut self, name: &[u8], ino: Ino) {
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        self.by_cookie.insert(cookie, (name.to_vec(), ino));
        self.by_name.insert(name.to_vec(), cookie);
    }

    pub(super) fn remove(&mut self, name: &[u8]) -> Option<Ino> {
        let cookie = self.by_name.remove(name)?;
        self.by_cookie.remove(&cookie).map(|(_, ino)| ino)
    }

    /// Point an existing name at another inode, keeping its place in the listing.
    pub(super) fn replace(&mut self, name: &[u8], ino: Ino) {
        if let Some(entry) = self
            .by_name
            .get(name)
            .and_then(|c| self.by_cookie.get_mut(c))
        {
            entry.1 = ino;
        }
    }
}

pub(super) fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        Err(Errno::ENAMETOOLONG)
    } else if name.is_empty()
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&0)
    {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}
