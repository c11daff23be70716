//! fallocate's modes through the `FileSystem` trait, against a model of the file's bytes:
//! ZERO_RANGE (with and without KEEP_SIZE), COLLAPSE_RANGE and INSERT_RANGE beside
//! preallocation and PUNCH_HOLE; refused modes and arguments change nothing; space accounting;
//! remounts; fsck clean after each.

mod common;

use std::sync::Arc;

use bento_runtime::Errno;
use bento_runtime::fs::{
    FALLOC_FL_COLLAPSE_RANGE as COLLAPSE, FALLOC_FL_INSERT_RANGE as INSERT,
    FALLOC_FL_KEEP_SIZE as KEEP, FALLOC_FL_PUNCH_HOLE as PUNCH, FALLOC_FL_ZERO_RANGE as ZERO,
    FileSystem, ROOT_INO, SetAttr,
};
use bento_user::MemDevice;
use common::*;

const BS: u64 = 4096;

fn assert_clean(dev: &Arc<MemDevice>) {
    let report = fsck::check(&**dev, &fsck::CheckOptions::default());
    let errors: Vec<String> = report.errors().map(|f| f.to_string()).collect();
    assert!(report.is_clean() && errors.is_empty(), "fsck: {errors:#?}");
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The model's answer to `fallocate(mode, off, len)` on `data`: the new bytes, or the errno.
fn model(data: &[u8], mode: i32, off: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let size = data.len() as u64;
    let mut d = data.to_vec();
    if mode & !(KEEP | PUNCH | COLLAPSE | ZERO | INSERT) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if mode & (COLLAPSE | INSERT) != 0 && mode != COLLAPSE && mode != INSERT {
        return Err(Errno::EINVAL);
    }
    if ![0, KEEP, PUNCH | KEEP, ZERO, ZERO | KEEP, COLLAPSE, INSERT].contains(&mode) {
        return Err(Errno::EOPNOTSUPP);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = off + len;
    let (o, e) = (off as usize, end as usize);
    match mode {
        0 | KEEP | ZERO | 0x11 => {
            if mode & KEEP == 0 && d.len() < e {
                d.resize(e, 0);
            }
            if mode & ZERO != 0 {
                let e = e.min(d.len());
                if o < e {
                    d[o..e].fill(0);
                }
            }
        }
        0x03 => {
            let e = e.min(d.len());
            if o < e {
                d[o..e].fill(0);
            }
        }
        COLLAPSE => {
            if !off.is_multiple_of(BS) || !len.is_multiple_of(BS) || end >= size {
                return Err(Errno::EINVAL);
            }
            d.drain(o..e);
        }
        INSERT => {
            if !off.is_multiple_of(BS) || !len.is_multiple_of(BS) || off >= size {
                return Err(Errno::EINVAL);
            }
            d.splice(o..o, std::iter::repeat_n(0, len as usize));
        }
        _ => unreachable!(),
    }
    Ok(d)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn check_file(fs: &Fs, ino: u64, want: &[u8], what: &str) {
    let got = read_all(fs, ino);
    assert_eq!(got.len(), want.len(), "{what}: size");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}

/// Every mode on small, direct-node and indirect-node sized files, refused cases included.
#[test]
fn modes_against_a_model() {
    let dev = new_device(96);
    let mut fs = mount(&dev);
    let ino = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0.attr.ino;
    let mut data: Vec<u8> = Vec::new();
    let mut rng = Rng(0x5eed_f00d);
    let modes = [0, KEEP, PUNCH | KEEP, ZERO, ZERO | KEEP, COLLAPSE, INSERT];
    let mut done = std::collections::BTreeMap::<i32, (u32, u32)>::new();
    for step in 0..700 {
        let size = data.len() as u64;
        let r = rng.below(100);
        let what;
        if r < 25 || size == 0 {
            // Writes, sometimes large enough to reach the indirect nodes (913 + 2 * 1014 blocks
            // is 11.5 MiB).
            let big = rng.below(10) == 0;
            let len = if big {
                1 + rng.below(4 << 20)
            } else {
                1 + rng.below(40_000)
            };
            let off = rng.below((size + 1).min(14 << 20));
            let buf = pattern(step, len as usize);
            assert_eq!(fs.write(&R, ino, 0, off, &buf).unwrap(), buf.len());
            let e = (off + len) as usize;
            if data.len() < e {
                data.resize(e, 0);
            }
            data[off as usize..e].copy_from_slice(&buf);
            what = format!("step {step}: write {off}+{len}");
        } else if r < 30 {
            let to = rng.below(size * 2 + 10_000).min(15 << 20);
            let a = SetAttr {
                size: Some(to),
                ..Default::default()
            };
            fs.setattr(&R, ino, &a, None).unwrap();
            data.resize(to as usize, 0);
            what = format!("step {step}: truncate {to}");
        } else if r < 36 {
            fs.sync_fs().unwrap();
            what = format!("step {step}: sync_fs");
        } else if r < 38 {
            unmount(fs);
            assert_clean(&dev);
            fs = mount(&dev);
            what = format!("step {step}: remount");
        } else {
            let mode = if rng.below(20) == 0 {
                [
                    PUNCH,
                    COLLAPSE | KEEP,
                    INSERT | ZERO,
                    ZERO | PUNCH,
                    0x40,
                    0x04,
                ][rng.below(6) as usize]
            } else {
                modes[rng.below(modes.len() as u64) as usize]
            };
            let aligned = rng.below(4) != 0;
            let (mut off, mut len) = (rng.below(size + 20_000), 1 + rng.below(3 << 20));
            if rng.below(3) == 0 {
                len = 1 + rng.below(20_000);
            }
            if aligned {
                off -= off % BS;
                len = (len - len % BS).max(BS);
            }
            let want = model(&data, mode, off, len);
            let got = fs.fallocate(&R, ino, 0, off, len, mode);
            what = format!("step {step}: fallocate mode {mode:#x} {off}+{len} on {size}");
            let n = done.entry(mode).or_default();
            if got.is_ok() {
                n.0 += 1;
            } else {
                n.1 += 1;
            }
            match (got, want) {
                (Ok(()), Ok(d)) => data = d,
                (Err(g), Err(w)) => assert_eq!(g, w, "{what}"),
                (g, w) => panic!("{what}: got {g:?}, model {:?}", w.map(|d| d.len())),
            }
        }
        check_file(&fs, ino, &data, &what);
    }
    eprintln!("mode: (done, refused): {done:x?}");
    for m in modes {
        assert!(
            done.get(&m).is_some_and(|n| n.0 >= 10),
            "mode {m:#x}: {done:?}"
        );
    }
    unmount(fs);
    assert_clean(&dev);
    let fs = mount(&dev);
    check_file(&fs, ino, &data, "after the last remount");
    unmount(fs);
}

/// ZERO_RANGE reserves: a full volume still takes writes into a zeroed range; the space of
/// whole blocks stays counted; refused calls change nothing.
#[test]
fn zero_range_reserves_and_refusals_change_nothing() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let ino = fs.create(&R, ROOT_INO, b"z", 0o644, 0).unwrap().0.attr.ino;
    let data = pattern(1, 5 << 20);
    fs.write(&R, ino, 0, 0, &data).unwrap();
    fs.sync_fs().unwrap();
    let before = fs.getattr(&R, ino).unwrap();
    // Refusals: nothing changes.
    for (mode, off, len, e) in [
        (COLLAPSE, 1000, BS, Errno::EINVAL),
        (COLLAPSE, 0, 1000, Errno::EINVAL),
        (COLLAPSE, 4 << 20, 1 << 20, Errno::EINVAL),
        (COLLAPSE, 0, 8 << 20, Errno::EINVAL),
        (INSERT, 5 << 20, BS, Errno::EINVAL),
        (INSERT, BS, 100, Errno::EINVAL),
        (INSERT, 0, u64::MAX - BS + 1, Errno::EFBIG),
        (COLLAPSE | KEEP, 0, BS, Errno::EINVAL),
        (INSERT | KEEP, 0, BS, Errno::EINVAL),
        (ZERO | PUNCH | KEEP, 0, BS, Errno::EOPNOTSUPP),
        (PUNCH, 0, BS, Errno::EOPNOTSUPP),
        (0x40, 0, BS, Errno::EOPNOTSUPP),
        (ZERO, 0, 0, Errno::EINVAL),
        (ZERO, u64::MAX, 2, Errno::EFBIG),
    ] {
        assert_eq!(
            fs.fallocate(&R, ino, 0, off, len, mode),
            Err(e),
            "mode {mode:#x} {off}+{len}"
        );
    }
    let after = fs.getattr(&R, ino).unwrap();
    assert_eq!((after.size, after.blocks), (before.size, before.blocks));
    assert_eq!(after.mtime, before.mtime);
    check_file(&fs, ino, &data, "after refusals");

    // Zero 1 MiB + 1000 bytes in the middle: size and block count stay, bytes read zero.
    fs.fallocate(&R, ino, 0, 1000, 1 << 20, ZERO).unwrap();
    let mut want = data.clone();
    want[1000..1000 + (1 << 20)].fill(0);
    check_file(&fs, ino, &want, "zeroed");
    assert_eq!(fs.getattr(&R, ino).unwrap().blocks, before.blocks);
    // Past the end with KEEP_SIZE: reserved, size unchanged; without: size grows.
    fs.fallocate(&R, ino, 0, 5 << 20, 1 << 20, ZERO | KEEP)
        .unwrap();
    assert_eq!(fs.getattr(&R, ino).unwrap().size, 5 << 20);
    let blocks = fs.getattr(&R, ino).unwrap().blocks;
    assert!(
        blocks >= before.blocks + (1 << 20) / 512,
        "KEEP_SIZE reserved"
    );
    fs.fallocate(&R, ino, 0, (6 << 20) + 10, 5000, ZERO)
        .unwrap();
    want.resize((6 << 20) + 5010, 0);
    check_file(&fs, ino, &want, "zero past the end");

    // Fill the volume, then write into the zeroed range: no ENOSPC.
    let filler = fs
        .create(&R, ROOT_INO, b"filler", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    let chunk = vec![0x5au8; 1 << 20];
    let mut off = 0;
    while fs.write(&R, filler, 0, off, &chunk).is_ok() {
        off += chunk.len() as u64;
    }
    let fill = pattern(2, 1 << 20);
    assert_eq!(fs.write(&R, ino, 0, 4096, &fill).unwrap(), fill.len());
    want[4096..4096 + fill.len()].copy_from_slice(&fill);
    let past = pattern(3, 1 << 20);
    assert_eq!(fs.write(&R, ino, 0, 5 << 20, &past).unwrap(), past.len());
    want[5 << 20..(6 << 20)].copy_from_slice(&past);
    check_file(&fs, ino, &want, "written on a full volume");
    fs.fsync(&R, ino, 0, false).unwrap();
    unmount(fs);
    assert_clean(&dev);
    let fs = mount(&dev);
    check_file(&fs, ino, &want, "after remount");
    unmount(fs);
}

/// Collapse and insert move blocks: a file's data before and after a checkpoint, sizes,
/// block counts, times; fsync after them commits a checkpoint.
#[test]
fn collapse_and_insert() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let ino = fs.create(&R, ROOT_INO, b"c", 0o644, 0).unwrap().0.attr.ino;
    let mut want = pattern(4, 12 << 20);
    fs.write(&R, ino, 0, 0, &want[..8 << 20]).unwrap();
    fs.sync_fs().unwrap();
    // The rest written after the checkpoint: both kinds of block move.
    fs.write(&R, ino, 0, 8 << 20, &want[8 << 20..]).unwrap();
    let blocks = fs.getattr(&R, ino).unwrap().blocks;
    let t0 = fs.getattr(&R, ino).unwrap().mtime;
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs.fallocate(&R, ino, 0, 3 << 20, 2 << 20, COLLAPSE)
        .unwrap();
    want.drain(3 << 20..5 << 20);
    check_file(&fs, ino, &want, "collapsed");
    let a = fs.getattr(&R, ino).unwrap();
    assert!(a.mtime > t0 && a.ctime > t0, "times");
    assert!(
        a.blocks < blocks,
        "blocks freed: {} -> {}",
        blocks,
        a.blocks
    );
    fs.fallocate(&R, ino, 0, BS, 3 << 20, INSERT).unwrap();
    want.splice(BS as usize..BS as usize, std::iter::repeat_n(0, 3 << 20));
    check_file(&fs, ino, &want, "inserted");
    // The inserted range is a hole: no more blocks than before it.
    assert!(fs.getattr(&R, ino).unwrap().blocks <= a.blocks + 16);
    fs.fsync(&R, ino, 0, false).unwrap();
    unmount(fs);
    assert_clean(&dev);
    let fs = mount(&dev);
    check_file(&fs, ino, &want, "after remount");
    // A small (inline) file: insert at 0.
    let s = fs.create(&R, ROOT_INO, b"s", 0o644, 0).unwrap().0.attr.ino;
    fs.write(&R, s, 0, 0, b"hello").unwrap();
    fs.fallocate(&R, s, 0, 0, BS, INSERT).unwrap();
    let mut w = vec![0u8; BS as usize];
    w.extend_from_slice(b"hello");
    check_file(&fs, s, &w, "insert into an inline file");
    fs.fallocate(&R, s, 0, 0, BS, COLLAPSE).unwrap();
    check_file(&fs, s, b"hello", "collapse it back");
    unmount(fs);
    assert_clean(&dev);
}
