//! The Bento adapter: `Mount` and `FileSystem` for [`LogFs`]. Each call takes the volume lock,
//! runs the matching `Volume` operation and turns its error into an errno, logging what is worth
//! logging (`error::report`).

use alloc::vec::Vec;

use bento_runtime::fs::{
    DirFiller, Entry, FileAttr, FileSystem, Ino, Mount, MountOptions, Opened, RenameFlags, Request,
    SetAttr, Shutdown, Statfs,
};
use bento_runtime::ks::block::BlockDevice;
use bento_runtime::ks::sync::Mutex;

use crate::error::{Error, Result, report};
use crate::fs::{LogFs, VERSION, Volume, nid_of};

impl<D: BlockDevice> LogFs<D> {
    /// A call: EIO once the volume is shut down, before anything (forgets waiting included)
    /// could write.
    fn run<T>(&self, f: impl FnOnce(&mut Volume<D>) -> Result<T>) -> bfs_result::Result<T> {
        let mut vol = self.vol.lock();
        if vol.shut_down {
            return Err(bento_runtime::Errno::EIO);
        }
        self.apply_forgets(&mut vol);
        let r = f(&mut vol);
        r.map_err(|e| report(e, &mut vol.last_corrupt_log))
    }
}

mod bfs_result {
    pub type Result<T> = core::result::Result<T, bento_runtime::Errno>;
}

impl<D: BlockDevice> Mount<D> for LogFs<D> {
    const NAME: &'static str = "logfs";
    const VERSION: &'static str = VERSION;

    fn mount(dev: D, options: &MountOptions) -> bfs_result::Result<Self> {
        LogFs::open(dev, options).map_err(|e| {
            if !(options.silent && matches!(e, Error::NotLogfs)) {
                bento_runtime::error!("logfs: cannot mount: {e}");
            }
            e.errno()
        })
    }

    fn resume(dev: D, options: &MountOptions, state: &[u8]) -> bfs_result::Result<Self> {
        let vol = Volume::resume(dev, options, state).map_err(|e| {
            bento_runtime::error!("logfs: cannot resume the mount: {e}");
            e.errno()
        })?;
        bento_runtime::info!(
            "logfs {VERSION}: resumed a mount (upgrade {})",
            vol.upgrades
        );
        Ok(LogFs::new(Mutex::try_new(vol)?))
    }
}

impl<D: BlockDevice> FileSystem for LogFs<D> {
    fn destroy(&self) -> bfs_result::Result<()> {
        if self.vol.lock().shut_down {
            // Shut down: nothing more is written; dropping the instance frees it.
            return Ok(());
        }
        self.run(|v| v.unmount())
    }

    fn shutdown(&self, how: Shutdown) -> bfs_result::Result<()> {
        let mut vol = self.vol.lock();
        // What waits to be freed goes into the flush; with nothing to flush, it stays.
        if !vol.shut_down && how != Shutdown::NoLogFlush {
            self.apply_forgets(&mut vol);
        }
        vol.shutdown(how)
            .map_err(|e| report(e, &mut vol.last_corrupt_log))
    }

    fn sync_fs(&self) -> bfs_result::Result<()> {
        self.run(|v| v.sync())
    }

    fn export_state(&self) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| {
            #[cfg(feature = "panic-trigger")]
            crate::panic_trigger::check(v, crate::panic_trigger::Place::Export);
            v.export_state()
        })
    }

    fn background(&self) -> bfs_result::Result<()> {
        self.run(|v| {
            #[cfg(feature = "panic-trigger")]
            crate::panic_trigger::check(v, crate::panic_trigger::Place::Background);
            v.background()
        })
    }

    fn lookup(&self, _req: &Request, parent: Ino, name: &[u8]) -> bfs_result::Result<Entry> {
        self.run(|v| v.lookup(nid_of(parent)?, name))
    }

    fn reserve(&self, ino: Ino, offset: u64, len: u64) -> bfs_result::Result<()> {
        self.run(|v| v.reserve_delayed(nid_of(ino)?, offset, len))
    }

    fn shrink(&self, nr: u64) -> Option<u64> {
        // Memory reclaim: never wait for a call in progress (it may be doing I/O).
        let mut v = self.vol.try_lock()?;
        Some(if nr == 0 {
            v.reclaimable()
        } else {
            v.shrink_caches(nr)
        })
    }

    /// Memory reclaim evicts inodes: giving back a reference never waits behind a call doing
    /// I/O. With the volume free now, the count drops at once; busy, the forget waits in
    /// `forgets` for the next call. Only an unlinked inode's last reference, whose freeing
    /// is I/O anyway, takes the volume lock here.
    fn forget(&self, ino: Ino, nlookup: u64) {
        let Ok(nid) = nid_of(ino) else {
            return;
        };
        // The guard (the data's spin lock alone) is gone before `run` takes the volume lock.
        let done = match self.vol.try_lock() {
            Some(mut v) => v.forget_without_io(nid, nlookup),
            None => self.queue_forget(nid, nlookup),
        };
        if !done {
            let _ = self.run(|v| v.forget(nid, nlookup));
        }
    }

    fn getattr(&self, _req: &Request, ino: Ino) -> bfs_result::Result<FileAttr> {
        self.run(|v| v.attr(nid_of(ino)?))
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: Ino,
        attr: &SetAttr,
        _fh: Option<u64>,
    ) -> bfs_result::Result<FileAttr> {
        self.run(|v| v.setattr(nid_of(ino)?, attr))
    }

    fn readlink(&self, _req: &Request, ino: Ino) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| v.readlink(nid_of(ino)?))
    }

    fn mknod(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.mknod(req, nid_of(parent)?, name, mode, rdev))
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.mkdir(req, nid_of(parent)?, name, mode))
    }

    fn unlink(&self, _req: &Request, parent: Ino, name: &[u8]) -> bfs_result::Result<()> {
        self.run(|v| v.unlink(nid_of(parent)?, name))
    }

    fn rmdir(&self, _req: &Request, parent: Ino, name: &[u8]) -> bfs_result::Result<()> {
        self.run(|v| v.rmdir(nid_of(parent)?, name))
    }

    fn symlink(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        target: &[u8],
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.symlink(req, nid_of(parent)?, name, target))
    }

    fn rename(
        &self,
        _req: &Request,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.rename(nid_of(parent)?, name, nid_of(newparent)?, newname, flags))
    }

    fn link(
        &self,
        _req: &Request,
        ino: Ino,
        newparent: Ino,
        newname: &[u8],
    ) -> bfs_result::Result<Entry> {
        self.run(|v| v.link(nid_of(ino)?, nid_of(newparent)?, newname))
    }

    fn open(&self, _req: &Request, ino: Ino, _flags: i32) -> bfs_result::Result<Opened> {
        self.run(|v| v.open(nid_of(ino)?))?;
        Ok(Opened::default())
    }

    fn read(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> bfs_result::Result<usize> {
        self.run(|v| v.read(nid_of(ino)?, offset, buf))
    }

    fn write(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        data: &[u8],
    ) -> bfs_result::Result<usize> {
        self.run(|v| v.write(nid_of(ino)?, offset, data))
    }

    fn release(&self, _req: &Request, ino: Ino, _fh: u64, _flags: i32) -> bfs_result::Result<()> {
        self.run(|v| v.release(nid_of(ino)?))
    }

    fn fsync(&self, _req: &Request, ino: Ino, _fh: u64, _datasync: bool) -> bfs_result::Result<()> {
        self.run(|v| v.fsync_file(nid_of(ino)?))
    }

    fn opendir(&self, _req: &Request, ino: Ino, _flags: i32) -> bfs_result::Result<Opened> {
        self.run(|v| v.dir_of(nid_of(ino)?))?;
        Ok(Opened::default())
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        out: &mut dyn DirFiller,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.readdir(nid_of(ino)?, offset, out))
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: Ino,
        _fh: u64,
        _datasync: bool,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.sync())
    }

    fn statfs(&self, _req: &Request, _ino: Ino) -> bfs_result::Result<Statfs> {
        // Through `run`: forgets queued while the volume was busy free their space first.
        self.run(|v| Ok(v.statfs()))
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> bfs_result::Result<()> {
        self.run(|v| {
            #[cfg(feature = "panic-trigger")]
            if name == crate::panic_trigger::XATTR {
                return crate::panic_trigger::trigger(v, value);
            }
            v.setxattr(nid_of(ino)?, name, value, flags)
        })
    }

    fn getxattr(&self, _req: &Request, ino: Ino, name: &[u8]) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| v.getxattr(nid_of(ino)?, name))
    }

    fn listxattr(&self, _req: &Request, ino: Ino) -> bfs_result::Result<Vec<u8>> {
        self.run(|v| v.listxattr(nid_of(ino)?))
    }

    fn removexattr(&self, _req: &Request, ino: Ino, name: &[u8]) -> bfs_result::Result<()> {
        self.run(|v| v.removexattr(nid_of(ino)?, name))
    }

    fn create(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        _flags: i32,
    ) -> bfs_result::Result<(Entry, Opened)> {
        let e = self.run(|v| v.create(req, nid_of(parent)?, name, mode))?;
        Ok((e, Opened::default()))
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> bfs_result::Result<()> {
        self.run(|v| v.fallocate(nid_of(ino)?, offset, length, mode))
    }
}
