//! The [`FileSystem`] operations, on the inode table under its lock.

use std::sync::atomic::Ordering;
use std::vec::Vec;

use bento_api::errno::{Errno, Result};
use bento_api::fs::{
    DirFiller, Entry, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FileAttr, FileSystem, FileType,
    Ino, NAME_MAX, Opened, RenameFlags, Request, S_IFMT, SetAttr, Statfs, TimeOrNow, Timespec,
    XATTR_CREATE, XATTR_REPLACE,
};
use bento_api::ks::block::{BLOCK_SIZE, WriteFlags};
use bento_api::ks::time::now;

use super::dir::{DOT_COOKIE, DOTDOT_COOKIE, Dir, check_name};
use super::node::{Data, State};
use super::{MAGIC, MAX_FILE_SIZE, MemFs};

fn apply_time(t: TimeOrNow, now: Timespec) -> Timespec {
    match t {
        TimeOrNow::Now => now,
        TimeOrNow::Time(t) => t,
    }
}

impl FileSystem for MemFs {
    fn destroy(&self) -> Result<()> {
        self.stats.destroys.fetch_add(1, Ordering::SeqCst);
        if let (Some(dev), false) = (&self.device, self.read_only) {
            let mut block = std::vec![0u8; BLOCK_SIZE];
            block[..8].copy_from_slice(MAGIC);
            block[8..16].copy_from_slice(&(self.generation + 1).to_le_bytes());
            dev.write_blocks(0, &block, WriteFlags::COMMIT)?;
            dev.flush()?;
        }
        Ok(())
    }

    fn sync_fs(&self) -> Result<()> {
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result<Entry> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut st = self.state.lock();
        let dir = st.dir(parent)?;
        let ino = match name {
            b"." => parent,
            b".." => dir.parent,
            _ => dir.get(name).ok_or(Errno::ENOENT)?,
        };
        st.entry(ino)
    }

    fn forget(&self, ino: Ino, nlookup: u64) {
        self.stats.forgotten.fetch_add(nlookup, Ordering::Relaxed);
        let mut st = self.state.lock();
        if let Some(inode) = st.inodes.get_mut(&ino) {
            inode.lookups = inode.lookups.saturating_sub(nlookup);
        }
        st.maybe_free(ino);
    }

    fn getattr(&self, _req: &Request, ino: Ino) -> Result<FileAttr> {
        Ok(self.state.lock().inode(ino)?.attr)
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: Ino,
        attr: &SetAttr,
        _fh: Option<u64>,
    ) -> Result<FileAttr> {
        self.writable()?;
        let mut st = self.state.lock();
        let now = now();
        st.inode(ino)?;
        if let Some(size) = attr.size {
            st.set_size(ino, size)?;
            let inode = st.inode_mut(ino)?;
            inode.attr.mtime = now;
        }
        let inode = st.inode_mut(ino)?;
        if let Some(mode) = attr.mode {
            inode.attr.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = attr.uid {
            inode.attr.uid = uid;
        }
        if let Some(gid) = attr.gid {
            inode.attr.gid = gid;
        }
        if attr.kill_suid {
            inode.attr.perm &= !0o6000;
        }
        if let Some(t) = attr.atime {
            inode.attr.atime = apply_time(t, now);
        }
        if let Some(t) = attr.mtime {
            inode.attr.mtime = apply_time(t, now);
        }
        inode.attr.ctime = attr.ctime.unwrap_or(now);
        Ok(inode.attr)
    }

    fn readlink(&self, _req: &Request, ino: Ino) -> Result<Vec<u8>> {
        match &self.state.lock().inode(ino)?.data {
            Data::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry> {
        self.writable()?;
        let kind = FileType::from_mode(mode & S_IFMT).ok_or(Errno::EINVAL)?;
        let data = match kind {
            FileType::RegularFile => Data::File(Vec::new()),
            FileType::Directory | FileType::Symlink => return Err(Errno::EINVAL),
            _ => Data::Special,
        };
        let rdev = if matches!(kind, FileType::CharDevice | FileType::BlockDevice) {
            rdev
        } else {
            0
        };
        self.state
            .lock()
            .create_node(req, parent, name, kind, mode, rdev, data)
    }

    fn mkdir(&self, req: &Request, parent: Ino, name: &[u8], mode: u32) -> Result<Entry> {
        self.writable()?;
        self.state.lock().create_node(
            req,
            parent,
            name,
            FileType::Directory,
            mode,
            0,
            Data::Dir(Dir::new(parent)),
        )
    }

    fn unlink(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result<()> {
        self.writable()?;
        let mut st = self.state.lock();
        let ino = st.dir(parent)?.get(name).ok_or(Errno::ENOENT)?;
        if st.inode(ino)?.attr.kind == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        st.dir_mut(parent)?.remove(name);
        let now = now();
        st.touch(parent, now);
        st.change_links(ino, -1, now);
        Ok(())
    }

    fn rmdir(&self, _req: &Request, parent: Ino, name: &[u8]) -> Result<()> {
        self.writable()?;
        let mut st = self.state.lock();
        let ino = st.dir(parent)?.get(name).ok_or(Errno::ENOENT)?;
        if !st.dir(ino)?.by_cookie.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        st.dir_mut(parent)?.remove(name);
        let now = now();
        st.touch(parent, now);
        st.change_links(parent, -1, now);
        // Drops both the name and "." links.
        st.change_links(ino, -2, now);
        Ok(())
    }

    fn symlink(&self, req: &Request, parent: Ino, name: &[u8], target: &[u8]) -> Result<Entry> {
        self.writable()?;
        if target.is_empty() || target.len() >= 4096 {
            return Err(if target.is_empty() {
                Errno::ENOENT
            } else {
                Errno::ENAMETOOLONG
            });
        }
        let data = Data::Symlink(target.to_vec());
        self.state
            .lock()
            .create_node(req, parent, name, FileType::Symlink, 0o777, 0, data)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        self.writable()?;
        if flags.0 & !(RenameFlags::NOREPLACE | RenameFlags::EXCHANGE) != 0
            || (flags.noreplace() && flags.exchange())
        {
            return Err(Errno::EINVAL);
        }
        check_name(newname)?;
        let mut st = self.state.lock();
        let ino = st.dir(parent)?.get(name).ok_or(Errno::ENOENT)?;
        let target = st.dir(newparent)?.get(newname);
        let now = now();
        let is_dir = |st: &State, ino: Ino| {
            st.inodes
                .get(&ino)
                .is_some_and(|i| i.attr.kind == FileType::Directory)
        };

        if flags.exchange() {
            let other = target.ok_or(Errno::ENOENT)?;
            if ino == other {
                return Ok(());
            }
            // Neither may end up inside itself.
            if (is_dir(&st, ino) && st.is_ancestor(ino, newparent))
                || (is_dir(&st, other) && st.is_ancestor(other, parent))
            {
                return Err(Errno::EINVAL);
            }
            st.dir_mut(parent)?.replace(name, other);
            st.dir_mut(newparent)?.replace(newname, ino);
            for (moved, from, to) in [(ino, parent, newparent), (other, newparent, parent)] {
                if is_dir(&st, moved) && from != to {
                    st.dir_mut(moved)?.parent = to;
                    st.change_links(from, -1, now);
                    st.change_links(to, 1, now);
                }
                if let Ok(inode) = st.inode_mut(moved) {
                    inode.attr.ctime = now;
                }
            }
            st.touch(parent, now);
            st.touch(newparent, now);
            return Ok(());
        }

        if let Some(target) = target {
            if flags.noreplace() {
                return Err(Errno::EEXIST);
            }
            if target == ino {
                return Ok(());
            }
            match (is_dir(&st, ino), is_dir(&st, target)) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !st.dir(target)?.by_cookie.is_empty() => {
                    return Err(Errno::ENOTEMPTY);
                }
                _ => {}
            }
        }
        if is_dir(&st, ino) && st.is_ancestor(ino, newparent) {
            return Err(Errno::EINVAL);
        }
        // Take the source out, then put it in place of (or beside) the target.
        st.dir_mut(parent)?.remove(name);
        if let Some(target) = target {
            st.dir_mut(newparent)?.replace(newname, ino);
            if is_dir(&st, target) {
                st.change_links(newparent, -1, now);
                st.change_links(target, -2, now);
            } else {
                st.change_links(target, -1, now);
            }
        } else {
            st.dir_mut(newparent)?.insert(newname, ino);
        }
        if is_dir(&st, ino) && parent != newparent {
            st.dir_mut(ino)?.parent = newparent;
            st.change_links(parent, -1, now);
            st.change_links(newparent, 1, now);
        }
        st.inode_mut(ino)?.attr.ctime = now;
        st.touch(parent, now);
        st.touch(newparent, now);
        Ok(())
    }

    fn link(&self, _req: &Request, ino: Ino, newparent: Ino, newname: &[u8]) -> Result<Entry> {
        self.writable()?;
        check_name(newname)?;
        let mut st = self.state.lock();
        if st.inode(ino)?.attr.kind == FileType::Directory {
            return Err(Errno::EPERM);
        }
        if st.dir(newparent)?.get(newname).is_some() {
            return Err(Errno::EEXIST);
        }
        st.dir_mut(newparent)?.insert(newname, ino);
        let now = now();
        st.touch(newparent, now);
        st.change_links(ino, 1, now);
        st.entry(ino)
    }

    fn open(&self, _req: &Request, ino: Ino, flags: i32) -> Result<Opened> {
        let mut st = self.state.lock();
        let inode = st.inode_mut(ino)?;
        if inode.attr.kind == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        if self.read_only && flags & 0o3 != 0 {
            return Err(Errno::EROFS);
        }
        inode.opens += 1;
        let fh = st.next_fh;
        st.next_fh += 1;
        Ok(Opened { fh, flags: 0 })
    }

    fn read(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let st = self.state.lock();
        match &st.inode(ino)?.data {
            Data::File(data) => {
                let start = (offset.min(data.len() as u64)) as usize;
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            Data::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn write(&self, _req: &Request, ino: Ino, _fh: u64, offset: u64, data: &[u8]) -> Result<usize> {
        self.writable()?;
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .max_write
            .fetch_max(data.len() as u64, Ordering::Relaxed);
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut st = self.state.lock();
        let inode = st.inode_mut(ino)?;
        let Data::File(file) = &mut inode.data else {
            return Err(if inode.attr.kind == FileType::Directory {
                Errno::EISDIR
            } else {
                Errno::EINVAL
            });
        };
        if file.len() < end as usize {
            file.resize(end as usize, 0);
        }
        file[offset as usize..end as usize].copy_from_slice(data);
        let now = now();
        inode.attr.size = file.len() as u64;
        inode.attr.blocks = inode.attr.size.div_ceil(512);
        inode.attr.mtime = now;
        inode.attr.ctime = now;
        Ok(data.len())
    }

    fn release(&self, _req: &Request, ino: Ino, _fh: u64, _flags: i32) -> Result<()> {
        let mut st = self.state.lock();
        if let Ok(inode) = st.inode_mut(ino) {
            inode.opens = inode.opens.saturating_sub(1);
        }
        st.maybe_free(ino);
        Ok(())
    }

    fn fsync(&self, _req: &Request, _ino: Ino, _fh: u64, _datasync: bool) -> Result<()> {
        Ok(())
    }

    fn opendir(&self, _req: &Request, ino: Ino, _flags: i32) -> Result<Opened> {
        let mut st = self.state.lock();
        st.dir(ino)?;
        st.inode_mut(ino)?.opens += 1;
        let fh = st.next_fh;
        st.next_fh += 1;
        Ok(Opened { fh, flags: 0 })
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        out: &mut dyn DirFiller,
    ) -> Result<()> {
        let st = self.state.lock();
        let dir = st.dir(ino)?;
        if offset < DOT_COOKIE && out.add(ino, DOT_COOKIE, FileType::Directory, b".") {
            return Ok(());
        }
        if offset < DOTDOT_COOKIE && out.add(dir.parent, DOTDOT_COOKIE, FileType::Directory, b"..")
        {
            return Ok(());
        }
        for (&cookie, (name, child)) in dir.by_cookie.range(offset.max(DOTDOT_COOKIE) + 1..) {
            let kind = st.inode(*child)?.attr.kind;
            if out.add(*child, cookie, kind, name) {
                break;
            }
        }
        Ok(())
    }

    fn releasedir(&self, _req: &Request, ino: Ino, _fh: u64) -> Result<()> {
        let mut st = self.state.lock();
        if let Ok(inode) = st.inode_mut(ino) {
            inode.opens = inode.opens.saturating_sub(1);
        }
        st.maybe_free(ino);
        Ok(())
    }

    fn fsyncdir(&self, _req: &Request, _ino: Ino, _fh: u64, _datasync: bool) -> Result<()> {
        Ok(())
    }

    fn statfs(&self, _req: &Request, _ino: Ino) -> Result<Statfs> {
        Ok(self.statfs)
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<()> {
        self.writable()?;
        if name.is_empty() || name.len() > 255 {
            return Err(Errno::ERANGE);
        }
        let mut st = self.state.lock();
        let inode = st.inode_mut(ino)?;
        let exists = inode.xattrs.contains_key(name);
        if flags & XATTR_CREATE != 0 && exists {
            return Err(Errno::EEXIST);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return Err(Errno::ENODATA);
        }
        inode.xattrs.insert(name.to_vec(), value.to_vec());
        inode.attr.ctime = now();
        Ok(())
    }

    fn getxattr(&self, _req: &Request, ino: Ino, name: &[u8]) -> Result<Vec<u8>> {
        self.state
            .lock()
            .inode(ino)?
            .xattrs
            .get(name)
            .cloned()
            .ok_or(Errno::ENODATA)
    }

    fn listxattr(&self, _req: &Request, ino: Ino) -> Result<Vec<u8>> {
        let st = self.state.lock();
        let mut list = Vec::new();
        for name in st.inode(ino)?.xattrs.keys() {
            list.extend_from_slice(name);
            list.push(0);
        }
        Ok(list)
    }

    fn removexattr(&self, _req: &Request, ino: Ino, name: &[u8]) -> Result<()> {
        self.writable()?;
        let mut st = self.state.lock();
        let inode = st.inode_mut(ino)?;
        inode.xattrs.remove(name).ok_or(Errno::ENODATA)?;
        inode.attr.ctime = now();
        Ok(())
    }

    fn access(&self, _req: &Request, ino: Ino, _mask: i32) -> Result<()> {
        self.state.lock().inode(ino).map(|_| ())
    }

    fn create(
        &self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        mode: u32,
        _flags: i32,
    ) -> Result<(Entry, Opened)> {
        self.writable()?;
        let mut st = self.state.lock();
        let entry = st.create_node(
            req,
            parent,
            name,
            FileType::RegularFile,
            mode,
            0,
            Data::File(Vec::new()),
        )?;
        st.inode_mut(entry.attr.ino)?.opens += 1;
        let fh = st.next_fh;
        st.next_fh += 1;
        Ok((entry, Opened { fh, flags: 0 }))
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: Ino,
        _fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<()> {
        self.writable()?;
        let end = offset.checked_add(length).ok_or(Errno::EFBIG)?;
        let mut st = self.state.lock();
        let size = st.inode(ino)?.attr.size;
        match mode {
            0 => {
                if end > size {
                    st.set_size(ino, end)?;
                }
            }
            FALLOC_FL_KEEP_SIZE => st.inode(ino).map(|_| ())?,
            m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
                if let Data::File(data) = &mut st.inode_mut(ino)?.data {
                    let (start, end) = (offset.min(size) as usize, end.min(size) as usize);
                    data[start..end].fill(0);
                } else {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::EOPNOTSUPP),
        }
        let now = now();
        st.touch(ino, now);
        Ok(())
    }
}
