//! Shutdown (`FS_IOC_GOINGDOWN`, `FileSystem::shutdown`): for each flag, what it commits, then
//! nothing more written (calls answer EIO, unmount writes nothing), and the next mount finds the
//! durable state: fsynced files always, more after FullSync and MetaFlush; fsck clean.

mod common;

use std::sync::Arc;

use bento_runtime::Errno;
use bento_runtime::fs::{FileSystem, ROOT_INO, SetAttr, Shutdown};
use bento_user::MemDevice;
use common::*;

fn assert_clean(dev: &Arc<MemDevice>) {
    let report = fsck::check(&**dev, &fsck::CheckOptions::default());
    let errors: Vec<String> = report.errors().map(|f| f.to_string()).collect();
    assert!(report.is_clean() && errors.is_empty(), "fsck: {errors:#?}");
}

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// A committed volume, then: `synced` written and fsynced, `loose` written only, `dir/`
/// made; then shut down with `how`. Returns the device after unmount, with the image as it
/// was right after the shutdown (to compare).
fn shut(how: Shutdown) -> (Arc<MemDevice>, Vec<u8>) {
    let dev = new_device(64);
    let fs = mount(&dev);
    let old = fs
        .create(&R, ROOT_INO, b"old", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, old, 0, 0, &data(1, 50_000)).unwrap();
    fs.sync_fs().unwrap();

    let synced = fs
        .create(&R, ROOT_INO, b"synced", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, synced, 0, 0, &data(2, 70_000)).unwrap();
    fs.fsync(&R, synced, 0, false).unwrap();
    let loose = fs
        .create(&R, ROOT_INO, b"loose", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, loose, 0, 0, &data(3, 9_000)).unwrap();
    fs.mkdir(&R, ROOT_INO, b"dir", 0o755).unwrap();

    fs.shutdown(how).unwrap();
    let after = dev.snapshot();

    // Every call answers EIO, reads too; nothing reaches the device.
    let eio = Err(Errno::EIO);
    assert_eq!(fs.write(&R, synced, 0, 0, b"more").map(|_| ()), eio);
    assert_eq!(fs.getattr(&R, old).map(|_| ()), eio);
    let mut buf = vec![0u8; 100];
    assert_eq!(fs.read(&R, old, 0, 0, &mut buf).map(|_| ()), eio);
    assert_eq!(fs.lookup(&R, ROOT_INO, b"old").map(|_| ()), eio);
    assert_eq!(fs.create(&R, ROOT_INO, b"new", 0o644, 0).map(|_| ()), eio);
    assert_eq!(fs.unlink(&R, ROOT_INO, b"old"), eio);
    let set = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(fs.setattr(&R, old, &set, None).map(|_| ()), eio);
    assert_eq!(fs.fsync(&R, synced, 0, false), eio);
    assert_eq!(fs.sync_fs(), eio);
    assert_eq!(fs.background(), eio);
    assert_eq!(fs.export_state().map(|_| ()), eio);
    fs.forget(loose, 1);
    // A second shutdown, of any kind, does nothing.
    fs.shutdown(Shutdown::FullSync).unwrap();
    // Unmount frees without writing.
    fs.destroy().unwrap();
    drop(fs);
    assert!(
        dev.snapshot() == after,
        "the device changed after the shutdown"
    );
    (dev, after)
}

/// The next mount: recovery finds `old` and `synced` always; `loose` and `dir` when `flushed`.
fn check_remount(dev: &Arc<MemDevice>, flushed: bool) {
    assert_clean(dev);
    let fs = mount(dev);
    let get = |name: &[u8]| fs.lookup(&R, ROOT_INO, name).map(|e| e.attr.ino);
    assert_eq!(read_all(&fs, get(b"old").unwrap()), data(1, 50_000));
    assert_eq!(read_all(&fs, get(b"synced").unwrap()), data(2, 70_000));
    if flushed {
        assert_eq!(read_all(&fs, get(b"loose").unwrap()), data(3, 9_000));
        assert!(get(b"dir").is_ok());
    } else {
        assert_eq!(get(b"loose"), Err(Errno::ENOENT));
        assert_eq!(get(b"dir"), Err(Errno::ENOENT));
    }
    unmount(fs);
    assert_clean(dev);
}

#[test]
fn fullsync_commits_everything_then_writes_nothing() {
    let (dev, _) = shut(Shutdown::FullSync);
    check_remount(&dev, true);
}

#[test]
fn metaflush_commits_the_metadata_then_writes_nothing() {
    let (dev, _) = shut(Shutdown::MetaFlush);
    check_remount(&dev, true);
}

#[test]
fn nologflush_writes_nothing_more_fsynced_files_survive() {
    let (dev, _) = shut(Shutdown::NoLogFlush);
    check_remount(&dev, false);
}

#[test]
fn nologflush_writes_nothing_at_all() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let f = fs.create(&R, ROOT_INO, b"f", 0o644, 0).unwrap().0.attr.ino;
    fs.write(&R, f, 0, 0, &data(4, 5_000)).unwrap();
    let before = dev.snapshot();
    fs.shutdown(Shutdown::NoLogFlush).unwrap();
    fs.destroy().unwrap();
    drop(fs);
    assert!(dev.snapshot() == before, "NoLogFlush wrote");
    assert_clean(&dev);
    let fs = mount(&dev);
    assert_eq!(
        fs.lookup(&R, ROOT_INO, b"f").map(|_| ()),
        Err(Errno::ENOENT)
    );
    unmount(fs);
}

#[test]
fn flags_from_the_ioctl() {
    assert_eq!(Shutdown::from_flag(0), Some(Shutdown::FullSync));
    assert_eq!(Shutdown::from_flag(1), Some(Shutdown::MetaFlush));
    assert_eq!(Shutdown::from_flag(2), Some(Shutdown::NoLogFlush));
    assert_eq!(Shutdown::from_flag(3), None);
}
