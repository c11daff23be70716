//! The mounted file system: [`LogFs`] implements Bento's `FileSystem` over a [`Volume`], the
//! in-memory state of one mounted device (its tables, logs and caches).
//!
//! One sleeping lock guards the volume: every operation runs under it, including its I/O. That
//! is simple and correct; finer locking comes when measurements ask for it.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use hashbrown::HashMap;

use bento_runtime::Errno;
use bento_runtime::fs::{
    self as bfs, DirFiller, Entry, FileAttr, FileSystem, FileType, Ino, Mount, MountOptions,
    Opened, RenameFlags, Request, SetAttr, Statfs, TimeOrNow, Timespec,
};
use bento_runtime::ks::block::BlockDevice;
use bento_runtime::ks::sync::Mutex;
use bento_runtime::ks::time;

use crate::checkpoint::Checkpoint;
use crate::dir::DirCache;
use crate::error::{Error, Result, io};
use crate::format::layout::{BLOCK_SIZE, Layout, NEW_ADDR, NULL_ADDR};
use crate::format::node::{KIND_INODE, Node};
use crate::format::superblock::{Access, Superblock};
use crate::format::tables::{LOG_DATA, LOG_NODE};
use crate::log::{Log, NODE_LOG};
use crate::nat::Nat;
use crate::node::NodeCache;
use crate::segment::SegmentTable;

/// This implementation's version. The `v2` feature builds the same file system as a newer
/// version (`logfs_v2.ko`), to try live upgrades with: it also reports how many upgrades the
/// mount went through (`trusted.logfs.stats`).
pub const VERSION: &str = if cfg!(feature = "v2") {
    concat!(env!("CARGO_PKG_VERSION"), "+v2")
} else if cfg!(feature = "bad-state") {
    concat!(env!("CARGO_PKG_VERSION"), "+bad-state")
} else if cfg!(feature = "bad-format") {
    concat!(env!("CARGO_PKG_VERSION"), "+bad-format")
} else {
    env!("CARGO_PKG_VERSION")
};

/// Most hard links to one inode.
pub const LINK_MAX: u32 = 65_000;
/// Changes are committed by a background checkpoint about this long after they were made, as
/// ext4 commits its journal every 5 s (F2FS checkpoints every 60 s). Over FUSE, sync(2) does not
/// reach the file system, so this bounds what a crash loses.
pub const CHECKPOINT_INTERVAL_SECS: i64 = 5;
/// Since the last checkpoint, the inode was created.
pub(crate) const SINCE_CP_NEW: u8 = 1;
/// Since the last checkpoint, a name of the inode was added, removed or changed.
pub(crate) const SINCE_CP_NAMES: u8 = 2;
/// Since the last checkpoint, the inode's extended attributes changed.
pub(crate) const SINCE_CP_XATTR: u8 = 4;
/// Since the last checkpoint, punching a hole freed index nodes of the file, which fsync does
/// not write (recovery would keep the checkpoint's copies, and the data under them).
pub(crate) const SINCE_CP_FREED_NODES: u8 = 8;
/// Since the last checkpoint, the directory lost or retargeted a name. Recovery gives fsync'd
/// new files their names back; it may only do so where no name went away, so it never finds
/// the name taken by an inode that has moved on since.
pub(crate) const SINCE_CP_LOST_NAME: u8 = 16;

/// Nodes kept in memory.
const NODE_CACHE_CAPACITY: usize = 8 * 1024;
/// Directory blocks kept in memory.
const DIR_CACHE_CAPACITY: usize = 4 * 1024;

/// Mount options logfs understands (`-o` list after the generic ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Tell the device about freed segments.
    pub discard: bool,
    /// Every fsync commits a full checkpoint instead of a roll-forward record
    /// (`fsync=checkpoint`; the default is `fsync=rollforward`).
    pub fsync_checkpoint: bool,
}

impl Options {
    pub fn parse(s: &str) -> core::result::Result<Options, String> {
        let mut o = Options {
            discard: true,
            fsync_checkpoint: false,
        };
        for opt in s.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match opt {
                "discard" => o.discard = true,
                "nodiscard" => o.discard = false,
                "fsync=rollforward" => o.fsync_checkpoint = false,
                "fsync=checkpoint" => o.fsync_checkpoint = true,
                _ => return Err(alloc::format!("unknown mount option \"{opt}\"")),
            }
        }
        Ok(o)
    }
}

/// The state of a mounted volume.
pub struct Volume<D> {
    pub(crate) dev: D,
    pub(crate) sb: Superblock,
    pub(crate) layout: Layout,
    pub(crate) seed: u32,
    pub(crate) read_only: bool,
    pub(crate) options: Options,
    /// The last committed checkpoint.
    pub(crate) seq: u64,
    pub(crate) valid_blocks: u64,
    pub(crate) valid_nodes: u32,
    pub(crate) valid_inodes: u32,
    pub(crate) next_generation: u64,
    pub(crate) sut: SegmentTable,
    pub(crate) nat: Nat,
    pub(crate) logs: Vec<Log>,
    pub(crate) nodes: NodeCache,
    pub(crate) dirs: DirCache,
    /// Unlinked inodes still referenced by the front end.
    pub(crate) orphans: BTreeSet<u32>,
    /// File blocks that are holes on disk but dirty in a front end's page cache, with their
    /// space promised (delayed allocation): (inode, file block).
    pub(crate) delayed: BTreeSet<(u32, u64)>,
    /// Index nodes those promised blocks will need: (inode, node offset in its tree).
    pub(crate) delayed_nodes: BTreeSet<(u32, u32)>,
    /// What happened to inodes since the last checkpoint that roll-forward cannot replay
    /// (`SINCE_CP_*`); decides whether an fsync may skip the checkpoint.
    pub(crate) since_cp: HashMap<u32, u8>,
    pub(crate) lookups: HashMap<u32, u64>,
    pub(crate) opens: HashMap<u32, u32>,
    /// Something changed since the last checkpoint.
    pub(crate) dirty: bool,
    /// Inside a checkpoint or cleaning: do not start another.
    pub(crate) busy: bool,
    /// A checkpoint failed: the volume is read-only until remounted.
    pub(crate) failed: bool,
    /// When the last checkpoint was committed (seconds).
    pub(crate) last_checkpoint: i64,
    pub(crate) stats: Stats,
    /// Live upgrades this mount went through.
    pub(crate) upgrades: u32,
    /// When corruption was last logged (rate limit of [`report`]).
    pub(crate) last_corrupt_log: Option<i64>,
}

/// Counters for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub checkpoints: u64,
    pub gc_segments: u64,
    /// fsyncs done without a checkpoint (roll-forward records).
    pub fsyncs: u64,
    /// Nodes replayed by roll-forward recovery at mount.
    pub recovered_nodes: u64,
    pub gc_moved_blocks: u64,
    pub data_blocks_written: u64,
    pub node_blocks_written: u64,
}

pub(crate) fn nid_of(ino: Ino) -> Result<u32> {
    u32::try_from(ino)
        .ok()
        .filter(|&n| n != 0)
        .ok_or(Error::Errno(Errno::ESTALE))
}

pub(crate) fn now() -> Timespec {
    time::now()
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL.into());
    }
    if name.len() > bfs::NAME_MAX {
        return Err(Errno::ENAMETOOLONG.into());
    }
    Ok(())
}

impl<D: BlockDevice> Volume<D> {
    /// The volume as its last checkpoint left it, and that checkpoint's orphan list.
    pub(crate) fn load_checkpoint(dev: D, opts: &MountOptions) -> Result<(Volume<D>, Vec<u32>)> {
        let options = Options::parse(&opts.fs_options).map_err(|msg| {
            bento_runtime::error!("logfs: {msg}");
            Error::Errno(Errno::EINVAL)
        })?;
        let sb = Superblock::read(&dev)?;
        let mut read_only = opts.read_only;
        if sb.access()? == Access::ReadOnly && !read_only {
            bento_runtime::warn!(
                "logfs: volume has features this version cannot write; mounting read-only"
            );
            read_only = true;
        }
        let layout = sb.layout;
        let seed = sb.csum_seed();
        let cp = Checkpoint::read_latest(&dev, &sb)?;
        if cp.valid_blocks > layout.user_capacity() + u64::from(crate::format::layout::SEG_BLOCKS) {
            return Err(Error::corrupt("checkpoint (block count)", 0));
        }
        let mut sut = SegmentTable::load(&dev, &layout, seed, &cp.sut_bitmap)?;
        let nat = Nat::new(&layout, &cp.nat_bitmap, cp.nat_written, cp.next_free_nid)?;
        let mut logs = Vec::new();
        let Checkpoint {
            logs: heads,
            summaries,
            orphans,
            ..
        } = cp;
        for (i, (head, summary)) in heads.iter().zip(summaries).enumerate() {
            let kind = if i == NODE_LOG { LOG_NODE } else { LOG_DATA };
            if summary.log != kind && summary.log != 0 {
                return Err(Error::corrupt("checkpoint (log summary type)", 0));
            }
            sut.set_active(head.segno, kind)?;
            logs.push(Log::new(kind, head.segno, head.next_off, summary)?);
        }
        if logs.len() != 2 {
            return Err(Error::Incompatible("unsupported number of logs"));
        }
        let mut vol = Volume {
            dev,
            sb,
            layout,
            seed,
            read_only,
            options,
            seq: cp.seq,
            valid_blocks: cp.valid_blocks,
            valid_nodes: cp.valid_nodes,
            valid_inodes: cp.valid_inodes,
            next_generation: cp.next_generation,
            sut,
            nat,
            logs,
            nodes: NodeCache::new(NODE_CACHE_CAPACITY),
            dirs: DirCache::new(DIR_CACHE_CAPACITY),
            orphans: BTreeSet::new(),
            delayed: BTreeSet::new(),
            delayed_nodes: BTreeSet::new(),
            since_cp: HashMap::new(),
            lookups: HashMap::new(),
            opens: HashMap::new(),
            dirty: false,
            busy: false,
            failed: false,
            last_checkpoint: now().sec,
            stats: Stats::default(),
            upgrades: 0,
            last_corrupt_log: None,
        };
        let root = vol.inode(bfs::ROOT_INO as u32)?;
        if FileType::from_mode(root.inode().mode.get()) != Some(FileType::Directory) {
            return Err(Error::corrupt("root inode (not a directory)", 0));
        }
        Ok((vol, orphans))
    }

    /// Bring a volume up from its last checkpoint, replaying what fsync made durable since and
    /// freeing orphans.
    pub fn load(dev: D, opts: &MountOptions) -> Result<Volume<D>> {
        let (mut vol, orphans) = Self::load_checkpoint(dev, opts)?;
        vol.roll_forward()?;
        vol.recover_orphans(&orphans)?;
        // Even with nothing to replay: fsync records of this mount then carry a new `cp_ver`, so
        // recovery cannot follow their chain into records an earlier mount left past the log
        // position (a torn record whose first block was lost is invisible, not gone).
        if !vol.read_only {
            vol.checkpoint(false)?;
        }
        Ok(vol)
    }

    // ---- blocks and nodes -------------------------------------------------------------------

    /// Read one block of the main area, from the log buffers if it is still staged there.
    pub(crate) fn read_block(&self, addr: u32, buf: &mut [u8]) -> Result<()> {
        if addr == NULL_ADDR || addr == NEW_ADDR || self.layout.locate(addr).is_none() {
            return Err(Error::corrupt("block address", u64::from(addr)));
        }
        if let Some(staged) = self.logs.iter().find_map(|l| l.staged(&self.layout, addr)) {
            buf.copy_from_slice(staged);
            return Ok(());
        }
        self.dev.read_blocks(u64::from(addr), buf).map_err(io)
    }

    /// Make sure `nid` is in the node cache.
    pub(crate) fn load_node(&mut self, nid: u32) -> Result<()> {
        if self.nodes.contains(nid) {
            return Ok(());
        }
        let addr = self.nat.get(&self.dev, &self.layout, self.seed, nid)?;
        if addr == NULL_ADDR || addr == NEW_ADDR {
            return Err(Error::corrupt("node (not allocated)", u64::from(nid)));
        }
        let mut block = Node::new_boxed()?;
        self.read_block(addr, zerocopy::IntoBytes::as_mut_bytes(&mut *block))?;
        let node = Node::decode(block.bytes(), self.seed, u64::from(addr), nid, &self.layout)?;
        self.nodes.insert_clean(node);
        Ok(())
    }

    pub(crate) fn node(&mut self, nid: u32) -> Result<&Node> {
        self.load_node(nid)?;
        self.nodes.get(nid).ok_or(Error::Errno(Errno::EIO))
    }

    /// A node for changing: it will be written at the next checkpoint.
    pub(crate) fn node_mut(&mut self, nid: u32) -> Result<&mut Node> {
        self.load_node(nid)?;
        self.dirty = true;
        self.nodes.get_mut(nid).ok_or(Error::Errno(Errno::EIO))
    }

    /// An inode node, checked to be one.
    pub(crate) fn inode(&mut self, ino: u32) -> Result<&Node> {
        let n = self.node(ino).map_err(|e| match e {
            Error::Corrupt {
                what: "node (not allocated)",
                ..
            } => Error::Errno(Errno::ESTALE),
            e => e,
        })?;
        if n.kind() != KIND_INODE {
            return Err(Error::corrupt("inode (not an inode node)", u64::from(ino)));
        }
        Ok(n)
    }

    pub(crate) fn inode_mut(&mut self, ino: u32) -> Result<&mut crate::format::node::RawInode> {
        self.inode(ino)?;
        Ok(self.node_mut(ino)?.inode_mut())
    }

    pub(crate) fn file_type(&mut self, ino: u32) -> Result<FileType> {
        let mode = self.inode(ino)?.inode().mode.get();
        FileType::from_mode(mode).ok_or(Error::corrupt("inode (mode)", u64::from(ino)))
    }

    /// Count `n` more blocks in use, or ENOSPC if they do not fit.
    pub(crate) fn reserve(&mut self, n: u64) -> Result<()> {
        if self.committed_blocks() + n > self.layout.user_capacity() {
            return Err(Errno::ENOSPC.into());
        }
        self.valid_blocks += n;
        Ok(())
    }

    /// Blocks in use plus those promised to dirty page-cache data and the index nodes it needs.
    pub(crate) fn committed_blocks(&self) -> u64 {
        self.valid_blocks + self.delayed.len() as u64 + self.delayed_nodes.len() as u64
    }

    /// A new node of `kind` for inode `ino` (which is the new nid itself for an inode).
    pub(crate) fn new_node(&mut self, ino: Option<u32>, offset: u32, kind: u8) -> Result<u32> {
        // An index node promised to delayed data was counted when the data was dirtied.
        match ino {
            Some(i) if self.delayed_nodes.remove(&(i, offset)) => self.valid_blocks += 1,
            _ => self.reserve(1)?,
        }
        let nid = match self.nat.alloc(&self.dev, &self.layout, self.seed) {
            Ok(nid) => nid,
            Err(e) => {
                self.valid_blocks -= 1;
                return Err(e);
            }
        };
        let mut node = Node::new_boxed()?;
        node.init(nid, ino.unwrap_or(nid), offset, kind);
        self.nodes.insert_dirty(node);
        self.valid_nodes += 1;
        self.dirty = true;
        Ok(nid)
    }

    /// Free a node: its block dies and its nid is released.
    pub(crate) fn free_node(&mut self, nid: u32) -> Result<()> {
        let addr = self.nat.get(&self.dev, &self.layout, self.seed, nid)?;
        self.invalidate(addr);
        self.nat.release(&self.dev, &self.layout, self.seed, nid)?;
        self.nodes.remove(nid);
        self.valid_nodes = self.valid_nodes.saturating_sub(1);
        self.valid_blocks = self.valid_blocks.saturating_sub(1);
        self.dirty = true;
        Ok(())
    }

    /// A block at `addr` is no longer referenced.
    pub(crate) fn invalidate(&mut self, addr: u32) {
        if addr == NULL_ADDR || addr == NEW_ADDR {
            return;
        }
        match self.layout.locate(addr) {
            Some((segno, off)) if self.sut.set_invalid(segno, off) => {}
            _ => bento_runtime::warn!("logfs: freeing block {addr} that was not in use"),
        }
    }

    /// Make room in `log` for one more block, moving it to a fresh segment if it is full.
    pub(crate) fn log_room(&mut self, log: usize) -> Result<()> {
        let Some(l) = self.logs.get(log) else {
            return Err(Errno::EIO.into());
        };
        if !l.is_full() {
            return Ok(());
        }
        let (kind, old, next) = (l.kind, l.segno, l.next_segno);
        let segno = match next {
            Some(s) => s,
            None => self
                .sut
                .allocate(kind, old + 1)
                .ok_or(Error::Errno(Errno::ENOSPC))?,
        };
        self.logs[log].next_segno = None;
        let (dev, layout, seed) = (&self.dev, &self.layout, self.seed);
        self.logs[log].switch(dev, layout, seed, segno)?;
        self.sut.retire(old);
        Ok(())
    }

    /// Where the node log will put the block after the one it is about to write: the next block
    /// of the segment, or the start of the segment it continues in (chosen now if need be).
    pub(crate) fn node_log_next(&mut self) -> Result<u32> {
        let Some(l) = self.logs.get(NODE_LOG) else {
            return Err(Errno::EIO.into());
        };
        if l.next_off + 1 < crate::format::layout::SEG_BLOCKS {
            return Ok(self.layout.segment_start(l.segno) + l.next_off + 1);
        }
        let next = match l.next_segno {
            Some(s) => s,
            None => {
                let s = self
                    .sut
                    .allocate(l.kind, l.segno + 1)
                    .ok_or(Error::Errno(Errno::ENOSPC))?;
                self.logs[NODE_LOG].next_segno = Some(s);
                s
            }
        };
        Ok(self.layout.segment_start(next))
    }

    /// Append a block to `log`, owned by `(nid, ofs)`; returns its address.
    pub(crate) fn append(
        &mut self,
        log: usize,
        block: &[u8; BLOCK_SIZE],
        nid: u32,
        ofs: u16,
    ) -> Result<u32> {
        self.log_room(log)?;
        let Some(l) = self.logs.get_mut(log) else {
            return Err(Errno::EIO.into());
        };
        let addr = l.append(&self.layout, block, nid, ofs)?;
        if let Some((segno, off)) = self.layout.locate(addr) {
            self.sut.set_valid(segno, off, now().sec);
        }
        Ok(addr)
    }

    // ---- inodes -------------------------------------------------------------------------------

    /// Record a change roll-forward recovery cannot replay.
    pub(crate) fn note_since_cp(&mut self, ino: u32, what: u8) {
        *self.since_cp.entry(ino).or_insert(0) |= what;
    }

    pub(crate) fn attr(&mut self, ino: u32) -> Result<FileAttr> {
        let n = self.inode(ino)?;
        let i = n.inode();
        let mode = i.mode.get();
        let kind =
            FileType::from_mode(mode).ok_or(Error::corrupt("inode (mode)", u64::from(ino)))?;
        Ok(FileAttr {
            ino: u64::from(ino),
            size: i.size.get(),
            blocks: (i.blocks.get() + 1) * (BLOCK_SIZE as u64 / 512),
            atime: i.atime(),
            mtime: i.mtime(),
            ctime: i.ctime(),
            crtime: i.crtime(),
            kind,
            perm: (mode & 0o7777) as u16,
            nlink: i.nlink.get(),
            uid: i.uid.get(),
            gid: i.gid.get(),
            rdev: i.rdev.get(),
            blksize: BLOCK_SIZE as u32,
            generation: u64::from(i.generation.get()),
        })
    }

    /// Allocate and initialize an inode.
    fn new_inode(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<u32> {
        let (pmode, pgid) = {
            let p = self.inode(parent)?.inode();
            (p.mode.get(), p.gid.get())
        };
        let mut mode = mode;
        let gid = if pmode & bfs::S_ISGID != 0 {
            if mode & bfs::S_IFMT == bfs::S_IFDIR {
                mode |= bfs::S_ISGID;
            }
            pgid
        } else {
            req.gid
        };
        let ino = self.new_node(None, 0, KIND_INODE)?;
        let generation = self.next_generation as u32;
        self.next_generation += 1;
        let t = now();
        let is_dir = mode & bfs::S_IFMT == bfs::S_IFDIR;
        let kind = mode & bfs::S_IFMT;
        let i = self.node_mut(ino)?.inode_mut();
        i.mode = mode.into();
        i.uid = req.uid.into();
        i.gid = gid.into();
        i.nlink = (if is_dir { 2u32 } else { 1 }).into();
        i.rdev = rdev.into();
        i.generation = generation.into();
        if kind == bfs::S_IFREG || kind == bfs::S_IFLNK {
            i.flags = crate::format::node::INODE_INLINE_DATA.into();
        }
        i.set_atime(t);
        i.set_mtime(t);
        i.set_ctime(t);
        i.set_crtime(t);
        i.set_name(parent, name);
        self.valid_inodes += 1;
        self.note_since_cp(ino, SINCE_CP_NEW);
        Ok(ino)
    }

    /// Release an inode whose last name and last reference are gone.
    pub(crate) fn free_inode(&mut self, ino: u32) -> Result<()> {
        let (inline, xattr_nid, is_dir) = {
            let i = self.inode(ino)?.inode();
            (
                i.is_inline(),
                i.xattr_nid.get(),
                i.mode.get() & bfs::S_IFMT == bfs::S_IFDIR,
            )
        };
        if is_dir {
            self.dirs.forget_dir(ino);
        }
        if !inline {
            self.free_blocks(ino, 0, u64::MAX)?;
        }
        if xattr_nid != 0 {
            self.free_node(xattr_nid)?;
        }
        self.free_node(ino)?;
        self.valid_inodes = self.valid_inodes.saturating_sub(1);
        self.orphans.remove(&ino);
        self.forget_delayed(ino, 0, u64::MAX);
        self.lookups.remove(&ino);
        self.opens.remove(&ino);
        Ok(())
    }

    fn referenced(&self, ino: u32) -> bool {
        self.lookups.get(&ino).is_some_and(|&n| n > 0)
            || self.opens.get(&ino).is_some_and(|&n| n > 0)
    }

    /// After a link count or reference count change: free the inode if nothing keeps it.
    fn maybe_free(&mut self, ino: u32) -> Result<()> {
        if self.inode(ino)?.inode().nlink.get() != 0 {
            return Ok(());
        }
        if self.referenced(ino) {
            self.orphans.insert(ino);
            Ok(())
        } else {
            self.free_inode(ino)
        }
    }

    fn touch_dir(&mut self, dir: u32, t: Timespec) -> Result<()> {
        let i = self.inode_mut(dir)?;
        i.set_mtime(t);
        i.set_ctime(t);
        Ok(())
    }

    fn add_nlink(&mut self, ino: u32, delta: i32, t: Timespec) -> Result<()> {
        let i = self.inode_mut(ino)?;
        let n = i.nlink.get().saturating_add_signed(delta);
        i.nlink = n.into();
        i.set_ctime(t);
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Errno::EROFS.into());
        }
        if self.failed {
            return Err(Errno::EIO.into());
        }
        Ok(())
    }

    pub(crate) fn dir_of(&mut self, ino: u32) -> Result<()> {
        match self.file_type(ino)? {
            FileType::Directory => Ok(()),
            _ => Err(Errno::ENOTDIR.into()),
        }
    }

    fn counted_lookup(&mut self, ino: u32) -> Result<Entry> {
        let attr = self.attr(ino)?;
        *self.lookups.entry(ino).or_insert(0) += 1;
        Ok(Entry { attr })
    }

    // ---- operations ---------------------------------------------------------------------------

    pub fn lookup(&mut self, parent: u32, name: &[u8]) -> Result<Entry> {
        self.dir_of(parent)?;
        if name.len() > bfs::NAME_MAX {
            return Err(Errno::ENAMETOOLONG.into());
        }
        let ino = match name {
            b"." => parent,
            b".." => self.inode(parent)?.inode().parent.get(),
            _ => {
                self.dir_find(parent, name)?
                    .ok_or(Error::Errno(Errno::ENOENT))?
                    .ino
            }
        };
        self.counted_lookup(ino)
    }

    pub fn forget(&mut self, ino: u32, n: u64) -> Result<()> {
        let left = match self.lookups.get_mut(&ino) {
            Some(c) => {
                *c = c.saturating_sub(n);
                *c
            }
            None => return Ok(()),
        };
        if left == 0 {
            self.lookups.remove(&ino);
            if self.orphans.contains(&ino) && !self.referenced(ino) && !self.read_only {
                self.free_inode(ino)?;
            }
        }
        Ok(())
    }

    /// Create an inode named `name` in `parent`: the common part of mknod, mkdir, symlink, create.
    fn make(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        mode: u32,
        rdev: u32,
        target: Option<&[u8]>,
    ) -> Result<Entry> {
        self.check_writable()?;
        check_name(name)?;
        self.dir_of(parent)?;
        if FileType::from_mode(mode).is_none() {
            return Err(Errno::EINVAL.into());
        }
        if self.dir_find(parent, name)?.is_some() || name == b"." || name == b".." {
            return Err(Errno::EEXIST.into());
        }
        let is_dir = mode & bfs::S_IFMT == bfs::S_IFDIR;
        if is_dir && self.inode(parent)?.inode().nlink.get() >= LINK_MAX {
            return Err(Errno::EMLINK.into());
        }
        self.ensure_space(4 + target.map_or(0, |t| t.len() as u64 / BLOCK_SIZE as u64))?;
        let ino = self.new_inode(req, parent, name, mode, rdev)?;
        let kind = FileType::from_mode(mode).map_or(0, |k| k.dirent_type());
        let r = (|| {
            if let Some(t) = target {
                self.write_data(ino, 0, t)?;
            }
            self.dir_add(parent, name, ino, kind)
        })();
        if let Err(e) = r {
            self.inode_mut(ino)?.nlink = 0.into();
            self.free_inode(ino)?;
            return Err(e);
        }
        let t = now();
        if is_dir {
            self.add_nlink(parent, 1, t)?;
            self.inode_mut(ino)?.parent = parent.into();
        }
        self.touch_dir(parent, t)?;
        self.counted_lookup(ino)
    }

    pub fn mknod(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry> {
        if mode & bfs::S_IFMT == bfs::S_IFDIR || mode & bfs::S_IFMT == bfs::S_IFLNK {
            return Err(Errno::EINVAL.into());
        }
        let mode = if mode & bfs::S_IFMT == 0 {
            mode | bfs::S_IFREG
        } else {
            mode
        };
        self.make(req, parent, name, mode, rdev, None)
    }

    pub fn mkdir(&mut self, req: &Request, parent: u32, name: &[u8], mode: u32) -> Result<Entry> {
        self.make(req, parent, name, bfs::S_IFDIR | (mode & 0o7777), 0, None)
    }

    pub fn symlink(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        target: &[u8],
    ) -> Result<Entry> {
        if target.is_empty() || target.len() >= 4096 {
            return Err(if target.is_empty() {
                Errno::ENOENT
            } else {
                Errno::ENAMETOOLONG
            }
            .into());
        }
        self.make(req, parent, name, bfs::S_IFLNK | 0o777, 0, Some(target))
    }

    pub fn create(&mut self, req: &Request, parent: u32, name: &[u8], mode: u32) -> Result<Entry> {
        let e = self.make(req, parent, name, bfs::S_IFREG | (mode & 0o7777), 0, None)?;
        *self.opens.entry(e.attr.ino as u32).or_insert(0) += 1;
        Ok(e)
    }

    pub fn link(&mut self, ino: u32, newparent: u32, newname: &[u8]) -> Result<Entry> {
        self.check_writable()?;
        check_name(newname)?;
        self.dir_of(newparent)?;
        if self.file_type(ino)? == FileType::Directory {
            return Err(Errno::EPERM.into());
        }
        if self.inode(ino)?.inode().nlink.get() >= LINK_MAX {
            return Err(Errno::EMLINK.into());
        }
        if self.dir_find(newparent, newname)?.is_some() {
            return Err(Errno::EEXIST.into());
        }
        self.ensure_space(4)?;
        let kind = self.file_type(ino)?.dirent_type();
        self.dir_add(newparent, newname, ino, kind)?;
        self.note_since_cp(ino, SINCE_CP_NAMES);
        let t = now();
        self.add_nlink(ino, 1, t)?;
        self.orphans.remove(&ino);
        self.touch_dir(newparent, t)?;
        self.counted_lookup(ino)
    }

    pub fn unlink(&mut self, parent: u32, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.dir_of(parent)?;
        let e = self
            .dir_find(parent, name)?
            .ok_or(Error::Errno(Errno::ENOENT))?;
        if self.file_type(e.ino)? == FileType::Directory {
            return Err(Errno::EISDIR.into());
        }
        self.ensure_space(2)?;
        self.dir_remove(parent, &e)?;
        let t = now();
        self.add_nlink(e.ino, -1, t)?;
        self.touch_dir(parent, t)?;
        self.maybe_free(e.ino)
    }

    pub fn rmdir(&mut self, parent: u32, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.dir_of(parent)?;
        match name {
            b"." => return Err(Errno::EINVAL.into()),
            b".." => return Err(Errno::ENOTEMPTY.into()),
            _ => {}
        }
        let e = self
            .dir_find(parent, name)?
            .ok_or(Error::Errno(Errno::ENOENT))?;
        if self.file_type(e.ino)? != FileType::Directory {
            return Err(Errno::ENOTDIR.into());
        }
        if !self.dir_is_empty(e.ino)? {
            return Err(Errno::ENOTEMPTY.into());
        }
        self.ensure_space(2)?;
        self.dir_remove(parent, &e)?;
        let t = now();
        let i = self.inode_mut(e.ino)?;
        i.nlink = 0.into();
        i.set_ctime(t);
        self.add_nlink(parent, -1, t)?;
        self.touch_dir(parent, t)?;
        self.maybe_free(e.ino)
    }

    /// Is `dir` equal to `ancestor` or below it?
    fn is_within(&mut self, mut dir: u32, ancestor: u32) -> Result<bool> {
        for _ in 0..=self.valid_inodes {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == bfs::ROOT_INO as u32 {
                return Ok(false);
            }
            dir = self.inode(dir)?.inode().parent.get();
        }
        Err(Error::corrupt(
            "directory tree (parent loop)",
            u64::from(dir),
        ))
    }

    pub fn rename(
        &mut self,
        parent: u32,
        name: &[u8],
        newparent: u32,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        self.check_writable()?;
        if flags.0 & !(RenameFlags::NOREPLACE | RenameFlags::EXCHANGE) != 0
            || (flags.noreplace() && flags.exchange())
        {
            return Err(Errno::EINVAL.into());
        }
        check_name(newname)?;
        self.dir_of(parent)?;
        self.dir_of(newparent)?;
        if matches!(name, b"." | b"..") || matches!(newname, b"." | b"..") {
            return Err(Errno::EINVAL.into());
        }
        let src = self
            .dir_find(parent, name)?
            .ok_or(Error::Errno(Errno::ENOENT))?;
        let dst = self.dir_find(newparent, newname)?;
        let src_dir = self.file_type(src.ino)? == FileType::Directory;
        let t = now();

        if flags.exchange() {
            let dst = dst.ok_or(Error::Errno(Errno::ENOENT))?;
            if src.ino == dst.ino {
                return Ok(());
            }
            let dst_dir = self.file_type(dst.ino)? == FileType::Directory;
            if (src_dir && self.is_within(newparent, src.ino)?)
                || (dst_dir && self.is_within(parent, dst.ino)?)
            {
                return Err(Errno::EINVAL.into());
            }
            self.ensure_space(4)?;
            let (src_kind, dst_kind) = (src.kind, dst.kind);
            self.dir_set_target(parent, &src, dst.ino, dst_kind)?;
            self.dir_set_target(newparent, &dst, src.ino, src_kind)?;
            if parent != newparent && src_dir != dst_dir {
                let (to_new, to_old) = if src_dir { (1, -1) } else { (-1, 1) };
                self.add_nlink(newparent, to_new, t)?;
                self.add_nlink(parent, to_old, t)?;
            }
            self.inode_mut(src.ino)?.set_name(newparent, newname);
            self.inode_mut(dst.ino)?.set_name(parent, name);
            for ino in [src.ino, dst.ino] {
                self.inode_mut(ino)?.set_ctime(t);
            }
            self.touch_dir(parent, t)?;
            self.touch_dir(newparent, t)?;
            return Ok(());
        }

        if let Some(d) = &dst {
            if flags.noreplace() {
                return Err(Errno::EEXIST.into());
            }
            if d.ino == src.ino {
                return Ok(());
            }
            let dst_dir = self.file_type(d.ino)? == FileType::Directory;
            match (src_dir, dst_dir) {
                (true, false) => return Err(Errno::ENOTDIR.into()),
                (false, true) => return Err(Errno::EISDIR.into()),
                (true, true) if !self.dir_is_empty(d.ino)? => return Err(Errno::ENOTEMPTY.into()),
                _ => {}
            }
        }
        if src_dir && self.is_within(newparent, src.ino)? {
            return Err(Errno::EINVAL.into());
        }
        self.ensure_space(6)?;
        match &dst {
            Some(d) => {
                self.dir_set_target(newparent, d, src.ino, src.kind)?;
                self.dir_remove(parent, &src)?;
                let replaced = d.ino;
                if src_dir {
                    self.inode_mut(replaced)?.nlink = 0.into();
                    self.add_nlink(newparent, -1, t)?;
                } else {
                    self.add_nlink(replaced, -1, t)?;
                }
                self.maybe_free(replaced)?;
            }
            None => {
                self.dir_add(newparent, newname, src.ino, src.kind)?;
                self.dir_remove(parent, &src)?;
            }
        }
        if src_dir && parent != newparent {
            self.add_nlink(parent, -1, t)?;
            self.add_nlink(newparent, 1, t)?;
        }
        let i = self.inode_mut(src.ino)?;
        i.set_name(newparent, newname);
        i.set_ctime(t);
        self.touch_dir(parent, t)?;
        self.touch_dir(newparent, t)
    }

    pub fn setattr(&mut self, ino: u32, a: &SetAttr) -> Result<FileAttr> {
        self.check_writable()?;
        let kind = self.file_type(ino)?;
        let t = now();
        if let Some(size) = a.size {
            match kind {
                FileType::Directory => return Err(Errno::EISDIR.into()),
                FileType::RegularFile => {}
                _ => return Err(Errno::EINVAL.into()),
            }
            if size > crate::format::geometry::MAX_FILE_SIZE {
                return Err(Errno::EFBIG.into());
            }
            self.ensure_space(4)?;
            self.truncate(ino, size)?;
            let i = self.inode_mut(ino)?;
            if a.mtime.is_none() {
                i.set_mtime(t);
            }
        }
        let i = self.inode_mut(ino)?;
        if let Some(mode) = a.mode {
            i.mode = ((i.mode.get() & bfs::S_IFMT) | (mode & 0o7777)).into();
        }
        if let Some(uid) = a.uid {
            i.uid = uid.into();
        }
        if let Some(gid) = a.gid {
            i.gid = gid.into();
        }
        if a.kill_suid {
            let mut mode = i.mode.get() & !bfs::S_ISUID;
            if mode & bfs::S_IXGRP != 0 {
                mode &= !bfs::S_ISGID;
            }
            i.mode = mode.into();
        }
        match a.atime {
            Some(TimeOrNow::Time(ts)) => i.set_atime(ts),
            Some(TimeOrNow::Now) => i.set_atime(t),
            None => {}
        }
        match a.mtime {
            Some(TimeOrNow::Time(ts)) => i.set_mtime(ts),
            Some(TimeOrNow::Now) => i.set_mtime(t),
            None => {}
        }
        i.set_ctime(a.ctime.unwrap_or(t));
        self.attr(ino)
    }

    pub fn read(&mut self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match self.file_type(ino)? {
            FileType::Directory => return Err(Errno::EISDIR.into()),
            FileType::RegularFile | FileType::Symlink => {}
            _ => return Err(Errno::EINVAL.into()),
        }
        self.read_data(ino, offset, buf)
    }

    pub fn write(&mut self, ino: u32, offset: u64, data: &[u8]) -> Result<usize> {
        self.check_writable()?;
        match self.file_type(ino)? {
            FileType::RegularFile => {}
            FileType::Directory => return Err(Errno::EISDIR.into()),
            _ => return Err(Errno::EINVAL.into()),
        }
        if data.is_empty() {
            return Ok(0);
        }
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > crate::format::geometry::MAX_FILE_SIZE)
        {
            return Err(Errno::EFBIG.into());
        }
        let blocks = (data.len() / BLOCK_SIZE) as u64 + 2;
        self.ensure_space(blocks + blocks / 512 + 4)?;
        if self.committed_blocks() + self.blocks_needed(ino, offset, data.len() as u64)?
            > self.layout.user_capacity()
        {
            return Err(Errno::ENOSPC.into());
        }
        // Times are not touched: a front end with a page cache (the kernel, FUSE's writeback
        // cache) owns a cached file's times and sets them with setattr; writeback arriving
        // later must not overwrite them.
        self.write_data(ino, offset, data)
    }

    pub fn open(&mut self, ino: u32) -> Result<()> {
        self.inode(ino)?;
        *self.opens.entry(ino).or_insert(0) += 1;
        Ok(())
    }

    pub fn release(&mut self, ino: u32) -> Result<()> {
        if let Some(c) = self.opens.get_mut(&ino) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.opens.remove(&ino);
            }
        }
        if self.orphans.contains(&ino) && !self.referenced(ino) && !self.read_only {
            self.free_inode(ino)?;
        }
        Ok(())
    }

    pub fn readlink(&mut self, ino: u32) -> Result<Vec<u8>> {
        if self.file_type(ino)? != FileType::Symlink {
            return Err(Errno::EINVAL.into());
        }
        let size = self.inode(ino)?.inode().size.get().min(4096) as usize;
        let mut buf = alloc::vec![0u8; size];
        let n = self.read_data(ino, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    pub fn statfs(&self) -> Statfs {
        let cap = self.layout.user_capacity();
        let free = cap.saturating_sub(self.committed_blocks());
        let files = u64::from(self.layout.max_nid.saturating_sub(1));
        let ffree = files.saturating_sub(u64::from(self.valid_nodes)).min(free);
        Statfs {
            blocks: cap,
            bfree: free,
            bavail: free,
            files,
            ffree,
            bsize: BLOCK_SIZE as u32,
            namelen: bfs::NAME_MAX as u32,
            frsize: BLOCK_SIZE as u32,
        }
    }

    /// Commit everything (sync(2), syncfs, fsync of a directory).
    pub fn sync(&mut self) -> Result<()> {
        if self.read_only || !self.dirty {
            return Ok(());
        }
        self.checkpoint(false)
    }

    /// Commit changes older than the checkpoint interval, so an idle volume is durable soon.
    pub fn background(&mut self) -> Result<()> {
        if self.read_only || self.failed || !self.dirty {
            return Ok(());
        }
        if now().sec.saturating_sub(self.last_checkpoint) >= CHECKPOINT_INTERVAL_SECS {
            self.checkpoint(false)?;
        }
        Ok(())
    }

    /// End of the mount: nothing references anything any more.
    pub fn unmount(&mut self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.lookups.clear();
        self.opens.clear();
        let orphans: Vec<u32> = self.orphans.iter().copied().collect();
        for ino in orphans {
            self.free_inode(ino)?;
        }
        self.checkpoint(true)
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

/// logfs mounted on a block device.
pub struct LogFs<D: BlockDevice> {
    vol: Mutex<Volume<D>>,
}

impl<D: BlockDevice> LogFs<D> {
    /// Mount, with a descriptive error on failure.
    pub fn open(dev: D, opts: &MountOptions) -> Result<LogFs<D>> {
        Ok(LogFs {
            vol: Mutex::try_new(Volume::load(dev, opts)?)?,
        })
    }

    /// Run `f` on the volume (tests, fsck and tools).
    pub fn with_volume<R>(&self, f: impl FnOnce(&mut Volume<D>) -> R) -> R {
        f(&mut self.vol.lock())
    }

    /// Unmount and give the device back.
    pub fn into_device(self) -> Result<D> {
        let mut vol = self.vol.into_inner();
        vol.unmount()?;
        Ok(vol.dev)
    }

    fn run<T>(&self, f: impl FnOnce(&mut Volume<D>) -> Result<T>) -> bfs_result::Result<T> {
        let mut vol = self.vol.lock();
        let r = f(&mut vol);
        r.map_err(|e| report(e, &mut vol.last_corrupt_log))
    }
}

mod bfs_result {
    pub type Result<T> = core::result::Result<T, bento_runtime::Errno>;
}

/// Seconds between two log lines about corruption: a damaged directory that every `ls` walks
/// must not flood the log.
const CORRUPT_LOG_INTERVAL_SECS: i64 = 5;

/// Errors about the volume itself are worth a log line; plain errnos are the caller's business.
/// Corruption is logged at most once per interval, naming the block; the runtime gives no
/// device name to log (TODO once it does).
fn report(e: Error, last_corrupt_log: &mut Option<i64>) -> Errno {
    match e {
        Error::Errno(_) => {}
        Error::Corrupt { .. } => {
            let t = now().sec;
            if last_corrupt_log.is_none_or(|l| t.saturating_sub(l) >= CORRUPT_LOG_INTERVAL_SECS) {
                *last_corrupt_log = Some(t);
                bento_runtime::error!("logfs: {e} (EUCLEAN; run fsck.logfs)");
            }
        }
        _ => bento_runtime::error!("logfs: {e}"),
    }
    e.errno()
}

impl<D: BlockDevice> Mount<D> for LogFs<D> {
    const NAME: &'static str = "logfs";
    const VERSION: &'static str = VERSION;

    fn mount(dev: D, options: &MountOptions) -> bfs_result::Result<Self> {
        LogFs::open(dev, options).map_err(|e| {
            bento_runtime::error!("logfs: cannot mount: {e}");
            e.errno()
        })
    }

    fn resume(dev: D, options: &MountOptions, state: &[u8]) -> bfs_result::Result<Self> {
        let vol = Volume::resume(dev, options, state).map_err(|e| {
            bento_runtime::error!("logfs: cannot resume the mount: {e}");
            e.errno()
        })?;
        bento_runtime::info!(
            "logfs {VERSION}: resumed a mount (upgrade {})",
            vol.upgrades
        );
        Ok(LogFs {
            vol: Mutex::try_new(vol)?,
        })
    }
}

impl<D: BlockDevice> FileSystem for LogFs<D> {
    fn destroy(&self) -> bfs_result::Result<()> {
        self.run(|v| v.unmount())
    }

    fn sync_fs(&self) -> bfs_result::Result<()> {
        self.run(|v| v.sync())
    }

    fn export_state(&self) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| v.export_state())
    }

    fn background(&self) -> bfs_result::Result<()> {
        self.run(|v| v.background())
    }

    fn lookup(&self, _req: &Request, parent: Ino, name: &[u8]) -> bfs_result::Result<Entry> {
        self.run(|v| v.lookup(nid_of(parent)?, name))
    }

    fn reserve(&self, ino: Ino, offset: u64, len: u64) -> bfs_result::Result<()> {
        self.run(|v| v.reserve_delayed(nid_of(ino)?, offset, len))
    }

    fn forget(&self, ino: Ino, nlookup: u64) {
        if let Ok(nid) = nid_of(ino) {
            let _ = self.run(|v| v.forget(nid, nlookup));
        }
    }

    fn getattr(&self, _req: &Request, ino: Ino) -> bfs_result::Result<FileAttr> {
        self.run(|v| v.attr(nid_of(ino)?))
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: Ino,
        attr: &SetAttr,
        _fh: Option<u64>,
    ) -> bfs_result::Result<FileAttr> {
        self.run(|v| v.setattr(nid_of(ino)?, attr))
    }

    fn readlink(&self, _req: &Request, ino: Ino) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| v.readlink(nid_of(ino)?))
    }

    fn mknod(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.mknod(req, nid_of(parent)?, name, mode, rdev))
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.mkdir(req, nid_of(parent)?, name, mode))
    }

    fn unlink(&self, _req: &Request, parent: Ino, name: &[u8]) -> bfs_result::Result<()> {
        self.run(|v| v.unlink(nid_of(parent)?, name))
    }

    fn rmdir(&self, _req: &Request, parent: Ino, name: &[u8]) -> bfs_result::Result<()> {
        self.run(|v| v.rmdir(nid_of(parent)?, name))
    }

    fn symlink(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        target: &[u8],
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.symlink(req, nid_of(parent)?, name, target))
    }

    fn rename(
        &self,
        _req: &Request,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.rename(nid_of(parent)?, name, nid_of(newparent)?, newname, flags))
    }

    fn link(
        &self,
        _req: &Request,
        ino: Ino,
        newparent: Ino,
        newname: &[u8],
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.link(nid_of(ino)?, nid_of(newparent)?, newname))
    }

    fn open(&self, _req: &Request, ino: Ino, _flags: i32) -> bfs_result::Result<Opened> {
        self.run(|v| v.open(nid_of(ino)?))?;
        Ok(Opened::default())
    }

    fn read(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> bfs_result::Result<usize> {
        self.run(|v| v.read(nid_of(ino)?, offset, buf))
    }

    fn write(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        data: &[u8],
    ) -> bfs_result::Result<usize> {
        self.run(|v| v.write(nid_of(ino)?, offset, data))
    }

    fn release(&self, _req: &Request, ino: Ino, _fh: u64, _flags: i32) -> bfs_result::Result<()> {
        self.run(|v| v.release(nid_of(ino)?))
    }

    fn fsync(&self, _req: &Request, ino: Ino, _fh: u64, _datasync: bool) -> bfs_result::Result<()> {
        self.run(|v| v.fsync_file(nid_of(ino)?))
    }

    fn opendir(&self, _req: &Request, ino: Ino, _flags: i32) -> bfs_result::Result<Opened> {
        self.run(|v| v.dir_of(nid_of(ino)?))?;
        Ok(Opened::default())
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        out: &mut dyn DirFiller,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.readdir(nid_of(ino)?, offset, out))
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: Ino,
        _fh: u64,
        _datasync: bool,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.sync())
    }

    fn statfs(&self, _req: &Request, _ino: Ino) -> bfs_result::Result<Statfs> {
        Ok(self.vol.lock().statfs())
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.setxattr(nid_of(ino)?, name, value, flags))
    }

    fn getxattr(&self, _req: &Request, ino: Ino, name: &[u8]) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| v.getxattr(nid_of(ino)?, name))
    }

    fn listxattr(&self, _req: &Request, ino: Ino) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| v.listxattr(nid_of(ino)?))
    }

    fn removexattr(&self, _req: &Request, ino: Ino, name: &[u8]) -> bfs_result::Result<()> {
        self.run(|v| v.removexattr(nid_of(ino)?, name))
    }

    fn create(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        _flags: i32,
    ) -> bfs_result::Result<(Entry, Opened)> {
        let e = self.run(|v| v.create(req, nid_of(parent)?, name, mode))?;
        Ok((e, Opened::default()))
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.fallocate(nid_of(ino)?, offset, length, mode))
    }
}
