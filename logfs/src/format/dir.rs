//! Directory blocks, the name hash and the hash levels: a directory is a multi-level hash table
//! stored as its file data (the F2FS design). Level *l* has `buckets(l)` buckets of
//! `bucket_blocks(l)` blocks; a name lives in bucket `hash % buckets(l)` of some level.

use static_assertions::const_assert_eq;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use bitvec::prelude::{BitSlice, Lsb0};
use bitvec::view::BitView;

use super::header::{self as csum, BlockHeader, MAGIC_DIR};
use super::layout::{BLOCK_SIZE, Layout};
use crate::error::{Error, Result};

/// Entry slots per directory block.
pub const SLOTS: usize = 213;
/// Name bytes per slot.
pub const SLOT_LEN: usize = 8;
/// Most hash levels a directory may have.
pub const MAX_DEPTH: u32 = 32;

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
    pub header: BlockHeader,
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
    /// The slot bitmap (bits past `SLOTS` are never set).
    pub fn slot_map(&self) -> &BitSlice<u8, Lsb0> {
        let bits = self.bitmap.view_bits::<Lsb0>();
        bits.get(..SLOTS).unwrap_or(bits)
    }

    pub fn used(&self, slot: usize) -> bool {
        self.slot_map().get(slot).is_some_and(|b| *b)
    }

    fn set_used(&mut self, slots: core::ops::Range<usize>, used: bool) {
        if let Some(bits) = self.bitmap.view_bits_mut::<Lsb0>().get_mut(slots) {
            bits.fill(used);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slot_map().not_any()
    }

    /// The entry starting at `slot`, if one does and it is well formed.
    pub fn entry(&self, slot: usize) -> Option<DirEntryRef<'_>> {
        if !self.used(slot) {
            return None;
        }
        let d = self.dentries.get(slot)?;
        let len = usize::from(d.name_len.get());
        if len == 0
            || len > bento_runtime::fs::NAME_MAX
            || slot.checked_add(slots_for(len))? > SLOTS
        {
            return None;
        }
        let start = slot.checked_mul(SLOT_LEN)?;
        let name = self.names.as_bytes().get(start..start.checked_add(len)?)?;
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
                // The cursor only moves towards SLOTS, which ends the walk.
                if let Some(e) = self.entry(slot) {
                    slot = slot.saturating_add(slots_for(e.name.len()));
                    return Some(e);
                }
                slot = slot.saturating_add(1);
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
        // First slot of the current run of free slots.
        let mut free_from = 0;
        for slot in 0..SLOTS {
            let end = slot.checked_add(1)?;
            if self.used(slot) {
                free_from = end;
            } else if end.checked_sub(free_from)? == need {
                return Some(free_from);
            }
        }
        None
    }

    pub fn insert(&mut self, slot: usize, hash: u32, ino: u32, kind: u8, name: &[u8]) {
        let span = slots_for(name.len());
        let Some(end) = slot.checked_add(span).filter(|&e| e <= SLOTS) else {
            return;
        };
        if name.len() > bento_runtime::fs::NAME_MAX {
            return;
        }
        // Inside the names array: end <= SLOTS.
        let (Some(first), Some(last)) = (slot.checked_mul(SLOT_LEN), end.checked_mul(SLOT_LEN))
        else {
            return;
        };
        if let Some(d) = self.dentries.get_mut(slot) {
            *d = RawDentry {
                hash: hash.into(),
                ino: ino.into(),
                name_len: (name.len() as u16).into(),
                kind,
            };
        }
        if let Some(dst) = self.names.as_mut_bytes().get_mut(first..last) {
            dst.fill(0);
            if let Some(dst) = dst.get_mut(..name.len()) {
                dst.copy_from_slice(name);
            }
        }
        self.set_used(slot..end, true);
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
        self.set_used(slot..slot.saturating_add(span).min(SLOTS), false);
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
    /// entry, so later walks cannot go astray. (fsck reports bad entry targets itself.)
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
                // entry() checked that the span ends inside the block.
                let end = slot.saturating_add(span);
                if (slot..end).any(|s| !d.used(s))
                    || e.ino == 0
                    || e.name.contains(&b'/')
                    || e.name.contains(&0)
                {
                    return Err(Error::corrupt("directory entry", addr));
                }
                slot = end;
            } else {
                slot = slot.saturating_add(1);
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

/// First file block of each level, and past the last one (computed at compile time).
// Evaluated by the compiler: an index out of range would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const LEVEL_STARTS: [u64; MAX_DEPTH as usize + 1] = {
    let mut starts = [0u64; MAX_DEPTH as usize + 1];
    let mut l = 0;
    while l < MAX_DEPTH as usize {
        let size = (1u64 << if l < 20 { l } else { 20 }) * if l < 16 { 2 } else { 4 };
        starts[l + 1] = starts[l] + size;
        l += 1;
    }
    starts
};

/// First file block of `level` (levels past `MAX_DEPTH` start where the last one ends).
pub fn level_start(level: u32) -> u64 {
    let l = level.min(MAX_DEPTH) as usize;
    LEVEL_STARTS.get(l).copied().unwrap_or(0)
}

/// The file blocks a name with `hash` may occupy at `level`.
pub fn bucket_range(level: u32, hash: u32) -> core::ops::Range<u64> {
    // buckets() is never 0; the block numbers stay below 2^27 (LEVEL_STARTS[MAX_DEPTH]).
    let b = u64::from(hash.checked_rem(buckets(level)).unwrap_or(0));
    let n = u64::from(bucket_blocks(level));
    let start = level_start(level).saturating_add(b.saturating_mul(n));
    start..start.saturating_add(n)
}

/// Check a directory block read for mounting: [`DirBlock::verify`], and every entry names a
/// node id inside the NAT.
pub fn decode_dir_block(
    block: &[u8; BLOCK_SIZE],
    seed: u32,
    addr: u64,
    dir: u32,
    layout: &Layout,
) -> Result<()> {
    DirBlock::verify(block, seed, addr, dir)?;
    let d: &DirBlock = zerocopy::transmute_ref!(block);
    if d.entries_from(0).any(|e| !layout.nid_ok(e.ino)) {
        return Err(Error::corrupt(
            "directory entry (node id out of range)",
            addr,
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "dir_tests.rs"]
mod tests;
