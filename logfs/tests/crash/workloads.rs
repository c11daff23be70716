//! Workloads, ACE-style: short sequences of core operations on a small set of names, each
//! followed by a persistence operation (or none), plus longer random sequences.
//!
//! The base volume (`run::POPULATE`) holds `/a` (10 000 bytes), `/b` (100 bytes, inline),
//! `/d/c` (6 000 bytes) and the empty directory `/e`. Operations use those names and the new
//! names `/n`, `/x`, `/d/m`, `/e/y`, and reuse names across kinds (a file where a directory
//! was), so replacing, re-creating and moving all occur.

use super::model::{
    FALLOC_ALLOCATE, FALLOC_COLLAPSE, FALLOC_INSERT, FALLOC_KEEP_SIZE, FALLOC_PUNCH, FALLOC_ZERO,
    FALLOC_ZERO_KEEP, Op, Path, Tree,
};

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.below(v.len())])
    }
}

/// The core operations, as concrete instances (seeds are set when a workload is built).
pub fn core_ops() -> Vec<Op> {
    use Op::*;
    let w = |path, off, len| Write {
        path,
        off,
        len,
        seed: 0,
    };
    let ap = |path, len| Append { path, len, seed: 0 };
    let tr = |path, size| Truncate { path, size };
    let fa = |path, off, len, mode| Fallocate {
        path,
        off,
        len,
        mode,
    };
    let rn = |from, to| Rename { from, to };
    let ln = |from, to| Link { from, to };
    let xa = |path, name| SetXattr {
        path,
        name,
        seed: 0,
    };
    vec![
        Create("n"),
        Create("d/m"),
        Create("e/y"),
        Create("e"),
        Mkdir("x"),
        Mkdir("n"),
        Mkdir("d/m"),
        w("a", 0, 100),
        w("a", 4096, 4096),
        w("a", 9000, 8000),
        w("b", 50, 100),
        w("b", 0, 8000),
        w("d/c", 4096, 4096),
        w("n", 0, 5000),
        w("d/m", 0, 300),
        ap("a", 3000),
        ap("b", 4000),
        ap("n", 100),
        ap("d/c", 5000),
        tr("a", 0),
        tr("a", 5000),
        tr("a", 20_000),
        tr("b", 10),
        tr("d/c", 0),
        tr("n", 0),
        ln("a", "d/m"),
        ln("d/c", "n"),
        ln("b", "e/y"),
        Unlink("a"),
        Unlink("b"),
        Unlink("d/c"),
        Unlink("n"),
        Unlink("d/m"),
        rn("a", "n"),
        rn("a", "b"),
        rn("n", "a"),
        rn("d/c", "a"),
        rn("b", "d/m"),
        rn("d", "x"),
        rn("d/c", "d/m"),
        rn("n", "d/c"),
        rn("e", "d/m"),
        rn("e", "x"),
        Rmdir("e"),
        Rmdir("x"),
        Rmdir("d/m"),
        Rmdir("n"),
        fa("a", 0, 8192, FALLOC_ALLOCATE),
        fa("a", 12_288, 8192, FALLOC_ALLOCATE),
        fa("a", 8192, 16_384, FALLOC_KEEP_SIZE),
        fa("a", 0, 4096, FALLOC_PUNCH),
        fa("a", 4096, 4096, FALLOC_PUNCH),
        fa("b", 0, 10_000, FALLOC_ALLOCATE),
        fa("n", 0, 4096, FALLOC_ALLOCATE),
        fa("d/c", 0, 6000, FALLOC_PUNCH),
        fa("a", 1000, 6000, FALLOC_ZERO),
        fa("b", 50, 9000, FALLOC_ZERO_KEEP),
        fa("a", 0, 4096, FALLOC_COLLAPSE),
        fa("a", 4096, 8192, FALLOC_INSERT),
        xa("a", "user.k"),
        xa("n", "user.k"),
        xa("d/c", "user.j"),
        Chmod {
            path: "a",
            mode: 0o600,
        },
        Chmod {
            path: "n",
            mode: 0o755,
        },
        UnlinkOpen {
            path: "b",
            fsync: false,
        },
        UnlinkOpen {
            path: "d/c",
            fsync: true,
        },
        UnlinkOpen {
            path: "n",
            fsync: true,
        },
    ]
}

/// `op` with data seed `seed`.
pub fn seeded(op: Op, seed: u64) -> Op {
    match op {
        Op::Write { path, off, len, .. } => Op::Write {
            path,
            off,
            len,
            seed,
        },
        Op::Append { path, len, .. } => Op::Append { path, len, seed },
        Op::SetXattr { path, name, .. } => Op::SetXattr { path, name, seed },
        op => op,
    }
}

/// The names an operation touches.
fn touched(op: &Op) -> Vec<Path> {
    match *op {
        Op::Create(p)
        | Op::Mkdir(p)
        | Op::Unlink(p)
        | Op::Rmdir(p)
        | Op::Write { path: p, .. }
        | Op::Append { path: p, .. }
        | Op::Truncate { path: p, .. }
        | Op::Fallocate { path: p, .. }
        | Op::SetXattr { path: p, .. }
        | Op::Chmod { path: p, .. }
        | Op::UnlinkOpen { path: p, .. } => vec![p],
        Op::Link { from, to } | Op::Rename { from, to } => vec![to, from],
        _ => Vec::new(),
    }
}

fn parent(p: Path) -> Path {
    match p.rfind('/') {
        Some(i) => &p[..i],
        None => "",
    }
}

const FILES: [Path; 7] = ["a", "b", "n", "d/c", "d/m", "e/y", "e"];

/// Persistence operations that make sense after `op`, in state `after`: nothing, fsync and
/// fdatasync of what it touched, fsync of the directories it changed, sync_fs, and fsync of an
/// untouched file.
pub fn persistence_after(op: &Op, after: &Tree) -> Vec<Option<Op>> {
    let mut v = vec![None, Some(Op::SyncFs)];
    let t = touched(op);
    for &p in &t {
        match after.resolve(p) {
            Some(id) if after.file(id).is_some() => {
                v.push(Some(Op::Fsync(p)));
                v.push(Some(Op::Fdatasync(p)));
            }
            Some(_) => v.push(Some(Op::FsyncDir(p))),
            None => {}
        }
        let d = Some(Op::FsyncDir(parent(p)));
        if !v.contains(&d) {
            v.push(d);
        }
    }
    if let Some(other) = FILES
        .iter()
        .copied()
        .find(|p| !t.contains(p) && after.resolve(p).is_some_and(|id| after.file(id).is_some()))
    {
        v.push(Some(Op::Fsync(other)));
    }
    v
}

/// A workload: `core` operations with their persistence operations, if every core operation
/// is valid at its turn.
pub fn build(start: &Tree, steps: &[(Op, Option<Op>)]) -> Option<Vec<Op>> {
    let mut t = start.clone();
    let mut ops = Vec::new();
    for (i, (op, p)) in steps.iter().enumerate() {
        let op = seeded(*op, 1000 + i as u64);
        t.apply(&op, u64::MAX - i as u64)?;
        ops.push(op);
        if let Some(p) = p {
            t.apply(p, 0)?;
            ops.push(*p);
        }
    }
    Some(ops)
}

/// Every single core operation with every persistence operation after it.
pub fn ace_1(start: &Tree) -> Vec<Vec<Op>> {
    let mut out = Vec::new();
    for op in core_ops() {
        let mut t = start.clone();
        if t.apply(&op, u64::MAX).is_none() {
            continue;
        }
        for p in persistence_after(&op, &t) {
            if let Some(w) = build(start, &[(op, p)]) {
                out.push(w);
            }
        }
    }
    out
}

/// `count` sequences of `len` core operations, each followed by a persistence operation (or
/// none), drawn at random among the valid ones.
pub fn ace_n(start: &Tree, len: usize, count: usize, seed: u64) -> Vec<Vec<Op>> {
    let ops = core_ops();
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let mut tries = 0;
    while out.len() < count && tries < count * 50 {
        tries += 1;
        let mut t = start.clone();
        let mut steps = Vec::new();
        for i in 0..len {
            let valid: Vec<Op> = ops
                .iter()
                .copied()
                .filter(|op| t.clone().apply(op, u64::MAX - i as u64).is_some())
                .collect();
            let Some(op) = rng.pick(&valid) else { break };
            t.apply(&op, u64::MAX - i as u64);
            let ps = persistence_after(&op, &t);
            // The last step ends with a persistence operation more often than not.
            let p = if i + 1 == len && rng.below(4) != 0 {
                rng.pick(&ps[1..]).flatten()
            } else {
                rng.pick(&ps).flatten()
            };
            if let Some(p) = p {
                t.apply(&p, 0);
            }
            steps.push((op, p));
        }
        if steps.len() == len
            && let Some(w) = build(start, &steps)
        {
            out.push(w);
        }
    }
    out
}

/// A longer random sequence: core operations with random parameters on the same names, with
/// fsync, fdatasync, directory fsync and sync_fs mixed in.
pub fn random(start: &Tree, len: usize, seed: u64) -> Vec<Op> {
    let mut rng = Rng(seed);
    let mut t = start.clone();
    let mut ops = Vec::new();
    let mut tries = 0;
    while ops.len() < len && tries < len * 50 {
        tries += 1;
        let files: Vec<Path> = FILES
            .iter()
            .copied()
            .filter(|p| t.resolve(p).is_some_and(|id| t.file(id).is_some()))
            .collect();
        let f = rng.pick(&files).unwrap_or("a");
        let size = t
            .resolve(f)
            .and_then(|id| t.file(id))
            .map_or(0, |s| s.data.len() as u64);
        let seed = rng.next() % 1_000_000;
        let op = match rng.below(14) {
            0 => Op::Write {
                path: f,
                off: rng.below(size as usize + 1) as u64,
                len: 1 + rng.below(12_000),
                seed,
            },
            1 => Op::Append {
                path: f,
                len: 1 + rng.below(9000),
                seed,
            },
            2 => Op::Truncate {
                path: f,
                size: rng.below(size as usize * 2 + 100) as u64,
            },
            3 => {
                let modes = [
                    FALLOC_ALLOCATE,
                    FALLOC_KEEP_SIZE,
                    FALLOC_PUNCH,
                    FALLOC_ZERO,
                    FALLOC_ZERO_KEEP,
                    FALLOC_COLLAPSE,
                    FALLOC_INSERT,
                ];
                let mode = modes[rng.below(modes.len())];
                let len = if mode == FALLOC_COLLAPSE || mode == FALLOC_INSERT {
                    4096 * (1 + rng.below(3) as u64)
                } else {
                    1 + rng.below(12_000) as u64
                };
                Op::Fallocate {
                    path: f,
                    off: 4096 * rng.below(5) as u64,
                    len,
                    mode,
                }
            }
            4..=6 => {
                let v = [Op::Fsync(f), Op::Fdatasync(f), Op::SyncFs];
                v[rng.below(3)]
            }
            7 => {
                let dirs = ["", "d", "e", "x"];
                Op::FsyncDir(dirs[rng.below(4)])
            }
            _ => {
                let core = core_ops();
                seeded(core[rng.below(core.len())], seed)
            }
        };
        if t.apply(&op, u64::MAX - ops.len() as u64).is_some() {
            ops.push(op);
        }
    }
    ops
}
