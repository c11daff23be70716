//! Space accounting: blocks in use, and blocks promised to data still dirty in a page cache
//! (delayed allocation), so that writeback cannot run out of space; allocating and freeing
//! nodes; and freeing blocks in the segment usage table.

use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result, invariant};
use crate::file::BS;
use crate::format::geometry::{DIRECT_BLOCKS, MAX_FILE_SIZE, N, block_path};
use crate::format::layout::{NEW_ADDR, NULL_ADDR};
use crate::format::node::{INLINE_MAX, Node};
use crate::fs::Volume;
use crate::mem;

impl<D: BlockDevice> Volume<D> {
    /// Count `n` more blocks in use, or ENOSPC if they do not fit.
    pub(crate) fn reserve(&mut self, n: u64) -> Result<()> {
        // Block counts are bounded by the volume; a sum that saturates does not fit either.
        if self.committed_blocks().saturating_add(n) > self.layout.user_capacity() {
            return Err(Errno::ENOSPC.into());
        }
        self.valid_blocks = self.valid_blocks.saturating_add(n);
        Ok(())
    }

    /// Blocks in use plus those promised to dirty page-cache data and the index nodes it needs.
    pub(crate) fn committed_blocks(&self) -> u64 {
        self.valid_blocks
            .saturating_add(self.delayed.len() as u64)
            .saturating_add(self.delayed_nodes.len() as u64)
    }

    /// Promise space for bytes `[offset, offset+len)` that a page cache will write back later:
    /// every hole they cover, and every index node those holes will need, is counted now (see
    /// `Volume::delayed`), so the writeback cannot run out of space.
    pub fn reserve_delayed(&mut self, ino: u32, offset: u64, len: u64) -> Result<()> {
        if self.read_only {
            return Err(Errno::EROFS.into());
        }
        let Some(end) = offset.checked_add(len).filter(|&e| e <= MAX_FILE_SIZE) else {
            return Err(Errno::EFBIG.into());
        };
        if len == 0 {
            return Ok(());
        }
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        if inline && end <= INLINE_MAX as u64 {
            return Ok(());
        }
        let (mut blocks, mut nodes) = (Vec::new(), Vec::new());
        let first = if inline && size > 0 { 0 } else { offset / BS };
        for idx in first..end.div_ceil(BS) {
            if self.delayed.contains(&(ino, idx))
                || (!inline && self.block_addr(ino, idx)? != NULL_ADDR)
            {
                continue;
            }
            mem::push(&mut blocks, (ino, idx))?;
            for off in self.missing_index_nodes(ino, idx, inline)? {
                if !self.delayed_nodes.contains(&(ino, off)) {
                    mem::push(&mut nodes, (ino, off))?;
                }
            }
        }
        nodes.sort_unstable();
        nodes.dedup();
        let promised = (blocks.len() as u64).saturating_add(nodes.len() as u64);
        if self.committed_blocks().saturating_add(promised) > self.layout.user_capacity() {
            return Err(Errno::ENOSPC.into());
        }
        // Both or neither: a promise of blocks without their index nodes would run short.
        self.delayed.extend(&blocks)?;
        if let Err(e) = self.delayed_nodes.extend(&nodes) {
            for k in &blocks {
                self.delayed.remove(k);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Tree positions of the index nodes file block `idx` needs that do not exist yet.
    fn missing_index_nodes(&mut self, ino: u32, idx: u64, inline: bool) -> Result<Vec<u32>> {
        let p = block_path(idx).ok_or(Error::Errno(Errno::EFBIG))?;
        let mut missing = Vec::new();
        let mut parent = ino;
        // block_path's slots and depth are inside their arrays: anything else is an in-memory bug.
        for (level, (slot, _, _)) in p.index_levels().enumerate() {
            let child = if inline {
                0
            } else {
                let n = self.node(parent)?;
                let s = if level == 0 {
                    n.inode().nids.get(slot)
                } else {
                    n.slots().get(slot)
                };
                s.ok_or_else(invariant)?.get()
            };
            if child == 0 {
                mem::extend_from_slice(
                    &mut missing,
                    p.offsets.get(level..p.depth).ok_or_else(invariant)?,
                )?;
                break;
            }
            parent = child;
        }
        Ok(missing)
    }

    /// Drop the promises for `[from, to)` of `ino` (the blocks were truncated or freed), and
    /// the index-node promises once none of its blocks is promised any more.
    pub(crate) fn forget_delayed(&mut self, ino: u32, from: u64, to: u64) {
        if to > from {
            self.delayed.remove_range(ino, from, to);
        }
        if self.delayed.count_of(ino) == 0 {
            self.delayed_nodes.remove_range(ino, 0, u64::MAX);
        }
    }

    /// Blocks a write of `len` bytes at `offset` may add: the holes it fills and the index
    /// nodes it may need. Checked up front, so a write is refused whole rather than torn.
    pub(crate) fn blocks_needed(&mut self, ino: u32, offset: u64, len: u64) -> Result<u64> {
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        // write() checked the end against MAX_FILE_SIZE.
        let end = offset.checked_add(len).ok_or(Error::Errno(Errno::EFBIG))?;
        if len == 0 || (inline && end <= INLINE_MAX as u64) {
            return Ok(0);
        }
        // Block counts within one file: the sums below cannot overflow.
        let (first, last) = (offset / BS, end.saturating_sub(1) / BS);
        let mut holes = 0;
        if inline {
            // Everything is new, and block 0 takes the inline data; but holes promised to
            // delayed data are counted already (in `committed_blocks`).
            let promised = self.delayed.count_range(ino, first, last.saturating_add(1)) as u64;
            holes = last
                .saturating_sub(first)
                .saturating_add(1)
                .saturating_sub(promised);
            if size > 0 && first > 0 && !self.delayed.contains(&(ino, 0)) {
                holes = holes.saturating_add(1);
            }
        } else {
            for idx in first..=last {
                // A hole already promised to this data is counted in `committed_blocks`.
                if self.block_addr(ino, idx)? == NULL_ADDR && !self.delayed.contains(&(ino, idx)) {
                    holes = holes.saturating_add(1);
                }
            }
        }
        // Index nodes for holes that were promised are promised too.
        let index_nodes = if last < DIRECT_BLOCKS || holes == 0 {
            0
        } else {
            (last.saturating_sub(first) / N).saturating_add(3)
        };
        Ok(holes.saturating_add(index_nodes))
    }

    /// A new node of `kind` for inode `ino` (which is the new nid itself for an inode).
    pub(crate) fn new_node(&mut self, ino: Option<u32>, offset: u32, kind: u8) -> Result<u32> {
        // Memory first, so that a failed allocation changes nothing.
        let mut node = Node::new_boxed()?;
        self.nodes.reserve()?;
        // An index node promised to delayed data was counted when the data was dirtied.
        match ino {
            Some(i) if self.delayed_nodes.remove(&(i, offset)) => {
                self.valid_blocks = self.valid_blocks.saturating_add(1)
            }
            _ => self.reserve(1)?,
        }
        let nid = match self.nat.alloc(&self.dev, &self.layout, self.seed) {
            Ok(nid) => nid,
            Err(e) => {
                self.valid_blocks = self.valid_blocks.saturating_sub(1);
                return Err(e);
            }
        };
        node.init(nid, ino.unwrap_or(nid), offset, kind);
        self.nodes.insert_dirty(node)?;
        self.valid_nodes = self.valid_nodes.saturating_add(1);
        self.dirty = true;
        Ok(nid)
    }

    /// Free a node: its block dies and its nid is released.
    pub(crate) fn free_node(&mut self, nid: u32) -> Result<()> {
        let addr = self.nat.get(&self.dev, &self.layout, self.seed, nid)?;
        self.invalidate(addr);
        self.nat.release(&self.dev, &self.layout, self.seed, nid)?;
        self.nodes.remove(nid);
        self.valid_nodes = self.valid_nodes.saturating_sub(1);
        self.valid_blocks = self.valid_blocks.saturating_sub(1);
        self.dirty = true;
        Ok(())
    }

    /// A block at `addr` is no longer referenced.
    pub(crate) fn invalidate(&mut self, addr: u32) {
        if addr == NULL_ADDR || addr == NEW_ADDR {
            return;
        }
        match self.layout.locate(addr) {
            Some((segno, off)) if self.sut.set_invalid(segno, off) => {}
            _ => bento_runtime::warn!("logfs: freeing block {addr} that was not in use"),
        }
    }
}
