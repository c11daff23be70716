//! What a target already holds, so mkfs.logfs can refuse to overwrite it without `-f`.
//!
//! logfs is looked for here (libblkid does not know it); everything else is libblkid's
//! low-level probe, as mkfs.ext4 uses, run through util-linux's front end `blkid --probe`
//! rather than linked: the bindings crates need bindgen (libclang and libblkid's headers at
//! build time), and calling C directly would put `unsafe` in mkfs. `blkid -p` reads the device
//! itself, with no cache, and reports file systems, RAID and volume manager members, encrypted
//! volumes, swap and partition tables.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};

use bento_api::ks::block::BlockDevice;
use bento_user::FileDevice;
use logfs::BLOCK_SIZE;
use logfs::format::superblock::has_signature_at;

/// blkid's exit status when it found nothing, and when it found several signatures that
/// exclude each other (blkid(8)).
const BLKID_NOT_FOUND: i32 = 2;
const BLKID_AMBIVALENT: i32 = 8;

/// What `dev` (opened from `path`) holds, in words ("an ext4 file system"), or None if
/// nothing is recognized. An error means the check itself could not be done.
pub fn existing(path: &Path, dev: &FileDevice) -> Result<Option<String>, String> {
    let name = path.display();
    // Either superblock copy is enough: a damaged copy 0 still means a logfs is there.
    let mut sb = vec![0u8; 2 * BLOCK_SIZE];
    if dev.block_count() >= 2 {
        dev.read_blocks(0, &mut sb)
            .map_err(|e| format!("{name}: cannot read: {e}"))?;
        if has_signature_at(&sb, 0) || has_signature_at(&sb, BLOCK_SIZE) {
            return Ok(Some("a logfs file system".into()));
        }
    }
    blkid(path)
}

/// Run `blkid --probe` on `path` and describe what it reports.
fn blkid(path: &Path) -> Result<Option<String>, String> {
    let name = path.display();
    let cannot = |why: String| {
        format!(
            "cannot check {name} for an existing file system or partition table: {why}; \
             use -f to make the file system without this check"
        )
    };
    let out = Command::new("blkid")
        // Not every user's PATH has the sbin directories, where Debian installs blkid.
        .env("PATH", search_path())
        .args(["--probe", "--output", "export"])
        .args([
            "--match-tag",
            "TYPE",
            "--match-tag",
            "USAGE",
            "--match-tag",
            "PTTYPE",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            cannot(if e.kind() == io::ErrorKind::NotFound {
                "blkid is not installed (it is in util-linux)".into()
            } else {
                format!("cannot run blkid: {e}")
            })
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    match out.status.code() {
        Some(0) => Ok(Some(describe(&parse_export(&out.stdout)))),
        // blkid also exits 2 when it cannot open the device, but then it says why.
        Some(BLKID_NOT_FOUND) if stderr.is_empty() => Ok(None),
        Some(BLKID_AMBIVALENT) => Ok(Some(
            "more than one file system signature (wipefs -n lists them)".into(),
        )),
        _ => Err(cannot(format!(
            "blkid failed ({}){}{}",
            out.status,
            if stderr.is_empty() { "" } else { ": " },
            stderr.lines().next().unwrap_or("")
        ))),
    }
}

/// Erase every signature libblkid finds on `path` (`wipefs --all`), as mkfs.xfs and mkfs.btrfs
/// do. Without -K the discard usually clears them, but not on every device; and a signature left
/// beyond logfs's first blocks (a LUKS2 secondary header, a btrfs superblock at 64 KiB) would
/// make blkid and udev report that file system instead of logfs.
pub fn wipe(path: &Path) -> Result<(), String> {
    let name = path.display();
    let out = Command::new("wipefs")
        .env("PATH", search_path())
        // --force: mkfs.logfs itself holds a block device open with O_EXCL (and has checked
        // that it is not mounted).
        .args(["--all", "--force", "--quiet"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("{name}: cannot run wipefs (util-linux) to erase old signatures: {e}")
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{name}: wipefs could not erase the old signatures ({}): {}",
        out.status,
        stderr.trim().lines().next().unwrap_or("")
    ))
}

/// PATH with /usr/sbin and /sbin appended, where they are missing.
fn search_path() -> OsString {
    let mut dirs: Vec<_> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|x| x == Path::new(d)) {
            dirs.push(d.into());
        }
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| "/usr/sbin:/sbin:/usr/bin:/bin".into())
}

/// `KEY=value` lines of `blkid -o export`, whose values are escaped for the shell with
/// backslashes.
fn parse_export(out: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once('=')?;
            let mut val = String::new();
            let mut chars = v.chars();
            while let Some(c) = chars.next() {
                val.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            Some((k.to_string(), val))
        })
        .collect()
}

/// Words for what blkid found: the signature (TYPE, by its USAGE) and the partition table.
fn describe(tags: &[(String, String)]) -> String {
    let get = |k: &str| {
        tags.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let mut what = Vec::new();
    if let Some(t) = get("TYPE") {
        what.push(match (get("USAGE").unwrap_or(""), t) {
            (_, "swap") => "swap space".to_string(),
            (_, "crypto_LUKS") => "a LUKS encrypted volume".to_string(),
            ("filesystem", _) => format!("{} {t} file system", article(t)),
            ("raid", _) => format!("a RAID or volume group member ({t})"),
            ("crypto", _) => format!("an encrypted volume ({t})"),
            _ => format!("{} {t} signature", article(t)),
        });
    }
    match get("PTTYPE") {
        Some("gpt") => what.push("a GPT partition table".into()),
        Some("dos") => what.push("a DOS partition table".into()),
        Some(pt) => what.push(format!("{} {pt} partition table", article(pt))),
        None => {}
    }
    if what.is_empty() {
        // Status 0 with nothing we asked for: still something, so still refused.
        what.push("a signature blkid recognizes".into());
    }
    what.join(" and ")
}

/// "an ext4", "an xfs", "a btrfs": libblkid's names are read letter by letter or as words.
fn article(name: &str) -> &'static str {
    let first = name.chars().next().unwrap_or('x').to_ascii_lowercase();
    if "aeiox".contains(first)
        || ["f2fs", "hfs", "hfsplus", "ntfs", "nilfs2", "lvm2_member"]
            .contains(&name.to_ascii_lowercase().as_str())
    {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn describes_what_blkid_reports() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (
                &[("TYPE", "ext4"), ("USAGE", "filesystem")],
                "an ext4 file system",
            ),
            (
                &[("TYPE", "btrfs"), ("USAGE", "filesystem")],
                "a btrfs file system",
            ),
            (
                &[("TYPE", "f2fs"), ("USAGE", "filesystem")],
                "an f2fs file system",
            ),
            (&[("TYPE", "swap"), ("USAGE", "other")], "swap space"),
            (
                &[("TYPE", "crypto_LUKS"), ("USAGE", "crypto")],
                "a LUKS encrypted volume",
            ),
            (
                &[("TYPE", "linux_raid_member"), ("USAGE", "raid")],
                "a RAID or volume group member (linux_raid_member)",
            ),
            (&[("PTTYPE", "gpt")], "a GPT partition table"),
            (
                &[("TYPE", "vfat"), ("USAGE", "filesystem"), ("PTTYPE", "dos")],
                "a vfat file system and a DOS partition table",
            ),
        ];
        for (t, want) in cases {
            assert_eq!(describe(&tags(t)), want);
        }
    }

    #[test]
    fn parses_export_output() {
        let out = b"DEVNAME=my\\ disk.img\nTYPE=ext4\nLABEL=a\\ b\\\\c\n";
        assert_eq!(
            parse_export(out),
            tags(&[
                ("DEVNAME", "my disk.img"),
                ("TYPE", "ext4"),
                ("LABEL", "a b\\c")
            ])
        );
    }

    #[test]
    fn search_path_has_sbin() {
        let p = search_path();
        let dirs: Vec<_> = std::env::split_paths(&p).collect();
        assert!(dirs.iter().any(|d| d == Path::new("/usr/sbin")));
    }
}
