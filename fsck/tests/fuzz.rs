//! Corrupt a valid populated image in many ways (fixed seeds) and check that fsck never panics
//! and never loops. `catch_unwind` only turns a panic into a clear test failure; the protection
//! is fsck's own code.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use bento_user::MemDevice;
use common::*;
use fsck::{CheckOptions, Report};
use logfs::BLOCK_SIZE;
use logfs::format::header::{self as csum, MAGIC_CHECKPOINT, MAGIC_SUPERBLOCK};
use logfs::format::layout::Layout;
use logfs::format::superblock::Superblock;

const KNOWN_MAGICS: [u32; 8] = [
    0x4253_464C,
    0x5043_464C,
    0x5553_464C,
    0x414E_464C,
    0x5353_464C,
    0x444E_464C,
    0x4544_464C,
    0x524F_464C,
];

fn magic_of(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn block_mut(img: &mut [u8], b: u64) -> &mut [u8; BLOCK_SIZE] {
    let at = b as usize * BLOCK_SIZE;
    (&mut img[at..at + BLOCK_SIZE]).try_into().unwrap()
}

/// Re-checksum a block with whatever magic it carries, so structural checks get exercised.
fn reseal(block: &mut [u8; BLOCK_SIZE], seed: u32) {
    let magic = magic_of(block);
    let seed = if magic == MAGIC_SUPERBLOCK { 0 } else { seed };
    csum::seal(seed, magic, block);
}

/// Recompute both checkpoint packs' body CRCs, so a corrupted body is taken at face value.
fn fix_checkpoints(img: &mut [u8], l: &Layout, seed: u32) {
    for pack in 0..2 {
        let start = l.cp_pack_start(pack);
        let hdr = block_mut(img, start).to_vec();
        if magic_of(&hdr) != MAGIC_CHECKPOINT {
            continue;
        }
        let body_blocks = u32::from_le_bytes(hdr[16..20].try_into().unwrap()) as u64;
        if body_blocks + 1 > u64::from(l.cp_blocks) {
            continue;
        }
        let from = (start + 1) as usize * BLOCK_SIZE;
        let crc = csum::crc32(seed, &img[from..from + body_blocks as usize * BLOCK_SIZE]);
        let h = block_mut(img, start);
        h[20..24].copy_from_slice(&crc.to_le_bytes());
        csum::seal(seed, MAGIC_CHECKPOINT, h);
    }
}

fn run_check(dev: &MemDevice, what: &str) -> Report {
    match catch_unwind(AssertUnwindSafe(|| {
        fsck::check(dev, &CheckOptions::default())
    })) {
        Ok(r) => r,
        Err(_) => panic!("fsck panicked on {what}"),
    }
}

struct Image {
    bytes: Vec<u8>,
    layout: Layout,
    seed: u32,
    /// Blocks worth corrupting: metadata and main-area blocks with a known magic.
    targets: Vec<u64>,
    main: Vec<u64>,
}

fn image() -> Image {
    let dev = populated_device();
    let bytes = dev.snapshot();
    let sb = Superblock::decode(bytes[..BLOCK_SIZE].try_into().unwrap(), 0, u64::MAX).unwrap();
    let layout = sb.layout;
    let blocks = (bytes.len() / BLOCK_SIZE) as u64;
    let mut targets = Vec::new();
    let mut main = Vec::new();
    for b in 0..blocks {
        let blk = &bytes[b as usize * BLOCK_SIZE..(b as usize + 1) * BLOCK_SIZE];
        if blk.iter().all(|&x| x == 0) {
            continue;
        }
        if b >= u64::from(layout.main_start) {
            main.push(b);
        }
        if b < u64::from(layout.main_start) || KNOWN_MAGICS.contains(&magic_of(blk)) {
            targets.push(b);
        }
    }
    assert!(fsck::check(&dev, &CheckOptions::default()).is_clean());
    Image {
        bytes,
        layout,
        seed: sb.csum_seed(),
        targets,
        main,
    }
}

/// Interesting values for a 32-bit field.
fn interesting(rng: &mut Rng, l: &Layout) -> u32 {
    let main_end = l.main_start + l.main_segments * 512;
    match rng.below(9) {
        0 => 0,
        1 => 1,
        2 => u32::MAX,
        3 => u32::MAX - 1,
        4 => l.main_start + rng.below(u64::from(main_end - l.main_start)) as u32,
        5 => rng.below(u64::from(l.max_nid) + 2) as u32,
        6 => rng.below(64) as u32,
        7 => 1 << rng.below(32),
        _ => rng.next() as u32,
    }
}

/// Corrupt one to three blocks of `img`; returns which blocks and how.
fn corrupt(img: &mut [u8], rng: &mut Rng, im: &Image) -> Vec<(u64, u64)> {
    let mut fix_cp = false;
    let mut log = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let b = im.targets[rng.below(im.targets.len() as u64) as usize];
        let mode = rng.below(7);
        log.push((b, mode));
        let other = im.targets[rng.below(im.targets.len() as u64) as usize];
        let copy = block_mut(img, other).to_vec();
        let blk = block_mut(img, b);
        match mode {
            // Flip a few bits: checksums catch it.
            0 => {
                for _ in 0..1 + rng.below(8) {
                    let bit = rng.below(BLOCK_SIZE as u64 * 8);
                    blk[(bit / 8) as usize] ^= 1 << (bit % 8);
                }
            }
            // Random bytes, checksum fixed.
            1 => {
                for _ in 0..1 + rng.below(64) {
                    let at = 8 + rng.below(BLOCK_SIZE as u64 - 8) as usize;
                    blk[at] = rng.next() as u8;
                }
                reseal(blk, im.seed);
                fix_cp = true;
            }
            // A header field set to an edge value, checksum fixed.
            2 => {
                for _ in 0..1 + rng.below(4) {
                    let at = 8 + 4 * rng.below(60) as usize;
                    let v = interesting(rng, &im.layout);
                    blk[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                reseal(blk, im.seed);
                fix_cp = true;
            }
            // Any 32-bit slot set to an edge value (node bodies are address arrays).
            3 => {
                for _ in 0..1 + rng.below(16) {
                    let at = 40 + 4 * rng.below((BLOCK_SIZE as u64 - 40) / 4) as usize;
                    let v = interesting(rng, &im.layout);
                    blk[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                reseal(blk, im.seed);
                fix_cp = true;
            }
            4 => blk.fill(0),
            // Another block's contents (valid checksum, wrong place).
            5 => blk.copy_from_slice(&copy),
            // Garbage with a valid header of the same kind.
            _ => {
                let magic = magic_of(blk);
                rng.fill(&mut blk[8..]);
                blk[..4].copy_from_slice(&magic.to_le_bytes());
                reseal(blk, im.seed);
                fix_cp = true;
            }
        }
    }
    if fix_cp {
        fix_checkpoints(img, &im.layout, im.seed);
    }
    log
}

/// Undo `corrupt`: put back the blocks it touched and the checkpoint headers.
fn restore(img: &mut [u8], im: &Image, log: &[(u64, u64)]) {
    let cp = [im.layout.cp_pack_start(0), im.layout.cp_pack_start(1)];
    for b in log.iter().map(|&(b, _)| b).chain(cp) {
        let at = b as usize * BLOCK_SIZE;
        img[at..at + BLOCK_SIZE].copy_from_slice(&im.bytes[at..at + BLOCK_SIZE]);
    }
}

#[test]
fn corrupted_metadata_never_panics() {
    let im = image();
    let dev = MemDevice::from_bytes(im.bytes.clone());
    let mut codes = [0u32; 3];
    let mut errors = 0u64;
    let mut log = Vec::new();
    for iter in 0..iterations(100) {
        let mut rng = Rng::new(0x5EED_0000 + iter);
        log = dev.with_bytes(|img| {
            restore(img, &im, &log);
            corrupt(img, &mut rng, &im)
        });
        let r = run_check(&dev, &format!("iteration {iter} ({log:?})"));
        if r.exit_code() == 8 && std::env::var("FUZZ_DEBUG").is_ok() {
            println!("operational: {log:?} {:?}", r.operational);
        }
        if r.exit_code() == 0 && std::env::var("FUZZ_DEBUG").is_ok() {
            println!("undetected: {log:?} warnings {}", r.warnings);
        }
        codes[match r.exit_code() {
            0 => 0,
            4 => 1,
            _ => 2,
        }] += 1;
        errors += r.errors;
        // A finding always names something.
        for f in &r.findings {
            assert!(!f.to_string().is_empty());
        }
    }
    println!("exit codes 0/4/8: {codes:?}, {errors} errors in all");
    assert!(
        codes[1] * 2 > codes.iter().sum::<u32>(),
        "most corruptions should be found: {codes:?}"
    );
}

#[test]
fn garbage_main_area_never_panics() {
    let im = image();
    let dev = MemDevice::from_bytes(im.bytes.clone());
    for iter in 0..iterations(20) {
        let mut rng = Rng::new(0xBAD_0000 + iter);
        // Whole main-area blocks replaced by edge values, half of them keeping a valid header
        // of their kind, so they are read as nodes or directory blocks.
        dev.with_bytes(|img| {
            img.copy_from_slice(&im.bytes);
            for _ in 0..1 + rng.below(40) {
                let b = im.main[rng.below(im.main.len() as u64) as usize];
                let blk = block_mut(img, b);
                let magic = magic_of(blk);
                for w in blk.chunks_mut(4) {
                    let v = interesting(&mut rng, &im.layout);
                    w.copy_from_slice(&v.to_le_bytes());
                }
                if rng.below(2) == 0 {
                    blk[..4].copy_from_slice(&magic.to_le_bytes());
                    reseal(blk, im.seed);
                }
            }
        });
        let r = run_check(&dev, &format!("garbage iteration {iter}"));
        assert!(matches!(r.exit_code(), 0 | 4), "{:?}", r.operational);
    }
}

#[test]
fn truncated_and_random_images_never_panic() {
    let im = image();
    for (i, len) in [0usize, 1, 2, 5, 100, 1000, 4096].into_iter().enumerate() {
        let dev =
            MemDevice::from_bytes(im.bytes[..(len * BLOCK_SIZE).min(im.bytes.len())].to_vec());
        let r = run_check(&dev, &format!("truncation to {len} blocks"));
        assert!(r.exit_code() != 0, "truncated image {i} checked clean");
    }
    for seed in 0..6u64 {
        let mut rng = Rng::new(seed);
        let blocks = [2u64, 3, 17, 256, 4096, 16384][seed as usize];
        let mut img = vec![0u8; blocks as usize * BLOCK_SIZE];
        rng.fill(&mut img);
        if seed % 2 == 1 {
            // A garbage image that at least claims to be logfs.
            img[8..16].copy_from_slice(b"BENTOLFS");
        }
        let r = run_check(&MemDevice::from_bytes(img), &format!("random image {seed}"));
        assert!(matches!(r.exit_code(), 4 | 8));
    }
}

/// Iterations of a fuzz loop: `default`, or `FSCK_FUZZ_ITERATIONS` for a longer run.
fn iterations(default: u64) -> u64 {
    std::env::var("FSCK_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
