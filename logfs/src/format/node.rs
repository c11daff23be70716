//! Node blocks: inodes, direct and indirect index nodes, xattr nodes.

use alloc::boxed::Box;

use static_assertions::const_assert_eq;
use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use bento_runtime::Errno;
use bento_runtime::fs::Timespec;

use super::dir::MAX_DEPTH;
use super::geometry::MAX_FILE_SIZE;
use super::header::{self as csum, BlockHeader, MAGIC_NODE};
use super::layout::{BLOCK_SIZE, Layout};
use super::xattr::XattrBody;
use crate::error::{Error, Result};

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
    pub block: BlockHeader,
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

/// An inode field out of its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InodeProblem {
    InlineTooLarge {
        size: u64,
    },
    InlineWithNodes,
    SizeTooLarge {
        size: u64,
    },
    NameLen {
        len: u32,
    },
    DirDepth {
        depth: u32,
    },
    /// An index node, the xattr node or the parent past `max_nid`.
    NodeIdOutOfRange,
    /// A block address neither a hole, `NEW_ADDR`, nor in the main area.
    AddrOutsideMain,
    /// More blocks owned than the volume has.
    BlocksTooMany {
        blocks: u64,
    },
}

impl InodeProblem {
    pub fn what(self) -> &'static str {
        match self {
            InodeProblem::InlineTooLarge { .. } => "inode (inline size)",
            InodeProblem::InlineWithNodes => "inode (inline data with index nodes)",
            InodeProblem::SizeTooLarge { .. } => "inode (size past the largest file)",
            InodeProblem::NameLen { .. } => "inode (name length)",
            InodeProblem::DirDepth { .. } => "inode (directory depth)",
            InodeProblem::NodeIdOutOfRange => "inode (node id out of range)",
            InodeProblem::AddrOutsideMain => "inode (block address outside the main area)",
            InodeProblem::BlocksTooMany { .. } => "inode (more blocks than the volume)",
        }
    }
}

/// A node block that is not the node it was looked up as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeIdentityProblem {
    WrongNid { found: u32 },
    UnknownKind { kind: u8 },
}

impl NodeIdentityProblem {
    pub fn what(self) -> &'static str {
        match self {
            NodeIdentityProblem::WrongNid { .. } => "node (wrong nid)",
            NodeIdentityProblem::UnknownKind { .. } => "node (unknown kind)",
        }
    }
}

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

    /// How the inode breaks the format's invariants: everything later code indexes or follows
    /// with it must be in range.
    pub fn problems(&self, layout: &Layout) -> impl Iterator<Item = InodeProblem> + use<> {
        let size = self.size.get();
        let blocks = self.blocks.get();
        let inline = self.is_inline();
        let (name_len, depth) = (self.name_len.get(), self.dir_depth.get());
        let nids_ok = self.nids.iter().all(|n| layout.nid_ok(n.get()))
            && layout.nid_ok(self.xattr_nid.get())
            && layout.nid_ok(self.parent.get());
        let addrs_ok = inline || self.addrs.iter().all(|a| layout.addr_ok(a.get()));
        [
            (inline && size > INLINE_MAX as u64).then_some(InodeProblem::InlineTooLarge { size }),
            (inline && self.nids.iter().any(|n| n.get() != 0))
                .then_some(InodeProblem::InlineWithNodes),
            (size > MAX_FILE_SIZE).then_some(InodeProblem::SizeTooLarge { size }),
            (name_len as usize > INODE_NAME_MAX).then_some(InodeProblem::NameLen { len: name_len }),
            (depth > MAX_DEPTH).then_some(InodeProblem::DirDepth { depth }),
            (!nids_ok).then_some(InodeProblem::NodeIdOutOfRange),
            (!addrs_ok).then_some(InodeProblem::AddrOutsideMain),
            (blocks > layout.total_blocks).then_some(InodeProblem::BlocksTooMany { blocks }),
        ]
        .into_iter()
        .flatten()
    }

    /// Record the name the inode lives under (for recovery and fsck); long names are cut.
    pub fn set_name(&mut self, parent: u32, name: &[u8]) {
        let name = name.get(..INODE_NAME_MAX).unwrap_or(name);
        self.parent = parent.into();
        self.name_len = (name.len() as u32).into();
        self.name = [0; INODE_NAME_MAX];
        if let Some(dst) = self.name.get_mut(..name.len()) {
            dst.copy_from_slice(name);
        }
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

    /// Decode a node read from `addr` that should be `nid`, and check it against the format's
    /// invariants (`layout` bounds its addresses and nids).
    pub fn decode(
        block: &[u8; BLOCK_SIZE],
        seed: u32,
        addr: u64,
        nid: u32,
        layout: &Layout,
    ) -> Result<Box<Node>> {
        csum::verify(seed, MAGIC_NODE, block, "node (checksum)", addr)?;
        let mut n = Node::new_boxed()?;
        n.as_mut_bytes().copy_from_slice(block);
        if let Some(p) = n.identity_problem(nid) {
            return Err(Error::corrupt(p.what(), addr));
        }
        if let Some(why) = n.problem(layout) {
            return Err(Error::corrupt(why, addr));
        }
        Ok(n)
    }

    /// Whether the block is node `nid` of a known kind: what every reader checks first.
    pub fn identity_problem(&self, nid: u32) -> Option<NodeIdentityProblem> {
        if self.nid() != nid {
            Some(NodeIdentityProblem::WrongNid { found: self.nid() })
        } else if !matches!(
            self.kind(),
            KIND_INODE | KIND_DIRECT | KIND_INDIRECT | KIND_XATTR
        ) {
            Some(NodeIdentityProblem::UnknownKind { kind: self.kind() })
        } else {
            None
        }
    }

    /// Why the node breaks the format's invariants, if it does.
    pub fn problem(&self, layout: &Layout) -> Option<&'static str> {
        let ino = self.header.ino.get();
        if ino == 0 || ino >= layout.max_nid {
            return Some("node (owner out of range)");
        }
        match self.kind() {
            KIND_INODE if ino != self.nid() => Some("inode (owner is not itself)"),
            KIND_INODE => self.inode().problems(layout).next().map(InodeProblem::what),
            KIND_DIRECT => (!self.slots().iter().all(|a| layout.addr_ok(a.get())))
                .then_some("direct node (block address outside the main area)"),
            KIND_INDIRECT => (!self.slots().iter().all(|n| layout.nid_ok(n.get())))
                .then_some("indirect node (node id out of range)"),
            KIND_XATTR => (!XattrBody::is_valid(&self.body)).then_some("xattr node (entries)"),
            _ => Some("node (unknown kind)"),
        }
    }
}
