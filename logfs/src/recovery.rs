//! Recovery at mount. A checkpoint is always consistent, so mounting needs no repair; two
//! things remain after a crash:
//!
//! * roll-forward: fsync writes a file's data and its changed direct nodes and inode after the
//!   last checkpoint, marked `FLAG_FSYNC` and chained through `next_addr` from the node log's
//!   position in the checkpoint. Mount follows that chain while blocks verify and carry the
//!   checkpoint's sequence number, applies what they record to the checkpointed tree (block
//!   addresses, inode attributes, the name of a file created since the checkpoint), and commits
//!   the result with a new checkpoint;
//! * the orphan list: inodes unlinked while still open, freed now that nobody holds them.

use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};
use zerocopy::FromBytes;

use bento_runtime::Errno;
use bento_runtime::fs::{FileType, S_IFMT, S_IFREG};
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result, invariant};
use crate::format::geometry::direct_node_base;
use crate::format::header::{self as csum, MAGIC_NODE};
use crate::format::layout::{NEW_ADDR, NULL_ADDR};
use crate::format::node::{
    FLAG_DENTRY, FLAG_FSYNC, INODE_ADDRS, INODE_INLINE_DATA, KIND_DIRECT, KIND_INODE, NODE_ADDRS,
    Node, NodeHeader,
};
use crate::format::summary::SummaryBlock;
use crate::format::tables::LOG_DATA;
use crate::fs::Volume;
use crate::log::{DATA_LOG, NODE_LOG};
use crate::mem;

/// Owners of recovered data blocks, per segment: (offset in segment, holder nid, slot).
type Owners = HashMap<u32, Vec<(u32, u32, u16)>>;

impl<D: BlockDevice> Volume<D> {
    /// The nodes fsync wrote after the last checkpoint, in log order.
    fn fsync_chain(&mut self) -> Result<Vec<alloc::boxed::Box<Node>>> {
        // The checkpoint's node log position (validated at load: inside the main area).
        let head = self.logs.get(NODE_LOG).ok_or_else(invariant)?;
        let mut addr = self
            .layout
            .segment_start(head.segno)
            .and_then(|s| s.checked_add(head.next_off))
            .ok_or_else(invariant)?;
        let mut chain = Vec::new();
        let mut seen = HashSet::new();
        let mut block = crate::file::zeroed_block()?;
        while self.layout.locate(addr).is_some() && mem::set_insert(&mut seen, addr)? {
            self.dev
                .read_blocks(u64::from(addr), &mut block[..])
                .map_err(Error::Io)?;
            if !csum::is_valid(self.seed, MAGIC_NODE, &block) {
                break;
            }
            // Only records of this checkpoint are part of the chain; an older block that verifies
            // here ends it without being judged.
            let Ok((hdr, _)) = NodeHeader::read_from_prefix(&block[..]) else {
                break;
            };
            if hdr.cp_ver.get() != self.seq || hdr.flags & FLAG_FSYNC == 0 {
                break;
            }
            let nid = hdr.nid.get();
            let node = Node::decode(&block, self.seed, u64::from(addr), nid, &self.layout)?;
            if let Some((segno, _)) = self.layout.locate(addr) {
                // Until the checkpoint that ends recovery commits, the chain is the only copy
                // of what it records: nothing may be written over it.
                self.sut.hold(segno);
            }
            addr = node.header.next_addr.get();
            mem::push(&mut chain, node)?;
        }
        Ok(chain)
    }

    /// Replay fsync'd nodes written after the last checkpoint; returns how many.
    pub(crate) fn roll_forward(&mut self) -> Result<usize> {
        let chain = self.fsync_chain()?;
        if chain.is_empty() {
            return Ok(0);
        }
        if self.read_only {
            bento_runtime::warn!(
                "logfs: {} changes made durable by fsync are not replayed on a read-only mount",
                chain.len()
            );
            return Ok(0);
        }
        // Inodes created after the checkpoint must exist before their blocks are replayed.
        let mut created = HashSet::new();
        for n in chain.iter().filter(|n| n.kind() == KIND_INODE) {
            let ino = n.nid();
            if !created.contains(&ino)
                && self.nat.get(&self.dev, &self.layout, self.seed, ino)? == NULL_ADDR
            {
                let mut node = Node::new_boxed()?;
                node.init(ino, ino, 0, KIND_INODE);
                self.nat
                    .set(&self.dev, &self.layout, self.seed, ino, NEW_ADDR)?;
                self.nodes.reserve()?;
                mem::set_insert(&mut created, ino)?;
                self.nodes.insert_dirty(node)?;
                // Counts bounded by the NAT and the device.
                self.valid_nodes = self.valid_nodes.saturating_add(1);
                self.valid_inodes = self.valid_inodes.saturating_add(1);
                self.valid_blocks = self.valid_blocks.saturating_add(1);
            }
        }
        let mut owners = Owners::new();
        let mut touched = Vec::new();
        for n in &chain {
            let ino = n.header.ino.get();
            if self.file_type(ino).ok() != Some(FileType::RegularFile) && !created.contains(&ino) {
                continue;
            }
            match n.kind() {
                KIND_INODE => self.replay_inode(n, &mut owners)?,
                KIND_DIRECT => {
                    let Some(base) = direct_node_base(n.header.offset.get()) else {
                        continue;
                    };
                    for (idx, a) in (base..).zip(n.slots().iter()) {
                        self.replay_block(ino, idx, a.get(), &mut owners)?;
                    }
                }
                _ => continue,
            }
            mem::push(&mut touched, ino)?;
        }
        touched.sort_unstable();
        touched.dedup();
        for &ino in &touched {
            let (size, inline) = {
                let i = self.inode(ino)?.inode();
                (i.size.get(), i.is_inline())
            };
            if !inline {
                self.free_blocks(
                    ino,
                    size.div_ceil(crate::format::layout::BLOCK_SIZE as u64),
                    u64::MAX,
                )?;
            }
        }
        for n in chain
            .iter()
            .filter(|n| n.kind() == KIND_INODE && n.header.flags & FLAG_DENTRY != 0)
        {
            self.replay_name(n, &created)?;
        }
        self.write_owners(owners)?;
        // New writes must not land on what was just replayed: both logs move on.
        for log in [NODE_LOG, DATA_LOG] {
            let l = self.logs.get(log).ok_or_else(invariant)?;
            let (kind, old) = (l.kind, l.segno);
            let segno = self
                .sut
                // A hint past the last segment means none.
                .allocate(kind, old.saturating_add(1))
                .ok_or(Error::Errno(Errno::ENOSPC))?;
            let (dev, layout, seed) = (&self.dev, &self.layout, self.seed);
            let l = self.logs.get_mut(log).ok_or_else(invariant)?;
            l.restart(dev, layout, seed, segno)?;
            self.sut.retire(old);
        }
        self.dirty = true;
        self.stats.recovered_nodes = self
            .stats
            .recovered_nodes
            .saturating_add(chain.len() as u64);
        bento_runtime::info!(
            "logfs: replayed {} nodes written by fsync after the last checkpoint",
            chain.len()
        );
        Ok(chain.len())
    }

    /// Apply an inode copy: attributes, inline data or direct addresses.
    fn replay_inode(&mut self, n: &Node, owners: &mut Owners) -> Result<()> {
        let ino = n.nid();
        let r = n.inode();
        if r.mode.get() & S_IFMT != S_IFREG {
            return Ok(());
        }
        let was_inline = self.inode(ino)?.inode().is_inline();
        {
            let i = self.inode_mut(ino)?;
            i.mode = r.mode;
            i.uid = r.uid;
            i.gid = r.gid;
            i.nlink = r.nlink;
            i.size = r.size;
            i.atime = r.atime;
            i.mtime = r.mtime;
            i.ctime = r.ctime;
            i.crtime = r.crtime;
            i.atime_nsec = r.atime_nsec;
            i.mtime_nsec = r.mtime_nsec;
            i.ctime_nsec = r.ctime_nsec;
            i.crtime_nsec = r.crtime_nsec;
            i.generation = r.generation;
            i.rdev = r.rdev;
            i.parent = r.parent;
            i.name_len = r.name_len;
            i.name = r.name;
            if r.is_inline() {
                i.flags = (i.flags.get() | INODE_INLINE_DATA).into();
                i.inline_data_mut().copy_from_slice(r.inline_data());
            } else if was_inline {
                i.flags = (i.flags.get() & !INODE_INLINE_DATA).into();
                i.inline_data_mut().fill(0);
            }
        }
        // A u32 generation plus one fits in u64.
        let next = u64::from(r.generation.get()).saturating_add(1);
        self.next_generation = self.next_generation.max(next);
        if !r.is_inline() {
            for (idx, a) in (0..INODE_ADDRS as u64).zip(r.addrs.iter()) {
                self.replay_block(ino, idx, a.get(), owners)?;
            }
        }
        Ok(())
    }

    /// Point file block `idx` of `ino` at `addr`, as a replayed node records it.
    fn replay_block(&mut self, ino: u32, idx: u64, addr: u32, owners: &mut Owners) -> Result<()> {
        let cur = self.block_addr(ino, idx)?;
        if addr == cur {
            return Ok(());
        }
        if addr == NULL_ADDR {
            // idx is a file block (below MAX_FILE_BLOCKS).
            return self.free_blocks(ino, idx, idx.saturating_add(1));
        }
        if addr != NEW_ADDR && self.layout.locate(addr).is_none() {
            return Err(Error::corrupt(
                "fsync record (block address)",
                u64::from(addr),
            ));
        }
        let (holder, ofs) = self
            .holder(ino, idx, true)?
            .ok_or(Error::Errno(Errno::EIO))?;
        if cur == NULL_ADDR {
            self.valid_blocks = self.valid_blocks.saturating_add(1);
            let i = self.inode_mut(ino)?;
            i.blocks = i.blocks.get().saturating_add(1).into();
        }
        self.set_node_addr(holder, ofs, addr)?;
        self.invalidate(cur);
        if let Some((segno, off)) = self.layout.locate(addr) {
            self.sut
                .set_recovered(segno, off, LOG_DATA, crate::fs::now().sec);
            owners.try_reserve(1).map_err(mem::oom)?;
            #[allow(clippy::disallowed_methods)] // Room reserved.
            let list = owners.entry(segno).or_default();
            mem::push(list, (off, holder, ofs as u16))?;
        }
        Ok(())
    }

    /// Give a file created after the checkpoint the name its inode records.
    fn replay_name(&mut self, n: &Node, created: &HashSet<u32>) -> Result<()> {
        let ino = n.nid();
        if !created.contains(&ino) {
            return Ok(());
        }
        let r = n.inode();
        let parent = r.parent.get();
        // A name_len past the name field (checked at load) would be cut to it.
        let len = r.name_len.get() as usize;
        let name = mem::to_vec(r.name.get(..len).unwrap_or(&r.name))?;
        let parent_ok = self.file_type(parent).ok() == Some(FileType::Directory);
        if !parent_ok || name.is_empty() {
            bento_runtime::warn!("logfs: fsync'd file {ino} has no directory to return to; freed");
            self.inode_mut(ino)?.nlink = 0.into();
            return self.free_inode(ino);
        }
        if let Some(f) = self.dir_find(parent, &name)? {
            if f.ino == ino {
                return Ok(());
            }
            // A later file took the name: the later one wins, as it would have on disk.
            self.dir_remove(parent, &f)?;
            let other = f.ino;
            let i = self.inode_mut(other)?;
            i.nlink = i.nlink.get().saturating_sub(1).into();
            if i.nlink.get() == 0 {
                self.free_inode(other)?;
            }
        }
        self.inode_mut(ino)?.nlink = 1.into();
        self.dir_add(parent, &name, ino, FileType::RegularFile.dirent_type())
    }

    /// Record the owners of replayed data blocks in their segments' summaries.
    fn write_owners(&mut self, owners: Owners) -> Result<()> {
        for (segno, entries) in owners {
            if let Some(l) = self.logs.iter_mut().find(|l| l.segno == segno) {
                for (off, nid, ofs) in entries {
                    l.summary.set(off, nid, ofs);
                }
                continue;
            }
            let ssa = self.layout.ssa_addr(segno);
            let mut raw = crate::file::zeroed_block()?;
            self.dev.read_blocks(ssa, &mut raw[..]).map_err(Error::Io)?;
            let mut sum = match SummaryBlock::decode(&raw, self.seed, ssa, segno) {
                Ok(s) => s,
                Err(_) => SummaryBlock::new(segno, LOG_DATA)?,
            };
            for (off, nid, ofs) in entries {
                sum.set(off, nid, ofs);
            }
            let block = sum.seal(self.seed);
            self.dev
                .write_blocks(ssa, block, bento_runtime::ks::block::WriteFlags::NONE)
                .map_err(Error::Io)?;
        }
        Ok(())
    }

    pub(crate) fn recover_orphans(&mut self, orphans: &[u32]) -> Result<()> {
        if orphans.is_empty() {
            return Ok(());
        }
        if self.read_only {
            // Keep them listed so the next read-write mount frees them.
            mem::set_extend(&mut self.orphans, orphans.iter().copied())?;
            return Ok(());
        }
        for &ino in orphans {
            let is_orphan = self
                .inode(ino)
                .is_ok_and(|n| n.kind() == KIND_INODE && n.inode().nlink.get() == 0);
            if is_orphan {
                self.free_inode(ino)?;
            } else {
                bento_runtime::warn!(
                    "logfs: orphan list names inode {ino}, which is not an orphan; ignored"
                );
            }
        }
        Ok(())
    }
}

const _: () = assert!(NODE_ADDRS == 1014);
