//! The checksummed header every metadata block starts with: `{ magic: u32, crc: u32 }`.
//! The CRC covers the whole block with the CRC field zeroed.

use static_assertions::const_assert_eq;
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::layout::BLOCK_SIZE;
use crate::error::{Error, Result};

pub const MAGIC_SUPERBLOCK: u32 = 0x4253_464C;
pub const MAGIC_CHECKPOINT: u32 = 0x5043_464C;
pub const MAGIC_SUT: u32 = 0x5553_464C;
pub const MAGIC_NAT: u32 = 0x414E_464C;
pub const MAGIC_SUMMARY: u32 = 0x5353_464C;
pub const MAGIC_NODE: u32 = 0x444E_464C;
pub const MAGIC_DIR: u32 = 0x4544_464C;
pub const MAGIC_ORPHAN: u32 = 0x524F_464C;

/// The first eight bytes of every metadata block.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Default)]
#[repr(C)]
pub struct BlockHeader {
    pub magic: U32,
    pub crc: U32,
}
const_assert_eq!(core::mem::size_of::<BlockHeader>(), 8);

/// CRC32 of `data` continuing from `seed`.
pub fn crc32(seed: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(data);
    h.finalize()
}

const CRC_AT: usize = core::mem::offset_of!(BlockHeader, crc);
const HEADER_LEN: usize = core::mem::size_of::<BlockHeader>();

fn block_crc(seed: u32, block: &[u8; BLOCK_SIZE]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(&block[..CRC_AT]);
    h.update(&[0u8; HEADER_LEN - CRC_AT]);
    h.update(&block[HEADER_LEN..]);
    h.finalize()
}

fn header(block: &[u8; BLOCK_SIZE]) -> BlockHeader {
    BlockHeader::read_from_prefix(block)
        .map(|(h, _)| h)
        .unwrap_or_default()
}

/// Stamp `magic` and the CRC into a finished block.
pub fn seal(seed: u32, magic: u32, block: &mut [u8; BLOCK_SIZE]) {
    let mut h = BlockHeader {
        magic: magic.into(),
        crc: 0.into(),
    };
    if let Ok((dst, _)) = BlockHeader::mut_from_prefix(block) {
        *dst = h;
    }
    h.crc = block_crc(seed, block).into();
    if let Ok((dst, _)) = BlockHeader::mut_from_prefix(block) {
        *dst = h;
    }
}

/// Check a block's magic and CRC; `what` and `addr` describe it in the error.
pub fn verify(
    seed: u32,
    magic: u32,
    block: &[u8; BLOCK_SIZE],
    what: &'static str,
    addr: u64,
) -> Result<()> {
    let h = header(block);
    if h.magic.get() != magic || h.crc.get() != block_crc(seed, block) {
        return Err(Error::corrupt(what, addr));
    }
    Ok(())
}

/// Whether a block verifies (for probes that must not fail).
pub fn is_valid(seed: u32, magic: u32, block: &[u8; BLOCK_SIZE]) -> bool {
    verify(seed, magic, block, "", 0).is_ok()
}
