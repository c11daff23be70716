//! Node-offset geometry: where each file block hangs in an inode's node tree, and the tree
//! position (`offset` in the node header) of every index node (`docs/format.md`, node offset
//! numbering). The inode maps the first `INODE_ADDRS` blocks; its `nids` lead to two direct
//! nodes, two indirect nodes and one double-indirect node, numbered in depth-first order.

use super::layout::BLOCK_SIZE;
use super::node::{INODE_ADDRS, INODE_NIDS, KIND_DIRECT, KIND_INDIRECT, NODE_ADDRS};

/// Slots of an index node.
pub const N: u64 = NODE_ADDRS as u64;
/// File blocks mapped by the inode itself.
pub const DIRECT_BLOCKS: u64 = INODE_ADDRS as u64;
/// File blocks reachable from an inode.
pub const MAX_FILE_BLOCKS: u64 = DIRECT_BLOCKS + 2 * N + 2 * N * N + N * N * N;
pub const MAX_FILE_SIZE: u64 = MAX_FILE_BLOCKS * BLOCK_SIZE as u64;

/// Where file block `idx` hangs: `top` indexes the inode's `addrs` (depth 0) or `nids`; then
/// one slot per index level; `offsets` are the node offsets of the nodes on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPath {
    pub depth: usize,
    pub top: usize,
    pub slots: [usize; 3],
    pub offsets: [u32; 3],
}

/// The path to file block `idx`, or `None` past the largest file.
pub fn block_path(idx: u64) -> Option<BlockPath> {
    let mut p = BlockPath {
        depth: 0,
        top: 0,
        slots: [0; 3],
        offsets: [0; 3],
    };
    if idx < DIRECT_BLOCKS {
        p.top = idx as usize;
        return Some(p);
    }
    let i = idx - DIRECT_BLOCKS;
    if i < 2 * N {
        p.depth = 1;
        p.top = (i / N) as usize;
        p.slots[0] = (i % N) as usize;
        p.offsets[0] = 1 + p.top as u32;
        return Some(p);
    }
    let i = i - 2 * N;
    if i < 2 * N * N {
        p.depth = 2;
        let k = i / (N * N);
        p.top = 2 + k as usize;
        p.slots[0] = ((i / N) % N) as usize;
        p.slots[1] = (i % N) as usize;
        p.offsets[0] = if k == 0 { 3 } else { 4 + N as u32 };
        p.offsets[1] = p.offsets[0] + 1 + p.slots[0] as u32;
        return Some(p);
    }
    let i = i - 2 * N * N;
    if i < N * N * N {
        p.depth = 3;
        p.top = 4;
        p.slots[0] = (i / (N * N)) as usize;
        p.slots[1] = ((i / N) % N) as usize;
        p.slots[2] = (i % N) as usize;
        let base = 5 + 2 * N as u32;
        p.offsets[0] = base;
        p.offsets[1] = base + 1 + p.slots[0] as u32 * (N as u32 + 1);
        p.offsets[2] = p.offsets[1] + 1 + p.slots[1] as u32;
        return Some(p);
    }
    None
}

/// The subtree under one of the inode's `nids`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopNode {
    /// `KIND_DIRECT` or `KIND_INDIRECT`.
    pub kind: u8,
    /// Levels above the data (1 for a direct node).
    pub height: usize,
    /// Node offset of the subtree's root.
    pub offset: u32,
    /// First file block under it.
    pub base: u64,
    /// File blocks it covers.
    pub span: u64,
}

/// The five subtrees of an inode, in `nids` order.
pub fn top_nodes() -> [TopNode; INODE_NIDS] {
    let d = DIRECT_BLOCKS;
    let t = |kind, height, offset, base, span| TopNode {
        kind,
        height,
        offset,
        base,
        span,
    };
    [
        t(KIND_DIRECT, 1, 1, d, N),
        t(KIND_DIRECT, 1, 2, d + N, N),
        t(KIND_INDIRECT, 2, 3, d + 2 * N, N * N),
        t(KIND_INDIRECT, 2, 4 + N as u32, d + 2 * N + N * N, N * N),
        t(
            KIND_INDIRECT,
            3,
            5 + 2 * N as u32,
            d + 2 * N + 2 * N * N,
            N * N * N,
        ),
    ]
}

/// Node offset of child `j` of the index node at `offset`, `height` levels above the data.
pub fn child_node_offset(offset: u32, height: usize, j: usize) -> u32 {
    if height == 3 {
        // Children of the double-indirect node are indirect nodes, each followed by its directs.
        offset + 1 + j as u32 * (N as u32 + 1)
    } else {
        offset + 1 + j as u32
    }
}

/// The first file block a direct node at tree position `offset` maps, or `None` if no direct
/// node sits at that position.
pub fn direct_node_base(offset: u32) -> Option<u64> {
    let o = u64::from(offset);
    let n1 = N + 1;
    let base2 = DIRECT_BLOCKS + 2 * N;
    match o {
        1 | 2 => Some(DIRECT_BLOCKS + (o - 1) * N),
        4..=1017 => Some(base2 + (o - 4) * N),
        1019..=2032 => Some(base2 + N * N + (o - 1019) * N),
        _ if o >= 2035 => {
            let r = o - 2035;
            let (k, j) = (r / n1, r % n1);
            (k < N && j < N).then(|| base2 + 2 * N * N + k * N * N + j * N)
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "geometry_tests.rs"]
mod tests;
