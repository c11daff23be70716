//! `logfs-fuse -o ro`: everything reads as it was written, every kind of change fails with
//! EROFS, and the image is not written at all.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use logfs_tests::*;

fn populate(root: &Path) {
    fs::create_dir(root.join("dir")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    write_gen_file(&root.join("dir/file"), Gen::new(1), 3 * MIB + 5).unwrap();
    write_file(&root.join("small"), b"small file\n");
    symlink("dir/file", root.join("link")).unwrap();
    fs::hard_link(root.join("small"), root.join("dir/hard")).unwrap();
    setxattr(&root.join("small"), "user.k", b"v", 0).unwrap();
    utimensat(&root.join("small"), (1, 2), (3, 4), false).unwrap();
}

fn check(root: &Path) {
    verify_gen_file(&root.join("dir/file"), Gen::new(1), 3 * MIB + 5);
    assert_eq!(fs::read(root.join("small")).unwrap(), b"small file\n");
    assert_eq!(
        fs::read(root.join("link")).unwrap().len() as u64,
        3 * MIB + 5
    );
    assert_eq!(
        fs::read_link(root.join("link")).unwrap(),
        Path::new("dir/file")
    );
    assert_eq!(fs::metadata(root.join("dir/hard")).unwrap().nlink(), 2);
    assert_eq!(getxattr(&root.join("small"), "user.k").unwrap(), b"v");
    assert_eq!(listxattr(&root.join("small")).unwrap(), ["user.k"]);
    let md = fs::metadata(root.join("small")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (3, 4));
    let mut names: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["dir", "empty", "link", "small"]);
}

fn erofs<T: std::fmt::Debug>(r: std::io::Result<T>, what: &str) {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => {}
        other => panic!("{what} on a read-only mount: expected EROFS, got {other:?}"),
    }
}

#[test]
fn readonly_mount() {
    require_fuse!();
    let tmp = TempDir::new("readonly");
    let img = tmp.join("img");
    make_image(&img, 64 * MIB);
    let mnt = tmp.subdir("mnt");
    let m = Mount::new(&img, &mnt, &[]);
    populate(m.path());
    check(m.path());
    m.unmount();
    let before = fs::read(&img).unwrap();

    let m = Mount::new(&img, &mnt, &["ro"]);
    let info = mount_info(&mnt).unwrap();
    let flags = info.split(' ').nth(5).unwrap();
    assert!(
        flags.split(',').any(|f| f == "ro"),
        "not mounted read-only: {info}"
    );
    let r = m.path();
    check(r);
    // Reading does not need write access anywhere: open O_RDONLY, O_NOATIME, readdir.
    let mut s = String::new();
    File::open(r.join("small"))
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "small file\n");
    assert!(statvfs(r).unwrap().f_flag & libc::ST_RDONLY != 0);

    erofs(File::create(r.join("new")), "create");
    erofs(
        OpenOptions::new().write(true).open(r.join("small")),
        "open O_WRONLY",
    );
    erofs(
        OpenOptions::new().append(true).open(r.join("small")),
        "open O_APPEND",
    );
    erofs(
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(r.join("small")),
        "open O_TRUNC",
    );
    erofs(fs::create_dir(r.join("newdir")), "mkdir");
    erofs(fs::remove_file(r.join("small")), "unlink");
    erofs(fs::remove_dir(r.join("empty")), "rmdir");
    erofs(fs::rename(r.join("small"), r.join("moved")), "rename");
    erofs(
        renameat2(&r.join("small"), &r.join("link"), RENAME_EXCHANGE),
        "RENAME_EXCHANGE",
    );
    erofs(symlink("x", r.join("newlink")), "symlink");
    erofs(fs::hard_link(r.join("small"), r.join("newhard")), "link");
    erofs(chmod(&r.join("small"), 0o600), "chmod");
    erofs(chown(&r.join("small"), 1, 1), "chown");
    erofs(
        utimensat(&r.join("small"), (5, 5), (5, 5), false),
        "utimensat",
    );
    erofs(setxattr(&r.join("small"), "user.n", b"x", 0), "setxattr");
    erofs(removexattr(&r.join("small"), "user.k"), "removexattr");
    erofs(mknod(&r.join("fifo"), libc::S_IFIFO | 0o644, 0), "mknod");
    let path = cstr(&r.join("small"));
    // SAFETY: a valid path.
    erofs(
        if unsafe { libc::truncate(path.as_ptr(), 0) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        },
        "truncate",
    );
    check(r);
    m.unmount();

    // A read-only mount writes nothing, not even a checkpoint.
    let after = fs::read(&img).unwrap();
    assert!(
        before == after,
        "the image changed during a read-only mount"
    );
    assert_fsck_clean(&img);

    // And it still mounts read-write afterwards.
    let m = Mount::new(&img, &mnt, &[]);
    check(m.path());
    write_file(&m.join("new"), b"rw again");
    m.unmount();
    assert_fsck_clean(&img);
}
