//! memfs: a small file system in memory, for testing front ends (the FUSE adapter, the
//! `logfs-fuse` binary) independently of any real file system.
//!
//! Everything lives in one mutex-protected table. It implements every [`FileSystem`] operation
//! with Linux semantics (rename flags, xattr flags, hard links, unlinked-but-open files,
//! readdir cookies that stay valid while the directory changes) but checks no permissions:
//! front ends mount it with the kernel checking them (`default_permissions`).
//!
//! Mounted on a block device ([`Mount`]), memfs keeps nothing there but a label in block 0,
//! rewritten by `destroy` with a count of clean unmounts, so tests can see that `destroy` ran
//! and finished. A device whose block 0 is neither zeros nor a memfs label is refused.

use std::boxed::Box;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::vec::Vec;

use bento_api::errno::{Errno, Result};
use bento_api::fs::{
    DirFiller, Entry, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FileAttr, FileSystem, FileType,
    Ino, Mount, MountOptions, NAME_MAX, Opened, ROOT_INO, RenameFlags, Request, S_IFMT, SetAttr,
    Statfs, TimeOrNow, Timespec, XATTR_CREATE, XATTR_REPLACE,
};
use bento_api::ks::block::{BLOCK_SIZE, BlockDevice, WriteFlags};
use bento_api::ks::sync::Mutex;
use bento_api::ks::time::now;

/// The label memfs keeps in block 0 of its device.
pub const MAGIC: &[u8; 8] = b"MEMFS\0\0\x01";

const BLKSIZE: u32 = 4096;
/// The largest file memfs accepts.
const MAX_FILE_SIZE: u64 = 1 << 32;

/// Counters a test can watch while the file system is owned by a front end.
#[derive(Debug, Default)]
pub struct MemFsStats {
    /// Calls of `destroy`.
    pub destroys: AtomicU64,
    /// The largest single write request seen.
    pub max_write: AtomicU64,
    /// Write requests.
    pub writes: AtomicU64,
    /// Lookup references dropped by `forget`.
    pub forgotten: AtomicU64,
}

/// The in-memory file system.
pub struct MemFs {
    state: Mutex<State>,
    stats: Arc<MemFsStats>,
    statfs: Statfs,
    read_only: bool,
    device: Option<Box<dyn BlockDevice>>,
    /// Clean unmounts recorded on the device before this mount.
    generation: u64,
}

struct State {
    inodes: HashMap<Ino, Inode>,
    next_ino: Ino,
    next_fh: u64,
}

struct Inode {
    attr: FileAttr,
    /// References held by the front end (lookup replies minus forgets).
    lookups: u64,
    /// Open file and directory handles.
    opens: u64,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    data: Data,
}

enum Data {
    File(Vec<u8>),
    Dir(Dir),
    Symlink(Vec<u8>),
    Special,
}

struct Dir {
    parent: Ino,
    /// Entries by cookie; cookies only grow, so a listing resumes correctly after changes.
    by_cookie: BTreeMap<u64, (Vec<u8>, Ino)>,
    by_name: HashMap<Vec<u8>, u64>,
    next_cookie: u64,
}

/// Cookies of "." and ".."; entries start after them.
const DOT_COOKIE: u64 = 1;
const DOTDOT_COOKIE: u64 = 2;

impl Dir {
    fn new(parent: Ino) -> Dir {
        Dir {
            parent,
            by_cookie: BTreeMap::new(),
            by_name: HashMap::new(),
            next_cookie: DOTDOT_COOKIE + 1,
        }
    }

    fn get(&self, name: &[u8]) -> Option<Ino> {
        self.by_name.get(name).map(|c| self.by_cookie[c].1)
    }

    fn insert(&mut self, name: &[u8], ino: Ino) {
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        self.by_cookie.insert(cookie, (name.to_vec(), ino));
        self.by_name.insert(name.to_vec(), cookie);
    }

    fn remove(&mut self, name: &[u8]) -> Option<Ino> {
        let cookie = self.by_name.remove(name)?;
        self.by_cookie.remove(&cookie).map(|(_, ino)| ino)
    }

    /// Point an existing name at another inode, keeping its place in the listing.
    fn replace(&mut self, name: &[u8], ino: Ino) {
        if let Some(entry) = self
            .by_name
            .get(name)
            .and_then(|c| self.by_cookie.get_mut(c))
        {
            entry.1 = ino;
        }
    }
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        Err(Errno::ENAMETOOLONG)
    } else if name.is_empty()
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&0)
    {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

fn apply_time(t: TimeOrNow, now: Timespec) -> Timespec {
    match t {
        TimeOrNow::Now => now,
        TimeOrNow::Time(t) => t,
    }
}

impl State {
    fn inode(&self, ino: Ino) -> Result<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir> {
        match &self.inode(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir> {
        match &mut self.inode_mut(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The reply to a successful lookup-like call: counts one front-end reference.
    fn entry(&mut self, ino: Ino) -> Result<Entry> {
        let inode = self.inode_mut(ino)?;
        inode.lookups += 1;
        Ok(Entry { attr: inode.attr })
    }

    fn touch(&mut self, ino: Ino, now: Timespec) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.attr.mtime = now;
            inode.attr.ctime = now;
        }
    }

    fn change_links(&mut self, ino: Ino, delta: i32, now: Timespec) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.attr.nlink = inode.attr.nlink.saturating_add_signed(delta);
            inode.attr.ctime = now;
        }
        self.maybe_free(ino);
    }

    /// Drop an inode nothing refers to any more: no name, no front-end reference, not open.
    fn maybe_free(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get(&ino) {
            let unlinked = match inode.data {
                // A removed directory keeps its "." link until then; count it as gone.
                Data::Dir(_) => inode.attr.nlink <= 1,
                _ => inode.attr.nlink == 0,
            };
            if ino != ROOT_INO && unlinked && inode.lookups == 0 && inode.opens == 0 {
                self.inodes.remove(&ino);
            }
        }
    }

    fn new_inode(
        &mut self,
        req: &Request,
        kind: FileType,
        mode: u32,
        rdev: u32,
        data: Data,
    ) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        let now = now();
        let attr = FileAttr {
            ino,
            size: match &data {
                Data::Symlink(t) => t.len() as u64,
                Data::Dir(_) => u64::from(BLKSIZE),
                _ => 0,
            },
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            kind,
            perm: (mode & 0o7777) as u16,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: req.uid,
            gid: req.gid,
            rdev,
            blksize: BLKSIZE,
            generation: 1,
        };
        self.inodes.insert(
            ino,
            Inode {
                attr,
                lookups: 0,
                opens: 0,
                xattrs: BTreeMap::new(),
                data,
            },
        );
        ino
    }

    /// Create `name` in `parent` and return its entry.
    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        req: &Request,
        parent: Ino,
        name: &[u8],
        kind: FileType,
        mode: u32,
        rdev: u32,
        data: Data,
    ) -> Result<Entry> {
        check_name(name)?;
        if self.dir(parent)?.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let ino = self.new_inode(req, kind, mode, rdev, data);
        self.dir_mut(parent)?.insert(name, ino);
        let now = self.inodes[&ino].attr.ctime;
        self.touch(parent, now);
        if kind == FileType::Directory {
            self.change_links(parent, 1, now);
        }
        self.entry(ino)
    }

    fn is_ancestor(&self, ancestor: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.dir(ino) {
                Ok(d) if ino != ROOT_INO => ino = d.parent,
                _ => return false,
            }
        }
    }

    fn set_size(&mut self, ino: Ino, size: u64) -> Result<()> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let inode = self.inode_mut(ino)?;
        match &mut inode.data {
            Data::File(data) => {
                data.resize(size as usize, 0);
                inode.attr.size = size;
                inode.attr.blocks = size.div_ceil(512);
                Ok(())
            }
            Data::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl Default for MemFs {
    fn default() -> Self {
        MemFs::new()
    }
}

impl MemFs {
    /// An empty file system with a root directory owned by root, mode 0755.
    pub fn new() -> MemFs {
        let mut state = State {
            inodes: HashMap::new(),
            next_ino: ROOT_INO,
            next_fh: 1,
        };
        let root = state.new_inode(
            &Request::ROOT,
            FileType::Directory,
            0o755,
            0,
            Data::Dir(Dir::new(ROOT_INO)),
        );
        debug_assert_eq!(root, ROOT_INO);
        MemFs {
            state: Mutex::new(state),
            stats: Arc::new(MemFsStats::default()),
            statfs: Statfs {
                blocks: 1 << 20,
                bfree: 1 << 19,
                bavail: 1 << 18,
                files: 1 << 16,
                ffree: 1 << 15,
                bsize: BLKSIZE,
                namelen: NAME_MAX as u32,
                frsize: BLKSIZE,
            },
            read_only: false,
            device: None,
            generation: 0,
        }
    }

    /// Report these numbers from `statfs`.
    pub fn with_statfs(mut self, statfs: Statfs) -> MemFs {
        self.statfs = statfs;
        self
    }

    /// Counters shared with whoever owns the file system.
    pub fn stats(&self) -> Arc<MemFsStats> {
        self.stats.clone()
    }

    /// Clean unmounts recorded on the device before this mount.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Read a device's memfs label: `Some(clean unmounts)`, `Some(0)` for a blank device, or
    /// `None` for something else.
    pub fn read_label(block0: &[u8]) -> Option<u64> {
        if block0.iter().all(|&b| b == 0) {
            Some(0)
        } else if block0.len() >= 16 && &block0[..8] == MAGIC {
            Some(u64::from_le_bytes(block0[8..16].try_into().ok()?))
        } else {
            None
        }
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

impl<D: BlockDevice + 'static> Mount<D> for MemFs {
    const NAME: &'static str = "memfs";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn mount(dev: D, options: &MountOptions) -> Result<Self> {
        if dev.block_count() < 1 {
            bento_api::error!("memfs: the device is empty");
            return Err(Errno::EINVAL);
        }
        let mut block = std::vec![0u8; BLOCK_SIZE];
        dev.read_blocks(0, &mut block)?;
        let Some(generation) = MemFs::read_label(&block) else {
            bento_api::error!("memfs: not a memfs device (block 0 holds something else)");
            return Err(Errno::EINVAL);
        };
        if let Some(option) = options.fs_options.split(',').find(|o| !o.is_empty()) {
            bento_api::error!("memfs: unknown option {option:?}");
            return Err(Errno::EINVAL);
        }
        let mut fs = MemFs::new();
        fs.read_only = options.read_only;
        fs.generation = generation;
        fs.device = Some(Box::new(dev));
        Ok(fs)
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
