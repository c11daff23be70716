//! fsync of a file: a roll-forward record instead of a checkpoint when recovery can replay the
//! file, and the record of changes since the last checkpoint that it could not replay
//! (`Volume::since_cp`).

use bento_runtime::Errno;
use bento_runtime::ks::block::{BlockDevice, WriteFlags};

use crate::error::{Error, Result, invariant};
use crate::fs::Volume;

impl<D: BlockDevice> Volume<D> {
    /// Record a change roll-forward recovery cannot replay.
    /// Without the memory to record it, the next fsync of any file checkpoints instead.
    pub(crate) fn note_since_cp(&mut self, ino: u32, what: u8) {
        if self.since_cp.try_reserve(1).is_err() {
            self.since_cp_lost = Some(self.seq);
            return;
        }
        #[allow(clippy::disallowed_methods)] // Room reserved.
        let e = self.since_cp.entry(ino).or_insert(0);
        *e |= what;
    }

    /// Make a file's data and attributes durable. When roll-forward recovery can replay the
    /// file (it existed at the last checkpoint, or it is new in a directory that did and that
    /// lost no name since; no name or xattr of it changed since, no hole punched in it freed
    /// an index node and no collapse or insert moved its blocks), write only its data and its changed direct nodes and inode, marked for
    /// recovery, and flush: no checkpoint. Otherwise checkpoint.
    pub fn fsync_file(&mut self, ino: u32) -> Result<()> {
        if self.read_only || !self.dirty {
            return Ok(());
        }
        if self.failed {
            return Err(Errno::EIO.into());
        }
        let since = self.since_cp.get(&ino).copied().unwrap_or(0);
        let (kind, nlink, parent) = {
            let i = self.inode(ino)?.inode();
            (
                i.mode.get() & bento_runtime::fs::S_IFMT,
                i.nlink.get(),
                i.parent.get(),
            )
        };
        let parent_since = self.since_cp.get(&parent).copied().unwrap_or(0);
        let replayable = !self.options.fsync_checkpoint
            && self.since_cp_lost != Some(self.seq)
            && kind == bento_runtime::fs::S_IFREG
            && since
                & (crate::fs::SINCE_CP_NAMES
                    | crate::fs::SINCE_CP_XATTR
                    | crate::fs::SINCE_CP_FREED_NODES
                    | crate::fs::SINCE_CP_SHIFTED)
                == 0
            && (since & crate::fs::SINCE_CP_NEW == 0
                || (nlink == 1
                    && parent_since & (crate::fs::SINCE_CP_NEW | crate::fs::SINCE_CP_LOST_NAME)
                        == 0));
        // Without room for everything dirty, the checkpoint refuses with ENOSPC before writing
        // anything; a record that ran out of room halfway would fail the volume.
        if !replayable || !self.checkpoint_fits() {
            return self.checkpoint(false);
        }
        let mut nids = self.nodes.dirty_of(ino, crate::format::node::KIND_DIRECT)?;
        if self.nodes.is_dirty(ino) {
            crate::mem::push(&mut nids, ino)?;
        }
        let flags = crate::format::node::FLAG_FSYNC
            | if since & crate::fs::SINCE_CP_NEW != 0 {
                crate::format::node::FLAG_DENTRY
            } else {
                0
            };
        let r = (|| {
            // The data first: recovery may only point at blocks that are on disk.
            let (dev, layout) = (&self.dev, &self.layout);
            let data = self.logs.get_mut(crate::log::DATA_LOG);
            data.ok_or_else(invariant)?.flush(dev, layout)?;
            self.write_nodes(&nids, flags)?;
            let (dev, layout) = (&self.dev, &self.layout);
            let node = self
                .logs
                .get_mut(crate::log::NODE_LOG)
                .ok_or_else(invariant)?;
            if !node.flush_with(dev, layout, WriteFlags::COMMIT)? {
                dev.flush().map_err(Error::Io)?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.fail("fsync", e);
            return Err(e);
        }
        self.stats.fsyncs = self.stats.fsyncs.saturating_add(1);
        Ok(())
    }
}
