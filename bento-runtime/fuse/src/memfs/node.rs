//! The inode table: every inode with its attributes, references and contents, and the
//! bookkeeping shared by the operations (links, freeing, creating nodes, sizes).

use std::collections::{BTreeMap, HashMap};
use std::vec::Vec;

use bento_api::errno::{Errno, Result};
use bento_api::fs::{Entry, FileAttr, FileType, Ino, ROOT_INO, Request, Timespec};
use bento_api::ks::time::now;

use super::dir::{Dir, check_name};
use super::{BLKSIZE, MAX_FILE_SIZE};

pub(super) struct State {
    pub(super) inodes: HashMap<Ino, Inode>,
    pub(super) next_ino: Ino,
    pub(super) next_fh: u64,
}

pub(super) struct Inode {
    pub(super) attr: FileAttr,
    /// References held by the front end (lookup replies minus forgets).
    pub(super) lookups: u64,
    /// Open file and directory handles.
    pub(super) opens: u64,
    pub(super) xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(super) data: Data,
}

pub(super) enum Data {
    File(Vec<u8>),
    Dir(Dir),
    Symlink(Vec<u8>),
    Special,
}

impl State {
    pub(super) fn inode(&self, ino: Ino) -> Result<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    pub(super) fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    pub(super) fn dir(&self, ino: Ino) -> Result<&Dir> {
        match &self.inode(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub(super) fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir> {
        match &mut self.inode_mut(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The reply to a successful lookup-like call: counts one front-end reference.
    pub(super) fn entry(&mut self, ino: Ino) -> Result<Entry> {
        let inode = self.inode_mut(ino)?;
        inode.lookups += 1;
        Ok(Entry { attr: inode.attr })
    }

    pub(super) fn touch(&mut self, ino: Ino, now: Timespec) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.attr.mtime = now;
            inode.attr.ctime = now;
        }
    }

    pub(super) fn change_links(&mut self, ino: Ino, delta: i32, now: Timespec) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.attr.nlink = inode.attr.nlink.saturating_add_signed(delta);
            inode.attr.ctime = now;
        }
        self.maybe_free(ino);
    }

    /// Drop an inode nothing refers to any more: no name, no front-end reference, not open.
    pub(super) fn maybe_free(&mut self, ino: Ino) {
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

    pub(super) fn new_inode(
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
    pub(super) fn create_node(
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

    pub(super) fn is_ancestor(&self, ancestor: Ino, mut ino: Ino) -> bool {
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

    pub(super) fn set_size(&mut self, ino: Ino, size: u64) -> Result<()> {
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
