//! Inode lifecycle and attributes: allocating an inode, counting the references the front end
//! holds (lookups, opens), freeing it once its last name and last reference are gone (an
//! unlinked inode still referenced waits as an orphan), and getattr and setattr.

use bento_runtime::Errno;
use bento_runtime::fs::{self as bfs, FileAttr, FileType, Request, SetAttr, TimeOrNow, Timespec};
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result};
use crate::format::layout::BLOCK_SIZE;
use crate::format::node::KIND_INODE;
use crate::fs::{SINCE_CP_NEW, Volume, now};

impl<D: BlockDevice> Volume<D> {
    /// Allocate and initialize an inode.
    pub(crate) fn new_inode(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<u32> {
        let (pmode, pgid) = {
            let p = self.inode(parent)?.inode();
            (p.mode.get(), p.gid.get())
        };
        let mut mode = mode;
        let gid = if pmode & bfs::S_ISGID != 0 {
            if mode & bfs::S_IFMT == bfs::S_IFDIR {
                mode |= bfs::S_ISGID;
            }
            pgid
        } else {
            req.gid
        };
        let ino = self.new_node(None, 0, KIND_INODE)?;
        let generation = self.next_generation as u32;
        // Generations wrap, as they always did (only the low 32 bits are used).
        self.next_generation = self.next_generation.wrapping_add(1);
        let t = now();
        let is_dir = mode & bfs::S_IFMT == bfs::S_IFDIR;
        let kind = mode & bfs::S_IFMT;
        let i = self.node_mut(ino)?.inode_mut();
        i.mode = mode.into();
        i.uid = req.uid.into();
        i.gid = gid.into();
        i.nlink = (if is_dir { 2u32 } else { 1 }).into();
        i.rdev = rdev.into();
        i.generation = generation.into();
        if kind == bfs::S_IFREG || kind == bfs::S_IFLNK {
            i.flags = crate::format::node::INODE_INLINE_DATA.into();
        }
        i.set_atime(t);
        i.set_mtime(t);
        i.set_ctime(t);
        i.set_crtime(t);
        i.set_name(parent, name);
        self.valid_inodes = self.valid_inodes.saturating_add(1);
        self.note_since_cp(ino, SINCE_CP_NEW);
        Ok(ino)
    }

    /// Release an inode whose last name and last reference are gone.
    pub(crate) fn free_inode(&mut self, ino: u32) -> Result<()> {
        let (inline, xattr_nid, is_dir) = {
            let i = self.inode(ino)?.inode();
            (
                i.is_inline(),
                i.xattr_nid.get(),
                i.mode.get() & bfs::S_IFMT == bfs::S_IFDIR,
            )
        };
        if is_dir {
            self.dirs.forget_dir(ino);
        }
        if !inline {
            self.free_blocks(ino, 0, u64::MAX)?;
        }
        if xattr_nid != 0 {
            self.free_node(xattr_nid)?;
        }
        self.free_node(ino)?;
        self.valid_inodes = self.valid_inodes.saturating_sub(1);
        self.orphans.remove(&ino);
        self.forget_delayed(ino, 0, u64::MAX);
        self.lookups.remove(&ino);
        self.opens.remove(&ino);
        Ok(())
    }

    pub(crate) fn referenced(&self, ino: u32) -> bool {
        self.lookups.get(&ino).is_some_and(|&n| n > 0)
            || self.opens.get(&ino).is_some_and(|&n| n > 0)
    }

    /// After a link count or reference count change: free the inode if nothing keeps it.
    pub(crate) fn maybe_free(&mut self, ino: u32) -> Result<()> {
        if self.inode(ino)?.inode().nlink.get() != 0 {
            return Ok(());
        }
        if self.referenced(ino) {
            // Room was reserved by the caller (unlink, rmdir, rename) before it changed anything.
            crate::mem::set_insert(&mut self.orphans, ino)?;
            Ok(())
        } else {
            self.free_inode(ino)
        }
    }

    /// `forget` when it needs no I/O (the inode is not an unlinked one losing its last use):
    /// done, true; else nothing done, false.
    pub fn forget_without_io(&mut self, ino: u32, n: u64) -> bool {
        let Some(c) = self.lookups.get_mut(&ino) else {
            return true;
        };
        let left = c.saturating_sub(n);
        if left == 0 && self.orphans.contains(&ino) {
            return false;
        }
        *c = left;
        if left == 0 {
            self.lookups.remove(&ino);
            // Out of the kernel's inode cache, so none of its pages is dirty: space promised
            // to pages that never became dirty (a copy-in that failed after `reserve`) goes back.
            self.forget_delayed(ino, 0, u64::MAX);
        }
        true
    }

    pub fn forget(&mut self, ino: u32, n: u64) -> Result<()> {
        let left = match self.lookups.get_mut(&ino) {
            Some(c) => {
                *c = c.saturating_sub(n);
                *c
            }
            None => return Ok(()),
        };
        if left == 0 {
            self.lookups.remove(&ino);
            self.forget_delayed(ino, 0, u64::MAX); // as in `forget_without_io`
            if self.orphans.contains(&ino) && !self.referenced(ino) && !self.read_only {
                self.free_inode(ino)?;
            }
        }
        Ok(())
    }

    pub fn open(&mut self, ino: u32) -> Result<()> {
        self.inode(ino)?;
        self.opens.try_reserve(1).map_err(crate::mem::oom)?;
        #[allow(clippy::disallowed_methods)] // Room reserved.
        let n = self.opens.entry(ino).or_insert(0);
        *n = n.saturating_add(1);
        Ok(())
    }

    pub fn release(&mut self, ino: u32) -> Result<()> {
        if let Some(c) = self.opens.get_mut(&ino) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.opens.remove(&ino);
            }
        }
        if self.orphans.contains(&ino) && !self.referenced(ino) && !self.read_only {
            self.free_inode(ino)?;
        }
        Ok(())
    }

    pub(crate) fn attr(&mut self, ino: u32) -> Result<FileAttr> {
        let n = self.inode(ino)?;
        let i = n.inode();
        let mode = i.mode.get();
        let kind =
            FileType::from_mode(mode).ok_or(Error::corrupt("inode (mode)", u64::from(ino)))?;
        Ok(FileAttr {
            ino: u64::from(ino),
            size: i.size.get(),
            blocks: i
                .blocks
                .get()
                .saturating_add(1)
                .saturating_mul(BLOCK_SIZE as u64 / 512),
            atime: i.atime(),
            mtime: i.mtime(),
            ctime: i.ctime(),
            crtime: i.crtime(),
            kind,
            perm: (mode & 0o7777) as u16,
            nlink: i.nlink.get(),
            uid: i.uid.get(),
            gid: i.gid.get(),
            rdev: i.rdev.get(),
            blksize: BLOCK_SIZE as u32,
            generation: u64::from(i.generation.get()),
        })
    }

    pub fn setattr(&mut self, ino: u32, a: &SetAttr) -> Result<FileAttr> {
        self.check_writable()?;
        let kind = self.file_type(ino)?;
        let t = now();
        if let Some(size) = a.size {
            match kind {
                FileType::Directory => return Err(Errno::EISDIR.into()),
                FileType::RegularFile => {}
                _ => return Err(Errno::EINVAL.into()),
            }
            if size > crate::format::geometry::MAX_FILE_SIZE {
                return Err(Errno::EFBIG.into());
            }
            self.ensure_space(4)?;
            self.truncate(ino, size)?;
            let i = self.inode_mut(ino)?;
            if a.mtime.is_none() {
                i.set_mtime(t);
            }
        }
        if a.size.is_none() {
            // The inode is rewritten at the next checkpoint: on a full volume the cleaner must
            // make room for it now, not the checkpoint find none (it would fail the volume).
            self.ensure_space(1)?;
        }
        let i = self.inode_mut(ino)?;
        if let Some(mode) = a.mode {
            i.mode = ((i.mode.get() & bfs::S_IFMT) | (mode & 0o7777)).into();
        }
        if let Some(uid) = a.uid {
            i.uid = uid.into();
        }
        if let Some(gid) = a.gid {
            i.gid = gid.into();
        }
        if a.kill_suid {
            let mut mode = i.mode.get() & !bfs::S_ISUID;
            if mode & bfs::S_IXGRP != 0 {
                mode &= !bfs::S_ISGID;
            }
            i.mode = mode.into();
        }
        match a.atime {
            Some(TimeOrNow::Time(ts)) => i.set_atime(ts),
            Some(TimeOrNow::Now) => i.set_atime(t),
            None => {}
        }
        match a.mtime {
            Some(TimeOrNow::Time(ts)) => i.set_mtime(ts),
            Some(TimeOrNow::Now) => i.set_mtime(t),
            None => {}
        }
        i.set_ctime(a.ctime.unwrap_or(t));
        self.attr(ino)
    }

    pub(crate) fn touch_dir(&mut self, dir: u32, t: Timespec) -> Result<()> {
        let i = self.inode_mut(dir)?;
        i.set_mtime(t);
        i.set_ctime(t);
        Ok(())
    }

    pub(crate) fn add_nlink(&mut self, ino: u32, delta: i32, t: Timespec) -> Result<()> {
        let i = self.inode_mut(ino)?;
        let n = i.nlink.get().saturating_add_signed(delta);
        i.nlink = n.into();
        i.set_ctime(t);
        Ok(())
    }
}
