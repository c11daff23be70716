//! The body of an xattr node: a `used: u16` byte count, then `used` bytes of packed entries
//! `{ index: u8, name_len: u8, value_len: u16, name, value }`. All of an inode's attributes
//! live in one node.

use alloc::vec::Vec;

use static_assertions::const_assert_eq;
use zerocopy::little_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::node::NODE_BODY_SIZE;

/// Bytes of entries an xattr node holds.
pub const XATTR_SPACE: usize = NODE_BODY_SIZE - core::mem::size_of::<U16>();

/// Namespace indexes and the name prefixes they stand for.
pub const XATTR_USER: u8 = 1;
pub const XATTR_TRUSTED: u8 = 2;
pub const XATTR_SECURITY: u8 = 3;
pub const XATTR_PREFIXES: [(u8, &[u8]); 3] = [
    (XATTR_USER, b"user."),
    (XATTR_TRUSTED, b"trusted."),
    (XATTR_SECURITY, b"security."),
];

/// The fixed part of an entry.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy)]
#[repr(C)]
pub struct RawXattrEntry {
    pub index: u8,
    pub name_len: u8,
    pub value_len: U16,
}
const_assert_eq!(core::mem::size_of::<RawXattrEntry>(), 4);

/// One attribute: the name is stored without its namespace prefix.
pub struct XEntry<'a> {
    pub index: u8,
    pub name: &'a [u8],
    pub value: &'a [u8],
}

impl XEntry<'_> {
    pub fn encoded_len(&self) -> usize {
        // Saturates: a length past usize is as much "too long" as any above XATTR_SPACE.
        core::mem::size_of::<RawXattrEntry>()
            .saturating_add(self.name.len())
            .saturating_add(self.value.len())
    }
}

/// Decoding and encoding of a node body.
pub struct XattrBody;

impl XattrBody {
    /// The entries of an xattr node body; `None` unless they fit together and every entry has a
    /// known namespace and a name.
    pub fn parse(body: &[u8]) -> Option<Vec<XEntry<'_>>> {
        Self::try_parse(body).ok().flatten()
    }

    /// [`parse`](Self::parse) with allocation failure told apart (ENOMEM) from a bad body.
    pub fn try_parse(body: &[u8]) -> crate::Result<Option<Vec<XEntry<'_>>>> {
        let mut n = 0usize;
        if Self::walk(body, |_| n = n.saturating_add(1)).is_none() {
            return Ok(None);
        }
        let mut out = crate::mem::with_capacity(n)?;
        let mut failed = false;
        Self::walk(body, |e| failed |= crate::mem::push(&mut out, e).is_err());
        if failed {
            return Err(crate::Error::Errno(bento_runtime::Errno::ENOMEM));
        }
        Ok(Some(out))
    }

    /// Whether `parse` would accept `body`, without allocating (node decode runs it on every
    /// xattr node read, in the kernel too).
    pub fn is_valid(body: &[u8]) -> bool {
        Self::walk(body, |_| ()).is_some()
    }

    /// Hands each entry to `f`; `None` as soon as one does not fit (see `parse`).
    fn walk<'a>(body: &'a [u8], mut f: impl FnMut(XEntry<'a>)) -> Option<()> {
        let (used, rest) = U16::read_from_prefix(body).ok()?;
        let used = usize::from(used.get());
        if used > XATTR_SPACE {
            return None;
        }
        let mut data = rest.get(..used)?;
        while !data.is_empty() {
            let (hdr, tail) = RawXattrEntry::read_from_prefix(data).ok()?;
            let (nlen, vlen) = (usize::from(hdr.name_len), usize::from(hdr.value_len.get()));
            if !(XATTR_USER..=XATTR_SECURITY).contains(&hdr.index) || nlen == 0 {
                return None;
            }
            let name = tail.get(..nlen)?;
            let end = nlen.checked_add(vlen)?;
            let value = tail.get(nlen..end)?;
            f(XEntry {
                index: hdr.index,
                name,
                value,
            });
            data = tail.get(end..)?;
        }
        Some(())
    }

    /// Write `entries` into `body` (zeroed first); false if they do not fit or a name or value
    /// is too long for its length field.
    pub fn encode<'a>(body: &mut [u8], entries: impl Iterator<Item = XEntry<'a>> + Clone) -> bool {
        let used = entries
            .clone()
            .map(|e| e.encoded_len())
            .fold(0, usize::saturating_add);
        let Ok(used16) = u16::try_from(used) else {
            return false;
        };
        if used > XATTR_SPACE || body.len() < used.saturating_add(2) {
            return false;
        }
        body.fill(0);
        let (head, mut rest) = body.split_at_mut(2);
        head.copy_from_slice(U16::new(used16).as_bytes());
        for e in entries {
            let (Ok(nlen), Ok(vlen)) = (u8::try_from(e.name.len()), u16::try_from(e.value.len()))
            else {
                return false;
            };
            let hdr = RawXattrEntry {
                index: e.index,
                name_len: nlen,
                value_len: vlen.into(),
            };
            // The lengths were summed above, but the iterator is walked again: check anyway.
            let Some((h, r)) = rest.split_at_mut_checked(core::mem::size_of::<RawXattrEntry>())
            else {
                return false;
            };
            h.copy_from_slice(hdr.as_bytes());
            let Some((n, r)) = r.split_at_mut_checked(e.name.len()) else {
                return false;
            };
            n.copy_from_slice(e.name);
            let Some((v, r)) = r.split_at_mut_checked(e.value.len()) else {
                return false;
            };
            v.copy_from_slice(e.value);
            rest = r;
        }
        true
    }
}
