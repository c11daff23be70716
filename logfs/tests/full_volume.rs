//! A full volume never wedges (issue 10, item 5): filled to ENOSPC, then metadata-only changes
//! on thousands of files, sync, delete, write again. Every call either works or says ENOSPC up
//! front; none says EIO, the volume never turns failed, nothing acknowledged is lost, and fsck
//! finds the image clean.

mod common;

use bento_runtime::Errno;
use bento_runtime::fs::{FileSystem, Ino, ROOT_INO, SetAttr, TimeOrNow, Timespec};
use common::*;

fn pattern(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

fn name(i: usize) -> Vec<u8> {
    format!("f{i:05}").into_bytes()
}

/// An operation on a full volume: ENOSPC is allowed, any other error is not.
fn ok_or_enospc<T>(what: &str, r: Result<T, Errno>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Errno::ENOSPC) => None,
        Err(e) => panic!("{what}: {e:?} on a full volume (only ENOSPC is allowed)"),
    }
}

/// Create a file and drop the front end's references (as a closed, forgotten file).
fn create(fs: &Fs, name: &[u8]) -> Ino {
    let ino = fs.create(&R, ROOT_INO, name, 0o644, 0).unwrap().0.attr.ino;
    fs.release(&R, ino, 0, 0).unwrap();
    fs.forget(ino, 1);
    ino
}

/// Look a file up and drop the lookup reference.
fn lookup(fs: &Fs, name: &[u8]) -> bento_runtime::fs::FileAttr {
    let e = fs.lookup(&R, ROOT_INO, name).unwrap();
    fs.forget(e.attr.ino, 1);
    e.attr
}

/// Fill `dev` to ENOSPC with `count` small files and one large one; returns the files' sizes.
fn fill(fs: &Fs, count: usize, size: fn(usize) -> usize) -> Vec<(Ino, usize)> {
    let mut files = Vec::new();
    for i in 0..count {
        let len = size(i);
        let ino = create(fs, &name(i));
        if i % 2 == 1 {
            // Half the files get an xattr while there is room: replacing it later needs none.
            fs.setxattr(&R, ino, b"user.tag", &pattern(i, 40), 0)
                .unwrap();
        }
        let data = pattern(i, len);
        let n = ok_or_enospc("write", fs.write(&R, ino, 0, 0, &data)).unwrap_or(0);
        files.push((ino, n));
    }
    let big = create(fs, b"big");
    let chunk = vec![0x5au8; 1 << 20];
    let mut off = 0u64;
    while let Some(n) = ok_or_enospc("write big", fs.write(&R, big, 0, off, &chunk)) {
        off += n as u64;
    }
    // Top up with single blocks, then the volume is full.
    while ok_or_enospc("write big", fs.write(&R, big, 0, off, &chunk[..4096])).is_some() {
        off += 4096;
    }
    let st = fs.statfs(&R, ROOT_INO).unwrap();
    assert!(st.bfree < 64, "not full: {} blocks free", st.bfree);
    files
}

fn check_files(fs: &Fs, files: &[(Ino, usize)], from: usize) {
    for (i, &(_, len)) in files.iter().enumerate().skip(from) {
        let a = lookup(fs, &name(i));
        assert_eq!(read_all(fs, a.ino), pattern(i, len), "file {i}");
        assert_eq!(a.perm, 0o600, "file {i} mode");
        assert_eq!(a.mtime, Timespec::new(1_000_000 + i as i64, 0));
        if i % 2 == 1 {
            let x = fs.getxattr(&R, a.ino, b"user.tag").unwrap();
            assert_eq!(x, pattern(i + 1, 40), "file {i} xattr");
        }
    }
}

/// Files of one to three blocks: the volume fills with data.
#[test]
fn full_volume_of_small_files() {
    metadata_sync_delete_write(3000, |i| 4096 + (i % 5) * 1500);
}

/// Inline files (one node each): more dirty nodes than the volume's reserve has blocks.
#[test]
fn full_volume_of_inline_files() {
    metadata_sync_delete_write(6000, |i| 100 + i % 900);
}

fn metadata_sync_delete_write(count: usize, size: fn(usize) -> usize) {
    let dev = new_device(64);
    let fs = mount(&dev);
    let files = fill(&fs, count, size);

    // Overwrites in place need new log blocks but no new space.
    for (i, &(ino, len)) in files.iter().enumerate().step_by(7) {
        let data = pattern(i, len);
        let n = fs
            .write(&R, ino, 0, 0, &data)
            .expect("overwrite on a full volume");
        assert_eq!(n, len);
    }

    // One large overwrite (a long writeback run): more log blocks than a full volume's cleaner
    // frees at once, so it is written piece by piece, but it is written.
    let big = lookup(&fs, b"big");
    let (big, big_size) = (big.ino, big.size as usize);
    let run = vec![0xa5u8; big_size.min(8 << 20) & !4095];
    eprintln!("large overwrite: {} MiB", run.len() >> 20);
    assert_eq!(
        fs.write(&R, big, 0, 0, &run).expect("8 MiB overwrite"),
        run.len()
    );

    // Metadata-only changes on every file: chmod, utimes (atime and mtime), xattrs.
    let mut xattrs = 0;
    for (i, &(ino, _)) in files.iter().enumerate() {
        let a = SetAttr {
            mode: Some(0o600),
            ..SetAttr::default()
        };
        fs.setattr(&R, ino, &a, None)
            .expect("chmod on a full volume");
        let t = SetAttr {
            atime: Some(TimeOrNow::Now),
            mtime: Some(TimeOrNow::Time(Timespec::new(1_000_000 + i as i64, 0))),
            ..SetAttr::default()
        };
        fs.setattr(&R, ino, &t, None)
            .expect("utimes on a full volume");
    }
    // A sync in between, with every inode dirty: more nodes than the reserve has blocks.
    fs.sync_fs().expect("sync after chmod on a full volume");
    for (i, &(ino, _)) in files.iter().enumerate() {
        // Replacing an xattr needs no new space; a first xattr needs a block.
        let r = fs.setxattr(&R, ino, b"user.tag", &pattern(i + 1, 40), 0);
        if i % 2 == 1 {
            r.expect("replacing an xattr on a full volume");
        } else if ok_or_enospc("setxattr", r).is_some() {
            xattrs += 1;
        }
    }
    eprintln!("{xattrs} new xattrs set on the full volume");
    fs.sync_fs().expect("sync on a full volume");
    check_files(&fs, &files, 0);

    // Delete half of them: always works, and frees space.
    let before = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    for i in (0..count).step_by(2) {
        fs.unlink(&R, ROOT_INO, &name(i))
            .expect("unlink on a full volume");
    }
    let mut head = vec![0u8; run.len()];
    assert_eq!(fs.read(&R, big, 0, 0, &mut head).unwrap(), head.len());
    assert!(head == run, "the large overwrite reads back");
    fs.unlink(&R, ROOT_INO, b"big").expect("unlink big");
    fs.sync_fs().expect("sync after deleting");
    let after = fs.statfs(&R, ROOT_INO).unwrap().bfree;
    assert!(
        after > before + 1000,
        "deleting freed too little: {before} -> {after}"
    );

    // Write again: new files, and overwrites of the old ones.
    for i in 0..500 {
        let ino = create(&fs, format!("new{i}").as_bytes());
        let data = pattern(i + 7, 20_000);
        assert_eq!(fs.write(&R, ino, 0, 0, &data).unwrap(), data.len());
    }
    for i in (1..count).step_by(2) {
        let (ino, len) = files[i];
        let data = pattern(i, len);
        assert_eq!(fs.write(&R, ino, 0, 0, &data).unwrap(), len);
    }
    fs.sync_fs().unwrap();
    unmount(fs);

    let report = fsck::check(&*dev, &fsck::CheckOptions::default());
    assert!(report.is_clean(), "fsck: {:#?}", report.findings);
    let fs = mount(&dev);
    let survivors: Vec<(Ino, usize)> = files.clone();
    for i in (1..count).step_by(2) {
        let a = lookup(&fs, &name(i));
        assert_eq!(read_all(&fs, a.ino), pattern(i, survivors[i].1));
        assert_eq!(a.perm, 0o600);
    }
    for i in 0..500 {
        let a = lookup(&fs, format!("new{i}").as_bytes());
        assert_eq!(read_all(&fs, a.ino), pattern(i + 7, 20_000));
    }
    unmount(fs);
}
