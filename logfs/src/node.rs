//! Node blocks: inodes, direct and indirect index nodes, xattr nodes; and the cache that holds
//! them in memory. A node is named by its nid; where it lives is the NAT's business, so
//! rewriting a node never touches its parent.

use alloc::boxed::Box;
use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};
use static_assertions::const_assert_eq;
use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use bento_runtime::Errno;
use bento_runtime::fs::Timespec;

use crate::csum::{self, MAGIC_NODE};
use crate::error::{Error, Result};
use crate::layout::BLOCK_SIZE;

pub const NODE_HEADER_SIZE: usize = 40;
pub const NODE_BODY_SIZE: usize = BLOCK_SIZE - NODE_HEADER_SIZE;

/// Block addresses in an inode.
pub const INODE_ADDRS: usize = 913;
/// Node ids in an inode: two direct, two indirect, one double indirect.
pub const INODE_NIDS: usize = 5;
/// Addresses in a direct node, nids in an indirect node.
pub const NODE_ADDRS: usize = 1014;
/// Bytes of inline data an inode holds in place of its addresses.
pub const INLINE_MAX: usize = INODE_ADDRS * 4;
/// Longest name kept in an inode.
pub const INODE_NAME_MAX: usize = 256;

pub const KIND_INODE: u8 = 1;
pub const KIND_DIRECT: u8 = 2;
pub const KIND_INDIRECT: u8 = 3;
pub const KIND_XATTR: u8 = 4;

pub const FLAG_FSYNC: u8 = 1;
pub const FLAG_DENTRY: u8 = 2;

/// Inode flag: the data is stored inline.
pub const INODE_INLINE_DATA: u32 = 1;

/// The node `offset` of an xattr node.
pub const XATTR_NODE_OFFSET: u32 = u32::MAX;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct NodeHeader {
    pub magic: U32,
    pub crc: U32,
    pub nid: U32,
    pub ino: U32,
    pub offset: U32,
    pub kind: u8,
    pub flags: u8,
    pub _reserved: U16,
    pub cp_ver: U64,
    pub next_addr: U32,
    pub _reserved2: U32,
}
const_assert_eq!(core::mem::size_of::<NodeHeader>(), NODE_HEADER_SIZE);

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone)]
#[repr(C)]
pub struct RawInode {
    pub mode: U32,
    pub uid: U32,
    pub gid: U32,
    pub nlink: U32,
    pub size: U64,
    pub blocks: U64,
    pub atime: I64,
    pub mtime: I64,
    pub ctime: I64,
    pub crtime: I64,
    pub atime_nsec: U32,
    pub mtime_nsec: U32,
    pub ctime_nsec: U32,
    pub crtime_nsec: U32,
    pub generation: U32,
    pub flags: U32,
    pub rdev: U32,
    pub parent: U32,
    pub xattr_nid: U32,
    pub dir_depth: U32,
    pub name_len: U32,
    pub _reserved: [u8; 20],
    pub name: [u8; INODE_NAME_MAX],
    pub addrs: [U32; INODE_ADDRS],
    pub nids: [U32; INODE_NIDS],
}
const_assert_eq!(core::mem::size_of::<RawInode>(), NODE_BODY_SIZE);

/// A whole node block.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Node {
    pub header: NodeHeader,
    pub body: [u8; NODE_BODY_SIZE],
}
const_assert_eq!(core::mem::size_of::<Node>(), BLOCK_SIZE);

type AddrArray = [U32; NODE_ADDRS];
const_assert_eq!(core::mem::size_of::<AddrArray>(), NODE_BODY_SIZE);

fn get_ts(sec: &I64, nsec: &U32) -> Timespec {
    Timespec::new(sec.get(), nsec.get().min(999_999_999))
}

impl RawInode {
    pub fn atime(&self) -> Timespec {
        get_ts(&self.atime, &self.atime_nsec)
    }
    pub fn mtime(&self) -> Timespec {
        get_ts(&self.mtime, &self.mtime_nsec)
    }
    pub fn ctime(&self) -> Timespec {
        get_ts(&self.ctime, &self.ctime_nsec)
    }
    pub fn crtime(&self) -> Timespec {
        get_ts(&self.crtime, &self.crtime_nsec)
    }
    pub fn set_atime(&mut self, t: Timespec) {
        self.atime = t.sec.into();
        self.atime_nsec = t.nsec.into();
    }
    pub fn set_mtime(&mut self, t: Timespec) {
        self.mtime = t.sec.into();
        self.mtime_nsec = t.nsec.into();
    }
    pub fn set_ctime(&mut self, t: Timespec) {
        self.ctime = t.sec.into();
        self.ctime_nsec = t.nsec.into();
    }
    pub fn set_crtime(&mut self, t: Timespec) {
        self.crtime = t.sec.into();
        self.crtime_nsec = t.nsec.into();
    }

    pub fn is_inline(&self) -> bool {
        self.flags.get() & INODE_INLINE_DATA != 0
    }

    /// The inline data area (the address array viewed as bytes).
    pub fn inline_data(&self) -> &[u8; INLINE_MAX] {
        zerocopy::transmute_ref!(&self.addrs)
    }

    pub fn inline_data_mut(&mut self) -> &mut [u8; INLINE_MAX] {
        zerocopy::transmute_mut!(&mut self.addrs)
    }

    /// Record the name the inode lives under (for recovery and fsck); long names are cut.
    pub fn set_name(&mut self, parent: u32, name: &[u8]) {
        let n = name.len().min(INODE_NAME_MAX);
        self.parent = parent.into();
        self.name_len = (n as u32).into();
        self.name = [0; INODE_NAME_MAX];
        self.name[..n].copy_from_slice(&name[..n]);
    }
}

impl Node {
    /// A zeroed node, or ENOMEM.
    pub fn new_boxed() -> Result<Box<Node>> {
        Node::new_box_zeroed().map_err(|_| Error::Errno(Errno::ENOMEM))
    }

    pub fn init(&mut self, nid: u32, ino: u32, offset: u32, kind: u8) {
        self.as_mut_bytes().fill(0);
        self.header.nid = nid.into();
        self.header.ino = ino.into();
        self.header.offset = offset.into();
        self.header.kind = kind;
    }

    pub fn nid(&self) -> u32 {
        self.header.nid.get()
    }

    pub fn kind(&self) -> u8 {
        self.header.kind
    }

    pub fn inode(&self) -> &RawInode {
        zerocopy::transmute_ref!(&self.body)
    }

    pub fn inode_mut(&mut self) -> &mut RawInode {
        zerocopy::transmute_mut!(&mut self.body)
    }

    /// Addresses of a direct node, nids of an indirect node.
    pub fn slots(&self) -> &[U32; NODE_ADDRS] {
        zerocopy::transmute_ref!(&self.body)
    }

    pub fn slots_mut(&mut self) -> &mut [U32; NODE_ADDRS] {
        zerocopy::transmute_mut!(&mut self.body)
    }

    pub fn bytes(&self) -> &[u8; BLOCK_SIZE] {
        zerocopy::transmute_ref!(self)
    }

    /// Seal for writing: the log position fields, then the checksum.
    pub fn seal(&mut self, seed: u32, cp_ver: u64, next_addr: u32) -> &[u8; BLOCK_SIZE] {
        self.header.cp_ver = cp_ver.into();
        self.header.next_addr = next_addr.into();
        let bytes: &mut [u8; BLOCK_SIZE] = zerocopy::transmute_mut!(self);
        csum::seal(seed, MAGIC_NODE, bytes);
        bytes
    }

    /// Decode a node read from `addr` that should be `nid`.
    pub fn decode(block: &[u8; BLOCK_SIZE], seed: u32, addr: u64, nid: u32) -> Result<Box<Node>> {
        csum::verify(seed, MAGIC_NODE, block, "node (checksum)", addr)?;
        let mut n = Node::new_boxed()?;
        n.as_mut_bytes().copy_from_slice(block);
        if n.nid() != nid {
            return Err(Error::corrupt("node (wrong nid)", addr));
        }
        if !matches!(
            n.kind(),
            KIND_INODE | KIND_DIRECT | KIND_INDIRECT | KIND_XATTR
        ) {
            return Err(Error::corrupt("node (unknown kind)", addr));
        }
        if n.kind() == KIND_INODE && n.header.ino.get() != nid {
            return Err(Error::corrupt("inode (owner is not itself)", addr));
        }
        Ok(n)
    }
}

/// Nodes in memory. Dirty nodes stay until a checkpoint writes them; clean ones are dropped when
/// the cache grows past its capacity.
pub struct NodeCache {
    nodes: HashMap<u32, Box<Node>>,
    dirty: HashSet<u32>,
    capacity: usize,
}

impl NodeCache {
    pub fn new(capacity: usize) -> NodeCache {
        NodeCache {
            nodes: HashMap::new(),
            dirty: HashSet::new(),
            capacity,
        }
    }

    pub fn contains(&self, nid: u32) -> bool {
        self.nodes.contains_key(&nid)
    }

    pub fn get(&self, nid: u32) -> Option<&Node> {
        self.nodes.get(&nid).map(|b| &**b)
    }

    /// Mutable access marks the node dirty.
    pub fn get_mut(&mut self, nid: u32) -> Option<&mut Node> {
        let n = self.nodes.get_mut(&nid)?;
        self.dirty.insert(nid);
        Some(&mut **n)
    }

    /// A node being written out: mutable without marking it dirty.
    pub fn get_for_write(&mut self, nid: u32) -> Option<&mut Node> {
        self.nodes.get_mut(&nid).map(|b| &mut **b)
    }

    pub fn insert_clean(&mut self, node: Box<Node>) {
        if self.nodes.len() >= self.capacity {
            self.shrink();
        }
        self.nodes.insert(node.nid(), node);
    }

    pub fn insert_dirty(&mut self, node: Box<Node>) {
        let nid = node.nid();
        self.insert_clean(node);
        self.dirty.insert(nid);
    }

    /// Forget a node entirely (it was freed).
    pub fn remove(&mut self, nid: u32) {
        self.nodes.remove(&nid);
        self.dirty.remove(&nid);
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty.len()
    }

    /// Dirty nids, in an order that keeps a file's nodes together.
    pub fn take_dirty(&mut self) -> Vec<u32> {
        let mut v: Vec<u32> = self.dirty.drain().collect();
        v.sort_unstable_by_key(|nid| {
            self.nodes
                .get(nid)
                .map(|n| (n.header.ino.get(), n.header.offset.get()))
        });
        v
    }

    /// The node was written: not dirty any more.
    pub fn clean(&mut self, nid: u32) {
        self.dirty.remove(&nid);
    }

    /// Dirty nodes of inode `ino` of `kind`.
    pub fn dirty_of(&self, ino: u32, kind: u8) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .dirty
            .iter()
            .copied()
            .filter(|nid| {
                self.nodes
                    .get(nid)
                    .is_some_and(|n| n.header.ino.get() == ino && n.kind() == kind)
            })
            .collect();
        v.sort_unstable();
        v
    }

    pub fn mark_dirty(&mut self, nid: u32) {
        if self.nodes.contains_key(&nid) {
            self.dirty.insert(nid);
        }
    }

    pub fn is_dirty(&self, nid: u32) -> bool {
        self.dirty.contains(&nid)
    }

    /// Drop about a quarter of the clean nodes.
    fn shrink(&mut self) {
        let target = self.capacity - self.capacity / 4;
        let mut excess = self.nodes.len().saturating_sub(target);
        let dirty = &self.dirty;
        self.nodes.retain(|nid, _| {
            if excess > 0 && !dirty.contains(nid) {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
}
