//! Freeing and preallocating file blocks: truncate, punching holes and preallocation
//! (fallocate). Freeing walks the file's node tree and frees the index nodes it empties.

use bento_runtime::Errno;
use bento_runtime::fs::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result};
use crate::file::zeroed_block;
use crate::format::geometry::{DIRECT_BLOCKS, MAX_FILE_SIZE, N, child_node_offset, top_nodes};
use crate::format::layout::{BLOCK_SIZE, NEW_ADDR, NULL_ADDR};
use crate::format::node::{INLINE_MAX, KIND_DIRECT, KIND_INDIRECT, NODE_ADDRS};
use crate::fs::Volume;

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
                    i.inline_data_mut()[new_size as usize..].fill(0);
                }
                i.size = new_size.into();
                return Ok(());
            }
            self.uninline(ino)?;
        }
        let bs = BLOCK_SIZE as u64;
        if new_size < size {
            self.free_blocks(ino, new_size.div_ceil(bs), u64::MAX)?;
            self.zero_tail(ino, new_size)?;
        }
        self.inode_mut(ino)?.size = new_size.into();
        Ok(())
    }

    /// Zero the bytes from `pos` to the end of its block, so a later extension reads zeros.
    fn zero_tail(&mut self, ino: u32, pos: u64) -> Result<()> {
        let bs = BLOCK_SIZE as u64;
        let in_block = (pos % bs) as usize;
        if in_block == 0 {
            return Ok(());
        }
        let idx = pos / bs;
        match self.block_addr(ino, idx)? {
            NULL_ADDR | NEW_ADDR => Ok(()),
            _ => {
                let mut block = zeroed_block()?;
                self.read_file_block(ino, idx, &mut block)?;
                block[in_block..].fill(0);
                self.write_block(ino, idx, &block)
            }
        }
    }

    pub fn fallocate(&mut self, ino: u32, offset: u64, len: u64, mode: i32) -> Result<()> {
        self.check_writable()?;
        if self.file_type(ino)? != bento_runtime::fs::FileType::RegularFile {
            return Err(Errno::ENODEV.into());
        }
        let end = offset.checked_add(len).ok_or(Error::Errno(Errno::EFBIG))?;
        if len == 0 {
            return Err(Errno::EINVAL.into());
        }
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG.into());
        }
        let t = crate::fs::now();
        match mode {
            0 | FALLOC_FL_KEEP_SIZE => {
                self.uninline(ino)?;
                let bs = BLOCK_SIZE as u64;
                let (first, last) = (offset / bs, end.div_ceil(bs));
                self.ensure_space(4 + (last - first) / N)?;
                let mut added = 0u64;
                for idx in first..last {
                    let (holder, ofs) = self
                        .holder(ino, idx, true)?
                        .ok_or(Error::Errno(Errno::EIO))?;
                    if self.node_addr(holder, ofs)? == NULL_ADDR {
                        if let Err(e) = self.reserve(1) {
                            let i = self.inode_mut(ino)?;
                            i.blocks = (i.blocks.get() + added).into();
                            return Err(e);
                        }
                        self.set_node_addr(holder, ofs, NEW_ADDR)?;
                        added += 1;
                    }
                }
                let i = self.inode_mut(ino)?;
                i.blocks = (i.blocks.get() + added).into();
                if mode == 0 && end > i.size.get() {
                    i.size = end.into();
                    i.set_mtime(t);
                }
                i.set_ctime(t);
                Ok(())
            }
            m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
                let size = self.inode(ino)?.inode().size.get();
                let end = end.min(size);
                if offset >= end {
                    return Ok(());
                }
                self.ensure_space(4)?;
                if self.inode(ino)?.inode().is_inline() {
                    let i = self.inode_mut(ino)?;
                    i.inline_data_mut()[offset as usize..end as usize].fill(0);
                } else {
                    let bs = BLOCK_SIZE as u64;
                    let (first_full, end_full) = (offset.div_ceil(bs), end / bs);
                    if first_full < end_full {
                        let nodes = self.valid_nodes;
                        self.free_blocks(ino, first_full, end_full)?;
                        if self.valid_nodes < nodes {
                            self.note_since_cp(ino, crate::fs::SINCE_CP_FREED_NODES);
                        }
                    }
                    // Partial blocks at the edges are zeroed in place.
                    let mut edges = [offset / bs, (end - 1) / bs];
                    if edges[0] == edges[1] {
                        edges[1] = u64::MAX;
                    }
                    for idx in edges.into_iter().filter(|&i| i != u64::MAX) {
                        let lo = offset.max(idx * bs);
                        let hi = end.min((idx + 1) * bs);
                        if hi - lo == bs {
                            continue;
                        }
                        if matches!(self.block_addr(ino, idx)?, NULL_ADDR | NEW_ADDR) {
                            continue;
                        }
                        let mut block = zeroed_block()?;
                        self.read_file_block(ino, idx, &mut block)?;
                        block[(lo - idx * bs) as usize..(hi - idx * bs) as usize].fill(0);
                        self.write_block(ino, idx, &block)?;
                    }
                }
                let i = self.inode_mut(ino)?;
                i.set_mtime(t);
                i.set_ctime(t);
                Ok(())
            }
            _ => Err(Errno::EOPNOTSUPP.into()),
        }
    }

    /// Free the data blocks in `[from, to)` and the index nodes wholly inside it.
    pub(crate) fn free_blocks(&mut self, ino: u32, from: u64, to: u64) -> Result<()> {
        self.forget_delayed(ino, from, to);
        let mut freed = 0u64;
        for idx in from.min(DIRECT_BLOCKS)..to.min(DIRECT_BLOCKS) {
            let addr = self.node(ino)?.inode().addrs[idx as usize].get();
            if addr != NULL_ADDR {
                self.free_data_block(addr);
                self.node_mut(ino)?.inode_mut().addrs[idx as usize] = 0.into();
                freed += 1;
            }
        }
        for (k, top) in top_nodes().into_iter().enumerate() {
            if top.base + top.span <= from || top.base >= to {
                continue;
            }
            let nid = self.node(ino)?.inode().nids[k].get();
            if nid == 0 {
                continue;
            }
            let (gone, n) =
                self.free_subtree(ino, nid, top.height, top.offset, top.base, from, to)?;
            freed += n;
            if gone {
                self.node_mut(ino)?.inode_mut().nids[k] = 0.into();
            }
        }
        if freed > 0 {
            let i = self.inode_mut(ino)?;
            i.blocks = i.blocks.get().saturating_sub(freed).into();
        }
        Ok(())
    }

    /// Free what lies in `[from, to)` under index node `nid` (covering blocks from `base`,
    /// `height` levels above the data). Returns whether the node itself went, and how many
    /// blocks (data and nodes) were freed.
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
    ) -> Result<(bool, u64)> {
        let kind = if height == 1 {
            KIND_DIRECT
        } else {
            KIND_INDIRECT
        };
        self.index_node(ino, nid, kind, offset)?;
        let child_span = N.pow(height as u32 - 1);
        let mut freed = 0u64;
        let mut remaining = 0usize;
        for j in 0..NODE_ADDRS {
            let v = self.node(nid)?.slots()[j].get();
            if v == 0 {
                continue;
            }
            let cbase = base + j as u64 * child_span;
            if cbase + child_span <= from || cbase >= to {
                remaining += 1;
                continue;
            }
            let gone = if height == 1 {
                self.free_data_block(v);
                freed += 1;
                true
            } else {
                let child_offset = child_node_offset(offset, height, j);
                let (gone, n) =
                    self.free_subtree(ino, v, height - 1, child_offset, cbase, from, to)?;
                freed += n;
                gone
            };
            if gone {
                self.node_mut(nid)?.slots_mut()[j] = 0.into();
            } else {
                remaining += 1;
            }
        }
        if remaining == 0 && base >= from && base + child_span * N <= to {
            self.free_node(nid)?;
            return Ok((true, freed + 1));
        }
        Ok((false, freed))
    }

    fn free_data_block(&mut self, addr: u32) {
        self.invalidate(addr);
        self.valid_blocks = self.valid_blocks.saturating_sub(1);
        self.dirty = true;
    }
}
