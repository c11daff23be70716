//! File data: mapping file blocks to addresses through the node tree, and reading, writing,
//! truncating and preallocating.
//!
//! Writes are appended to the data log, staged in its segment buffer until the segment fills or
//! something flushes it (the page cache above us already batches them); the nodes that point at
//! the new blocks stay dirty in memory until fsync writes them with a roll-forward record, or
//! the next checkpoint commits them. Small files and symlinks live inline in their inode until
//! they outgrow it.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::fs::{FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
use bento_runtime::ks::block::{BlockDevice, WriteFlags};

use crate::error::{Error, Result};
use crate::format::geometry::{
    DIRECT_BLOCKS, MAX_FILE_SIZE, N, block_path, child_node_offset, top_nodes,
};
use crate::format::layout::{BLOCK_SIZE, NEW_ADDR, NULL_ADDR};
use crate::format::node::{
    INLINE_MAX, INODE_INLINE_DATA, KIND_DIRECT, KIND_INDIRECT, KIND_INODE, NODE_ADDRS,
};
use crate::fs::Volume;
use crate::log::DATA_LOG;

impl<D: BlockDevice> Volume<D> {
    /// The index node `nid` of inode `ino`, checked to be what the tree says it is.
    fn index_node(&mut self, ino: u32, nid: u32, kind: u8, offset: u32) -> Result<()> {
        let n = self.node(nid)?;
        if n.kind() != kind || n.header.ino.get() != ino || n.header.offset.get() != offset {
            return Err(Error::corrupt(
                "index node (not part of this file)",
                u64::from(nid),
            ));
        }
        Ok(())
    }

    /// The node holding file block `idx`'s address and the slot in it. With `create`, missing
    /// index nodes are allocated; without, a missing one means a hole (`None`).
    pub(crate) fn holder(
        &mut self,
        ino: u32,
        idx: u64,
        create: bool,
    ) -> Result<Option<(u32, usize)>> {
        let p = block_path(idx).ok_or(Error::Errno(Errno::EFBIG))?;
        if p.depth == 0 {
            return Ok(Some((ino, p.top)));
        }
        let mut parent = ino;
        for level in 0..p.depth {
            let kind = if level + 1 == p.depth {
                KIND_DIRECT
            } else {
                KIND_INDIRECT
            };
            let slot = if level == 0 {
                p.top
            } else {
                p.slots[level - 1]
            };
            let child = {
                let n = self.node(parent)?;
                if level == 0 {
                    n.inode().nids[slot].get()
                } else {
                    n.slots()[slot].get()
                }
            };
            let child = if child != 0 {
                self.index_node(ino, child, kind, p.offsets[level])?;
                child
            } else if create {
                let nid = self.new_node(Some(ino), p.offsets[level], kind)?;
                let n = self.node_mut(parent)?;
                if level == 0 {
                    n.inode_mut().nids[slot] = nid.into();
                } else {
                    n.slots_mut()[slot] = nid.into();
                }
                let i = self.inode_mut(ino)?;
                i.blocks = (i.blocks.get() + 1).into();
                nid
            } else {
                return Ok(None);
            };
            parent = child;
        }
        Ok(Some((parent, p.slots[p.depth - 1])))
    }

    /// The address in slot `ofs` of node `holder` (an inode or a direct node).
    pub(crate) fn node_addr(&mut self, holder: u32, ofs: usize) -> Result<u32> {
        let n = self.node(holder)?;
        match n.kind() {
            KIND_INODE if !n.inode().is_inline() => n
                .inode()
                .addrs
                .get(ofs)
                .map(|a| a.get())
                .ok_or(Error::corrupt("address slot", u64::from(holder))),
            KIND_DIRECT => n
                .slots()
                .get(ofs)
                .map(|a| a.get())
                .ok_or(Error::corrupt("address slot", u64::from(holder))),
            _ => Err(Error::corrupt("address holder", u64::from(holder))),
        }
    }

    pub(crate) fn set_node_addr(&mut self, holder: u32, ofs: usize, addr: u32) -> Result<()> {
        let n = self.node_mut(holder)?;
        let slot = match n.kind() {
            KIND_INODE => n.inode_mut().addrs.get_mut(ofs),
            KIND_DIRECT => n.slots_mut().get_mut(ofs),
            _ => None,
        };
        *slot.ok_or(Error::corrupt("address holder", u64::from(holder)))? = addr.into();
        Ok(())
    }

    /// The address of file block `idx` (NULL_ADDR for a hole).
    pub(crate) fn block_addr(&mut self, ino: u32, idx: u64) -> Result<u32> {
        match self.holder(ino, idx, false)? {
            Some((h, ofs)) => self.node_addr(h, ofs),
            None => Ok(NULL_ADDR),
        }
    }

    /// Write a whole file block to the data log.
    pub(crate) fn write_block(
        &mut self,
        ino: u32,
        idx: u64,
        block: &[u8; BLOCK_SIZE],
    ) -> Result<()> {
        let (holder, ofs) = self
            .holder(ino, idx, true)?
            .ok_or(Error::Errno(Errno::EIO))?;
        let old = self.node_addr(holder, ofs)?;
        if old == NULL_ADDR {
            // A promised block was counted when it was dirtied: turn the promise into use.
            if self.delayed.remove(&(ino, idx)) {
                self.valid_blocks += 1;
            } else {
                self.reserve(1)?;
            }
            let i = self.inode_mut(ino)?;
            i.blocks = (i.blocks.get() + 1).into();
        }
        let addr = self.append(DATA_LOG, block, holder, ofs as u16)?;
        self.set_node_addr(holder, ofs, addr)?;
        self.invalidate(old);
        self.stats.data_blocks_written += 1;
        Ok(())
    }

    /// Read file block `idx` into `buf` (zeros for holes and preallocated blocks).
    pub(crate) fn read_file_block(
        &mut self,
        ino: u32,
        idx: u64,
        buf: &mut [u8; BLOCK_SIZE],
    ) -> Result<()> {
        match self.block_addr(ino, idx)? {
            NULL_ADDR | NEW_ADDR => {
                buf.fill(0);
                Ok(())
            }
            addr => self.read_block(addr, buf),
        }
    }

    pub(crate) fn read_data(&mut self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let len = (size - offset).min(buf.len() as u64) as usize;
        let buf = &mut buf[..len];
        if inline {
            let data = self.inode(ino)?.inode().inline_data();
            let start = (offset as usize).min(INLINE_MAX);
            let end = (start + len).min(INLINE_MAX);
            buf[..end - start].copy_from_slice(&data[start..end]);
            buf[end - start..].fill(0);
            return Ok(len);
        }
        let bs = BLOCK_SIZE as u64;
        let first = offset / bs;
        let last = (offset + len as u64 - 1) / bs;
        let mut addrs = Vec::new();
        addrs
            .try_reserve_exact((last - first + 1) as usize)
            .map_err(|_| Error::Errno(Errno::ENOMEM))?;
        for idx in first..=last {
            addrs.push(self.block_addr(ino, idx)?);
        }
        let mut tmp = zeroed_block()?;
        let mut pos = 0usize; // bytes of buf filled
        let mut i = 0usize;
        while i < addrs.len() {
            let idx = first + i as u64;
            let in_block = if i == 0 { (offset % bs) as usize } else { 0 };
            let take = (BLOCK_SIZE - in_block).min(len - pos);
            let addr = addrs[i];
            if addr == NULL_ADDR || addr == NEW_ADDR {
                buf[pos..pos + take].fill(0);
                pos += take;
                i += 1;
                continue;
            }
            if in_block == 0 && take == BLOCK_SIZE {
                // A run of whole blocks at consecutive addresses is one device read.
                let mut run = 1;
                while i + run < addrs.len()
                    && addrs[i + run] == addr.wrapping_add(run as u32)
                    && pos + (run + 1) * BLOCK_SIZE <= len
                    && self
                        .logs
                        .iter()
                        .all(|l| l.staged(&self.layout, addr + run as u32).is_none())
                {
                    run += 1;
                }
                if run > 1
                    && self
                        .logs
                        .iter()
                        .all(|l| l.staged(&self.layout, addr).is_none())
                {
                    let end = u64::from(addr) + run as u64;
                    if self.layout.locate(addr + run as u32 - 1).is_none()
                        || end > self.layout.total_blocks
                    {
                        return Err(Error::corrupt("block address", u64::from(addr)));
                    }
                    self.dev
                        .read_blocks(u64::from(addr), &mut buf[pos..pos + run * BLOCK_SIZE])
                        .map_err(Error::Io)?;
                    pos += run * BLOCK_SIZE;
                    i += run;
                    continue;
                }
                self.read_block(addr, &mut buf[pos..pos + BLOCK_SIZE])?;
            } else {
                self.read_block(addr, &mut tmp[..])?;
                buf[pos..pos + take].copy_from_slice(&tmp[in_block..in_block + take]);
            }
            let _ = idx;
            pos += take;
            i += 1;
        }
        Ok(len)
    }

    /// Move inline data out to block 0.
    fn uninline(&mut self, ino: u32) -> Result<()> {
        let mut block = zeroed_block()?;
        let size = {
            let i = self.inode(ino)?.inode();
            if !i.is_inline() {
                return Ok(());
            }
            block[..INLINE_MAX].copy_from_slice(i.inline_data());
            i.size.get()
        };
        {
            let i = self.inode_mut(ino)?;
            i.flags = (i.flags.get() & !INODE_INLINE_DATA).into();
            i.inline_data_mut().fill(0);
        }
        if size > 0
            && let Err(e) = self.write_block(ino, 0, &block)
        {
            // Put the data back: a full volume must not lose it.
            let i = self.inode_mut(ino)?;
            i.flags = (i.flags.get() | INODE_INLINE_DATA).into();
            i.inline_data_mut().copy_from_slice(&block[..INLINE_MAX]);
            return Err(e);
        }
        Ok(())
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
        let bs = BLOCK_SIZE as u64;
        let (mut blocks, mut nodes) = (Vec::new(), BTreeSet::new());
        let first = if inline && size > 0 { 0 } else { offset / bs };
        for idx in first..end.div_ceil(bs) {
            if self.delayed.contains(&(ino, idx))
                || (!inline && self.block_addr(ino, idx)? != NULL_ADDR)
            {
                continue;
            }
            blocks
                .try_reserve(1)
                .map_err(|_| Error::Errno(Errno::ENOMEM))?;
            blocks.push(idx);
            for off in self.missing_index_nodes(ino, idx, inline)? {
                if !self.delayed_nodes.contains(&(ino, off)) {
                    nodes.insert(off);
                }
            }
        }
        if self.committed_blocks() + (blocks.len() + nodes.len()) as u64
            > self.layout.user_capacity()
        {
            return Err(Errno::ENOSPC.into());
        }
        self.delayed
            .extend(blocks.into_iter().map(|idx| (ino, idx)));
        self.delayed_nodes
            .extend(nodes.into_iter().map(|off| (ino, off)));
        Ok(())
    }

    /// Tree positions of the index nodes file block `idx` needs that do not exist yet.
    fn missing_index_nodes(&mut self, ino: u32, idx: u64, inline: bool) -> Result<Vec<u32>> {
        let p = block_path(idx).ok_or(Error::Errno(Errno::EFBIG))?;
        let mut missing = Vec::new();
        let mut parent = ino;
        for level in 0..p.depth {
            let child = if inline {
                0
            } else {
                let n = self.node(parent)?;
                if level == 0 {
                    n.inode().nids[p.top].get()
                } else {
                    n.slots()[p.slots[level - 1]].get()
                }
            };
            if child == 0 {
                missing.extend_from_slice(&p.offsets[level..p.depth]);
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
            let gone: Vec<(u32, u64)> = self
                .delayed
                .range((ino, from)..(ino, to))
                .copied()
                .collect();
            for k in gone {
                self.delayed.remove(&k);
            }
        }
        if self
            .delayed
            .range((ino, 0)..=(ino, u64::MAX))
            .next()
            .is_none()
        {
            let gone: Vec<(u32, u32)> = self
                .delayed_nodes
                .range((ino, 0)..=(ino, u32::MAX))
                .copied()
                .collect();
            for k in gone {
                self.delayed_nodes.remove(&k);
            }
        }
    }

    /// Blocks a write of `len` bytes at `offset` may add: the holes it fills and the index
    /// nodes it may need. Checked up front, so a write is refused whole rather than torn.
    pub(crate) fn blocks_needed(&mut self, ino: u32, offset: u64, len: u64) -> Result<u64> {
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        let end = offset + len;
        if len == 0 || (inline && end <= INLINE_MAX as u64) {
            return Ok(0);
        }
        let bs = BLOCK_SIZE as u64;
        let (first, last) = (offset / bs, (end - 1) / bs);
        let mut holes = 0;
        if inline {
            // Everything is new, and block 0 takes the inline data; but holes promised to
            // delayed data are counted already (in `committed_blocks`).
            let promised = self.delayed.range((ino, first)..=(ino, last)).count() as u64;
            holes = last - first + 1 - promised;
            if size > 0 && first > 0 && !self.delayed.contains(&(ino, 0)) {
                holes += 1;
            }
        } else {
            for idx in first..=last {
                // A hole already promised to this data is counted in `committed_blocks`.
                if self.block_addr(ino, idx)? == NULL_ADDR && !self.delayed.contains(&(ino, idx)) {
                    holes += 1;
                }
            }
        }
        // Index nodes for holes that were promised are promised too.
        let index_nodes = if last < DIRECT_BLOCKS || holes == 0 {
            0
        } else {
            (last - first) / N + 3
        };
        Ok(holes + index_nodes)
    }

    /// Write `data` at `offset`: all of it, or an error.
    pub(crate) fn write_data(&mut self, ino: u32, offset: u64, data: &[u8]) -> Result<usize> {
        let end = offset + data.len() as u64;
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        if inline && end <= INLINE_MAX as u64 {
            // Still inline: a block promised to the page holding this data is not needed.
            self.forget_delayed(ino, 0, 1);
            let i = self.inode_mut(ino)?;
            i.inline_data_mut()[offset as usize..end as usize].copy_from_slice(data);
            if end > size {
                i.size = end.into();
            }
            return Ok(data.len());
        }
        self.uninline(ino)?;
        let bs = BLOCK_SIZE as u64;
        let mut written = 0usize;
        let mut block = zeroed_block()?;
        while written < data.len() {
            let pos = offset + written as u64;
            let idx = pos / bs;
            let in_block = (pos % bs) as usize;
            let take = (BLOCK_SIZE - in_block).min(data.len() - written);
            let chunk = &data[written..written + take];
            let r = if take == BLOCK_SIZE {
                match <&[u8; BLOCK_SIZE]>::try_from(chunk) {
                    Ok(full) => self.write_block(ino, idx, full),
                    Err(_) => Err(Error::Errno(Errno::EIO)),
                }
            } else {
                // A block past the old end of file holds nothing worth reading.
                if idx * bs < size {
                    self.read_file_block(ino, idx, &mut block)?;
                } else {
                    block.fill(0);
                }
                block[in_block..in_block + take].copy_from_slice(chunk);
                self.write_block(ino, idx, &block)
            };
            if let Err(e) = r {
                // Keep what was written reachable; the caller still sees the error (a short
                // count would be lost by a page-cache writeback that ignores it).
                let end = offset + written as u64;
                let i = self.inode_mut(ino)?;
                if end > i.size.get() {
                    i.size = end.into();
                }
                return Err(e);
            }
            written += take;
        }
        let new_end = offset + written as u64;
        let i = self.inode_mut(ino)?;
        if new_end > i.size.get() {
            i.size = new_end.into();
        }
        Ok(written)
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
}

/// A heap block buffer: kernel stacks are too small for 4 KiB locals.
pub(crate) fn zeroed_block() -> Result<alloc::boxed::Box<[u8; BLOCK_SIZE]>> {
    let mut v = Vec::new();
    v.try_reserve_exact(BLOCK_SIZE)
        .map_err(|_| Error::Errno(Errno::ENOMEM))?;
    v.resize(BLOCK_SIZE, 0u8);
    v.into_boxed_slice()
        .try_into()
        .map_err(|_| Error::Errno(Errno::ENOMEM))
}

// ---- fsync --------------------------------------------------------------------------------------

impl<D: BlockDevice> Volume<D> {
    /// Make a file's data and attributes durable. When roll-forward recovery can replay the
    /// file (it existed at the last checkpoint, or it is new in a directory that did and that
    /// lost no name since; no name or xattr of it changed since, and no hole punched in it freed
    /// an index node), write only its data and its changed direct nodes and inode, marked for
    /// recovery, and flush: no checkpoint. Otherwise checkpoint.
    pub fn fsync_file(&mut self, ino: u32) -> Result<()> {
        if self.read_only || !self.dirty {
            return Ok(());
        }
        if self.failed {
            return Err(Errno::EIO.into());
        }
        let since = self.since_cp.get(&ino).copied().unwrap_or(0);
        let (kind, nlink, parent) = {
            let i = self.inode(ino)?.inode();
            (
                i.mode.get() & bento_runtime::fs::S_IFMT,
                i.nlink.get(),
                i.parent.get(),
            )
        };
        let parent_since = self.since_cp.get(&parent).copied().unwrap_or(0);
        let replayable = !self.options.fsync_checkpoint
            && kind == bento_runtime::fs::S_IFREG
            && since
                & (crate::fs::SINCE_CP_NAMES
                    | crate::fs::SINCE_CP_XATTR
                    | crate::fs::SINCE_CP_FREED_NODES)
                == 0
            && (since & crate::fs::SINCE_CP_NEW == 0
                || (nlink == 1
                    && parent_since & (crate::fs::SINCE_CP_NEW | crate::fs::SINCE_CP_LOST_NAME)
                        == 0));
        if !replayable {
            return self.checkpoint(false);
        }
        let mut nids = self.nodes.dirty_of(ino, crate::format::node::KIND_DIRECT);
        if self.nodes.is_dirty(ino) {
            nids.push(ino);
        }
        let flags = crate::format::node::FLAG_FSYNC
            | if since & crate::fs::SINCE_CP_NEW != 0 {
                crate::format::node::FLAG_DENTRY
            } else {
                0
            };
        let r = (|| {
            // The data first: recovery may only point at blocks that are on disk.
            let (dev, layout) = (&self.dev, &self.layout);
            self.logs[crate::log::DATA_LOG].flush(dev, layout)?;
            self.write_nodes(&nids, flags)?;
            let (dev, layout) = (&self.dev, &self.layout);
            if !self.logs[crate::log::NODE_LOG].flush_with(dev, layout, WriteFlags::COMMIT)? {
                dev.flush().map_err(Error::Io)?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            bento_runtime::error!("logfs: fsync failed ({e}); refusing further changes");
            self.failed = true;
            return Err(e);
        }
        self.stats.fsyncs += 1;
        Ok(())
    }
}
