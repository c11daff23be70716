//! Damage crafted into a volume's blocks with checksums re-sealed, so only the format's
//! validators (mount) or fsck's checks can catch it. logfs's corrupt.rs and fsck's detect.rs
//! both use it (`#[path]`), through the format module rather than by hand.
#![allow(dead_code)]

use std::sync::Arc;

use bento_user::MemDevice;
use logfs::BLOCK_SIZE;
use logfs::checkpoint::Checkpoint;
use logfs::format::dir::DirBlock;
use logfs::format::header::{self as csum, MAGIC_DIR, MAGIC_NAT, MAGIC_NODE};
use logfs::format::layout::NAT_ENTRIES_PER_BLOCK;
use logfs::format::node::{Node, RawInode};
use logfs::format::superblock::Superblock;
use logfs::format::tables::{RawNatBlock, copy_bit};
use zerocopy::FromBytes;

/// An unmounted volume on a memory device, with its superblock and current checkpoint.
pub struct Image {
    pub dev: Arc<MemDevice>,
    pub sb: Superblock,
    pub cp: Checkpoint,
    pub seed: u32,
}

impl Image {
    pub fn open(dev: Arc<MemDevice>) -> Image {
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
        self.dev.snapshot()[addr as usize * BLOCK_SIZE..(addr as usize + 1) * BLOCK_SIZE].to_vec()
    }

    /// Change block `addr` and seal it again as a `magic` block.
    pub fn edit(&self, addr: u64, magic: u32, f: impl FnOnce(&mut [u8; BLOCK_SIZE])) {
        let seed = self.seed;
        self.dev.with_bytes(|img| {
            let at = addr as usize * BLOCK_SIZE;
            let blk: &mut [u8; BLOCK_SIZE] = (&mut img[at..at + BLOCK_SIZE]).try_into().unwrap();
            f(blk);
            csum::seal(seed, magic, blk);
        });
    }

    /// Where the current copy of NAT block `block` is.
    pub fn nat_block_addr(&self, block: u32) -> u64 {
        let copy = copy_bit(&self.cp.nat_bitmap, block as usize);
        self.sb.layout.nat_copy_addr(block, copy)
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
