//! Block devices and buffers.
//!
//! A file system sees its device in 4 KiB blocks. Besides block-sized buffers (the buffer-head
//! shaped [`Buffer`]), the device takes multi-block reads and writes, so a log-structured file
//! system can write a whole segment in one request, and explicit barriers: a write may ask that
//! everything written before it be durable first (`preflush`) and that it be durable itself when
//! it completes (`fua`), which is what a checkpoint commit needs.

use alloc::boxed::Box;
use alloc::sync::Arc;

use crate::errno::{Errno, Result};

/// Block size of the interface, in bytes.
pub const BLOCK_SIZE: usize = 4096;

/// Ordering and durability of a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteFlags {
    /// Make all earlier completed writes durable before this one (REQ_PREFLUSH).
    pub preflush: bool,
    /// This write is durable when it completes (REQ_FUA).
    pub fua: bool,
}

impl WriteFlags {
    pub const NONE: WriteFlags = WriteFlags {
        preflush: false,
        fua: false,
    };
    /// A commit record: everything before it, and it, on stable storage.
    pub const COMMIT: WriteFlags = WriteFlags {
        preflush: true,
        fua: true,
    };
}

/// A block device addressed in [`BLOCK_SIZE`] blocks.
///
/// Buffers passed to `read_blocks` / `write_blocks` are whole blocks. Requests may be issued
/// concurrently from several threads.
pub trait BlockDevice: Send + Sync {
    /// Number of blocks on the device.
    fn block_count(&self) -> u64;

    /// Read `buf.len() / BLOCK_SIZE` blocks starting at `block`.
    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()>;

    /// Write `buf.len() / BLOCK_SIZE` blocks starting at `block`.
    fn write_blocks(&self, block: u64, buf: &[u8], flags: WriteFlags) -> Result<()>;

    /// Make every completed write durable.
    fn flush(&self) -> Result<()>;

    /// Tell the device that `count` blocks from `block` hold nothing of value.
    fn discard(&self, block: u64, count: u64) -> Result<()> {
        let _ = (block, count);
        Ok(())
    }
}

/// Checks the shape of a request; every implementation calls it first.
pub fn check_request(dev_blocks: u64, block: u64, len: usize) -> Result<()> {
    if !len.is_multiple_of(BLOCK_SIZE) {
        return Err(Errno::EINVAL);
    }
    let count = (len / BLOCK_SIZE) as u64;
    match block.checked_add(count) {
        Some(end) if end <= dev_blocks => Ok(()),
        _ => Err(Errno::EIO),
    }
}

macro_rules! forward_block_device {
    ($($ty:ty),*) => {$(
        impl<T: BlockDevice + ?Sized> BlockDevice for $ty {
            fn block_count(&self) -> u64 {
                (**self).block_count()
            }
            fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()> {
                (**self).read_blocks(block, buf)
            }
            fn write_blocks(&self, block: u64, buf: &[u8], flags: WriteFlags) -> Result<()> {
                (**self).write_blocks(block, buf, flags)
            }
            fn flush(&self) -> Result<()> {
                (**self).flush()
            }
            fn discard(&self, block: u64, count: u64) -> Result<()> {
                (**self).discard(block, count)
            }
        }
    )*};
}

forward_block_device!(&T, Box<T>, Arc<T>);

/// One block held in memory, in the manner of a kernel buffer head: read it (or get it zeroed
/// without reading), change it, mark it dirty, write it back.
pub struct Buffer {
    block: u64,
    data: Box<[u8; BLOCK_SIZE]>,
    dirty: bool,
}

impl Buffer {
    /// Read `block` from the device (`bread`).
    pub fn read<D: BlockDevice + ?Sized>(dev: &D, block: u64) -> Result<Buffer> {
        let mut buf = Buffer::get(block)?;
        dev.read_blocks(block, &mut buf.data[..])?;
        Ok(buf)
    }

    /// A zeroed buffer for `block` that will overwrite it whole (`getblk` without the read).
    pub fn get(block: u64) -> Result<Buffer> {
        // Built on the heap directly: a 4 KiB temporary is too much for a kernel stack.
        let mut v = alloc::vec::Vec::new();
        v.try_reserve_exact(BLOCK_SIZE).map_err(|_| Errno::ENOMEM)?;
        #[allow(clippy::disallowed_methods)] // Room reserved: no allocation.
        v.resize(BLOCK_SIZE, 0u8);
        let data: Box<[u8; BLOCK_SIZE]> =
            v.into_boxed_slice().try_into().map_err(|_| Errno::ENOMEM)?;
        Ok(Buffer {
            block,
            data,
            dirty: false,
        })
    }

    pub fn block(&self) -> u64 {
        self.block
    }

    pub fn data(&self) -> &[u8; BLOCK_SIZE] {
        &self.data
    }

    /// Mutable contents; call [`Buffer::mark_dirty`] for the change to be written back.
    pub fn data_mut(&mut self) -> &mut [u8; BLOCK_SIZE] {
        &mut self.data
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Write the buffer back if it is dirty.
    pub fn write_back<D: BlockDevice + ?Sized>(
        &mut self,
        dev: &D,
        flags: WriteFlags,
    ) -> Result<()> {
        if self.dirty {
            dev.write_blocks(self.block, &self.data[..], flags)?;
            self.dirty = false;
        }
        Ok(())
    }
}
