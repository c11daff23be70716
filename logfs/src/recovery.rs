//! Recovery at mount. A checkpoint is always consistent, so mounting needs no replay of
//! metadata; what remains is the orphan list: inodes unlinked while still open, freed now that
//! nobody holds them.

use bento_runtime::ks::block::BlockDevice;

use crate::error::Result;
use crate::fs::Volume;
use crate::node::KIND_INODE;

impl<D: BlockDevice> Volume<D> {
    pub(crate) fn recover_orphans(&mut self, orphans: &[u32]) -> Result<()> {
        if orphans.is_empty() {
            return Ok(());
        }
        if self.read_only {
            // Keep them listed so the next read-write mount frees them.
            self.orphans.extend(orphans.iter().copied());
            return Ok(());
        }
        for &ino in orphans {
            let is_orphan = self
                .inode(ino)
                .is_ok_and(|n| n.kind() == KIND_INODE && n.inode().nlink.get() == 0);
            if is_orphan {
                self.free_inode(ino)?;
            } else {
                bento_runtime::warn!(
                    "logfs: orphan list names inode {ino}, which is not an orphan; ignored"
                );
            }
        }
        self.checkpoint(false)
    }
}
