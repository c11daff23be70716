//! fallocate(2): preallocation (mode 0 and `KEEP_SIZE`), `PUNCH_HOLE`, `ZERO_RANGE`, and the
//! two modes that move blocks, `COLLAPSE_RANGE` and `INSERT_RANGE` (in `shift`). Every mode,
//! combination and argument is checked before anything changes, with the errors Linux's
//! `vfs_fallocate` and ext4 give.
//!
//! Preallocated blocks are `NEW_ADDR`: counted as used (so writing them later needs no more
//! space than the index nodes they hang from, which are made now) and read as zeros.

use bento_runtime::Errno;
use bento_runtime::fs::{
    FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE, FileType, Timespec,
};
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result, invariant};
use crate::file::{BS, zeroed_block};
use crate::format::geometry::{MAX_FILE_SIZE, N};
use crate::format::layout::{NEW_ADDR, NULL_ADDR};
use crate::format::node::INLINE_MAX;
use crate::fs::Volume;

/// What a `fallocate` mode asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Falloc {
    Allocate { keep_size: bool },
    Punch,
    Zero { keep_size: bool },
    Collapse,
    Insert,
}

/// The mode's meaning, or why it is refused: unknown bits and `PUNCH_HOLE` without `KEEP_SIZE`
/// or with `ZERO_RANGE` are EOPNOTSUPP, `COLLAPSE_RANGE` and `INSERT_RANGE` with any other bit
/// EINVAL (as `vfs_fallocate` answers; over FUSE nothing in the kernel checks them first).
fn decode_mode(mode: i32) -> Result<Falloc> {
    const KNOWN: i32 = FALLOC_FL_KEEP_SIZE
        | FALLOC_FL_PUNCH_HOLE
        | FALLOC_FL_COLLAPSE_RANGE
        | FALLOC_FL_ZERO_RANGE
        | FALLOC_FL_INSERT_RANGE;
    const KEEP: i32 = FALLOC_FL_KEEP_SIZE;
    if mode & !KNOWN != 0 {
        return Err(Errno::EOPNOTSUPP.into());
    }
    if mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE) != 0
        && mode != FALLOC_FL_COLLAPSE_RANGE
        && mode != FALLOC_FL_INSERT_RANGE
    {
        return Err(Errno::EINVAL.into());
    }
    Ok(match mode {
        0 => Falloc::Allocate { keep_size: false },
        KEEP => Falloc::Allocate { keep_size: true },
        m if m == FALLOC_FL_PUNCH_HOLE | KEEP => Falloc::Punch,
        FALLOC_FL_ZERO_RANGE => Falloc::Zero { keep_size: false },
        m if m == FALLOC_FL_ZERO_RANGE | KEEP => Falloc::Zero { keep_size: true },
        FALLOC_FL_COLLAPSE_RANGE => Falloc::Collapse,
        FALLOC_FL_INSERT_RANGE => Falloc::Insert,
        // PUNCH_HOLE alone, or with ZERO_RANGE.
        _ => return Err(Errno::EOPNOTSUPP.into()),
    })
}

impl<D: BlockDevice> Volume<D> {
    pub fn fallocate(&mut self, ino: u32, offset: u64, len: u64, mode: i32) -> Result<()> {
        let op = decode_mode(mode)?;
        self.check_writable()?;
        if self.file_type(ino)? != FileType::RegularFile {
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
        match op {
            Falloc::Allocate { keep_size } => self.preallocate(ino, offset, end, keep_size, t),
            Falloc::Punch => self.punch_hole(ino, offset, end, t),
            Falloc::Zero { keep_size } => self.zero_range(ino, offset, end, keep_size, t),
            Falloc::Collapse => self.collapse_range(ino, offset, len, t),
            Falloc::Insert => self.insert_range(ino, offset, len, t),
        }
    }

    /// Mode 0 and `KEEP_SIZE`: every hole in `[offset, end)` becomes a reservation.
    fn preallocate(
        &mut self,
        ino: u32,
        offset: u64,
        end: u64,
        keep_size: bool,
        t: Timespec,
    ) -> Result<()> {
        self.uninline(ino)?;
        let (first, last) = (offset / BS, end.div_ceil(BS));
        // last >= first: offset <= end.
        self.ensure_space((last.saturating_sub(first) / N).saturating_add(4))?;
        for idx in first..last {
            let (holder, ofs) = self.holder_of(ino, idx)?;
            if self.node_addr(holder, ofs)? == NULL_ADDR {
                self.reserve_hole(ino, (holder, ofs))?;
            }
        }
        let i = self.inode_mut(ino)?;
        if !keep_size && end > i.size.get() {
            i.size = end.into();
            i.set_mtime(t);
        }
        i.set_ctime(t);
        Ok(())
    }

    /// `PUNCH_HOLE | KEEP_SIZE`: whole blocks in the range are freed, partial ones zeroed.
    fn punch_hole(&mut self, ino: u32, offset: u64, end: u64, t: Timespec) -> Result<()> {
        let size = self.inode(ino)?.inode().size.get();
        let end = end.min(size);
        if offset >= end {
            return Ok(());
        }
        self.ensure_space(4)?;
        if self.inode(ino)?.inode().is_inline() {
            // offset < end <= size <= INLINE_MAX (load checks inline sizes).
            let i = self.inode_mut(ino)?;
            let hole = i.inline_data_mut().get_mut(offset as usize..end as usize);
            hole.ok_or_else(invariant)?.fill(0);
        } else {
            let (first_full, end_full) = (offset.div_ceil(BS), end / BS);
            if first_full < end_full {
                let nodes = self.valid_nodes;
                self.free_blocks(ino, first_full, end_full)?;
                if self.valid_nodes < nodes {
                    self.note_since_cp(ino, crate::fs::SINCE_CP_FREED_NODES);
                }
            }
            self.zero_edges(ino, offset, end, false)?;
        }
        let i = self.inode_mut(ino)?;
        i.set_mtime(t);
        i.set_ctime(t);
        Ok(())
    }

    /// `ZERO_RANGE` (with or without `KEEP_SIZE`): the range reads as zeros and every block it
    /// touches is allocated, so writing there later cannot fail for space: whole blocks become
    /// reservations (`NEW_ADDR`, their old data freed), partial blocks at the edges are zeroed
    /// in place (reserved when they were holes). The size grows to the end of the range unless
    /// `KEEP_SIZE`. A range inside the inline area of an inline file is zeroed there.
    fn zero_range(
        &mut self,
        ino: u32,
        offset: u64,
        end: u64,
        keep_size: bool,
        t: Timespec,
    ) -> Result<()> {
        let (size, inline) = {
            let i = self.inode(ino)?.inode();
            (i.size.get(), i.is_inline())
        };
        if inline && end <= INLINE_MAX as u64 {
            let i = self.inode_mut(ino)?;
            // offset < end <= INLINE_MAX.
            let range = i.inline_data_mut().get_mut(offset as usize..end as usize);
            range.ok_or_else(invariant)?.fill(0);
            if !keep_size && end > size {
                i.size = end.into();
            }
            i.set_mtime(t);
            i.set_ctime(t);
            return Ok(());
        }
        // Refused whole when the holes it fills (and their index nodes) do not fit.
        let needed = self.blocks_needed(ino, offset, end.saturating_sub(offset))?;
        if self.committed_blocks().saturating_add(needed) > self.layout.user_capacity() {
            return Err(Errno::ENOSPC.into());
        }
        self.uninline(ino)?;
        let (first, last) = (offset / BS, end.div_ceil(BS));
        // Index nodes, and the two edge blocks rewritten.
        self.ensure_space((last.saturating_sub(first) / N).saturating_add(6))?;
        // A kernel front end wrote the range back and dropped it from its page cache first.
        self.forget_delayed(ino, first, last);
        // The edges first: they may read blocks that the whole-block pass leaves alone.
        self.zero_edges(ino, offset, end, true)?;
        let (first_full, end_full) = (offset.div_ceil(BS), end / BS);
        for idx in first_full..end_full {
            let (holder, ofs) = self.holder_of(ino, idx)?;
            match self.node_addr(holder, ofs)? {
                NEW_ADDR => {}
                NULL_ADDR => self.reserve_hole(ino, (holder, ofs))?,
                addr => {
                    // The block stays counted: its data goes, its space stays reserved.
                    self.set_node_addr(holder, ofs, NEW_ADDR)?;
                    self.invalidate(addr);
                }
            }
        }
        let i = self.inode_mut(ino)?;
        if !keep_size && end > i.size.get() {
            i.size = end.into();
        }
        i.set_mtime(t);
        i.set_ctime(t);
        Ok(())
    }

    /// Zero the parts of `[offset, end)` that cover blocks only partly (at most the first and
    /// the last block), in place. With `reserve`, such a block that is a hole is reserved.
    fn zero_edges(&mut self, ino: u32, offset: u64, end: u64, reserve: bool) -> Result<()> {
        // (end > offset, so end - 1 does not wrap.)
        let (first, last) = (offset / BS, end.saturating_sub(1) / BS);
        let edges = [Some(first), (last != first).then_some(last)];
        for idx in edges.into_iter().flatten() {
            // The block's bytes, idx * BS..(idx + 1) * BS, are below MAX_FILE_SIZE.
            let start = idx.checked_mul(BS).ok_or_else(invariant)?;
            let lo = offset.max(start);
            let hi = end.min(start.saturating_add(BS));
            if hi.saturating_sub(lo) == BS {
                continue;
            }
            match self.block_addr(ino, idx)? {
                NEW_ADDR => continue,
                NULL_ADDR if !reserve => continue,
                NULL_ADDR => {
                    let slot = self.holder_of(ino, idx)?;
                    self.reserve_hole(ino, slot)?;
                    continue;
                }
                _ => {}
            }
            let mut block = zeroed_block()?;
            self.read_file_block(ino, idx, &mut block)?;
            // start <= lo <= hi <= start + BS
            let range = lo.saturating_sub(start) as usize..hi.saturating_sub(start) as usize;
            block.get_mut(range).ok_or_else(invariant)?.fill(0);
            self.write_block(ino, idx, &block)?;
        }
        Ok(())
    }

    /// The slot of file block `idx`, its index nodes made if missing.
    fn holder_of(&mut self, ino: u32, idx: u64) -> Result<(u32, usize)> {
        self.holder(ino, idx, true)?.ok_or(Error::Errno(Errno::EIO))
    }

    /// Make the hole at `slot` of `ino` a reservation: counted as used, read as zeros.
    fn reserve_hole(&mut self, ino: u32, (holder, ofs): (u32, usize)) -> Result<()> {
        self.reserve(1)?;
        self.set_node_addr(holder, ofs, NEW_ADDR)?;
        let i = self.inode_mut(ino)?;
        i.blocks = i.blocks.get().saturating_add(1).into();
        Ok(())
    }
}

#[cfg(test)]
#[path = "falloc_tests.rs"]
mod tests;
