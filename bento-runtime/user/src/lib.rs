//! The userspace backend of libBentoKS's block devices: over image files, real block devices
//! and memory, the devices crash-consistency tests are built from ([`RecordingDevice`],
//! [`CrashDevice`]), and one that fails on demand ([`FailingDevice`]). Its only `unsafe` is two
//! system calls `nix` does not wrap (`sync_file_range`, the `BLKDISCARD` ioctl).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use nix::fcntl::FallocateFlags;
use std::vec::Vec;

use bento_api::errno::{Errno, Result};
use bento_api::ks::block::{BLOCK_SIZE, BlockDevice, WriteFlags, check_request};

/// A block device over an image file or a block device node.
pub struct FileDevice {
    file: File,
    blocks: u64,
    is_block_device: bool,
}

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
            // A block device's size is where it ends (what BLKGETSIZE64 says); reads and writes
            // are positioned, so the file offset this moves does not matter.
            (&file).seek(SeekFrom::End(0))?
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
            let _ = nix::fcntl::fallocate(
                &self.file,
                FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
                start as libc::off_t,
                len as libc::off_t,
            );
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

// ---- crash testing ------------------------------------------------------------------------------

/// One block's contents, shared (not copied) between write logs and crash images.
pub type BlockData = Arc<[u8; BLOCK_SIZE]>;

fn block_data(buf: &[u8]) -> Result<BlockData> {
    let block: [u8; BLOCK_SIZE] = buf.try_into().map_err(|_| Errno::EINVAL)?;
    Ok(Arc::new(block))
}

/// A frozen disk image that stores only the blocks written to it: the rest read as zeros. A
/// formatted, lightly used volume of any size costs a few hundred blocks.
#[derive(Clone, Debug, Default)]
pub struct SparseImage {
    blocks: u64,
    map: HashMap<u64, BlockData>,
}

impl SparseImage {
    /// An all-zero image of `blocks` blocks.
    pub fn new(blocks: u64) -> SparseImage {
        SparseImage {
            blocks,
            map: HashMap::new(),
        }
    }

    pub fn block_count(&self) -> u64 {
        self.blocks
    }

    /// The stored contents of `block` (`None`: zeros).
    pub fn get(&self, block: u64) -> Option<&BlockData> {
        self.map.get(&block)
    }

    pub fn insert(&mut self, block: u64, data: BlockData) {
        self.map.insert(block, data);
    }

    /// Blocks stored.
    pub fn stored(&self) -> usize {
        self.map.len()
    }
}

/// What a [`RecordingDevice`] was asked to do, in order.
#[derive(Clone, Debug)]
pub enum IoEvent {
    /// One write request: `data[i]` went to block `block + i`.
    Write {
        block: u64,
        data: Vec<BlockData>,
        flags: WriteFlags,
    },
    /// A cache flush (`BlockDevice::flush`).
    Flush,
}

/// A block device that passes every request to `inner` and logs each successful write (with its
/// data and barrier flags) and flush, in order. The log shares block contents by reference
/// count, so recording costs one copy of each block written. Discards are passed on and not
/// logged: a crash test sees a discarded block as keeping its old contents.
pub struct RecordingDevice<D> {
    inner: D,
    log: Mutex<Vec<IoEvent>>,
}

impl<D: BlockDevice> RecordingDevice<D> {
    pub fn new(inner: D) -> RecordingDevice<D> {
        RecordingDevice {
            inner,
            log: Mutex::new(Vec::new()),
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Requests logged so far: an index into the log that marks "now".
    pub fn position(&self) -> usize {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A copy of the log (block contents are shared, not copied).
    pub fn events(&self) -> Vec<IoEvent> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<D: BlockDevice> BlockDevice for RecordingDevice<D> {
    fn block_count(&self) -> u64 {
        self.inner.block_count()
    }

    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_blocks(block, buf)
    }

    fn write_blocks(&self, block: u64, buf: &[u8], flags: WriteFlags) -> Result<()> {
        check_request(self.inner.block_count(), block, buf.len())?;
        let data = buf
            .chunks_exact(BLOCK_SIZE)
            .map(block_data)
            .collect::<Result<Vec<_>>>()?;
        // Logged under the lock across the write, so the log order is the completion order.
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.write_blocks(block, buf, flags)?;
        log.push(IoEvent::Write { block, data, flags });
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.flush()?;
        log.push(IoEvent::Flush);
        Ok(())
    }

    fn discard(&self, block: u64, count: u64) -> Result<()> {
        self.inner.discard(block, count)
    }
}

/// A device that fails: after `n` more writes and flushes succeed, every write and flush fails
/// with EIO (a dying disk, dm-error swapped in) until [`heal`](FailingDevice::heal) makes it
/// work again, or only the next one does (a transient error). A failed write changes nothing.
/// Reads always work. Unarmed it never fails.
pub struct FailingDevice<D> {
    inner: D,
    /// Writes and flushes still allowed; `None`: no limit.
    budget: Mutex<Option<u64>>,
    /// Fail one request only, then work again (a transient error, dm-flakey).
    once: std::sync::atomic::AtomicBool,
    /// Requests done (successful or not) since `new`, writes and flushes.
    requests: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
}

impl<D: BlockDevice> FailingDevice<D> {
    pub fn new(inner: D) -> FailingDevice<D> {
        FailingDevice {
            inner,
            budget: Mutex::new(None),
            once: false.into(),
            requests: 0.into(),
            failures: 0.into(),
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Let `n` more writes and flushes succeed, then fail every one.
    pub fn fail_after(&self, n: u64) {
        *self.budget.lock().unwrap_or_else(|e| e.into_inner()) = Some(n);
    }

    /// Let `n` more writes and flushes succeed, fail the next one, then work again.
    pub fn fail_once_after(&self, n: u64) {
        self.once.store(true, std::sync::atomic::Ordering::Relaxed);
        self.fail_after(n);
    }

    /// Work again.
    pub fn heal(&self) {
        *self.budget.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Writes and flushes asked for so far (including failed ones).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes and flushes that failed.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn admit(&self) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests.fetch_add(1, Relaxed);
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *b {
            None => Ok(()),
            Some(0) => {
                self.failures.fetch_add(1, Relaxed);
                if self.once.load(Relaxed) {
                    *b = None;
                }
                Err(Errno::EIO)
            }
            Some(n) => {
                *n -= 1;
                Ok(())
            }
        }
    }
}

impl<D: BlockDevice> BlockDevice for FailingDevice<D> {
    fn block_count(&self) -> u64 {
        self.inner.block_count()
    }

    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_blocks(block, buf)
    }

    fn write_blocks(&self, block: u64, buf: &[u8], flags: WriteFlags) -> Result<()> {
        self.admit()?;
        self.inner.write_blocks(block, buf, flags)
    }

    fn flush(&self) -> Result<()> {
        self.admit()?;
        self.inner.flush()
    }

    fn discard(&self, block: u64, count: u64) -> Result<()> {
        // Discards are hints: not counted, and dropped while failing.
        if *self.budget.lock().unwrap_or_else(|e| e.into_inner()) == Some(0) {
            return Ok(());
        }
        self.inner.discard(block, count)
    }
}

/// The device a crash left behind: a shared base image, an overlay of the writes that reached
/// stable storage (chosen by the test), and a private layer for what is written afterwards
/// (recovery, the next mount). Building one costs the size of the overlay, not of the device.
/// Reads look in the private layer, then the overlay, then the base. Flushes and discards do
/// nothing: there is no cache to lose.
pub struct CrashDevice {
    base: Arc<SparseImage>,
    overlay: HashMap<u64, BlockData>,
    own: RwLock<HashMap<u64, BlockData>>,
}

impl CrashDevice {
    /// The base image as it is.
    pub fn new(base: Arc<SparseImage>) -> CrashDevice {
        CrashDevice::with_overlay(base, HashMap::new())
    }

    /// The base image with `overlay`'s blocks replacing its own.
    pub fn with_overlay(base: Arc<SparseImage>, overlay: HashMap<u64, BlockData>) -> CrashDevice {
        CrashDevice {
            base,
            overlay,
            own: RwLock::new(HashMap::new()),
        }
    }

    pub fn base(&self) -> &Arc<SparseImage> {
        &self.base
    }

    pub fn overlay(&self) -> &HashMap<u64, BlockData> {
        &self.overlay
    }

    /// The blocks written to this device since it was made.
    pub fn written(&self) -> HashMap<u64, BlockData> {
        self.own.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Everything the device holds now, as a new image (for use as the base of further tests).
    pub fn freeze(&self) -> SparseImage {
        let mut img = (*self.base).clone();
        for (&b, d) in self.overlay.iter() {
            img.insert(b, d.clone());
        }
        for (&b, d) in self.own.read().unwrap_or_else(|e| e.into_inner()).iter() {
            img.insert(b, d.clone());
        }
        img
    }

    fn lookup<'a>(&'a self, own: &'a HashMap<u64, BlockData>, block: u64) -> Option<&'a BlockData> {
        own.get(&block)
            .or_else(|| self.overlay.get(&block))
            .or_else(|| self.base.get(block))
    }
}

impl BlockDevice for CrashDevice {
    fn block_count(&self) -> u64 {
        self.base.block_count()
    }

    fn read_blocks(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        check_request(self.block_count(), block, buf.len())?;
        let own = self.own.read().unwrap_or_else(|e| e.into_inner());
        for (b, chunk) in (block..).zip(buf.chunks_exact_mut(BLOCK_SIZE)) {
            match self.lookup(&own, b) {
                Some(d) => chunk.copy_from_slice(&d[..]),
                None => chunk.fill(0),
            }
        }
        Ok(())
    }

    fn write_blocks(&self, block: u64, buf: &[u8], _flags: WriteFlags) -> Result<()> {
        check_request(self.block_count(), block, buf.len())?;
        let mut own = self.own.write().unwrap_or_else(|e| e.into_inner());
        for (b, chunk) in (block..).zip(buf.chunks_exact(BLOCK_SIZE)) {
            own.insert(b, block_data(chunk)?);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
