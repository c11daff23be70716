//! Segment cleaning.
//!
//! Before an operation that needs space, `Volume::ensure_space` makes sure the logs can absorb
//! it plus everything waiting for the next checkpoint, with a reserve left for cleaning. When
//! they cannot, it checkpoints (segments emptied since the last one become free) and, if that is
//! not enough, cleans: it picks the segment with the fewest live blocks (greedy), copies its live
//! data blocks to the data log and marks its live nodes dirty, then checkpoints so the segment
//! is free. Because user capacity excludes the reserved segments, live data never fills every
//! segment, so a victim with dead blocks always exists.

use bento_runtime::Errno;
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result};
use crate::format::layout::{BLOCK_SIZE, NULL_ADDR, SEG_BLOCKS};
use crate::format::summary::SummaryBlock;
use crate::format::tables::{LOG_DATA, LOG_NODE};
use crate::fs::Volume;
use crate::log::{DATA_LOG, NODE_LOG};
use crate::segment::SegState;

/// Segments kept free for a round of cleaning and the checkpoint after it.
const CLEANING_RESERVE: u64 = 4;
/// Dirty nodes and directory blocks that trigger a checkpoint (memory and commit latency).
const DIRTY_LIMIT: usize = 4096;
/// Cleaning rounds one operation may wait for before it gives up with ENOSPC.
const MAX_ROUNDS: usize = 64;

impl<D: BlockDevice> Volume<D> {
    /// Blocks the logs can still take: free segments plus what is left in the active ones.
    // Block counts: bounded by the device (under 2^32 blocks) and the caches; a `need` that
    // saturates the sum is as much "no room" as any past the device.
    fn writable_blocks(&self) -> u64 {
        let free = u64::from(self.sut.free_segments()).saturating_mul(u64::from(SEG_BLOCKS));
        let rooms = self.logs.iter().map(|l| u64::from(l.room()));
        rooms.fold(free, u64::saturating_add)
    }

    fn pending_blocks(&self) -> u64 {
        (self.nodes.dirty_count() as u64).saturating_add(self.dirs.dirty_count() as u64)
    }

    /// Can a checkpoint write everything that waits for it? Directory blocks go to the data
    /// log and may each dirty the node that points at them; nodes go to the node log; a log
    /// that fills takes a free segment.
    pub(crate) fn checkpoint_fits(&self) -> bool {
        let seg = u64::from(SEG_BLOCKS);
        let free = u64::from(self.sut.free_segments()).saturating_mul(seg);
        let room = |i: usize| self.logs.get(i).map_or(0, |l| u64::from(l.room()));
        let dirs = self.dirs.dirty_count() as u64;
        let nodes = (self.nodes.dirty_count() as u64).saturating_add(dirs);
        let data_over = dirs.saturating_sub(room(DATA_LOG));
        let node_over = nodes.saturating_sub(room(NODE_LOG));
        // Each log that spills takes whole segments (rounded up).
        let segs = data_over
            .div_ceil(seg)
            .saturating_add(node_over.div_ceil(seg));
        segs.saturating_mul(seg) <= free
    }

    /// The most `ensure_space` could make room for, had the cleaner emptied every dead block:
    /// the main area less the blocks in use, the two logs' partly filled segments and the
    /// cleaning reserve.
    pub(crate) fn attainable_room(&self) -> u64 {
        let seg = u64::from(SEG_BLOCKS);
        u64::from(self.layout.main_segments)
            .saturating_mul(seg)
            .saturating_sub(self.valid_blocks)
            .saturating_sub(seg.saturating_mul(2))
            .saturating_sub(CLEANING_RESERVE.saturating_mul(seg))
    }

    pub(crate) fn has_room(&self, need: u64) -> bool {
        const RESERVE: u64 = CLEANING_RESERVE * SEG_BLOCKS as u64;
        self.writable_blocks()
            >= self
                .pending_blocks()
                .saturating_add(need)
                .saturating_add(RESERVE)
    }

    /// Make room for an operation that writes about `need` blocks.
    pub(crate) fn ensure_space(&mut self, need: u64) -> Result<()> {
        if self.busy {
            return Ok(());
        }
        if self.pending_blocks() > DIRTY_LIMIT as u64 {
            self.checkpoint(false)?;
        }
        for _ in 0..MAX_ROUNDS {
            if self.has_room(need) {
                return Ok(());
            }
            if self.sut.prefree_segments() > 0 || self.pending_blocks() > 0 {
                self.checkpoint(false)?;
                if self.has_room(need) {
                    return Ok(());
                }
            }
            let Some(victim) = self.sut.greedy_victim() else {
                break;
            };
            self.busy = true;
            let r = self.clean_segment(victim);
            self.busy = false;
            r?;
            self.checkpoint(false)?;
        }
        if self.has_room(need) {
            Ok(())
        } else {
            Err(Errno::ENOSPC.into())
        }
    }

    /// Move every live block out of `segno`.
    pub(crate) fn clean_segment(&mut self, segno: u32) -> Result<()> {
        let Some(entry) = self.sut.get(segno).copied() else {
            return Ok(());
        };
        if entry.state != SegState::InUse || entry.valid == 0 {
            return Ok(());
        }
        let ssa = self.layout.ssa_addr(segno);
        let mut raw = crate::file::zeroed_block()?;
        self.dev.read_blocks(ssa, &mut raw[..]).map_err(Error::Io)?;
        let summary = SummaryBlock::decode(&raw, self.seed, ssa, segno)?;
        let mut block = crate::file::zeroed_block()?;
        for off in 0..SEG_BLOCKS {
            if !entry.is_valid(off) {
                continue;
            }
            let addr = self
                .layout
                .block_addr(segno, off)
                .ok_or_else(crate::error::invariant)?;
            let (nid, ofs) = summary.owner(off).unwrap_or((0, 0));
            let live = match entry.log {
                LOG_NODE => self.clean_node(nid, addr)?,
                LOG_DATA => self.clean_data(nid, usize::from(ofs), addr, &mut block)?,
                _ => false,
            };
            if !live {
                // The table says live but no owner points here: drop it so cleaning progresses.
                bento_runtime::warn!(
                    "logfs: segment {segno} block {off} marked live but unowned; reclaiming"
                );
                self.invalidate(addr);
            }
        }
        self.stats.gc_segments = self.stats.gc_segments.saturating_add(1);
        Ok(())
    }

    /// A live node is rewritten by the next checkpoint: just mark it dirty.
    fn clean_node(&mut self, nid: u32, addr: u32) -> Result<bool> {
        if nid == 0 || nid >= self.nat.max_nid() {
            return Ok(false);
        }
        if self.nat.get(&self.dev, &self.layout, self.seed, nid)? != addr {
            return Ok(false);
        }
        self.load_node(nid)?;
        self.nodes.mark_dirty(nid);
        self.dirty = true;
        self.stats.gc_moved_blocks = self.stats.gc_moved_blocks.saturating_add(1);
        Ok(true)
    }

    /// A live data block is copied to the data log now and its pointer updated.
    fn clean_data(
        &mut self,
        holder: u32,
        ofs: usize,
        addr: u32,
        block: &mut [u8; BLOCK_SIZE],
    ) -> Result<bool> {
        if holder == 0 || holder >= self.nat.max_nid() {
            return Ok(false);
        }
        let nat = self.nat.get(&self.dev, &self.layout, self.seed, holder)?;
        if nat == NULL_ADDR || self.node_addr(holder, ofs).ok() != Some(addr) {
            return Ok(false);
        }
        self.read_block(addr, &mut block[..])?;
        let new = self.append(DATA_LOG, block, holder, ofs as u16)?;
        self.set_node_addr(holder, ofs, new)?;
        self.invalidate(addr);
        self.stats.gc_moved_blocks = self.stats.gc_moved_blocks.saturating_add(1);
        Ok(true)
    }
}
