//! Live upgrade at the trait level: export the state of a busy mount, resume it in a new
//! instance, and carry on as if nothing happened.

mod common;

use bento_runtime::Errno;
use bento_runtime::fs::{FileSystem, Mount, MountOptions, ROOT_INO};
use bento_runtime::upgrade::{self, OPTIONAL, Put, Writer};
use common::*;
use logfs::LogFs;

#[test]
fn resume_keeps_open_files_orphans_and_counts() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let a = fs.create(&R, ROOT_INO, b"a", 0o644, 0).unwrap().0.attr.ino;
    fs.write(&R, a, 0, 0, &vec![5u8; 100_000]).unwrap();
    // An unlinked file still open: an orphan the new version must not free.
    let o = fs
        .create(&R, ROOT_INO, b"orphan", 0o644, 0)
        .unwrap()
        .0
        .attr
        .ino;
    fs.write(&R, o, 0, 0, b"still here").unwrap();
    fs.unlink(&R, ROOT_INO, b"orphan").unwrap();
    // Space promised to dirty page-cache data.
    fs.reserve(a, 1 << 20, 1 << 20).unwrap();
    let before = fs.statfs(&R, ROOT_INO).unwrap();

    let state = fs.export_state().unwrap();
    drop(fs); // the old version goes away without writing anything
    let fs = LogFs::resume(dev.clone(), &MountOptions::default(), &state).unwrap();
    assert_eq!(fs.statfs(&R, ROOT_INO).unwrap(), before);
    assert_eq!(read_all(&fs, a), vec![5u8; 100_000]);
    assert_eq!(read_all(&fs, o), b"still here");
    let stats = fs.getxattr(&R, ROOT_INO, b"trusted.logfs.stats").unwrap();
    assert!(String::from_utf8(stats).unwrap().starts_with("version "));
    // The front end's references carry over: releasing and forgetting frees the orphan.
    fs.release(&R, o, 0, 0).unwrap();
    fs.forget(o, 1);
    assert_eq!(fs.getattr(&R, o).unwrap_err(), Errno::ESTALE);
    fs.write(&R, a, 0, 1 << 20, &vec![6u8; 1 << 20]).unwrap();
    unmount(fs);
    let fs = mount(&dev);
    let a = fs.lookup(&R, ROOT_INO, b"a").unwrap().attr.ino;
    assert_eq!(fs.getattr(&R, a).unwrap().size, 2 << 20);
    unmount(fs);
    let report = fsck::check(&*dev, &fsck::CheckOptions::default());
    assert!(
        report.is_clean(),
        "{:?}",
        report.errors().map(|f| f.to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn bad_states_are_refused_and_the_old_mount_continues() {
    let dev = new_device(64);
    let fs = mount(&dev);
    let a = fs.create(&R, ROOT_INO, b"a", 0o644, 0).unwrap().0.attr.ino;
    let state = fs.export_state().unwrap();
    let resume = |s: &[u8]| LogFs::resume(dev.clone(), &MountOptions::default(), s).err();

    let mut damaged = state.clone();
    damaged[40] ^= 0x10;
    assert_eq!(resume(&damaged), Some(Errno::EINVAL));
    assert_eq!(
        resume(&upgrade::seal("otherfs", "1", 1, b"")),
        Some(Errno::EINVAL)
    );
    // A field this version must understand but does not: refused. An optional one: skipped.
    let mut w = Writer::new();
    w.field(99, |v| v.put_u32(1));
    assert_eq!(
        resume(&upgrade::seal("logfs", "9", 9, &w.finish())),
        Some(Errno::EINVAL)
    );
    let (_, payload) = upgrade::open(&state, "logfs").unwrap();
    let mut extended = payload.to_vec();
    let mut w = Writer::new();
    w.field(77 | OPTIONAL, |v| v.put_u64(3));
    extended.extend_from_slice(&w.finish());
    assert!(resume(&upgrade::seal("logfs", "9", 2, &extended)).is_none());

    // The old instance keeps working; a state from before a newer checkpoint is stale.
    fs.write(&R, a, 0, 0, b"more").unwrap();
    fs.sync_fs().unwrap();
    assert_eq!(resume(&state), Some(Errno::EINVAL));
    unmount(fs);
}
