//! The reference model: a tree of files and directories with identities, and the operations the
//! crash workloads perform on it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A model inode's identity. Every inode a workload creates gets a new one; the file system's
/// `(ino, generation)` pair is mapped to it, so a recovered inode is recognized even if its
/// number was reused.
pub type Id = u64;
pub const ROOT: Id = 0;

/// What a regular file holds: its bytes (the length is the size), permission bits and extended
/// attributes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FileState {
    pub data: Arc<Vec<u8>>,
    pub mode: u32,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl fmt::Debug for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // FNV-1a: enough to tell contents apart in a report.
        let sum = self.data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let zeros = self.data.iter().filter(|&&b| b == 0).count();
        write!(
            f,
            "{} bytes ({zeros} zero, fnv {:08x}), mode {:o}",
            self.data.len(),
            sum as u32,
            self.mode
        )?;
        if !self.xattrs.is_empty() {
            write!(
                f,
                ", xattrs {:?}",
                self.xattrs.keys().map(|k| show(k)).collect::<Vec<_>>()
            )?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    File(FileState),
    Dir(BTreeMap<Vec<u8>, Id>),
}

/// One state of the file tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<Id, Node>,
}

pub fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Deterministic file contents: never zero, different for every seed, so stale or zeroed bytes
/// show.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let mut z = seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(i.wrapping_mul(0xBF58_476D_1CE4_E5B9));
            z ^= z >> 29;
            z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 32;
            (z % 255) as u8 + 1
        })
        .collect()
}

/// A path relative to the root, components separated by `/`.
pub type Path = &'static str;

fn split(p: Path) -> (&'static str, &'static str) {
    match p.rfind('/') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => ("", p),
    }
}

/// `fallocate` modes the workloads use.
pub const FALLOC_ALLOCATE: i32 = 0;
pub const FALLOC_KEEP_SIZE: i32 = bento_runtime::fs::FALLOC_FL_KEEP_SIZE;
pub const FALLOC_PUNCH: i32 =
    bento_runtime::fs::FALLOC_FL_PUNCH_HOLE | bento_runtime::fs::FALLOC_FL_KEEP_SIZE;
pub const FALLOC_ZERO: i32 = bento_runtime::fs::FALLOC_FL_ZERO_RANGE;
pub const FALLOC_ZERO_KEEP: i32 =
    bento_runtime::fs::FALLOC_FL_ZERO_RANGE | bento_runtime::fs::FALLOC_FL_KEEP_SIZE;
pub const FALLOC_COLLAPSE: i32 = bento_runtime::fs::FALLOC_FL_COLLAPSE_RANGE;
pub const FALLOC_INSERT: i32 = bento_runtime::fs::FALLOC_FL_INSERT_RANGE;

/// A workload step. Core operations change the tree; persistence operations (`Fsync`,
/// `Fdatasync`, `FsyncDir`, `SyncFs`) only make things durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Mounting the volume (the first step of every run; recovery happens here).
    Mount,
    Create(Path),
    Mkdir(Path),
    /// Write `len` bytes of `pattern(seed)` at `off`.
    Write {
        path: Path,
        off: u64,
        len: usize,
        seed: u64,
    },
    /// Write `len` bytes at the end of the file.
    Append {
        path: Path,
        len: usize,
        seed: u64,
    },
    Truncate {
        path: Path,
        size: u64,
    },
    Link {
        from: Path,
        to: Path,
    },
    Unlink(Path),
    Rename {
        from: Path,
        to: Path,
    },
    Rmdir(Path),
    Fallocate {
        path: Path,
        off: u64,
        len: u64,
        mode: i32,
    },
    SetXattr {
        path: Path,
        name: &'static str,
        seed: u64,
    },
    Chmod {
        path: Path,
        mode: u32,
    },
    /// Open a file with one name, unlink it, write to it (and fsync it, with `fsync`), and keep
    /// it open until the crash: an orphan.
    UnlinkOpen {
        path: Path,
        fsync: bool,
    },
    Fsync(Path),
    Fdatasync(Path),
    FsyncDir(Path),
    SyncFs,
}

impl Op {
    pub fn is_persistence(&self) -> bool {
        matches!(
            self,
            Op::Fsync(_) | Op::Fdatasync(_) | Op::FsyncDir(_) | Op::SyncFs
        )
    }
}

impl Tree {
    pub fn new() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, Node::Dir(BTreeMap::new()));
        Tree { nodes }
    }

    pub fn dir(&self, id: Id) -> Option<&BTreeMap<Vec<u8>, Id>> {
        match self.nodes.get(&id) {
            Some(Node::Dir(d)) => Some(d),
            _ => None,
        }
    }

    fn dir_mut(&mut self, id: Id) -> Option<&mut BTreeMap<Vec<u8>, Id>> {
        match self.nodes.get_mut(&id) {
            Some(Node::Dir(d)) => Some(d),
            _ => None,
        }
    }

    pub fn file(&self, id: Id) -> Option<&FileState> {
        match self.nodes.get(&id) {
            Some(Node::File(f)) => Some(f),
            _ => None,
        }
    }

    fn file_mut(&mut self, id: Id) -> Option<&mut FileState> {
        match self.nodes.get_mut(&id) {
            Some(Node::File(f)) => Some(f),
            _ => None,
        }
    }

    /// The inode a path names.
    pub fn resolve(&self, p: &str) -> Option<Id> {
        let mut cur = ROOT;
        for c in p.split('/').filter(|c| !c.is_empty()) {
            cur = *self.dir(cur)?.get(c.as_bytes())?;
        }
        Some(cur)
    }

    /// The directory holding `p` and the last component.
    pub fn parent_of(&self, p: Path) -> Option<(Id, &'static [u8])> {
        let (dir, name) = split(p);
        let d = self.resolve(dir)?;
        self.dir(d)?;
        Some((d, name.as_bytes()))
    }

    /// Every (directory, name, inode) entry.
    pub fn entries(&self) -> impl Iterator<Item = (Id, &[u8], Id)> {
        self.nodes.iter().flat_map(|(&d, n)| match n {
            Node::Dir(m) => m
                .iter()
                .map(|(k, &v)| (d, k.as_slice(), v))
                .collect::<Vec<_>>(),
            Node::File(_) => Vec::new(),
        })
    }

    fn links(&self, id: Id) -> usize {
        self.entries().filter(|&(_, _, t)| t == id).count()
    }

    /// Is `d` equal to `anc` or below it?
    fn within(&self, d: Id, anc: Id) -> bool {
        if d == anc {
            return true;
        }
        self.entries()
            .find(|&(_, _, t)| t == d)
            .is_some_and(|(p, _, _)| self.within(p, anc))
    }

    fn remove_entry(&mut self, dir: Id, name: &[u8]) -> Option<Id> {
        let id = self.dir_mut(dir)?.remove(name)?;
        if self.links(id) == 0 {
            self.nodes.remove(&id);
        }
        Some(id)
    }

    /// Apply a core operation; `None` if it is not valid in this state (the workload skips it).
    /// `new_id` names an inode the operation creates.
    pub fn apply(&mut self, op: &Op, new_id: Id) -> Option<()> {
        match *op {
            Op::Mount | Op::SyncFs => Some(()),
            Op::Fsync(p) | Op::Fdatasync(p) => self.file(self.resolve(p)?).map(|_| ()),
            Op::FsyncDir(p) => self.dir(self.resolve(p)?).map(|_| ()),
            Op::Create(p) | Op::Mkdir(p) => {
                let (d, name) = self.parent_of(p)?;
                if self.dir(d)?.contains_key(name) {
                    return None;
                }
                let node = if matches!(op, Op::Create(_)) {
                    Node::File(FileState {
                        data: Arc::new(Vec::new()),
                        mode: 0o644,
                        xattrs: BTreeMap::new(),
                    })
                } else {
                    Node::Dir(BTreeMap::new())
                };
                self.nodes.insert(new_id, node);
                self.dir_mut(d)?.insert(name.to_vec(), new_id);
                Some(())
            }
            Op::Write {
                path,
                off,
                len,
                seed,
            } => {
                let f = self.file_mut(self.resolve(path)?)?;
                let data = Arc::make_mut(&mut f.data);
                let end = off as usize + len;
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[off as usize..end].copy_from_slice(&pattern(seed, len));
                Some(())
            }
            Op::Append { path, len, seed } => {
                let f = self.file_mut(self.resolve(path)?)?;
                Arc::make_mut(&mut f.data).extend(pattern(seed, len));
                Some(())
            }
            Op::Truncate { path, size } => {
                let f = self.file_mut(self.resolve(path)?)?;
                Arc::make_mut(&mut f.data).resize(size as usize, 0);
                Some(())
            }
            Op::Fallocate {
                path,
                off,
                len,
                mode,
            } => {
                let f = self.file_mut(self.resolve(path)?)?;
                let data = Arc::make_mut(&mut f.data);
                let end = (off + len) as usize;
                match mode {
                    FALLOC_ALLOCATE if data.len() < end => data.resize(end, 0),
                    FALLOC_ALLOCATE | FALLOC_KEEP_SIZE => {}
                    FALLOC_PUNCH | FALLOC_ZERO | FALLOC_ZERO_KEEP => {
                        if mode == FALLOC_ZERO && data.len() < end {
                            data.resize(end, 0);
                        }
                        let e = end.min(data.len());
                        if (off as usize) < e {
                            data[off as usize..e].fill(0);
                        }
                    }
                    FALLOC_COLLAPSE | FALLOC_INSERT => {
                        let aligned = off.is_multiple_of(4096) && len.is_multiple_of(4096);
                        let size = data.len() as u64;
                        if !aligned || len == 0 {
                            return None;
                        }
                        if mode == FALLOC_COLLAPSE {
                            if off + len >= size {
                                return None;
                            }
                            data.drain(off as usize..end);
                        } else {
                            if off >= size {
                                return None;
                            }
                            let at = off as usize;
                            data.splice(at..at, std::iter::repeat_n(0, len as usize));
                        }
                    }
                    _ => return None,
                }
                Some(())
            }
            Op::SetXattr { path, name, seed } => {
                let id = self.resolve(path)?;
                match self.nodes.get_mut(&id)? {
                    Node::File(f) => {
                        f.xattrs.insert(name.as_bytes().to_vec(), pattern(seed, 16));
                        Some(())
                    }
                    // Directories carry no xattrs in the model; the workloads only set them on
                    // files.
                    Node::Dir(_) => None,
                }
            }
            Op::Chmod { path, mode } => {
                self.file_mut(self.resolve(path)?)?.mode = mode;
                Some(())
            }
            Op::Link { from, to } => {
                let id = self.resolve(from)?;
                self.file(id)?;
                let (d, name) = self.parent_of(to)?;
                if self.dir(d)?.contains_key(name) {
                    return None;
                }
                self.dir_mut(d)?.insert(name.to_vec(), id);
                Some(())
            }
            Op::Unlink(p) | Op::UnlinkOpen { path: p, .. } => {
                let id = self.resolve(p)?;
                self.file(id)?;
                // An orphan is a file whose last name went: its later writes show nowhere.
                if matches!(op, Op::UnlinkOpen { .. }) && self.links(id) != 1 {
                    return None;
                }
                let (d, name) = self.parent_of(p)?;
                self.remove_entry(d, name).map(|_| ())
            }
            Op::Rmdir(p) => {
                let id = self.resolve(p)?;
                if id == ROOT || !self.dir(id)?.is_empty() {
                    return None;
                }
                let (d, name) = self.parent_of(p)?;
                self.remove_entry(d, name).map(|_| ())
            }
            Op::Rename { from, to } => {
                let src = self.resolve(from)?;
                let (sd, sname) = self.parent_of(from)?;
                let (dd, dname) = self.parent_of(to)?;
                if src == ROOT {
                    return None;
                }
                let src_is_dir = self.dir(src).is_some();
                if src_is_dir && self.within(dd, src) {
                    return None;
                }
                if let Some(&dst) = self.dir(dd)?.get(dname) {
                    // Renaming a name onto a link of the same inode does nothing: not a useful
                    // workload step.
                    if dst == src {
                        return None;
                    }
                    match (src_is_dir, self.dir(dst)) {
                        (false, None) => {}
                        (true, Some(d)) if d.is_empty() => {}
                        _ => return None,
                    }
                    self.remove_entry(dd, dname)?;
                }
                self.dir_mut(sd)?.remove(sname)?;
                self.dir_mut(dd)?.insert(dname.to_vec(), src);
                Some(())
            }
        }
    }

    /// A readable rendering, for reports.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_dir(ROOT, "", &mut out);
        out
    }

    fn render_dir(&self, d: Id, prefix: &str, out: &mut String) {
        let Some(m) = self.dir(d) else { return };
        for (name, &id) in m {
            let path = format!("{prefix}/{}", show(name));
            match self.nodes.get(&id) {
                Some(Node::File(f)) => out.push_str(&format!("  {path} #{id}: {f:?}\n")),
                Some(Node::Dir(_)) => {
                    out.push_str(&format!("  {path}/ #{id}\n"));
                    self.render_dir(id, &path, out);
                }
                None => out.push_str(&format!("  {path} #{id}: dangling\n")),
            }
        }
    }
}
