//! Checkpoint packs: the header (the commit record), and the orphan blocks of the body. The
//! body's other blocks are the NAT and SUT copy bitmaps and the summaries of the active
//! segments (`tables`, `summary`).

use static_assertions::const_assert_eq;
use zerocopy::little_endian::{I64, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::header::{self as csum, BlockHeader, MAGIC_CHECKPOINT, MAGIC_ORPHAN};
use super::layout::{BLOCK_SIZE, Layout, MAX_LOGS, ORPHANS_PER_BLOCK, SEG_BLOCKS};
use crate::error::{Error, Result};

/// Written by a clean unmount.
pub const CP_CLEAN: u32 = 1;
/// `segno` of an unused log slot.
pub const NO_SEGMENT: u32 = u32::MAX;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct RawLogHead {
    pub segno: U32,
    pub next_off: U32,
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawCpHeader {
    pub header: BlockHeader,
    pub seq: U64,
    pub body_blocks: U32,
    pub body_crc: U32,
    pub flags: U32,
    pub nat_bitmap_blocks: U32,
    pub sut_bitmap_blocks: U32,
    pub summary_blocks: U32,
    pub orphan_blocks: U32,
    pub nat_written: U32,
    pub valid_blocks: U64,
    pub valid_nodes: U32,
    pub valid_inodes: U32,
    pub free_segments: U32,
    pub next_free_nid: U32,
    pub next_generation: U64,
    pub time: I64,
    pub logs: [RawLogHead; MAX_LOGS],
    pub _reserved: [u8; 3944],
}
const_assert_eq!(core::mem::size_of::<RawCpHeader>(), BLOCK_SIZE);

/// Where a log was writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHead {
    pub segno: u32,
    pub next_off: u32,
}

impl RawCpHeader {
    /// Check the header of pack `pack`, read from `start`: checksum, body areas sized for the
    /// layout, sequence parity, and the active logs inside the main area. Returns the heads
    /// of the active logs.
    pub fn verify(
        &self,
        seed: u32,
        layout: &Layout,
        pack: u32,
        start: u64,
    ) -> Result<([LogHead; MAX_LOGS], usize)> {
        let bytes: &[u8; BLOCK_SIZE] = zerocopy::transmute_ref!(self);
        csum::verify(seed, MAGIC_CHECKPOINT, bytes, "checkpoint header", start)?;
        let bad = |what| Error::corrupt(what, start);
        let l = layout;
        let (nbm, sbm) = (self.nat_bitmap_blocks.get(), self.sut_bitmap_blocks.get());
        let (nsum, norph) = (self.summary_blocks.get(), self.orphan_blocks.get());
        if nbm != l.nat_bitmap_blocks()
            || sbm != l.sut_bitmap_blocks()
            || nsum != l.log_count
            || norph > l.orphan_blocks
        {
            return Err(bad("checkpoint (area sizes)"));
        }
        let body_blocks = self.body_blocks.get();
        let sum = nbm
            .checked_add(sbm)
            .and_then(|n| n.checked_add(nsum))
            .and_then(|n| n.checked_add(norph));
        if Some(body_blocks) != sum || body_blocks >= l.cp_blocks {
            return Err(bad("checkpoint (body size)"));
        }
        if self.seq.get() == 0 || u64::from(pack) != self.seq.get() % 2 {
            return Err(bad("checkpoint (sequence)"));
        }
        let mut heads = [LogHead {
            segno: NO_SEGMENT,
            next_off: 0,
        }; MAX_LOGS];
        let n = (l.log_count as usize).min(MAX_LOGS);
        for (i, (h, out)) in self.logs.iter().zip(heads.iter_mut()).take(n).enumerate() {
            let (segno, next_off) = (h.segno.get(), h.next_off.get());
            if segno >= l.main_segments || next_off > SEG_BLOCKS {
                return Err(bad("checkpoint (log position)"));
            }
            if self.logs.iter().take(i).any(|o| o.segno.get() == segno) {
                return Err(bad("checkpoint (two logs in one segment)"));
            }
            *out = LogHead { segno, next_off };
        }
        Ok((heads, n))
    }
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawOrphanBlock {
    pub header: BlockHeader,
    pub count: U32,
    pub _reserved: U32,
    pub inos: [U32; ORPHANS_PER_BLOCK as usize],
}
const_assert_eq!(core::mem::size_of::<RawOrphanBlock>(), BLOCK_SIZE);

impl RawOrphanBlock {
    /// Decode an orphan block read from `addr`: its inode numbers, each a valid nid.
    pub fn decode<'a>(
        block: &'a [u8; BLOCK_SIZE],
        seed: u32,
        layout: &Layout,
        addr: u64,
    ) -> Result<&'a [U32]> {
        csum::verify(seed, MAGIC_ORPHAN, block, "orphan block", addr)?;
        let raw: &RawOrphanBlock = zerocopy::transmute_ref!(block);
        let inos = raw
            .inos
            .get(..raw.count.get() as usize)
            .ok_or(Error::corrupt("orphan block (count)", addr))?;
        if inos
            .iter()
            .any(|i| i.get() == 0 || i.get() >= layout.max_nid)
        {
            return Err(Error::corrupt("orphan block (inode number)", addr));
        }
        Ok(inos)
    }
}
