//! `FALLOC_FL_COLLAPSE_RANGE` and `FALLOC_FL_INSERT_RANGE`: the blocks after a block-aligned
//! offset move down (collapse, after freeing the range) or up (insert, leaving a hole) by the
//! range's length, by moving their addresses between slots of the file's node tree.
//!
//! A data block's segment summary names its owner (holder node and slot), and the cleaner and
//! fsck rely on it. For a block written since the last checkpoint into the data log's current
//! segment, that entry is still in memory and the last checkpoint does not know the block: the
//! address moves and the entry is changed. Any other block is known to the last checkpoint under
//! its old owner, and its summary is on disk; changing it in place would be wrong for that
//! checkpoint until the next one commits. Such a block is moved as the cleaner moves one: copied
//! to the data log with its new owner, the old copy dying at the next checkpoint. (F2FS's
//! collapse and insert make the same distinction.) Preallocated blocks (`NEW_ADDR`) just move.
//!
//! Atomic with respect to a crash: everything happens in memory under the volume lock, with no
//! checkpoint in between (room is made first), and the file is marked `SINCE_CP_SHIFTED`, so an
//! fsync of it commits a checkpoint rather than a roll-forward record that recovery could apply
//! in part. After a crash the file is as the last checkpoint (or fsync) left it, or as the
//! checkpoint after the shift left it. Everything that can be refused is refused before the
//! first block moves (arguments, space, index nodes for the new positions); an I/O error or
//! want of memory after that fails the volume (read-only until remounted, the last checkpoint
//! in force), so a half-shifted file never reaches the disk.

use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::fs::Timespec;
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result, invariant};
use crate::file::BS;
use crate::format::geometry::{
    DIRECT_BLOCKS, MAX_FILE_BLOCKS, MAX_FILE_SIZE, N, child_node_offset, index_node_shape,
    top_nodes,
};
use crate::format::layout::{NEW_ADDR, NULL_ADDR};
use crate::format::node::NODE_ADDRS;
use crate::fs::Volume;
use crate::log::DATA_LOG;
use crate::mem;

/// Blocks moved per batch: the batch's plan (about 40 bytes a block) is built before any of
/// them moves.
const BATCH: usize = 2048;

/// Which way the blocks go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Collapse: `[from, from + len)` is freed, what follows moves down by `len`.
    Down,
    /// Insert: everything from `from` moves up by `len`.
    Up,
}

/// One block's move: from slot `src` to slot `dst` (holder nid, slot), or freed.
struct Move {
    src: (u32, usize),
    dst: Option<(u32, usize)>,
    addr: u32,
}

/// The mapped blocks at and after a position: how many, the last one, and where each batch
/// starts.
struct Extent {
    count: u64,
    last: Option<u64>,
    batches: Vec<u64>,
}

impl<D: BlockDevice> Volume<D> {
    /// `COLLAPSE_RANGE`: remove `[offset, offset + len)`; the file shrinks by `len`.
    pub(crate) fn collapse_range(
        &mut self,
        ino: u32,
        offset: u64,
        len: u64,
        t: Timespec,
    ) -> Result<()> {
        let size = self.shift_args(ino, offset, len)?;
        // The range may not reach the end of the file (use truncate for that).
        if offset.checked_add(len).is_none_or(|e| e >= size) {
            return Err(Errno::EINVAL.into());
        }
        self.shift(ino, offset / BS, len / BS, Dir::Down)?;
        self.set_shifted_size(ino, size.saturating_sub(len), t)
    }

    /// `INSERT_RANGE`: insert a hole of `len` bytes at `offset`; the file grows by `len`.
    pub(crate) fn insert_range(
        &mut self,
        ino: u32,
        offset: u64,
        len: u64,
        t: Timespec,
    ) -> Result<()> {
        let size = self.shift_args(ino, offset, len)?;
        let new_size = size
            .checked_add(len)
            .filter(|&s| s <= MAX_FILE_SIZE)
            .ok_or(Error::Errno(Errno::EFBIG))?;
        if offset >= size {
            return Err(Errno::EINVAL.into());
        }
        // An inline file (offset 0 then): its data moves to block 0 first, which is invisible.
        self.uninline(ino)?;
        self.shift(ino, offset / BS, len / BS, Dir::Up)?;
        self.set_shifted_size(ino, new_size, t)
    }

    /// Whole blocks only, as ext4 (EINVAL otherwise); the file's size.
    fn shift_args(&mut self, ino: u32, offset: u64, len: u64) -> Result<u64> {
        if !offset.is_multiple_of(BS) || !len.is_multiple_of(BS) {
            return Err(Errno::EINVAL.into());
        }
        Ok(self.inode(ino)?.inode().size.get())
    }

    fn set_shifted_size(&mut self, ino: u32, size: u64, t: Timespec) -> Result<()> {
        let i = self.inode_mut(ino)?;
        i.size = size.into();
        i.set_mtime(t);
        i.set_ctime(t);
        Ok(())
    }

    /// Move the blocks of `ino` from block `from` on by `len` blocks in `dir`.
    fn shift(&mut self, ino: u32, from: u64, len: u64, dir: Dir) -> Result<()> {
        // Nothing changes until the first batch moves: the plan, then room, then index nodes.
        let ext = self.extent(ino, from)?;
        let Some(last) = ext.last else {
            self.note_since_cp(ino, crate::fs::SINCE_CP_SHIFTED);
            return Ok(());
        };
        if dir == Dir::Up && last.checked_add(len).is_none_or(|l| l >= MAX_FILE_BLOCKS) {
            return Err(Errno::EFBIG.into());
        }
        // Index nodes the new positions may need: a direct node per N blocks of span (or per
        // block, when sparse), and the indirect nodes above them.
        let span = last
            .saturating_sub(from)
            .saturating_add(len)
            .saturating_add(1);
        let directs = ext.count.min((span / N).saturating_add(2));
        let nodes = directs
            .saturating_add(directs.min((span / (N * N)).saturating_add(2)))
            .saturating_add(1);
        if self.committed_blocks().saturating_add(nodes) > self.layout.user_capacity() {
            return Err(Errno::ENOSPC.into());
        }
        // Every block may be copied; room for all of it now, so no checkpoint comes between
        // the first move and the last.
        self.ensure_space(ext.count.saturating_add(nodes).saturating_add(4))?;
        self.make_holders(ino, &ext, from, len, dir)?;
        self.forget_delayed(ino, from, u64::MAX);
        self.note_since_cp(ino, crate::fs::SINCE_CP_SHIFTED);
        let mut order: Vec<usize> = mem::collect(0..ext.batches.len())?;
        if dir == Dir::Up {
            order.reverse();
        }
        let mut moves = Vec::new();
        let mut moved = false;
        for &b in &order {
            let start = *ext.batches.get(b).ok_or_else(invariant)?;
            let stop = ext
                .batches
                .get(b.saturating_add(1))
                .copied()
                .unwrap_or(MAX_FILE_BLOCKS);
            let r = self
                .plan(ino, start, stop, from, len, dir, &mut moves)
                .and_then(|()| {
                    moved = true;
                    self.apply(ino, &moves)
                });
            if let Err(e) = r {
                // Before the first move nothing changed; after it, the file is a mix of the
                // old layout and the new, which must never be committed.
                if moved {
                    self.fail("collapse/insert range", e);
                }
                return Err(e);
            }
        }
        if dir == Dir::Down {
            // Blocks of the range were freed; index nodes the move emptied at the end go too.
            // (Failing here leaves empty index nodes, freed with the file: no error.)
            let tail = last.saturating_add(1).saturating_sub(len).max(from);
            let nodes = self.valid_nodes;
            if self.free_blocks(ino, tail, u64::MAX).is_ok() && self.valid_nodes < nodes {
                self.note_since_cp(ino, crate::fs::SINCE_CP_FREED_NODES);
            }
        }
        Ok(())
    }

    /// Count the mapped blocks of `ino` from block `from` on, batch by batch.
    fn extent(&mut self, ino: u32, from: u64) -> Result<Extent> {
        let mut ext = Extent {
            count: 0,
            last: None,
            batches: Vec::new(),
        };
        let mut found = Vec::new();
        let mut at = from;
        loop {
            found.clear();
            self.mapped(ino, at, MAX_FILE_BLOCKS, BATCH, &mut found)?;
            let (Some(&(first, _)), Some(&(last, _))) = (found.first(), found.last()) else {
                return Ok(ext);
            };
            mem::push(&mut ext.batches, first)?;
            ext.count = ext.count.saturating_add(found.len() as u64);
            ext.last = Some(last);
            // last < MAX_FILE_BLOCKS.
            at = last.saturating_add(1);
        }
    }

    /// Make the index nodes every new position needs (a failure leaves only empty index
    /// nodes behind, which hold nothing and go with the file).
    fn make_holders(
        &mut self,
        ino: u32,
        ext: &Extent,
        from: u64,
        len: u64,
        dir: Dir,
    ) -> Result<()> {
        let mut found = Vec::new();
        for (b, &start) in ext.batches.iter().enumerate() {
            let stop = ext
                .batches
                .get(b.saturating_add(1))
                .copied()
                .unwrap_or(MAX_FILE_BLOCKS);
            found.clear();
            self.mapped(ino, start, stop, usize::MAX, &mut found)?;
            for &(idx, _) in &found {
                if let Some(dst) = target(idx, from, len, dir) {
                    self.holder(ino, dst, true)?;
                }
            }
        }
        Ok(())
    }

    /// The moves of the mapped blocks in `[start, stop)`, in the order they must happen.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &mut self,
        ino: u32,
        start: u64,
        stop: u64,
        from: u64,
        len: u64,
        dir: Dir,
        moves: &mut Vec<Move>,
    ) -> Result<()> {
        moves.clear();
        let mut found = Vec::new();
        self.mapped(ino, start, stop, usize::MAX, &mut found)?;
        if dir == Dir::Up {
            found.reverse();
        }
        moves.try_reserve(found.len()).map_err(mem::oom)?;
        for (idx, addr) in found {
            let src = self.holder(ino, idx, false)?.ok_or_else(invariant)?;
            let dst = match target(idx, from, len, dir) {
                Some(d) => Some(self.holder(ino, d, false)?.ok_or_else(invariant)?),
                None => None,
            };
            // Dirty nodes stay in the cache: applying the moves loads nothing.
            self.node_mut(src.0)?;
            if let Some(d) = dst {
                self.node_mut(d.0)?;
            }
            #[allow(clippy::disallowed_methods)] // Room reserved.
            moves.push(Move { src, dst, addr });
        }
        Ok(())
    }

    /// Carry out planned moves.
    fn apply(&mut self, ino: u32, moves: &[Move]) -> Result<()> {
        let mut block = crate::file::zeroed_block()?;
        let mut freed = 0u64;
        for m in moves {
            if self.node_addr(m.src.0, m.src.1)? != m.addr {
                return Err(invariant());
            }
            let Some((dh, dofs)) = m.dst else {
                // The collapsed range.
                self.set_node_addr(m.src.0, m.src.1, NULL_ADDR)?;
                self.free_data_block(m.addr);
                freed = freed.saturating_add(1);
                continue;
            };
            if self.node_addr(dh, dofs)? != NULL_ADDR {
                return Err(invariant());
            }
            let new = if m.addr == NEW_ADDR {
                NEW_ADDR
            } else if self.owner_in_memory(m.addr) {
                let (segno, off) = self.layout.locate(m.addr).ok_or_else(invariant)?;
                let log = self.logs.get_mut(DATA_LOG).ok_or_else(invariant)?;
                if log.segno != segno {
                    return Err(invariant());
                }
                // Slots of a node are below NODE_ADDRS (1014) and fit a u16.
                log.summary.set(off, dh, dofs as u16);
                m.addr
            } else {
                self.read_block(m.addr, &mut block[..])?;
                let new = self.append(DATA_LOG, &block, dh, dofs as u16)?;
                self.invalidate(m.addr);
                self.stats.data_blocks_written = self.stats.data_blocks_written.saturating_add(1);
                new
            };
            self.set_node_addr(m.src.0, m.src.1, NULL_ADDR)?;
            self.set_node_addr(dh, dofs, new)?;
        }
        if freed > 0 {
            let i = self.inode_mut(ino)?;
            i.blocks = i.blocks.get().saturating_sub(freed).into();
        }
        Ok(())
    }

    /// Is `addr` a block of the data log's current segment written since the last checkpoint
    /// (its summary entry is in memory, and no checkpoint knows the block)?
    fn owner_in_memory(&self, addr: u32) -> bool {
        let Some((segno, off)) = self.layout.locate(addr) else {
            return false;
        };
        self.logs
            .get(DATA_LOG)
            .is_some_and(|l| l.segno == segno && off >= l.cp_off && off < l.next_off)
    }

    /// The mapped blocks (address not a hole) of `ino` in `[from, to)`, in order, at most
    /// `limit` of them, appended to `out` as (file block, address).
    pub(crate) fn mapped(
        &mut self,
        ino: u32,
        from: u64,
        to: u64,
        limit: usize,
        out: &mut Vec<(u64, u32)>,
    ) -> Result<()> {
        for idx in from.min(DIRECT_BLOCKS)..to.min(DIRECT_BLOCKS) {
            if out.len() >= limit {
                return Ok(());
            }
            let a = self.node(ino)?.inode().addrs.get(idx as usize);
            let addr = a.ok_or_else(invariant)?.get();
            if addr != NULL_ADDR {
                mem::push(out, (idx, addr))?;
            }
        }
        for (k, top) in top_nodes().into_iter().enumerate() {
            if top.base.saturating_add(top.span) <= from || top.base >= to {
                continue;
            }
            let nid = self.node(ino)?.inode().nids.get(k).ok_or_else(invariant)?;
            let nid = nid.get();
            if nid != 0 {
                let at = (nid, top.height, top.offset, top.base);
                self.mapped_under(ino, at, from, to, limit, out)?;
            }
        }
        Ok(())
    }

    /// `mapped` under index node `nid`, `height` levels above the data, at tree position
    /// `offset`, covering file blocks from `base`.
    fn mapped_under(
        &mut self,
        ino: u32,
        (nid, height, offset, base): (u32, usize, u32, u64),
        from: u64,
        to: u64,
        limit: usize,
        out: &mut Vec<(u64, u32)>,
    ) -> Result<()> {
        // height is 1, 2 or 3 (top_nodes()); spans and bases stay within MAX_FILE_BLOCKS.
        let (kind, child_span) = index_node_shape(height).ok_or_else(invariant)?;
        let below = height.saturating_sub(1);
        self.index_node(ino, nid, kind, offset)?;
        // child_span >= 1.
        let first = from.saturating_sub(base).checked_div(child_span);
        let first = first.ok_or_else(invariant)?.min(N) as usize;
        let end = to.saturating_sub(base).div_ceil(child_span).min(N) as usize;
        for j in first..end.min(NODE_ADDRS) {
            if out.len() >= limit {
                return Ok(());
            }
            let v = self.node(nid)?.slots().get(j).ok_or_else(invariant)?.get();
            if v == 0 {
                continue;
            }
            let cbase = (j as u64)
                .checked_mul(child_span)
                .and_then(|o| o.checked_add(base))
                .ok_or_else(invariant)?;
            if height == 1 {
                mem::push(out, (cbase, v))?;
            } else {
                let child_offset = child_node_offset(offset, height, j).ok_or_else(invariant)?;
                self.mapped_under(ino, (v, below, child_offset, cbase), from, to, limit, out)?;
            }
        }
        Ok(())
    }
}

/// Where file block `idx` goes, or `None` when a collapse frees it.
fn target(idx: u64, from: u64, len: u64, dir: Dir) -> Option<u64> {
    match dir {
        Dir::Down if idx < from.saturating_add(len) => None,
        // idx >= from + len here; the caller checked the top against MAX_FILE_BLOCKS.
        Dir::Down => Some(idx.saturating_sub(len)),
        Dir::Up => Some(idx.saturating_add(len)),
    }
}
