//! Running workloads on logfs: the base volume, executing operations while the device records,
//! and reading a (recovered) tree back into the model's terms.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bento_runtime::fs::{
    DirFiller, FileSystem, FileType, Ino, Mount, MountOptions, ROOT_INO, RenameFlags, Request,
    SetAttr, Timespec,
};
use bento_runtime::ks::block::BLOCK_SIZE;
use bento_user::{BlockData, CrashDevice, IoEvent, RecordingDevice, SparseImage};
use logfs::LogFs;
use logfs::mkfs::{MkfsOptions, format};

use super::model::{FileState, Id, Node, Op, ROOT, Tree, pattern};

pub const R: Request = Request::ROOT;

/// Mount options of every mount the harness makes: logfs options from `LOGFS_CRASH_OPTIONS`
/// (e.g. `fsync=checkpoint`), none by default.
pub fn mount_options() -> MountOptions {
    MountOptions {
        read_only: false,
        silent: false,
        fs_options: std::env::var("LOGFS_CRASH_OPTIONS").unwrap_or_default(),
    }
}

/// An inode as the file system names it: number and generation.
pub type FsId = (u64, u64);

/// The volume every workload starts from: formatted, populated, cleanly unmounted.
pub struct Base {
    pub image: Arc<SparseImage>,
    pub tree: Tree,
    pub ids: HashMap<FsId, Id>,
    pub inos: HashMap<Id, u64>,
    pub next_id: Id,
}

fn mkfs_opts() -> MkfsOptions {
    MkfsOptions {
        label: b"crash".to_vec(),
        uuid: [3; 16],
        hash_seed: [5; 16],
        time: Timespec::new(1_700_000_000, 0),
        discard: false,
        version: b"crash-test".to_vec(),
        root_uid: 0,
        root_gid: 0,
    }
}

/// What the base volume holds (`docs` of the crash test list it too).
pub const POPULATE: &[Op] = &[
    Op::Create("a"),
    Op::Write {
        path: "a",
        off: 0,
        len: 10_000,
        seed: 1,
    },
    Op::Create("b"),
    Op::Write {
        path: "b",
        off: 0,
        len: 100,
        seed: 2,
    },
    Op::Mkdir("d"),
    Op::Create("d/c"),
    Op::Write {
        path: "d/c",
        off: 0,
        len: 6_000,
        seed: 3,
    },
    Op::Mkdir("e"),
];

/// Format the smallest volume mkfs allows on a sparse image and run `populate` on it.
pub fn make_base(populate: &[Op]) -> Base {
    let blocks = logfs::format::layout::Layout::minimum_device_bytes() / BLOCK_SIZE as u64;
    let dev = Arc::new(CrashDevice::new(Arc::new(SparseImage::new(blocks))));
    format(&*dev, &mkfs_opts()).expect("mkfs");
    let fs = LogFs::mount(dev.clone(), &mount_options()).expect("mount");
    let root_gen = fs.getattr(&R, ROOT_INO).expect("getattr").generation;
    let mut ex = Exec {
        fs: &fs,
        tree: Tree::new(),
        ids: HashMap::from([((ROOT_INO, root_gen), ROOT)]),
        inos: HashMap::from([(ROOT, ROOT_INO)]),
        next_id: ROOT + 1,
    };
    for op in populate {
        assert!(ex.step(op).expect("populate"), "populate: {op:?} invalid");
    }
    let (tree, ids, inos, next_id) = (ex.tree, ex.ids, ex.inos, ex.next_id);
    fs.destroy().expect("unmount");
    drop(fs);
    Base {
        image: Arc::new(dev.freeze()),
        tree,
        ids,
        inos,
        next_id,
    }
}

/// Runs operations on a mounted file system and on the model side by side.
pub struct Exec<'a, F> {
    pub fs: &'a F,
    pub tree: Tree,
    pub ids: HashMap<FsId, Id>,
    pub inos: HashMap<Id, u64>,
    pub next_id: Id,
}

impl<F: FileSystem> Exec<'_, F> {
    fn ino(&self, p: &str) -> u64 {
        self.inos[&self.tree.resolve(p).expect("path")]
    }

    fn parent(&self, p: &'static str) -> (u64, &'static [u8]) {
        let (d, name) = self.tree.parent_of(p).expect("parent");
        (self.inos[&d], name)
    }

    fn created(&mut self, attr_ino: u64, generation: u64) {
        self.ids.insert((attr_ino, generation), self.next_id);
        self.inos.insert(self.next_id, attr_ino);
        self.next_id += 1;
    }

    /// Apply `op` to the model and the file system. `Ok(false)`: not valid in the current
    /// state, nothing done. `Err`: the file system failed an operation the model allows.
    pub fn step(&mut self, op: &Op) -> Result<bool, String> {
        let mut next = self.tree.clone();
        if next.apply(op, self.next_id).is_none() {
            return Ok(false);
        }
        let fs = self.fs;
        let err = |e| format!("{op:?}: {e:?}");
        match *op {
            Op::Mount => {}
            Op::Create(p) => {
                let (d, name) = self.parent(p);
                let (e, _) = fs.create(&R, d, name, 0o644, 0).map_err(err)?;
                fs.release(&R, e.attr.ino, 0, 0).map_err(err)?;
                fs.forget(e.attr.ino, 1);
                self.created(e.attr.ino, e.attr.generation);
            }
            Op::Mkdir(p) => {
                let (d, name) = self.parent(p);
                let e = fs.mkdir(&R, d, name, 0o755).map_err(err)?;
                fs.forget(e.attr.ino, 1);
                self.created(e.attr.ino, e.attr.generation);
            }
            Op::Write {
                path,
                off,
                len,
                seed,
            } => {
                let n = fs
                    .write(&R, self.ino(path), 0, off, &pattern(seed, len))
                    .map_err(err)?;
                if n != len {
                    return Err(format!("{op:?}: short write {n}"));
                }
            }
            Op::Append { path, len, seed } => {
                let id = self.tree.resolve(path).expect("path");
                let off = self.tree.file(id).expect("file").data.len() as u64;
                fs.write(&R, self.inos[&id], 0, off, &pattern(seed, len))
                    .map_err(err)?;
            }
            Op::Truncate { path, size } => {
                let a = SetAttr {
                    size: Some(size),
                    ..Default::default()
                };
                fs.setattr(&R, self.ino(path), &a, None).map_err(err)?;
            }
            Op::Fallocate {
                path,
                off,
                len,
                mode,
            } => fs
                .fallocate(&R, self.ino(path), 0, off, len, mode)
                .map_err(err)?,
            Op::SetXattr { path, name, seed } => fs
                .setxattr(&R, self.ino(path), name.as_bytes(), &pattern(seed, 16), 0)
                .map_err(err)?,
            Op::Chmod { path, mode } => {
                let a = SetAttr {
                    mode: Some(mode),
                    ..Default::default()
                };
                fs.setattr(&R, self.ino(path), &a, None).map_err(err)?;
            }
            Op::UnlinkOpen { path, fsync } => {
                let ino = self.ino(path);
                let (d, name) = self.parent(path);
                fs.open(&R, ino, 0).map_err(err)?;
                fs.unlink(&R, d, name).map_err(err)?;
                fs.write(&R, ino, 0, 0, &pattern(77, 3000)).map_err(err)?;
                if fsync {
                    fs.fsync(&R, ino, 0, false).map_err(err)?;
                }
            }
            Op::Link { from, to } => {
                let (d, name) = self.parent(to);
                let e = fs.link(&R, self.ino(from), d, name).map_err(err)?;
                fs.forget(e.attr.ino, 1);
            }
            Op::Unlink(p) => {
                let (d, name) = self.parent(p);
                fs.unlink(&R, d, name).map_err(err)?;
            }
            Op::Rmdir(p) => {
                let (d, name) = self.parent(p);
                fs.rmdir(&R, d, name).map_err(err)?;
            }
            Op::Rename { from, to } => {
                let (sd, sname) = self.parent(from);
                let (dd, dname) = self.parent(to);
                fs.rename(&R, sd, sname, dd, dname, RenameFlags(0))
                    .map_err(err)?;
            }
            Op::Fsync(p) => fs.fsync(&R, self.ino(p), 0, false).map_err(err)?,
            Op::Fdatasync(p) => fs.fsync(&R, self.ino(p), 0, true).map_err(err)?,
            Op::FsyncDir(p) => fs.fsyncdir(&R, self.ino(p), 0, false).map_err(err)?,
            Op::SyncFs => fs.sync_fs().map_err(err)?,
        }
        self.tree = next;
        Ok(true)
    }
}

pub type RecDev = RecordingDevice<CrashDevice>;

/// A workload run on a recording device: the log of requests and, for every operation, the
/// log positions at its start and end and the model state after it.
pub struct Recorded {
    /// Blocks that differ from the base image when the run started (a crash state, for runs
    /// that continue after a recovery).
    pub start: Arc<HashMap<u64, BlockData>>,
    pub events: Vec<IoEvent>,
    /// `ops[0]` is `Op::Mount`.
    pub ops: Vec<Op>,
    pub spans: Vec<(usize, usize)>,
    /// `states[i]`: the tree after `ops[i]` (`states[0]`: the tree the run started from).
    pub states: Vec<Tree>,
    pub ids: HashMap<FsId, Id>,
    pub next_id: Id,
}

/// Where a run starts: a base image plus the blocks a crash left, and the tree recovered there.
pub struct Start<'a> {
    pub base: &'a Base,
    pub overlay: Arc<HashMap<u64, BlockData>>,
    pub tree: Tree,
    pub ids: HashMap<FsId, Id>,
    pub inos: HashMap<Id, u64>,
    pub next_id: Id,
}

impl<'a> Start<'a> {
    pub fn fresh(base: &'a Base) -> Start<'a> {
        Start {
            base,
            overlay: Arc::new(HashMap::new()),
            tree: base.tree.clone(),
            ids: base.ids.clone(),
            inos: base.inos.clone(),
            next_id: base.next_id,
        }
    }

    /// Where a crash state of `rec` left off: its recovered `tree` and blocks (`overlay`).
    pub fn recovered(
        base: &'a Base,
        rec: &Recorded,
        tree: Tree,
        overlay: HashMap<u64, BlockData>,
    ) -> Start<'a> {
        let inos = rec
            .ids
            .iter()
            .filter(|(_, id)| tree.nodes.contains_key(id))
            .map(|(&(ino, _), &id)| (id, ino))
            .collect();
        Start {
            base,
            overlay: Arc::new(overlay),
            tree,
            ids: rec.ids.clone(),
            inos,
            next_id: rec.next_id,
        }
    }
}

/// Mount, run `ops` (those invalid in the model's state at their turn are skipped) and stop
/// without unmounting: the crash. Fails if the file system refuses a valid operation or ends
/// in a state other than the model's.
pub fn record(start: &Start<'_>, ops: &[Op]) -> Result<Recorded, String> {
    let dev = Arc::new(RecordingDevice::new(CrashDevice::with_overlay(
        start.base.image.clone(),
        (*start.overlay).clone(),
    )));
    let fs = LogFs::mount(dev.clone(), &mount_options()).map_err(|e| format!("mount: {e:?}"))?;
    let mut ex = Exec {
        fs: &fs,
        tree: start.tree.clone(),
        ids: start.ids.clone(),
        inos: start.inos.clone(),
        next_id: start.next_id,
    };
    let mut rec = Recorded {
        start: start.overlay.clone(),
        events: Vec::new(),
        ops: vec![Op::Mount],
        spans: vec![(0, dev.position())],
        states: vec![start.tree.clone()],
        ids: HashMap::new(),
        next_id: 0,
    };
    for op in ops {
        let before = dev.position();
        if ex.step(op)? {
            rec.ops.push(*op);
            rec.spans.push((before, dev.position()));
            rec.states.push(ex.tree.clone());
        }
    }
    let live = read_tree(&fs, &ex.ids)?;
    if live != ex.tree {
        return Err(format!(
            "before the crash the file system holds\n{}but the model\n{}",
            live.render(),
            ex.tree.render()
        ));
    }
    rec.events = dev.events();
    rec.ids = ex.ids;
    rec.next_id = ex.next_id;
    Ok(rec)
}

struct Names(Vec<(Vec<u8>, u64)>);

impl DirFiller for Names {
    fn add(&mut self, ino: Ino, _offset: u64, _kind: FileType, name: &[u8]) -> bool {
        if name != b"." && name != b".." {
            self.0.push((name.to_vec(), ino));
        }
        false
    }
}

/// Read the whole tree from a mounted file system, naming inodes by the model identities in
/// `ids`. An inode that is not in `ids`, a directory reached twice, or any error is reported.
pub fn read_tree<F: FileSystem>(fs: &F, ids: &HashMap<FsId, Id>) -> Result<Tree, String> {
    let root = fs
        .getattr(&R, ROOT_INO)
        .map_err(|e| format!("getattr(root): {e:?}"))?;
    if ids.get(&(ROOT_INO, root.generation)) != Some(&ROOT) {
        return Err("the root directory is not the original one".into());
    }
    let mut tree = Tree {
        nodes: BTreeMap::new(),
    };
    let mut todo = vec![(ROOT_INO, ROOT, String::new())];
    let mut seen_dirs = HashSet::new();
    while let Some((ino, id, path)) = todo.pop() {
        if !seen_dirs.insert(id) {
            return Err(format!("directory {path} is reachable twice"));
        }
        let mut names = Names(Vec::new());
        fs.readdir(&R, ino, 0, 0, &mut names)
            .map_err(|e| format!("readdir({path}): {e:?}"))?;
        let mut entries = BTreeMap::new();
        for (name, _) in names.0 {
            let p = format!("{path}/{}", String::from_utf8_lossy(&name));
            let e = fs
                .lookup(&R, ino, &name)
                .map_err(|e| format!("lookup({p}): {e:?}"))?;
            fs.forget(e.attr.ino, 1);
            let a = e.attr;
            let Some(&cid) = ids.get(&(a.ino, a.generation)) else {
                return Err(format!(
                    "{p} is inode {} generation {}, which the workload never made",
                    a.ino, a.generation
                ));
            };
            entries.insert(name, cid);
            match a.kind {
                FileType::Directory => todo.push((a.ino, cid, p)),
                FileType::RegularFile => {
                    if tree.nodes.contains_key(&cid) {
                        continue;
                    }
                    let mut data = vec![0u8; a.size as usize];
                    let n = fs
                        .read(&R, a.ino, 0, 0, &mut data)
                        .map_err(|e| format!("read({p}): {e:?}"))?;
                    if n != data.len() {
                        return Err(format!("read({p}): {n} of {} bytes", data.len()));
                    }
                    let list = fs
                        .listxattr(&R, a.ino)
                        .map_err(|e| format!("listxattr({p}): {e:?}"))?;
                    let mut xattrs = BTreeMap::new();
                    for key in list.split(|&b| b == 0).filter(|k| !k.is_empty()) {
                        let v = fs
                            .getxattr(&R, a.ino, key)
                            .map_err(|e| format!("getxattr({p}): {e:?}"))?;
                        xattrs.insert(key.to_vec(), v);
                    }
                    tree.nodes.insert(
                        cid,
                        Node::File(FileState {
                            data: Arc::new(data),
                            mode: u32::from(a.perm),
                            xattrs,
                        }),
                    );
                }
                k => return Err(format!("{p} is a {k:?}")),
            }
        }
        tree.nodes.insert(id, Node::Dir(entries));
    }
    Ok(tree)
}
