//! logfs_id, the udev helper, on images made by mkfs.logfs; and its rule under `udevadm test`.
//!
//! mkfs.logfs is another package's binary: it is taken from beside logfs_id in the target
//! directory, so run these with it built (`cargo test -p mkfs-logfs -p fsck`, or --workspace).

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use logfs::format::superblock::RawSuperblock;

const LOGFS_ID: &str = env!("CARGO_BIN_EXE_logfs_id");
const UUID: &str = "0123abcd-4567-89ab-cdef-0123456789ab";
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/udev/59-logfs.rules");

fn mkfs_bin() -> PathBuf {
    let p = Path::new(LOGFS_ID).with_file_name("mkfs-logfs");
    assert!(
        p.exists(),
        "{} is not built: run cargo test -p mkfs-logfs -p fsck",
        p.display()
    );
    p
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("logfs-id");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// A zeroed 64 MiB image.
fn tmp(name: &str) -> PathBuf {
    let p = scratch(name);
    File::create(&p).unwrap().set_len(64 << 20).unwrap();
    p
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// A logfs image with `label` (any bytes) and the test UUID.
fn logfs_image(name: &str, label: &[u8]) -> PathBuf {
    let p = tmp(name);
    let mut cmd = Command::new(mkfs_bin());
    cmd.args(["-q", "-U", UUID]);
    if !label.is_empty() {
        cmd.arg("-L").arg(OsStr::from_bytes(label));
    }
    ok(cmd.arg(&p).output().unwrap());
    p
}

fn logfs_id(p: &Path) -> (i32, String) {
    let o = Command::new(LOGFS_ID).arg(p).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).expect("udev properties are UTF-8"),
    )
}

fn write_at(p: &Path, off: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

/// The properties for the test UUID and a label encoded as `safe` and `enc`.
fn expected(label: Option<(&str, &str)>) -> String {
    let mut s = String::new();
    if let Some((safe, enc)) = label {
        s += &format!("ID_FS_LABEL={safe}\nID_FS_LABEL_ENC={enc}\n");
    }
    s + &format!(
        "ID_FS_UUID={UUID}\nID_FS_UUID_ENC={UUID}\nID_FS_VERSION=1.0\nID_FS_TYPE=logfs\n\
         ID_FS_USAGE=filesystem\n"
    )
}

#[test]
fn prints_the_properties_of_a_logfs() {
    let p = logfs_image("plain.img", b"data");
    assert_eq!(logfs_id(&p), (0, expected(Some(("data", "data")))));

    // A space, UTF-8 (kept) and a byte that is not UTF-8 (escaped in _ENC, `_` otherwise).
    let p = logfs_image("spaced.img", b"my d\xc3\xa4t\xc3\xa4 \xff/x ");
    assert_eq!(
        logfs_id(&p),
        (
            0,
            expected(Some((
                "my_d\u{e4}t\u{e4}__/x",
                "my\\x20d\u{e4}t\u{e4}\\x20\\xff\\x2fx"
            )))
        )
    );

    // No label: no label properties, as blkid prints none for an unlabelled ext4.
    let p = logfs_image("nolabel.img", b"");
    assert_eq!(logfs_id(&p), (0, expected(None)));
}

/// The label's encoding is libblkid's: the same label on ext4, through `blkid -o udev`, reads
/// the same.
#[test]
fn encodes_labels_as_blkid_does() {
    for label in [
        &b"my data"[..],
        b"  a\tb  c ",
        b"d\xc3\xa4 \xff/$%,\\x41",
        b"\xef\xb7\x90\xef\xbf\xbf\xc3z",
    ] {
        let e = tmp("ext4-label.img");
        ok(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L"])
            .arg(OsStr::from_bytes(label))
            .arg(&e)
            .output()
            .unwrap());
        let o = ok(Command::new("blkid")
            .args(["--probe", "--output", "udev"])
            .arg(&e)
            .output()
            .unwrap());
        let label_lines = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with("ID_FS_LABEL"))
                .map(String::from)
                .collect()
        };
        let want = label_lines(&String::from_utf8_lossy(&o.stdout));
        assert_eq!(want.len(), 2, "{label:?}: {want:?}");
        let p = logfs_image("same-label.img", label);
        assert_eq!(label_lines(&logfs_id(&p).1), want, "{label:?}");
    }
}

#[test]
fn prints_nothing_for_anything_else() {
    let zero = tmp("zero.img");
    assert_eq!(logfs_id(&zero), (1, String::new()));

    let e = tmp("ext4.img");
    ok(Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&e)
        .output()
        .unwrap());
    assert_eq!(logfs_id(&e), (1, String::new()));

    // A bad checksum in copy 0: copy 1 answers. In both: not a valid logfs.
    let p = logfs_image("crc.img", b"data");
    let uuid_at = core::mem::offset_of!(RawSuperblock, uuid) as u64;
    write_at(&p, uuid_at, b"\xee");
    assert_eq!(logfs_id(&p), (0, expected(Some(("data", "data")))));
    write_at(&p, 4096 + uuid_at, b"\xee");
    assert_eq!(logfs_id(&p), (1, String::new()));

    let small = tmp("small.img");
    File::create(&small).unwrap().set_len(4096).unwrap();
    assert_eq!(logfs_id(&small), (1, String::new()));
}

#[test]
fn errors_exit_2() {
    assert_eq!(logfs_id(&scratch("missing.img")).0, 2);
    let o = Command::new(LOGFS_ID).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage: logfs_id DEVNODE"));
}

/// A loop device over an image, detached on drop.
struct Loop(String);

impl Loop {
    fn attach(image: &Path) -> Option<Loop> {
        let o = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(image)
            .output()
            .ok()?;
        let dev = String::from_utf8(o.stdout).ok()?.trim().to_string();
        (o.status.success() && dev.starts_with("/dev/loop")).then_some(Loop(dev))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// In a private mount namespace, with fresh /dev and /run, the loop device and /dev/null bound
/// in, and only our rule added: `udevadm test` creates links and writes its database, and must
/// touch neither the machine's /dev/disk nor a running udevd's /run/udev.
const UDEVADM_TEST: &str = r#"
old=$1 loop=$2 rules=$3
mount --bind /dev "$old"
mount -t tmpfs tmpfs /dev
for n in null "$loop"; do touch "/dev/$n"; mount --bind "$old/$n" "/dev/$n"; done
mount -t tmpfs tmpfs /run
mkdir -p /run/udev/rules.d
cp "$rules" /run/udev/rules.d/
exec udevadm test --action=add "/sys/class/block/$loop"
"#;

#[test]
fn udev_rule_sets_the_type_and_links() {
    // Attaching loop devices and mounting need root.
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root || !Path::new("/dev/loop-control").exists() {
        eprintln!("SKIPPED: udevadm test needs root and loop devices");
        return;
    }
    let p = logfs_image("udev.img", b"my data");
    let Some(lo) = Loop::attach(&p) else {
        eprintln!("SKIPPED: no loop device could be attached");
        return;
    };
    let name = lo.0.trim_start_matches("/dev/").to_string();
    // The rule as shipped, but with this build's logfs_id instead of /usr/lib/udev/logfs_id.
    let rules = scratch("59-logfs.rules");
    let text = std::fs::read_to_string(RULES).unwrap();
    assert!(text.contains("IMPORT{program}=\"logfs_id $devnode\""));
    std::fs::write(
        &rules,
        text.replace("\"logfs_id ", &format!("\"{LOGFS_ID} ")),
    )
    .unwrap();
    // Where the real /dev stays reachable inside the namespace (an empty mount point).
    let old = scratch("dev");
    std::fs::create_dir_all(&old).unwrap();
    let o = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-euc",
            UDEVADM_TEST,
            "sh",
        ])
        .arg(&old)
        .arg(&name)
        .arg(&rules)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The properties the event ends with, after 60-persistent-storage.rules ran too.
    for want in [
        "ID_FS_TYPE=logfs".to_string(),
        "ID_FS_USAGE=filesystem".into(),
        format!("ID_FS_UUID={UUID}"),
        "ID_FS_LABEL_ENC=my\\x20data".into(),
    ] {
        assert!(out.lines().any(|l| l == want), "no {want} in\n{out}");
    }
    let links = out
        .lines()
        .find_map(|l| l.strip_prefix("DEVLINKS="))
        .unwrap_or_else(|| panic!("no DEVLINKS in\n{out}"));
    for want in [
        format!("/dev/disk/by-uuid/{UUID}"),
        "/dev/disk/by-label/my\\x20data".into(),
    ] {
        assert!(links.split(' ').any(|l| l == want), "no {want} in {links}");
    }
}
