//! The shadow-paged tables: node address table (NAT) blocks and segment usage table (SUT)
//! blocks, and the copy bitmaps of the checkpoint that select the current copy of each.

use bitvec::prelude::Lsb0;
use bitvec::view::BitView;
use static_assertions::const_assert_eq;
use zerocopy::little_endian::{I64, U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::header::{self as csum, BlockHeader, MAGIC_NAT, MAGIC_SUT};
use super::layout::{
    BLOCK_SIZE, Layout, NAT_ENTRIES_PER_BLOCK, NEW_ADDR, SEG_BLOCKS, SUT_ENTRIES_PER_BLOCK,
};
use crate::error::{Error, Result};

/// `log` values of a segment.
pub const LOG_NONE: u8 = 0;
pub const LOG_NODE: u8 = 1;
pub const LOG_DATA: u8 = 2;

/// Bytes of a segment's live-block bitmap.
pub const MAP_BYTES: usize = SEG_BLOCKS as usize / 8;

/// A segment's live blocks, bit `off` for block `off` (little-endian bit order within bytes,
/// which is also the order of the little-endian 64-bit words the format describes).
pub type SegMap = bitvec::array::BitArray<[u8; MAP_BYTES], Lsb0>;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawNatBlock {
    pub header: BlockHeader,
    pub _reserved: [u8; 8],
    pub entries: [U32; NAT_ENTRIES_PER_BLOCK as usize],
}
const_assert_eq!(core::mem::size_of::<RawNatBlock>(), BLOCK_SIZE);

/// Why a NAT entry cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatEntryProblem {
    /// nid 0 is invalid, so its entry must be free.
    NidZero,
    /// `NEW_ADDR`: a node allocated but never written cannot be committed.
    Unwritten,
    OutsideMain,
}

impl NatEntryProblem {
    pub fn what(self) -> &'static str {
        match self {
            NatEntryProblem::NidZero => "node address table (entry of nid 0)",
            NatEntryProblem::Unwritten => "node address table (unwritten node)",
            NatEntryProblem::OutsideMain => "node address table (address outside the main area)",
        }
    }
}

/// Check the NAT entry of `nid`: free, or a main-area address.
pub fn nat_entry_problem(layout: &Layout, nid: u32, addr: u32) -> Option<NatEntryProblem> {
    if addr == 0 {
        None
    } else if nid == 0 {
        Some(NatEntryProblem::NidZero)
    } else if addr == NEW_ADDR {
        Some(NatEntryProblem::Unwritten)
    } else if layout.locate(addr).is_none() {
        Some(NatEntryProblem::OutsideMain)
    } else {
        None
    }
}

impl RawNatBlock {
    /// Check NAT block `index` read from `addr`: checksum, and every entry a main-area address
    /// or free.
    pub fn verify(
        block: &[u8; BLOCK_SIZE],
        seed: u32,
        layout: &Layout,
        index: u32,
        addr: u64,
    ) -> Result<()> {
        csum::verify(seed, MAGIC_NAT, block, "node address table", addr)?;
        let raw = RawNatBlock::ref_from_bytes(block)
            .map_err(|_| Error::corrupt("node address table", addr))?;
        let base = index.saturating_mul(NAT_ENTRIES_PER_BLOCK);
        for (i, e) in raw.entries.iter().enumerate() {
            if let Some(p) = nat_entry_problem(layout, base.saturating_add(i as u32), e.get()) {
                return Err(Error::corrupt(p.what(), addr));
            }
        }
        Ok(())
    }
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct RawSutEntry {
    pub valid: U16,
    pub log: u8,
    pub _reserved: u8,
    pub mtime: I64,
    pub valid_map: [u8; MAP_BYTES],
}
const_assert_eq!(core::mem::size_of::<RawSutEntry>(), 76);

impl RawSutEntry {
    pub fn map(&self) -> SegMap {
        SegMap::new(self.valid_map)
    }

    /// The live-block bitmap as the format's little-endian 64-bit words.
    pub fn words(&self) -> [u64; SEG_BLOCKS as usize / 64] {
        let mut out = [0u64; SEG_BLOCKS as usize / 64];
        for (w, chunk) in out.iter_mut().zip(self.valid_map.chunks_exact(8)) {
            *w = zerocopy::little_endian::U64::read_from_bytes(chunk).map_or(0, |v| v.get());
        }
        out
    }

    /// How the entry is inconsistent, if it is: the count must match the bitmap, the log be
    /// known, and a segment with live blocks belong to a log.
    pub fn problems(&self) -> impl Iterator<Item = SutEntryProblem> {
        let recorded = self.valid.get();
        let counted = self.valid_map.view_bits::<Lsb0>().count_ones() as u32;
        let log = self.log;
        let count = (u32::from(recorded) != counted)
            .then_some(SutEntryProblem::Count { recorded, counted });
        let owner = if log > LOG_DATA {
            Some(SutEntryProblem::UnknownLog { log })
        } else if recorded > 0 && log == LOG_NONE {
            Some(SutEntryProblem::LiveWithoutLog { valid: recorded })
        } else {
            None
        };
        count.into_iter().chain(owner)
    }
}

/// An inconsistent SUT entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SutEntryProblem {
    Count { recorded: u16, counted: u32 },
    UnknownLog { log: u8 },
    LiveWithoutLog { valid: u16 },
}

impl SutEntryProblem {
    pub fn what(self) -> &'static str {
        match self {
            SutEntryProblem::Count { .. } => "segment usage entry (count)",
            SutEntryProblem::UnknownLog { .. } => "segment usage entry (log type)",
            SutEntryProblem::LiveWithoutLog { .. } => {
                "segment usage entry (live blocks without a log)"
            }
        }
    }
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSutBlock {
    pub header: BlockHeader,
    pub _reserved: [u8; 8],
    pub entries: [RawSutEntry; SUT_ENTRIES_PER_BLOCK as usize],
    pub _pad: [u8; 52],
}
const_assert_eq!(core::mem::size_of::<RawSutBlock>(), BLOCK_SIZE);

impl RawSutBlock {
    /// Check SUT block `index` read from `addr`: checksum and the entries of existing segments.
    pub fn verify(
        block: &[u8; BLOCK_SIZE],
        seed: u32,
        layout: &Layout,
        index: u32,
        addr: u64,
    ) -> Result<()> {
        csum::verify(seed, MAGIC_SUT, block, "segment usage table", addr)?;
        let raw = RawSutBlock::ref_from_bytes(block)
            .map_err(|_| Error::corrupt("segment usage table", addr))?;
        let first = index.saturating_mul(SUT_ENTRIES_PER_BLOCK);
        let live = layout.main_segments.saturating_sub(first) as usize;
        match raw
            .entries
            .iter()
            .take(live)
            .find_map(|e| e.problems().next())
        {
            Some(p) => Err(Error::corrupt(p.what(), addr)),
            None => Ok(()),
        }
    }
}

/// A checkpoint copy bitmap: bit `i` selects copy 1 of table block `i` (bit `i % 8` of byte
/// `i / 8`, least significant first). Plain byte arithmetic: a bitvec view of a slice of any
/// length carries a panic path (its length limit) into the kernel build.
pub fn copy_bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & bit_mask(i % 8) != 0)
}

/// Fill a copy bitmap from per-block flags; flags past its end are dropped.
pub fn set_copy_bits(flags: &[bool], out: &mut [u8]) {
    out.fill(0);
    for (byte, chunk) in out.iter_mut().zip(flags.chunks(8)) {
        for (bit, _) in chunk.iter().enumerate().filter(|(_, f)| **f) {
            *byte |= bit_mask(bit);
        }
    }
}

/// Bit `bit` (below 8) of a byte.
fn bit_mask(bit: usize) -> u8 {
    1u8.checked_shl(bit as u32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use zerocopy::FromZeros;

    /// The bitvec views keep the bit order the format describes: bit `i` of a byte bitmap is
    /// `byte[i / 8] >> (i % 8)`, and a live map is also little-endian 64-bit words.
    #[test]
    fn bit_orders_match_the_format() {
        let mut e = RawSutEntry::new_zeroed();
        let mut m = SegMap::ZERO;
        m.set(70, true);
        m.set(511, true);
        e.valid_map = m.into_inner();
        assert_eq!(e.valid_map[8], 1 << 6);
        assert_eq!(e.valid_map[63], 1 << 7);
        assert_eq!(e.words()[1], 1 << 6);
        assert_eq!(e.words()[7], 1 << 63);
        let mut bits = [0u8; 2];
        set_copy_bits(
            &[
                false, true, false, false, false, false, false, false, false, true,
            ],
            &mut bits,
        );
        assert_eq!(bits, [0b10, 0b10]);
        assert!(copy_bit(&bits, 9) && !copy_bit(&bits, 8) && !copy_bit(&bits, 99));
    }

    /// The byte arithmetic of the copy bitmaps agrees with bitvec's Lsb0 view.
    #[test]
    fn copy_bits_match_bitvec() {
        for len in 0..5usize {
            for n in 0..45usize {
                let flags: Vec<bool> = (0..n).map(|i| (i * 7 + n) % 3 == 0).collect();
                let mut ours = vec![0xa5u8; len];
                set_copy_bits(&flags, &mut ours);
                let mut theirs = vec![0u8; len];
                for (mut b, &f) in theirs.view_bits_mut::<Lsb0>().iter_mut().zip(&flags) {
                    *b = f;
                }
                assert_eq!(ours, theirs, "{len} bytes, {n} flags");
                for i in 0..50 {
                    let want = theirs.view_bits::<Lsb0>().get(i).is_some_and(|b| *b);
                    assert_eq!(copy_bit(&ours, i), want, "bit {i}");
                }
            }
        }
    }
}
