//! Model-based test: long random sequences of operations through the Bento trait, mirrored on an
//! in-memory reference model, with unmount/mount cycles in the middle. Every operation's result
//! (success or the exact errno) must match the model, and periodically the whole tree (names,
//! types, sizes, contents, link counts, xattrs) is compared.

mod common;

use std::collections::BTreeMap;

use bento_runtime::Errno;
use bento_runtime::fs::{
    FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_ZERO_RANGE, FileSystem, FileType, Ino, ROOT_INO, RenameFlags, SetAttr, XATTR_CREATE,
    XATTR_REPLACE,
};
use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, u64>),
    Symlink(Vec<u8>),
}

#[derive(Clone, Debug)]
struct MInode {
    kind: Kind,
    nlink: u32,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    parent: u64,
}

/// The reference: model inode number → inode; `ino_map` maps model numbers to the file system's.
struct Model {
    inodes: BTreeMap<u64, MInode>,
    next: u64,
    fs_ino: BTreeMap<u64, Ino>,
}

const ROOT: u64 = 0;

impl Model {
    fn new() -> Model {
        let mut inodes = BTreeMap::new();
        inodes.insert(
            ROOT,
            MInode {
                kind: Kind::Dir(BTreeMap::new()),
                nlink: 2,
                xattrs: BTreeMap::new(),
                parent: ROOT,
            },
        );
        let mut fs_ino = BTreeMap::new();
        fs_ino.insert(ROOT, ROOT_INO);
        Model {
            inodes,
            next: 1,
            fs_ino,
        }
    }

    fn dir(&self, m: u64) -> &BTreeMap<Vec<u8>, u64> {
        match &self.inodes[&m].kind {
            Kind::Dir(d) => d,
            _ => panic!("not a dir"),
        }
    }

    fn dir_mut(&mut self, m: u64) -> &mut BTreeMap<Vec<u8>, u64> {
        match &mut self.inodes.get_mut(&m).unwrap().kind {
            Kind::Dir(d) => d,
            _ => panic!("not a dir"),
        }
    }

    fn dirs(&self) -> Vec<u64> {
        self.inodes
            .iter()
            .filter(|(_, i)| matches!(i.kind, Kind::Dir(_)))
            .map(|(k, _)| *k)
            .collect()
    }

    fn files(&self) -> Vec<u64> {
        self.inodes
            .iter()
            .filter(|(_, i)| matches!(i.kind, Kind::File(_)))
            .map(|(k, _)| *k)
            .collect()
    }

    fn is_dir(&self, m: u64) -> bool {
        matches!(self.inodes[&m].kind, Kind::Dir(_))
    }

    fn add(&mut self, kind: Kind, parent: u64) -> u64 {
        let m = self.next;
        self.next += 1;
        let nlink = if matches!(kind, Kind::Dir(_)) { 2 } else { 1 };
        self.inodes.insert(
            m,
            MInode {
                kind,
                nlink,
                xattrs: BTreeMap::new(),
                parent,
            },
        );
        m
    }

    fn drop_link(&mut self, m: u64) {
        let i = self.inodes.get_mut(&m).unwrap();
        i.nlink -= 1;
        if i.nlink == 0 || (matches!(i.kind, Kind::Dir(_)) && i.nlink <= 1) {
            self.inodes.remove(&m);
            self.fs_ino.remove(&m);
        }
    }

    fn within(&self, mut d: u64, anc: u64) -> bool {
        loop {
            if d == anc {
                return true;
            }
            if d == ROOT {
                return false;
            }
            d = self.inodes[&d].parent;
        }
    }
}

fn name(rng: &mut Rng) -> Vec<u8> {
    match rng.below(20) {
        0 => vec![b'L'; 200 + rng.below(56) as usize],
        1 => format!("long-name-{}-{}", rng.below(4), "x".repeat(30)).into_bytes(),
        _ => format!("n{}", rng.below(24)).into_bytes(),
    }
}

fn data(rng: &mut Rng, len: usize) -> Vec<u8> {
    let seed = rng.next();
    (0..len)
        .map(|i| (seed.wrapping_mul(i as u64 + 1) >> 13) as u8)
        .collect()
}

/// Operations that may need new space, and so may fail with ENOSPC on a full volume.
const ALLOCATING: [&str; 8] = [
    "create",
    "mkdir",
    "symlink",
    "link",
    "setxattr",
    "rename",
    "fallocate",
    "truncate",
];

struct Harness {
    rng: Rng,
    model: Model,
    fs: Option<Fs>,
    dev: std::sync::Arc<bento_user::MemDevice>,
    totals: logfs::fs::Stats,
}

impl Harness {
    fn fs(&self) -> &Fs {
        self.fs.as_ref().unwrap()
    }

    /// Check an operation's outcome against the model's expectation; `Some` when both succeeded.
    fn check<T: std::fmt::Debug>(
        &self,
        op: &str,
        got: Result<T, Errno>,
        want: Result<(), Errno>,
    ) -> Option<T> {
        match (got, want) {
            (Ok(v), Ok(())) => Some(v),
            (Err(g), Err(w)) if g == w => None,
            (Err(Errno::ENOSPC), Ok(())) if ALLOCATING.contains(&op) => {
                let st = self.fs().statfs(&R, ROOT_INO).unwrap();
                assert!(st.bfree < 600, "{op}: ENOSPC with {} blocks free", st.bfree);
                None
            }
            (g, w) => panic!("{op}: file system gave {g:?}, model expects {w:?}"),
        }
    }

    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.rng.below(v.len() as u64) as usize])
        }
    }

    fn step(&mut self) {
        let dirs = self.model.dirs();
        let parent = self.pick(&dirs).unwrap();
        let pino = self.model.fs_ino[&parent];
        let nm = name(&mut self.rng);
        let existing = self.model.dir(parent).get(&nm).copied();
        let op = self.rng.below(100);
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!(
                "op {op} parent {parent} name {:?} existing {existing:?}",
                String::from_utf8_lossy(&nm)
            );
        }
        match op {
            0..=14 => {
                let want = if existing.is_some() {
                    Err(Errno::EEXIST)
                } else {
                    Ok(())
                };
                let got = self
                    .fs()
                    .create(&R, pino, &nm, 0o644, 0)
                    .map(|(e, _)| e.attr.ino);
                if let Some(ino) = self.check("create", got, want) {
                    let m = self.model.add(Kind::File(Vec::new()), parent);
                    self.model.fs_ino.insert(m, ino);
                    self.model.dir_mut(parent).insert(nm, m);
                }
            }
            15..=21 => {
                let want = if existing.is_some() {
                    Err(Errno::EEXIST)
                } else {
                    Ok(())
                };
                let got = self.fs().mkdir(&R, pino, &nm, 0o755).map(|e| e.attr.ino);
                if let Some(ino) = self.check("mkdir", got, want) {
                    let m = self.model.add(Kind::Dir(BTreeMap::new()), parent);
                    self.model.fs_ino.insert(m, ino);
                    self.model.dir_mut(parent).insert(nm, m);
                    self.model.inodes.get_mut(&parent).unwrap().nlink += 1;
                }
            }
            22..=24 => {
                let tlen = 1 + self.rng.below(300) as usize;
                let target = data(&mut self.rng, tlen)
                    .into_iter()
                    .map(|b| b'a' + b % 26)
                    .collect::<Vec<u8>>();
                let want = if existing.is_some() {
                    Err(Errno::EEXIST)
                } else {
                    Ok(())
                };
                let got = self
                    .fs()
                    .symlink(&R, pino, &nm, &target)
                    .map(|e| e.attr.ino);
                if let Some(ino) = self.check("symlink", got, want) {
                    let m = self.model.add(Kind::Symlink(target), parent);
                    self.model.fs_ino.insert(m, ino);
                    self.model.dir_mut(parent).insert(nm, m);
                }
            }
            25..=49 => {
                let files = self.model.files();
                let Some(f) = self.pick(&files) else { return };
                let ino = self.model.fs_ino[&f];
                let len = match self.rng.below(10) {
                    0..=3 => self.rng.below(100) as usize,
                    4..=6 => self.rng.below(10_000) as usize,
                    7 | 8 => self.rng.below(300_000) as usize,
                    _ => 1 + self.rng.below(2_000_000) as usize,
                };
                let cur = match &self.model.inodes[&f].kind {
                    Kind::File(d) => d.len() as u64,
                    _ => unreachable!(),
                };
                let off = match self.rng.below(4) {
                    0 => cur,
                    1 => 0,
                    2 => self.rng.below(cur + 1),
                    _ => self.rng.below(6_000_000),
                };
                let buf = data(&mut self.rng, len);
                if std::env::var_os("MODEL_TRACE").is_some() {
                    eprintln!("  write ino {ino} off {off} len {len} cur {cur}");
                }
                let n = match self.fs().write(&R, ino, 0, off, &buf) {
                    Ok(n) => n,
                    Err(Errno::ENOSPC) => 0,
                    Err(e) => panic!("write: {e:?}"),
                };
                assert!(n == 0 || n == len, "short write: {n} of {len}");
                if n < len {
                    // Only a volume that is really full may refuse, and then the whole write.
                    let st = self.fs().statfs(&R, ROOT_INO).unwrap();
                    assert!(
                        st.bfree < (len as u64 / 4096) + 64,
                        "short write ({n} of {len}) with {} blocks free",
                        st.bfree
                    );
                }
                let len = n;
                if let (Kind::File(d), true) =
                    (&mut self.model.inodes.get_mut(&f).unwrap().kind, len > 0)
                {
                    let end = off as usize + len;
                    if d.len() < end {
                        d.resize(end, 0);
                    }
                    d[off as usize..end].copy_from_slice(&buf[..len]);
                }
            }
            50..=55 => {
                let files = self.model.files();
                let Some(f) = self.pick(&files) else { return };
                let ino = self.model.fs_ino[&f];
                let size = match self.rng.below(3) {
                    0 => 0,
                    1 => self.rng.below(5000),
                    _ => self.rng.below(4_000_000),
                };
                if std::env::var_os("MODEL_TRACE").is_some() {
                    eprintln!("  truncate ino {ino} size {size}");
                }
                let got = self.fs().setattr(
                    &R,
                    ino,
                    &SetAttr {
                        size: Some(size),
                        ..Default::default()
                    },
                    None,
                );
                if self.check("truncate", got, Ok(())).is_none() {
                    return;
                }
                if let Kind::File(d) = &mut self.model.inodes.get_mut(&f).unwrap().kind {
                    d.resize(size as usize, 0);
                }
            }
            56..=63 => {
                let want = match existing {
                    None => Err(Errno::ENOENT),
                    Some(m) if self.model.is_dir(m) => Err(Errno::EISDIR),
                    Some(_) => Ok(()),
                };
                if self
                    .check("unlink", self.fs().unlink(&R, pino, &nm), want)
                    .is_some()
                {
                    let m = self.model.dir_mut(parent).remove(&nm).unwrap();
                    self.forget_if_gone(m);
                    self.model.drop_link(m);
                }
            }
            64..=67 => {
                let want = match existing {
                    None => Err(Errno::ENOENT),
                    Some(m) if !self.model.is_dir(m) => Err(Errno::ENOTDIR),
                    Some(m) if !self.model.dir(m).is_empty() => Err(Errno::ENOTEMPTY),
                    Some(_) => Ok(()),
                };
                if self
                    .check("rmdir", self.fs().rmdir(&R, pino, &nm), want)
                    .is_some()
                {
                    let m = self.model.dir_mut(parent).remove(&nm).unwrap();
                    self.model.inodes.remove(&m);
                    self.model.fs_ino.remove(&m);
                    self.model.inodes.get_mut(&parent).unwrap().nlink -= 1;
                }
            }
            68..=79 => self.rename(parent, nm, existing),
            80..=84 => {
                let files = self.model.files();
                let Some(f) = self.pick(&files) else { return };
                let want = if existing.is_some() {
                    Err(Errno::EEXIST)
                } else {
                    Ok(())
                };
                let got = self.fs().link(&R, self.model.fs_ino[&f], pino, &nm);
                if self.check("link", got, want).is_some() {
                    self.model.dir_mut(parent).insert(nm, f);
                    self.model.inodes.get_mut(&f).unwrap().nlink += 1;
                }
            }
            85..=89 => {
                let all: Vec<u64> = self
                    .model
                    .inodes
                    .keys()
                    .copied()
                    .filter(|&m| m != ROOT)
                    .collect();
                let Some(m) = self.pick(&all) else { return };
                let ino = self.model.fs_ino[&m];
                let key = format!("user.k{}", self.rng.below(6)).into_bytes();
                let vlen = self.rng.below(400) as usize;
                let val = data(&mut self.rng, vlen);
                let has = self.model.inodes[&m].xattrs.contains_key(&key);
                if self.rng.chance(30) {
                    let want = if has { Ok(()) } else { Err(Errno::ENODATA) };
                    if self
                        .check("removexattr", self.fs().removexattr(&R, ino, &key), want)
                        .is_some()
                    {
                        self.model.inodes.get_mut(&m).unwrap().xattrs.remove(&key);
                    }
                } else {
                    let flags = [0, XATTR_CREATE, XATTR_REPLACE][self.rng.below(3) as usize];
                    let want = match (has, flags) {
                        (true, XATTR_CREATE) => Err(Errno::EEXIST),
                        (false, XATTR_REPLACE) => Err(Errno::ENODATA),
                        _ => Ok(()),
                    };
                    if self
                        .check(
                            "setxattr",
                            self.fs().setxattr(&R, ino, &key, &val, flags),
                            want,
                        )
                        .is_some()
                    {
                        self.model
                            .inodes
                            .get_mut(&m)
                            .unwrap()
                            .xattrs
                            .insert(key, val);
                    }
                }
            }
            90..=93 => {
                let files = self.model.files();
                let Some(f) = self.pick(&files) else { return };
                let ino = self.model.fs_ino[&f];
                let mut off = self.rng.below(3_000_000);
                let mut len = 1 + self.rng.below(500_000);
                let mode = [
                    0,
                    FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_ZERO_RANGE,
                    FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_COLLAPSE_RANGE,
                    FALLOC_FL_INSERT_RANGE,
                ][self.rng.below(7) as usize];
                let shift = mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE) != 0;
                if shift && self.rng.below(4) != 0 {
                    off -= off % 4096;
                    len = (len - len % 4096).max(4096);
                }
                if std::env::var_os("MODEL_TRACE").is_some() {
                    eprintln!("  fallocate ino {ino} off {off} len {len} mode {mode}");
                }
                let Kind::File(d) = &self.model.inodes[&f].kind else {
                    return;
                };
                let size = d.len() as u64;
                let aligned = off.is_multiple_of(4096) && len.is_multiple_of(4096);
                let want = match mode {
                    FALLOC_FL_COLLAPSE_RANGE if !aligned || off + len >= size => Err(Errno::EINVAL),
                    FALLOC_FL_INSERT_RANGE if !aligned || off >= size => Err(Errno::EINVAL),
                    _ => Ok(()),
                };
                let got = self.fs().fallocate(&R, ino, 0, off, len, mode);
                if self.check("fallocate", got, want).is_none() {
                    return;
                }
                if let Kind::File(d) = &mut self.model.inodes.get_mut(&f).unwrap().kind {
                    let (o, end) = (off as usize, (off + len) as usize);
                    match mode {
                        FALLOC_FL_COLLAPSE_RANGE => {
                            d.drain(o..end);
                        }
                        FALLOC_FL_INSERT_RANGE => {
                            d.splice(o..o, std::iter::repeat_n(0, len as usize));
                        }
                        _ => {
                            if mode & FALLOC_FL_KEEP_SIZE == 0 && d.len() < end {
                                d.resize(end, 0);
                            }
                            if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE) != 0 {
                                let e = end.min(d.len());
                                if o < e {
                                    d[o..e].fill(0);
                                }
                            }
                        }
                    }
                }
            }
            94..=96 => {
                self.fs().sync_fs().expect("sync");
            }
            _ => self.remount(),
        }
    }

    /// Inodes the test drops from the model are forgotten by the front end at once.
    fn forget_if_gone(&mut self, _m: u64) {}

    fn rename(&mut self, parent: u64, nm: Vec<u8>, existing: Option<u64>) {
        let dirs = self.model.dirs();
        let newparent = self.pick(&dirs).unwrap();
        let newname = name(&mut self.rng);
        let flags = match self.rng.below(6) {
            0 => RenameFlags::NOREPLACE,
            1 => RenameFlags::EXCHANGE,
            _ => 0,
        };
        let target = self.model.dir(newparent).get(&newname).copied();
        let want: Result<(), Errno> = (|| {
            let src = existing.ok_or(Errno::ENOENT)?;
            if flags == RenameFlags::EXCHANGE {
                let dst = target.ok_or(Errno::ENOENT)?;
                if src == dst {
                    return Ok(());
                }
                if (self.model.is_dir(src) && self.model.within(newparent, src))
                    || (self.model.is_dir(dst) && self.model.within(parent, dst))
                {
                    return Err(Errno::EINVAL);
                }
                return Ok(());
            }
            if let Some(dst) = target {
                if flags == RenameFlags::NOREPLACE {
                    return Err(Errno::EEXIST);
                }
                if dst == src {
                    return Ok(());
                }
                match (self.model.is_dir(src), self.model.is_dir(dst)) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !self.model.dir(dst).is_empty() => {
                        return Err(Errno::ENOTEMPTY);
                    }
                    _ => {}
                }
            }
            if self.model.is_dir(src) && self.model.within(newparent, src) {
                return Err(Errno::EINVAL);
            }
            Ok(())
        })();
        let (pino, npino) = (self.model.fs_ino[&parent], self.model.fs_ino[&newparent]);
        let got = self
            .fs()
            .rename(&R, pino, &nm, npino, &newname, RenameFlags(flags));
        if self.check("rename", got, want).is_none() {
            return;
        }
        let src = existing.unwrap();
        if target == Some(src) {
            return;
        }
        if flags == RenameFlags::EXCHANGE {
            let dst = target.unwrap();
            self.model.dir_mut(parent).insert(nm, dst);
            self.model.dir_mut(newparent).insert(newname, src);
            for (m, p) in [(src, newparent), (dst, parent)] {
                if self.model.is_dir(m) && parent != newparent {
                    self.model.inodes.get_mut(&m).unwrap().parent = p;
                    self.model.inodes.get_mut(&p).unwrap().nlink += 1;
                    let other = if p == parent { newparent } else { parent };
                    self.model.inodes.get_mut(&other).unwrap().nlink -= 1;
                }
            }
            return;
        }
        self.model.dir_mut(parent).remove(&nm);
        if let Some(dst) = target {
            if self.model.is_dir(dst) {
                self.model.inodes.remove(&dst);
                self.model.fs_ino.remove(&dst);
                self.model.inodes.get_mut(&newparent).unwrap().nlink -= 1;
            } else {
                self.model.drop_link(dst);
            }
        }
        self.model.dir_mut(newparent).insert(newname, src);
        if self.model.is_dir(src) {
            self.model.inodes.get_mut(&parent).unwrap().nlink -= 1;
            self.model.inodes.get_mut(&newparent).unwrap().nlink += 1;
            self.model.inodes.get_mut(&src).unwrap().parent = newparent;
        }
    }

    fn remount(&mut self) {
        let s = self.fs().with_volume(|v| v.stats());
        self.totals.checkpoints += s.checkpoints;
        self.totals.gc_segments += s.gc_segments;
        self.totals.gc_moved_blocks += s.gc_moved_blocks;
        unmount(self.fs.take().unwrap());
        self.fs = Some(mount(&self.dev));
    }

    /// Compare the whole tree.
    fn compare(&self) {
        let fs = self.fs();
        for (&m, node) in &self.model.inodes {
            let ino = self.model.fs_ino[&m];
            let attr = fs
                .getattr(&R, ino)
                .unwrap_or_else(|e| panic!("getattr of model {m} (ino {ino}): {e:?}"));
            assert_eq!(attr.nlink, node.nlink, "nlink of ino {ino}");
            let mut xl: Vec<Vec<u8>> = fs
                .listxattr(&R, ino)
                .unwrap()
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_vec())
                .collect();
            xl.sort();
            assert_eq!(
                xl,
                node.xattrs.keys().cloned().collect::<Vec<_>>(),
                "xattr names of {ino}"
            );
            for (k, v) in &node.xattrs {
                assert_eq!(&fs.getxattr(&R, ino, k).unwrap(), v);
            }
            match &node.kind {
                Kind::File(d) => {
                    assert_eq!(attr.kind, FileType::RegularFile);
                    assert_eq!(attr.size, d.len() as u64, "size of ino {ino}");
                    let got = read_all(fs, ino);
                    if got != *d {
                        let at = got.iter().zip(d.iter()).position(|(a, b)| a != b);
                        panic!("content of ino {ino} differs at {at:?} (len {})", d.len());
                    }
                }
                Kind::Symlink(t) => {
                    assert_eq!(attr.kind, FileType::Symlink);
                    assert_eq!(&fs.readlink(&R, ino).unwrap(), t);
                }
                Kind::Dir(entries) => {
                    assert_eq!(attr.kind, FileType::Directory);
                    let got: Vec<(Vec<u8>, u64)> =
                        list(fs, ino).into_iter().map(|(n, i, _)| (n, i)).collect();
                    let want: Vec<(Vec<u8>, u64)> = entries
                        .iter()
                        .map(|(n, m)| (n.clone(), self.model.fs_ino[m]))
                        .collect();
                    assert_eq!(got, want, "entries of dir {ino}");
                    let dotdot = fs.lookup(&R, ino, b"..").unwrap().attr.ino;
                    assert_eq!(dotdot, self.model.fs_ino[&node.parent]);
                }
            }
        }
    }
}

fn run(seed: u64, steps: usize, mib: u64) -> logfs::fs::Stats {
    let dev = new_device(mib);
    let fs = mount(&dev);
    let mut h = Harness {
        rng: Rng(seed),
        model: Model::new(),
        fs: Some(fs),
        dev,
        totals: Default::default(),
    };
    let every = std::env::var("MODEL_CHECK_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    for i in 0..steps {
        h.step();
        if i % every == every - 1 {
            h.compare();
        }
    }
    h.compare();
    h.remount();
    h.compare();
    unmount(h.fs.take().unwrap());
    eprintln!(
        "seed {seed}: {steps} steps, {} inodes at the end, {:?}",
        h.model.inodes.len(),
        h.totals
    );
    h.totals
}

#[test]
fn model_seed_1() {
    run(1, 10_000, 256);
}

#[test]
fn model_seed_2() {
    run(2, 10_000, 256);
}

#[test]
fn model_seed_3_small_volume() {
    // 96 MiB with multi-megabyte writes: the cleaner has to run, and the volume fills up.
    let stats = run(3, 10_000, 96);
    assert!(stats.gc_segments > 0, "the cleaner never ran");
}

#[test]
fn model_seed_4_small_volume() {
    let stats = run(4, 10_000, 64);
    assert!(stats.gc_segments > 0, "the cleaner never ran");
}
