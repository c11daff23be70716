//! File data: mapping file blocks to addresses through the node tree, reading and writing.
//! Freeing blocks (truncate, holes) and preallocating them is in `truncate`; fsync in `fsync`.
//!
//!
//! Writes are appended to the data log, staged in its segment buffer until the segment fills or
//! something flushes it (the page cache above us already batches them); the nodes that point at
//! the new blocks stay dirty in memory until fsync writes them with a roll-forward record, or
//! the next checkpoint commits them. Small files and symlinks live inline in their inode until
//! they outgrow it.

use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::fs::FileType;
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result, invariant};
use crate::format::geometry::block_path;
use crate::format::layout::{BLOCK_SIZE, NEW_ADDR, NULL_ADDR};
use crate::format::node::{INLINE_MAX, INODE_INLINE_DATA, KIND_DIRECT, KIND_INDIRECT, KIND_INODE};
use crate::fs::Volume;
use crate::log::DATA_LOG;

/// Bytes of a block, for file positions.
pub(crate) const BS: u64 = BLOCK_SIZE as u64;

/// The pieces of a write too large for the room a full volume has (1 MiB): well inside what the
/// cleaner can free on a full volume (the reserved segments, 8 at least, less the cleaning
/// reserve and the logs' segments: 4 MiB at least).
const WRITE_PIECE: usize = 256 * BLOCK_SIZE;

impl<D: BlockDevice> Volume<D> {
    /// The index node `nid` of inode `ino`, checked to be what the tree says it is.
    pub(crate) fn index_node(&mut self, ino: u32, nid: u32, kind: u8, offset: u32) -> Result<()> {
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
        // block_path's slots are inside their nodes: a slot not there is an in-memory bug.
        let mut parent = ino;
        for (level, (slot, offset, direct)) in p.index_levels().enumerate() {
            let kind = if direct { KIND_DIRECT } else { KIND_INDIRECT };
            let child = {
                let n = self.node(parent)?;
                let s = if level == 0 {
                    n.inode().nids.get(slot)
                } else {
                    n.slots().get(slot)
                };
                s.ok_or_else(invariant)?.get()
            };
            let child = if child != 0 {
                self.index_node(ino, child, kind, offset)?;
                child
            } else if create {
                let nid = self.new_node(Some(ino), offset, kind)?;
                let n = self.node_mut(parent)?;
                let s = if level == 0 {
                    n.inode_mut().nids.get_mut(slot)
                } else {
                    n.slots_mut().get_mut(slot)
                };
                *s.ok_or_else(invariant)? = nid.into();
                let i = self.inode_mut(ino)?;
                i.blocks = i.blocks.get().saturating_add(1).into();
                nid
            } else {
                return Ok(None);
            };
            parent = child;
        }
        Ok(Some((parent, p.leaf_slot())))
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

    // ---- reading and writing ----------------------------------------------------------------

    pub fn read(&mut self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match self.file_type(ino)? {
            FileType::Directory => return Err(Errno::EISDIR.into()),
            FileType::RegularFile | FileType::Symlink => {}
            _ => return Err(Errno::EINVAL.into()),
        }
        self.read_data(ino, offset, buf)
    }

    pub fn write(&mut self, ino: u32, offset: u64, data: &[u8]) -> Result<usize> {
        self.check_writable()?;
        match self.file_type(ino)? {
            FileType::RegularFile => {}
            FileType::Directory => return Err(Errno::EISDIR.into()),
            _ => return Err(Errno::EINVAL.into()),
        }
        if data.is_empty() {
            return Ok(0);
        }
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > crate::format::geometry::MAX_FILE_SIZE)
        {
            return Err(Errno::EFBIG.into());
        }
        let needed = self.blocks_needed(ino, offset, data.len() as u64)?;
        if self.committed_blocks().saturating_add(needed) > self.layout.user_capacity() {
            return Err(Errno::ENOSPC.into());
        }
        // Times are not touched: a front end with a page cache (the kernel, FUSE's writeback
        // cache) owns a cached file's times and sets them with setattr; writeback arriving
        // later must not overwrite them.
        //
        // Room in the logs for the whole write, so no checkpoint in the middle commits half of
        // it; unless the volume is too full for that even after cleaning, then piece by piece,
        // each piece with its room.
        let blocks = ((data.len() / BLOCK_SIZE) as u64).saturating_add(2);
        let need = blocks.saturating_add(blocks / 512).saturating_add(4);
        if need <= self.attainable_room() || data.len() <= WRITE_PIECE {
            match self.ensure_space(need) {
                Ok(()) => return self.write_data(ino, offset, data),
                Err(Error::Errno(Errno::ENOSPC)) if data.len() > WRITE_PIECE => {}
                Err(e) => return Err(e),
            }
        }
        let mut done = 0usize;
        while done < data.len() {
            // Offsets and lengths below MAX_FILE_SIZE: the sums cannot overflow.
            let at = offset.saturating_add(done as u64);
            let piece = WRITE_PIECE as u64;
            let to_boundary = piece.saturating_sub(at.checked_rem(piece).unwrap_or(0));
            let n = (data.len().saturating_sub(done) as u64).min(to_boundary) as usize;
            let piece = data
                .get(done..done.saturating_add(n))
                .ok_or_else(invariant)?;
            let blocks = ((n / BLOCK_SIZE) as u64).saturating_add(2);
            let r = self
                .ensure_space(blocks.saturating_add(4))
                .and_then(|()| self.write_data(ino, at, piece));
            match r {
                Ok(0) => break,
                Ok(w) => done = done.saturating_add(w),
                // What was written stays written: a short write.
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    pub fn readlink(&mut self, ino: u32) -> Result<Vec<u8>> {
        if self.file_type(ino)? != FileType::Symlink {
            return Err(Errno::EINVAL.into());
        }
        let size = self.inode(ino)?.inode().size.get().min(4096) as usize;
        let mut buf = crate::mem::filled(0u8, size)?;
        let n = self.read_data(ino, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
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
        let len = size.saturating_sub(offset).min(buf.len() as u64) as usize;
        let buf = buf.get_mut(..len).ok_or_else(invariant)?;
        if inline {
            let data = self.inode(ino)?.inode().inline_data();
            let start = (offset as usize).min(INLINE_MAX);
            let end = start.saturating_add(len).min(INLINE_MAX);
            let src = data.get(start..end).ok_or_else(invariant)?;
            let (head, tail) = buf.split_at_mut_checked(src.len()).ok_or_else(invariant)?;
            head.copy_from_slice(src);
            tail.fill(0);
            return Ok(len);
        }
        // offset < size and len <= size - offset, so offset + len - 1 fits; len >= 1.
        let first = offset / BS;
        let last = offset
            .checked_add((len as u64).saturating_sub(1))
            .ok_or_else(invariant)?
            / BS;
        let mut addrs =
            crate::mem::with_capacity(last.saturating_sub(first).saturating_add(1) as usize)?;
        for idx in first..=last {
            crate::mem::push(&mut addrs, self.block_addr(ino, idx)?)?;
        }
        let mut tmp = zeroed_block()?;
        // Positions in buf and addrs stay below len and addrs.len(): the sums cannot overflow.
        let mut pos = 0usize; // bytes of buf filled
        let mut i = 0usize;
        while let Some(&addr) = addrs.get(i) {
            let in_block = if i == 0 { (offset % BS) as usize } else { 0 };
            let rest = buf.get_mut(pos..).ok_or_else(invariant)?;
            let take = BLOCK_SIZE.saturating_sub(in_block).min(rest.len());
            if addr == NULL_ADDR || addr == NEW_ADDR {
                rest.get_mut(..take).ok_or_else(invariant)?.fill(0);
                pos = pos.saturating_add(take);
                i = i.saturating_add(1);
                continue;
            }
            if in_block == 0 && take == BLOCK_SIZE {
                // A run of whole blocks at consecutive addresses is one device read.
                let mut run = 1usize;
                while let Some(&next) = addrs.get(i.saturating_add(run))
                    && next == addr.wrapping_add(run as u32)
                    && run.saturating_add(1).saturating_mul(BLOCK_SIZE) <= rest.len()
                    && self
                        .logs
                        .iter()
                        .all(|l| l.staged(&self.layout, next).is_none())
                {
                    run = run.saturating_add(1);
                }
                if run > 1
                    && self
                        .logs
                        .iter()
                        .all(|l| l.staged(&self.layout, addr).is_none())
                {
                    let end = u64::from(addr).saturating_add(run as u64);
                    let last = addr.checked_add((run as u32).saturating_sub(1));
                    if last.and_then(|a| self.layout.locate(a)).is_none()
                        || end > self.layout.total_blocks
                    {
                        return Err(Error::corrupt("block address", u64::from(addr)));
                    }
                    let bytes = run.saturating_mul(BLOCK_SIZE);
                    let dst = rest.get_mut(..bytes).ok_or_else(invariant)?;
                    self.dev
                        .read_blocks(u64::from(addr), dst)
                        .map_err(Error::Io)?;
                    pos = pos.saturating_add(bytes);
                    i = i.saturating_add(run);
                    continue;
                }
                self.read_block(addr, rest.get_mut(..BLOCK_SIZE).ok_or_else(invariant)?)?;
            } else {
                self.read_block(addr, tmp.as_mut_slice())?;
                let src = tmp.get(in_block..).and_then(|t| t.get(..take));
                let dst = rest.get_mut(..take);
                dst.zip(src)
                    .ok_or_else(invariant)
                    .map(|(d, s)| d.copy_from_slice(s))?;
            }
            pos = pos.saturating_add(take);
            i = i.saturating_add(1);
        }
        Ok(len)
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
                self.valid_blocks = self.valid_blocks.saturating_add(1);
            } else {
                self.reserve(1)?;
            }
            let i = self.inode_mut(ino)?;
            i.blocks = i.blocks.get().saturating_add(1).into();
        }
        let addr = self.append(DATA_LOG, block, holder, ofs as u16)?;
        self.set_node_addr(holder, ofs, addr)?;
        self.invalidate(old);
        self.stats.data_blocks_written = self.stats.data_blocks_written.saturating_add(1);
        Ok(())
    }

    /// Move inline data out to block 0.
    pub(crate) fn uninline(&mut self, ino: u32) -> Result<()> {
        let mut block = zeroed_block()?;
        let size = {
            let i = self.inode(ino)?.inode();
            if !i.is_inline() {
                return Ok(());
            }
            // INLINE_MAX < BLOCK_SIZE: the chunk is always there.
            *block.first_chunk_mut().ok_or_else(invariant)? = *i.inline_data();
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
            *i.inline_data_mut() = *block.first_chunk().ok_or_else(invariant)?;
            return Err(e);
        }
        Ok(())
    }

    /// Write `data` at `offset`: all of it, or an error.
    pub(crate) fn write_data(&mut self, ino: u32, offset: u64, data: &[u8]) -> Result<usize> {
        // write() checked that the end is within MAX_FILE_SIZE, a symlink's target is short.
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Error::Errno(Errno::EFBIG))?;
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        if inline && end <= INLINE_MAX as u64 {
            // Still inline: a block promised to the page holding this data is not needed.
            self.forget_delayed(ino, 0, 1);
            let i = self.inode_mut(ino)?;
            i.inline_data_mut()
                .get_mut(offset as usize..end as usize)
                .ok_or_else(invariant)?
                .copy_from_slice(data);
            if end > size {
                i.size = end.into();
            }
            return Ok(data.len());
        }
        self.uninline(ino)?;
        // Positions below `end`: the sums cannot overflow.
        let mut written = 0usize;
        let mut block = zeroed_block()?;
        while let Some(rest) = data.get(written..).filter(|r| !r.is_empty()) {
            let pos = offset.saturating_add(written as u64);
            let idx = pos / BS;
            let in_block = (pos % BS) as usize;
            let take = BLOCK_SIZE.saturating_sub(in_block).min(rest.len());
            let chunk = rest.get(..take).ok_or_else(invariant)?;
            let r = if take == BLOCK_SIZE {
                match <&[u8; BLOCK_SIZE]>::try_from(chunk) {
                    Ok(full) => self.write_block(ino, idx, full),
                    Err(_) => Err(Error::Errno(Errno::EIO)),
                }
            } else {
                // A block past the old end of file holds nothing worth reading.
                if idx.saturating_mul(BS) < size {
                    self.read_file_block(ino, idx, &mut block)?;
                } else {
                    block.fill(0);
                }
                block
                    .get_mut(in_block..)
                    .and_then(|b| b.get_mut(..take))
                    .ok_or_else(invariant)?
                    .copy_from_slice(chunk);
                self.write_block(ino, idx, &block)
            };
            if let Err(e) = r {
                // Keep what was written reachable; the caller still sees the error (a short
                // count would be lost by a page-cache writeback that ignores it).
                let end = offset.saturating_add(written as u64);
                let i = self.inode_mut(ino)?;
                if end > i.size.get() {
                    i.size = end.into();
                }
                return Err(e);
            }
            written = written.saturating_add(take);
        }
        let new_end = offset.saturating_add(written as u64);
        let i = self.inode_mut(ino)?;
        if new_end > i.size.get() {
            i.size = new_end.into();
        }
        Ok(written)
    }
}

/// A heap block buffer: kernel stacks are too small for 4 KiB locals.
pub(crate) fn zeroed_block() -> Result<alloc::boxed::Box<[u8; BLOCK_SIZE]>> {
    crate::mem::filled(0u8, BLOCK_SIZE)?
        .into_boxed_slice()
        .try_into()
        .map_err(|_| Error::Errno(Errno::ENOMEM))
}
