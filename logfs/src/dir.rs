//! Directories on a mounted volume: lookup, insertion and removal in the hash levels of
//! `format::dir`, and `readdir`. Entries never move, which keeps `readdir` cookies stable while
//! the directory changes.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;

use hashbrown::HashMap;

use bento_runtime::Errno;
use bento_runtime::fs::{DirFiller, FileType};
use bento_runtime::ks::block::BlockDevice;
use zerocopy::{FromZeros, IntoBytes};

use crate::error::{Error, Result};
use crate::format::dir::{
    DirBlock, MAX_DEPTH, SLOTS, bucket_range, decode_dir_block, level_start, name_hash, slots_for,
};
use crate::format::layout::BLOCK_SIZE;
use crate::format::layout::{NEW_ADDR, NULL_ADDR};
use crate::fs::Volume;
use crate::mem;

/// Cookies 0 and 1 are `.` and `..`.
pub const FIRST_COOKIE: u64 = 2;

/// The readdir cookie of the position right after `slot` of directory block `block`.
pub fn cookie_after(block: u64, slot: usize, span: usize) -> u64 {
    // Directory blocks stay below 2^27 (level_start(MAX_DEPTH)) and slots below SLOTS: the
    // cookie is far from overflowing.
    FIRST_COOKIE
        .saturating_add(block.saturating_mul(SLOTS_U64))
        .saturating_add(slot.saturating_add(span) as u64)
}

const SLOTS_U64: u64 = SLOTS as u64;

/// Split a cookie (>= FIRST_COOKIE) into a block and a slot.
pub fn cookie_position(cookie: u64) -> (u64, usize) {
    let p = cookie.saturating_sub(FIRST_COOKIE);
    (p / SLOTS_U64, (p % SLOTS_U64) as usize)
}

/// Directory blocks in memory, keyed by (directory, file block). Changes wait here for the next
/// checkpoint, so creating many names in one block writes it once. Bounded like the node cache:
/// past its capacity the least recently used clean blocks go.
pub struct DirCache {
    blocks: HashMap<(u32, u64), DirEntry>,
    dirty: usize,
    capacity: usize,
    clock: Cell<u64>,
}

struct DirEntry {
    block: Box<DirBlock>,
    dirty: bool,
    used: Cell<u64>,
}

impl crate::lru::Aged for DirEntry {
    fn used(&self) -> u64 {
        self.used.get()
    }
    fn dirty(&self) -> bool {
        self.dirty
    }
}

impl DirCache {
    pub fn new(capacity: usize) -> DirCache {
        DirCache {
            blocks: HashMap::new(),
            dirty: 0,
            capacity,
            clock: Cell::new(0),
        }
    }

    fn tick(&self) -> u64 {
        let t = self.clock.get().wrapping_add(1);
        self.clock.set(t);
        t
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Clean blocks: what [`shrink`](Self::shrink) could drop.
    pub fn clean_count(&self) -> usize {
        self.blocks.len().saturating_sub(self.dirty)
    }

    /// The dirty blocks, in order; they stay dirty until [`clean`](Self::clean).
    pub fn take_dirty(&self) -> Result<Vec<(u32, u64)>> {
        let mut v = mem::collect(self.blocks.iter().filter(|(_, e)| e.dirty).map(|(k, _)| *k))?;
        v.sort_unstable();
        Ok(v)
    }

    fn clean(&mut self, dir: u32, idx: u64) {
        if let Some(e) = self.blocks.get_mut(&(dir, idx))
            && e.dirty
        {
            e.dirty = false;
            self.dirty = self.dirty.saturating_sub(1);
        }
    }

    pub fn get(&self, dir: u32, idx: u64) -> Option<&DirBlock> {
        let e = self.blocks.get(&(dir, idx))?;
        e.used.set(self.tick());
        Some(&*e.block)
    }

    /// Room for one more block, so that a following [`insert`](Self::insert) cannot fail:
    /// callers that change the volume before inserting ask first.
    fn reserve(&mut self) -> Result<()> {
        self.blocks.try_reserve(1).map_err(mem::oom)
    }

    fn insert(&mut self, dir: u32, idx: u64, block: Box<DirBlock>, dirty: bool) -> Result<()> {
        if self.blocks.len() >= self.capacity {
            self.shrink(self.capacity / 2, true);
        }
        let e = DirEntry {
            block,
            dirty,
            used: Cell::new(self.tick()),
        };
        if let Some(old) = mem::insert(&mut self.blocks, (dir, idx), e)?
            && old.dirty
        {
            self.dirty = self.dirty.saturating_sub(1);
        }
        if dirty {
            self.dirty = self.dirty.saturating_add(1);
        }
        Ok(())
    }

    fn get_mut(&mut self, dir: u32, idx: u64) -> Option<&mut DirBlock> {
        let t = self.tick();
        let e = self.blocks.get_mut(&(dir, idx))?;
        e.used.set(t);
        if !e.dirty {
            e.dirty = true;
            self.dirty = self.dirty.saturating_add(1);
        }
        Some(&mut *e.block)
    }

    fn remove(&mut self, dir: u32, idx: u64) {
        if self.blocks.remove(&(dir, idx)).is_some_and(|e| e.dirty) {
            self.dirty = self.dirty.saturating_sub(1);
        }
    }

    /// Drop every block of a directory that is going away.
    pub fn forget_dir(&mut self, dir: u32) {
        let mut gone_dirty = 0usize;
        self.blocks.retain(|&(d, _), e| {
            if d == dir && e.dirty {
                gone_dirty = gone_dirty.saturating_add(1);
            }
            d != dir
        });
        self.dirty = self.dirty.saturating_sub(gone_dirty);
    }

    /// Drop up to `n` clean blocks, the least recently used first (see `NodeCache::shrink`
    /// for `exact`); returns how many went.
    pub fn shrink(&mut self, n: usize, exact: bool) -> usize {
        let n = n.min(self.clean_count());
        if n == 0 {
            return 0;
        }
        crate::lru::shrink(&mut self.blocks, n, exact)
    }
}

/// Where a name was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub ino: u32,
    pub kind: u8,
    pub block: u64,
    pub slot: usize,
}

pub fn file_type_of_dirent(t: u8) -> Option<FileType> {
    Some(match t {
        1 => FileType::NamedPipe,
        2 => FileType::CharDevice,
        4 => FileType::Directory,
        6 => FileType::BlockDevice,
        8 => FileType::RegularFile,
        10 => FileType::Symlink,
        12 => FileType::Socket,
        _ => return None,
    })
}

impl<D: BlockDevice> Volume<D> {
    fn dir_depth(&mut self, dir: u32) -> Result<u32> {
        let depth = self.inode(dir)?.inode().dir_depth.get();
        if depth > MAX_DEPTH {
            return Err(Error::corrupt("directory (depth)", u64::from(dir)));
        }
        Ok(depth)
    }

    /// Directory block `idx` of `dir`, read through the cache; `None` for a hole.
    fn dir_block(&mut self, dir: u32, idx: u64) -> Result<Option<&DirBlock>> {
        if self.dirs.get(dir, idx).is_none() {
            let addr = self.block_addr(dir, idx)?;
            if addr == NULL_ADDR {
                return Ok(None);
            }
            if addr == NEW_ADDR {
                return Err(Error::corrupt(
                    "directory block (never written)",
                    u64::from(dir),
                ));
            }
            let mut b = DirBlock::new_box_zeroed().map_err(|_| Error::Errno(Errno::ENOMEM))?;
            self.read_block(addr, b.as_mut_bytes())?;
            let bytes: &[u8; BLOCK_SIZE] = zerocopy::transmute_ref!(&*b);
            decode_dir_block(bytes, self.seed, u64::from(addr), dir, &self.layout)?;
            self.dirs.insert(dir, idx, b, false)?;
        }
        Ok(self.dirs.get(dir, idx))
    }

    pub(crate) fn dir_find(&mut self, dir: u32, name: &[u8]) -> Result<Option<Found>> {
        if name.is_empty() || name.len() > bento_runtime::fs::NAME_MAX {
            return Ok(None);
        }
        let depth = self.dir_depth(dir)?;
        let hash = name_hash(&self.sb.hash_seed, name);
        for level in 0..depth {
            for idx in bucket_range(level, hash) {
                if let Some(b) = self.dir_block(dir, idx)?
                    && let Some(e) = b.find(hash, name)
                {
                    return Ok(Some(Found {
                        ino: e.ino,
                        kind: e.kind,
                        block: idx,
                        slot: e.slot,
                    }));
                }
            }
        }
        Ok(None)
    }

    pub(crate) fn dir_add(&mut self, dir: u32, name: &[u8], ino: u32, kind: u8) -> Result<()> {
        let depth = self.dir_depth(dir)?;
        let hash = name_hash(&self.sb.hash_seed, name);
        // dir_depth() is at most MAX_DEPTH: depth + 1 does not overflow.
        for level in 0..depth.saturating_add(1).min(MAX_DEPTH) {
            for idx in bucket_range(level, hash) {
                let slot = match self.dir_block(dir, idx)? {
                    Some(b) => match b.find_space(name.len()) {
                        Some(slot) => slot,
                        None => continue,
                    },
                    None => {
                        self.new_dir_block(dir, idx)?;
                        0
                    }
                };
                let b = self
                    .dirs
                    .get_mut(dir, idx)
                    .ok_or(Error::Errno(Errno::EIO))?;
                b.insert(slot, hash, ino, kind, name);
                self.dirty = true;
                if level == depth {
                    let i = self.inode_mut(dir)?;
                    let depth = depth.saturating_add(1);
                    i.dir_depth = depth.into();
                    i.size = level_start(depth).saturating_mul(BLOCK_SIZE as u64).into();
                }
                return Ok(());
            }
        }
        Err(Errno::ENOSPC.into())
    }

    /// Start an empty directory block; its space is reserved now and written at checkpoint.
    fn new_dir_block(&mut self, dir: u32, idx: u64) -> Result<()> {
        // Memory first: nothing may change if the block cannot be cached.
        let mut b = DirBlock::new_box_zeroed().map_err(mem::oom)?;
        b.ino = dir.into();
        let (holder, ofs) = self
            .holder(dir, idx, true)?
            .ok_or(Error::Errno(Errno::EIO))?;
        self.dirs.reserve()?;
        self.reserve(1)?;
        self.set_node_addr(holder, ofs, NEW_ADDR)?;
        let i = self.inode_mut(dir)?;
        i.blocks = i.blocks.get().saturating_add(1).into();
        self.dirs.insert(dir, idx, b, true)
    }

    pub(crate) fn dir_remove(&mut self, dir: u32, f: &Found) -> Result<()> {
        self.note_since_cp(f.ino, crate::fs::SINCE_CP_NAMES);
        self.note_since_cp(dir, crate::fs::SINCE_CP_LOST_NAME);
        self.dir_block(dir, f.block)?
            .ok_or(Error::corrupt("directory (entry vanished)", u64::from(dir)))?;
        let b = self
            .dirs
            .get_mut(dir, f.block)
            .ok_or(Error::Errno(Errno::EIO))?;
        b.remove(f.slot);
        let empty = b.is_empty();
        self.dirty = true;
        if empty {
            self.dirs.remove(dir, f.block);
            self.free_blocks(dir, f.block, f.block.saturating_add(1))?;
        }
        Ok(())
    }

    pub(crate) fn dir_set_target(&mut self, dir: u32, f: &Found, ino: u32, kind: u8) -> Result<()> {
        self.note_since_cp(f.ino, crate::fs::SINCE_CP_NAMES);
        self.note_since_cp(ino, crate::fs::SINCE_CP_NAMES);
        self.note_since_cp(dir, crate::fs::SINCE_CP_LOST_NAME);
        self.dir_block(dir, f.block)?
            .ok_or(Error::corrupt("directory (entry vanished)", u64::from(dir)))?;
        let b = self
            .dirs
            .get_mut(dir, f.block)
            .ok_or(Error::Errno(Errno::EIO))?;
        b.set_target(f.slot, ino, kind);
        self.dirty = true;
        Ok(())
    }

    pub(crate) fn dir_is_empty(&mut self, dir: u32) -> Result<bool> {
        let depth = self.dir_depth(dir)?;
        for idx in 0..level_start(depth) {
            if let Some(b) = self.dir_block(dir, idx)?
                && !b.is_empty()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn readdir(&mut self, dir: u32, offset: u64, out: &mut dyn DirFiller) -> Result<()> {
        self.dir_of(dir)?;
        if offset == 0 && out.add(u64::from(dir), 1, FileType::Directory, b".") {
            return Ok(());
        }
        if offset <= 1 {
            let parent = self.inode(dir)?.inode().parent.get();
            if out.add(u64::from(parent), FIRST_COOKIE, FileType::Directory, b"..") {
                return Ok(());
            }
        }
        let (first_block, first_slot) = cookie_position(offset.max(FIRST_COOKIE));
        let depth = self.dir_depth(dir)?;
        for idx in first_block..level_start(depth) {
            let from = if idx == first_block { first_slot } else { 0 };
            let Some(b) = self.dir_block(dir, idx)? else {
                continue;
            };
            for e in b.entries_from(from) {
                let kind = file_type_of_dirent(e.kind).unwrap_or(FileType::RegularFile);
                let next = cookie_after(idx, e.slot, slots_for(e.name.len()));
                if out.add(u64::from(e.ino), next, kind, e.name) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Write every changed directory block (part of a checkpoint).
    pub(crate) fn flush_dirs(&mut self) -> Result<()> {
        let mut buf = crate::file::zeroed_block()?;
        for (dir, idx) in self.dirs.take_dirty()? {
            let Some(e) = self.dirs.blocks.get_mut(&(dir, idx)) else {
                continue;
            };
            buf.copy_from_slice(e.block.seal(self.seed));
            self.write_block(dir, idx, &buf)?;
            self.dirs.clean(dir, idx);
        }
        Ok(())
    }
}
