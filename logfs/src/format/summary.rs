//! Segment summaries: the owner of every block of a segment, so the cleaner finds who points at a
//! block without any reverse map. Data blocks name the node holding their address and the index
//! in it; node blocks name themselves.

use alloc::boxed::Box;

use static_assertions::const_assert_eq;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::header::{self as csum, BlockHeader, MAGIC_SUMMARY};
use super::layout::{BLOCK_SIZE, SEG_BLOCKS};
use super::tables::LOG_DATA;
use crate::error::{Error, Result};

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Default)]
#[repr(C)]
pub struct RawSummaryEntry {
    pub nid: U32,
    pub ofs: U16,
}
const_assert_eq!(core::mem::size_of::<RawSummaryEntry>(), 6);

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SummaryBlock {
    pub header: BlockHeader,
    pub segno: U32,
    pub log: u8,
    pub _reserved: [u8; 3],
    pub entries: [RawSummaryEntry; SEG_BLOCKS as usize],
    pub _pad: [u8; 1008],
}
const_assert_eq!(core::mem::size_of::<SummaryBlock>(), BLOCK_SIZE);

impl SummaryBlock {
    pub fn new(segno: u32, log: u8) -> Result<Box<SummaryBlock>> {
        let mut s = SummaryBlock::new_box_zeroed()
            .map_err(|_| Error::Errno(bento_runtime::Errno::ENOMEM))?;
        s.segno = segno.into();
        s.log = log;
        Ok(s)
    }

    pub fn set(&mut self, off: u32, nid: u32, ofs: u16) {
        if let Some(e) = self.entries.get_mut(off as usize) {
            *e = RawSummaryEntry {
                nid: nid.into(),
                ofs: ofs.into(),
            };
        }
    }

    /// The owner recorded for block `off`: `(nid, ofs)`.
    pub fn owner(&self, off: u32) -> Option<(u32, u16)> {
        self.entries
            .get(off as usize)
            .map(|e| (e.nid.get(), e.ofs.get()))
    }

    /// The block as written to disk, checksummed.
    pub fn seal(&mut self, seed: u32) -> &[u8; BLOCK_SIZE] {
        let bytes: &mut [u8; BLOCK_SIZE] = zerocopy::transmute_mut!(self);
        csum::seal(seed, MAGIC_SUMMARY, bytes);
        bytes
    }

    /// Decode a summary block read from `addr`, expected to describe `segno`. Owners are not
    /// checked here: entries of dead blocks keep whatever they last named, and every user
    /// looks the owner up before trusting it.
    pub fn decode(
        block: &[u8; BLOCK_SIZE],
        seed: u32,
        addr: u64,
        segno: u32,
    ) -> Result<Box<SummaryBlock>> {
        csum::verify(seed, MAGIC_SUMMARY, block, "segment summary", addr)?;
        let mut s = SummaryBlock::new(0, 0)?;
        s.as_mut_bytes().copy_from_slice(block);
        if s.segno.get() != segno {
            return Err(Error::corrupt("segment summary (wrong segment)", addr));
        }
        if s.log > LOG_DATA {
            return Err(Error::corrupt("segment summary (log type)", addr));
        }
        Ok(s)
    }
}
