//! Pass 5: allocated nodes nothing reaches, directory entry types, directory parents and link
//! counts.

use std::collections::HashMap;

use bento_api::fs::{FileType, ROOT_INO};
use bento_api::ks::block::BlockDevice;
use logfs::format::node::{INODE_NAME_MAX, KIND_INODE};

use crate::checker::{Fsck, NAT_BAD, Reach};
use crate::report::{Issue, Object};
use crate::util::Res;

/// An allocated nid nothing reached: its node's kind, owner and address when it is readable.
type Loose = (u32, Option<(u8, u32, u32)>);

impl<D: BlockDevice + ?Sized> Fsck<'_, D> {
    pub(crate) fn connectivity(&mut self) -> Res<()> {
        // Allocated nids that neither the tree nor the orphan list reached. Inodes among them
        // are walked as disconnected roots, so their blocks are accounted for and what they
        // name is not reported twice.
        let mut loose: Vec<Loose> = Vec::new();
        for nid in 1..self.v.nid_limit {
            let entry = self.nat_entry(nid);
            if entry == 0 || entry == NAT_BAD {
                continue;
            }
            // Inodes already visited were reported then; a nid a directory entry named but
            // that holds another kind of node is still looked at here.
            if self.reachable.contains(nid)
                || self.inodes.get(&nid).is_some_and(|i| i.not_inode.is_none())
            {
                continue;
            }
            match self.load_node(nid)? {
                Ok(buf) => {
                    let n = buf.node();
                    let (kind, ino) = (n.kind(), n.header.ino.get());
                    if kind == KIND_INODE && ino == nid {
                        self.enqueue(nid, Reach::Disconnected);
                    }
                    loose.push((nid, Some((kind, ino, buf.addr))));
                }
                Err(_) => loose.push((nid, None)),
            }
        }
        self.drain_queue()?;
        for (nid, what) in loose {
            if self.reachable.contains(nid)
                || self
                    .inodes
                    .get(&nid)
                    .is_some_and(|i| i.reach == Reach::Disconnected && i.ok)
            {
                continue;
            }
            let issue = match what {
                Some((kind, ino, addr)) => Issue::Unreferenced { kind, ino, addr },
                None => Issue::UnreferencedUnreadable {
                    addr: self.nat_entry(nid),
                },
            };
            self.c.err(Object::Nid { nid }, issue);
        }
        Ok(())
    }

    pub(crate) fn reference_counts(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        let mut subdirs: HashMap<u32, u32> = HashMap::new();
        for rec in &entries {
            let Some(info) = self.inodes.get_mut(&rec.ino) else {
                continue;
            };
            let eobj = || Object::DirEntry {
                dir: rec.dir,
                name: rec.name.to_vec(),
            };
            if let Some(kind) = info.not_inode {
                self.c
                    .err(eobj(), Issue::EntryNotInode { ino: rec.ino, kind });
                continue;
            }
            if !info.ok {
                continue;
            }
            info.names += 1;
            let Some(ft) = info.ftype else {
                continue;
            };
            if ft.dirent_type() != rec.dtype {
                self.c.err(
                    eobj(),
                    Issue::EntryType {
                        ino: rec.ino,
                        entry: rec.dtype,
                        inode: ft.dirent_type(),
                    },
                );
            }
            if ft == FileType::Directory {
                *subdirs.entry(rec.dir).or_insert(0) += 1;
                if info.parent != rec.dir {
                    self.c.err(
                        Object::Inode { ino: rec.ino },
                        Issue::DirParent {
                            recorded: info.parent,
                            actual: rec.dir,
                        },
                    );
                }
                let cut = &rec.name[..rec.name.len().min(INODE_NAME_MAX)];
                if let Some(recorded) = &info.name
                    && **recorded != *cut
                {
                    self.c.warn(
                        Object::Inode { ino: rec.ino },
                        Issue::DirName {
                            recorded: recorded.to_vec(),
                            actual: rec.name.to_vec(),
                        },
                    );
                }
            }
        }
        self.entries = entries;

        for (&ino, info) in &self.inodes {
            if !info.ok {
                continue;
            }
            let obj = Object::Inode { ino };
            let is_dir = info.ftype == Some(FileType::Directory);
            let expected = if info.orphan {
                if info.names > 0 {
                    self.c
                        .err(obj.clone(), Issue::OrphanNamed { names: info.names });
                }
                if info.nlink != 0 {
                    self.c.err(obj, Issue::OrphanHasLinks { nlink: info.nlink });
                }
                continue;
            } else if info.names == 0 && ino != ROOT_INO as u32 {
                // Only a disconnected inode has no name and is not an orphan.
                self.c.err(obj, Issue::Disconnected { nlink: info.nlink });
                continue;
            } else if is_dir {
                if !info.complete {
                    // Its subdirectories are not all known.
                    continue;
                }
                if info.names > 1 {
                    self.c
                        .err(obj.clone(), Issue::DirMultipleNames { names: info.names });
                }
                2u32.saturating_add(subdirs.get(&ino).copied().unwrap_or(0))
            } else {
                info.names
            };
            if info.nlink != expected {
                self.c.err(
                    obj,
                    Issue::LinkCount {
                        recorded: info.nlink,
                        counted: expected,
                    },
                );
            }
        }
    }
}
