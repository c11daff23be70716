//! The node cache: nodes in memory, dirty until a checkpoint writes them. A node is named by
//! its nid; where it lives is the NAT's business, so rewriting a node never touches its parent.
//! The node block format is `format::node`.

use alloc::boxed::Box;
use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};

use crate::format::node::Node;

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
        let target = self.capacity.saturating_sub(self.capacity / 4);
        let mut excess = self.nodes.len().saturating_sub(target);
        let dirty = &self.dirty;
        self.nodes.retain(|nid, _| {
            if excess > 0 && !dirty.contains(nid) {
                excess = excess.saturating_sub(1);
                false
            } else {
                true
            }
        });
    }
}
