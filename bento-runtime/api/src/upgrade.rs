//! The state a mounted file system hands to its next version during a live upgrade.
//!
//! The two versions may be different modules built by different compilers, so the state is a
//! byte string, never a Rust value: an envelope (magic, envelope version, the file system's
//! name and version, its own payload version, a CRC32) around a payload of tagged fields. A
//! field's tag says whether a reader that does not know it may skip it (`OPTIONAL`) or must
//! refuse the state; so a newer version can add fields an older one ignores, and a downgrade
//! works whenever the newer state carries nothing the older code must understand.

use alloc::string::String;
use alloc::vec::Vec;

use crate::errno::{Errno, Result};

const MAGIC: [u8; 8] = *b"BENTOST1";
const ENVELOPE_VERSION: u16 = 1;
/// Set in a tag: readers that do not know the field may skip it.
pub const OPTIONAL: u16 = 0x8000;

/// What the envelope says about the state it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateInfo {
    pub fs_name: String,
    pub fs_version: String,
    pub payload_version: u32,
}

/// Wrap `payload` for `fs_name` (version `fs_version`, payload format `payload_version`).
/// Userspace's form of [`try_seal`]: an allocation failure gives an empty state (which every
/// reader refuses).
pub fn seal(fs_name: &str, fs_version: &str, payload_version: u32, payload: &[u8]) -> Vec<u8> {
    try_seal(fs_name, fs_version, payload_version, payload).unwrap_or_default()
}

/// [`seal`], with a failed allocation reported as ENOMEM (the kernel's form).
pub fn try_seal(
    fs_name: &str,
    fs_version: &str,
    payload_version: u32,
    payload: &[u8],
) -> Result<Vec<u8>> {
    // Names longer than a length byte can say are cut.
    let name = fs_name.as_bytes().get(..255).unwrap_or(fs_name.as_bytes());
    let version = fs_version
        .as_bytes()
        .get(..255)
        .unwrap_or(fs_version.as_bytes());
    let mut out = Value::default();
    out.buf
        .try_reserve_exact(payload.len().saturating_add(64))
        .map_err(|_| Errno::ENOMEM)?;
    out.put_bytes(&MAGIC);
    out.put_bytes(&ENVELOPE_VERSION.to_le_bytes());
    out.put_u8(name.len() as u8);
    out.put_u8(version.len() as u8);
    out.put_u32(payload_version);
    out.put_u64(payload.len() as u64);
    out.put_bytes(name);
    out.put_bytes(version);
    out.put_bytes(payload);
    let crc = crc32(&out.buf);
    out.put_u32(crc);
    out.into_result()
}

/// Check a state meant for `fs_name` and return what it says and its payload. Refused (with a
/// log line saying why) if it is damaged, of an unknown envelope version or for another file
/// system.
pub fn open<'a>(state: &'a [u8], fs_name: &str) -> Result<(StateInfo, &'a [u8])> {
    let refuse = |why: &str| {
        crate::error!("{fs_name}: upgrade state refused: {why}");
        Errno::EINVAL
    };
    let (body, crc) = match state.split_last_chunk::<4>() {
        Some((body, crc)) if state.len() >= 28 && body.starts_with(&MAGIC) => (body, crc),
        _ => return Err(refuse("not a Bento upgrade state")),
    };
    if crc32(body) != u32::from_le_bytes(*crc) {
        return Err(refuse("checksum mismatch"));
    }
    let mut r = Reader { buf: body };
    r.take(MAGIC.len())?;
    if r.u16()? != ENVELOPE_VERSION {
        return Err(refuse("unknown envelope version"));
    }
    let (name_len, ver_len) = (usize::from(r.u8()?), usize::from(r.u8()?));
    let payload_version = r.u32()?;
    let payload_len = usize::try_from(r.u64()?).map_err(|_| Errno::EINVAL)?;
    let name = text(r.take(name_len)?)?;
    let version = text(r.take(ver_len)?)?;
    let payload = r.take(payload_len)?;
    if !r.buf.is_empty() {
        return Err(refuse("trailing bytes"));
    }
    if name != fs_name {
        return Err(refuse("state of another file system"));
    }
    Ok((
        StateInfo {
            fs_name: name,
            fs_version: version,
            payload_version,
        },
        payload,
    ))
}

/// A name or version from the envelope (one that is not UTF-8 reads as U+FFFD); ENOMEM
/// rather than an abort.
fn text(b: &[u8]) -> Result<String> {
    let s = core::str::from_utf8(b).unwrap_or("\u{fffd}");
    let mut out = String::new();
    out.try_reserve_exact(s.len()).map_err(|_| Errno::ENOMEM)?;
    #[allow(clippy::disallowed_methods)] // Room reserved: no allocation.
    out.push_str(s);
    Ok(out)
}

fn crc32(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h.finalize()
}

/// Builds a payload of tagged fields: `{ tag: u16, len: u32, value }` each. Allocation failures
/// are remembered: [`try_finish`](Writer::try_finish) reports them.
#[derive(Default)]
pub struct Writer {
    out: Value,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Add a field; `value` is written by `f` into a scratch vector (userspace; the kernel's
    /// code uses [`try_field`](Writer::try_field), whose writes cannot abort).
    pub fn field(&mut self, tag: u16, f: impl FnOnce(&mut Vec<u8>)) {
        let mut value = Vec::new();
        f(&mut value);
        self.append(tag, &value);
    }

    /// Add a field whose value `f` writes with [`Put`]; nothing it does allocates infallibly.
    pub fn try_field(&mut self, tag: u16, f: impl FnOnce(&mut Value)) {
        let mut value = Value::default();
        f(&mut value);
        self.out.failed |= value.failed;
        self.append(tag, &value.buf);
    }

    fn append(&mut self, tag: u16, value: &[u8]) {
        self.out.put_bytes(&tag.to_le_bytes());
        self.out.put_u32(value.len() as u32);
        self.out.put_bytes(value);
    }

    /// The payload (empty if an allocation failed: see [`try_finish`](Writer::try_finish)).
    pub fn finish(self) -> Vec<u8> {
        self.try_finish().unwrap_or_default()
    }

    /// The payload, or ENOMEM if an allocation failed on the way.
    pub fn try_finish(self) -> Result<Vec<u8>> {
        self.out.into_result()
    }
}

/// A value being written. Appends reserve first; a failed one is remembered (and the rest
/// skipped), so writers need not check every call.
#[derive(Default)]
pub struct Value {
    buf: Vec<u8>,
    failed: bool,
}

impl Value {
    pub fn put_bytes(&mut self, b: &[u8]) {
        if self.failed || self.buf.try_reserve(b.len()).is_err() {
            self.failed = true;
            return;
        }
        #[allow(clippy::disallowed_methods)] // Room reserved: no allocation.
        self.buf.extend_from_slice(b);
    }

    fn into_result(self) -> Result<Vec<u8>> {
        if self.failed {
            return Err(Errno::ENOMEM);
        }
        Ok(self.buf)
    }
}

impl Put for Value {
    fn put_u8(&mut self, v: u8) {
        self.put_bytes(&[v]);
    }
    fn put_u32(&mut self, v: u32) {
        self.put_bytes(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.put_bytes(&v.to_le_bytes());
    }
}

/// Reads values in the order they were written; every read is checked.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n).ok_or(Errno::EINVAL)?;
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) = self.buf.split_first_chunk::<N>().ok_or(Errno::EINVAL)?;
        self.buf = rest;
        Ok(*head)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// The next field: (tag, value reader), or `None` at the end.
    pub fn field(&mut self) -> Result<Option<(u16, Reader<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.u16()?;
        let len = self.u32()? as usize;
        Ok(Some((tag, Reader::new(self.take(len)?))))
    }
}

/// Little-endian appends for field values.
pub trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
}

// Userspace's field values (`Writer::field`); kernel code writes a `Value`.
#[allow(clippy::disallowed_methods)]
impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
#[path = "upgrade_tests.rs"]
mod tests;
