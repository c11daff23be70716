//! Roll-forward recovery: what fsync made durable survives a crash without a checkpoint.

mod common;

use std::sync::Arc;

use bento_runtime::fs::{FileSystem, ROOT_INO, SetAttr};
use bento_user::MemDevice;
use common::*;

/// The device as a crash would leave it: everything written so far, nothing more.
fn crash(fs: Fs, dev: &Arc<MemDevice>) -> Arc<MemDevice> {
    let image = dev.snapshot();
    drop(fs);
    Arc::new(MemDevice::from_bytes(image))
}

/// fsck finds nothing wrong.
fn assert_clean(dev: &Arc<MemDevice>) {
    let report = fsck::check(&**dev, &fsck::CheckOptions::default());
    let errors: Vec<String> = report.errors().map(|f| f.to_string()).collect();
    assert!(report.is_clean() && errors.is_empty(), "fsck: {errors:#?}");
}

fn stats(fs: &Fs) -> logfs::fs::Stats {
    fs.with_volume(|v| v.stats())
}

#[test]
fn fsync_of_new_and_old_files_survives_a_crash() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let old = fs
        .create(&R, ROOT_INO, b"old", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, old, 0, 0, b"checkpointed").unwrap();
    fs.sync_fs().unwrap();
    let cps = stats(&fs).checkpoints;

    // Changes to an old file, and a new file (small, then big with a hole), each fsync'd.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    fs.write(&R, old, 0, 0, b"CHECK").unwrap();
    fs.fsync(&R, old, 0, false).unwrap();
    let d = fs.mkdir(&R, ROOT_INO, b"dir", 0o755).unwrap().attr.ino;
    fs.sync_fs().unwrap();
    let new = fs.create(&R, d, b"new", 0o600, 0).unwrap().0.attr.ino;
    fs.write(&R, new, 0, 0, &big).unwrap();
    fs.write(&R, new, 0, 20_000_000, b"tail").unwrap();
    fs.fsync(&R, new, 0, false).unwrap();
    let tiny = fs
        .create(&R, ROOT_INO, b"tiny", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, tiny, 0, 0, b"inline").unwrap();
    fs.fsync(&R, tiny, 0, false).unwrap();
    // Not fsync'd: may be lost, must not break anything.
    let lost = fs
        .create(&R, ROOT_INO, b"lost", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, lost, 0, 0, b"gone").unwrap();
    assert_eq!(
        stats(&fs).checkpoints,
        cps + 1,
        "fsync of files must not checkpoint"
    );
    assert_eq!(stats(&fs).fsyncs, 3);

    let dev2 = crash(fs, &dev);
    let fs = mount(&dev2);
    assert!(stats(&fs).recovered_nodes > 0);
    let o = fs.lookup(&R, ROOT_INO, b"old").unwrap().attr.ino;
    assert_eq!(read_all(&fs, o), b"CHECKpointed");
    let d = fs.lookup(&R, ROOT_INO, b"dir").unwrap().attr.ino;
    let n = fs.lookup(&R, d, b"new").unwrap();
    assert_eq!(n.attr.size, 20_000_004);
    assert_eq!(n.attr.perm, 0o600);
    let got = read_all(&fs, n.attr.ino);
    assert_eq!(&got[..big.len()], &big[..]);
    assert!(got[big.len()..20_000_000].iter().all(|&b| b == 0));
    assert_eq!(&got[20_000_000..], b"tail");
    let t = fs.lookup(&R, ROOT_INO, b"tiny").unwrap().attr.ino;
    assert_eq!(read_all(&fs, t), b"inline");
    assert!(fs.lookup(&R, ROOT_INO, b"lost").is_err());
    unmount(fs);
    // The recovered volume is consistent.
    assert_clean(&dev2);
}

#[test]
fn truncate_and_rewrite_after_fsync() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let f = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0.attr.ino;
    fs.write(&R, f, 0, 0, &vec![1u8; 8_000_000]).unwrap();
    fs.sync_fs().unwrap();
    fs.write(&R, f, 0, 4096, &vec![2u8; 4096]).unwrap();
    fs.fsync(&R, f, 0, false).unwrap();
    fs.setattr(
        &R,
        f,
        &SetAttr {
            size: Some(10_000),
            ..Default::default()
        },
        None,
    )
    .unwrap();
    fs.fsync(&R, f, 0, false).unwrap();
    fs.write(&R, f, 0, 10_000, &vec![3u8; 5000]).unwrap();
    fs.fsync(&R, f, 0, true).unwrap();
    let dev2 = crash(fs, &dev);
    let fs = mount(&dev2);
    let got = read_all(&fs, f);
    let mut want = vec![1u8; 15_000];
    want[4096..8192].fill(2);
    want[10_000..].fill(3);
    assert_eq!(got.len(), want.len());
    assert!(got == want);
    unmount(fs);
    assert_clean(&dev2);
}
