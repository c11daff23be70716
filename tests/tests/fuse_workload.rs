//! A realistic workload through `logfs-fuse` on a 2 GiB image: a copied source tree, a
//! 200 MiB file, hard links, symlinks, a 1 GiB sparse file, renames (plain, RENAME_NOREPLACE,
//! RENAME_EXCHANGE), xattrs, truncation, chmod/chown/utimensat, special files, statfs
//! accounting and an unlinked-but-open file. Everything is checked, the image is unmounted
//! and checked with `fsck.logfs -n`, remounted, checked again, and fsck'd again.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use logfs_tests::*;

const BIG_SIZE: u64 = 200 * MIB;
const BIG_SEED: u64 = 0xB16_F11E;
const SPARSE_SIZE: u64 = GIB;
const SPARSE_AT: [u64; 3] = [0, 512 * MIB, GIB - 4 * KIB];

/// The tree to copy: /usr/include, or a fallback if it is missing or small.
fn source_tree() -> PathBuf {
    for candidate in [
        "/usr/include",
        "/usr/share/doc",
        "/usr/share/locale",
        "/usr/lib",
    ] {
        let p = Path::new(candidate);
        if p.is_dir() && count_entries(p) > 1000 {
            return p.to_path_buf();
        }
    }
    panic!("no source tree with more than 1000 entries (tried /usr/include, /usr/share/doc, ...)");
}

/// Poll `cond` for up to 10 s: FUSE sends RELEASE and FORGET asynchronously, so freeing an
/// unlinked file's space can lag the close that allowed it.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fuse_workload() {
    require_fuse!();
    let src = source_tree();
    let src_entries = count_entries(&src);
    assert!(
        src_entries > 1000,
        "{}: only {src_entries} entries",
        src.display()
    );
    let mut timer = Timer::new("fuse_workload");

    let tmp = TempDir::new("workload");
    let image = tmp.join("image");
    make_image(&image, 2 * GIB);
    let mnt = tmp.join("mnt");
    let m = Mount::new(&image, &mnt, &[]);
    let root = m.path().to_path_buf();
    timer.lap("mkfs + mount");

    // The copied tree.
    let out = run(std::process::Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(root.join("tree")));
    assert!(out.success(), "cp -a into logfs failed: {out}");
    let n = assert_same_tree(&src, &root.join("tree"));
    assert_eq!(n, src_entries);
    eprintln!("copied and compared {n} entries of {}", src.display());
    timer.lap("cp -a + compare");

    // A 200 MiB file: the free space shrinks by about as much.
    syncfs(&root);
    let free_before = free_bytes(&root);
    write_gen_file(&root.join("big"), Gen::new(BIG_SEED), BIG_SIZE).unwrap();
    syncfs(&root);
    let used = free_before - free_bytes(&root);
    assert!(
        (BIG_SIZE..=BIG_SIZE + BIG_SIZE / 50).contains(&used),
        "writing {BIG_SIZE} bytes used {used} bytes of free space"
    );
    verify_gen_file(&root.join("big"), Gen::new(BIG_SEED), BIG_SIZE);
    timer.lap("200 MiB file");

    hard_links_setup(&root);
    symlinks_setup(&root);
    sparse_setup(&root);
    renames_setup(&root);
    xattrs_setup(&root);
    truncate_setup(&root);
    attrs_setup(&root);
    special_setup(&root);
    fallocate_setup(&root);
    statfs_delete(&root);
    unlinked_open(&root);
    timer.lap("links, symlinks, sparse, renames, xattrs, truncate, attrs, statfs, unlinked");

    check_all(&src, &root);
    syncfs(&root);
    let free_at_unmount = statvfs(&root).unwrap();
    timer.lap("check all");

    m.unmount();
    assert_fsck_clean(&image);
    timer.lap("umount + fsck");

    let m = Mount::new(&image, &mnt, &[]);
    let free_at_mount = statvfs(&root).unwrap();
    assert_eq!(
        (free_at_mount.f_bfree, free_at_mount.f_blocks),
        (free_at_unmount.f_bfree, free_at_unmount.f_blocks),
        "free blocks changed across the remount"
    );
    check_all(&src, &root);
    timer.lap("remount + check all");
    m.unmount();
    assert_fsck_clean(&image);
    timer.lap("umount + fsck");
    eprintln!("fuse_workload: {:.1?}", timer.total());
}

/// Everything the setup steps left, checked before and after the remount.
fn check_all(src: &Path, root: &Path) {
    let n = assert_same_tree(src, &root.join("tree"));
    assert_eq!(n, count_entries(src));
    verify_gen_file(&root.join("big"), Gen::new(BIG_SEED), BIG_SIZE);
    hard_links_check(root);
    symlinks_check(root);
    sparse_check(root);
    renames_check(root);
    xattrs_check(root);
    truncate_check(root);
    attrs_check(root);
    special_check(root);
    fallocate_check(root);
    let names: Vec<String> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        [
            "attr", "big", "falloc", "links", "open", "ren", "sparse", "special", "statfs", "sym",
            "tree", "trunc", "xattr"
        ]
    );
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()))
        .ino()
}

fn nlink(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().nlink()
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn enoent(p: &Path) {
    assert_eq!(
        errno(fs::symlink_metadata(p)),
        Some(libc::ENOENT),
        "{} should not exist",
        p.display()
    );
}

// --- Hard links ------------------------------------------------------------------------------

fn link_content() -> Vec<u8> {
    let mut v = b"hard link content\n".repeat(300);
    v.extend_from_slice(b"appended through l2\n");
    v
}

fn hard_links_setup(root: &Path) {
    let d = root.join("links");
    fs::create_dir_all(d.join("sub")).unwrap();
    write_file(&d.join("orig"), &b"hard link content\n".repeat(300));
    let orig_ino = ino(&d.join("orig"));
    for name in ["l1", "l2", "sub/l3", "l4"] {
        fs::hard_link(d.join("orig"), d.join(name)).unwrap();
    }
    for name in ["orig", "l1", "l2", "sub/l3", "l4"] {
        assert_eq!(ino(&d.join(name)), orig_ino, "{name}");
        assert_eq!(nlink(&d.join(name)), 5, "{name}");
    }
    // Write through one name, read through another.
    let mut f = OpenOptions::new().append(true).open(d.join("l2")).unwrap();
    f.write_all(b"appended through l2\n").unwrap();
    drop(f);
    assert_eq!(read(&d.join("orig")), link_content());
    assert_eq!(read(&d.join("sub/l3")), link_content());
    // Errors: an existing name, a directory.
    assert_eq!(
        errno(fs::hard_link(d.join("orig"), d.join("l1"))),
        Some(libc::EEXIST)
    );
    assert_eq!(
        errno(fs::hard_link(d.join("sub"), d.join("subdir-link"))),
        Some(libc::EPERM)
    );
    // Unlink two of the names.
    fs::remove_file(d.join("orig")).unwrap();
    fs::remove_file(d.join("l4")).unwrap();
    hard_links_check(root);
}

fn hard_links_check(root: &Path) {
    let d = root.join("links");
    enoent(&d.join("orig"));
    enoent(&d.join("l4"));
    let i = ino(&d.join("l1"));
    for name in ["l1", "l2", "sub/l3"] {
        let p = d.join(name);
        assert_eq!(ino(&p), i, "{name}: inode");
        assert_eq!(nlink(&p), 3, "{name}: st_nlink");
        assert_eq!(read(&p), link_content(), "{name}: contents");
    }
    // A directory's link count: 2 + its subdirectories.
    assert_eq!(nlink(&d), 3, "links/: st_nlink");
    assert_eq!(nlink(&d.join("sub")), 2, "links/sub: st_nlink");
}

// --- Symlinks --------------------------------------------------------------------------------

fn long_target() -> String {
    "abcdefghi/".repeat(400)
}

fn symlink_table(root: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("rel", "target.txt".into()),
        ("relup", "../links/l1".into()),
        (
            "abs",
            root.join("sym/target.txt").to_string_lossy().into_owned(),
        ),
        ("dangling", "does/not/exist".into()),
        ("long", long_target()),
        ("loop", "loop".into()),
    ]
}

fn symlinks_setup(root: &Path) {
    let d = root.join("sym");
    fs::create_dir(&d).unwrap();
    write_file(&d.join("target.txt"), b"the target\n");
    for (name, target) in symlink_table(root) {
        symlink(&target, d.join(name)).unwrap();
    }
    assert_eq!(
        errno(symlink("x", d.join("rel"))),
        Some(libc::EEXIST),
        "symlink over an existing name"
    );
    symlinks_check(root);
}

fn symlinks_check(root: &Path) {
    let d = root.join("sym");
    for (name, target) in symlink_table(root) {
        let p = d.join(name);
        assert_eq!(
            fs::read_link(&p).unwrap().to_str().unwrap(),
            target,
            "readlink {name}"
        );
        let md = fs::symlink_metadata(&p).unwrap();
        assert!(md.file_type().is_symlink(), "{name}: not a symlink");
        assert_eq!(md.len(), target.len() as u64, "{name}: st_size");
    }
    assert_eq!(read(&d.join("rel")), b"the target\n");
    assert_eq!(read(&d.join("abs")), b"the target\n");
    assert_eq!(read(&d.join("relup")), link_content());
    assert_eq!(errno(fs::metadata(d.join("dangling"))), Some(libc::ENOENT));
    assert_eq!(errno(File::open(d.join("loop"))), Some(libc::ELOOP));
    assert_eq!(
        errno(File::open(d.join("long"))),
        Some(libc::ENOENT),
        "following the long dangling symlink"
    );
}

// --- A 1 GiB sparse file ---------------------------------------------------------------------

fn sparse_block(i: usize) -> Vec<u8> {
    Gen::new(100 + i as u64).bytes(0, 4096)
}

fn sparse_setup(root: &Path) {
    fs::create_dir(root.join("sparse")).unwrap();
    let p = root.join("sparse/file");
    let f = File::create(&p).unwrap();
    for (i, &off) in SPARSE_AT.iter().enumerate() {
        pwrite_all(&f, &sparse_block(i), off);
    }
    f.sync_all().unwrap();
    drop(f);
    sparse_check(root);
}

fn sparse_check(root: &Path) {
    let p = root.join("sparse/file");
    let f = File::open(&p).unwrap();
    let md = f.metadata().unwrap();
    assert_eq!(md.len(), SPARSE_SIZE);
    assert!(
        md.blocks() * 512 <= 256 * KIB,
        "a 1 GiB file with 12 KiB of data has st_blocks {}",
        md.blocks()
    );
    for (i, &off) in SPARSE_AT.iter().enumerate() {
        assert_eq!(read_at(&f, off, 4096), sparse_block(i), "block at {off}");
    }
    // Holes read as zeros: around and between the written blocks.
    for (off, len) in [
        (4096, MIB - 4096),
        (256 * MIB - MIB / 2, MIB),
        (512 * MIB - 64 * KIB, 64 * KIB),
        (512 * MIB + 4096, 2 * MIB),
        (GIB - 4 * MIB, 4 * MIB - 4096),
    ] {
        let got = read_at(&f, off, len as usize);
        assert_eq!(got.len() as u64, len, "short read at {off}");
        assert!(
            got.iter().all(|&b| b == 0),
            "hole at {off}+{len} is not zeros"
        );
    }
    // A read across a block edge into a hole.
    let got = read_at(&f, 512 * MIB + 2048, 4096);
    assert_eq!(got[..2048], sparse_block(1)[2048..]);
    assert!(got[2048..].iter().all(|&b| b == 0));
    // At and past the end of the file.
    assert!(read_at(&f, SPARSE_SIZE, 4096).is_empty());
    assert!(read_at(&f, SPARSE_SIZE + GIB, 4096).is_empty());
}

// --- Renames ---------------------------------------------------------------------------------

fn renames_setup(root: &Path) {
    let d = root.join("ren");
    fs::create_dir(&d).unwrap();

    // rename over an existing file: the new contents under the old name; the old inode is
    // gone (only an open descriptor still reaches it, with st_nlink 0).
    write_file(&d.join("a"), b"old a\n");
    write_file(&d.join("b"), b"new b\n");
    let ino_b = ino(&d.join("b"));
    let mut old = File::open(d.join("a")).unwrap();
    fs::rename(d.join("b"), d.join("a")).unwrap();
    assert_eq!(read(&d.join("a")), b"new b\n");
    assert_eq!(ino(&d.join("a")), ino_b);
    enoent(&d.join("b"));
    assert_eq!(old.metadata().unwrap().nlink(), 0, "the replaced inode");
    let mut s = String::new();
    old.read_to_string(&mut s).unwrap();
    assert_eq!(
        s, "old a\n",
        "the replaced inode through an open descriptor"
    );
    drop(old);

    // RENAME_NOREPLACE.
    write_file(&d.join("x"), b"X");
    write_file(&d.join("y"), b"Y");
    assert_eq!(
        errno(renameat2(&d.join("x"), &d.join("y"), RENAME_NOREPLACE)),
        Some(libc::EEXIST)
    );
    assert_eq!(read(&d.join("x")), b"X");
    assert_eq!(read(&d.join("y")), b"Y");
    renameat2(&d.join("x"), &d.join("z"), RENAME_NOREPLACE).unwrap();
    enoent(&d.join("x"));
    assert_eq!(read(&d.join("z")), b"X");

    // RENAME_EXCHANGE: two files, a file and a directory, and a missing target.
    let (iz, iy) = (ino(&d.join("z")), ino(&d.join("y")));
    renameat2(&d.join("z"), &d.join("y"), RENAME_EXCHANGE).unwrap();
    assert_eq!((ino(&d.join("z")), ino(&d.join("y"))), (iy, iz));
    write_file(&d.join("p"), b"P");
    fs::create_dir(d.join("q")).unwrap();
    write_file(&d.join("q/inner"), b"I");
    renameat2(&d.join("p"), &d.join("q"), RENAME_EXCHANGE).unwrap();
    assert_eq!(
        errno(renameat2(&d.join("p"), &d.join("nothing"), RENAME_EXCHANGE)),
        Some(libc::ENOENT)
    );
    assert_eq!(
        errno(renameat2(
            &d.join("p"),
            &d.join("q"),
            RENAME_EXCHANGE | RENAME_NOREPLACE
        )),
        Some(libc::EINVAL)
    );

    // Directories: into another directory, over an empty one, not over a non-empty one.
    fs::create_dir_all(d.join("d1/deep")).unwrap();
    write_file(&d.join("d1/deep/f"), b"deep");
    fs::create_dir(d.join("d2")).unwrap();
    fs::create_dir(d.join("empty")).unwrap();
    fs::rename(d.join("d1"), d.join("d2/moved")).unwrap();
    fs::create_dir(d.join("d3")).unwrap();
    fs::rename(d.join("d3"), d.join("empty")).unwrap();
    assert_eq!(
        errno(fs::rename(d.join("empty"), d.join("d2"))),
        Some(libc::ENOTEMPTY)
    );
    assert_eq!(
        errno(fs::rename(d.join("d2"), d.join("d2/moved/inside"))),
        Some(libc::EINVAL),
        "a directory into its own subtree"
    );
    renames_check(root);
}

fn renames_check(root: &Path) {
    let d = root.join("ren");
    assert_eq!(read(&d.join("a")), b"new b\n");
    enoent(&d.join("b"));
    enoent(&d.join("x"));
    assert_eq!(read(&d.join("z")), b"Y");
    assert_eq!(read(&d.join("y")), b"X");
    assert!(fs::symlink_metadata(d.join("p")).unwrap().is_dir());
    assert_eq!(read(&d.join("p/inner")), b"I");
    assert_eq!(read(&d.join("q")), b"P");
    assert_eq!(read(&d.join("d2/moved/deep/f")), b"deep");
    enoent(&d.join("d1"));
    enoent(&d.join("d3"));
    assert!(fs::read_dir(d.join("empty")).unwrap().next().is_none());
    // ren/ has p, d2, empty as subdirectories; d2 has moved.
    assert_eq!(nlink(&d), 5, "ren/: st_nlink");
    assert_eq!(nlink(&d.join("d2")), 3, "ren/d2: st_nlink");
    assert_eq!(nlink(&d.join("p")), 2, "ren/p: st_nlink");
    // `..` follows the moves.
    assert_eq!(ino(&d.join("d2/moved/..")), ino(&d.join("d2")));
    assert_eq!(ino(&d.join("p/..")), ino(&d));
}

// --- Extended attributes ---------------------------------------------------------------------

fn big_value() -> Vec<u8> {
    Gen::new(77).bytes(0, 2000)
}

fn xattrs_setup(root: &Path) {
    let d = root.join("xattr");
    fs::create_dir(&d).unwrap();
    let f = d.join("f");
    write_file(&f, b"has xattrs");
    setxattr(&f, "user.a", b"alpha", 0).unwrap();
    setxattr(&f, "user.empty", b"", 0).unwrap();
    setxattr(&f, "user.big", &big_value(), 0).unwrap();
    setxattr(&f, "user.gone", b"soon", 0).unwrap();
    assert_eq!(
        errno(setxattr(&f, "user.a", b"again", libc::XATTR_CREATE)),
        Some(libc::EEXIST)
    );
    assert_eq!(
        errno(setxattr(&f, "user.nope", b"x", libc::XATTR_REPLACE)),
        Some(libc::ENODATA)
    );
    setxattr(&f, "user.a", b"alpha, replaced", libc::XATTR_REPLACE).unwrap();
    assert_eq!(
        listxattr(&f).unwrap(),
        ["user.a", "user.big", "user.empty", "user.gone"]
    );
    removexattr(&f, "user.gone").unwrap();
    assert_eq!(errno(getxattr(&f, "user.gone")), Some(libc::ENODATA));
    assert_eq!(errno(removexattr(&f, "user.gone")), Some(libc::ENODATA));
    setxattr(&d, "user.on-dir", b"directory value", 0).unwrap();
    xattrs_check(root);
}

fn xattrs_check(root: &Path) {
    let d = root.join("xattr");
    let f = d.join("f");
    assert_eq!(listxattr(&f).unwrap(), ["user.a", "user.big", "user.empty"]);
    assert_eq!(getxattr(&f, "user.a").unwrap(), b"alpha, replaced");
    assert_eq!(getxattr(&f, "user.empty").unwrap(), b"");
    assert_eq!(getxattr(&f, "user.big").unwrap(), big_value());
    assert_eq!(errno(getxattr(&f, "user.gone")), Some(libc::ENODATA));
    assert_eq!(read(&f), b"has xattrs");
    assert_eq!(getxattr(&d, "user.on-dir").unwrap(), b"directory value");
}

// --- Truncation ------------------------------------------------------------------------------

fn trunc_expected() -> Vec<u8> {
    let mut v = Gen::new(7).bytes(0, 5000);
    v.resize(300_000, 0);
    v
}

fn truncate_setup(root: &Path) {
    let d = root.join("trunc");
    fs::create_dir(&d).unwrap();
    let p = d.join("f");
    write_file(&p, &Gen::new(7).bytes(0, 100_000));
    fsync_path(&p);
    // Down, into the middle of a block, then up: the old bytes past 5000 must not come back.
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(5000).unwrap();
    f.sync_all().unwrap();
    assert_eq!(fs::metadata(&p).unwrap().len(), 5000);
    assert_eq!(read(&p), Gen::new(7).bytes(0, 5000));
    f.set_len(300_000).unwrap();
    drop(f);
    assert_eq!(read(&p), trunc_expected());

    // A large file down to nothing and written again.
    let g = d.join("g");
    write_gen_file(&g, Gen::new(8), 10 * MIB).unwrap();
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&g)
        .unwrap();
    f.write_all(b"new").unwrap();
    drop(f);
    assert_eq!(read(&g), b"new");

    // Truncate through a path (truncate(2)) and then write past the end.
    let h = d.join("h");
    write_file(&h, &[0xAA; 10_000]);
    let f = OpenOptions::new().write(true).open(&h).unwrap();
    f.set_len(4097).unwrap();
    f.write_all_at(b"tail", 20_000).unwrap();
    drop(f);
    truncate_check(root);
}

fn truncate_check(root: &Path) {
    let d = root.join("trunc");
    assert_eq!(read(&d.join("f")), trunc_expected());
    assert_eq!(read(&d.join("g")), b"new");
    let h = read(&d.join("h"));
    assert_eq!(h.len(), 20_004);
    assert!(h[..4097].iter().all(|&b| b == 0xAA));
    assert!(h[4097..20_000].iter().all(|&b| b == 0));
    assert_eq!(&h[20_000..], b"tail");
}

// --- chmod, chown, utimensat -----------------------------------------------------------------

const ATIME: (i64, i64) = (1_000_000_000, 123_456_789);
const MTIME: (i64, i64) = (1_500_000_000, 987_654_321);
const FAR_MTIME: (i64, i64) = (4_000_000_000, 999_999_999);
const OLD_MTIME: (i64, i64) = (-31_536_000, 500);
const LINK_MTIME: (i64, i64) = (1_234_567_890, 1);

fn attrs_setup(root: &Path) {
    let d = root.join("attr");
    fs::create_dir(&d).unwrap();
    let f = d.join("f");
    write_file(&f, b"attrs");
    let before = fs::metadata(&f).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    chown(&f, 1234, 5678).unwrap();
    chmod(&f, 0o4751).unwrap();
    utimensat(&f, ATIME, MTIME, false).unwrap();
    let after = fs::metadata(&f).unwrap();
    assert!(
        (after.ctime(), after.ctime_nsec()) > (before.ctime(), before.ctime_nsec()),
        "ctime did not move on chmod/chown"
    );
    // Directories: sticky bit, times far in the future and before 1970.
    let g = d.join("g");
    fs::create_dir(&g).unwrap();
    chmod(&g, 0o1777).unwrap();
    utimensat(&g, FAR_MTIME, FAR_MTIME, false).unwrap();
    let h = d.join("h");
    write_file(&h, b"");
    utimensat(&h, OLD_MTIME, OLD_MTIME, false).unwrap();
    // A symlink's own owner and times.
    let l = d.join("l");
    symlink("f", &l).unwrap();
    lchown(&l, 42, 43).unwrap();
    utimensat(&l, LINK_MTIME, LINK_MTIME, true).unwrap();
    attrs_check(root);
}

fn attrs_check(root: &Path) {
    let d = root.join("attr");
    let md = fs::metadata(d.join("f")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o4751, "attr/f: mode");
    assert_eq!((md.uid(), md.gid()), (1234, 5678), "attr/f: owner");
    assert_eq!((md.atime(), md.atime_nsec()), ATIME, "attr/f: atime");
    assert_eq!((md.mtime(), md.mtime_nsec()), MTIME, "attr/f: mtime");
    let md = fs::metadata(d.join("g")).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o1777, "attr/g: mode");
    assert_eq!((md.mtime(), md.mtime_nsec()), FAR_MTIME, "attr/g: mtime");
    let md = fs::metadata(d.join("h")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), OLD_MTIME, "attr/h: mtime");
    let md = fs::symlink_metadata(d.join("l")).unwrap();
    assert_eq!((md.uid(), md.gid()), (42, 43), "attr/l: owner");
    assert_eq!((md.mtime(), md.mtime_nsec()), LINK_MTIME, "attr/l: mtime");
    assert_eq!(md.mode(), 0o120777, "attr/l: mode");
}

// --- Special files ---------------------------------------------------------------------------

fn special_setup(root: &Path) {
    let d = root.join("special");
    fs::create_dir(&d).unwrap();
    mknod(&d.join("fifo"), libc::S_IFIFO | 0o640, 0).unwrap();
    mknod(&d.join("sock"), libc::S_IFSOCK | 0o600, 0).unwrap();
    mknod(&d.join("chr"), libc::S_IFCHR | 0o644, libc::makedev(1, 3)).unwrap();
    mknod(
        &d.join("blk"),
        libc::S_IFBLK | 0o600,
        libc::makedev(259, 70000),
    )
    .unwrap();
    special_check(root);
}

fn special_check(root: &Path) {
    let d = root.join("special");
    for (name, mode, rdev) in [
        ("fifo", libc::S_IFIFO | 0o640, 0),
        ("sock", libc::S_IFSOCK | 0o600, 0),
        ("chr", libc::S_IFCHR | 0o644, libc::makedev(1, 3)),
        ("blk", libc::S_IFBLK | 0o600, libc::makedev(259, 70000)),
    ] {
        let md = fs::symlink_metadata(d.join(name)).unwrap();
        assert_eq!(md.mode(), mode, "special/{name}: mode");
        assert_eq!(md.rdev(), rdev, "special/{name}: rdev");
        assert_eq!(md.len(), 0, "special/{name}: size");
    }
}

// --- fallocate ------------------------------------------------------------------------------

const FALLOC_FL_KEEP_SIZE: i32 = 0x01;
const FALLOC_FL_PUNCH_HOLE: i32 = 0x02;

fn fallocate_setup(root: &Path) {
    let d = root.join("falloc");
    fs::create_dir(&d).unwrap();
    syncfs(root);
    let free0 = free_bytes(root);

    // Mode 0: the size grows, the space is taken, the range reads as zeros.
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(d.join("alloc"))
        .unwrap();
    fallocate(&f, 0, 0, 8 * MIB).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 8 * MIB);
    assert!(
        f.metadata().unwrap().blocks() * 512 >= 8 * MIB,
        "st_blocks after fallocate"
    );
    let taken = free0 - free_bytes(root);
    assert!(
        (8 * MIB..=8 * MIB + MIB).contains(&taken),
        "fallocate of 8 MiB took {taken} bytes of free space"
    );
    // Writing into the reserved range takes no more space.
    f.write_all_at(&Gen::new(21).bytes(0, 2 * MIB as usize), MIB)
        .unwrap();
    f.sync_all().unwrap();
    assert!(free0 - free_bytes(root) <= taken + 64 * KIB);

    // KEEP_SIZE past the end: space but no size.
    fallocate(&f, FALLOC_FL_KEEP_SIZE, 8 * MIB, 4 * MIB).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 8 * MIB);
    assert!(f.metadata().unwrap().blocks() * 512 >= 12 * MIB);

    // PUNCH_HOLE (with KEEP_SIZE, as Linux requires), unaligned at both ends.
    fallocate(
        &f,
        FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
        MIB + 1000,
        MIB,
    )
    .unwrap();
    assert_eq!(
        errno(fallocate(&f, FALLOC_FL_PUNCH_HOLE, 0, 4096)),
        Some(libc::EOPNOTSUPP),
        "PUNCH_HOLE without KEEP_SIZE"
    );
    // ZERO_RANGE, COLLAPSE_RANGE and INSERT_RANGE: tests/fuse_falloc.rs.
    drop(f);
    fallocate_check(root);
}

fn falloc_expected() -> Vec<u8> {
    let mut v = vec![0u8; 8 * MIB as usize];
    let m = MIB as usize;
    v[m..3 * m].copy_from_slice(&Gen::new(21).bytes(0, 2 * m));
    v[m + 1000..2 * m + 1000].fill(0);
    v
}

fn fallocate_check(root: &Path) {
    let p = root.join("falloc/alloc");
    assert!(read(&p) == falloc_expected(), "falloc/alloc: contents");
    let md = fs::metadata(&p).unwrap();
    assert_eq!(md.len(), 8 * MIB);
    // 12 MiB reserved or written, less the 1 MiB - 4 KiB of whole blocks punched out.
    let want = 12 * MIB - (MIB - 4096);
    assert!(
        (want..=want + 256 * KIB).contains(&(md.blocks() * 512)),
        "falloc/alloc: st_blocks {} (expected about {want} bytes)",
        md.blocks()
    );
}

// --- statfs after deleting -------------------------------------------------------------------

fn statfs_delete(root: &Path) {
    let d = root.join("statfs");
    fs::create_dir(&d).unwrap();
    let p = d.join("doomed");
    write_gen_file(&p, Gen::new(9), 64 * MIB).unwrap();
    syncfs(root);
    let full = free_bytes(root);
    fs::remove_file(&p).unwrap();
    eventually(
        "free space to grow by 64 MiB after deleting a 64 MiB file",
        || {
            syncfs(root);
            let freed = free_bytes(root).saturating_sub(full);
            (64 * MIB..=66 * MIB).contains(&freed)
        },
    );
}

// --- An unlinked file that is still open -----------------------------------------------------

fn unlinked_open(root: &Path) {
    let d = root.join("open");
    fs::create_dir(&d).unwrap();
    let p = d.join("f");
    write_gen_file(&p, Gen::new(11), 8 * MIB).unwrap();
    let mut f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    fs::remove_file(&p).unwrap();
    enoent(&p);
    assert!(
        fs::read_dir(&d).unwrap().next().is_none(),
        "open/ is not empty"
    );
    syncfs(root);
    let free_open = free_bytes(root);
    assert_eq!(f.metadata().unwrap().nlink(), 0);
    // Still readable and writable through the descriptor.
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap();
    assert!(got == Gen::new(11).bytes(0, 8 * MIB as usize), "contents");
    f.write_all(b"more after unlink").unwrap();
    f.sync_all().unwrap();
    f.seek(SeekFrom::Start(8 * MIB)).unwrap();
    let mut tail = String::new();
    f.read_to_string(&mut tail).unwrap();
    assert_eq!(tail, "more after unlink");
    drop(f);
    eventually("the unlinked file's 8 MiB to be freed when closed", || {
        syncfs(root);
        free_bytes(root).saturating_sub(free_open) >= 8 * MIB
    });
}
