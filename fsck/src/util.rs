//! Plumbing: bounded device reads, and compact sets of blocks and nids.

use bento_api::Errno;
use bento_api::ks::block::BlockDevice;
use logfs::BLOCK_SIZE;
use logfs::layout::SEG_BLOCKS;

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

const WORDS: usize = SEG_BLOCKS as usize / 64;

/// One bit per main-area block, allocated per segment on first use: a volume that uses little
/// costs little.
pub(crate) struct SegBitmap {
    segs: Vec<Option<Box<[u64; WORDS]>>>,
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
        let words = slot.get_or_insert_with(|| Box::new([0; WORDS]));
        let (w, b) = ((off / 64) as usize % WORDS, off % 64);
        let was = words[w] & (1 << b) != 0;
        words[w] |= 1 << b;
        was
    }

    pub fn test(&self, segno: u32, off: u32) -> bool {
        self.get(segno)
            .is_some_and(|w| w[(off / 64) as usize % WORDS] & (1 << (off % 64)) != 0)
    }

    pub fn get(&self, segno: u32) -> Option<&[u64; WORDS]> {
        self.segs.get(segno as usize)?.as_deref()
    }

    pub fn words(&self, segno: u32) -> [u64; WORDS] {
        self.get(segno).copied().unwrap_or([0; WORDS])
    }

    pub fn count(&self, segno: u32) -> u32 {
        self.get(segno)
            .map_or(0, |w| w.iter().map(|x| x.count_ones()).sum())
    }
}

/// A set of nids below a bound.
pub(crate) struct NidSet {
    bits: Vec<u64>,
}

impl NidSet {
    pub fn new(limit: u32) -> Res<NidSet> {
        Ok(NidSet {
            bits: try_vec((limit as usize).div_ceil(64), 0, "nid bitmap")?,
        })
    }

    /// Insert; returns whether it was already there. Nids past the bound are never members.
    pub fn insert(&mut self, nid: u32) -> bool {
        match self.bits.get_mut(nid as usize / 64) {
            Some(w) => {
                let was = *w & (1 << (nid % 64)) != 0;
                *w |= 1 << (nid % 64);
                was
            }
            None => false,
        }
    }

    pub fn contains(&self, nid: u32) -> bool {
        self.bits
            .get(nid as usize / 64)
            .is_some_and(|w| w & (1 << (nid % 64)) != 0)
    }
}

/// First set bit and number of set bits of a segment map.
pub(crate) fn first_and_count(words: &[u64; WORDS]) -> Option<(u32, u32)> {
    let count: u32 = words.iter().map(|w| w.count_ones()).sum();
    let first = words
        .iter()
        .enumerate()
        .find(|(_, w)| **w != 0)
        .map(|(i, w)| i as u32 * 64 + w.trailing_zeros())?;
    Some((first, count))
}

/// Bit `i` of a little-endian byte bitmap (checkpoint copy bitmaps).
pub(crate) fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}
