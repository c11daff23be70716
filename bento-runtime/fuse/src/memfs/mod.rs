//! memfs: a small file system in memory, for testing front ends (the FUSE adapter, the
//! `logfs-fuse` binary) independently of any real file system.
//!
//! Everything lives in one mutex-protected table. It implements every
//! [`FileSystem`](bento_api::fs::FileSystem) operation with Linux semantics (rename flags, xattr
//! flags, hard links, unlinked-but-open files, readdir cookies that stay valid while the
//! directory changes) but checks no permissions: front ends mount it with the kernel checking
//! them (`default_permissions`).
//!
//! Mounted on a block device ([`Mount`]), memfs keeps nothing there but a label in block 0,
//! rewritten by `destroy` with a count of clean unmounts, so tests can see that `destroy` ran
//! and finished. A device whose block 0 is neither zeros nor a memfs label is refused.

mod dir;
mod node;
mod ops;

use std::boxed::Box;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bento_api::errno::{Errno, Result};
use bento_api::fs::{FileType, Mount, MountOptions, NAME_MAX, ROOT_INO, Request, Statfs};
use bento_api::ks::block::{BLOCK_SIZE, BlockDevice};
use bento_api::ks::sync::Mutex;

use dir::Dir;
use node::{Data, State};

/// The label memfs keeps in block 0 of its device.
pub const MAGIC: &[u8; 8] = b"MEMFS\0\0\x01";

const BLKSIZE: u32 = 4096;
/// The largest file memfs accepts.
const MAX_FILE_SIZE: u64 = 1 << 32;

/// Counters a test can watch while the file system is owned by a front end.
#[derive(Debug, Default)]
pub struct MemFsStats {
    /// Calls of `destroy`.
    pub destroys: AtomicU64,
    /// The largest single write request seen.
    pub max_write: AtomicU64,
    /// Write requests.
    pub writes: AtomicU64,
    /// Lookup references dropped by `forget`.
    pub forgotten: AtomicU64,
}

/// The in-memory file system.
pub struct MemFs {
    state: Mutex<State>,
    stats: Arc<MemFsStats>,
    statfs: Statfs,
    read_only: bool,
    device: Option<Box<dyn BlockDevice>>,
    /// Clean unmounts recorded on the device before this mount.
    generation: u64,
}

impl Default for MemFs {
    fn default() -> Self {
        MemFs::new()
    }
}

impl MemFs {
    /// An empty file system with a root directory owned by root, mode 0755.
    pub fn new() -> MemFs {
        let mut state = State {
            inodes: HashMap::new(),
            next_ino: ROOT_INO,
            next_fh: 1,
        };
        let root = state.new_inode(
            &Request::ROOT,
            FileType::Directory,
            0o755,
            0,
            Data::Dir(Dir::new(ROOT_INO)),
        );
        debug_assert_eq!(root, ROOT_INO);
        MemFs {
            state: Mutex::new(state),
            stats: Arc::new(MemFsStats::default()),
            statfs: Statfs {
                blocks: 1 << 20,
                bfree: 1 << 19,
                bavail: 1 << 18,
                files: 1 << 16,
                ffree: 1 << 15,
                bsize: BLKSIZE,
                namelen: NAME_MAX as u32,
                frsize: BLKSIZE,
            },
            read_only: false,
            device: None,
            generation: 0,
        }
    }

    /// Report these numbers from `statfs`.
    pub fn with_statfs(mut self, statfs: Statfs) -> MemFs {
        self.statfs = statfs;
        self
    }

    /// Counters shared with whoever owns the file system.
    pub fn stats(&self) -> Arc<MemFsStats> {
        self.stats.clone()
    }

    /// Clean unmounts recorded on the device before this mount.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Read a device's memfs label: `Some(clean unmounts)`, `Some(0)` for a blank device, or
    /// `None` for something else.
    pub fn read_label(block0: &[u8]) -> Option<u64> {
        if block0.iter().all(|&b| b == 0) {
            Some(0)
        } else if block0.len() >= 16 && &block0[..8] == MAGIC {
            Some(u64::from_le_bytes(block0[8..16].try_into().ok()?))
        } else {
            None
        }
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

impl<D: BlockDevice + 'static> Mount<D> for MemFs {
    const NAME: &'static str = "memfs";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn mount(dev: D, options: &MountOptions) -> Result<Self> {
        if dev.block_count() < 1 {
            bento_api::error!("memfs: the device is empty");
            return Err(Errno::EINVAL);
        }
        let mut block = std::vec![0u8; BLOCK_SIZE];
        dev.read_blocks(0, &mut block)?;
        let Some(generation) = MemFs::read_label(&block) else {
            bento_api::error!("memfs: not a memfs device (block 0 holds something else)");
            return Err(Errno::EINVAL);
        };
        if let Some(option) = options.fs_options.split(',').find(|o| !o.is_empty()) {
            bento_api::error!("memfs: unknown option {option:?}");
            return Err(Errno::EINVAL);
        }
        let mut fs = MemFs::new();
        fs.read_only = options.read_only;
        fs.generation = generation;
        fs.device = Some(Box::new(dev));
        Ok(fs)
    }
}
