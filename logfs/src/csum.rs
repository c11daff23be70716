//! The checksummed header every metadata block starts with: `{ magic: u32, crc: u32 }`.
//! The CRC covers the whole block with the CRC field zeroed.

use crate::error::{Error, Result};
use crate::layout::BLOCK_SIZE;

pub const MAGIC_SUPERBLOCK: u32 = 0x4253_464C;
pub const MAGIC_CHECKPOINT: u32 = 0x5043_464C;
pub const MAGIC_SUT: u32 = 0x5553_464C;
pub const MAGIC_NAT: u32 = 0x414E_464C;
pub const MAGIC_SUMMARY: u32 = 0x5353_464C;
pub const MAGIC_NODE: u32 = 0x444E_464C;
pub const MAGIC_DIR: u32 = 0x4544_464C;
pub const MAGIC_ORPHAN: u32 = 0x524F_464C;

/// CRC32 of `data` continuing from `seed`.
pub fn crc32(seed: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(data);
    h.finalize()
}

fn block_crc(seed: u32, block: &[u8; BLOCK_SIZE]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(&block[..4]);
    h.update(&[0u8; 4]);
    h.update(&block[8..]);
    h.finalize()
}

/// Stamp `magic` and the CRC into a finished block.
pub fn seal(seed: u32, magic: u32, block: &mut [u8; BLOCK_SIZE]) {
    block[..4].copy_from_slice(&magic.to_le_bytes());
    let crc = block_crc(seed, block);
    block[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Check a block's magic and CRC; `what` and `addr` describe it in the error.
pub fn verify(
    seed: u32,
    magic: u32,
    block: &[u8; BLOCK_SIZE],
    what: &'static str,
    addr: u64,
) -> Result<()> {
    let stored_magic = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    let stored_crc = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
    if stored_magic != magic || stored_crc != block_crc(seed, block) {
        return Err(Error::corrupt(what, addr));
    }
    Ok(())
}

/// Whether a block verifies (for probes that must not fail).
pub fn is_valid(seed: u32, magic: u32, block: &[u8; BLOCK_SIZE]) -> bool {
    verify(seed, magic, block, "", 0).is_ok()
}
