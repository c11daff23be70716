//! Geometry: block and segment sizes, and where each area lies (`docs/format.md`, Layout).

use crate::error::{Error, Result};

pub const BLOCK_SIZE: usize = 4096;
pub const BLOCK_SIZE_LOG2: u32 = 12;
pub const SEG_BLOCKS_LOG2: u32 = 9;
/// Blocks per segment.
pub const SEG_BLOCKS: u32 = 1 << SEG_BLOCKS_LOG2;

/// A hole: no block.
pub const NULL_ADDR: u32 = 0;
/// Reserved by fallocate, never written: reads as zeros, counts as used.
pub const NEW_ADDR: u32 = u32::MAX;

/// Most active logs a checkpoint can describe.
pub const MAX_LOGS: usize = 8;
/// Logs in format 1.0.
pub const LOG_COUNT: u32 = 2;
/// Orphan blocks per checkpoint pack.
pub const ORPHAN_BLOCKS: u32 = 16;

pub const SUT_ENTRIES_PER_BLOCK: u32 = 53;
pub const NAT_ENTRIES_PER_BLOCK: u32 = 1020;
pub const ORPHANS_PER_BLOCK: u32 = 1020;
const BITMAP_BITS_PER_BLOCK: u32 = (BLOCK_SIZE * 8) as u32;

/// Segments the cleaner keeps in reserve, at least.
pub const MIN_RESERVED_SEGMENTS: u32 = 8;
/// Smallest main area mkfs accepts: the reserve plus room to be useful.
pub const MIN_MAIN_SEGMENTS: u32 = MIN_RESERVED_SEGMENTS + 16;

/// Where everything is. Built by mkfs from the device size, read back from the superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub total_blocks: u64,
    pub cp_start: u32,
    pub cp_blocks: u32,
    pub sut_start: u32,
    pub sut_blocks: u32,
    pub nat_start: u32,
    pub nat_blocks: u32,
    pub ssa_start: u32,
    pub main_start: u32,
    pub main_segments: u32,
    pub reserved_segments: u32,
    pub max_nid: u32,
    pub orphan_blocks: u32,
    pub log_count: u32,
}

/// The constants as u64, for the u64 arithmetic of `with_segments`.
const SEG: u64 = SEG_BLOCKS as u64;
const SUT_PER_BLOCK: u64 = SUT_ENTRIES_PER_BLOCK as u64;
const NAT_PER_BLOCK: u64 = NAT_ENTRIES_PER_BLOCK as u64;
const BITMAP_BITS: u64 = BITMAP_BITS_PER_BLOCK as u64;
/// Blocks of a checkpoint pack besides its bitmaps: header, log summaries, orphans.
const CP_FIXED_BLOCKS: u64 = 1 + MAX_LOGS as u64 + ORPHAN_BLOCKS as u64;

impl Layout {
    /// Lay out a file system over `device_blocks` blocks. Devices past 16 TiB use the first
    /// 16 TiB (block addresses are 32 bits).
    pub fn compute(device_blocks: u64) -> Result<Layout> {
        const MAX_BLOCKS: u64 = NEW_ADDR as u64 - 1;
        let total = device_blocks.min(MAX_BLOCKS);
        // The metadata areas grow with the main area, so iterate to the fixed point.
        let too_big = || Error::Incompatible("device too large");
        let mut segments = total / SEG;
        for _ in 0..16 {
            let l = Self::with_segments(total, segments as u32).ok_or_else(too_big)?;
            let fit = total.saturating_sub(u64::from(l.main_start)) / SEG;
            if fit >= segments {
                return l.check_minimum();
            }
            segments = fit;
        }
        Layout::with_segments(total, segments as u32)
            .ok_or_else(too_big)?
            .check_minimum()
    }

    /// Device size, in bytes, below which mkfs refuses.
    pub fn minimum_device_bytes() -> u64 {
        const MIN_MAIN_BLOCKS: u64 = MIN_MAIN_SEGMENTS as u64 * SEG;
        Self::with_segments(u64::MAX, MIN_MAIN_SEGMENTS)
            .and_then(|l| u64::from(l.main_start).checked_add(MIN_MAIN_BLOCKS))
            .and_then(|blocks| blocks.checked_mul(BLOCK_SIZE as u64))
            .unwrap_or(u64::MAX)
    }

    fn check_minimum(self) -> Result<Layout> {
        if self.main_segments < MIN_MAIN_SEGMENTS {
            return Err(Error::Incompatible("device too small"));
        }
        Ok(self)
    }

    /// The layout of `main_segments` segments (`None` only if the areas would not fit in u64,
    /// which a u32 segment count cannot make happen).
    fn with_segments(total_blocks: u64, main_segments: u32) -> Option<Layout> {
        const MAX_NID: u64 = u32::MAX as u64 - 1;
        let segs = u64::from(main_segments);
        let sut_blocks = segs.div_ceil(SUT_PER_BLOCK).max(1);
        let nat_entries = segs.checked_mul(SEG)?.clamp(2, MAX_NID);
        let nat_blocks = nat_entries.div_ceil(NAT_PER_BLOCK);
        let max_nid = nat_blocks.checked_mul(NAT_PER_BLOCK)?.min(MAX_NID);
        let cp_blocks = CP_FIXED_BLOCKS
            .checked_add(nat_blocks.div_ceil(BITMAP_BITS))?
            .checked_add(sut_blocks.div_ceil(BITMAP_BITS))?;
        // Each table area holds two copies of every block.
        let cp_start = 2u64;
        let sut_start = cp_start.checked_add(cp_blocks.checked_mul(2)?)?;
        let nat_start = sut_start.checked_add(sut_blocks.checked_mul(2)?)?;
        let ssa_start = nat_start.checked_add(nat_blocks.checked_mul(2)?)?;
        let meta_end = ssa_start.checked_add(segs)?;
        let main_start = meta_end.div_ceil(SEG).checked_mul(SEG)?;
        let reserved = (main_segments / 20)
            .min((main_segments / 100).saturating_add(1024))
            .max(MIN_RESERVED_SEGMENTS);
        Some(Layout {
            total_blocks,
            cp_start: cp_start as u32,
            cp_blocks: cp_blocks as u32,
            sut_start: sut_start as u32,
            sut_blocks: sut_blocks as u32,
            nat_start: nat_start as u32,
            nat_blocks: nat_blocks as u32,
            ssa_start: ssa_start as u32,
            main_start: main_start.min(u64::from(u32::MAX)) as u32,
            main_segments,
            reserved_segments: reserved,
            max_nid: max_nid as u32,
            orphan_blocks: ORPHAN_BLOCKS,
            log_count: LOG_COUNT,
        })
    }

    /// Check a layout read from disk: areas in order, inside the device, sized for the segments.
    pub fn validate(&self, device_blocks: u64) -> core::result::Result<(), &'static str> {
        let expect = Self::with_segments(self.total_blocks, self.main_segments)
            .ok_or("areas are not where the segment count puts them")?;
        if self.total_blocks > device_blocks {
            return Err("file system is larger than the device");
        }
        if self.log_count == 0 || self.log_count as usize > MAX_LOGS {
            return Err("bad log count");
        }
        if self.cp_start != 2
            || self.cp_blocks != expect.cp_blocks
            || self.sut_start != expect.sut_start
            || self.sut_blocks != expect.sut_blocks
            || self.nat_start != expect.nat_start
            || self.nat_blocks != expect.nat_blocks
            || self.ssa_start != expect.ssa_start
            || self.main_start != expect.main_start
            || self.max_nid != expect.max_nid
            || self.orphan_blocks != ORPHAN_BLOCKS
        {
            return Err("areas are not where the segment count puts them");
        }
        let end = u64::from(self.main_segments)
            .checked_mul(SEG)
            .and_then(|n| n.checked_add(u64::from(self.main_start)))
            .ok_or("main area extends past the end of the file system")?;
        if end > self.total_blocks {
            return Err("main area extends past the end of the file system");
        }
        // Block addresses are 32 bits (compute() caps there): past it they would wrap.
        if end >= u64::from(NEW_ADDR) {
            return Err("main area extends past the 32-bit block addresses");
        }
        if self.main_segments < MIN_MAIN_SEGMENTS
            || self.reserved_segments < MIN_RESERVED_SEGMENTS
            || self.reserved_segments >= self.main_segments
        {
            return Err("bad segment counts");
        }
        Ok(())
    }

    pub fn nat_bitmap_blocks(&self) -> u32 {
        self.nat_blocks.div_ceil(BITMAP_BITS_PER_BLOCK)
    }

    pub fn sut_bitmap_blocks(&self) -> u32 {
        self.sut_blocks.div_ceil(BITMAP_BITS_PER_BLOCK)
    }
}

// The block addresses of the metadata areas: u64 sums of u32 terms and small constants (at most
// 4 * 2^32), which cannot overflow.
#[allow(clippy::arithmetic_side_effects)]
impl Layout {
    /// First block of checkpoint pack 0 or 1.
    pub fn cp_pack_start(&self, pack: u32) -> u64 {
        u64::from(self.cp_start) + u64::from(pack & 1) * u64::from(self.cp_blocks)
    }

    pub fn sut_copy_addr(&self, block: u32, copy: bool) -> u64 {
        u64::from(self.sut_start) + 2 * u64::from(block) + u64::from(copy)
    }

    pub fn nat_copy_addr(&self, block: u32, copy: bool) -> u64 {
        u64::from(self.nat_start) + 2 * u64::from(block) + u64::from(copy)
    }

    pub fn ssa_addr(&self, segno: u32) -> u64 {
        u64::from(self.ssa_start) + u64::from(segno)
    }
}

impl Layout {
    /// The address of block `off` of main-area segment `segno`; `None` outside the main area
    /// (validate() keeps the whole main area below `NEW_ADDR`).
    pub fn block_addr(&self, segno: u32, off: u32) -> Option<u32> {
        if segno >= self.main_segments || off >= SEG_BLOCKS {
            return None;
        }
        self.main_start
            .checked_add(segno.checked_mul(SEG_BLOCKS)?)?
            .checked_add(off)
    }

    /// The first block of main-area segment `segno`; `None` outside the main area.
    pub fn segment_start(&self, segno: u32) -> Option<u32> {
        self.block_addr(segno, 0)
    }

    /// The segment and offset of a main-area address.
    pub fn locate(&self, addr: u32) -> Option<(u32, u32)> {
        let rel = addr.checked_sub(self.main_start)?;
        let segno = rel >> SEG_BLOCKS_LOG2;
        (segno < self.main_segments).then_some((segno, rel & (SEG_BLOCKS - 1)))
    }

    /// Whether a block address read from disk may be followed: a hole, a reservation, or a
    /// block of the main area.
    pub fn addr_ok(&self, addr: u32) -> bool {
        addr == NULL_ADDR || addr == NEW_ADDR || self.locate(addr).is_some()
    }

    /// Whether a node id read from disk may be followed: none (0) or inside the NAT.
    pub fn nid_ok(&self, nid: u32) -> bool {
        nid < self.max_nid
    }

    /// Blocks users may fill.
    pub fn user_capacity(&self) -> u64 {
        // validate() keeps the reserve below the segment count.
        u64::from(self.main_segments.saturating_sub(self.reserved_segments)) * SEG
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
