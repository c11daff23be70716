//! Helpers shared by the fsck tests: memory volumes built through the Bento `FileSystem` trait,
//! a deterministic random generator, and checks that print what they find.
#![allow(dead_code)]

use std::sync::Arc;

use bento_api::fs::{
    FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FileSystem, Ino, Mount, MountOptions, ROOT_INO,
    RenameFlags, Request, S_IFCHR, S_IFIFO, SetAttr, Timespec,
};
use bento_user::MemDevice;
use fsck::{CheckOptions, Report};
use logfs::LogFs;
use logfs::mkfs::{MkfsOptions, format};

pub type Fs = LogFs<Arc<MemDevice>>;
pub const R: Request = Request::ROOT;

pub fn mkfs_opts() -> MkfsOptions {
    MkfsOptions {
        label: b"fsck-test".to_vec(),
        uuid: [7; 16],
        hash_seed: [9; 16],
        time: Timespec::new(1_700_000_000, 0),
        discard: false,
        version: b"test".to_vec(),
        root_uid: 0,
        root_gid: 0,
    }
}

/// A freshly formatted memory device of `mib` MiB.
pub fn new_device(mib: u64) -> Arc<MemDevice> {
    let dev = Arc::new(MemDevice::new(mib * 256));
    format(&*dev, &mkfs_opts()).expect("mkfs");
    dev
}

pub fn mount(dev: &Arc<MemDevice>) -> Fs {
    LogFs::mount(dev.clone(), &MountOptions::default()).expect("mount")
}

pub fn unmount(fs: Fs) {
    fs.destroy().expect("destroy");
}

pub fn check(dev: &MemDevice) -> Report {
    fsck::check(
        dev,
        &CheckOptions {
            verbose: true,
            ..CheckOptions::default()
        },
    )
}

/// Print a report's findings (shown when a test fails).
pub fn dump(r: &Report) {
    for f in &r.findings {
        println!("{f}");
    }
    println!(
        "errors {} warnings {} operational {:?} completed {} stats {:?}",
        r.errors, r.warnings, r.operational, r.completed, r.stats
    );
}

/// Assert that a check finds nothing wrong (warnings included).
#[track_caller]
pub fn assert_clean(dev: &MemDevice, what: &str) -> Report {
    let r = check(dev);
    if !r.is_clean() || r.warnings > 0 {
        dump(&r);
        panic!("fsck found problems {what}");
    }
    r
}

/// xorshift64*: deterministic, dependency-free randomness for tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn create<F: FileSystem + ?Sized>(fs: &F, dir: Ino, name: &[u8], data: &[u8]) -> Ino {
    let (e, o) = fs.create(&R, dir, name, 0o644, 0).expect("create");
    let ino = e.attr.ino;
    if !data.is_empty() {
        assert_eq!(fs.write(&R, ino, o.fh, 0, data).expect("write"), data.len());
    }
    fs.release(&R, ino, o.fh, 0).expect("release");
    ino
}

/// Fill a volume with every kind of object and history: directories several hash levels deep,
/// inline, big, sparse and preallocated files, hard links, symlinks (inline and not), special
/// files, xattrs (added, replaced, removed), deletes, renames (plain, over a file, across
/// directories, exchange), truncates and hole punches.
pub fn populate<F: FileSystem + ?Sized>(fs: &F) {
    let d1 = fs.mkdir(&R, ROOT_INO, b"dir1", 0o755).unwrap().attr.ino;
    let sub = fs.mkdir(&R, d1, b"sub", 0o755).unwrap().attr.ino;
    let d3 = fs.mkdir(&R, ROOT_INO, b"dir3", 0o700).unwrap().attr.ino;
    let deep = fs.mkdir(&R, sub, b"deep", 0o755).unwrap().attr.ino;

    // A big directory: several hash levels, names of many lengths.
    for i in 0..700u32 {
        let name = format!("entry-{i:04}-{}", "x".repeat((i % 40) as usize));
        let data = pattern((i as usize * 37) % 3000, i as u8);
        create(fs, d1, name.as_bytes(), &data);
    }
    // Delete some of them again (frees directory slots and maybe blocks).
    for i in (0..700u32).step_by(3) {
        let name = format!("entry-{i:04}-{}", "x".repeat((i % 40) as usize));
        fs.unlink(&R, d1, name.as_bytes()).unwrap();
    }
    // A name of the maximum length.
    create(fs, sub, &[b'n'; 255], b"long name");

    // Inline files, one at the limit, one that outgrows it.
    create(fs, ROOT_INO, b"tiny", b"hello");
    create(fs, ROOT_INO, b"inline-max", &pattern(3652, 1));
    let grow = create(fs, ROOT_INO, b"grows", &pattern(3000, 2));
    fs.write(&R, grow, 0, 3000, &pattern(2000, 3)).unwrap();

    // A big file through the direct nodes, then truncated and extended.
    let big = create(fs, deep, b"big", &pattern(3 * 1024 * 1024 + 123, 4));
    for size in [1024 * 1024 + 7, 2 * 1024 * 1024] {
        let sa = SetAttr {
            size: Some(size),
            ..SetAttr::default()
        };
        fs.setattr(&R, big, &sa, None).unwrap();
    }

    // Sparse files reaching the indirect and double-indirect trees.
    let sparse = create(fs, ROOT_INO, b"sparse", b"");
    let bs = 4096u64;
    for blk in [
        0u64,
        500,
        913,
        913 + 1014 + 3,
        913 + 2028 + 5,
        913 + 2028 + 1014 * 1014 + 9,
    ] {
        fs.write(&R, sparse, 0, blk * bs, &pattern(100, blk as u8))
            .unwrap();
    }
    let dbl = 913 + 2028 + 2 * 1014 * 1014 + 1014 * 2 + 1;
    fs.write(&R, sparse, 0, dbl * bs + 17, b"far away").unwrap();
    // Punch a hole in the middle of it, freeing a direct node.
    fs.fallocate(
        &R,
        sparse,
        0,
        913 * bs,
        1014 * bs,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
    )
    .unwrap();

    // Preallocation: inside the size, past it (KEEP_SIZE), and partly written.
    let pre = create(fs, d3, b"prealloc", b"");
    fs.fallocate(&R, pre, 0, 0, 40 * bs, 0).unwrap();
    fs.fallocate(&R, pre, 0, 40 * bs, 20 * bs, FALLOC_FL_KEEP_SIZE)
        .unwrap();
    fs.write(&R, pre, 0, 5 * bs, &pattern(3 * bs as usize, 5))
        .unwrap();

    // Hard links, then the original name goes away.
    let linked = create(fs, d1, b"linked", &pattern(10_000, 6));
    fs.link(&R, linked, d3, b"link-a").unwrap();
    fs.link(&R, linked, ROOT_INO, b"link-b").unwrap();
    fs.unlink(&R, d1, b"linked").unwrap();

    // Symlinks: inline and in a block.
    fs.symlink(&R, ROOT_INO, b"sym", b"dir1/sub").unwrap();
    let long_target = "t/".repeat(2000);
    fs.symlink(&R, d3, b"longsym", long_target.as_bytes())
        .unwrap();

    // Special files.
    fs.mknod(&R, d3, b"fifo", S_IFIFO | 0o644, 0).unwrap();
    fs.mknod(&R, d3, b"chr", S_IFCHR | 0o600, 0x0501).unwrap();

    // Xattrs: several, one replaced, one removed; an inode whose only xattr goes away.
    fs.setxattr(&R, big, b"user.one", b"1", 0).unwrap();
    fs.setxattr(&R, big, b"user.two", &pattern(1000, 7), 0)
        .unwrap();
    fs.setxattr(&R, big, b"trusted.three", b"3", 0).unwrap();
    fs.setxattr(&R, big, b"user.one", b"uno", 0).unwrap();
    fs.removexattr(&R, big, b"user.two").unwrap();
    fs.setxattr(&R, d1, b"security.dir", b"label", 0).unwrap();
    let gone = create(fs, ROOT_INO, b"xattr-gone", b"x");
    fs.setxattr(&R, gone, b"user.tmp", b"tmp", 0).unwrap();
    fs.removexattr(&R, gone, b"user.tmp").unwrap();

    // Renames: within a directory, across directories (a directory changes parent), over an
    // existing file, and an exchange of a file and a directory.
    fs.rename(&R, ROOT_INO, b"tiny", ROOT_INO, b"tiny2", RenameFlags(0))
        .unwrap();
    fs.rename(&R, sub, b"deep", d3, b"deep-moved", RenameFlags(0))
        .unwrap();
    create(fs, d3, b"victim", &pattern(9000, 8));
    fs.rename(&R, ROOT_INO, b"grows", d3, b"victim", RenameFlags(0))
        .unwrap();
    fs.mkdir(&R, ROOT_INO, b"xdir", 0o755).unwrap();
    fs.rename(
        &R,
        ROOT_INO,
        b"xdir",
        ROOT_INO,
        b"tiny2",
        RenameFlags(RenameFlags::EXCHANGE),
    )
    .unwrap();

    // Deletes: a big file, a directory tree.
    let doomed = fs.mkdir(&R, ROOT_INO, b"doomed", 0o755).unwrap().attr.ino;
    create(fs, doomed, b"f", &pattern(200_000, 9));
    fs.unlink(&R, doomed, b"f").unwrap();
    fs.rmdir(&R, ROOT_INO, b"doomed").unwrap();
    let bigdel = create(fs, ROOT_INO, b"bigdel", &pattern(5 * 1024 * 1024, 10));
    let _ = bigdel;
    fs.unlink(&R, ROOT_INO, b"bigdel").unwrap();
}

/// Rewrite random blocks of a large file: segments end up partly live, so freeing space needs
/// the cleaner, not just a checkpoint.
pub fn churn<F: FileSystem + ?Sized>(fs: &F, seed: u64, writes: u32) {
    let ino = create(fs, ROOT_INO, b"churn", b"");
    let bs = 4096u64;
    let blocks = 7000u64;
    let chunk = pattern(1024 * 1024, 11);
    for mb in 0..blocks * bs / (1024 * 1024) {
        fs.write(&R, ino, 0, mb * 1024 * 1024, &chunk).unwrap();
    }
    let mut rng = Rng::new(seed);
    let block = pattern(bs as usize, 12);
    for _ in 0..writes {
        let b = rng.below(blocks);
        fs.write(&R, ino, 0, b * bs, &block).unwrap();
    }
}

/// A populated 64 MiB volume, unmounted.
pub fn populated_device() -> Arc<MemDevice> {
    let dev = new_device(64);
    let fs = mount(&dev);
    populate(&fs);
    unmount(fs);
    dev
}

/// A random mix of operations (fixed seed), errors such as ENOSPC allowed: names in a few
/// directories are created, written, truncated, preallocated, linked, renamed, given xattrs
/// and removed, with occasional syncs. `fill` bytes of data are kept live at most.
pub fn random_ops<F: FileSystem + ?Sized>(fs: &F, seed: u64, ops: u32, fill: u64) {
    let mut rng = Rng::new(seed);
    let mut dirs: Vec<Ino> = vec![ROOT_INO];
    let mut files: Vec<(Ino, Ino, Vec<u8>)> = Vec::new(); // (dir, ino, name)
    let mut live = 0u64;
    let buf = pattern(256 * 1024, 13);
    for i in 0..ops {
        let dir = dirs[rng.below(dirs.len() as u64) as usize];
        let name = format!("n{}", rng.below(400)).into_bytes();
        match rng.below(20) {
            0..=4 => {
                if let Ok((e, o)) = fs.create(&R, dir, &name, 0o644, 0) {
                    let len = [10u64, 3000, 5000, 40_000, 200_000][rng.below(5) as usize];
                    if live + len < fill {
                        let _ = fs.write(&R, e.attr.ino, o.fh, 0, &buf[..len as usize]);
                        live += len;
                    }
                    let _ = fs.release(&R, e.attr.ino, o.fh, 0);
                    files.push((dir, e.attr.ino, name));
                }
            }
            5..=7 if !files.is_empty() => {
                let (_, ino, _) = &files[rng.below(files.len() as u64) as usize];
                let off = rng.below(300_000);
                let len = 1 + rng.below(100_000);
                if live + len < fill {
                    let _ = fs.write(&R, *ino, 0, off, &buf[..len as usize]);
                    live += len;
                }
            }
            8 | 9 if !files.is_empty() => {
                let k = rng.below(files.len() as u64) as usize;
                let (d, _, n) = files.swap_remove(k);
                let _ = fs.unlink(&R, d, &n);
                live = live.saturating_sub(100_000);
            }
            10 if !files.is_empty() => {
                let (_, ino, _) = &files[rng.below(files.len() as u64) as usize];
                let sa = SetAttr {
                    size: Some(rng.below(400_000)),
                    ..SetAttr::default()
                };
                let _ = fs.setattr(&R, *ino, &sa, None);
            }
            11 if !files.is_empty() => {
                let (_, ino, _) = &files[rng.below(files.len() as u64) as usize];
                let mode = [
                    0,
                    FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                ][rng.below(3) as usize];
                let _ = fs.fallocate(
                    &R,
                    *ino,
                    0,
                    rng.below(200_000),
                    1 + rng.below(100_000),
                    mode,
                );
            }
            12 if !files.is_empty() => {
                let (_, ino, _) = files[rng.below(files.len() as u64) as usize].clone();
                if fs.link(&R, ino, dir, &name).is_ok() {
                    files.push((dir, ino, name));
                }
            }
            13 if !files.is_empty() => {
                let k = rng.below(files.len() as u64) as usize;
                let (d, ino, n) = files[k].clone();
                let flags = RenameFlags(if rng.below(4) == 0 {
                    RenameFlags::EXCHANGE
                } else {
                    0
                });
                if fs.rename(&R, d, &n, dir, &name, flags).is_ok() && flags.0 == 0 {
                    files.retain(|(dd, _, nn)| !(*dd == dir && *nn == name));
                    files.push((dir, ino, name));
                    if let Some(p) = files
                        .iter()
                        .position(|(dd, ii, nn)| *dd == d && *ii == ino && *nn == n)
                    {
                        files.swap_remove(p);
                    }
                }
            }
            14 if !files.is_empty() => {
                let (_, ino, _) = &files[rng.below(files.len() as u64) as usize];
                let xname = format!("user.x{}", rng.below(5));
                if rng.below(3) == 0 {
                    let _ = fs.removexattr(&R, *ino, xname.as_bytes());
                } else {
                    let _ = fs.setxattr(
                        &R,
                        *ino,
                        xname.as_bytes(),
                        &buf[..rng.below(900) as usize],
                        0,
                    );
                }
            }
            15 if dirs.len() < 12 => {
                if let Ok(e) = fs.mkdir(&R, dir, &name, 0o755) {
                    dirs.push(e.attr.ino);
                }
            }
            16 if dirs.len() > 1 => {
                // Only succeeds on an empty directory.
                let k = 1 + rng.below(dirs.len() as u64 - 1) as usize;
                let _ = fs.rmdir(&R, dir, &name);
                let _ = k;
            }
            17 => {
                let _ = fs.symlink(
                    &R,
                    dir,
                    &name,
                    &buf[..1 + rng.below(4000) as usize]
                        .iter()
                        .map(|b| b'a' + b % 26)
                        .collect::<Vec<u8>>(),
                );
            }
            18 if i % 7 == 0 => {
                let _ = fs.sync_fs();
            }
            _ => {}
        }
    }
}
