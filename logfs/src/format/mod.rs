//! The on-disk format, in one place (F2FS's `f2fs_fs.h` in Rust): every structure as a
//! `#[repr(C)]` zerocopy type with a static size assertion, and the function that decodes and
//! validates it. Everything read from the device goes through these validators before other
//! code indexes or follows it, so a damaged volume is an [`Error::Corrupt`] (EUCLEAN), never a
//! later panic. mkfs, mount, recovery and fsck share them. `docs/format.md` describes the same
//! bytes in prose.
//!
//! * [`layout`]: block and segment sizes, where each area lies, address and nid bounds;
//! * [`header`]: the `{ magic, crc }` header of every metadata block;
//! * [`superblock`], [`checkpoint`] (header and orphan blocks), [`tables`] (NAT and SUT blocks,
//!   copy bitmaps), [`summary`] (segment summaries);
//! * [`node`] (inodes and index nodes), [`geometry`] (node-offset numbering), [`dir`]
//!   (directory blocks and hash levels), [`xattr`] (xattr node bodies).
//!
//! [`Error::Corrupt`]: crate::error::Error::Corrupt

pub mod checkpoint;
pub mod dir;
pub mod geometry;
pub mod header;
pub mod layout;
pub mod node;
pub mod summary;
pub mod superblock;
pub mod tables;
pub mod xattr;
