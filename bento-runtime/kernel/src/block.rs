//! A block device in the kernel: a `struct block_device` that bentofs holds for the mount.

use core::ffi::c_void;

use crate::ffi;
use bento_api::errno::{Errno, Result};
use bento_api::ks::block::{BlockDevice, WriteFlags, check_request};

pub struct KernelBlockDevice {
    bdev: *mut c_void,
    blocks: u64,
}

// SAFETY: a struct block_device may be used from any thread; bentofs keeps it open (and the
// pointer valid) for as long as the mount, which outlives the file system instance.
unsafe impl Send for KernelBlockDevice {}
// SAFETY: as above; the bio helpers are safe to call concurrently.
unsafe impl Sync for KernelBlockDevice {}

impl KernelBlockDevice {
    /// # Safety
    /// `bdev` must be a `struct block_device *` that stays valid while this value lives.
    pub unsafe fn new(bdev: *mut c_void, blocks: u64) -> KernelBlockDevice {
        KernelBlockDevice { bdev, blocks }
    }
}

fn check(rc: core::ffi::c_int) -> Result<()> {
    if rc < 0 {
        Err(Errno(rc.saturating_neg()))
    } else {
        Ok(())
    }
}

impl BlockDevice for KernelBlockDevice {
    fn block_count(&self) -> u64 {
        self.blocks
    }

    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        check_request(self.blocks, block, buf.len())?;
        // SAFETY: buf is valid and exclusively ours for buf.len() bytes during the call.
        check(unsafe {
            ffi::bento_ks_bdev_read(
                self.bdev,
                block,
                buf.as_mut_ptr() as *mut c_void,
                buf.len() as u64,
            )
        })
    }

    fn write_blocks(&self, block: u64, buf: &[u8], flags: WriteFlags) -> Result<()> {
        check_request(self.blocks, block, buf.len())?;
        let mut f = 0;
        if flags.preflush {
            f |= ffi::BENTO_IO_PREFLUSH;
        }
        if flags.fua {
            f |= ffi::BENTO_IO_FUA;
        }
        // SAFETY: buf is valid for buf.len() bytes during the call.
        check(unsafe {
            ffi::bento_ks_bdev_write(
                self.bdev,
                block,
                buf.as_ptr() as *const c_void,
                buf.len() as u64,
                f,
            )
        })
    }

    fn flush(&self) -> Result<()> {
        // SAFETY: the device pointer is valid (see new).
        check(unsafe { ffi::bento_ks_bdev_flush(self.bdev) })
    }

    fn discard(&self, block: u64, count: u64) -> Result<()> {
        // SAFETY: the device pointer is valid (see new).
        check(unsafe { ffi::bento_ks_bdev_discard(self.bdev, block, count) })
    }
}
