//! The userspace backend: block devices over files, real block devices and memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::RwLock;
use std::vec::Vec;

use crate::errno::{Errno, Result};
use crate::ks::block::{BLOCK_SIZE, BlockDevice, WriteFlags, check_request};

/// A block device over an image file or a block device node.
pub struct FileDevice {
    file: File,
    blocks: u64,
    is_block_device: bool,
}

const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
/// Writes this large start their writeback at once.
const STREAM_WRITE: usize = 1 << 20;
const BLKDISCARD: libc::c_ulong = 0x1277;

impl FileDevice {
    /// Open `path` for reading, and for writing unless `read_only`. A block device node is
    /// opened exclusively (O_EXCL), so it cannot be mounted twice.
    pub fn open(path: &Path, read_only: bool) -> io::Result<FileDevice> {
        let meta = std::fs::metadata(path)?;
        let is_block_device = meta.file_type().is_block_device();
        let mut opts = OpenOptions::new();
        opts.read(true).write(!read_only);
        if is_block_device && !read_only {
            opts.custom_flags(libc::O_EXCL);
        }
        let file = opts.open(path)?;
        let bytes = if is_block_device {
            let mut size: u64 = 0;
            // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which is valid and aligned.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size as *mut u64) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            size
        } else if meta.file_type().is_file() {
            meta.len()
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file or block device",
            ));
        };
        Ok(FileDevice {
            file,
            blocks: bytes / BLOCK_SIZE as u64,
            is_block_device,
        })
    }

    pub fn is_block_device(&self) -> bool {
        self.is_block_device
    }

    fn offset(block: u64) -> u64 {
        block * BLOCK_SIZE as u64
    }
}

impl BlockDevice for FileDevice {
    fn block_count(&self) -> u64 {
        self.blocks
    }

    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        check_request(self.blocks, block, buf.len())?;
        self.file
            .read_exact_at(buf, Self::offset(block))
            .map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    Errno::EIO
                } else {
                    Errno::from(e)
                }
            })
    }

    fn write_blocks(&self, block: u64, buf: &[u8], flags: WriteFlags) -> Result<()> {
        check_request(self.blocks, block, buf.len())?;
        if flags.preflush {
            self.file.sync_data()?;
        }
        self.file.write_all_at(buf, Self::offset(block))?;
        if flags.fua {
            self.file.sync_data()?;
        } else if buf.len() >= STREAM_WRITE {
            // A whole segment: start writing it back now, so the next flush finds the work done
            // instead of the whole log at once.
            // SAFETY: plain syscall on an owned descriptor; no memory is passed.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    Self::offset(block) as libc::off64_t,
                    buf.len() as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(self.file.sync_data()?)
    }

    fn discard(&self, block: u64, count: u64) -> Result<()> {
        check_request(self.blocks, block, 0)?;
        let (start, len) = (Self::offset(block), Self::offset(count));
        let fd = self.file.as_raw_fd();
        // Discard is advisory: a device or file system that cannot do it is not an error.
        if self.is_block_device {
            let range = [start, len];
            // SAFETY: BLKDISCARD reads two u64 (start, length) from the valid pointer.
            unsafe { libc::ioctl(fd, BLKDISCARD, range.as_ptr()) };
        } else {
            // SAFETY: plain syscall on an owned descriptor; no memory is passed.
            unsafe {
                libc::fallocate(
                    fd,
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    start as libc::off_t,
                    len as libc::off_t,
                )
            };
        }
        Ok(())
    }
}

/// A block device in memory, for tests.
pub struct MemDevice {
    data: RwLock<Vec<u8>>,
}

impl MemDevice {
    pub fn new(blocks: u64) -> MemDevice {
        MemDevice {
            data: RwLock::new(std::vec![0u8; blocks as usize * BLOCK_SIZE]),
        }
    }

    pub fn from_bytes(bytes: Vec<u8>) -> MemDevice {
        MemDevice {
            data: RwLock::new(bytes),
        }
    }

    /// A copy of the whole device.
    pub fn snapshot(&self) -> Vec<u8> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Run `f` on the raw contents (tests use it to corrupt an image).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        f(&mut self.data.write().unwrap_or_else(|e| e.into_inner()))
    }
}

impl BlockDevice for MemDevice {
    fn block_count(&self) -> u64 {
        (self.data.read().unwrap_or_else(|e| e.into_inner()).len() / BLOCK_SIZE) as u64
    }

    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        let data = self.data.read().unwrap_or_else(|e| e.into_inner());
        check_request((data.len() / BLOCK_SIZE) as u64, block, buf.len())?;
        let start = block as usize * BLOCK_SIZE;
        buf.copy_from_slice(&data[start..start + buf.len()]);
        Ok(())
    }

    fn write_blocks(&self, block: u64, buf: &[u8], _flags: WriteFlags) -> Result<()> {
        let mut data = self.data.write().unwrap_or_else(|e| e.into_inner());
        check_request((data.len() / BLOCK_SIZE) as u64, block, buf.len())?;
        let start = block as usize * BLOCK_SIZE;
        data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
