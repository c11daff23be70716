//! A failing device loses nothing acknowledged (issue 10, item 6). Writes start failing after
//! N more requests, for every N through a checkpoint and through fsyncs: the call that meets the
//! error fails, later changes are refused (EROFS) and nothing panics; then the device works
//! again, and a new mount finds the last checkpoint and every fsynced file intact, fsck clean.

mod common;

use std::sync::Arc;

use bento_runtime::Errno;
use bento_runtime::fs::{FileSystem, Ino, Mount, MountOptions, ROOT_INO, SetAttr};
use bento_user::{FailingDevice, MemDevice};
use common::*;
use logfs::LogFs;

type FailFs = LogFs<Arc<FailingDevice<Arc<MemDevice>>>>;

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| ((seed * 131 + j * 7) % 251) as u8)
        .collect()
}

/// A volume with a directory of files, committed.
fn base_image() -> Vec<u8> {
    let dev = new_device(64);
    let fs = mount(&dev);
    let d = fs.mkdir(&R, ROOT_INO, b"d", 0o755).unwrap().attr.ino;
    for i in 0..40 {
        let ino = fs
            .create(&R, d, format!("f{i}").as_bytes(), 0o644, 0)
            .unwrap()
            .0
            .attr
            .ino;
        fs.write(&R, ino, 0, 0, &pattern(i, 3000 + i * 900))
            .unwrap();
    }
    unmount(fs);
    dev.snapshot()
}

fn lookup_path(fs: &impl FileSystem, path: &[&[u8]]) -> Option<Ino> {
    let mut ino = ROOT_INO;
    for name in path {
        ino = fs.lookup(&R, ino, name).ok()?.attr.ino;
    }
    Some(ino)
}

fn contents(fs: &impl FileSystem, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(&R, ino).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    let n = fs.read(&R, ino, 0, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn new_file(fs: &FailFs, dir: Ino, name: &[u8], data: &[u8]) -> Result<Ino, Errno> {
    let ino = fs.create(&R, dir, name, 0o644, 0)?.0.attr.ino;
    fs.write(&R, ino, 0, 0, data)?;
    Ok(ino)
}

/// What a file must hold after the failure: (path, contents).
type Promise = (Vec<Vec<u8>>, Vec<u8>);

fn promise(path: &[&[u8]], data: Vec<u8>) -> Promise {
    (path.iter().map(|p| p.to_vec()).collect(), data)
}

/// The work under test, on a device that may start failing: the promises of every call that
/// succeeded (a sync or an fsync acknowledged them).
type Work = fn(&FailFs, &mut Vec<Promise>) -> Result<(), Errno>;

/// Changes of every kind, then a checkpoint (sync).
fn checkpoint_work(fs: &FailFs, done: &mut Vec<Promise>) -> Result<(), Errno> {
    let d = fs.lookup(&R, ROOT_INO, b"d")?.attr.ino;
    let e = fs.mkdir(&R, ROOT_INO, b"e", 0o755)?.attr.ino;
    new_file(fs, e, b"big", &pattern(77, 2 << 20))?;
    for i in 0..10 {
        fs.unlink(&R, d, format!("f{i}").as_bytes())?;
    }
    fs.rename(&R, d, b"f10", e, b"moved", Default::default())?;
    let f11 = fs.lookup(&R, d, b"f11")?.attr.ino;
    fs.write(&R, f11, 0, 100, &pattern(11, 5000))?;
    fs.setxattr(&R, f11, b"user.x", b"value", 0)?;
    let a = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    fs.setattr(&R, f11, &a, None)?;
    fs.sync_fs()?;
    done.push(promise(&[b"e", b"big"], pattern(77, 2 << 20)));
    done.push(promise(&[b"e", b"moved"], pattern(10, 3000 + 10 * 900)));
    let mut f11_data = pattern(11, 3000 + 11 * 900);
    f11_data.splice(100..5100, pattern(11, 5000));
    done.push(promise(&[b"d", b"f11"], f11_data));
    Ok(())
}

/// fsyncs without a checkpoint: an overwrite of an old file, a new file, an append.
fn fsync_work(fs: &FailFs, done: &mut Vec<Promise>) -> Result<(), Errno> {
    let d = fs.lookup(&R, ROOT_INO, b"d")?.attr.ino;
    let f20 = fs.lookup(&R, d, b"f20")?.attr.ino;
    let mut f20_data = pattern(20, 3000 + 20 * 900);
    fs.write(&R, f20, 0, 0, &pattern(120, 8192))?;
    f20_data.splice(0..8192, pattern(120, 8192));
    fs.fsync(&R, f20, 0, false)?;
    done.push(promise(&[b"d", b"f20"], f20_data.clone()));
    let n = new_file(fs, d, b"new", &pattern(5, 70_000))?;
    fs.fsync(&R, n, 0, false)?;
    done.push(promise(&[b"d", b"new"], pattern(5, 70_000)));
    fs.write(&R, f20, 0, f20_data.len() as u64, &pattern(6, 300_000))?;
    f20_data.extend(pattern(6, 300_000));
    fs.fsync(&R, f20, 0, true)?;
    done.push(promise(&[b"d", b"f20"], f20_data));
    Ok(())
}

/// Run `work` with the device failing after `n` requests; check the volume after it heals.
/// Returns whether the device failed at all.
fn run(base: &[u8], work: Work, n: Option<u64>, once: bool, opts: &MountOptions) -> bool {
    let mem = Arc::new(MemDevice::from_bytes(base.to_vec()));
    let dev = Arc::new(FailingDevice::new(mem.clone()));
    let fs = FailFs::mount(dev.clone(), opts).expect("mount");
    // Acknowledged before the device fails: a committed file and an fsynced one.
    let root = ROOT_INO;
    let ino = new_file(&fs, root, b"committed", &pattern(1, 50_000)).unwrap();
    fs.sync_fs().unwrap();
    fs.write(&R, ino, 0, 50_000, &pattern(2, 10_000)).unwrap();
    fs.fsync(&R, ino, 0, false).unwrap();
    let mut done = vec![{
        let mut d = pattern(1, 50_000);
        d.extend(pattern(2, 10_000));
        promise(&[b"committed"], d)
    }];
    match n {
        Some(n) if once => dev.fail_once_after(n),
        Some(n) => dev.fail_after(n),
        None => {}
    }
    let r = work(&fs, &mut done);
    let failed = dev.failures() > 0;
    match r {
        Ok(()) => assert!(!failed, "n={n:?}: the work succeeded though a write failed"),
        Err(e) => {
            assert!(failed, "n={n:?}: {e:?} without a failing write");
            assert!(
                matches!(e, Errno::EIO | Errno::EROFS),
                "n={n:?}: the failing call says {e:?}"
            );
            // The volume refuses changes now, and keeps answering reads.
            let c = fs.create(&R, root, b"later", 0o644, 0).map(|_| ());
            assert_eq!(c, Err(Errno::EROFS), "n={n:?}: a change after the failure");
            assert!(fs.lookup(&R, root, b"committed").is_ok());
        }
    }
    // Unmounting writes nothing more once the volume failed, even where the device works
    // again (a transient error): what it holds is the state the failure left.
    let before = dev.requests();
    let _ = fs.destroy();
    if failed {
        assert_eq!(dev.requests(), before, "n={n:?}: writes after the failure");
    }
    drop(fs);
    dev.heal();

    // The last checkpoint is consistent as the device holds it, before recovery replays the
    // fsyncs made after it.
    let report = fsck::check(&*mem, &fsck::CheckOptions::default());
    assert!(
        report.is_clean(),
        "n={n:?}: fsck before mount: {:#?}",
        report.findings
    );
    let fs = mount(&mem);
    // The last promise for each file holds; a file written again after its last acknowledged
    // fsync may have grown by what a later (unacknowledged) write appended.
    let mut last: Vec<&Promise> = Vec::new();
    for p in done.iter().rev() {
        if !last.iter().any(|q| q.0 == p.0) {
            last.push(p);
        }
    }
    for (path, data) in last {
        let p: Vec<&[u8]> = path.iter().map(|p| p.as_slice()).collect();
        let ino = lookup_path(&fs, &p).unwrap_or_else(|| panic!("n={n:?}: {path:?} lost"));
        let mut got = contents(&fs, ino);
        if failed {
            got.truncate(data.len());
        }
        let first = got.iter().zip(data).position(|(a, b)| a != b);
        assert!(
            got == *data,
            "n={n:?}: {path:?} differs: {} bytes, want {}, first difference at {first:?}",
            got.len(),
            data.len()
        );
    }
    // Files of the base image that the work did not touch.
    for i in 30..40 {
        let ino = lookup_path(&fs, &[b"d", format!("f{i}").as_bytes()]).unwrap();
        assert_eq!(
            contents(&fs, ino),
            pattern(i, 3000 + i * 900),
            "n={n:?}: f{i}"
        );
    }
    unmount(fs);
    let after = fsck::check(&*mem, &fsck::CheckOptions::default());
    assert!(after.is_clean(), "n={n:?}: fsck: {:#?}", after.findings);
    failed
}

/// Run `work` failing at every point, for good and once; returns the number of points.
fn every_failure_point(work: Work, opts: &MountOptions) -> u64 {
    let base = base_image();
    assert!(!run(&base, work, None, false, opts));
    let mut n = 0;
    while run(&base, work, Some(n), false, opts) {
        assert!(run(&base, work, Some(n), true, opts));
        n += 1;
        assert!(n < 10_000, "the work never completes");
    }
    eprintln!("{n} failure points");
    n
}

#[test]
fn failing_writes_during_a_checkpoint() {
    let n = every_failure_point(checkpoint_work, &MountOptions::default());
    assert!(n >= 5, "only {n} failure points");
}

#[test]
fn failing_writes_during_fsync() {
    let n = every_failure_point(fsync_work, &MountOptions::default());
    assert!(n >= 5, "only {n} failure points");
}

#[test]
fn failing_writes_during_fsync_checkpoint_mode() {
    let opts = MountOptions {
        fs_options: "fsync=checkpoint".into(),
        ..MountOptions::default()
    };
    let n = every_failure_point(fsync_work, &opts);
    assert!(n >= 5, "only {n} failure points");
}
