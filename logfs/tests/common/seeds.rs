//! Populated volumes built in memory, deterministically, through mkfs and the Bento trait: the
//! images the mount fuzzer (logfs/fuzz) starts from, and that its regression tests
//! (logfs/tests/fuzz_regressions.rs) rebuild. Shared by `#[path]`, as image.rs is.
//!
//! Each seed is a sparse image (only the blocks written are stored), so a fuzz run copies
//! nothing: it mounts a copy-on-write `CrashDevice` over it.
#![allow(dead_code)]

use std::sync::Arc;

use bento_runtime::fs::{
    FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FileSystem, Ino, Mount, MountOptions, ROOT_INO,
    Request, S_IFCHR, S_IFIFO, Timespec,
};
use bento_user::{CrashDevice, SparseImage};
use logfs::LogFs;
use logfs::mkfs::{MkfsOptions, format};

/// Blocks of every seed volume: 64 MiB, near the smallest logfs accepts.
pub const SEED_BLOCKS: u64 = 64 * 256;

const R: Request = Request::ROOT;

/// A seed volume and what it holds.
pub struct Seed {
    pub name: &'static str,
    pub image: Arc<SparseImage>,
    /// Inode numbers of its objects (the root first).
    pub inos: Vec<Ino>,
    /// Names used in it.
    pub names: Vec<Vec<u8>>,
}

pub type SeedFs = LogFs<Arc<CrashDevice>>;

fn mkfs_opts() -> MkfsOptions {
    MkfsOptions {
        label: b"fuzz".to_vec(),
        uuid: [7; 16],
        hash_seed: [9; 16],
        time: Timespec::new(1_700_000_000, 0),
        discard: false,
        version: b"test".to_vec(),
        root_uid: 0,
        root_gid: 0,
    }
}

/// A fresh device over `base`: reads fall through to it, writes stay on the device.
pub fn device(base: &Arc<SparseImage>) -> Arc<CrashDevice> {
    Arc::new(CrashDevice::new(base.clone()))
}

pub fn mount(dev: &Arc<CrashDevice>) -> SeedFs {
    LogFs::mount(
        dev.clone(),
        &MountOptions {
            read_only: false,
            silent: false,
            fs_options: "nodiscard".into(),
        },
    )
    .expect("mount")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

struct Builder {
    dev: Arc<CrashDevice>,
    fs: SeedFs,
    inos: Vec<Ino>,
    names: Vec<Vec<u8>>,
}

impl Builder {
    fn note(&mut self, ino: Ino, name: &[u8]) -> Ino {
        if !self.inos.contains(&ino) {
            self.inos.push(ino);
        }
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_vec());
        }
        ino
    }

    fn file(&mut self, dir: Ino, name: &[u8], data: &[u8]) -> Ino {
        let (e, o) = self.fs.create(&R, dir, name, 0o644, 0).expect("create");
        if !data.is_empty() {
            self.fs.write(&R, e.attr.ino, o.fh, 0, data).expect("write");
        }
        self.fs.release(&R, e.attr.ino, o.fh, 0).expect("release");
        self.note(e.attr.ino, name)
    }

    fn dir(&mut self, dir: Ino, name: &[u8]) -> Ino {
        let e = self.fs.mkdir(&R, dir, name, 0o755).expect("mkdir");
        self.note(e.attr.ino, name)
    }
}

fn formatted() -> Arc<CrashDevice> {
    let dev = device(&Arc::new(SparseImage::new(SEED_BLOCKS)));
    format(&*dev, &mkfs_opts()).expect("mkfs");
    dev
}

/// Everything a volume can hold: inline files (one at the limit), a file through the direct,
/// indirect and double-indirect trees, preallocated blocks, a directory of several hash levels
/// and blocks, hard links, symlinks (inline and in a block), special files, xattrs (small
/// ones and an xattr node filled near its limit).
fn populate(b: &mut Builder) {
    let root = ROOT_INO;
    b.file(root, b"tiny", b"hello");
    b.file(
        root,
        b"inline-max",
        &pattern(logfs::format::node::INLINE_MAX, 1),
    );
    let big = b.file(root, b"big", &pattern(3 * 4096 + 100, 2));
    let bs = 4096u64;
    // Blocks under the inode, a direct node, an indirect node and the double-indirect node.
    for blk in [913u64, 913 + 2028 + 5, 913 + 2028 + 2 * 1014 * 1014 + 7] {
        b.fs.write(&R, big, 0, blk * bs + 1, &pattern(200, blk as u8))
            .expect("write");
    }
    let pre = b.file(root, b"prealloc", b"");
    b.fs.fallocate(&R, pre, 0, 0, 8 * bs, 0).expect("fallocate");
    b.fs.fallocate(&R, pre, 0, 8 * bs, 4 * bs, FALLOC_FL_KEEP_SIZE)
        .expect("fallocate");
    b.fs.fallocate(
        &R,
        big,
        0,
        bs,
        bs,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
    )
    .expect("punch");

    // A directory of several levels: more names than level 0's two blocks hold.
    let d = b.dir(root, b"dir");
    for i in 0..600u32 {
        let name = format!("entry-{i:04}-{}", "x".repeat((i % 24) as usize));
        let (e, o) =
            b.fs.create(&R, d, name.as_bytes(), 0o644, 0)
                .expect("create");
        b.fs.release(&R, e.attr.ino, o.fh, 0).expect("release");
        if i % 100 == 0 {
            b.note(e.attr.ino, name.as_bytes());
        }
    }
    for i in (0..600u32).step_by(7) {
        let name = format!("entry-{i:04}-{}", "x".repeat((i % 24) as usize));
        b.fs.unlink(&R, d, name.as_bytes()).expect("unlink");
    }
    let sub = b.dir(d, b"sub");
    b.file(sub, &[b'n'; 255], b"a long name");

    // Hard links.
    let linked = b.file(sub, b"linked", &pattern(5000, 3));
    b.fs.link(&R, linked, root, b"link-a").expect("link");
    b.note(linked, b"link-a");

    // Symlinks: inline and in a block.
    let s = b.fs.symlink(&R, root, b"sym", b"dir/sub").expect("symlink");
    b.note(s.attr.ino, b"sym");
    let long = "t/".repeat(2000);
    let s =
        b.fs.symlink(&R, sub, b"longsym", long.as_bytes())
            .expect("symlink");
    b.note(s.attr.ino, b"longsym");

    // Special files.
    let e = b.fs.mknod(&R, root, b"fifo", S_IFIFO | 0o644, 0).unwrap();
    b.note(e.attr.ino, b"fifo");
    let e =
        b.fs.mknod(&R, sub, b"chr", S_IFCHR | 0o600, 0x0501)
            .unwrap();
    b.note(e.attr.ino, b"chr");

    // Xattrs: a few small ones, and a node filled near its limit.
    b.fs.setxattr(&R, big, b"user.one", b"1", 0).unwrap();
    b.fs.setxattr(&R, big, b"trusted.two", b"2", 0).unwrap();
    b.fs.setxattr(&R, d, b"security.dir", b"label", 0).unwrap();
    b.fs.setxattr(&R, linked, b"user.big", &pattern(3900, 4), 0)
        .unwrap();
    for n in [
        &b"user.one"[..],
        b"trusted.two",
        b"security.dir",
        b"user.big",
    ] {
        b.note(ROOT_INO, n);
    }
}

fn builder() -> Builder {
    let dev = formatted();
    Builder {
        fs: mount(&dev),
        dev,
        inos: vec![ROOT_INO],
        names: Vec::new(),
    }
}

fn freeze(name: &'static str, b: Builder, clean: bool) -> Seed {
    let Builder {
        dev,
        fs,
        inos,
        names,
    } = b;
    if clean {
        fs.destroy().expect("unmount");
    }
    // Unclean: a crash, the device as it is, the mount dropped without unmounting.
    drop(fs);
    Seed {
        name,
        image: Arc::new(dev.freeze()),
        inos,
        names,
    }
}

/// A freshly formatted volume.
pub fn empty() -> Seed {
    freeze("empty", builder(), true)
}

/// The populated volume, cleanly unmounted.
pub fn populated() -> Seed {
    let mut b = builder();
    populate(&mut b);
    freeze("populated", b, true)
}

/// The populated volume left by a crash: an orphan (unlinked while still looked up) in the
/// last checkpoint, and files fsync'd after it (roll-forward records for the next mount).
pub fn crashed() -> Seed {
    let mut b = builder();
    populate(&mut b);
    let orphan = b.file(ROOT_INO, b"orphan", &pattern(9000, 5));
    b.fs.lookup(&R, ROOT_INO, b"orphan").expect("lookup");
    b.fs.unlink(&R, ROOT_INO, b"orphan").expect("unlink");
    let _ = orphan;
    b.fs.sync_fs().expect("sync");
    let late = b.file(ROOT_INO, b"late", &pattern(6000, 6));
    b.fs.fsync(&R, late, 0, false).expect("fsync");
    let tiny = b.fs.lookup(&R, ROOT_INO, b"tiny").unwrap().attr.ino;
    b.fs.write(&R, tiny, 0, 2, b"LLO, world").unwrap();
    b.fs.fsync(&R, tiny, 0, true).expect("fdatasync");
    freeze("crashed", b, false)
}

/// Every seed, in the order the fuzzer numbers them.
pub fn all() -> Vec<Seed> {
    vec![empty(), populated(), crashed()]
}
