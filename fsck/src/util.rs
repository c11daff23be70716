//! Plumbing: bounded device reads, and compact sets of blocks and nids (bitvec bitmaps).

use bento_api::Errno;
use bento_api::ks::block::BlockDevice;
use bitvec::prelude::{BitVec, Lsb0};
use logfs::BLOCK_SIZE;
use logfs::format::tables::SegMap;

use crate::report::Operational;

/// Why the check stops early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The check cannot run: reported as an operational error.
    Operational(Operational),
    /// The volume is too damaged to go on; the reason is already among the findings.
    Fatal,
}

pub(crate) type Res<T> = Result<T, Stop>;

pub(crate) fn oom(what: &'static str) -> Stop {
    Stop::Operational(Operational::OutOfMemory { what })
}

/// A zeroed vector of `n` elements, or an operational out-of-memory stop.
pub(crate) fn try_vec<T: Clone>(n: usize, v: T, what: &'static str) -> Res<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| oom(what))?;
    out.resize(n, v);
    Ok(out)
}

pub(crate) type Block = Box<[u8; BLOCK_SIZE]>;

pub(crate) fn new_block() -> Block {
    Box::new([0u8; BLOCK_SIZE])
}

/// The device, read-only, with every request checked against its size first.
pub(crate) struct Disk<'a, D: ?Sized> {
    dev: &'a D,
    blocks: u64,
}

impl<'a, D: BlockDevice + ?Sized> Disk<'a, D> {
    pub fn new(dev: &'a D) -> Self {
        let blocks = dev.block_count();
        Disk { dev, blocks }
    }

    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    pub fn dev(&self) -> &'a D {
        self.dev
    }

    /// Read `buf.len() / 4096` blocks from `addr`. A request past the end of the device is a
    /// bug of the caller and reported as an I/O error, never a panic.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Res<()> {
        let n = (buf.len() / BLOCK_SIZE) as u64;
        if !buf.len().is_multiple_of(BLOCK_SIZE)
            || addr.checked_add(n).is_none_or(|e| e > self.blocks)
        {
            return Err(Stop::Operational(Operational::Io {
                block: addr,
                errno: Errno::EIO,
            }));
        }
        self.dev
            .read_blocks(addr, buf)
            .map_err(|errno| Stop::Operational(Operational::Io { block: addr, errno }))
    }

    pub fn read_block(&self, addr: u64) -> Res<Block> {
        let mut b = new_block();
        self.read(addr, &mut b[..])?;
        Ok(b)
    }
}

/// One bit per main-area block, allocated per segment on first use: a volume that uses little
/// costs little.
pub(crate) struct SegBitmap {
    segs: Vec<Option<Box<SegMap>>>,
}

impl SegBitmap {
    pub fn new(segments: u32) -> Res<SegBitmap> {
        Ok(SegBitmap {
            segs: try_vec(segments as usize, None, "block bitmap")?,
        })
    }

    /// Set the bit; returns whether it was already set.
    pub fn test_and_set(&mut self, segno: u32, off: u32) -> bool {
        let Some(slot) = self.segs.get_mut(segno as usize) else {
            return false;
        };
        let map = slot.get_or_insert_with(|| Box::new(SegMap::ZERO));
        map.get_mut(off as usize)
            .is_some_and(|mut b| b.replace(true))
    }

    pub fn test(&self, segno: u32, off: u32) -> bool {
        self.get(segno)
            .is_some_and(|m| m.get(off as usize).is_some_and(|b| *b))
    }

    pub fn get(&self, segno: u32) -> Option<&SegMap> {
        self.segs.get(segno as usize)?.as_deref()
    }

    pub fn map(&self, segno: u32) -> SegMap {
        self.get(segno).copied().unwrap_or(SegMap::ZERO)
    }

    pub fn count(&self, segno: u32) -> u32 {
        self.get(segno).map_or(0, |m| m.count_ones() as u32)
    }
}

/// A set of nids below a bound.
pub(crate) struct NidSet {
    bits: BitVec<u64, Lsb0>,
}

impl NidSet {
    pub fn new(limit: u32) -> Res<NidSet> {
        let words = try_vec((limit as usize).div_ceil(64), 0u64, "nid bitmap")?;
        Ok(NidSet {
            bits: BitVec::from_vec(words),
        })
    }

    /// Insert; returns whether it was already there. Nids past the bound are never members.
    pub fn insert(&mut self, nid: u32) -> bool {
        self.bits
            .get_mut(nid as usize)
            .is_some_and(|mut b| b.replace(true))
    }

    pub fn contains(&self, nid: u32) -> bool {
        self.bits.get(nid as usize).is_some_and(|b| *b)
    }
}

/// First set bit and number of set bits of a segment map.
pub(crate) fn first_and_count(map: &SegMap) -> Option<(u32, u32)> {
    let first = map.first_one()?;
    Some((first as u32, map.count_ones() as u32))
}
