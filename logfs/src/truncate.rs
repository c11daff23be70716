//! Freeing file blocks: truncate, and the freeing that holes (`falloc`) use. Freeing walks the
//! file's node tree and frees the index nodes it empties.

use bento_runtime::ks::block::BlockDevice;

use crate::error::{Result, invariant};
use crate::file::zeroed_block;
use crate::format::geometry::{DIRECT_BLOCKS, N, child_node_offset, index_node_shape, top_nodes};
use crate::format::layout::{BLOCK_SIZE, NEW_ADDR, NULL_ADDR};
use crate::format::node::{INLINE_MAX, NODE_ADDRS};
use crate::fs::Volume;

/// The block size as a file offset.
const BS: u64 = BLOCK_SIZE as u64;

impl<D: BlockDevice> Volume<D> {
    /// Change the size of a regular file.
    pub(crate) fn truncate(&mut self, ino: u32, new_size: u64) -> Result<()> {
        // Page-cache data past the new end is gone: so are its promises.
        self.forget_delayed(ino, new_size.div_ceil(BLOCK_SIZE as u64), u64::MAX);
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        if inline {
            if new_size <= INLINE_MAX as u64 {
                let i = self.inode_mut(ino)?;
                if new_size < size {
                    // new_size <= INLINE_MAX
                    let tail = i.inline_data_mut().get_mut(new_size as usize..);
                    tail.ok_or_else(invariant)?.fill(0);
                }
                i.size = new_size.into();
                return Ok(());
            }
            self.uninline(ino)?;
        }
        if new_size < size {
            self.zero_tail(ino, new_size)?;
            // The size first: if freeing fails half way (for memory), what it left lies past
            // the end, freed with the file, and nothing inside the file was lost.
            self.inode_mut(ino)?.size = new_size.into();
            self.free_blocks(ino, new_size.div_ceil(BS), u64::MAX)?;
        }
        self.inode_mut(ino)?.size = new_size.into();
        Ok(())
    }

    /// Zero the bytes from `pos` to the end of its block, so a later extension reads zeros.
    fn zero_tail(&mut self, ino: u32, pos: u64) -> Result<()> {
        let in_block = (pos % BS) as usize;
        if in_block == 0 {
            return Ok(());
        }
        let idx = pos / BS;
        match self.block_addr(ino, idx)? {
            NULL_ADDR | NEW_ADDR => Ok(()),
            _ => {
                let mut block = zeroed_block()?;
                self.read_file_block(ino, idx, &mut block)?;
                block.get_mut(in_block..).ok_or_else(invariant)?.fill(0);
                self.write_block(ino, idx, &block)
            }
        }
    }

    /// Free the data blocks in `[from, to)` and the index nodes wholly inside it.
    pub(crate) fn free_blocks(&mut self, ino: u32, from: u64, to: u64) -> Result<()> {
        self.forget_delayed(ino, from, to);
        // Counts of blocks of one file: they cannot reach u64::MAX. What was freed is counted
        // off the inode even when a later step fails (for memory: freeing is restartable).
        let mut freed = 0u64;
        let r = self.free_blocks_counted(ino, from, to, &mut freed);
        if freed > 0 {
            let i = self.inode_mut(ino)?;
            i.blocks = i.blocks.get().saturating_sub(freed).into();
        }
        r
    }

    fn free_blocks_counted(&mut self, ino: u32, from: u64, to: u64, freed: &mut u64) -> Result<()> {
        for idx in from.min(DIRECT_BLOCKS) as usize..to.min(DIRECT_BLOCKS) as usize {
            let slot = self
                .node(ino)?
                .inode()
                .addrs
                .get(idx)
                .ok_or_else(invariant)?;
            let addr = slot.get();
            if addr != NULL_ADDR {
                self.free_data_block(addr);
                if let Some(slot) = self.node_mut(ino)?.inode_mut().addrs.get_mut(idx) {
                    *slot = 0.into();
                }
                *freed = freed.saturating_add(1);
            }
        }
        for (k, top) in top_nodes().into_iter().enumerate() {
            if top.base.saturating_add(top.span) <= from || top.base >= to {
                continue;
            }
            let nid = self
                .node(ino)?
                .inode()
                .nids
                .get(k)
                .ok_or_else(invariant)?
                .get();
            if nid == 0 {
                continue;
            }
            let gone =
                self.free_subtree(ino, nid, top.height, top.offset, top.base, from, to, freed)?;
            if gone && let Some(slot) = self.node_mut(ino)?.inode_mut().nids.get_mut(k) {
                *slot = 0.into();
            }
        }
        Ok(())
    }

    /// Free what lies in `[from, to)` under index node `nid` (covering blocks from `base`,
    /// `height` levels above the data). Returns whether the node itself went; adds the blocks
    /// (data and nodes) freed to `freed`, as they go.
    #[allow(clippy::too_many_arguments)]
    fn free_subtree(
        &mut self,
        ino: u32,
        nid: u32,
        height: usize,
        offset: u32,
        base: u64,
        from: u64,
        to: u64,
        freed: &mut u64,
    ) -> Result<bool> {
        // height is 1, 2 or 3 (the tree's shape, from top_nodes()); every span and base below
        // is within MAX_FILE_BLOCKS, and the counts within a file's blocks.
        let (kind, child_span) = index_node_shape(height).ok_or_else(invariant)?;
        let below = height.saturating_sub(1);
        self.index_node(ino, nid, kind, offset)?;
        let mut remaining = 0usize;
        for j in 0..NODE_ADDRS {
            let v = self.node(nid)?.slots().get(j).ok_or_else(invariant)?.get();
            if v == 0 {
                continue;
            }
            let cbase = (j as u64)
                .checked_mul(child_span)
                .and_then(|o| o.checked_add(base))
                .ok_or_else(invariant)?;
            if cbase.saturating_add(child_span) <= from || cbase >= to {
                remaining = remaining.saturating_add(1);
                continue;
            }
            let gone = if height == 1 {
                self.free_data_block(v);
                *freed = freed.saturating_add(1);
                true
            } else {
                let child_offset = child_node_offset(offset, height, j).ok_or_else(invariant)?;
                self.free_subtree(ino, v, below, child_offset, cbase, from, to, freed)?
            };
            if gone {
                if let Some(slot) = self.node_mut(nid)?.slots_mut().get_mut(j) {
                    *slot = 0.into();
                }
            } else {
                remaining = remaining.saturating_add(1);
            }
        }
        let span = child_span.saturating_mul(N);
        if remaining == 0 && base >= from && base.saturating_add(span) <= to {
            self.free_node(nid)?;
            *freed = freed.saturating_add(1);
            return Ok(true);
        }
        Ok(false)
    }

    /// A data block (or a `NEW_ADDR` reservation) of a file is no longer used.
    pub(crate) fn free_data_block(&mut self, addr: u32) {
        self.invalidate(addr);
        self.valid_blocks = self.valid_blocks.saturating_sub(1);
        self.dirty = true;
    }
}
