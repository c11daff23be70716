//! fallocate's ZERO_RANGE, COLLAPSE_RANGE and INSERT_RANGE over FUSE, against a model of the
//! file's bytes: contents and sizes after each call, refused calls (errno) change nothing,
//! again after a remount, fsck clean.
//!
//! The FUSE kernel module passes the mode to the daemon, which passes it to logfs. Which modes
//! it passes at all depends on the kernel: those it does not know it refuses itself with
//! EOPNOTSUPP (COLLAPSE_RANGE and INSERT_RANGE on the kernels of this writing; ZERO_RANGE on
//! older ones). Such a refusal must leave the file as it was; the test says which modes ran.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use logfs_tests::*;

const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE;
const COLLAPSE: i32 = libc::FALLOC_FL_COLLAPSE_RANGE;
const ZERO: i32 = libc::FALLOC_FL_ZERO_RANGE;
const INSERT: i32 = libc::FALLOC_FL_INSERT_RANGE;
const BS: u64 = 4096;

/// What `fallocate` does to `data` (the call succeeded).
fn apply(data: &mut Vec<u8>, mode: i32, off: u64, len: u64) {
    let (o, e) = (off as usize, (off + len) as usize);
    match mode {
        m if m & (COLLAPSE | INSERT) == 0 => {
            if m & KEEP == 0 && data.len() < e {
                data.resize(e, 0);
            }
            if m & (ZERO | PUNCH) != 0 {
                let e = e.min(data.len());
                if o < e {
                    data[o..e].fill(0);
                }
            }
        }
        COLLAPSE => {
            data.drain(o..e);
        }
        _ => {
            data.splice(o..o, std::iter::repeat_n(0, len as usize));
        }
    }
}

fn open(p: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(p).unwrap()
}

fn check(p: &Path, want: &[u8], what: &str) {
    let got = std::fs::read(p).unwrap();
    assert_eq!(got.len(), want.len(), "{what}: size");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}

#[test]
fn zero_collapse_insert() {
    require_fuse!();
    let tmp = TempDir::new("falloc");
    let image = tmp.join("image");
    make_image(&image, 256 * MIB);
    let mnt = tmp.join("mnt");
    let m = Mount::new(&image, &mnt, &[]);
    let p = m.path().join("f");
    let mut want = Gen::new(77).bytes(0, 6 * MIB as usize);
    write_file(&p, &want);
    syncfs(m.path());
    let f = open(&p);
    // Written after the checkpoint: logfs moves these blocks' addresses, the older ones it
    // copies.
    let tail = Gen::new(78).bytes(0, 2 * MIB as usize);
    f.write_all_at(&tail, 6 * MIB).unwrap();
    want.extend_from_slice(&tail);

    // Refused before anything changes (by the VFS, the FUSE module or logfs). COLLAPSE and
    // INSERT with KEEP_SIZE: EINVAL from 6.1's vfs_fallocate and logfs, EOPNOTSUPP from the
    // VFS of newer kernels.
    let either = &[libc::EINVAL, libc::EOPNOTSUPP][..];
    for (mode, off, len, errnos) in [
        (COLLAPSE | KEEP, 0, BS, either),
        (INSERT | KEEP, 0, BS, either),
        (ZERO | PUNCH | KEEP, 0, BS, &[libc::EOPNOTSUPP]),
        (PUNCH, 0, BS, &[libc::EOPNOTSUPP]),
        (0x40, 0, BS, &[libc::EOPNOTSUPP]),
        (COLLAPSE, 1000, BS, &[libc::EINVAL, libc::EOPNOTSUPP]),
        (COLLAPSE, 0, 1000, &[libc::EINVAL, libc::EOPNOTSUPP]),
        (
            COLLAPSE,
            4 * MIB,
            4 * MIB,
            &[libc::EINVAL, libc::EOPNOTSUPP],
        ),
        (INSERT, 8 * MIB, BS, &[libc::EINVAL, libc::EOPNOTSUPP]),
        (INSERT, 0, 100, &[libc::EINVAL, libc::EOPNOTSUPP]),
    ] {
        let before = f.metadata().unwrap();
        let e = errno(fallocate(&f, mode, off, len));
        assert!(
            e.is_some_and(|e| errnos.contains(&e)),
            "mode {mode:#x} {off}+{len}: {e:?}, expected one of {errnos:?}"
        );
        let after = f.metadata().unwrap();
        assert_eq!(
            (after.len(), after.blocks()),
            (before.len(), before.blocks())
        );
        check(&p, &want, &format!("after refused mode {mode:#x}"));
    }

    let mut ran = Vec::new();
    for (mode, off, len) in [
        (ZERO, 1000, MIB),
        (ZERO | KEEP, 8 * MIB - 100, 2 * MIB),
        (ZERO, 8 * MIB + 10, 5000),
        (COLLAPSE, MIB, 2 * MIB),
        (INSERT, BS, 3 * MIB),
        (COLLAPSE, 0, BS),
        (INSERT, 2 * MIB, MIB),
    ] {
        let before = f.metadata().unwrap();
        match fallocate(&f, mode, off, len) {
            Ok(()) => {
                apply(&mut want, mode, off, len);
                ran.push(mode);
            }
            Err(e) => {
                // Only the FUSE module's refusal of a mode it does not pass on.
                assert_eq!(
                    errno(Err::<(), _>(e)),
                    Some(libc::EOPNOTSUPP),
                    "mode {mode:#x}"
                );
                assert_eq!(f.metadata().unwrap().len(), before.len());
            }
        }
        check(&p, &want, &format!("after mode {mode:#x} {off}+{len}"));
    }
    eprintln!("fuse_falloc: modes that reached logfs: {ran:#x?}");
    let zeroed = f.metadata().unwrap();
    if ran.contains(&(ZERO | KEEP)) {
        // The KEEP_SIZE range past the end is reserved.
        assert!(
            zeroed.blocks() * 512 >= 8 * MIB,
            "st_blocks {}",
            zeroed.blocks()
        );
    }
    f.sync_all().unwrap();
    drop(f);
    m.unmount();
    assert_fsck_clean(&image);
    let m = Mount::new(&image, &mnt, &[]);
    check(&m.path().join("f"), &want, "after remount");
    m.unmount();
    assert_fsck_clean(&image);
}
