//! Pass 4: the directory tree from the root and the orphan list; every inode with its node tree,
//! xattr node and (for directories) directory blocks.

use std::collections::HashSet;

use bento_api::fs::{FileType, ROOT_INO};
use bento_api::ks::block::BlockDevice;
use logfs::BLOCK_SIZE;
use logfs::format::dir::{self, DirBlock};
use logfs::format::geometry::{MAX_FILE_SIZE, N, child_node_offset, top_nodes};
use logfs::format::header::{self as csum, MAGIC_DIR, MAGIC_NODE};
use logfs::format::layout::{NEW_ADDR, NULL_ADDR};
use logfs::format::node::{
    INLINE_MAX, INODE_INLINE_DATA, INODE_NAME_MAX, INODE_NIDS, InodeProblem, KIND_DIRECT,
    KIND_INDIRECT, KIND_INODE, KIND_XATTR, Node, NodeIdentityProblem, RawInode, XATTR_NODE_OFFSET,
};
use logfs::format::xattr::XattrBody;

use crate::checker::{EntryRec, Fsck, InodeInfo, NAT_BAD, Reach};
use crate::report::{Issue, Object};
use crate::util::{Block, Res};
use crate::volume::reason;

/// A node block read from disk, checked to verify and to be the node it was looked up as.
pub(crate) struct NodeBuf {
    pub block: Block,
    pub addr: u32,
}

impl NodeBuf {
    pub fn node(&self) -> &Node {
        zerocopy::transmute_ref!(&*self.block)
    }
}

/// What the walk of one inode's node tree counted.
struct TreeAcc {
    ino: u32,
    is_dir: bool,
    /// Data blocks past this index must not be written (regular files and symlinks).
    eof_blocks: Option<u64>,
    data: u64,
    prealloc: u64,
    index_nodes: u64,
    past_eof: u64,
    /// A node of the tree could not be used: counts are partial.
    incomplete: bool,
    dir_blocks: Vec<(u64, u32)>,
}

impl<D: BlockDevice + ?Sized> Fsck<'_, D> {
    /// Read the node `nid` maps to and check that it verifies and is `nid`.
    pub(crate) fn load_node(&mut self, nid: u32) -> Res<Result<NodeBuf, Issue>> {
        if nid == 0 {
            return Ok(Err(Issue::NidZero));
        }
        if nid >= self.v.layout.max_nid {
            return Ok(Err(Issue::NidOutOfRange {
                limit: self.v.layout.max_nid,
            }));
        }
        let addr = match self.nat_entry(nid) {
            0 => return Ok(Err(Issue::NodeNotAllocated)),
            NAT_BAD => return Ok(Err(Issue::NatEntryUnusable)),
            a => a,
        };
        let block = self.c.disk.read_block(u64::from(addr))?;
        if !csum::is_valid(self.v.seed, MAGIC_NODE, &block) {
            return Ok(Err(Issue::NodeChecksum { addr }));
        }
        let buf = NodeBuf { block, addr };
        Ok(match buf.node().identity_problem(nid) {
            Some(NodeIdentityProblem::WrongNid { found }) => {
                Err(Issue::NodeWrongNid { addr, found })
            }
            Some(NodeIdentityProblem::UnknownKind { kind }) => {
                Err(Issue::NodeBadKind { addr, kind })
            }
            None => Ok(buf),
        })
    }

    /// Check a node's header against what its referrer expects. Returns false when the node
    /// must not be used (wrong kind or owner).
    fn check_header(&mut self, obj: &Object, node: &Node, kind: u8, ino: u32, offset: u32) -> bool {
        if node.kind() != kind {
            self.c.err(
                obj.clone(),
                Issue::NodeWrongKind {
                    expected: kind,
                    found: node.kind(),
                },
            );
            return false;
        }
        if node.header.ino.get() != ino {
            self.c.err(
                obj.clone(),
                Issue::NodeWrongOwner {
                    expected: ino,
                    found: node.header.ino.get(),
                },
            );
            return false;
        }
        if node.header.offset.get() != offset {
            self.c.err(
                obj.clone(),
                Issue::NodeWrongOffset {
                    expected: offset,
                    found: node.header.offset.get(),
                },
            );
        }
        let cp_ver = node.header.cp_ver.get();
        if cp_ver >= self.v.cp.seq {
            self.c.err(
                obj.clone(),
                Issue::NodeFromFuture {
                    cp_ver,
                    seq: self.v.cp.seq,
                },
            );
        }
        true
    }

    pub(crate) fn enqueue(&mut self, ino: u32, reach: Reach) {
        if let std::collections::btree_map::Entry::Vacant(e) = self.inodes.entry(ino) {
            e.insert(InodeInfo::new(reach));
            self.queue.push_back(ino);
        }
    }

    /// Visit every queued inode (and what they name) once.
    pub(crate) fn drain_queue(&mut self) -> Res<()> {
        while let Some(ino) = self.queue.pop_front() {
            self.visit_inode(ino)?;
        }
        Ok(())
    }

    pub(crate) fn walk_tree(&mut self) -> Res<()> {
        let root = ROOT_INO as u32;
        self.enqueue(root, Reach::Root);
        self.drain_queue()?;
        let orphans = self.v.cp.orphans.clone();
        for ino in orphans {
            if ino == 0 || ino >= self.v.layout.max_nid {
                self.c.err(
                    Object::Orphan { ino },
                    Issue::NidOutOfRange {
                        limit: self.v.layout.max_nid,
                    },
                );
                continue;
            }
            match self.inodes.get_mut(&ino) {
                Some(info) => info.orphan = true,
                None => self.enqueue(ino, Reach::Orphan),
            }
        }
        self.drain_queue()
    }

    fn visit_inode(&mut self, ino: u32) -> Res<()> {
        let Some(reach) = self.inodes.get(&ino).map(|i| i.reach) else {
            return Ok(());
        };
        if let Some(info) = self.inodes.get_mut(&ino) {
            info.visited = true;
        }
        let obj = match reach {
            Reach::Orphan => Object::Orphan { ino },
            _ => Object::Inode { ino },
        };
        let buf = match self.load_node(ino)? {
            Ok(b) => b,
            Err(issue) => {
                self.c.err(obj, issue);
                return Ok(());
            }
        };
        let node = buf.node();
        if node.kind() != KIND_INODE {
            if reach == Reach::Entry {
                if let Some(info) = self.inodes.get_mut(&ino) {
                    info.not_inode = Some(node.kind());
                }
            } else {
                self.c.err(
                    obj,
                    Issue::NodeWrongKind {
                        expected: KIND_INODE,
                        found: node.kind(),
                    },
                );
            }
            return Ok(());
        }
        let obj = Object::Inode { ino };
        if !self.check_header(&obj, node, KIND_INODE, ino, 0) {
            return Ok(());
        }
        self.reachable.insert(ino);
        let inode: &RawInode = node.inode();
        let mode = inode.mode.get();
        let ftype = FileType::from_mode(mode);
        let size = inode.size.get();
        let flags = inode.flags.get();
        let inline = inode.is_inline();
        if let Some(info) = self.inodes.get_mut(&ino) {
            info.ok = true;
            info.ftype = ftype;
            info.nlink = inode.nlink.get();
            info.parent = inode.parent.get();
            if ftype == Some(FileType::Directory) {
                let len = (inode.name_len.get() as usize).min(INODE_NAME_MAX);
                info.name = Some(inode.name[..len].into());
            }
        }
        if ftype.is_none() {
            self.c.err(obj.clone(), Issue::BadMode { mode });
        }
        if ino == ROOT_INO as u32 {
            if ftype != Some(FileType::Directory) {
                self.c.err(obj.clone(), Issue::RootNotDirectory);
            }
            if inode.parent.get() != ino {
                self.c.err(
                    obj.clone(),
                    Issue::RootParent {
                        parent: inode.parent.get(),
                    },
                );
            }
        }
        if flags & !INODE_INLINE_DATA != 0 {
            self.c.warn(
                obj.clone(),
                Issue::UnknownInodeFlags {
                    flags: flags & !INODE_INLINE_DATA,
                },
            );
        }
        if inline && !matches!(ftype, Some(FileType::RegularFile | FileType::Symlink)) {
            self.c.err(obj.clone(), Issue::InlineNotAllowed);
        }
        for p in inode.problems(&self.v.layout) {
            let issue = match p {
                InodeProblem::InlineTooLarge { size } => Issue::InlineTooLarge {
                    size,
                    max: INLINE_MAX as u64,
                },
                InodeProblem::InlineWithNodes => Issue::InlineWithNodes,
                InodeProblem::SizeTooLarge { size } => Issue::SizeTooLarge {
                    size,
                    max: MAX_FILE_SIZE,
                },
                InodeProblem::NameLen { len } => Issue::NameLen { len },
                // Reported where the walk meets them, with what they point at; an impossible
                // block count as the count the walk disagrees with.
                InodeProblem::DirDepth { .. }
                | InodeProblem::NodeIdOutOfRange
                | InodeProblem::AddrOutsideMain
                | InodeProblem::BlocksTooMany { .. } => continue,
            };
            self.c.err(obj.clone(), issue);
        }
        let generation = inode.generation.get();
        if self.v.cp.next_generation <= u64::from(u32::MAX)
            && u64::from(generation) >= self.v.cp.next_generation
        {
            self.c.warn(
                obj.clone(),
                Issue::GenerationAhead {
                    generation,
                    next: self.v.cp.next_generation,
                },
            );
        }

        // The node tree.
        let is_dir = ftype == Some(FileType::Directory);
        let mut acc = TreeAcc {
            ino,
            is_dir,
            eof_blocks: (!is_dir).then(|| size.div_ceil(BLOCK_SIZE as u64)),
            data: 0,
            prealloc: 0,
            index_nodes: 0,
            past_eof: 0,
            incomplete: false,
            dir_blocks: Vec::new(),
        };
        let addrs: Vec<u32> = if inline {
            Vec::new()
        } else {
            inode.addrs.iter().map(|a| a.get()).collect()
        };
        let nids: [u32; INODE_NIDS] = core::array::from_fn(|k| inode.nids[k].get());
        let xattr_nid = inode.xattr_nid.get();
        let recorded_blocks = inode.blocks.get();
        let dir_depth = inode.dir_depth.get();
        drop(buf);

        for (i, &a) in addrs.iter().enumerate() {
            self.data_addr(&mut acc, i as u64, a);
        }
        for (k, &nid) in nids.iter().enumerate() {
            if nid == 0 {
                continue;
            }
            let Some(top) = top_nodes().get(k).copied() else {
                continue;
            };
            self.walk_index(&mut acc, nid, top.kind, top.height, top.offset, top.base)?;
        }
        let mut counted = acc.data + acc.index_nodes;
        if xattr_nid != 0 {
            counted += 1;
            self.xattr_node(ino, xattr_nid)?;
        }
        if acc.past_eof > 0 {
            self.c.err(
                obj.clone(),
                Issue::DataPastEof {
                    count: acc.past_eof,
                    size,
                },
            );
        }
        if !acc.incomplete && counted != recorded_blocks {
            self.c.err(
                obj.clone(),
                Issue::BlocksMismatch {
                    recorded: recorded_blocks,
                    counted,
                },
            );
        }
        match ftype {
            Some(FileType::Symlink) if size == 0 || size >= BLOCK_SIZE as u64 => {
                self.c.err(obj.clone(), Issue::SymlinkSize { size });
            }
            Some(
                FileType::CharDevice
                | FileType::BlockDevice
                | FileType::NamedPipe
                | FileType::Socket,
            ) if size != 0 || acc.data != 0 => {
                self.c.err(
                    obj.clone(),
                    Issue::SpecialHasData {
                        size,
                        blocks: acc.data,
                    },
                );
            }
            _ => {}
        }
        self.counts.data_blocks += acc.data;
        self.counts.prealloc += acc.prealloc;
        if is_dir {
            let complete = self.directory(ino, size, dir_depth, &acc.dir_blocks)?;
            if let Some(info) = self.inodes.get_mut(&ino) {
                info.complete = complete && !acc.incomplete;
            }
        }
        Ok(())
    }

    /// One data address of file block `index`.
    fn data_addr(&mut self, acc: &mut TreeAcc, index: u64, addr: u32) {
        if addr == NULL_ADDR {
            return;
        }
        acc.data += 1;
        if addr == NEW_ADDR {
            acc.prealloc += 1;
            if acc.is_dir {
                acc.dir_blocks.push((index, addr));
            }
            return;
        }
        if acc.eof_blocks.is_some_and(|eof| index >= eof) {
            acc.past_eof += 1;
        }
        let obj = Object::FileBlock {
            ino: acc.ino,
            index,
        };
        let Some((segno, off)) = self.v.layout.locate(addr) else {
            self.c.err(obj, Issue::AddrOutsideMain { addr });
            return;
        };
        if self.node_refs.test(segno, off) {
            self.c.err(
                obj,
                Issue::BlockUsedTwice {
                    addr,
                    by_node: true,
                },
            );
            return;
        }
        if self.data_refs.test_and_set(segno, off) {
            self.c.err(
                obj,
                Issue::BlockUsedTwice {
                    addr,
                    by_node: false,
                },
            );
            return;
        }
        if acc.is_dir {
            acc.dir_blocks.push((index, addr));
        }
    }

    /// An index node `height` levels above the data, at tree position `offset`, covering file
    /// blocks from `base`. Recursion is at most three deep.
    fn walk_index(
        &mut self,
        acc: &mut TreeAcc,
        nid: u32,
        kind: u8,
        height: usize,
        offset: u32,
        base: u64,
    ) -> Res<()> {
        let ino = acc.ino;
        let obj = Object::IndexNode { ino, nid, offset };
        let buf = match self.load_node(nid)? {
            Ok(b) => b,
            Err(issue) => {
                self.c.err(obj, issue);
                acc.incomplete = true;
                return Ok(());
            }
        };
        if !self.check_header(&obj, buf.node(), kind, ino, offset) {
            acc.incomplete = true;
            return Ok(());
        }
        if self.reachable.insert(nid) {
            self.c.err(obj, Issue::NodeReferencedTwice);
            acc.incomplete = true;
            return Ok(());
        }
        acc.index_nodes += 1;
        let slots: Vec<u32> = buf.node().slots().iter().map(|s| s.get()).collect();
        drop(buf);
        if height <= 1 {
            for (j, &a) in slots.iter().enumerate() {
                self.data_addr(acc, base + j as u64, a);
            }
            return Ok(());
        }
        let child_span = N.pow(height as u32 - 1);
        let child_kind = if height == 2 {
            KIND_DIRECT
        } else {
            KIND_INDIRECT
        };
        for (j, &child) in slots.iter().enumerate() {
            if child == 0 {
                continue;
            }
            // None only for a position no tree has: nothing under it to walk.
            let Some(child_offset) = child_node_offset(offset, height, j) else {
                continue;
            };
            self.walk_index(
                acc,
                child,
                child_kind,
                height - 1,
                child_offset,
                base + j as u64 * child_span,
            )?;
        }
        Ok(())
    }

    fn xattr_node(&mut self, ino: u32, nid: u32) -> Res<()> {
        let obj = Object::XattrNode { ino, nid };
        let buf = match self.load_node(nid)? {
            Ok(b) => b,
            Err(issue) => {
                self.c.err(obj, issue);
                return Ok(());
            }
        };
        if !self.check_header(&obj, buf.node(), KIND_XATTR, ino, XATTR_NODE_OFFSET) {
            return Ok(());
        }
        if self.reachable.insert(nid) {
            self.c.err(obj, Issue::NodeReferencedTwice);
            return Ok(());
        }
        if XattrBody::parse(&buf.node().body).is_none() {
            self.c.err(obj, Issue::XattrEntries);
        }
        Ok(())
    }

    /// The hash level a directory block belongs to.
    fn level_of(&self, index: u64) -> u32 {
        let n = self.level_starts.len() - 1;
        (0..n)
            .find(|&l| index < self.level_starts[l + 1])
            .unwrap_or(n) as u32
    }

    /// Check a directory's blocks and entries; returns whether every block was readable.
    fn directory(&mut self, dir: u32, size: u64, depth: u32, blocks: &[(u64, u32)]) -> Res<bool> {
        let obj = Object::Inode { ino: dir };
        if depth > dir::MAX_DEPTH {
            self.c.err(obj.clone(), Issue::DirDepth { depth });
        }
        let depth = depth.min(dir::MAX_DEPTH);
        let end = self.level_starts[depth as usize];
        let expected = end.saturating_mul(BLOCK_SIZE as u64);
        if size != expected {
            self.c.err(obj, Issue::DirSize { size, expected });
        }
        let mut seen: HashSet<Box<[u8]>> = HashSet::new();
        let mut complete = true;
        for &(index, addr) in blocks {
            let obj = Object::DirBlock { dir, index, addr };
            if index >= end {
                self.c.err(obj, Issue::DirBlockBeyondDepth { depth });
                continue;
            }
            if addr == NEW_ADDR {
                self.c.err(obj, Issue::DirBlockNeverWritten);
                continue;
            }
            let block = self.c.disk.read_block(u64::from(addr))?;
            if !csum::is_valid(self.v.seed, MAGIC_DIR, &block) {
                self.c.err(obj, Issue::BadChecksum);
                complete = false;
                continue;
            }
            if let Err(e) = DirBlock::verify(&block, self.v.seed, u64::from(addr), dir) {
                self.c.err(obj, Issue::Corrupt { reason: reason(&e) });
                complete = false;
                continue;
            }
            let d: &DirBlock = zerocopy::transmute_ref!(&*block);
            if d.is_empty() {
                self.c.warn(
                    obj,
                    Issue::Corrupt {
                        reason: "empty directory block".into(),
                    },
                );
                continue;
            }
            let level = self.level_of(index);
            for e in d.entries_from(0) {
                let name: Box<[u8]> = e.name.into();
                let eobj = Object::DirEntry {
                    dir,
                    name: e.name.to_vec(),
                };
                if e.name == b"." || e.name == b".." {
                    self.c.err(eobj, Issue::EntryDotName);
                    continue;
                }
                let hash = dir::name_hash(&self.v.sb.hash_seed, e.name);
                if e.hash != hash {
                    self.c.err(
                        eobj.clone(),
                        Issue::EntryHash {
                            stored: e.hash,
                            computed: hash,
                        },
                    );
                }
                if !dir::bucket_range(level, hash).contains(&index) {
                    self.c
                        .err(eobj.clone(), Issue::EntryWrongBucket { index, level });
                }
                if !seen.insert(name.clone()) {
                    self.c.err(eobj, Issue::EntryDuplicate);
                    continue;
                }
                let ino = e.ino;
                if ino == ROOT_INO as u32 {
                    self.c.err(eobj, Issue::EntryNamesRoot);
                    continue;
                }
                let why = if ino >= self.v.layout.max_nid {
                    Some(Issue::NidOutOfRange {
                        limit: self.v.layout.max_nid,
                    })
                } else {
                    match self.nat_entry(ino) {
                        0 => Some(Issue::NodeNotAllocated),
                        NAT_BAD => Some(Issue::NatEntryUnusable),
                        _ => None,
                    }
                };
                if let Some(why) = why {
                    self.c.err(
                        eobj,
                        Issue::EntryTarget {
                            ino,
                            why: Box::new(why),
                        },
                    );
                    continue;
                }
                self.enqueue(ino, Reach::Entry);
                self.entries.push(EntryRec {
                    dir,
                    ino,
                    dtype: e.kind,
                    name,
                });
            }
        }
        Ok(complete)
    }
}
