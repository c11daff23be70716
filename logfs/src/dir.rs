//! Directories: a multi-level hash table of directory blocks stored as the directory's file data
//! (the F2FS design). Level *l* has `buckets(l)` buckets of `bucket_blocks(l)` blocks; a name
//! lives in bucket `hash % buckets(l)` of some level, so a lookup reads one bucket per level and
//! entries never move, which keeps `readdir` cookies stable while the directory changes.

use static_assertions::const_assert_eq;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::csum::{self, MAGIC_DIR};
use crate::error::{Error, Result};
use crate::layout::BLOCK_SIZE;

/// Entry slots per directory block.
pub const SLOTS: usize = 213;
/// Name bytes per slot.
pub const SLOT_LEN: usize = 8;
/// Most hash levels a directory may have.
pub const MAX_DEPTH: u32 = 32;
/// Cookies 0 and 1 are `.` and `..`.
pub const FIRST_COOKIE: u64 = 2;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct RawDentry {
    pub hash: U32,
    pub ino: U32,
    pub name_len: U16,
    pub kind: u8,
}
const_assert_eq!(core::mem::size_of::<RawDentry>(), 11);

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirBlock {
    pub magic: U32,
    pub crc: U32,
    pub ino: U32,
    pub _reserved: U32,
    pub bitmap: [u8; SLOTS.div_ceil(8)],
    pub dentries: [RawDentry; SLOTS],
    pub names: [[u8; SLOT_LEN]; SLOTS],
    pub _pad: [u8; 6],
}
const_assert_eq!(core::mem::size_of::<DirBlock>(), BLOCK_SIZE);

/// One entry of a directory block.
pub struct DirEntryRef<'a> {
    pub slot: usize,
    pub ino: u32,
    pub kind: u8,
    pub hash: u32,
    pub name: &'a [u8],
}

pub fn slots_for(name_len: usize) -> usize {
    name_len.div_ceil(SLOT_LEN).max(1)
}

impl DirBlock {
    pub fn used(&self, slot: usize) -> bool {
        self.bitmap
            .get(slot / 8)
            .is_some_and(|b| b & (1 << (slot % 8)) != 0)
    }

    fn set_used(&mut self, slot: usize, used: bool) {
        if let Some(b) = self.bitmap.get_mut(slot / 8) {
            if used {
                *b |= 1 << (slot % 8);
            } else {
                *b &= !(1 << (slot % 8));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bitmap.iter().all(|&b| b == 0)
    }

    /// The entry starting at `slot`, if one does and it is well formed.
    pub fn entry(&self, slot: usize) -> Option<DirEntryRef<'_>> {
        if !self.used(slot) {
            return None;
        }
        let d = self.dentries.get(slot)?;
        let len = usize::from(d.name_len.get());
        if len == 0 || len > bento_runtime::fs::NAME_MAX || slot + slots_for(len) > SLOTS {
            return None;
        }
        let names = self.names.as_bytes();
        let name = names.get(slot * SLOT_LEN..slot * SLOT_LEN + len)?;
        Some(DirEntryRef {
            slot,
            ino: d.ino.get(),
            kind: d.kind,
            hash: d.hash.get(),
            name,
        })
    }

    /// Entries in slot order, starting at `from`.
    pub fn entries_from(&self, from: usize) -> impl Iterator<Item = DirEntryRef<'_>> {
        let mut slot = from;
        core::iter::from_fn(move || {
            while slot < SLOTS {
                if let Some(e) = self.entry(slot) {
                    slot += slots_for(e.name.len());
                    return Some(e);
                }
                slot += 1;
            }
            None
        })
    }

    pub fn find(&self, hash: u32, name: &[u8]) -> Option<DirEntryRef<'_>> {
        self.entries_from(0)
            .find(|e| e.hash == hash && e.name == name)
    }

    /// First run of free slots long enough for a name of `len` bytes.
    pub fn find_space(&self, len: usize) -> Option<usize> {
        let need = slots_for(len);
        let mut run = 0;
        for slot in 0..SLOTS {
            if self.used(slot) {
                run = 0;
            } else {
                run += 1;
                if run == need {
                    return Some(slot + 1 - need);
                }
            }
        }
        None
    }

    pub fn insert(&mut self, slot: usize, hash: u32, ino: u32, kind: u8, name: &[u8]) {
        let span = slots_for(name.len());
        if slot + span > SLOTS || name.len() > bento_runtime::fs::NAME_MAX {
            return;
        }
        if let Some(d) = self.dentries.get_mut(slot) {
            *d = RawDentry {
                hash: hash.into(),
                ino: ino.into(),
                name_len: (name.len() as u16).into(),
                kind,
            };
        }
        let names = self.names.as_mut_bytes();
        names[slot * SLOT_LEN..(slot + span) * SLOT_LEN].fill(0);
        names[slot * SLOT_LEN..slot * SLOT_LEN + name.len()].copy_from_slice(name);
        for s in slot..slot + span {
            self.set_used(s, true);
        }
    }

    /// Repoint an entry at another inode (rename over an existing name).
    pub fn set_target(&mut self, slot: usize, ino: u32, kind: u8) {
        if let Some(d) = self.dentries.get_mut(slot) {
            d.ino = ino.into();
            d.kind = kind;
        }
    }

    pub fn remove(&mut self, slot: usize) {
        let span = self
            .entry(slot)
            .map(|e| slots_for(e.name.len()))
            .unwrap_or(1);
        for s in slot..(slot + span).min(SLOTS) {
            self.set_used(s, false);
        }
        if let Some(d) = self.dentries.get_mut(slot) {
            *d = RawDentry {
                hash: 0.into(),
                ino: 0.into(),
                name_len: 0.into(),
                kind: 0,
            };
        }
    }

    pub fn seal(&mut self, seed: u32) -> &[u8; BLOCK_SIZE] {
        let bytes: &mut [u8; BLOCK_SIZE] = zerocopy::transmute_mut!(self);
        csum::seal(seed, MAGIC_DIR, bytes);
        bytes
    }

    /// Check a block read from disk: checksum, owner, and every used slot part of a well-formed
    /// entry, so later walks cannot go astray.
    pub fn verify(block: &[u8; BLOCK_SIZE], seed: u32, addr: u64, dir: u32) -> Result<()> {
        csum::verify(seed, MAGIC_DIR, block, "directory block (checksum)", addr)?;
        let d: &DirBlock = zerocopy::transmute_ref!(block);
        if d.ino.get() != dir {
            return Err(Error::corrupt("directory block (wrong directory)", addr));
        }
        let mut slot = 0;
        while slot < SLOTS {
            if d.used(slot) {
                let e = d
                    .entry(slot)
                    .ok_or(Error::corrupt("directory entry", addr))?;
                let span = slots_for(e.name.len());
                if (slot..slot + span).any(|s| !d.used(s))
                    || e.ino == 0
                    || e.name.contains(&b'/')
                    || e.name.contains(&0)
                {
                    return Err(Error::corrupt("directory entry", addr));
                }
                slot += span;
            } else {
                slot += 1;
            }
        }
        Ok(())
    }
}

/// The directory name hash (format.md, Directories).
pub fn name_hash(seed: &[u8; 16], name: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in seed.iter().chain(name) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h ^ (h >> 32)) as u32
}

pub fn buckets(level: u32) -> u32 {
    1 << level.min(20)
}

pub fn bucket_blocks(level: u32) -> u32 {
    if level < 16 { 2 } else { 4 }
}

/// First file block of `level`.
pub fn level_start(level: u32) -> u64 {
    (0..level.min(MAX_DEPTH))
        .map(|l| u64::from(buckets(l)) * u64::from(bucket_blocks(l)))
        .sum()
}

/// The file blocks a name with `hash` may occupy at `level`.
pub fn bucket_range(level: u32, hash: u32) -> core::ops::Range<u64> {
    let b = u64::from(hash % buckets(level));
    let n = u64::from(bucket_blocks(level));
    let start = level_start(level) + b * n;
    start..start + n
}

/// The readdir cookie of the position right after `slot` of directory block `block`.
pub fn cookie_after(block: u64, slot: usize, span: usize) -> u64 {
    FIRST_COOKIE + block * SLOTS as u64 + (slot + span) as u64
}

/// Split a cookie (>= FIRST_COOKIE) into a block and a slot.
pub fn cookie_position(cookie: u64) -> (u64, usize) {
    let p = cookie - FIRST_COOKIE;
    (p / SLOTS as u64, (p % SLOTS as u64) as usize)
}

// ---- directory operations on a mounted volume ---------------------------------------------

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::fs::{DirFiller, FileType};
use bento_runtime::ks::block::BlockDevice;
use zerocopy::FromZeros;

use crate::fs::Volume;
use crate::layout::{NEW_ADDR, NULL_ADDR};

/// Directory blocks in memory, keyed by (directory, file block). Changes wait here for the next
/// checkpoint, so creating many names in one block writes it once.
pub struct DirCache {
    blocks: BTreeMap<(u32, u64), Box<DirBlock>>,
    dirty: BTreeSet<(u32, u64)>,
    capacity: usize,
}

impl DirCache {
    pub fn new(capacity: usize) -> DirCache {
        DirCache {
            blocks: BTreeMap::new(),
            dirty: BTreeSet::new(),
            capacity,
        }
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    pub fn take_dirty(&mut self) -> Vec<(u32, u64)> {
        core::mem::take(&mut self.dirty).into_iter().collect()
    }

    pub fn get(&self, dir: u32, idx: u64) -> Option<&DirBlock> {
        self.blocks.get(&(dir, idx)).map(|b| &**b)
    }

    fn insert(&mut self, dir: u32, idx: u64, block: Box<DirBlock>, dirty: bool) {
        if self.blocks.len() >= self.capacity {
            let dirty_set = &self.dirty;
            let mut excess = self.blocks.len() - self.capacity / 2;
            self.blocks.retain(|k, _| {
                if excess > 0 && !dirty_set.contains(k) {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
        self.blocks.insert((dir, idx), block);
        if dirty {
            self.dirty.insert((dir, idx));
        }
    }

    fn get_mut(&mut self, dir: u32, idx: u64) -> Option<&mut DirBlock> {
        let b = self.blocks.get_mut(&(dir, idx))?;
        self.dirty.insert((dir, idx));
        Some(&mut **b)
    }

    fn remove(&mut self, dir: u32, idx: u64) {
        self.blocks.remove(&(dir, idx));
        self.dirty.remove(&(dir, idx));
    }

    /// Drop every block of a directory that is going away.
    pub fn forget_dir(&mut self, dir: u32) {
        let keys: Vec<(u32, u64)> = self
            .blocks
            .range((dir, 0)..=(dir, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.blocks.remove(&k);
            self.dirty.remove(&k);
        }
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
            DirBlock::verify(bytes, self.seed, u64::from(addr), dir)?;
            self.dirs.insert(dir, idx, b, false);
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
        for level in 0..(depth + 1).min(MAX_DEPTH) {
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
                    i.dir_depth = (depth + 1).into();
                    i.size = (level_start(depth + 1) * BLOCK_SIZE as u64).into();
                }
                return Ok(());
            }
        }
        Err(Errno::ENOSPC.into())
    }

    /// Start an empty directory block; its space is reserved now and written at checkpoint.
    fn new_dir_block(&mut self, dir: u32, idx: u64) -> Result<()> {
        let (holder, ofs) = self
            .holder(dir, idx, true)?
            .ok_or(Error::Errno(Errno::EIO))?;
        self.reserve(1)?;
        self.set_node_addr(holder, ofs, NEW_ADDR)?;
        let i = self.inode_mut(dir)?;
        i.blocks = (i.blocks.get() + 1).into();
        let mut b = DirBlock::new_box_zeroed().map_err(|_| Error::Errno(Errno::ENOMEM))?;
        b.ino = dir.into();
        self.dirs.insert(dir, idx, b, true);
        Ok(())
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
            self.free_blocks(dir, f.block, f.block + 1)?;
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
        for (dir, idx) in self.dirs.take_dirty() {
            let Some(b) = self.dirs.blocks.get_mut(&(dir, idx)) else {
                continue;
            };
            buf.copy_from_slice(b.seal(self.seed));
            self.write_block(dir, idx, &buf)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "dir_tests.rs"]
mod tests;
