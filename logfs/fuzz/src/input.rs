//! The fuzzer's input: what an input's bytes decode to (the seed, the damages, the mount
//! choices and the operations), field by field with `arbitrary`.

use arbitrary::{Arbitrary, Result, Unstructured};

use bento_runtime::fs::MountOptions;
use logfs::BLOCK_SIZE;
use logfs::format::geometry::MAX_FILE_SIZE;
use logfs::format::node::INLINE_MAX;

use crate::{MAX_DAMAGES, MAX_OPS};

/// A whole input: decoded field by field from the front of the bytes, operations until the
/// bytes run out.
#[derive(Debug)]
pub struct Input {
    pub seed: u8,
    pub mount: MountChoice,
    pub damages: Vec<Damage>,
    pub ops: Vec<Op>,
}

impl Input {
    pub fn decode(data: &[u8]) -> Result<Input> {
        let mut u = Unstructured::new(data);
        let seed = u.arbitrary()?;
        let mount = u.arbitrary()?;
        let n = u.arbitrary::<u8>()? % (MAX_DAMAGES + 1);
        let mut damages = Vec::new();
        for _ in 0..n {
            damages.push(u.arbitrary()?);
        }
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Input {
            seed,
            mount,
            damages,
            ops,
        })
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum MountChoice {
    Default,
    ReadOnly,
    FsyncCheckpoint,
}

impl MountChoice {
    pub(crate) fn options(self) -> MountOptions {
        let (read_only, opts) = match self {
            MountChoice::Default => (false, "nodiscard"),
            MountChoice::ReadOnly => (true, ""),
            MountChoice::FsyncCheckpoint => (false, "discard,fsync=checkpoint"),
        };
        MountOptions {
            read_only,
            silent: false,
            fs_options: opts.into(),
        }
    }
}

/// Which block of the seed volume to damage: an index into one class of the blocks it uses.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Target {
    /// The superblocks, checkpoint packs, SUT, NAT and SSA blocks in use.
    Meta(u16),
    /// The current checkpoint pack: its header (0) and body blocks.
    Checkpoint(u8),
    /// Node blocks in the main area (live and stale).
    Node(u16),
    /// Directory blocks.
    Dir(u16),
    /// Data blocks (file contents, long symlink targets).
    Data(u16),
}

/// Where in the block.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum At {
    /// Anywhere.
    Any(u16),
    /// The first 256 bytes: every structure's header fields, an inode's fixed fields.
    Head(u8),
}

impl At {
    pub(crate) fn offset(self, width: usize) -> usize {
        let o = match self {
            At::Any(o) => o as usize % BLOCK_SIZE,
            At::Head(o) => o as usize,
        };
        o.min(BLOCK_SIZE - width)
    }
}

/// A value for a field: edge cases and values that mean something on this volume.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Val {
    Zero,
    One,
    Max,
    MaxMinus(u8),
    Pow2(u8),
    MaxNid,
    MainStart,
    MainEnd,
    TotalBlocks,
    /// A nid in use on the seed.
    Nid(u8),
    /// A block the seed uses.
    Block(u16),
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Edit {
    FlipBit {
        at: At,
        bit: u8,
    },
    SetByte {
        at: At,
        v: u8,
    },
    Set16 {
        at: At,
        v: Val,
    },
    Set32 {
        at: At,
        v: Val,
    },
    Set64 {
        at: At,
        v: Val,
    },
    Fill {
        at: At,
        len: u16,
        v: u8,
    },
    Zero,
    /// Another target block's contents (a valid block in the wrong place).
    CopyFrom(Target),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Damage {
    pub target: Target,
    pub edit: Edit,
    /// Below 32 (one in eight): leave the checksum wrong.
    pub seal: u8,
}

/// An inode: one the run has seen, or any number.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum I {
    Known(u8),
    Raw(u32),
}

/// A name: one the seed uses or a few others, or odd ones.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum N {
    Known(u8),
    New(u8),
    Repeat { byte: u8, len: u16 },
    Bytes([u8; 4]),
}

/// A file offset or size.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Off {
    Small(u16),
    Block(u16, u16),
    InlineEdge(i8),
    Edge(u8),
    Max(u16),
    Raw(u64),
}

impl Off {
    pub fn get(self) -> u64 {
        let bs = BLOCK_SIZE as u64;
        match self {
            Off::Small(v) => u64::from(v),
            Off::Block(b, o) => u64::from(b) * bs + u64::from(o % 4096),
            Off::InlineEdge(d) => (INLINE_MAX as i64 + i64::from(d)) as u64,
            // The ends of the inode's own addresses, the direct, indirect and double-indirect
            // trees.
            Off::Edge(k) => {
                let edges = [
                    913u64,
                    913 + 1014,
                    913 + 2028,
                    913 + 2028 + 1014 * 1014,
                    913 + 2028 + 2 * 1014 * 1014,
                ];
                let e = edges[k as usize % edges.len()] * bs;
                if k & 0x80 != 0 { e - 1 } else { e }
            }
            Off::Max(d) => MAX_FILE_SIZE.wrapping_sub(u64::from(d)),
            Off::Raw(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Op {
    Lookup(I, N),
    Getattr(I),
    Setattr {
        ino: I,
        mode: Option<u16>,
        uid: Option<u8>,
        size: Option<Off>,
        times: bool,
    },
    Readdir {
        dir: I,
        offset: Off,
        limit: u8,
    },
    Read {
        ino: I,
        offset: Off,
        len: u32,
    },
    Write {
        ino: I,
        offset: Off,
        len: u32,
        byte: u8,
    },
    Truncate(I, Off),
    Fallocate {
        ino: I,
        offset: Off,
        len: Off,
        mode: u8,
    },
    Create(I, N),
    Mknod {
        dir: I,
        name: N,
        kind: u8,
        rdev: u32,
    },
    Mkdir(I, N),
    Rmdir(I, N),
    Unlink(I, N),
    Rename {
        dir: I,
        name: N,
        to: I,
        new: N,
        flags: u8,
    },
    Link {
        ino: I,
        dir: I,
        name: N,
    },
    Symlink {
        dir: I,
        name: N,
        len: u16,
        byte: u8,
    },
    Readlink(I),
    Setxattr {
        ino: I,
        name: XName,
        len: u16,
        byte: u8,
        flags: u8,
    },
    Getxattr(I, XName),
    Listxattr(I),
    Removexattr(I, XName),
    Open(I),
    Release(I),
    Fsync {
        ino: I,
        datasync: bool,
    },
    Fsyncdir(I),
    Statfs,
    Forget(I, u8),
    SyncFs,
    Background,
    /// Unmount and mount again.
    Remount,
    /// Drop the mount without unmounting (a power cut) and mount again.
    Crash,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct XName {
    pub prefix: u8,
    pub name: N,
}
