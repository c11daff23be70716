//! The node cache: nodes in memory, dirty until a checkpoint writes them. A node is named by
//! its nid; where it lives is the NAT's business, so rewriting a node never touches its parent.
//! The node block format is `format::node`.
//!
//! The cache is bounded: past its capacity, the least recently used clean nodes are dropped
//! (and [`NodeCache::shrink`] drops them on demand, under memory pressure). Dirty nodes stay
//! until a checkpoint writes them.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;

use hashbrown::HashMap;

use crate::error::Result;
use crate::format::node::Node;
use crate::lru::{self, Aged};
use crate::mem;

struct Entry {
    node: Box<Node>,
    dirty: bool,
    /// The cache's clock at the last use: the smallest is the least recently used.
    used: Cell<u64>,
}

impl Aged for Entry {
    fn used(&self) -> u64 {
        self.used.get()
    }
    fn dirty(&self) -> bool {
        self.dirty
    }
}

/// Nodes in memory.
pub struct NodeCache {
    nodes: HashMap<u32, Entry>,
    dirty: usize,
    capacity: usize,
    clock: Cell<u64>,
}

impl NodeCache {
    pub fn new(capacity: usize) -> NodeCache {
        NodeCache {
            nodes: HashMap::new(),
            dirty: 0,
            capacity,
            clock: Cell::new(0),
        }
    }

    fn tick(&self) -> u64 {
        let t = self.clock.get().wrapping_add(1);
        self.clock.set(t);
        t
    }

    pub fn contains(&self, nid: u32) -> bool {
        self.nodes.contains_key(&nid)
    }

    pub fn get(&self, nid: u32) -> Option<&Node> {
        let e = self.nodes.get(&nid)?;
        e.used.set(self.tick());
        Some(&*e.node)
    }

    /// Mutable access marks the node dirty.
    pub fn get_mut(&mut self, nid: u32) -> Option<&mut Node> {
        let t = self.tick();
        let e = self.nodes.get_mut(&nid)?;
        e.used.set(t);
        if !e.dirty {
            e.dirty = true;
            self.dirty = self.dirty.saturating_add(1);
        }
        Some(&mut *e.node)
    }

    /// A node being written out: mutable without marking it dirty.
    pub fn get_for_write(&mut self, nid: u32) -> Option<&mut Node> {
        self.nodes.get_mut(&nid).map(|e| &mut *e.node)
    }

    /// Room for one more node, so that a following insertion cannot fail: callers that change
    /// the volume before inserting ask first.
    pub fn reserve(&mut self) -> Result<()> {
        self.nodes.try_reserve(1).map_err(mem::oom)
    }

    pub fn insert_clean(&mut self, node: Box<Node>) -> Result<()> {
        self.insert(node, false)
    }

    pub fn insert_dirty(&mut self, node: Box<Node>) -> Result<()> {
        self.insert(node, true)
    }

    fn insert(&mut self, node: Box<Node>, dirty: bool) -> Result<()> {
        if self.nodes.len() >= self.capacity {
            // A quarter at a time, so eviction's cost spreads over many insertions.
            self.shrink(self.capacity / 4, true);
        }
        let entry = Entry {
            node,
            dirty,
            used: Cell::new(self.tick()),
        };
        let nid = entry.node.nid();
        if let Some(old) = mem::insert(&mut self.nodes, nid, entry)?
            && old.dirty
        {
            self.dirty = self.dirty.saturating_sub(1);
        }
        if dirty {
            self.dirty = self.dirty.saturating_add(1);
        }
        Ok(())
    }

    /// Forget a node entirely (it was freed).
    pub fn remove(&mut self, nid: u32) {
        if self.nodes.remove(&nid).is_some_and(|e| e.dirty) {
            self.dirty = self.dirty.saturating_sub(1);
        }
    }

    pub fn dirty_count(&self) -> usize {
        self.dirty
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Clean nodes: what [`shrink`](Self::shrink) could drop.
    pub fn clean_count(&self) -> usize {
        self.nodes.len().saturating_sub(self.dirty)
    }

    /// Dirty nids, in an order that keeps a file's nodes together. They stay dirty until
    /// [`clean`](Self::clean) says each was written.
    pub fn take_dirty(&mut self) -> Result<Vec<u32>> {
        let mut v = mem::collect(
            self.nodes
                .iter()
                .filter(|(_, e)| e.dirty)
                .map(|(&nid, e)| (e.node.header.ino.get(), e.node.header.offset.get(), nid)),
        )?;
        v.sort_unstable();
        mem::collect(v.into_iter().map(|(_, _, nid)| nid))
    }

    /// The node was written: not dirty any more.
    pub fn clean(&mut self, nid: u32) {
        if let Some(e) = self.nodes.get_mut(&nid)
            && e.dirty
        {
            e.dirty = false;
            self.dirty = self.dirty.saturating_sub(1);
        }
    }

    /// Dirty nodes of inode `ino` of `kind`.
    pub fn dirty_of(&self, ino: u32, kind: u8) -> Result<Vec<u32>> {
        let mut v = mem::collect(
            self.nodes
                .iter()
                .filter(|(_, e)| e.dirty && e.node.header.ino.get() == ino && e.node.kind() == kind)
                .map(|(&nid, _)| nid),
        )?;
        v.sort_unstable();
        Ok(v)
    }

    pub fn mark_dirty(&mut self, nid: u32) {
        if let Some(e) = self.nodes.get_mut(&nid)
            && !e.dirty
        {
            e.dirty = true;
            self.dirty = self.dirty.saturating_add(1);
        }
    }

    pub fn is_dirty(&self, nid: u32) -> bool {
        self.nodes.get(&nid).is_some_and(|e| e.dirty)
    }

    /// Drop up to `n` clean nodes, the least recently used first; returns how many went.
    /// `exact` sorts their ages (an allocation); memory reclaim passes false and gets an
    /// estimate from the ages' range instead, since it must not allocate.
    pub fn shrink(&mut self, n: usize, exact: bool) -> usize {
        let n = n.min(self.clean_count());
        if n == 0 {
            return 0;
        }
        lru::shrink(&mut self.nodes, n, exact)
    }
}
