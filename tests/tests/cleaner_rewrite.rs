//! The cleaner under pressure: on a 2 GiB image (1.89 GiB usable), six 205 MiB files (1.2 GiB,
//! about 65% full) are written and then completely rewritten three times over, interleaved
//! 256 KiB at a time, and each rewrite goes over the 256 KiB pieces in a random order, so every
//! segment goes partly dead at each rewrite. That is 4.8 GiB written to a volume with 0.7 GiB free, so the cleaner must
//! move live data to make room. Every write and fsync must succeed, the contents must verify,
//! and fsck must find the image clean.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use logfs_tests::*;

const FILES: usize = 6;
const FILE_SIZE: u64 = 205 * MIB;
const REWRITES: u64 = 3;
/// The unit of rewriting: small enough that every 2 MiB segment holds pieces of many writes.
const PIECE: u64 = 256 * KIB;

fn seed(file: usize, round: u64) -> u64 {
    (round << 8) | file as u64
}

/// Fisher-Yates with a deterministic generator.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let g = Gen::new(0x5EED ^ seed);
    let mut word = [0u8; 8];
    for i in (1..v.len()).rev() {
        g.fill(i as u64 * 8, &mut word);
        let j = (u64::from_le_bytes(word) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[test]
fn cleaner_rewrite() {
    require_fuse!();
    let mut timer = Timer::new("cleaner_rewrite");
    let tmp = TempDir::new("cleaner");
    let image = tmp.join("image");
    make_image(&image, 2 * GIB);
    let m = Mount::new(&image, &tmp.join("mnt"), &[]);
    let paths: Vec<PathBuf> = (0..FILES).map(|i| m.join(format!("file{i}"))).collect();
    let capacity = {
        let s = statvfs(m.path()).unwrap();
        s.f_blocks * s.f_frsize
    };
    assert!(
        FILES as u64 * FILE_SIZE * 100 / capacity >= 60,
        "the files should fill most of the volume ({capacity} bytes)"
    );

    let mut buf = vec![0u8; PIECE as usize];
    let chunks = FILE_SIZE / PIECE;
    for round in 0..=REWRITES {
        // Round 0 writes the files in order, interleaved; each rewrite overwrites every 256 KiB
        // piece in place in a random order, so that when free space runs out the old segments
        // are all partly live and the cleaner has to copy.
        let files: Vec<File> = paths
            .iter()
            .map(|p| {
                OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(round == 0)
                    .open(p)
                    .unwrap()
            })
            .collect();
        let mut order: Vec<(usize, u64)> = (0..chunks)
            .flat_map(|c| (0..FILES).map(move |i| (i, c * PIECE)))
            .collect();
        if round > 0 {
            shuffle(&mut order, round);
        }
        for (i, off) in order {
            Gen::new(seed(i, round)).fill(off, &mut buf);
            files[i]
                .write_all_at(&buf, off)
                .unwrap_or_else(|e| panic!("round {round}: writing file{i} at {off}: {e}"));
        }
        for (i, f) in files.iter().enumerate() {
            f.sync_all()
                .unwrap_or_else(|e| panic!("round {round}: fsync file{i}: {e}"));
        }
        syncfs(m.path());
        let s = statvfs(m.path()).unwrap();
        let used = (s.f_blocks - s.f_bfree) * s.f_frsize;
        assert!(
            used >= FILES as u64 * FILE_SIZE && used <= FILES as u64 * FILE_SIZE + 16 * MIB,
            "round {round}: {used} bytes in use for {} bytes of files",
            FILES as u64 * FILE_SIZE
        );
        timer.lap(&format!("round {round} (1.2 GiB written)"));
    }
    for (i, p) in paths.iter().enumerate() {
        verify_gen_file(p, Gen::new(seed(i, REWRITES)), FILE_SIZE);
    }
    timer.lap("verify");
    m.unmount();
    assert_fsck_clean(&image);
    timer.lap("umount + fsck");

    // And once more after a remount, from the disk rather than the page cache.
    let m = Mount::new(&image, &tmp.join("mnt"), &["ro"]);
    for (i, p) in paths.iter().enumerate() {
        verify_gen_file(p, Gen::new(seed(i, REWRITES)), FILE_SIZE);
    }
    m.unmount();
    timer.lap("remount ro + verify");
    eprintln!("cleaner_rewrite: {:.1?}", timer.total());
}
