//! The segment usage table (SUT): for every main segment, how many blocks are live, which ones,
//! which log wrote it and when. Kept whole in memory; a checkpoint writes the changed table
//! blocks to their shadow copies.

use alloc::vec::Vec;

use zerocopy::{FromZeros, IntoBytes};

use bento_runtime::ks::block::{BlockDevice, WriteFlags};

use crate::error::{Error, Result, invariant, io};
use crate::format::header::{self as csum, MAGIC_SUT};
use crate::format::layout::{BLOCK_SIZE, Layout, SEG_BLOCKS, SUT_ENTRIES_PER_BLOCK};
use crate::format::tables::{LOG_NONE, RawSutBlock, SegMap, copy_bit, set_copy_bits};

/// Where a segment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegState {
    /// Empty as of the last checkpoint: may be written.
    Free,
    /// Holds live blocks (or did at the last checkpoint).
    InUse,
    /// A log is filling it.
    Active,
    /// Emptied since the last checkpoint, which may still reference its blocks: free after the
    /// next checkpoint.
    Prefree,
}

#[derive(Clone, Copy)]
pub struct SegEntry {
    pub valid: u16,
    pub log: u8,
    pub state: SegState,
    pub mtime: i64,
    pub map: SegMap,
}

impl SegEntry {
    const FREE: SegEntry = SegEntry {
        valid: 0,
        log: LOG_NONE,
        state: SegState::Free,
        mtime: 0,
        map: SegMap::ZERO,
    };

    pub fn is_valid(&self, off: u32) -> bool {
        self.map.get(off as usize).is_some_and(|b| *b)
    }
}

pub struct SegmentTable {
    entries: Vec<SegEntry>,
    /// Which copy of each SUT block the last checkpoint uses.
    copy: Vec<bool>,
    dirty: Vec<bool>,
    free: u32,
    /// Segments that became prefree since the last checkpoint (a count: the states are in
    /// `entries`, so marking one allocates nothing).
    prefree: u32,
    cursor: u32,
}

impl SegmentTable {
    /// A table where every segment is free (mkfs).
    pub fn new_empty(layout: &Layout) -> Result<SegmentTable> {
        let n = layout.main_segments as usize;
        let entries = crate::mem::filled(SegEntry::FREE, n)?;
        Ok(SegmentTable {
            entries,
            copy: crate::mem::filled(false, layout.sut_blocks as usize)?,
            dirty: crate::mem::filled(true, layout.sut_blocks as usize)?,
            free: layout.main_segments,
            prefree: 0,
            cursor: 0,
        })
    }

    /// Load the table a checkpoint describes. `copy_bits` is its SUT bitmap.
    pub fn load<D: BlockDevice + ?Sized>(
        dev: &D,
        layout: &Layout,
        seed: u32,
        copy_bits: &[u8],
    ) -> Result<SegmentTable> {
        let mut t = SegmentTable::new_empty(layout)?;
        t.dirty.fill(false);
        let mut raw = RawSutBlock::new_box_zeroed()
            .map_err(|_| Error::Errno(bento_runtime::Errno::ENOMEM))?;
        for b in 0..layout.sut_blocks {
            let copy = copy_bit(copy_bits, b as usize);
            *t.copy.get_mut(b as usize).ok_or_else(invariant)? = copy;
            let addr = layout.sut_copy_addr(b, copy);
            dev.read_blocks(addr, raw.as_mut_bytes()).map_err(io)?;
            let bytes: &[u8; BLOCK_SIZE] = zerocopy::transmute_ref!(&*raw);
            RawSutBlock::verify(bytes, seed, layout, b, addr)?;
            // This table block's entries; the last block is partly past the main area.
            let first = (b as usize).saturating_mul(SUT_ENTRIES_PER_BLOCK as usize);
            let slots = t.entries.get_mut(first..).unwrap_or_default();
            for (slot, e) in slots.iter_mut().zip(raw.entries.iter()) {
                let valid = e.valid.get();
                *slot = SegEntry {
                    valid,
                    log: e.log,
                    state: if valid == 0 {
                        SegState::Free
                    } else {
                        SegState::InUse
                    },
                    mtime: e.mtime.get(),
                    map: e.map(),
                };
            }
        }
        t.free = t
            .entries
            .iter()
            .filter(|e| e.state == SegState::Free)
            .count() as u32;
        Ok(t)
    }

    pub fn len(&self) -> u32 {
        self.entries.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, segno: u32) -> Option<&SegEntry> {
        self.entries.get(segno as usize)
    }

    pub fn free_segments(&self) -> u32 {
        self.free
    }

    pub fn prefree_segments(&self) -> u32 {
        self.prefree
    }

    fn touch(&mut self, segno: u32) {
        if let Some(d) = self.dirty.get_mut((segno / SUT_ENTRIES_PER_BLOCK) as usize) {
            *d = true;
        }
    }

    /// Give a log a free segment, preferring the first free one at or after `hint` so logs
    /// write the device front to back.
    pub fn allocate(&mut self, log: u8, hint: u32) -> Option<u32> {
        let n = self.len();
        if self.free == 0 || n == 0 {
            return None;
        }
        let start = if hint < n { hint } else { self.cursor };
        for segno in (start..n).chain(0..start) {
            let Some(e) = self.entries.get_mut(segno as usize) else {
                continue;
            };
            if e.state == SegState::Free {
                e.state = SegState::Active;
                e.log = log;
                self.free = self.free.saturating_sub(1);
                // segno < n: the sum does not overflow, and n is not 0.
                self.cursor = segno.saturating_add(1).checked_rem(n).unwrap_or(0);
                self.touch(segno);
                return Some(segno);
            }
        }
        None
    }

    /// Mark a segment a log resumes after mount.
    pub fn set_active(&mut self, segno: u32, log: u8) -> Result<()> {
        let e = self
            .entries
            .get_mut(segno as usize)
            .ok_or(Error::corrupt("checkpoint log segment", 0))?;
        if e.state == SegState::Free {
            self.free = self.free.saturating_sub(1);
        }
        if e.log != LOG_NONE && e.log != log {
            return Err(Error::corrupt("checkpoint log segment type", 0));
        }
        e.state = SegState::Active;
        e.log = log;
        Ok(())
    }

    /// A log left this segment.
    pub fn retire(&mut self, segno: u32) {
        if let Some(e) = self.entries.get_mut(segno as usize)
            && e.state == SegState::Active
        {
            if e.valid == 0 {
                e.state = SegState::Prefree;
                self.prefree = self.prefree.saturating_add(1);
            } else {
                e.state = SegState::InUse;
            }
        }
    }

    /// Keep a free segment from being handed out until the next checkpoint commits (recovery:
    /// it holds fsync records that only that checkpoint will make unnecessary).
    pub fn hold(&mut self, segno: u32) {
        if let Some(e) = self.entries.get_mut(segno as usize)
            && e.state == SegState::Free
        {
            e.state = SegState::Prefree;
            self.free = self.free.saturating_sub(1);
            self.prefree = self.prefree.saturating_add(1);
        }
    }

    /// A block was written at `(segno, off)`.
    pub fn set_valid(&mut self, segno: u32, off: u32, now: i64) {
        if let Some(e) = self.entries.get_mut(segno as usize) {
            if let Some(mut bit) = e.map.get_mut(off as usize)
                && !*bit
            {
                *bit = true;
                // Counts the map's set bits: at most SEG_BLOCKS.
                e.valid = e.valid.saturating_add(1);
            }
            e.mtime = e.mtime.max(now);
            self.touch(segno);
        }
    }

    /// A block written after the last checkpoint, found live by roll-forward recovery: its
    /// segment may have been free at the checkpoint.
    pub fn set_recovered(&mut self, segno: u32, off: u32, log: u8, now: i64) {
        if let Some(e) = self.entries.get_mut(segno as usize)
            && e.state == SegState::Free
        {
            e.state = SegState::InUse;
            e.log = log;
            self.free = self.free.saturating_sub(1);
        }
        self.set_valid(segno, off, now);
    }

    /// The block at `(segno, off)` died. Returns false if it was not live (a corrupt pointer).
    pub fn set_invalid(&mut self, segno: u32, off: u32) -> bool {
        let Some(e) = self.entries.get_mut(segno as usize) else {
            return false;
        };
        match e.map.get_mut(off as usize) {
            Some(mut bit) if *bit => *bit = false,
            _ => return false,
        }
        // The bit was set, so the count of set bits is at least 1 (the SUT check holds on load).
        e.valid = e.valid.saturating_sub(1);
        if e.valid == 0 && e.state == SegState::InUse {
            e.state = SegState::Prefree;
            self.prefree = self.prefree.saturating_add(1);
        }
        self.touch(segno);
        true
    }

    /// The checkpoint committed: emptied segments are free now. Returns them (for discard,
    /// which is advisory: without the memory to list them the list is empty).
    pub fn commit(&mut self) -> Vec<u32> {
        if core::mem::take(&mut self.prefree) == 0 {
            return Vec::new();
        }
        let mut freed = Vec::new();
        let mut listed = true;
        for segno in 0..self.entries.len() as u32 {
            let Some(e) = self.entries.get_mut(segno as usize) else {
                break;
            };
            if e.state == SegState::Prefree && e.valid == 0 {
                e.state = SegState::Free;
                e.log = LOG_NONE;
                self.free = self.free.saturating_add(1);
                self.touch(segno);
                listed = listed && crate::mem::push(&mut freed, segno).is_ok();
            }
        }
        if !listed {
            freed.clear();
        }
        freed
    }

    /// The in-use segment with the fewest live blocks (greedy cleaning), if any is not full.
    pub fn greedy_victim(&self) -> Option<u32> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.state == SegState::InUse && u32::from(e.valid) < SEG_BLOCKS)
            .min_by_key(|(_, e)| e.valid)
            .map(|(i, _)| i as u32)
    }

    pub fn dirty_blocks(&self) -> usize {
        self.dirty.iter().filter(|d| **d).count()
    }

    /// Write every changed table block to its shadow copy and select it in the bitmap.
    pub fn write_dirty<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
    ) -> Result<()> {
        let mut raw = RawSutBlock::new_box_zeroed()
            .map_err(|_| Error::Errno(bento_runtime::Errno::ENOMEM))?;
        let blocks = self.dirty.iter_mut().zip(self.copy.iter_mut());
        for (b, (dirty, copy_of)) in blocks.enumerate() {
            if !*dirty {
                continue;
            }
            raw.as_mut_bytes().fill(0);
            let first = b.saturating_mul(SUT_ENTRIES_PER_BLOCK as usize);
            let entries = self.entries.get(first..).unwrap_or_default();
            for (slot, e) in raw.entries.iter_mut().zip(entries) {
                slot.valid = e.valid.into();
                slot.log = e.log;
                slot.mtime = e.mtime.into();
                slot.valid_map = e.map.into_inner();
            }
            let copy = !*copy_of;
            let bytes: &mut [u8; BLOCK_SIZE] = zerocopy::transmute_mut!(&mut *raw);
            csum::seal(seed, MAGIC_SUT, bytes);
            dev.write_blocks(
                layout.sut_copy_addr(b as u32, copy),
                bytes,
                WriteFlags::NONE,
            )
            .map_err(io)?;
            *copy_of = copy;
            *dirty = false;
        }
        Ok(())
    }

    /// Which copy of each table block is current (for `restore_copies`).
    pub fn copies(&self) -> Result<Vec<bool>> {
        crate::mem::to_vec(&self.copy)
    }

    /// A checkpoint that wrote shadow copies did not commit: the committed copies are current
    /// again, and the blocks written are dirty (written again next time, to the same shadow).
    pub fn restore_copies(&mut self, copies: &[bool]) {
        for ((c, d), &was) in self.copy.iter_mut().zip(self.dirty.iter_mut()).zip(copies) {
            if *c != was {
                *c = was;
                *d = true;
            }
        }
    }

    /// The copy bitmap for the checkpoint body.
    pub fn copy_bitmap(&self, out: &mut [u8]) {
        set_copy_bits(&self.copy, out)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &SegEntry)> {
        self.entries.iter().enumerate().map(|(i, e)| (i as u32, e))
    }
}
