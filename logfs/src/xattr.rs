//! Extended attributes of a mounted volume: names split into a namespace and a suffix, and the
//! inode's one xattr node (`format::xattr`) rebuilt on every change.

use alloc::vec::Vec;

use bento_runtime::Errno;
use bento_runtime::fs::{XATTR_CREATE, XATTR_REPLACE};
use bento_runtime::ks::block::BlockDevice;

use crate::error::{Error, Result};
use crate::format::node::{KIND_XATTR, XATTR_NODE_OFFSET};
use crate::format::xattr::{XATTR_PREFIXES as PREFIXES, XATTR_SPACE, XEntry, XattrBody};
use crate::fs::Volume;

/// A read-only attribute of the root directory reporting the mount's counters.
pub const STATS_XATTR: &[u8] = b"trusted.logfs.stats";

/// Split a full name into its namespace index and the stored suffix.
fn split_name(name: &[u8]) -> Result<(u8, &[u8])> {
    for (index, prefix) in PREFIXES {
        if let Some(rest) = name.strip_prefix(prefix) {
            if rest.is_empty() {
                return Err(Errno::EINVAL.into());
            }
            if name.len() > 255 {
                return Err(Errno::ERANGE.into());
            }
            return Ok((index, rest));
        }
    }
    Err(Errno::EOPNOTSUPP.into())
}

fn parse(body: &[u8]) -> Result<Vec<XEntry<'_>>> {
    // xattr_body() checked the body: a bad one here is an in-memory bug.
    XattrBody::try_parse(body)?.ok_or(Error::Errno(Errno::EIO))
}

impl<D: BlockDevice> Volume<D> {
    /// The counters `trusted.logfs.stats` shows, one `name value` per line.
    fn stats_text(&self) -> Result<Vec<u8>> {
        let s = &self.stats;
        let mut t = crate::mem::format(format_args!(
            "version {}\ncheckpoints {}\nfsyncs {}\nrecovered_nodes {}\ngc_segments {}\ngc_moved_blocks {}\n",
            crate::fs::VERSION,
            s.checkpoints,
            s.fsyncs,
            s.recovered_nodes,
            s.gc_segments,
            s.gc_moved_blocks
        ))?;
        let (nodes, dirs, nat) = self.cached();
        let c = crate::mem::format(format_args!(
            "cached_nodes {nodes}\ncached_dir_blocks {dirs}\ncached_nat_blocks {nat}\n"
        ))?;
        crate::mem::extend_from_slice(&mut t, &c)?;
        if cfg!(feature = "v2") {
            let u = crate::mem::format(format_args!("upgrades {}\n", self.upgrades))?;
            crate::mem::extend_from_slice(&mut t, &u)?;
        }
        Ok(t)
    }

    fn xattr_nid(&mut self, ino: u32) -> Result<u32> {
        Ok(self.inode(ino)?.inode().xattr_nid.get())
    }

    /// The node body of `ino`'s attributes, checked.
    fn xattr_body(&mut self, ino: u32, nid: u32) -> Result<&[u8]> {
        let n = self.node(nid)?;
        if n.kind() != KIND_XATTR || n.header.ino.get() != ino {
            return Err(Error::corrupt(
                "xattr node (not this inode's)",
                u64::from(nid),
            ));
        }
        if !XattrBody::is_valid(&n.body) {
            return Err(Error::corrupt("xattr node (entries)", u64::from(nid)));
        }
        Ok(&self.nodes.get(nid).ok_or(Error::Errno(Errno::EIO))?.body)
    }

    pub fn getxattr(&mut self, ino: u32, name: &[u8]) -> Result<Vec<u8>> {
        if ino == crate::mkfs::ROOT_INO && name == STATS_XATTR {
            return self.stats_text();
        }
        let (index, suffix) = split_name(name)?;
        let nid = self.xattr_nid(ino)?;
        if nid == 0 {
            return Err(Errno::ENODATA.into());
        }
        let body = self.xattr_body(ino, nid)?;
        let entries = parse(body)?;
        let e = entries
            .iter()
            .find(|e| e.index == index && e.name == suffix)
            .ok_or(Error::Errno(Errno::ENODATA))?;
        crate::mem::to_vec(e.value)
    }

    pub fn listxattr(&mut self, ino: u32) -> Result<Vec<u8>> {
        let nid = self.xattr_nid(ino)?;
        let mut out = Vec::new();
        if nid == 0 {
            return Ok(out);
        }
        let body = self.xattr_body(ino, nid)?;
        for e in parse(body)? {
            if let Some((_, prefix)) = PREFIXES.iter().find(|(i, _)| *i == e.index) {
                crate::mem::extend_from_slice(&mut out, prefix)?;
                crate::mem::extend_from_slice(&mut out, e.name)?;
                crate::mem::push(&mut out, 0)?;
            }
        }
        Ok(out)
    }

    pub fn setxattr(&mut self, ino: u32, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        if name == STATS_XATTR {
            return Err(Errno::EPERM.into());
        }
        self.check_writable()?;
        let (index, suffix) = split_name(name)?;
        if value.len() > XATTR_SPACE {
            return Err(Errno::ENOSPC.into());
        }
        self.write_xattr(ino, index, suffix, Some(value), flags)
    }

    pub fn removexattr(&mut self, ino: u32, name: &[u8]) -> Result<()> {
        if name == STATS_XATTR {
            return Err(Errno::EPERM.into());
        }
        self.check_writable()?;
        let (index, suffix) = split_name(name)?;
        self.write_xattr(ino, index, suffix, None, 0)
    }

    /// Set (`Some`) or remove (`None`) one attribute by rebuilding the node.
    fn write_xattr(
        &mut self,
        ino: u32,
        index: u8,
        name: &[u8],
        value: Option<&[u8]>,
        flags: i32,
    ) -> Result<()> {
        self.note_since_cp(ino, crate::fs::SINCE_CP_XATTR);
        let nid = self.xattr_nid(ino)?;
        let mut rebuilt = Vec::new();
        let mut existed = false;
        if nid != 0 {
            let body = self.xattr_body(ino, nid)?;
            for e in parse(body)? {
                if e.index == index && e.name == name {
                    existed = true;
                    continue;
                }
                let entry = (
                    e.index,
                    crate::mem::to_vec(e.name)?,
                    crate::mem::to_vec(e.value)?,
                );
                crate::mem::push(&mut rebuilt, entry)?;
            }
        }
        match value {
            Some(_) if existed && flags & XATTR_CREATE != 0 => return Err(Errno::EEXIST.into()),
            Some(_) if !existed && flags & XATTR_REPLACE != 0 => return Err(Errno::ENODATA.into()),
            None if !existed => return Err(Errno::ENODATA.into()),
            _ => {}
        }
        if let Some(v) = value {
            let entry = (index, crate::mem::to_vec(name)?, crate::mem::to_vec(v)?);
            crate::mem::push(&mut rebuilt, entry)?;
        }
        let entries = rebuilt.iter().map(|(i, n, v)| XEntry {
            index: *i,
            name: n,
            value: v,
        });
        let used: usize = entries.clone().map(|e| e.encoded_len()).sum();
        if used > XATTR_SPACE {
            return Err(Errno::ENOSPC.into());
        }
        self.ensure_space(3)?;
        let t = crate::fs::now();
        if rebuilt.is_empty() {
            if nid != 0 {
                self.free_node(nid)?;
                let i = self.inode_mut(ino)?;
                i.xattr_nid = 0.into();
                i.blocks = i.blocks.get().saturating_sub(1).into();
                i.set_ctime(t);
            }
            return Ok(());
        }
        let nid = if nid == 0 {
            let nid = self.new_node(Some(ino), XATTR_NODE_OFFSET, KIND_XATTR)?;
            let i = self.inode_mut(ino)?;
            i.xattr_nid = nid.into();
            i.blocks = i.blocks.get().saturating_add(1).into();
            nid
        } else {
            nid
        };
        let body = &mut self.node_mut(nid)?.body;
        if !XattrBody::encode(body, entries) {
            return Err(Errno::ENOSPC.into());
        }
        self.inode_mut(ino)?.set_ctime(t);
        Ok(())
    }
}
