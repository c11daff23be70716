//! The superblock: identity, version, feature flags and layout. Two identical copies at blocks 0
//! and 1; the first that verifies wins.

use static_assertions::const_assert_eq;
use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::header::{self as csum, BlockHeader, MAGIC_SUPERBLOCK};
use super::layout::{BLOCK_SIZE, BLOCK_SIZE_LOG2, Layout, SEG_BLOCKS_LOG2};
use crate::error::{Error, Result};

pub const SIGNATURE: [u8; 8] = *b"BENTOLFS";
/// (The `bad-format` feature claims another major version: a build that must refuse volumes and
/// upgrade states of this one.)
pub const FORMAT_MAJOR: u16 = if cfg!(feature = "bad-format") { 2 } else { 1 };
pub const FORMAT_MINOR: u16 = 0;

/// Feature bits this version understands (none are defined in format 1.0).
pub const COMPAT_SUPPORTED: u64 = 0;
pub const RO_COMPAT_SUPPORTED: u64 = 0;
pub const INCOMPAT_SUPPORTED: u64 = 0;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone)]
#[repr(C)]
pub struct RawSuperblock {
    pub header: BlockHeader,
    pub signature: [u8; 8],
    pub major: U16,
    pub minor: U16,
    pub block_size_log2: U32,
    pub compat: U64,
    pub ro_compat: U64,
    pub incompat: U64,
    pub seg_blocks_log2: U32,
    pub log_count: U32,
    pub total_blocks: U64,
    pub cp_start: U32,
    pub cp_blocks: U32,
    pub sut_start: U32,
    pub sut_blocks: U32,
    pub nat_start: U32,
    pub nat_blocks: U32,
    pub ssa_start: U32,
    pub main_start: U32,
    pub main_segments: U32,
    pub reserved_segments: U32,
    pub root_ino: U32,
    pub max_nid: U32,
    pub orphan_blocks: U32,
    pub _reserved0: U32,
    pub uuid: [u8; 16],
    pub hash_seed: [u8; 16],
    pub label: [u8; 64],
    pub mkfs_time: I64,
    pub mkfs_version: [u8; 32],
    pub _reserved: [u8; 3840],
}
const_assert_eq!(core::mem::size_of::<RawSuperblock>(), BLOCK_SIZE);

/// Where [`SIGNATURE`] sits in a superblock copy (probes look for it there).
pub const SIGNATURE_OFFSET: usize = core::mem::offset_of!(RawSuperblock, signature);
const_assert_eq!(SIGNATURE_OFFSET, 8);

/// Whether `bytes` (a device's start, or one superblock copy) carry the logfs signature at
/// `at`, without any other check.
pub fn has_signature_at(bytes: &[u8], at: usize) -> bool {
    at.checked_add(SIGNATURE_OFFSET)
        .and_then(|s| bytes.get(s..s.checked_add(SIGNATURE.len())?))
        == Some(&SIGNATURE[..])
}

/// The superblock as the rest of the code uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub major: u16,
    pub minor: u16,
    pub compat: u64,
    pub ro_compat: u64,
    pub incompat: u64,
    pub layout: Layout,
    pub root_ino: u32,
    pub uuid: [u8; 16],
    pub hash_seed: [u8; 16],
    pub label: [u8; 64],
    pub mkfs_time: i64,
    pub mkfs_version: [u8; 32],
}

/// What mount may do with a volume, from its version and features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Unknown read-only-compatible features: reading is safe, writing is not.
    ReadOnly,
}

impl Superblock {
    /// The checksum seed of every other metadata block.
    pub fn csum_seed(&self) -> u32 {
        csum::crc32(0, &self.uuid)
    }

    pub fn label_str(&self) -> &str {
        let label = self.label.split(|&b| b == 0).next().unwrap_or(&[]);
        core::str::from_utf8(label).unwrap_or("")
    }

    /// Check version and features against this code.
    pub fn access(&self) -> Result<Access> {
        if self.major != FORMAT_MAJOR {
            return Err(Error::Incompatible("unsupported format major version"));
        }
        if self.incompat & !INCOMPAT_SUPPORTED != 0 {
            return Err(Error::Incompatible("unsupported incompatible features"));
        }
        if self.ro_compat & !RO_COMPAT_SUPPORTED != 0 {
            return Ok(Access::ReadOnly);
        }
        Ok(Access::ReadWrite)
    }

    pub fn encode(&self, block: &mut [u8; BLOCK_SIZE]) {
        block.fill(0);
        let l = &self.layout;
        let raw = RawSuperblock {
            header: BlockHeader::default(),
            signature: SIGNATURE,
            major: self.major.into(),
            minor: self.minor.into(),
            block_size_log2: BLOCK_SIZE_LOG2.into(),
            compat: self.compat.into(),
            ro_compat: self.ro_compat.into(),
            incompat: self.incompat.into(),
            seg_blocks_log2: SEG_BLOCKS_LOG2.into(),
            log_count: l.log_count.into(),
            total_blocks: l.total_blocks.into(),
            cp_start: l.cp_start.into(),
            cp_blocks: l.cp_blocks.into(),
            sut_start: l.sut_start.into(),
            sut_blocks: l.sut_blocks.into(),
            nat_start: l.nat_start.into(),
            nat_blocks: l.nat_blocks.into(),
            ssa_start: l.ssa_start.into(),
            main_start: l.main_start.into(),
            main_segments: l.main_segments.into(),
            reserved_segments: l.reserved_segments.into(),
            root_ino: self.root_ino.into(),
            max_nid: l.max_nid.into(),
            orphan_blocks: l.orphan_blocks.into(),
            _reserved0: 0.into(),
            uuid: self.uuid,
            hash_seed: self.hash_seed,
            label: self.label,
            mkfs_time: self.mkfs_time.into(),
            mkfs_version: self.mkfs_version,
            _reserved: [0; 3840],
        };
        block.copy_from_slice(raw.as_bytes());
        csum::seal(0, MAGIC_SUPERBLOCK, block);
    }

    /// Decode and check one copy. `device_blocks` bounds the layout.
    pub fn decode(block: &[u8; BLOCK_SIZE], addr: u64, device_blocks: u64) -> Result<Superblock> {
        if !has_signature_at(block, 0) {
            return Err(Error::corrupt("superblock (no logfs signature)", addr));
        }
        csum::verify(0, MAGIC_SUPERBLOCK, block, "superblock (checksum)", addr)?;
        let raw = RawSuperblock::ref_from_bytes(&block[..])
            .map_err(|_| Error::corrupt("superblock", addr))?;
        if raw.major.get() != FORMAT_MAJOR {
            return Err(Error::Incompatible("unsupported format major version"));
        }
        if raw.block_size_log2.get() != BLOCK_SIZE_LOG2
            || raw.seg_blocks_log2.get() != SEG_BLOCKS_LOG2
        {
            return Err(Error::Incompatible("unsupported block or segment size"));
        }
        let layout = Layout {
            total_blocks: raw.total_blocks.get(),
            cp_start: raw.cp_start.get(),
            cp_blocks: raw.cp_blocks.get(),
            sut_start: raw.sut_start.get(),
            sut_blocks: raw.sut_blocks.get(),
            nat_start: raw.nat_start.get(),
            nat_blocks: raw.nat_blocks.get(),
            ssa_start: raw.ssa_start.get(),
            main_start: raw.main_start.get(),
            main_segments: raw.main_segments.get(),
            reserved_segments: raw.reserved_segments.get(),
            max_nid: raw.max_nid.get(),
            orphan_blocks: raw.orphan_blocks.get(),
            log_count: raw.log_count.get(),
        };
        if let Err(why) = layout.validate(device_blocks) {
            return Err(if why.contains("larger than the device") {
                Error::Incompatible("file system is larger than the device (truncated image?)")
            } else {
                Error::corrupt("superblock (layout)", addr)
            });
        }
        if raw.root_ino.get() != 1 {
            return Err(Error::corrupt("superblock (root inode)", addr));
        }
        Ok(Superblock {
            major: raw.major.get(),
            minor: raw.minor.get(),
            compat: raw.compat.get(),
            ro_compat: raw.ro_compat.get(),
            incompat: raw.incompat.get(),
            layout,
            root_ino: raw.root_ino.get(),
            uuid: raw.uuid,
            hash_seed: raw.hash_seed,
            label: raw.label,
            mkfs_time: raw.mkfs_time.get(),
            mkfs_version: raw.mkfs_version,
        })
    }

    /// Read the superblock: copy 0, else copy 1. The error of copy 0 is reported if both fail.
    pub fn read<D: bento_runtime::ks::block::BlockDevice + ?Sized>(dev: &D) -> Result<Superblock> {
        let blocks = dev.block_count();
        if blocks < 2 {
            return Err(Error::NotLogfs);
        }
        let mut first_err = None;
        let mut signed = false;
        for addr in 0..2u64 {
            let buf = bento_runtime::ks::block::Buffer::read(dev, addr).map_err(Error::Io)?;
            signed |= has_signature_at(buf.data(), 0);
            match Superblock::decode(buf.data(), addr, blocks) {
                Ok(sb) => return Ok(sb),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if !signed {
            return Err(Error::NotLogfs);
        }
        Err(first_err.unwrap_or(Error::corrupt("superblock", 0)))
    }
}
