//! The tools and the mount on bad input: images too small, zeroed, random, of another file
//! system; missing mount points; an image mounted twice; a volume filled up to ENOSPC.
//!
//! Every failure must be a clean one: a non-zero exit that is not a Rust panic (101) or a
//! signal, a message on stderr, and nothing left mounted or locked.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use logfs_tests::*;

/// A failure exit of a tool: non-zero, not a panic, not a signal, with something said on
/// stderr prefixed with the tool's name.
fn assert_clean_failure(out: &Captured, tool: &str) {
    assert!(out.code.is_some(), "killed by a signal: {out}");
    assert_ne!(out.code, Some(0), "should have failed: {out}");
    assert_ne!(out.code, Some(101), "panicked: {out}");
    assert!(!out.stderr.contains("panicked"), "panicked: {out}");
    assert!(
        out.stderr.contains(&format!("{tool}: ")),
        "no `{tool}: ` message on stderr: {out}"
    );
}

/// Write `len` bytes of `Gen(seed)` at `offset` of `path` (extending it if needed).
fn scribble(path: &Path, seed: u64, offset: u64, len: u64) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut off = 0;
    while off < len {
        let n = (len - off).min(MIB);
        f.write_all(&Gen::new(seed).bytes(off, n as usize)).unwrap();
        off += n;
    }
}

// --- mkfs ------------------------------------------------------------------------------------

#[test]
fn mkfs_rejects_tiny_image() {
    let tmp = TempDir::new("mkfs-tiny");
    let img = tmp.join("tiny");
    sparse_file(&img, MIB);
    let out = run(Command::new(mkfs_bin()).arg(&img));
    assert_clean_failure(&out, "mkfs.logfs");
    assert!(out.stderr.contains("too small"), "{out}");
    // Also with -f, and on a missing file.
    let out = run(Command::new(mkfs_bin()).arg("-f").arg(&img));
    assert_clean_failure(&out, "mkfs.logfs");
    let out = run(Command::new(mkfs_bin()).arg(tmp.join("missing")));
    assert_clean_failure(&out, "mkfs.logfs");
    // A 1 MiB file was not made into anything fsck accepts.
    assert!(matches!(fsck(&img).code, Some(4 | 8)));
}

// --- fsck ------------------------------------------------------------------------------------

fn assert_fsck_rejects(img: &Path, what: &str) {
    let out = fsck(img);
    assert!(
        matches!(out.code, Some(4 | 8)),
        "fsck.logfs -n on {what}: expected exit 4 or 8: {out}"
    );
    assert!(!out.stderr.contains("panicked"), "{what}: {out}");
}

#[test]
fn fsck_rejects_zeroed_and_random_images() {
    let tmp = TempDir::new("fsck-garbage");
    let img = tmp.join("img");

    sparse_file(&img, 64 * MIB);
    assert_fsck_rejects(&img, "a zeroed 64 MiB image");

    for (seed, size) in [(1, 64 * MIB), (2, 50 * MIB), (3, 4 * MIB), (4, 4096 + 17)] {
        sparse_file(&img, 0);
        scribble(&img, seed, 0, size);
        assert_fsck_rejects(&img, &format!("{size} random bytes (seed {seed})"));
    }

    // A real superblock with random bytes behind it: every checkpoint, table and summary is
    // garbage.
    for seed in [5, 6, 7] {
        make_image(&img, 64 * MIB);
        scribble(&img, seed, 2 * 4096, 64 * MIB - 2 * 4096);
        assert_fsck_rejects(
            &img,
            &format!("a superblock then random bytes (seed {seed})"),
        );
    }

    // A real file system truncated to half its size.
    make_image(&img, 64 * MIB);
    OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(32 * MIB)
        .unwrap();
    assert_fsck_rejects(&img, "a truncated image");

    // Not even a regular file.
    assert_fsck_rejects(&tmp.join("missing"), "a missing image");
    assert_fsck_rejects(tmp.path(), "a directory");
}

// --- logfs-fuse on images that are not logfs -------------------------------------------------

/// logfs-fuse on `img` must fail cleanly, leave nothing mounted and the image unlocked.
fn assert_mount_fails(img: &Path, mnt: &Path, what: &str) -> Captured {
    let out = mount_command(img, mnt, &[]);
    let mounted = is_mounted(mnt);
    if mounted {
        let _ = Command::new("umount").arg(mnt).status();
    }
    assert!(!mounted, "{what}: logfs-fuse mounted it: {out}");
    assert_clean_failure(&out, "logfs-fuse");
    assert!(
        wait_for_image_lock(img, Duration::from_secs(5)),
        "{what}: the image is still locked after the failed mount"
    );
    out
}

#[test]
fn mount_rejects_zeroed_image() {
    require_fuse!();
    let tmp = TempDir::new("mount-zero");
    let img = tmp.join("img");
    let mnt = tmp.subdir("mnt");
    sparse_file(&img, 64 * MIB);
    let out = assert_mount_fails(&img, &mnt, "a zeroed image");
    assert!(out.stderr.contains("cannot mount"), "{out}");
    // Garbage behind a valid superblock.
    make_image(&img, 64 * MIB);
    scribble(&img, 9, 2 * 4096, 64 * MIB - 2 * 4096);
    assert_mount_fails(&img, &mnt, "a superblock then random bytes");
    // Random bytes.
    scribble(&img, 10, 0, 64 * MIB);
    assert_mount_fails(&img, &mnt, "random bytes");
}

#[test]
fn mount_rejects_ext4_image() {
    require_fuse!();
    let Some(mkfs_ext4) = which("mkfs.ext4") else {
        eprintln!("SKIPPED: mkfs.ext4 is not installed");
        return;
    };
    let tmp = TempDir::new("mount-ext4");
    let img = tmp.join("img");
    let mnt = tmp.subdir("mnt");
    sparse_file(&img, 64 * MIB);
    let out = run(Command::new(mkfs_ext4).args(["-F", "-q"]).arg(&img));
    assert!(out.success(), "{out}");
    let out = assert_mount_fails(&img, &mnt, "an ext4 image");
    assert!(out.stderr.contains("cannot mount"), "{out}");
    // fsck.logfs does not take it for logfs either.
    assert_fsck_rejects(&img, "an ext4 image");
    // And mkfs.logfs without -f refuses to overwrite it.
    let out = run(Command::new(mkfs_bin()).arg(&img));
    assert_clean_failure(&out, "mkfs.logfs");
}

#[test]
fn mount_with_bad_paths() {
    require_fuse!();
    let tmp = TempDir::new("mount-paths");
    let img = tmp.join("img");
    make_image(&img, 64 * MIB);
    let missing = tmp.join("no-such-dir");
    let out = mount_command(&img, &missing, &[]);
    assert_clean_failure(&out, "logfs-fuse");
    assert!(
        out.stderr.contains("mount point") && out.stderr.contains("No such file"),
        "{out}"
    );
    assert!(!missing.exists());
    // A regular file as the mount point.
    let file = tmp.join("file");
    write_file(&file, b"x");
    let out = mount_command(&img, &file, &[]);
    assert_clean_failure(&out, "logfs-fuse");
    assert!(out.stderr.contains("not a directory"), "{out}");
    assert!(!is_mounted(&file));
    // A missing image.
    let mnt = tmp.subdir("mnt");
    let out = mount_command(&tmp.join("no-image"), &mnt, &[]);
    assert_clean_failure(&out, "logfs-fuse");
    assert!(!is_mounted(&mnt));
    // The image is unharmed by all that.
    assert_fsck_clean(&img);
}

// --- One image, two users --------------------------------------------------------------------

#[test]
fn image_in_use() {
    require_fuse!();
    let tmp = TempDir::new("in-use");
    let img = tmp.join("img");
    make_image(&img, 64 * MIB);
    let mnt1 = tmp.subdir("mnt1");
    let mnt2 = tmp.subdir("mnt2");
    let m = Mount::new(&img, &mnt1, &[]);
    write_file(&m.join("f"), b"first mount");

    let out = mount_command(&img, &mnt2, &[]);
    assert_clean_failure(&out, "logfs-fuse");
    assert!(out.stderr.contains("in use"), "{out}");
    assert!(!is_mounted(&mnt2));
    // Read-only does not get around it either.
    let out = mount_command(&img, &mnt2, &["ro"]);
    assert_clean_failure(&out, "logfs-fuse");
    assert!(!is_mounted(&mnt2));
    // Nor does mkfs.
    let out = run(Command::new(mkfs_bin()).arg("-f").arg(&img));
    assert_clean_failure(&out, "mkfs.logfs");
    // fsck waits for the mount, and gives up after its --lock-timeout.
    let out = run(Command::new(fsck_bin())
        .args(["-n", "--lock-timeout", "1"])
        .arg(&img));
    assert_eq!(out.code, Some(8), "fsck of a mounted image: {out}");

    // The first mount is unharmed.
    assert_eq!(fs::read(m.join("f")).unwrap(), b"first mount");
    write_file(&m.join("g"), b"still writable");

    // fsck started while mounted runs once the mount lets go.
    let fsck_thread = {
        let img = img.clone();
        std::thread::spawn(move || fsck(&img))
    };
    std::thread::sleep(Duration::from_millis(500));
    m.unmount();
    let out = fsck_thread.join().unwrap();
    assert_eq!(out.code, Some(0), "fsck waiting for the unmount: {out}");
    let m = Mount::new(&img, &mnt2, &[]);
    assert_eq!(fs::read(m.join("g")).unwrap(), b"still writable");
    m.unmount();
}

// --- A full volume ---------------------------------------------------------------------------

/// Errors a full volume may give for an operation that needs space.
fn ok_or_enospc<T>(r: std::io::Result<T>, what: &str) -> bool {
    match r {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => false,
        Err(e) => panic!("{what} on a full volume: expected success or ENOSPC, got {e}"),
    }
}

/// Files `fill<seed>-<n>` written by [`fill_up`].
struct Filled {
    /// Every file created, complete or not.
    names: Vec<String>,
    /// The files whose writes, fsync and close all succeeded, with their generator seeds.
    complete: Vec<(String, u64)>,
    size: u64,
}

/// Write files of `size` bytes (in writes of up to 1 MiB) until a create, write or fsync
/// fails, which must be with ENOSPC.
fn fill_up(root: &Path, seed: u64, size: u64) -> Filled {
    let mut filled = Filled {
        names: Vec::new(),
        complete: Vec::new(),
        size,
    };
    for n in 0..1000 {
        let name = format!("fill{seed}-{n}");
        let data = Gen::new(seed * 1000 + n);
        let mut f = match File::create(root.join(&name)) {
            Ok(f) => f,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "create {name}: {e}");
                eprintln!("full: create of file {n} failed with ENOSPC");
                return filled;
            }
        };
        filled.names.push(name.clone());
        let mut failed = None;
        for off in (0..size).step_by(MIB as usize) {
            let len = (size - off).min(MIB) as usize;
            if let Err(e) = f.write_all(&data.bytes(off, len)) {
                failed = Some(("write", e));
                break;
            }
        }
        if failed.is_none()
            && let Err(e) = f.sync_all()
        {
            failed = Some(("fsync", e));
        }
        if let Some((op, e)) = failed {
            assert_eq!(
                e.raw_os_error(),
                Some(libc::ENOSPC),
                "{op} of {name} on a full volume: expected ENOSPC, got {e}"
            );
            eprintln!("full: {op} of file {n} ({size} bytes each) failed with ENOSPC");
            return filled;
        }
        drop(f);
        filled.complete.push((name, seed * 1000 + n));
    }
    panic!("wrote 4000 MiB to a 64 MiB volume without ENOSPC");
}

#[test]
fn full_volume() {
    require_fuse!();
    let mut timer = Timer::new("full_volume");
    let tmp = TempDir::new("full");
    let img = tmp.join("img");
    make_image(&img, 64 * MIB);
    let mnt = tmp.subdir("mnt");
    let mut m = Mount::new(&img, &mnt, &[]);
    let root = m.path().to_path_buf();

    // What must survive.
    fs::create_dir(root.join("keep")).unwrap();
    for i in 0..3 {
        write_gen_file(
            &root.join(format!("keep/big{i}")),
            Gen::new(i),
            MIB + 123 * i,
        )
        .unwrap();
    }
    for i in 0..50 {
        write_file(
            &root.join(format!("keep/small{i}")),
            format!("small {i}").as_bytes(),
        );
    }
    symlink("big0", root.join("keep/link")).unwrap();
    let check_keep = |root: &Path| {
        for i in 0..3 {
            verify_gen_file(
                &root.join(format!("keep/big{i}")),
                Gen::new(i),
                MIB + 123 * i,
            );
        }
        for i in 0..50 {
            assert_eq!(
                fs::read(root.join(format!("keep/small{i}"))).unwrap(),
                format!("small {i}").as_bytes()
            );
        }
        assert_eq!(
            fs::read_link(root.join("keep/link")).unwrap(),
            Path::new("big0")
        );
    };

    for round in 1..=2 {
        let watchdog = Watchdog::new("full_volume", &m, Duration::from_secs(120));
        // Files of one write each, then of several writes and a partial block.
        let size = if round == 1 { MIB } else { 4 * MIB + 12345 };
        let filled = fill_up(&root, round, size);
        assert!(
            filled.complete.len() >= 5,
            "only {} files fit",
            filled.complete.len()
        );
        // Out of space, other operations fail with ENOSPC or succeed; never EIO.
        for i in 0..20 {
            let p = root.join(format!("extra{round}-{i}"));
            ok_or_enospc(fs::create_dir(&p), "mkdir");
            let p = root.join(format!("extra-file{round}-{i}"));
            if ok_or_enospc(File::create(&p), "create") {
                let _ = ok_or_enospc(fs::write(&p, [7u8; 10_000]), "write");
            }
            ok_or_enospc(
                symlink("x".repeat(3000), root.join(format!("extra-sym{round}-{i}"))),
                "symlink",
            );
            ok_or_enospc(
                setxattr(
                    &root.join("keep/small0"),
                    &format!("user.x{i}"),
                    &[1; 100],
                    0,
                ),
                "setxattr",
            );
        }
        check_keep(&root);
        drop(watchdog);

        // Every file whose writes and fsync succeeded is all there, read back from the disk
        // (after a remount) rather than from the page cache.
        m.unmount();
        m = Mount::new(&img, &mnt, &[]);
        let watchdog = Watchdog::new("full_volume", &m, Duration::from_secs(120));
        for (name, seed) in &filled.complete {
            let len = fs::metadata(root.join(name)).unwrap().len();
            assert_eq!(
                len, filled.size,
                "{name}: write, fsync and close succeeded on the nearly full volume, but after \
                 a remount the file has {len} of its {} bytes",
                filled.size
            );
            verify_gen_file(&root.join(name), Gen::new(*seed), filled.size);
        }
        check_keep(&root);

        // Deleting works on a full volume, and gives the space back.
        let free_full = free_bytes(&root);
        for name in &filled.names {
            fs::remove_file(root.join(name)).unwrap_or_else(|e| panic!("rm {name}: {e}"));
        }
        for entry in fs::read_dir(&root).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.starts_with("extra") {
                let p = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    fs::remove_dir(&p).unwrap();
                } else {
                    fs::remove_file(&p).unwrap();
                }
            }
        }
        for i in 0..20 {
            let _ = removexattr(&root.join("keep/small0"), &format!("user.x{i}"));
        }
        syncfs(&root);
        let free_after = free_bytes(&root);
        assert!(
            free_after >= free_full + 20 * MIB,
            "deleting the fillers freed only {} bytes",
            free_after.saturating_sub(free_full)
        );
        // And the space can be used again.
        write_gen_file(
            &root.join(format!("after{round}")),
            Gen::new(50 + round),
            8 * MIB,
        )
        .unwrap();
        verify_gen_file(
            &root.join(format!("after{round}")),
            Gen::new(50 + round),
            8 * MIB,
        );
        fs::remove_file(root.join(format!("after{round}"))).unwrap();
        drop(watchdog);
        timer.lap(&format!(
            "fill, ENOSPC, remount, verify, delete, rewrite (round {round})"
        ));
    }
    write_gen_file(&root.join("last"), Gen::new(99), 4 * MIB).unwrap();
    check_keep(&root);
    m.unmount();
    assert_fsck_clean(&img);
    let m = Mount::new(&img, &mnt, &[]);
    check_keep(m.path());
    verify_gen_file(&m.join("last"), Gen::new(99), 4 * MIB);
    m.unmount();
    assert_fsck_clean(&img);
    timer.lap("umount, fsck, remount, verify");
}

#[test]
fn full_volume_small_files() {
    require_fuse!();
    let tmp = TempDir::new("full-small");
    let img = tmp.join("img");
    make_image(&img, 64 * MIB);
    let mnt = tmp.subdir("mnt");
    let m = Mount::new(&img, &mnt, &[]);
    let watchdog = Watchdog::new("full_volume_small_files", &m, Duration::from_secs(150));
    let root = m.path().to_path_buf();
    // Many small files in a few directories until the volume is full.
    let mut made = Vec::new();
    'fill: for d in 0..1000 {
        let dir = root.join(format!("d{d}"));
        if !ok_or_enospc(fs::create_dir(&dir), "mkdir") {
            break;
        }
        for i in 0..500 {
            let p = dir.join(format!("file-with-a-longish-name-{i}"));
            let data = Gen::new(d * 1000 + i).bytes(0, 3000 + i as usize);
            match fs::write(&p, &data) {
                Ok(()) => made.push((p, data)),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{}: {e}", p.display());
                    break 'fill;
                }
            }
        }
    }
    assert!(made.len() > 1000, "only {} files fit", made.len());
    eprintln!("full_volume_small_files: {} files fit", made.len());
    // Whatever was written in full before ENOSPC is intact (but the last file may be short).
    made.pop();
    for (p, data) in made.iter().step_by(7) {
        assert_eq!(&fs::read(p).unwrap(), data, "{}", p.display());
    }
    // Delete every other file, then everything can be listed and read.
    for (p, _) in made.iter().step_by(2) {
        fs::remove_file(p).unwrap();
    }
    syncfs(&root);
    drop(watchdog);
    m.unmount();
    assert_fsck_clean(&img);
    let m = Mount::new(&img, &mnt, &[]);
    for (p, data) in made.iter().skip(1).step_by(2) {
        assert_eq!(&fs::read(p).unwrap(), data, "{}", p.display());
    }
    m.unmount();
    assert_fsck_clean(&img);
}
