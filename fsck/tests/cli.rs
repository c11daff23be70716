//! fsck.logfs as a program: exit codes, messages, locking, corrupted images.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bento_api::fs::{FileSystem, Mount, MountOptions, ROOT_INO};
use bento_user::FileDevice;
use common::{R, Rng, mkfs_opts};
use logfs::BLOCK_SIZE;
use logfs::checkpoint::Checkpoint;
use logfs::format::superblock::Superblock;

const FSCK: &str = env!("CARGO_BIN_EXE_fsck-logfs");

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fsck-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Run a program, failing the test if it runs for more than a minute.
fn run(prog: &str, args: &[&str]) -> Output {
    let mut child = Command::new(prog)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{prog} {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(101),
        "{prog} {args:?} panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fsck(args: &[&str]) -> (i32, String, String) {
    let out = run(FSCK, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sized(path: &Path, bytes: u64) {
    File::create(path).unwrap().set_len(bytes).unwrap();
}

/// A fresh 64 MiB logfs image: made by the mkfs.logfs next to fsck.logfs when it has been
/// built, else by the library.
fn make_image(name: &str) -> PathBuf {
    let p = tmp(name);
    sized(&p, 64 << 20);
    let mkfs = Path::new(FSCK).with_file_name("mkfs-logfs");
    if mkfs.exists() {
        let out = run(mkfs.to_str().unwrap(), &["-q", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0));
    } else {
        let dev = FileDevice::open(&p, false).unwrap();
        logfs::mkfs::format(&dev, &mkfs_opts()).unwrap();
    }
    p
}

/// A 64 MiB image with a few files and directories, unmounted.
fn populated_image(name: &str) -> PathBuf {
    let p = make_image(name);
    let dev = FileDevice::open(&p, false).unwrap();
    let fs = logfs::LogFs::mount(dev, &MountOptions::default()).unwrap();
    let (e, o) = fs.create(&R, ROOT_INO, b"hello", 0o644, 0).unwrap();
    fs.write(&R, e.attr.ino, o.fh, 0, b"hello world").unwrap();
    fs.release(&R, e.attr.ino, o.fh, 0).unwrap();
    let d = fs.mkdir(&R, ROOT_INO, b"dir", 0o755).unwrap().attr.ino;
    let (f, o) = fs.create(&R, d, b"big", 0o644, 0).unwrap();
    fs.write(&R, f.attr.ino, o.fh, 0, &vec![7u8; 100_000])
        .unwrap();
    fs.release(&R, f.attr.ino, o.fh, 0).unwrap();
    fs.destroy().unwrap();
    p
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Flip one bit at byte `at` of the image.
fn flip(path: &Path, at: u64) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x10;
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&b).unwrap();
}

struct Located {
    sb: Superblock,
    cp: Checkpoint,
    dev: FileDevice,
}

fn locate(path: &Path) -> Located {
    let dev = FileDevice::open(path, true).unwrap();
    let sb = Superblock::read(&dev).unwrap();
    let cp = Checkpoint::read_latest(&dev, &sb).unwrap();
    Located { sb, cp, dev }
}

impl Located {
    fn read_block(&self, addr: u64) -> Vec<u8> {
        use bento_api::ks::block::BlockDevice;
        let mut b = vec![0u8; BLOCK_SIZE];
        self.dev.read_blocks(addr, &mut b).unwrap();
        b
    }
    /// Address of the current copy of NAT block `i`.
    fn nat_block(&self, i: u32) -> u64 {
        let copy = self.cp.nat_bitmap[i as usize / 8] & (1 << (i % 8)) != 0;
        self.sb.layout.nat_copy_addr(i, copy)
    }
    fn node_addr(&self, nid: u32) -> u64 {
        let b = self.read_block(self.nat_block(nid / 1020));
        let at = 16 + 4 * (nid % 1020) as usize;
        u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
    }
}

fn lock(path: &Path, op: i32) -> File {
    let f = File::open(path).unwrap();
    // SAFETY: flock on a descriptor the test owns.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), op) }, 0);
    f
}

#[test]
fn fresh_image_is_clean() {
    let p = make_image("fresh.img");
    let (code, out, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Pass 1: Checking superblocks"), "{out}");
    assert!(out.contains("Pass 7: Checking segment summaries"), "{out}");
    assert!(out.contains("1/16319 files"), "{out}");
    for flags in [
        &["-n"][..],
        &["-f"],
        &["-f", "-n", "-v"],
        &["-p"],
        &["-a"],
        &["-y"],
    ] {
        let mut args = flags.to_vec();
        args.push(path_str(&p));
        let (code, out, err) = fsck(&args);
        assert_eq!(code, 0, "{flags:?}: {out}{err}");
        if flags.contains(&"-y") || flags.contains(&"-p") || flags.contains(&"-a") {
            assert!(err.contains("repair is not available yet"), "{err}");
        }
        if flags.contains(&"-p") {
            assert!(out.contains("clean, 1/16319 files"), "{out}");
        }
    }
}

#[test]
fn populated_image_is_clean() {
    let p = populated_image("populated.img");
    let (code, out, err) = fsck(&["-fv", path_str(&p)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4/16319 files (2 directories)"), "{out}");
}

#[test]
fn not_logfs_is_an_operational_error() {
    let p = tmp("zero.img");
    sized(&p, 64 << 20);
    let (code, _, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("no logfs superblock found"), "{err}");

    let (code, _, err) = fsck(&[path_str(&tmp("missing.img"))]);
    assert_eq!(code, 8);
    assert!(err.contains("No such file"), "{err}");

    let p = tmp("tiny.img");
    sized(&p, 4096);
    let (code, _, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 8, "{err}");
}

#[test]
fn random_images_fail_cleanly() {
    for seed in 0..6u64 {
        let mut rng = Rng::new(seed + 77);
        let size = [3 * 4096, 1 << 20, 8 << 20][seed as usize % 3];
        let mut bytes = vec![0u8; size];
        rng.fill(&mut bytes);
        if seed >= 3 {
            // Claims to be logfs: the check gets further.
            bytes[8..16].copy_from_slice(b"BENTOLFS");
            bytes[4096 + 8..4096 + 16].copy_from_slice(b"BENTOLFS");
        }
        let p = tmp(&format!("random-{seed}.img"));
        std::fs::write(&p, &bytes).unwrap();
        let (code, out, err) = fsck(&[path_str(&p)]);
        assert!(matches!(code, 4 | 8), "seed {seed}: {code} {out}{err}");
        std::fs::remove_file(&p).unwrap();
    }
}

#[test]
fn usage_errors_exit_16() {
    assert_eq!(fsck(&[]).0, 16);
    assert_eq!(fsck(&["-Q", "x.img"]).0, 16);
    assert_eq!(fsck(&["-n", "-y", "x.img"]).0, 16);
    assert_eq!(fsck(&["a.img", "b.img"]).0, 16);
    let (code, out, _) = fsck(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage"));
}

#[test]
fn flipped_bit_in_superblock_copy_0() {
    let p = make_image("sb0.img");
    flip(&p, 200);
    let (code, out, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        out.contains("error: superblock copy 0 (block 0): bad magic or checksum"),
        "{out}"
    );
}

#[test]
fn flipped_bit_in_nat_block() {
    let p = populated_image("nat.img");
    let l = locate(&p);
    let addr = l.nat_block(0);
    flip(&p, addr * BLOCK_SIZE as u64 + 16 + 4 * 3);
    let (code, out, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        out.contains(&format!(
            "error: node address table block 0 (block {addr}): bad magic or checksum"
        )),
        "{out}"
    );
}

#[test]
fn flipped_bit_in_inode() {
    let p = populated_image("inode.img");
    let l = locate(&p);
    // nid 2 is "hello".
    let addr = l.node_addr(2);
    flip(&p, addr * BLOCK_SIZE as u64 + 40 + 12);
    let (code, out, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        out.contains(&format!(
            "error: inode 2: node at block {addr}: bad magic or checksum"
        )),
        "{out}"
    );
}

#[test]
fn flipped_bit_in_directory_block() {
    let p = populated_image("dir.img");
    let l = locate(&p);
    let root = l.read_block(l.node_addr(1));
    // addrs[0] of the root inode: its first directory block.
    let dir0 = u64::from(u32::from_le_bytes(root[424..428].try_into().unwrap()));
    flip(&p, dir0 * BLOCK_SIZE as u64 + 2000);
    let (code, out, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        out.contains(&format!(
            "error: directory 1: directory block 0 (block {dir0}): bad magic or checksum"
        )),
        "{out}"
    );
}

#[test]
fn waits_for_a_mount_to_let_go() {
    let p = make_image("locked.img");
    // Held as logfs-fuse holds it, and let go a second later (its final checkpoint done).
    let held = lock(&p, libc::LOCK_EX);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1000));
        drop(held);
    });
    let start = Instant::now();
    let (code, out, err) = fsck(&[path_str(&p)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(err.contains("in use; waiting"), "{err}");
    t.join().unwrap();

    let held = lock(&p, libc::LOCK_EX);
    let (code, _, err) = fsck(&["--lock-timeout", "1", path_str(&p)]);
    assert_eq!(code, 8);
    assert!(err.contains("is in use"), "{err}");
    drop(held);

    // Another checker's shared lock does not block.
    let held = lock(&p, libc::LOCK_SH);
    let start = Instant::now();
    assert_eq!(fsck(&[path_str(&p)]).0, 0);
    assert!(start.elapsed() < Duration::from_millis(900));
    drop(held);
}
