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

fn have(prog: &str) -> bool {
    ["/sbin", "/usr/sbin", "/bin", "/usr/bin"]
        .iter()
        .any(|d| Path::new(d).join(prog).exists())
}

#[test]
fn refuses_ext4_without_force() {
    let p = sized("ext4.img", 64 << 20);
    if have("mkfs.ext4") {
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F", s(&p)])
            .status()
            .map(|st| st.success())
            .unwrap_or(false);
        assert!(ok, "mkfs.ext4 failed");
    } else {
        // The magic and the extents feature, as mke2fs writes them.
        write_at(&p, 1080, &0xEF53u16.to_le_bytes());
        write_at(&p, 1024 + 0x60, &0x40u32.to_le_bytes());
    }
    let r = mkfs(&[s(&p)]);
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains(&format!(
            "{} contains an ext4 file system; use -f to overwrite",
            p.display()
        )),
        "{}",
        r.err
    );
    let r = mkfs(&["-f", "-q", s(&p)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_clean(&p);
}

#[test]
fn refuses_other_signatures() {
    let cases: [(&str, u64, &[u8], &str); 9] = [
        ("xfs", 0, b"XFSB", "an XFS file system"),
        ("btrfs", 65600, b"_BHRfS_M", "a btrfs file system"),
        (
            "f2fs",
            1024,
            &0xF2F5_2010u32.to_le_bytes(),
            "an F2FS file system",
        ),
        ("swap", 4086, b"SWAPSPACE2", "swap space"),
        ("gpt", 512, b"EFI PART", "a GPT partition table"),
        (
            "mbr",
            510,
            &[0x55, 0xAA],
            "a DOS partition table or boot sector",
        ),
        (
            "nilfs",
            1030,
            &0x3434u16.to_le_bytes(),
            "a NILFS2 file system",
        ),
        ("luks", 0, b"LUKS\xba\xbe", "a LUKS encrypted volume"),
        (
            "ext2",
            1080,
            &0xEF53u16.to_le_bytes(),
            "an ext2 file system",
        ),
    ];
    for (name, off, magic, what) in cases {
        let p = sized(&format!("{name}.img"), 64 << 20);
        write_at(&p, off, magic);
        let r = mkfs(&["-q", s(&p)]);
        assert_eq!(r.code, 1, "{name}");
        assert!(
            r.err.contains(&format!("contains {what}; use -f")),
            "{name}: {}",
            r.err
        );
        assert_eq!(mkfs(&["-q", "-f", s(&p)]).code, 0, "{name}");
        assert_clean(&p);
        std::fs::remove_file(&p).unwrap();
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
