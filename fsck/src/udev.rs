//! What `logfs_id` tells udev about a logfs volume: the `ID_FS_*` properties that udev's
//! `blkid` builtin sets for the file systems libblkid knows, which libblkid cannot set for
//! logfs (it would need a patched util-linux). With them, 60-persistent-storage.rules makes the
//! /dev/disk/by-uuid and by-label links and `lsblk -f` shows the type, UUID and label.
//!
//! The values are encoded exactly as libblkid encodes them for udev (`blkid_safe_string` for
//! `ID_FS_UUID`/`ID_FS_LABEL`, `blkid_encode_string` for the `_ENC` forms used in link names),
//! so a logfs label reads the same as an ext4 label would.

use bento_api::ks::block::BlockDevice;
use logfs::error::Error;
use logfs::format::superblock::Superblock;

use crate::format_uuid;

/// What the superblock area of a device says.
#[derive(Debug)]
pub enum Identity {
    /// A valid logfs superblock (copy 0, else copy 1).
    Logfs(Box<Superblock>),
    /// No logfs, or none whose superblock verifies.
    NotLogfs,
    /// The device could not be read.
    Io(String),
}

/// Read the superblock copies of `dev` (blocks 0 and 1, nothing else) and verify them, with
/// the same decoding and checks as mount.
pub fn identify<D: BlockDevice + ?Sized>(dev: &D) -> Identity {
    match Superblock::read(dev) {
        Ok(sb) => Identity::Logfs(Box::new(sb)),
        Err(Error::Io(e)) => Identity::Io(format!("{e:?}")),
        Err(_) => Identity::NotLogfs,
    }
}

/// The udev properties of `sb`, one `KEY=value` line each, as `blkid -o udev` prints them
/// (UUID and label are left out when empty, as libblkid leaves them out).
pub fn properties(sb: &Superblock) -> String {
    let mut out = String::new();
    let mut put = |k: &str, v: &str| {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('\n');
    };
    // libblkid drops a label's trailing whitespace before encoding it (blkid_probe_set_label).
    let label = label_bytes(sb);
    let label = &label[..label
        .iter()
        .rposition(|&c| !is_space(c))
        .map_or(0, |i| i + 1)];
    if !label.is_empty() {
        put("ID_FS_LABEL", &safe_string(label));
        put("ID_FS_LABEL_ENC", &encode_string(label));
    }
    if sb.uuid != [0; 16] {
        let uuid = format_uuid(&sb.uuid);
        put("ID_FS_UUID", &uuid);
        put("ID_FS_UUID_ENC", &uuid);
    }
    put("ID_FS_VERSION", &format!("{}.{}", sb.major, sb.minor));
    put("ID_FS_TYPE", "logfs");
    put("ID_FS_USAGE", "filesystem");
    out
}

/// The label as stored: up to the first NUL of its 64 bytes, any bytes (not only UTF-8).
fn label_bytes(sb: &Superblock) -> &[u8] {
    let end = sb
        .label
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(sb.label.len());
    &sb.label[..end]
}

/// libblkid's `is_whitelisted`: what udev keeps as is in a property or link name.
fn whitelisted(c: u8, extra: &[u8]) -> bool {
    c.is_ascii_alphanumeric() || b"#+-.:=@_".contains(&c) || extra.contains(&c)
}

/// C's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// libblkid's `utf8_encoded_valid_unichar`: the length of the valid multi-byte UTF-8
/// character at the start of `s`, if there is one. Rust's UTF-8 check is the same but for
/// the noncharacters, which libblkid refuses and so are refused here too.
fn utf8_char_len(s: &[u8]) -> Option<usize> {
    let len = match s.first()? {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return None,
    };
    let c = std::str::from_utf8(s.get(..len)?).ok()?.chars().next()? as u32;
    let nonchar = (0xfdd0..=0xfdef).contains(&c) || c & 0xffff == 0xffff;
    (!nonchar).then_some(len)
}

/// libblkid's `blkid_encode_string`: whitelisted ASCII and valid UTF-8 kept, every other byte
/// (and `\`) as `\xNN`. udev uses it for `ID_FS_*_ENC`, the names of the by-label links.
pub fn encode_string(s: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        if let Some(n) = utf8_char_len(&s[i..]) {
            out.push_str(std::str::from_utf8(&s[i..i + n]).unwrap_or_default());
            i += n;
            continue;
        }
        let c = s[i];
        if c != b'\\' && whitelisted(c, b"") {
            out.push(c as char);
        } else {
            out.push_str(&format!("\\x{c:02x}"));
        }
        i += 1;
    }
    out
}

/// libblkid's `blkid_safe_string`: whitespace trimmed, each run of it made one `_`, then
/// anything but whitelisted ASCII, `/ $%?,`, `\x` and valid UTF-8 replaced by `_`.
pub fn safe_string(s: &[u8]) -> String {
    let end = s.iter().rposition(|&c| !is_space(c)).map_or(0, |i| i + 1);
    let start = s[..end].iter().position(|&c| !is_space(c)).unwrap_or(end);
    let mut squeezed = Vec::with_capacity(end - start);
    let mut i = start;
    while i < end {
        if is_space(s[i]) {
            while i < end && is_space(s[i]) {
                i += 1;
            }
            squeezed.push(b'_');
        } else {
            squeezed.push(s[i]);
            i += 1;
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < squeezed.len() {
        let c = squeezed[i];
        if whitelisted(c, b"/ $%?,") {
            out.push(c as char);
            i += 1;
        } else if c == b'\\' && squeezed.get(i + 1) == Some(&b'x') {
            out.push_str("\\x");
            i += 2;
        } else if let Some(n) = utf8_char_len(&squeezed[i..]) {
            out.push_str(std::str::from_utf8(&squeezed[i..i + n]).unwrap_or_default());
            i += n;
        } else {
            out.push('_');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_libblkid() {
        // Each against what `blkid -o udev` prints for the same ext4 label.
        let cases: [(&[u8], &str, &str); 7] = [
            (b"data", "data", "data"),
            (b"my data", "my_data", "my\\x20data"),
            (
                b"  a \t b  ",
                "a_b",
                "\\x20\\x20a\\x20\\x09\\x20b\\x20\\x20",
            ),
            (
                "caf\u{e9} \u{1f600}".as_bytes(),
                "caf\u{e9}_\u{1f600}",
                "caf\u{e9}\\x20\u{1f600}",
            ),
            (
                b"a/b$c%d?e,f",
                "a/b$c%d?e,f",
                "a\\x2fb\\x24c\\x25d\\x3fe\\x2cf",
            ),
            (b"x\xffy\\z\\x41", "x_y_z\\x41", "x\\xffy\\x5cz\\x5cx41"),
            (b"\xef\xbf\xbf\xc3", "____", "\\xef\\xbf\\xbf\\xc3"),
        ];
        for (raw, safe, enc) in cases {
            assert_eq!(safe_string(raw), safe, "{raw:?}");
            assert_eq!(encode_string(raw), enc, "{raw:?}");
        }
    }
}
