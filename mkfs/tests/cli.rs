//! mkfs.logfs as a program: what it makes checks clean, and what it refuses.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bento_user::FileDevice;
use fsck::{CheckOptions, Operational, Report};

const MKFS: &str = env!("CARGO_BIN_EXE_mkfs-logfs");

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mkfs-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn sized(name: &str, bytes: u64) -> PathBuf {
    let p = tmp(name);
    File::create(&p).unwrap().set_len(bytes).unwrap();
    p
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn mkfs(args: &[&str]) -> Run {
    let o: Output = Command::new(MKFS).args(args).output().unwrap();
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert_ne!(r.code, 101, "mkfs.logfs panicked: {}", r.err);
    r
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check(p: &Path) -> Report {
    let dev = FileDevice::open(p, true).unwrap();
    fsck::check(&dev, &CheckOptions::default())
}

#[track_caller]
fn assert_clean(p: &Path) -> Report {
    let r = check(p);
    assert!(
        r.is_clean() && r.warnings == 0,
        "{:?}\n{:#?}",
        r.operational,
        r.findings
    );
    r
}

fn write_at(p: &Path, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

#[test]
fn makes_a_clean_file_system() {
    let p = sized("fresh.img", 64 << 20);
    let uuid = "0123abcd-4567-89ab-cdef-0123456789ab";
    let r = mkfs(&["-L", "data", "-U", uuid, s(&p)]);
    assert_eq!(r.code, 0, "{}", r.err);
    for want in [
        "64.00 MiB (16384 blocks of 4096 bytes)",
        "segments:         31 of 2.00 MiB, 8 reserved for cleaning",
        "max inodes:       16319",
        uuid,
        "label:            data",
    ] {
        assert!(r.out.contains(want), "missing {want:?} in\n{}", r.out);
    }
    let rep = assert_clean(&p);
    assert_eq!(rep.label, "data");
    assert_eq!(fsck::format_uuid(&rep.uuid.unwrap()), uuid);

    // Random UUIDs differ.
    let q = sized("fresh2.img", 64 << 20);
    assert_eq!(mkfs(&["-q", "-U", "random", s(&q)]).code, 0);
    assert_ne!(check(&q).uuid, rep.uuid);
}

#[test]
fn size_argument_makes_a_smaller_file_system() {
    let p = sized("sized.img", 256 << 20);
    for (arg, blocks) in [
        ("64M", 16384u64),
        ("16384", 16384),
        ("100MiB", 25600),
        ("1g", 0),
    ] {
        let r = mkfs(&["-f", s(&p), arg]);
        if blocks == 0 {
            assert_eq!(r.code, 1, "{arg}: {}", r.out);
            assert!(r.err.contains("larger than"), "{arg}: {}", r.err);
            continue;
        }
        assert_eq!(r.code, 0, "{arg}: {}", r.err);
        assert!(
            r.out.contains(&format!("({blocks} blocks of 4096 bytes)")),
            "{}",
            r.out
        );
        assert!(r.out.contains("(of the device's 256 MiB)"), "{}", r.out);
        let rep = assert_clean(&p);
        assert_eq!(rep.stats.total_blocks, blocks);
        // The image is not grown or cut.
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 256 << 20);
    }
    for bad in ["12Q", "abc", "0", "1K", "99999999999999T"] {
        let r = mkfs(&["-f", s(&p), bad]);
        assert_eq!(r.code, 1, "{bad}: {}", r.out);
        assert!(r.err.contains("size"), "{bad}: {}", r.err);
    }
}

#[test]
fn quiet_prints_nothing() {
    let p = sized("quiet.img", 64 << 20);
    let r = mkfs(&["-q", "-K", s(&p)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.is_empty() && r.err.is_empty(), "{}{}", r.out, r.err);
    assert_clean(&p);
}

#[test]
fn dry_run_writes_nothing() {
    let p = sized("dry.img", 64 << 20);
    let r = mkfs(&["-n", s(&p)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("Would make") && r.out.contains("nothing is written"));
    let bytes = std::fs::read(&p).unwrap();
    assert!(bytes.iter().all(|&b| b == 0));
    assert_eq!(check(&p).operational, Some(Operational::NotLogfs));
}

#[test]
fn too_small_is_a_clear_error() {
    for (name, bytes) in [
        ("small.img", 1u64 << 20),
        ("empty.img", 0),
        ("odd.img", 4095),
    ] {
        let p = sized(name, bytes);
        let r = mkfs(&[s(&p)]);
        assert_eq!(r.code, 1, "{name}: {}", r.err);
        let min = logfs::format::layout::Layout::minimum_device_bytes();
        assert!(
            r.err.contains("too small for logfs")
                && r.err.contains(&format!("at least {} ", "50.00 MiB"))
                && r.err.contains(&min.to_string()),
            "{}",
            r.err
        );
    }
}

#[test]
fn refuses_an_existing_logfs_without_force() {
    let p = sized("twice.img", 64 << 20);
    assert_eq!(mkfs(&["-q", s(&p)]).code, 0);
    let first = check(&p).uuid;
    let r = mkfs(&["-q", s(&p)]);
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("contains a logfs file system; use -f to overwrite"),
        "{}",
        r.err
    );
    assert_eq!(check(&p).uuid, first, "refused mkfs must not write");
    let r = mkfs(&["-q", "-f", s(&p)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_ne!(assert_clean(&p).uuid, first);

    // Only copy 1 of the superblock left: still recognized.
    write_at(&p, 0, &[0u8; 4096]);
    let r = mkfs(&["-q", s(&p)]);
    assert!(r.err.contains("contains a logfs file system"), "{}", r.err);
}

/// Run a tool from util-linux, e2fsprogs, fdisk or cryptsetup-bin (tests/packages.txt) that
/// must succeed, with `input` on its standard input.
fn tool(cmd: &mut Command, input: &[u8]) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An image holding what `make` puts on it.
fn made_with(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let p = sized(&format!("{name}.img"), 64 << 20);
    make(&p);
    p
}

fn ext4(p: &Path) {
    tool(Command::new("mkfs.ext4").args(["-q", "-F", s(p)]), b"");
}

#[track_caller]
fn assert_refused_then_forced(p: &Path, what: &str) {
    let r = mkfs(&["-q", s(p)]);
    assert_eq!(r.code, 1, "{what}: {}", r.out);
    assert!(
        r.err.contains(&format!(
            "{} contains {what}; use -f to overwrite",
            p.display()
        )),
        "{what}: {}",
        r.err
    );
    // A dry run says what it would overwrite, and writes nothing.
    let before = std::fs::read(p).unwrap();
    let r = mkfs(&["-n", s(p)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out
            .contains(&format!("contains {what}; it would be overwritten")),
        "{}",
        r.out
    );
    assert!(std::fs::read(p).unwrap() == before, "a dry run wrote");
    // Without the discard (-K), which clears an image anyway: the old signatures are erased,
    // so libblkid (and udev) see none that would hide logfs.
    let r = mkfs(&["-q", "-f", "-K", s(p)]);
    assert_eq!(r.code, 0, "{what}: {}", r.err);
    assert_clean(p);
    let blkid = Command::new("blkid")
        .args(["--probe", s(p)])
        .output()
        .unwrap();
    assert_eq!(
        blkid.status.code(),
        Some(2),
        "{what}: blkid still finds {}",
        String::from_utf8_lossy(&blkid.stdout)
    );
    // And now it holds logfs.
    let r = mkfs(&["-q", s(p)]);
    assert!(r.err.contains("contains a logfs file system"), "{}", r.err);
}

#[test]
fn refuses_ext4_without_force() {
    let p = made_with("ext4", ext4);
    assert_refused_then_forced(&p, "an ext4 file system");
}

#[test]
fn refuses_what_libblkid_finds() {
    let swap = made_with("swap", |p| {
        tool(Command::new("mkswap").args(["-q", s(p)]), b"");
    });
    assert_refused_then_forced(&swap, "swap space");
    for (label, what) in [
        ("gpt", "a GPT partition table"),
        ("dos", "a DOS partition table"),
    ] {
        let p = made_with(label, |p| {
            tool(
                Command::new("sfdisk").args(["-q", s(p)]),
                format!("label: {label}\n").as_bytes(),
            );
        });
        assert_refused_then_forced(&p, what);
    }
    // A partition table written over a file system: both are reported.
    let both = made_with("ext4-dos", |p| {
        ext4(p);
        tool(
            Command::new("sfdisk").args(["-q", "--wipe", "never", s(p)]),
            b"label: dos\n",
        );
    });
    assert_refused_then_forced(&both, "an ext4 file system and a DOS partition table");
    // Two file systems' signatures that exclude each other: libblkid will not choose.
    let two = made_with("ext4-btrfs", |p| {
        ext4(p);
        write_at(p, 65600, b"_BHRfS_M");
    });
    assert_refused_then_forced(
        &two,
        "more than one file system signature (wipefs -n lists them)",
    );
}

#[test]
fn refuses_luks_without_force() {
    let key = tmp("luks.key");
    std::fs::write(&key, b"not a secret").unwrap();
    let p = made_with("luks", |p| {
        // The cheapest key derivation: the test is about the header, not the key.
        tool(
            Command::new("cryptsetup").args([
                "luksFormat",
                "--batch-mode",
                "--type",
                "luks2",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--key-file",
                s(&key),
                s(p),
            ]),
            b"",
        );
    });
    assert_refused_then_forced(&p, "a LUKS encrypted volume");
}

/// mkfs.logfs with `blkid` replaced by a script that prints `err` and exits with `code`.
fn mkfs_with_fake_blkid(name: &str, code: i32, err: &str, args: &[&str]) -> Run {
    use std::os::unix::fs::PermissionsExt;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fake-blkid-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("blkid");
    std::fs::write(&fake, format!("#!/bin/sh\necho '{err}' >&2\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(MKFS)
        .env("PATH", path)
        .args(args)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn a_failing_blkid_stops_mkfs_without_force() {
    let p = sized("blkid-fails.img", 64 << 20);
    for (name, code, msg) in [
        ("4", 4, "blkid: broken"),
        ("2", 2, "blkid: error: cannot open"),
    ] {
        let r = mkfs_with_fake_blkid(name, code, msg, &["-q", s(&p)]);
        assert_eq!(r.code, 1, "exit {code}: {}", r.out);
        assert!(
            r.err.contains("cannot check")
                && r.err.contains(msg)
                && r.err
                    .contains("use -f to make the file system without this check"),
            "exit {code}: {}",
            r.err
        );
        assert_eq!(
            check(&p).operational,
            Some(Operational::NotLogfs),
            "it wrote"
        );
        // -f does not ask blkid at all.
        let r = mkfs_with_fake_blkid(name, code, msg, &["-q", "-f", s(&p)]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert_clean(&p);
        std::fs::remove_file(&p).unwrap();
        File::create(&p).unwrap().set_len(64 << 20).unwrap();
    }
}

#[test]
fn bad_arguments_exit_1() {
    let p = sized("args.img", 64 << 20);
    assert_eq!(mkfs(&[]).code, 1);
    assert_eq!(mkfs(&["--bogus", s(&p)]).code, 1);
    let r = mkfs(&["-L", &"x".repeat(65), s(&p)]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("maximum is 64"), "{}", r.err);
    assert_eq!(mkfs(&["-q", "-L", &"x".repeat(64), s(&p)]).code, 0);
    let r = mkfs(&["-f", "-U", "not-a-uuid", s(&p)]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("invalid UUID"), "{}", r.err);
    let r = mkfs(&[s(&tmp("missing.img"))]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("No such file"), "{}", r.err);
    let r = mkfs(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("Usage"));
}

#[test]
fn refuses_an_image_in_use() {
    let p = sized("inuse.img", 64 << 20);
    let f = File::open(&p).unwrap();
    // SAFETY: flock on a descriptor the test owns, as a logfs-fuse mount holds it.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    let r = mkfs(&["-q", s(&p)]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("is in use"), "{}", r.err);
    drop(f);
    assert_eq!(mkfs(&["-q", s(&p)]).code, 0);
}

#[test]
fn large_sparse_image_is_fast() {
    let p = sized("large.img", 256 << 30);
    let start = Instant::now();
    let r = mkfs(&["-q", s(&p)]);
    let took = start.elapsed();
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(took < Duration::from_secs(20), "mkfs took {took:?}");
    let rep = assert_clean(&p);
    assert_eq!(rep.stats.total_blocks, 64 << 20);
    std::fs::remove_file(&p).unwrap();
}
