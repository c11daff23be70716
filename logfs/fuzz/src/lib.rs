//! The mount fuzzer's input and its execution, used by the fuzz target (fuzz_targets/
//! mount_ops.rs), and the seed corpus (src/seeds_corpus.rs).
//!
//! An input picks one of the seed volumes (logfs/tests/common/seeds.rs, built once per process),
//! damages a few of the blocks that volume uses (metadata areas, node and directory blocks,
//! data) and re-seals their checksums the way a crafted image would
//! (logfs/tests/common/image.rs), mounts it, and runs a sequence of operations through the
//! Bento `FileSystem` trait, with unmounts and crashes (a remount without unmounting) between
//! them. Errors are expected; a panic, a hang or a huge allocation is a finding.
//!
//! With LOGFS_FUZZ_TRACE set, a run prints the blocks it damaged and each operation with its
//! outcome: `LOGFS_FUZZ_TRACE=1 target/x86_64-unknown-linux-gnu/release/mount_ops ARTIFACT`.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use bento_runtime::fs::{
    DirFiller, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FileSystem, FileType, Ino, Mount,
    MountOptions, ROOT_INO, RenameFlags, Request, S_IFBLK, S_IFCHR, S_IFIFO, S_IFREG, S_IFSOCK,
    SetAttr, TimeOrNow, Timespec,
};
use bento_runtime::ks::block::BlockDevice;
use bento_user::CrashDevice;
use logfs::BLOCK_SIZE;
use logfs::LogFs;

#[path = "../../tests/common/image.rs"]
pub mod image;
#[path = "../../tests/common/seeds.rs"]
pub mod seeds;

mod seeds_corpus;
pub use seeds_corpus::write_seeds;

use image::{Image, MAGICS, magic_of};
use seeds::Seed;

pub const MAX_DAMAGES: u8 = 8;
pub const MAX_OPS: usize = 64;
/// Largest read or write buffer.
const MAX_IO: usize = 256 * 1024;

mod input;
pub use input::*;

// ---- the seeds, once per process ------------------------------------------------------------

/// A seed volume and the blocks it uses, by class.
pub struct Prepared {
    pub seed: Seed,
    pub meta: Vec<u64>,
    pub cp: Vec<u64>,
    pub node: Vec<u64>,
    pub dir: Vec<u64>,
    pub data: Vec<u64>,
    pub nids: Vec<u32>,
    pub max_nid: u32,
    pub main_start: u32,
    pub main_end: u32,
    pub total: u64,
}

fn prepare(seed: Seed) -> Prepared {
    let dev = seeds::device(&seed.image);
    let img = Image::open(dev.clone());
    let l = img.sb.layout;
    let mut p = Prepared {
        meta: Vec::new(),
        cp: Vec::new(),
        node: Vec::new(),
        dir: Vec::new(),
        data: Vec::new(),
        nids: Vec::new(),
        max_nid: l.max_nid,
        main_start: l.main_start,
        main_end: l.main_start + l.main_segments * logfs::SEG_BLOCKS,
        total: l.total_blocks,
        seed,
    };
    let pack = l.cp_pack_start(img.current_pack());
    let body = u64::from(l.cp_blocks);
    let mut blk = [0u8; BLOCK_SIZE];
    for b in 0..u64::from(l.main_start) {
        if p.seed.image.get(b).is_none() {
            continue;
        }
        p.meta.push(b);
        if (pack..pack + body).contains(&b) {
            p.cp.push(b);
        }
    }
    for b in u64::from(l.main_start)..dev.block_count() {
        if p.seed.image.get(b).is_none() {
            continue;
        }
        dev.read_blocks(b, &mut blk).unwrap();
        match magic_of(&blk) {
            logfs::format::header::MAGIC_NODE => {
                p.node.push(b);
                p.nids
                    .push(u32::from_le_bytes(blk[8..12].try_into().unwrap()));
            }
            logfs::format::header::MAGIC_DIR => p.dir.push(b),
            m if MAGICS.contains(&m) => p.meta.push(b),
            _ => p.data.push(b),
        }
    }
    p.nids.sort_unstable();
    p.nids.dedup();
    p
}

pub fn prepared() -> &'static [Prepared] {
    static SEEDS: OnceLock<Vec<Prepared>> = OnceLock::new();
    SEEDS.get_or_init(|| seeds::all().into_iter().map(prepare).collect())
}

impl Prepared {
    fn pick(&self, t: Target) -> Option<u64> {
        let (list, i) = match t {
            Target::Meta(i) => (&self.meta, i as usize),
            Target::Checkpoint(i) => (&self.cp, i as usize),
            Target::Node(i) => (&self.node, i as usize),
            Target::Dir(i) => (&self.dir, i as usize),
            Target::Data(i) => (&self.data, i as usize),
        };
        if list.is_empty() {
            None
        } else {
            Some(list[i % list.len()])
        }
    }

    fn val(&self, v: Val) -> u64 {
        match v {
            Val::Zero => 0,
            Val::One => 1,
            Val::Max => u64::MAX,
            Val::MaxMinus(d) => u64::MAX - u64::from(d),
            Val::Pow2(k) => 1u64 << (k % 64),
            Val::MaxNid => u64::from(self.max_nid),
            Val::MainStart => u64::from(self.main_start),
            Val::MainEnd => u64::from(self.main_end),
            Val::TotalBlocks => self.total,
            Val::Nid(i) => u64::from(self.nids[i as usize % self.nids.len()]),
            Val::Block(i) => {
                let all = [&self.node, &self.dir, &self.data, &self.meta];
                let n: usize = all.iter().map(|l| l.len()).sum();
                let mut i = i as usize % n;
                for l in all {
                    if i < l.len() {
                        return l[i];
                    }
                    i -= l.len();
                }
                0
            }
            Val::Raw(v) => v,
        }
    }
}

// ---- running an input -----------------------------------------------------------------------

/// Apply the damages to a fresh device over the seed.
pub fn damaged_device(p: &Prepared, damages: &[Damage]) -> Arc<CrashDevice> {
    let dev = seeds::device(&p.seed.image);
    let img = Image::open(dev.clone());
    for d in damages {
        let Some(addr) = p.pick(d.target) else {
            continue;
        };
        if trace() {
            eprintln!("damage block {addr}: {d:?}");
        }
        let copy = match d.edit {
            Edit::CopyFrom(t) => p.pick(t).map(|a| img.read(a)),
            _ => None,
        };
        let edit = |b: &mut [u8; BLOCK_SIZE]| match d.edit {
            Edit::FlipBit { at, bit } => b[at.offset(1)] ^= 1 << (bit % 8),
            Edit::SetByte { at, v } => b[at.offset(1)] = v,
            Edit::Set16 { at, v } => {
                let o = at.offset(2);
                b[o..o + 2].copy_from_slice(&(p.val(v) as u16).to_le_bytes());
            }
            Edit::Set32 { at, v } => {
                let o = at.offset(4);
                b[o..o + 4].copy_from_slice(&(p.val(v) as u32).to_le_bytes());
            }
            Edit::Set64 { at, v } => {
                let o = at.offset(8);
                b[o..o + 8].copy_from_slice(&p.val(v).to_le_bytes());
            }
            Edit::Fill { at, len, v } => {
                let o = at.offset(1);
                let end = (o + len as usize % 512).min(BLOCK_SIZE);
                b[o..end].fill(v);
            }
            Edit::Zero => b.fill(0),
            Edit::CopyFrom(_) => {
                if let Some(c) = &copy {
                    b.copy_from_slice(c);
                }
            }
        };
        if d.seal < 32 {
            let mut b = [0u8; BLOCK_SIZE];
            b.copy_from_slice(&img.read(addr));
            edit(&mut b);
            img.write(addr, &b);
        } else {
            img.edit_resealed(addr, edit);
        }
    }
    dev
}

type Fs = LogFs<Arc<CrashDevice>>;
const R: Request = Request::ROOT;

struct Filler {
    left: u8,
    seen: Vec<Ino>,
}

impl DirFiller for Filler {
    fn add(&mut self, ino: Ino, _offset: u64, _kind: FileType, _name: &[u8]) -> bool {
        if self.left == 0 {
            return true;
        }
        self.left -= 1;
        self.seen.push(ino);
        false
    }
}

/// The state of a run: the mount, and what it has seen.
struct Run<'a> {
    p: &'a Prepared,
    dev: Arc<CrashDevice>,
    opts: MountOptions,
    fs: Option<Fs>,
    inos: Vec<Ino>,
    known: HashSet<Ino>,
    open: Vec<Ino>,
}

const NEW_NAMES: [&[u8]; 8] = [
    b"a",
    b"b",
    b"new-file",
    b".",
    b"..",
    b"with/slash",
    b"",
    b"entry-0100-xxxx",
];
const PREFIXES: [&[u8]; 5] = [b"user.", b"trusted.", b"security.", b"system.", b""];

impl Run<'_> {
    fn ino(&self, i: I) -> Ino {
        match i {
            I::Known(k) => self.inos[k as usize % self.inos.len()],
            I::Raw(v) => u64::from(v),
        }
    }

    fn learn(&mut self, ino: Ino) {
        if self.known.insert(ino) {
            self.inos.push(ino);
        }
    }

    fn name(&self, n: N) -> Vec<u8> {
        match n {
            N::Known(k) => {
                let names = &self.p.seed.names;
                if names.is_empty() {
                    NEW_NAMES[k as usize % NEW_NAMES.len()].to_vec()
                } else {
                    names[k as usize % names.len()].clone()
                }
            }
            N::New(k) => NEW_NAMES[k as usize % NEW_NAMES.len()].to_vec(),
            N::Repeat { byte, len } => vec![byte; len as usize % 300],
            N::Bytes(b) => b.to_vec(),
        }
    }

    fn xname(&self, x: XName) -> Vec<u8> {
        let mut v = PREFIXES[x.prefix as usize % PREFIXES.len()].to_vec();
        v.extend(self.name(x.name));
        v
    }

    fn mount(&mut self) -> bool {
        self.open.clear();
        let r = Fs::mount(self.dev.clone(), &self.opts);
        if trace() {
            eprintln!("mount -> {}", outcome(&r));
        }
        self.fs = r.ok();
        self.fs.is_some()
    }

    /// One operation; false when the run is over (a mount failed).
    fn op(&mut self, op: Op) -> bool {
        let Some(fs) = self.fs.as_ref() else {
            return false;
        };
        let mut learned = None;
        // LOGFS_FUZZ_TRACE: each operation and its outcome.
        let trace = trace();
        let mut out = String::new();
        macro_rules! t {
            ($e:expr) => {{
                let r = $e;
                if trace {
                    out = outcome(&r);
                }
                r
            }};
        }
        if trace {
            eprintln!("{op:?}");
        }
        match op {
            Op::Lookup(d, n) => {
                learned = t!(fs.lookup(&R, self.ino(d), &self.name(n))).ok();
            }
            Op::Getattr(i) => {
                let _ = t!(fs.getattr(&R, self.ino(i)));
            }
            Op::Setattr {
                ino,
                mode,
                uid,
                size,
                times,
            } => {
                let t = Timespec::new(1_800_000_000, 5);
                let sa = SetAttr {
                    mode: mode.map(|m| u32::from(m) & 0o7777),
                    uid: uid.map(u32::from),
                    gid: uid.map(u32::from),
                    size: size.map(Off::get),
                    atime: times.then_some(TimeOrNow::Now),
                    mtime: times.then_some(TimeOrNow::Time(t)),
                    ctime: None,
                    kill_suid: false,
                };
                let _ = t!(fs.setattr(&R, self.ino(ino), &sa, None));
            }
            Op::Readdir { dir, offset, limit } => {
                let mut f = Filler {
                    left: limit,
                    seen: Vec::new(),
                };
                let dir = self.ino(dir);
                let _ = t!(fs.readdir(&R, dir, 0, offset.get() % 100_000, &mut f));
                for ino in f.seen.into_iter().take(4) {
                    // readdir returns no lookup references; only note the numbers.
                    self.learn(ino);
                }
            }
            Op::Read { ino, offset, len } => {
                let len = len as usize % (MAX_IO + 1);
                let mut buf = vec![0u8; len];
                let _ = t!(fs.read(&R, self.ino(ino), 0, offset.get(), &mut buf));
            }
            Op::Write {
                ino,
                offset,
                len,
                byte,
            } => {
                let data: Vec<u8> = (0..len as usize % (MAX_IO + 1))
                    .map(|i| byte.wrapping_add((i / 512) as u8))
                    .collect();
                let _ = t!(fs.write(&R, self.ino(ino), 0, offset.get(), &data));
            }
            Op::Truncate(i, size) => {
                let sa = SetAttr {
                    size: Some(size.get()),
                    ..SetAttr::default()
                };
                let _ = t!(fs.setattr(&R, self.ino(i), &sa, None));
            }
            Op::Fallocate {
                ino,
                offset,
                len,
                mode,
            } => {
                let modes = [
                    0,
                    FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    FALLOC_FL_PUNCH_HOLE,
                    0x08, // COLLAPSE_RANGE
                    0x10, // ZERO_RANGE
                    0x20, // INSERT_RANGE
                    i32::from(mode),
                ];
                let mode = modes[mode as usize % modes.len()];
                let len = len.get() % (64 << 20);
                let _ = t!(fs.fallocate(&R, self.ino(ino), 0, offset.get(), len, mode));
            }
            Op::Create(d, n) => {
                if let Ok((e, o)) = t!(fs.create(&R, self.ino(d), &self.name(n), 0o644, 0)) {
                    let _ = t!(fs.release(&R, e.attr.ino, o.fh, 0));
                    learned = Some(e);
                }
            }
            Op::Mknod {
                dir,
                name,
                kind,
                rdev,
            } => {
                let kinds = [S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, S_IFREG, 0, 0o170000];
                let mode = kinds[kind as usize % kinds.len()] | 0o640;
                learned = t!(fs.mknod(&R, self.ino(dir), &self.name(name), mode, rdev)).ok();
            }
            Op::Mkdir(d, n) => {
                learned = t!(fs.mkdir(&R, self.ino(d), &self.name(n), 0o755)).ok();
            }
            Op::Rmdir(d, n) => {
                let _ = t!(fs.rmdir(&R, self.ino(d), &self.name(n)));
            }
            Op::Unlink(d, n) => {
                let _ = t!(fs.unlink(&R, self.ino(d), &self.name(n)));
            }
            Op::Rename {
                dir,
                name,
                to,
                new,
                flags,
            } => {
                let f = [
                    0,
                    RenameFlags::NOREPLACE,
                    RenameFlags::EXCHANGE,
                    RenameFlags::WHITEOUT,
                    u32::from(flags),
                ][flags as usize % 5];
                let _ = t!(fs.rename(
                    &R,
                    self.ino(dir),
                    &self.name(name),
                    self.ino(to),
                    &self.name(new),
                    RenameFlags(f),
                ));
            }
            Op::Link { ino, dir, name } => {
                learned = t!(fs.link(&R, self.ino(ino), self.ino(dir), &self.name(name))).ok();
            }
            Op::Symlink {
                dir,
                name,
                len,
                byte,
            } => {
                let target = vec![byte | 1; len as usize % 5000];
                learned = t!(fs.symlink(&R, self.ino(dir), &self.name(name), &target)).ok();
            }
            Op::Readlink(i) => {
                let _ = t!(fs.readlink(&R, self.ino(i)));
            }
            Op::Setxattr {
                ino,
                name,
                len,
                byte,
                flags,
            } => {
                let value = vec![byte; len as usize % 5000];
                let _ = t!(fs.setxattr(
                    &R,
                    self.ino(ino),
                    &self.xname(name),
                    &value,
                    i32::from(flags % 4),
                ));
            }
            Op::Getxattr(i, x) => {
                let _ = t!(fs.getxattr(&R, self.ino(i), &self.xname(x)));
            }
            Op::Listxattr(i) => {
                let _ = t!(fs.listxattr(&R, self.ino(i)));
            }
            Op::Removexattr(i, x) => {
                let _ = t!(fs.removexattr(&R, self.ino(i), &self.xname(x)));
            }
            Op::Open(i) => {
                let ino = self.ino(i);
                if t!(fs.open(&R, ino, 2)).is_ok() {
                    self.open.push(ino);
                }
            }
            Op::Release(i) => {
                let ino = self.ino(i);
                if let Some(k) = self.open.iter().position(|&o| o == ino) {
                    self.open.swap_remove(k);
                    let _ = t!(fs.release(&R, ino, 0, 0));
                }
            }
            Op::Fsync { ino, datasync } => {
                let _ = t!(fs.fsync(&R, self.ino(ino), 0, datasync));
            }
            Op::Fsyncdir(i) => {
                let _ = t!(fs.fsyncdir(&R, self.ino(i), 0, false));
            }
            Op::Statfs => {
                let _ = t!(fs.statfs(&R, ROOT_INO));
            }
            Op::Forget(i, n) => fs.forget(self.ino(i), u64::from(n % 4)),
            Op::SyncFs => {
                let _ = t!(fs.sync_fs());
            }
            Op::Background => {
                let _ = t!(fs.background());
            }
            Op::Remount => {
                let _ = t!(fs.destroy());
                if trace {
                    eprintln!("  unmount -> {out}");
                }
                self.fs = None;
                return self.mount();
            }
            Op::Crash => {
                self.fs = None;
                return self.mount();
            }
        }
        if trace {
            eprintln!("  -> {out}");
        }
        if let Some(e) = learned {
            self.learn(e.attr.ino);
        }
        true
    }
}

/// Run one input.
pub fn run(input: &Input) {
    let seeds = prepared();
    let p = &seeds[input.seed as usize % seeds.len()];
    if trace() {
        eprintln!(
            "seed {} ({}), {:?}",
            input.seed as usize % seeds.len(),
            p.seed.name,
            input.mount
        );
    }
    let dev = damaged_device(p, &input.damages);
    let mut run = Run {
        p,
        dev,
        opts: input.mount.options(),
        fs: None,
        inos: p.seed.inos.clone(),
        known: p.seed.inos.iter().copied().collect(),
        open: Vec::new(),
    };
    if !run.mount() {
        return;
    }
    for &op in &input.ops {
        if !run.op(op) {
            return;
        }
    }
    if let Some(fs) = run.fs.take() {
        for ino in std::mem::take(&mut run.open) {
            let _ = fs.release(&R, ino, 0, 0);
        }
        let r = fs.destroy();
        if trace() {
            eprintln!("unmount -> {}", outcome(&r));
        }
    }
}

/// Whether to print the run (LOGFS_FUZZ_TRACE set): damages, operations, their outcomes.
pub fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("LOGFS_FUZZ_TRACE").is_some())
}

fn outcome<T, E: std::fmt::Debug>(r: &std::result::Result<T, E>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}
