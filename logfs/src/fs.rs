//! The mounted file system: [`LogFs`] over a [`Volume`], the in-memory state of one mounted
//! device (its tables, logs and caches). Here: the types, mount options, loading a volume from
//! its last checkpoint, access to its blocks and nodes, and the volume-wide operations (statfs,
//! sync, unmount). Each mechanism adds its own `impl Volume` in its module; `vfs` adapts the
//! whole to Bento's `FileSystem`.
//!
//! One sleeping lock guards the volume: every operation runs under it, including its I/O. That
//! is simple and correct; finer locking comes when measurements ask for it.

use alloc::vec::Vec;

use hashbrown::{HashMap, HashSet};

use bento_runtime::Errno;
use bento_runtime::boxed::TryBox;
use bento_runtime::fs::{self as bfs, FileType, Ino, MountOptions, Statfs, Timespec};
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
use crate::keyset::KeySet;
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
/// Since the last checkpoint, a collapse or insert moved blocks of the file between slots of
/// its node tree, which roll-forward could apply only in part (`shift.rs`).
pub(crate) const SINCE_CP_SHIFTED: u8 = 32;

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
    /// Refuses an unknown option with a log line naming it.
    pub fn parse(s: &str) -> core::result::Result<Options, Error> {
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
                _ => {
                    bento_runtime::error!("logfs: unknown mount option \"{opt}\"");
                    return Err(Error::Errno(Errno::EINVAL));
                }
            }
        }
        Ok(o)
    }
}

/// The state of a mounted volume.
pub struct Volume<D> {
    pub(crate) dev: D,
    /// Boxed, as the checkpoint read at mount: the mount path's frames stay small.
    pub(crate) sb: TryBox<Superblock>,
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
    pub(crate) orphans: HashSet<u32>,
    /// File blocks that are holes on disk but dirty in a front end's page cache, with their
    /// space promised (delayed allocation): (inode, file block).
    pub(crate) delayed: KeySet<u64>,
    /// Index nodes those promised blocks will need: (inode, node offset in its tree).
    pub(crate) delayed_nodes: KeySet<u32>,
    /// What happened to inodes since the last checkpoint that roll-forward cannot replay
    /// (`SINCE_CP_*`); decides whether an fsync may skip the checkpoint.
    pub(crate) since_cp: HashMap<u32, u8>,
    /// `since_cp` missed a change for want of memory after checkpoint `seq` (the value): until
    /// the next checkpoint, no fsync may skip one.
    pub(crate) since_cp_lost: Option<u64>,
    /// When a checkpoint postponed for want of memory was last logged (rate limit).
    pub(crate) last_oom_log: Option<i64>,
    pub(crate) lookups: HashMap<u32, u64>,
    pub(crate) opens: HashMap<u32, u32>,
    /// Something changed since the last checkpoint.
    pub(crate) dirty: bool,
    /// Inside a checkpoint or cleaning: do not start another.
    pub(crate) busy: bool,
    /// A checkpoint or an fsync failed to write: the volume is read-only until remounted, and
    /// writes nothing more (the device keeps the last checkpoint and the fsyncs before).
    pub(crate) failed: bool,
    /// Shut down (`FS_IOC_GOINGDOWN`, [`shutdown`](Volume::shutdown)): writes nothing more, not
    /// even at unmount, and the front-end calls answer EIO (`LogFs::run`). In memory only.
    pub(crate) shut_down: bool,
    /// When the last checkpoint was committed (seconds).
    pub(crate) last_checkpoint: i64,
    pub(crate) stats: Stats,
    /// Live upgrades this mount went through.
    pub(crate) upgrades: u32,
    /// When corruption was last logged (rate limit of [`report`](crate::error::report)).
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

impl<D: BlockDevice> Volume<D> {
    /// The volume as its last checkpoint left it, and that checkpoint's orphan list.
    pub(crate) fn load_checkpoint(
        dev: D,
        opts: &MountOptions,
    ) -> Result<(TryBox<Volume<D>>, Vec<u32>)> {
        let options = Options::parse(&opts.fs_options)?;
        let sb = TryBox::new(Superblock::read(&dev)?)?;
        let mut read_only = opts.read_only;
        if sb.access()? == Access::ReadOnly && !read_only {
            bento_runtime::warn!(
                "logfs: volume has features this version cannot write; mounting read-only"
            );
            read_only = true;
        }
        let layout = sb.layout;
        let seed = sb.csum_seed();
        let mut cp = TryBox::new(Checkpoint::read_latest(&dev, &sb)?)?;
        let slack = u64::from(crate::format::layout::SEG_BLOCKS);
        if cp.valid_blocks > layout.user_capacity().saturating_add(slack) {
            return Err(Error::corrupt("checkpoint (block count)", 0));
        }
        let mut sut = SegmentTable::load(&dev, &layout, seed, &cp.sut_bitmap)?;
        let nat = Nat::new(&layout, &cp.nat_bitmap, cp.nat_written, cp.next_free_nid)?;
        let mut logs = Vec::new();
        let heads = core::mem::take(&mut cp.logs);
        let summaries = core::mem::take(&mut cp.summaries);
        let orphans = core::mem::take(&mut cp.orphans);
        for (i, (head, summary)) in heads.iter().zip(summaries).enumerate() {
            let kind = if i == NODE_LOG { LOG_NODE } else { LOG_DATA };
            if summary.log != kind && summary.log != 0 {
                return Err(Error::corrupt("checkpoint (log summary type)", 0));
            }
            sut.set_active(head.segno, kind)?;
            crate::mem::push(
                &mut logs,
                Log::new(kind, head.segno, head.next_off, summary)?,
            )?;
        }
        if logs.len() != 2 {
            return Err(Error::Incompatible("unsupported number of logs"));
        }
        // On the heap at once: the kernel's stack is 16 KiB, and every move of the volume would
        // otherwise be another copy of it in some frame of the mount path.
        let mut vol = TryBox::new_with(|| Volume {
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
            orphans: HashSet::new(),
            delayed: KeySet::new(),
            delayed_nodes: KeySet::new(),
            since_cp: HashMap::new(),
            since_cp_lost: None,
            last_oom_log: None,
            lookups: HashMap::new(),
            opens: HashMap::new(),
            dirty: false,
            busy: false,
            failed: false,
            shut_down: false,
            last_checkpoint: now().sec,
            stats: Stats::default(),
            upgrades: 0,
            last_corrupt_log: None,
        })?;
        let root = vol.inode(bfs::ROOT_INO as u32)?;
        if FileType::from_mode(root.inode().mode.get()) != Some(FileType::Directory) {
            return Err(Error::corrupt("root inode (not a directory)", 0));
        }
        Ok((vol, orphans))
    }

    /// Bring a volume up from its last checkpoint, replaying what fsync made durable since and
    /// freeing orphans.
    pub fn load(dev: D, opts: &MountOptions) -> Result<TryBox<Volume<D>>> {
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
        self.nodes.insert_clean(node)?;
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

    // ---- the volume as a whole ---------------------------------------------------------------

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Errno::EROFS.into());
        }
        if self.failed {
            // The device failed a write: read-only until remounted (the call that met the
            // error got EIO).
            return Err(Errno::EROFS.into());
        }
        Ok(())
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

    /// End of the mount: nothing references anything any more. A shut-down volume writes
    /// nothing: the next mount recovers what was durable.
    pub fn unmount(&mut self) -> Result<()> {
        if self.read_only || self.shut_down {
            return Ok(());
        }
        self.lookups.clear();
        self.opens.clear();
        let orphans = crate::mem::collect(self.orphans.iter().copied())?;
        for ino in orphans {
            self.free_inode(ino)?;
        }
        self.checkpoint(true)
    }

    /// Clean entries of the node, directory and NAT caches: what memory pressure could take.
    pub fn reclaimable(&self) -> u64 {
        let (_, nat_clean) = self.nat.cached_blocks();
        [self.nodes.clean_count(), self.dirs.clean_count(), nat_clean]
            .iter()
            .fold(0u64, |a, &n| a.saturating_add(n as u64))
    }

    /// Give back up to `n` clean cache entries, least recently used first, without I/O and
    /// without allocating (memory reclaim calls it); returns how many went.
    pub fn shrink_caches(&mut self, n: u64) -> u64 {
        let mut left = usize::try_from(n).unwrap_or(usize::MAX);
        left = left.saturating_sub(self.nodes.shrink(left, false));
        left = left.saturating_sub(self.dirs.shrink(left, false));
        left = left.saturating_sub(self.nat.shrink(left, false));
        n.saturating_sub(left as u64)
    }

    /// Entries in the node, directory and NAT caches (`trusted.logfs.stats`).
    pub fn cached(&self) -> (usize, usize, usize) {
        (
            self.nodes.len(),
            self.dirs.len(),
            self.nat.cached_blocks().0,
        )
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

/// logfs mounted on a block device.
pub struct LogFs<D: BlockDevice> {
    pub(crate) vol: Mutex<TryBox<Volume<D>>>,
    /// Lookup references the front end gave back (forget) while the volume was busy: applied
    /// by the next call that holds the volume, so forget never waits behind a call doing I/O.
    pub(crate) forgets: spin::Mutex<Vec<(u32, u64)>>,
}

impl<D: BlockDevice> LogFs<D> {
    /// Mount, with a descriptive error on failure.
    pub fn open(dev: D, opts: &MountOptions) -> Result<LogFs<D>> {
        Ok(LogFs::new(Mutex::try_new(Volume::load(dev, opts)?)?))
    }

    pub(crate) fn new(vol: Mutex<TryBox<Volume<D>>>) -> LogFs<D> {
        LogFs {
            vol,
            forgets: spin::Mutex::new(Vec::new()),
        }
    }

    /// Run `f` on the volume (tests, fsck and tools).
    pub fn with_volume<R>(&self, f: impl FnOnce(&mut Volume<D>) -> R) -> R {
        let mut vol = self.vol.lock();
        self.apply_forgets(&mut vol);
        f(&mut vol)
    }

    /// Apply the references given back while the volume was busy (see `forgets`); freeing an
    /// unlinked inode that lost its last one may do I/O, which is why forget left it here.
    pub(crate) fn apply_forgets(&self, vol: &mut Volume<D>) {
        let pending = core::mem::take(&mut *self.forgets.lock());
        for (nid, n) in pending {
            if let Err(e) = vol.forget(nid, n) {
                bento_runtime::warn!("logfs: freeing inode {nid} after its last use: {e}");
            }
        }
    }

    /// Queue a forget for the next call; false without memory for it. Nothing is allocated
    /// under the spin lock: an allocation may sleep, and its reclaim may evict another inode of
    /// this mount, whose forget comes here again (a spinning self-deadlock, seen in the VM).
    pub(crate) fn queue_forget(&self, nid: u32, nlookup: u64) -> bool {
        loop {
            let mut q = self.forgets.lock();
            if q.len() < q.capacity() {
                #[allow(clippy::disallowed_methods)] // Within the capacity: no allocation.
                q.push((nid, nlookup));
                return true;
            }
            let want = q.capacity().saturating_mul(2).max(16);
            drop(q);
            let mut bigger = Vec::new();
            if bigger.try_reserve_exact(want).is_err() {
                return false;
            }
            let mut q = self.forgets.lock();
            // Others may have grown it meanwhile (within its old capacity, below `want`).
            if q.capacity() < want && q.len() <= want {
                #[allow(clippy::disallowed_methods)] // Within `bigger`'s capacity.
                bigger.extend_from_slice(&q);
                core::mem::swap(&mut *q, &mut bigger);
            }
            drop(q);
            // `bigger` (now the old buffer, or unused) is freed here, outside the lock.
        }
    }

    /// Unmount and give the device back.
    pub fn into_device(self) -> Result<D> {
        let forgets = core::mem::take(&mut *self.forgets.lock());
        let mut vol = self.vol.into_inner();
        if !vol.shut_down {
            for (nid, n) in forgets {
                vol.forget(nid, n)?;
            }
        }
        vol.unmount()?;
        Ok(vol.into_inner().dev)
    }
}
