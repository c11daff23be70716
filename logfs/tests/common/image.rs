//! Damage crafted into a volume's blocks with checksums re-sealed, so only the format's
//! validators (mount) or fsck's checks can catch it. logfs's corrupt.rs, fsck's detect.rs and
//! the mount fuzzer (logfs/fuzz) use it (`#[path]`), through the format module rather than by
//! hand. It works on any block device: a `MemDevice` in the tests, a copy-on-write
//! `CrashDevice` over a shared seed image in the fuzzer.
#![allow(dead_code)]

use std::sync::Arc;

use bento_runtime::ks::block::{BlockDevice, WriteFlags};
use bento_user::MemDevice;
use logfs::BLOCK_SIZE;
use logfs::checkpoint::Checkpoint;
use logfs::format::dir::DirBlock;
use logfs::format::header::{
    self as csum, MAGIC_CHECKPOINT, MAGIC_DIR, MAGIC_NAT, MAGIC_NODE, MAGIC_ORPHAN, MAGIC_SUMMARY,
    MAGIC_SUPERBLOCK, MAGIC_SUT,
};
use logfs::format::layout::NAT_ENTRIES_PER_BLOCK;
use logfs::format::node::{Node, RawInode};
use logfs::format::superblock::Superblock;
use logfs::format::tables::{RawNatBlock, copy_bit};
use zerocopy::FromBytes;

/// Every block kind that carries a `{ magic, crc }` header.
pub const MAGICS: [u32; 8] = [
    MAGIC_SUPERBLOCK,
    MAGIC_CHECKPOINT,
    MAGIC_SUT,
    MAGIC_NAT,
    MAGIC_SUMMARY,
    MAGIC_NODE,
    MAGIC_DIR,
    MAGIC_ORPHAN,
];

/// The magic a block starts with.
pub fn magic_of(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Offset of `body_crc` in a checkpoint header.
const CP_BODY_CRC_AT: usize = 20;
/// Offset of `body_blocks` in a checkpoint header.
const CP_BODY_BLOCKS_AT: usize = 16;

/// An unmounted volume on a block device, with its superblock and current checkpoint.
pub struct Image<D = MemDevice> {
    pub dev: Arc<D>,
    pub sb: Superblock,
    pub cp: Checkpoint,
    pub seed: u32,
}

impl<D: BlockDevice> Image<D> {
    pub fn open(dev: Arc<D>) -> Image<D> {
        let sb = Superblock::read(&*dev).unwrap();
        let cp = Checkpoint::read_latest(&*dev, &sb).unwrap();
        Image {
            seed: sb.csum_seed(),
            dev,
            sb,
            cp,
        }
    }

    pub fn read(&self, addr: u64) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK_SIZE];
        self.dev.read_blocks(addr, &mut b).unwrap();
        b
    }

    fn read_block(&self, addr: u64) -> [u8; BLOCK_SIZE] {
        let mut b = [0u8; BLOCK_SIZE];
        self.dev.read_blocks(addr, &mut b).unwrap();
        b
    }

    pub fn write(&self, addr: u64, b: &[u8; BLOCK_SIZE]) {
        self.dev.write_blocks(addr, b, WriteFlags::NONE).unwrap();
    }

    /// Change block `addr` and seal it again as a `magic` block.
    pub fn edit(&self, addr: u64, magic: u32, f: impl FnOnce(&mut [u8; BLOCK_SIZE])) {
        let mut blk = self.read_block(addr);
        f(&mut blk);
        csum::seal(self.seed, magic, &mut blk);
        self.write(addr, &blk);
    }

    /// Change block `addr` in place, whatever it is, and re-seal it the way a crafted image
    /// would: with the magic its header carried before the change, the superblock with the
    /// unseeded CRC, a checkpoint body block by recomputing its pack's `body_crc` (then the
    /// pack's header). A block without a known magic (data, a copy bitmap) is just written.
    pub fn edit_resealed(&self, addr: u64, f: impl FnOnce(&mut [u8; BLOCK_SIZE])) {
        let mut blk = self.read_block(addr);
        let magic = magic_of(&blk);
        f(&mut blk);
        if MAGICS.contains(&magic) {
            let seed = if magic == MAGIC_SUPERBLOCK {
                0
            } else {
                self.seed
            };
            csum::seal(seed, magic, &mut blk);
        }
        self.write(addr, &blk);
        if let Some(pack) = self.cp_pack_of(addr)
            && addr != self.sb.layout.cp_pack_start(pack)
        {
            self.fix_cp_body(pack);
        }
    }

    /// The checkpoint pack block `addr` lies in.
    pub fn cp_pack_of(&self, addr: u64) -> Option<u32> {
        let l = &self.sb.layout;
        (0..2).find(|&p| {
            let start = l.cp_pack_start(p);
            (start..start + u64::from(l.cp_blocks)).contains(&addr)
        })
    }

    pub fn current_pack(&self) -> u32 {
        (self.cp.seq % 2) as u32
    }

    /// Recompute pack `pack`'s body CRC after its body changed, as far as its header's
    /// `body_blocks` reaches inside the pack.
    pub fn fix_cp_body(&self, pack: u32) {
        let l = &self.sb.layout;
        let start = l.cp_pack_start(pack);
        let hdr = self.read_block(start);
        if magic_of(&hdr) != MAGIC_CHECKPOINT {
            return;
        }
        let at = CP_BODY_BLOCKS_AT;
        let n = u32::from_le_bytes(hdr[at..at + 4].try_into().unwrap()) as usize;
        if n >= l.cp_blocks as usize {
            return;
        }
        let mut body = vec![0u8; n * BLOCK_SIZE];
        self.dev.read_blocks(start + 1, &mut body).unwrap();
        let crc = csum::crc32(self.seed, &body);
        self.edit(start, MAGIC_CHECKPOINT, |b| {
            b[CP_BODY_CRC_AT..CP_BODY_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes())
        });
    }

    /// Where the current copy of NAT block `block` is.
    pub fn nat_block_addr(&self, block: u32) -> u64 {
        let copy = copy_bit(&self.cp.nat_bitmap, block as usize);
        self.sb.layout.nat_copy_addr(block, copy)
    }

    /// Where the current copy of SUT block `block` is.
    pub fn sut_block_addr(&self, block: u32) -> u64 {
        let copy = copy_bit(&self.cp.sut_bitmap, block as usize);
        self.sb.layout.sut_copy_addr(block, copy)
    }

    pub fn node_addr(&self, nid: u32) -> u64 {
        let b = self.read(self.nat_block_addr(nid / NAT_ENTRIES_PER_BLOCK));
        let raw = RawNatBlock::ref_from_bytes(&b[..]).unwrap();
        u64::from(raw.entries[(nid % NAT_ENTRIES_PER_BLOCK) as usize].get())
    }

    pub fn edit_nat(&self, nid: u32, addr: u32) {
        self.edit(
            self.nat_block_addr(nid / NAT_ENTRIES_PER_BLOCK),
            MAGIC_NAT,
            |b| {
                let raw = RawNatBlock::mut_from_bytes(&mut b[..]).unwrap();
                raw.entries[(nid % NAT_ENTRIES_PER_BLOCK) as usize] = addr.into();
            },
        );
    }

    pub fn edit_node(&self, nid: u32, f: impl FnOnce(&mut Node)) {
        self.edit(self.node_addr(nid), MAGIC_NODE, |b| {
            f(Node::mut_from_bytes(&mut b[..]).unwrap())
        });
    }

    pub fn edit_inode(&self, ino: u32, f: impl FnOnce(&mut RawInode)) {
        self.edit_node(ino, |n| f(n.inode_mut()));
    }

    /// The directory block of `dir` holding `name`, and the entry's slot.
    pub fn find_entry(&self, dir: u32, name: &[u8]) -> (u64, usize) {
        let raw = self.read(self.node_addr(dir));
        let node = Node::ref_from_bytes(&raw[..]).unwrap();
        for a in node.inode().addrs.iter().map(|a| u64::from(a.get())) {
            if a == 0 {
                continue;
            }
            let blk = self.read(a);
            let d = DirBlock::ref_from_bytes(&blk[..]).unwrap();
            if let Some(e) = d.entries_from(0).find(|e| e.name == name) {
                return (a, e.slot);
            }
        }
        panic!("no entry {name:?} in {dir}");
    }

    pub fn edit_entry(&self, dir: u32, name: &[u8], f: impl FnOnce(&mut DirBlock, usize)) {
        let (addr, slot) = self.find_entry(dir, name);
        self.edit(addr, MAGIC_DIR, |b| {
            f(DirBlock::mut_from_bytes(&mut b[..]).unwrap(), slot)
        });
    }
}
