//! The node address table (NAT): nid → block address of the node's newest copy.
//!
//! Table blocks are read on demand and stay in memory; a checkpoint writes changed blocks to
//! their shadow copies. Blocks at or past `written` were never written and hold only free nids,
//! so a fresh volume reads none of its (large) table. Free nids are found by scanning from a
//! cursor; a freed nid is reusable only after the next checkpoint, since the committed
//! checkpoint may still name it.

use alloc::boxed::Box;
use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};
use zerocopy::{FromZeros, IntoBytes};

use bento_runtime::Errno;
use bento_runtime::ks::block::{BlockDevice, WriteFlags};

use crate::error::{Error, Result, invariant, io};
use crate::format::header::{self as csum, MAGIC_NAT};
use crate::format::layout::{BLOCK_SIZE, Layout, NAT_ENTRIES_PER_BLOCK, NEW_ADDR};
use crate::format::tables::{RawNatBlock, copy_bit, set_copy_bits};
use crate::mem;

struct NatBlock {
    raw: Box<RawNatBlock>,
    dirty: bool,
    /// The table's clock at the last use (least recently used clean blocks go first).
    used: u64,
}

impl crate::lru::Aged for NatBlock {
    fn used(&self) -> u64 {
        self.used
    }
    fn dirty(&self) -> bool {
        self.dirty
    }
}

/// Table blocks kept in memory (4 KiB each) before clean ones are dropped.
const CACHE_BLOCKS: usize = 1024;

pub struct Nat {
    blocks: HashMap<u32, NatBlock>,
    copy: Vec<bool>,
    /// Blocks below this have been written at least once.
    written: u32,
    max_nid: u32,
    cursor: u32,
    free: Vec<u32>,
    pending_free: HashSet<u32>,
    clock: u64,
}

fn split(nid: u32) -> (u32, usize) {
    (
        nid / NAT_ENTRIES_PER_BLOCK,
        (nid % NAT_ENTRIES_PER_BLOCK) as usize,
    )
}

impl Nat {
    pub fn new(layout: &Layout, copy_bits: &[u8], written: u32, cursor: u32) -> Result<Nat> {
        if written > layout.nat_blocks {
            return Err(Error::corrupt("checkpoint (NAT extent)", 0));
        }
        let copy = mem::collect((0..layout.nat_blocks as usize).map(|i| copy_bit(copy_bits, i)))?;
        Ok(Nat {
            blocks: HashMap::new(),
            copy,
            written,
            max_nid: layout.max_nid,
            cursor: cursor.max(1),
            free: Vec::new(),
            pending_free: HashSet::new(),
            clock: 0,
        })
    }

    pub fn max_nid(&self) -> u32 {
        self.max_nid
    }

    pub fn written(&self) -> u32 {
        self.written
    }

    /// Lowest nid that might be free, for the checkpoint.
    pub fn next_free_hint(&self) -> u32 {
        self.free
            .iter()
            .copied()
            .chain(self.pending_free.iter().copied())
            .fold(self.cursor, u32::min)
    }

    fn block<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
        b: u32,
    ) -> Result<&mut NatBlock> {
        self.clock = self.clock.wrapping_add(1);
        if !self.blocks.contains_key(&b) {
            if self.blocks.len() >= CACHE_BLOCKS {
                self.shrink(CACHE_BLOCKS / 4, true);
            }
            let mut raw = RawNatBlock::new_box_zeroed().map_err(mem::oom)?;
            if b < self.written {
                let copy = self.copy.get(b as usize).copied().unwrap_or(false);
                let addr = layout.nat_copy_addr(b, copy);
                dev.read_blocks(addr, raw.as_mut_bytes()).map_err(io)?;
                let bytes: &[u8; BLOCK_SIZE] = zerocopy::transmute_ref!(&*raw);
                RawNatBlock::verify(bytes, seed, layout, b, addr)?;
            }
            let used = self.clock;
            let blk = NatBlock {
                raw,
                dirty: false,
                used,
            };
            mem::insert(&mut self.blocks, b, blk)?;
        }
        let blk = self.blocks.get_mut(&b).ok_or(Error::Errno(Errno::EIO))?;
        blk.used = self.clock;
        Ok(blk)
    }

    /// The address of `nid`: 0 when free, `NEW_ADDR` when allocated but not yet written.
    pub fn get<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
        nid: u32,
    ) -> Result<u32> {
        if nid == 0 || nid >= self.max_nid {
            return Err(Error::corrupt("node id out of range", u64::from(nid)));
        }
        let (b, i) = split(nid);
        // split() gives an index inside the block.
        let e = self.block(dev, layout, seed, b)?.raw.entries.get(i);
        Ok(e.ok_or_else(invariant)?.get())
    }

    pub fn set<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
        nid: u32,
        addr: u32,
    ) -> Result<()> {
        if nid == 0 || nid >= self.max_nid {
            return Err(Error::corrupt("node id out of range", u64::from(nid)));
        }
        let (b, i) = split(nid);
        let blk = self.block(dev, layout, seed, b)?;
        *blk.raw.entries.get_mut(i).ok_or_else(invariant)? = addr.into();
        blk.dirty = true;
        Ok(())
    }

    /// Take a free nid; its entry becomes `NEW_ADDR` until the node is written.
    pub fn alloc<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
    ) -> Result<u32> {
        if let Some(nid) = self.free.pop()
            && self.get(dev, layout, seed, nid)? == 0
        {
            self.set(dev, layout, seed, nid, NEW_ADDR)?;
            return Ok(nid);
        }
        // Scan from the cursor, wrapping once.
        let start = self.cursor.clamp(1, self.max_nid.saturating_sub(1).max(1));
        let mut nid = start;
        loop {
            if !self.pending_free.contains(&nid) && self.get(dev, layout, seed, nid)? == 0 {
                self.set(dev, layout, seed, nid, NEW_ADDR)?;
                // nid < max_nid: the sums here do not overflow.
                self.cursor = nid.saturating_add(1);
                return Ok(nid);
            }
            nid = nid.saturating_add(1);
            if nid >= self.max_nid {
                nid = 1;
            }
            if nid == start {
                return Err(Error::Errno(Errno::ENOSPC));
            }
        }
    }

    /// Release a nid; reusable after the next checkpoint.
    pub fn release<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
        nid: u32,
    ) -> Result<()> {
        // Room first: a nid released but not remembered as pending could be reused before the
        // checkpoint that frees it commits.
        self.pending_free.try_reserve(1).map_err(mem::oom)?;
        self.set(dev, layout, seed, nid, 0)?;
        mem::set_insert(&mut self.pending_free, nid)?;
        Ok(())
    }

    /// Write changed blocks to their shadow copies (every block below the new high-water mark
    /// must exist on disk, so blocks first touched now are written too).
    pub fn write_dirty<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        layout: &Layout,
        seed: u32,
    ) -> Result<()> {
        let high = self
            .blocks
            .iter()
            .filter(|(_, b)| b.dirty)
            .map(|(&i, _)| i.saturating_add(1))
            .max()
            .unwrap_or(0);
        for b in self.written..high {
            self.block(dev, layout, seed, b)?.dirty = true;
        }
        self.written = self.written.max(high);
        let mut dirty = mem::collect(self.blocks.iter().filter(|(_, b)| b.dirty).map(|(&i, _)| i))?;
        dirty.sort_unstable();
        for b in dirty {
            let copy = !self.copy.get(b as usize).copied().unwrap_or(false);
            let Some(blk) = self.blocks.get_mut(&b) else {
                continue;
            };
            let bytes: &mut [u8; BLOCK_SIZE] = zerocopy::transmute_mut!(&mut *blk.raw);
            csum::seal(seed, MAGIC_NAT, bytes);
            dev.write_blocks(layout.nat_copy_addr(b, copy), bytes, WriteFlags::NONE)
                .map_err(io)?;
            blk.dirty = false;
            if let Some(c) = self.copy.get_mut(b as usize) {
                *c = copy;
            }
        }
        Ok(())
    }

    /// Which copy of each table block is current, and the high-water mark (for
    /// `restore_copies`).
    pub fn copies(&self) -> Result<(Vec<bool>, u32)> {
        Ok((mem::to_vec(&self.copy)?, self.written))
    }

    /// A checkpoint that wrote shadow copies did not commit: as `SegmentTable::restore_copies`.
    /// The blocks written are still cached (nothing is evicted while a checkpoint runs: the
    /// volume is held, and writing loads no block), so they can be marked dirty again.
    pub fn restore_copies(&mut self, (copies, written): (Vec<bool>, u32)) {
        for (b, (c, &was)) in self.copy.iter_mut().zip(&copies).enumerate() {
            if *c != was {
                *c = was;
                if let Some(blk) = self.blocks.get_mut(&(b as u32)) {
                    blk.dirty = true;
                }
            }
        }
        self.written = written;
    }

    /// The checkpoint committed: nids freed before it are reusable.
    /// Without the memory to list them, they stay pending (found again by the scan after the
    /// next checkpoint): nothing is lost.
    pub fn commit(&mut self) {
        if self.free.try_reserve(self.pending_free.len()).is_ok() {
            // Room reserved: extending does not allocate.
            #[allow(clippy::disallowed_methods)]
            self.free.extend(self.pending_free.drain());
        }
    }

    pub fn copy_bitmap(&self, out: &mut [u8]) {
        set_copy_bits(&self.copy, out)
    }

    pub fn dirty_blocks(&self) -> usize {
        self.blocks.values().filter(|b| b.dirty).count()
    }

    /// Table blocks in memory, and how many of them are clean.
    pub fn cached_blocks(&self) -> (usize, usize) {
        let dirty = self.dirty_blocks();
        (self.blocks.len(), self.blocks.len().saturating_sub(dirty))
    }

    /// Drop up to `n` clean table blocks, the least recently used first (see
    /// `NodeCache::shrink` for `exact`); they are read again when needed. Returns how many went.
    pub fn shrink(&mut self, n: usize, exact: bool) -> usize {
        crate::lru::shrink(&mut self.blocks, n, exact)
    }
}
