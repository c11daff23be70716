//! Damaged volumes that once panicked logfs, found by the mount fuzzer (`logfs/fuzz`, run with
//! `logfs/fuzz/run.sh SECONDS`). Each rebuilds the fuzzer's seed volume
//! (`tests/common/seeds.rs`), applies the damage the minimised input chose, re-sealed as a
//! crafted image would be (`tests/common/image.rs`), and runs the operations that panicked: they
//! must fail cleanly and leave the rest of the volume usable. Also here: the seed volumes
//! themselves are consistent, so the fuzzer starts from images fsck finds clean.

#[path = "common/image.rs"]
mod image;
#[path = "common/seeds.rs"]
mod seeds;

use std::sync::Arc;

use bento_runtime::Errno;
use bento_runtime::fs::{FileSystem, Ino, ROOT_INO, Request};
use bento_user::CrashDevice;
use image::Image;
use seeds::{Seed, SeedFs};

const R: Request = Request::ROOT;

/// A fresh device over `seed`, and the image editor on it.
fn damaged(seed: &Seed, f: impl FnOnce(&Image<CrashDevice>)) -> Arc<CrashDevice> {
    let dev = seeds::device(&seed.image);
    f(&Image::open(dev.clone()));
    dev
}

fn ino_of(fs: &SeedFs, dir: Ino, name: &[u8]) -> Ino {
    let e = fs.lookup(&R, dir, name).expect("lookup");
    fs.forget(e.attr.ino, 1);
    e.attr.ino
}

/// The populated seed's inode `name` in the root, found on a mount of it.
fn root_ino(seed: &Seed, name: &[u8]) -> u32 {
    let dev = seeds::device(&seed.image);
    let fs = seeds::mount(&dev);
    let ino = ino_of(&fs, ROOT_INO, name);
    drop(fs);
    ino as u32
}

/// Offset of the inode's `blocks` field in its node block (docs/format.md).
const BLOCKS_AT: usize = 64;

/// An inode claiming more blocks than the volume has: getattr (and lookup, which returns the
/// attributes) computed `(blocks + 1) * 8` and overflowed (`attempt to multiply with
/// overflow`, logfs/src/inode.rs in `attr`). The minimised input: the populated seed, 8 bytes
/// at offset 70 of `inline-max`'s node block set to `u64::MAX - 70`, then a lookup of it.
/// Mount now refuses the inode when it is read.
#[test]
fn inode_blocks_past_the_volume() {
    let seed = seeds::populated();
    let victim = root_ino(&seed, b"inline-max");
    let dev = damaged(&seed, |img| {
        img.edit_resealed(img.node_addr(victim), |b| {
            b[BLOCKS_AT + 6..BLOCKS_AT + 14].copy_from_slice(&(u64::MAX - 70).to_le_bytes())
        })
    });
    let fs = seeds::mount(&dev);
    assert_eq!(
        fs.lookup(&R, ROOT_INO, b"inline-max").unwrap_err(),
        Errno::EUCLEAN
    );
    assert_eq!(
        fs.getattr(&R, u64::from(victim)).unwrap_err(),
        Errno::EUCLEAN
    );
    // The rest of the volume is untouched.
    let tiny = ino_of(&fs, ROOT_INO, b"tiny");
    let mut buf = [0u8; 16];
    assert_eq!(fs.read(&R, tiny, 0, 0, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    fs.destroy().expect("unmount");
}

/// Every seed volume is consistent: fsck finds it clean, after the crashed one's recovery.
#[test]
fn seed_volumes_are_clean() {
    for seed in seeds::all() {
        let dev = seeds::device(&seed.image);
        if seed.name == "crashed" {
            seeds::mount(&dev).destroy().expect("unmount");
        }
        let report = fsck::check(&*dev, &fsck::CheckOptions::default());
        assert!(report.is_clean(), "{}: {:#?}", seed.name, report.findings);
        // Every inode the fuzzer starts from reads, or is one the seed removed (`entry-0000`,
        // the crashed seed's orphan): the fuzzer names those too.
        let fs = seeds::mount(&dev);
        let mut live = 0;
        for &ino in &seed.inos {
            match fs.getattr(&R, ino) {
                Ok(_) => live += 1,
                Err(Errno::ESTALE) => {}
                Err(e) => panic!("{}: inode {ino}: {e:?}", seed.name),
            }
        }
        assert!(live + 2 >= seed.inos.len(), "{}", seed.name);
        fs.destroy().expect("unmount");
    }
}
