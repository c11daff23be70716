//! The namespace: lookup, and the operations that add, remove or move names (mknod, mkdir,
//! symlink, create, link, unlink, rmdir, rename). The names themselves live in hashed
//! directories (`dir`); here is what changes with them: link counts, parents, times, orphans.

use bento_runtime::Errno;
use bento_runtime::fs::{self as bfs, Entry, FileType, RenameFlags, Request};
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result};
use crate::format::layout::BLOCK_SIZE;
use crate::fs::{LINK_MAX, SINCE_CP_NAMES, Volume, now};

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL.into());
    }
    if name.len() > bfs::NAME_MAX {
        return Err(Errno::ENAMETOOLONG.into());
    }
    Ok(())
}

impl<D: BlockDevice> Volume<D> {
    pub(crate) fn dir_of(&mut self, ino: u32) -> Result<()> {
        match self.file_type(ino)? {
            FileType::Directory => Ok(()),
            _ => Err(Errno::ENOTDIR.into()),
        }
    }

    /// Room for the reference counts a creating call adds at its end, reserved before it
    /// changes anything: the call then cannot fail for memory after it did.
    fn reserve_refs(&mut self) -> Result<()> {
        self.lookups.try_reserve(1).map_err(crate::mem::oom)?;
        self.opens.try_reserve(1).map_err(crate::mem::oom)
    }

    fn counted_lookup(&mut self, ino: u32) -> Result<Entry> {
        let attr = self.attr(ino)?;
        // Creating calls reserved the room before changing anything (`reserve_refs`).
        self.lookups.try_reserve(1).map_err(crate::mem::oom)?;
        #[allow(clippy::disallowed_methods)] // Room reserved.
        let n = self.lookups.entry(ino).or_insert(0);
        *n = n.saturating_add(1);
        Ok(Entry { attr })
    }

    pub fn lookup(&mut self, parent: u32, name: &[u8]) -> Result<Entry> {
        self.dir_of(parent)?;
        if name.len() > bfs::NAME_MAX {
            return Err(Errno::ENAMETOOLONG.into());
        }
        let ino = match name {
            b"." => parent,
            b".." => self.inode(parent)?.inode().parent.get(),
            _ => {
                self.dir_find(parent, name)?
                    .ok_or(Error::Errno(Errno::ENOENT))?
                    .ino
            }
        };
        self.counted_lookup(ino)
    }

    /// Create an inode named `name` in `parent`: the common part of mknod, mkdir, symlink, create.
    fn make(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        mode: u32,
        rdev: u32,
        target: Option<&[u8]>,
    ) -> Result<Entry> {
        self.check_writable()?;
        self.reserve_refs()?;
        check_name(name)?;
        self.dir_of(parent)?;
        if FileType::from_mode(mode).is_none() {
            return Err(Errno::EINVAL.into());
        }
        if self.dir_find(parent, name)?.is_some() || name == b"." || name == b".." {
            return Err(Errno::EEXIST.into());
        }
        let is_dir = mode & bfs::S_IFMT == bfs::S_IFDIR;
        if is_dir && self.inode(parent)?.inode().nlink.get() >= LINK_MAX {
            return Err(Errno::EMLINK.into());
        }
        let target_blocks = target.map_or(0, |t| (t.len() / BLOCK_SIZE) as u64);
        self.ensure_space(target_blocks.saturating_add(4))?;
        let ino = self.new_inode(req, parent, name, mode, rdev)?;
        let kind = FileType::from_mode(mode).map_or(0, |k| k.dirent_type());
        let r = (|| {
            if let Some(t) = target {
                self.write_data(ino, 0, t)?;
            }
            self.dir_add(parent, name, ino, kind)
        })();
        if let Err(e) = r {
            self.inode_mut(ino)?.nlink = 0.into();
            self.free_inode(ino)?;
            return Err(e);
        }
        let t = now();
        if is_dir {
            self.add_nlink(parent, 1, t)?;
            self.inode_mut(ino)?.parent = parent.into();
        }
        self.touch_dir(parent, t)?;
        self.counted_lookup(ino)
    }

    pub fn mknod(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry> {
        if mode & bfs::S_IFMT == bfs::S_IFDIR || mode & bfs::S_IFMT == bfs::S_IFLNK {
            return Err(Errno::EINVAL.into());
        }
        let mode = if mode & bfs::S_IFMT == 0 {
            mode | bfs::S_IFREG
        } else {
            mode
        };
        self.make(req, parent, name, mode, rdev, None)
    }

    pub fn mkdir(&mut self, req: &Request, parent: u32, name: &[u8], mode: u32) -> Result<Entry> {
        self.make(req, parent, name, bfs::S_IFDIR | (mode & 0o7777), 0, None)
    }

    pub fn symlink(
        &mut self,
        req: &Request,
        parent: u32,
        name: &[u8],
        target: &[u8],
    ) -> Result<Entry> {
        if target.is_empty() || target.len() >= 4096 {
            return Err(if target.is_empty() {
                Errno::ENOENT
            } else {
                Errno::ENAMETOOLONG
            }
            .into());
        }
        self.make(req, parent, name, bfs::S_IFLNK | 0o777, 0, Some(target))
    }

    pub fn create(&mut self, req: &Request, parent: u32, name: &[u8], mode: u32) -> Result<Entry> {
        let e = self.make(req, parent, name, bfs::S_IFREG | (mode & 0o7777), 0, None)?;
        #[allow(clippy::disallowed_methods)] // make() reserved the room.
        let n = self.opens.entry(e.attr.ino as u32).or_insert(0);
        *n = n.saturating_add(1);
        Ok(e)
    }

    pub fn link(&mut self, ino: u32, newparent: u32, newname: &[u8]) -> Result<Entry> {
        self.check_writable()?;
        self.reserve_refs()?;
        check_name(newname)?;
        self.dir_of(newparent)?;
        if self.file_type(ino)? == FileType::Directory {
            return Err(Errno::EPERM.into());
        }
        if self.inode(ino)?.inode().nlink.get() >= LINK_MAX {
            return Err(Errno::EMLINK.into());
        }
        if self.dir_find(newparent, newname)?.is_some() {
            return Err(Errno::EEXIST.into());
        }
        self.ensure_space(4)?;
        let kind = self.file_type(ino)?.dirent_type();
        self.dir_add(newparent, newname, ino, kind)?;
        self.note_since_cp(ino, SINCE_CP_NAMES);
        let t = now();
        self.add_nlink(ino, 1, t)?;
        self.orphans.remove(&ino);
        self.touch_dir(newparent, t)?;
        self.counted_lookup(ino)
    }

    pub fn unlink(&mut self, parent: u32, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        // The inode may become an orphan: room for it before anything changes.
        self.orphans.try_reserve(1).map_err(crate::mem::oom)?;
        self.dir_of(parent)?;
        let e = self
            .dir_find(parent, name)?
            .ok_or(Error::Errno(Errno::ENOENT))?;
        if self.file_type(e.ino)? == FileType::Directory {
            return Err(Errno::EISDIR.into());
        }
        self.ensure_space(2)?;
        self.dir_remove(parent, &e)?;
        let t = now();
        self.add_nlink(e.ino, -1, t)?;
        self.touch_dir(parent, t)?;
        self.maybe_free(e.ino)
    }

    pub fn rmdir(&mut self, parent: u32, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        // The inode may become an orphan: room for it before anything changes.
        self.orphans.try_reserve(1).map_err(crate::mem::oom)?;
        self.dir_of(parent)?;
        match name {
            b"." => return Err(Errno::EINVAL.into()),
            b".." => return Err(Errno::ENOTEMPTY.into()),
            _ => {}
        }
        let e = self
            .dir_find(parent, name)?
            .ok_or(Error::Errno(Errno::ENOENT))?;
        if self.file_type(e.ino)? != FileType::Directory {
            return Err(Errno::ENOTDIR.into());
        }
        if !self.dir_is_empty(e.ino)? {
            return Err(Errno::ENOTEMPTY.into());
        }
        self.ensure_space(2)?;
        self.dir_remove(parent, &e)?;
        let t = now();
        let i = self.inode_mut(e.ino)?;
        i.nlink = 0.into();
        i.set_ctime(t);
        self.add_nlink(parent, -1, t)?;
        self.touch_dir(parent, t)?;
        self.maybe_free(e.ino)
    }

    /// Is `dir` equal to `ancestor` or below it?
    fn is_within(&mut self, mut dir: u32, ancestor: u32) -> Result<bool> {
        for _ in 0..=self.valid_inodes {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == bfs::ROOT_INO as u32 {
                return Ok(false);
            }
            dir = self.inode(dir)?.inode().parent.get();
        }
        Err(Error::corrupt(
            "directory tree (parent loop)",
            u64::from(dir),
        ))
    }

    pub fn rename(
        &mut self,
        parent: u32,
        name: &[u8],
        newparent: u32,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        self.check_writable()?;
        // The inode may become an orphan: room for it before anything changes.
        self.orphans.try_reserve(1).map_err(crate::mem::oom)?;
        if flags.0 & !(RenameFlags::NOREPLACE | RenameFlags::EXCHANGE) != 0
            || (flags.noreplace() && flags.exchange())
        {
            return Err(Errno::EINVAL.into());
        }
        check_name(newname)?;
        self.dir_of(parent)?;
        self.dir_of(newparent)?;
        if matches!(name, b"." | b"..") || matches!(newname, b"." | b"..") {
            return Err(Errno::EINVAL.into());
        }
        let src = self
            .dir_find(parent, name)?
            .ok_or(Error::Errno(Errno::ENOENT))?;
        let dst = self.dir_find(newparent, newname)?;
        let src_dir = self.file_type(src.ino)? == FileType::Directory;
        let t = now();

        if flags.exchange() {
            let dst = dst.ok_or(Error::Errno(Errno::ENOENT))?;
            if src.ino == dst.ino {
                return Ok(());
            }
            let dst_dir = self.file_type(dst.ino)? == FileType::Directory;
            if (src_dir && self.is_within(newparent, src.ino)?)
                || (dst_dir && self.is_within(parent, dst.ino)?)
            {
                return Err(Errno::EINVAL.into());
            }
            self.ensure_space(4)?;
            let (src_kind, dst_kind) = (src.kind, dst.kind);
            self.dir_set_target(parent, &src, dst.ino, dst_kind)?;
            self.dir_set_target(newparent, &dst, src.ino, src_kind)?;
            if parent != newparent && src_dir != dst_dir {
                let (to_new, to_old) = if src_dir { (1, -1) } else { (-1, 1) };
                self.add_nlink(newparent, to_new, t)?;
                self.add_nlink(parent, to_old, t)?;
            }
            self.inode_mut(src.ino)?.set_name(newparent, newname);
            self.inode_mut(dst.ino)?.set_name(parent, name);
            for ino in [src.ino, dst.ino] {
                self.inode_mut(ino)?.set_ctime(t);
            }
            self.touch_dir(parent, t)?;
            self.touch_dir(newparent, t)?;
            return Ok(());
        }

        if let Some(d) = &dst {
            if flags.noreplace() {
                return Err(Errno::EEXIST.into());
            }
            if d.ino == src.ino {
                return Ok(());
            }
            let dst_dir = self.file_type(d.ino)? == FileType::Directory;
            match (src_dir, dst_dir) {
                (true, false) => return Err(Errno::ENOTDIR.into()),
                (false, true) => return Err(Errno::EISDIR.into()),
                (true, true) if !self.dir_is_empty(d.ino)? => return Err(Errno::ENOTEMPTY.into()),
                _ => {}
            }
        }
        if src_dir && self.is_within(newparent, src.ino)? {
            return Err(Errno::EINVAL.into());
        }
        self.ensure_space(6)?;
        match &dst {
            Some(d) => {
                self.dir_set_target(newparent, d, src.ino, src.kind)?;
                self.dir_remove(parent, &src)?;
                let replaced = d.ino;
                if src_dir {
                    self.inode_mut(replaced)?.nlink = 0.into();
                    self.add_nlink(newparent, -1, t)?;
                } else {
                    self.add_nlink(replaced, -1, t)?;
                }
                self.maybe_free(replaced)?;
            }
            None => {
                self.dir_add(newparent, newname, src.ino, src.kind)?;
                self.dir_remove(parent, &src)?;
            }
        }
        if src_dir && parent != newparent {
            self.add_nlink(parent, -1, t)?;
            self.add_nlink(newparent, 1, t)?;
        }
        let i = self.inode_mut(src.ino)?;
        i.set_name(newparent, newname);
        i.set_ctime(t);
        self.touch_dir(parent, t)?;
        self.touch_dir(newparent, t)
    }
}
