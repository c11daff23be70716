//! Active logs: where new blocks go.
//!
//! Each log (nodes, data) fills one segment at a time, front to back. Blocks are staged in a
//! segment-sized buffer and written in large sequential requests: when the segment is full, or
//! when a checkpoint needs everything on disk. Reads of staged blocks are served from the
//! buffer. The segment's summary is built as blocks are appended.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::ks::block::{BlockDevice, WriteFlags};

use crate::error::{Error, Result, invariant, io};
use crate::format::layout::{BLOCK_SIZE, Layout, SEG_BLOCKS};
use crate::fs::{Volume, now};
use zerocopy::IntoBytes;

use crate::format::summary::SummaryBlock;

/// Bytes of a segment's staging buffer.
const SEG_BYTES: usize = SEG_BLOCKS as usize * BLOCK_SIZE;

/// The bytes of blocks `from..to` of a segment in its staging buffer.
fn byte_range(from: u32, to: u32) -> Option<core::ops::Range<usize>> {
    let start = (from as usize).checked_mul(BLOCK_SIZE)?;
    let end = (to as usize).checked_mul(BLOCK_SIZE)?;
    Some(start..end)
}

/// Index of the node log and the data log.
pub const NODE_LOG: usize = 0;
pub const DATA_LOG: usize = 1;

pub struct Log {
    /// `segment::LOG_NODE` or `LOG_DATA`.
    pub kind: u8,
    pub segno: u32,
    /// Next block of the segment to hand out.
    pub next_off: u32,
    /// First block held in `buf` (earlier ones were written before this mount).
    buf_start: u32,
    /// Blocks before this are on disk.
    flushed: u32,
    /// Blocks from this one on were appended after the last checkpoint, which does not know
    /// them (their summary entries may still change: `shift.rs` moves such blocks' owners).
    pub cp_off: u32,
    /// The segment's staged blocks; empty until the first append.
    buf: Vec<u8>,
    pub summary: Box<SummaryBlock>,
    /// The segment the log moves to next, chosen before the current one fills, so the last
    /// node of a segment can name where the log continues (roll-forward follows that chain).
    pub next_segno: Option<u32>,
}

impl Log {
    pub fn new(kind: u8, segno: u32, next_off: u32, summary: Box<SummaryBlock>) -> Result<Log> {
        Ok(Log {
            kind,
            segno,
            next_off,
            buf_start: next_off,
            flushed: next_off,
            cp_off: next_off,
            buf: Vec::new(),
            summary,
            next_segno: None,
        })
    }

    pub fn is_full(&self) -> bool {
        self.next_off >= SEG_BLOCKS
    }

    /// Blocks left in the current segment.
    pub fn room(&self) -> u32 {
        SEG_BLOCKS.saturating_sub(self.next_off)
    }

    /// Stage one block; returns its address. The caller made sure the segment is not full.
    pub fn append(
        &mut self,
        layout: &Layout,
        block: &[u8; BLOCK_SIZE],
        nid: u32,
        ofs: u16,
    ) -> Result<u32> {
        let off = self.next_off;
        // The segment buffer (2 MiB) comes with the first write: a read-only or idle mount
        // never needs it (600 read-only mounts held 2.4 GB of them).
        if self.buf.is_empty() {
            self.buf = crate::mem::filled(0, SEG_BYTES)?;
        }
        // A block past the end of the segment does not fit (ENOSPC, as it always was); the
        // segment itself was allocated or validated at mount, so it lies in the main area.
        let next = off.checked_add(1).ok_or(Error::Errno(Errno::ENOSPC))?;
        let (blocks, _) = self.buf.as_chunks_mut::<BLOCK_SIZE>();
        let dst = blocks
            .get_mut(off as usize)
            .ok_or(Error::Errno(Errno::ENOSPC))?;
        let addr = layout.block_addr(self.segno, off).ok_or_else(invariant)?;
        dst.copy_from_slice(block);
        self.summary.set(off, nid, ofs);
        self.next_off = next;
        Ok(addr)
    }

    /// The staged copy of `addr`, if this log holds it.
    pub fn staged(&self, layout: &Layout, addr: u32) -> Option<&[u8]> {
        let (segno, off) = layout.locate(addr)?;
        if segno != self.segno || off < self.buf_start || off >= self.next_off {
            return None;
        }
        self.buf.get(byte_range(off, off.checked_add(1)?)?)
    }

    /// Write every staged block not yet on disk.
    pub fn flush<D: BlockDevice + ?Sized>(&mut self, dev: &D, layout: &Layout) -> Result<()> {
        self.flush_with(dev, layout, WriteFlags::NONE).map(|_| ())
    }

    /// Write every staged block not yet on disk with `flags`; true if anything was written.
    pub fn flush_with<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        flags: WriteFlags,
    ) -> Result<bool> {
        if self.flushed >= self.next_off {
            return Ok(false);
        }
        let start = layout
            .block_addr(self.segno, self.flushed)
            .ok_or_else(invariant)?;
        let staged = byte_range(self.flushed, self.next_off)
            .and_then(|r| self.buf.get(r))
            .ok_or_else(invariant)?;
        dev.write_blocks(u64::from(start), staged, flags)
            .map_err(io)?;
        self.flushed = self.next_off;
        Ok(true)
    }

    /// Finish the segment (flush it and write its summary to the SSA), then continue in `segno`.
    pub fn switch<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
        segno: u32,
    ) -> Result<()> {
        self.flush(dev, layout)?;
        self.restart(dev, layout, seed, segno)
    }

    /// Leave the segment without writing anything staged (recovery found blocks past the
    /// checkpoint's position that must not be overwritten), then continue in `segno`.
    pub fn restart<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
        segno: u32,
    ) -> Result<()> {
        let old = self.segno;
        let block = self.summary.seal(seed);
        dev.write_blocks(layout.ssa_addr(old), block, WriteFlags::NONE)
            .map_err(io)?;
        self.summary.as_mut_bytes().fill(0);
        self.summary.segno = segno.into();
        self.summary.log = self.kind;
        self.segno = segno;
        self.next_off = 0;
        self.buf_start = 0;
        self.flushed = 0;
        // A segment a log moves to was free at the last checkpoint.
        self.cp_off = 0;
        Ok(())
    }
}

// ---- the volume's logs ----------------------------------------------------------------------

impl<D: BlockDevice> Volume<D> {
    /// Make room in `log` for one more block, moving it to a fresh segment if it is full.
    pub(crate) fn log_room(&mut self, log: usize) -> Result<()> {
        let Some(l) = self.logs.get(log) else {
            return Err(Errno::EIO.into());
        };
        if !l.is_full() {
            return Ok(());
        }
        let (kind, old, next) = (l.kind, l.segno, l.next_segno);
        let segno = match next {
            Some(s) => s,
            None => self
                .sut
                // A hint past the last segment means none.
                .allocate(kind, old.saturating_add(1))
                .ok_or(Error::Errno(Errno::ENOSPC))?,
        };
        let (dev, layout, seed) = (&self.dev, &self.layout, self.seed);
        let l = self.logs.get_mut(log).ok_or_else(invariant)?;
        l.next_segno = None;
        if let Err(e) = l.switch(dev, layout, seed, segno) {
            // Blocks staged for the old segment never reached it: write nothing more.
            self.fail("segment write", e);
            return Err(e);
        }
        self.sut.retire(old);
        Ok(())
    }

    /// Where the node log will put the block after the one it is about to write: the next block
    /// of the segment, or the start of the segment it continues in (chosen now if need be).
    pub(crate) fn node_log_next(&mut self) -> Result<u32> {
        let Some(l) = self.logs.get(NODE_LOG) else {
            return Err(Errno::EIO.into());
        };
        let following = l.next_off.saturating_add(1);
        if following < SEG_BLOCKS {
            return self
                .layout
                .block_addr(l.segno, following)
                .ok_or_else(invariant);
        }
        let next = match l.next_segno {
            Some(s) => s,
            None => {
                let s = self
                    .sut
                    .allocate(l.kind, l.segno.saturating_add(1))
                    .ok_or(Error::Errno(Errno::ENOSPC))?;
                if let Some(l) = self.logs.get_mut(NODE_LOG) {
                    l.next_segno = Some(s);
                }
                s
            }
        };
        self.layout.segment_start(next).ok_or_else(invariant)
    }

    /// Append a block to `log`, owned by `(nid, ofs)`; returns its address.
    pub(crate) fn append(
        &mut self,
        log: usize,
        block: &[u8; BLOCK_SIZE],
        nid: u32,
        ofs: u16,
    ) -> Result<u32> {
        self.log_room(log)?;
        let Some(l) = self.logs.get_mut(log) else {
            return Err(Errno::EIO.into());
        };
        let addr = l.append(&self.layout, block, nid, ofs)?;
        if let Some((segno, off)) = self.layout.locate(addr) {
            self.sut.set_valid(segno, off, now().sec);
        }
        Ok(addr)
    }
}
