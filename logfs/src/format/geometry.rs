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

/// Tree positions of the second indirect node and of the double-indirect node.
const SECOND_INDIRECT: u32 = 4 + N as u32;
const DOUBLE_INDIRECT: u32 = 5 + 2 * N as u32;
/// Positions between two children of the double-indirect node: an indirect node and its directs.
const DOUBLE_INDIRECT_STRIDE: u32 = N as u32 + 1;

/// Where file block `idx` hangs: `top` indexes the inode's `addrs` (depth 0) or `nids`; then
/// one slot per index level; `offsets` are the node offsets of the nodes on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPath {
    pub depth: usize,
    pub top: usize,
    pub slots: [usize; 3],
    pub offsets: [u32; 3],
}

impl BlockPath {
    /// The slot of the block's address in its holder: the inode's `addrs` at depth 0, else the
    /// direct node's slots.
    pub fn leaf_slot(&self) -> usize {
        match self.depth.checked_sub(1) {
            None => self.top,
            Some(d) => self.slots.get(d).copied().unwrap_or(0),
        }
    }

    /// The index nodes on the way, top down: the slot that points at each in its parent (the
    /// inode's `nids` for the first), its node offset, and whether it is the direct node.
    pub fn index_levels(&self) -> impl Iterator<Item = (usize, u32, bool)> + use<> {
        let depth = self.depth;
        core::iter::once(self.top)
            .chain(self.slots)
            .zip(self.offsets)
            .zip(1..=depth)
            .map(move |((slot, offset), level)| (slot, offset, level == depth))
    }
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
    // The node offsets are those of child_node_offset(), from the subtree roots of top_nodes().
    let i = idx.checked_sub(DIRECT_BLOCKS)?;
    if i < 2 * N {
        p.depth = 1;
        p.top = (i / N) as usize;
        p.slots[0] = (i % N) as usize;
        p.offsets[0] = if p.top == 0 { 1 } else { 2 };
        return Some(p);
    }
    let i = i.checked_sub(2 * N)?;
    if i < 2 * N * N {
        p.depth = 2;
        let second = i >= N * N;
        p.top = if second { 3 } else { 2 };
        p.slots[0] = ((i / N) % N) as usize;
        p.slots[1] = (i % N) as usize;
        p.offsets[0] = if second { SECOND_INDIRECT } else { 3 };
        p.offsets[1] = child_node_offset(p.offsets[0], 2, p.slots[0])?;
        return Some(p);
    }
    let i = i.checked_sub(2 * N * N)?;
    if i < N * N * N {
        p.depth = 3;
        p.top = 4;
        p.slots[0] = (i / (N * N)) as usize;
        p.slots[1] = ((i / N) % N) as usize;
        p.slots[2] = (i % N) as usize;
        p.offsets[0] = DOUBLE_INDIRECT;
        p.offsets[1] = child_node_offset(p.offsets[0], 3, p.slots[0])?;
        p.offsets[2] = child_node_offset(p.offsets[1], 2, p.slots[1])?;
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

/// The five subtrees of an inode, in `nids` order (evaluated at compile time).
const TOP_NODES: [TopNode; INODE_NIDS] = {
    const fn t(kind: u8, height: usize, offset: u32, base: u64, span: u64) -> TopNode {
        TopNode {
            kind,
            height,
            offset,
            base,
            span,
        }
    }
    let d = DIRECT_BLOCKS;
    [
        t(KIND_DIRECT, 1, 1, d, N),
        t(KIND_DIRECT, 1, 2, d + N, N),
        t(KIND_INDIRECT, 2, 3, d + 2 * N, N * N),
        t(KIND_INDIRECT, 2, SECOND_INDIRECT, d + 2 * N + N * N, N * N),
        t(
            KIND_INDIRECT,
            3,
            DOUBLE_INDIRECT,
            d + 2 * N + 2 * N * N,
            N * N * N,
        ),
    ]
};

/// The five subtrees of an inode, in `nids` order.
pub fn top_nodes() -> [TopNode; INODE_NIDS] {
    TOP_NODES
}

/// The kind of the index node `height` levels above the data (1: direct, 2 and 3: indirect)
/// and the file blocks each of its slots spans; `None` for a height no tree has.
pub fn index_node_shape(height: usize) -> Option<(u8, u64)> {
    let kind = match height {
        1 => KIND_DIRECT,
        2 | 3 => KIND_INDIRECT,
        _ => return None,
    };
    Some((
        kind,
        N.checked_pow(u32::try_from(height.checked_sub(1)?).ok()?)?,
    ))
}

/// Node offset of child `j` of the index node at `offset`, `height` levels above the data;
/// `None` only for positions far outside any tree (`j` past `N`, or an offset near `u32::MAX`).
pub fn child_node_offset(offset: u32, height: usize, j: usize) -> Option<u32> {
    let j = u32::try_from(j).ok()?;
    // Children of the double-indirect node are indirect nodes, each followed by its directs.
    let stride = if height == 3 {
        DOUBLE_INDIRECT_STRIDE
    } else {
        1
    };
    offset.checked_add(1)?.checked_add(j.checked_mul(stride)?)
}

/// The first file block a direct node at tree position `offset` maps, or `None` if no direct
/// node sits at that position.
pub fn direct_node_base(offset: u32) -> Option<u64> {
    // Tree positions of the direct nodes under the first and the second indirect node, and of
    // the first direct node under the double-indirect one (at 5 + 2N; its first indirect child
    // at 6 + 2N; each indirect child is followed by its N directs), see top_nodes().
    const IND1: core::ops::RangeInclusive<u64> = 4..=3 + N;
    const IND2: core::ops::RangeInclusive<u64> = 5 + N..=4 + 2 * N;
    const DIND: u64 = 7 + 2 * N;
    let o = u64::from(offset);
    // Every product below is of a quotient or remainder of N with N: within MAX_FILE_BLOCKS.
    let index = match o {
        1 | 2 => o.checked_sub(1)?,
        _ if IND1.contains(&o) => 2u64.checked_add(o.checked_sub(*IND1.start())?)?,
        _ if IND2.contains(&o) => (2 + N).checked_add(o.checked_sub(*IND2.start())?)?,
        _ if o >= DIND => {
            let r = o.checked_sub(DIND)?;
            let (k, j) = (r / (N + 1), r % (N + 1));
            if k >= N || j >= N {
                return None;
            }
            (2 + 2 * N).checked_add(k.checked_mul(N)?)?.checked_add(j)?
        }
        _ => return None,
    };
    // `index` counts direct nodes in file order; each maps N blocks.
    DIRECT_BLOCKS.checked_add(index.checked_mul(N)?)
}

#[cfg(test)]
#[path = "geometry_tests.rs"]
mod tests;
