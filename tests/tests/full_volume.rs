//! A full volume never wedges, over FUSE (issue 10, item 5): fill a 64 MiB volume to ENOSPC,
//! change the metadata of thousands of files (chmod, utimes, replacing xattrs), sync, delete,
//! write again. No call says EIO, the volume keeps working, nothing is lost, fsck is clean.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use logfs_tests::*;

const FILES: u64 = 4000;

fn enospc<T>(r: std::io::Result<T>, what: &str) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => None,
        Err(e) => panic!("{what} on a full volume: expected success or ENOSPC, got {e}"),
    }
}

fn data(i: u64) -> Vec<u8> {
    // Mostly inline files (one node each), some of a few blocks.
    let len = if i.is_multiple_of(8) {
        9000
    } else {
        200 + (i % 700) as usize
    };
    Gen::new(i).bytes(0, len)
}

fn check(files: &[PathBuf], which: impl Iterator<Item = usize>) {
    for i in which {
        let p = &files[i];
        assert_eq!(fs::read(p).unwrap(), data(i as u64), "{}", p.display());
        let md = fs::metadata(p).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o600, "{}", p.display());
        if !i.is_multiple_of(11) {
            // Not overwritten since utimensat.
            let mtime = std::os::unix::fs::MetadataExt::mtime(&md);
            assert_eq!(mtime, 1_000_000 + i as i64, "{}", p.display());
        }
        if i % 2 == 1 {
            assert_eq!(
                getxattr(p, "user.tag").unwrap(),
                b"second",
                "{}",
                p.display()
            );
        }
    }
}

/// Append to `p` until ENOSPC: 1 MiB pieces, then single blocks, each fsynced. With the FUSE
/// writeback cache (the default) write(2) lands in the page cache, so ENOSPC may come from the
/// fsync instead.
fn top_up(p: &Path) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    for size in [MIB as usize, 4096] {
        let buf = vec![0x5a; size];
        while enospc(f.write_all(&buf), "write").is_some()
            && enospc(f.sync_all(), "fsync").is_some()
        {}
    }
}

#[test]
fn full_volume_metadata_changes() {
    require_fuse!();
    let tmp = TempDir::new("full-meta");
    let img = tmp.join("img");
    make_image(&img, 64 * MIB);
    let mnt = tmp.subdir("mnt");
    let m = Mount::new(&img, &mnt, &[]);
    let watchdog = Watchdog::new("full_volume_metadata_changes", &m, Duration::from_secs(240));
    let root = m.path().to_path_buf();
    let dir = root.join("d");
    fs::create_dir(&dir).unwrap();
    let files: Vec<PathBuf> = (0..FILES).map(|i| dir.join(format!("f{i:05}"))).collect();
    for (i, p) in files.iter().enumerate() {
        fs::write(p, data(i as u64)).unwrap();
        if i % 2 == 1 {
            setxattr(p, "user.tag", b"first!", 0).unwrap();
        }
    }
    eprintln!("full_volume: {FILES} files written");
    top_up(&root.join("filler"));
    eprintln!("full_volume: filled");
    // The filler's failed writeback is reported once more, by the next syncfs.
    let f = File::open(&root).unwrap();
    // SAFETY: syncfs on an open descriptor.
    let r = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    let e = std::io::Error::last_os_error();
    assert!(
        r == 0 || e.raw_os_error() == Some(libc::ENOSPC),
        "syncfs: {e}"
    );
    drop(f);
    let free = free_bytes(&root);
    assert!(free < 256 * 1024, "not full: {free} bytes free");

    // Metadata-only changes on every file: none may fail, not even with ENOSPC.
    for (i, p) in files.iter().enumerate() {
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).expect("chmod");
        utimensat(p, (1_000_000, 0), (1_000_000 + i as i64, 0), false).expect("utimensat");
        if i % 2 == 1 {
            // Same size: replacing it needs no new space.
            setxattr(p, "user.tag", b"second", 0).expect("replace an xattr");
        }
    }
    syncfs(&root);
    eprintln!("full_volume: metadata changed");
    // Overwrites in place, each fsynced.
    for (i, p) in files.iter().enumerate().step_by(11) {
        let mut f = OpenOptions::new().write(true).open(p).unwrap();
        f.write_all(&data(i as u64))
            .expect("overwrite on a full volume");
        f.sync_all()
            .expect("fsync of an overwrite on a full volume");
    }
    check(&files, 0..files.len());

    // Delete: works, and frees space; then write again.
    for p in files.iter().step_by(2) {
        fs::remove_file(p).expect("unlink on a full volume");
    }
    fs::remove_file(root.join("filler")).unwrap();
    syncfs(&root);
    assert!(free_bytes(&root) > 20 * MIB, "deleting freed too little");
    let again: Vec<PathBuf> = (0..200).map(|i| root.join(format!("again{i}"))).collect();
    for (i, p) in again.iter().enumerate() {
        let mut f = File::create(p).unwrap();
        f.write_all(&Gen::new(50_000 + i as u64).bytes(0, 40_000))
            .unwrap();
        f.sync_all().unwrap();
    }
    drop(watchdog);
    m.unmount();
    assert_fsck_clean(&img);

    let m = Mount::new(&img, &mnt, &[]);
    check(&files, (1..files.len()).step_by(2));
    for (i, p) in again.iter().enumerate() {
        let want = Gen::new(50_000 + i as u64).bytes(0, 40_000);
        assert_eq!(fs::read(p).unwrap(), want, "{}", p.display());
    }
    // Full again, then everything deleted: the volume is as good as new.
    top_up(&root.join("filler"));
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_file(root.join("filler")).unwrap();
    m.unmount();
    assert_fsck_clean(&img);
}
