//! What a recovered tree must satisfy, given the model history of the run and the crash moment.
//!
//! The history is `states[0..=n]` (the tree after each operation; `states[0]` is durable: the run
//! started from it), and for each operation the log positions of its start and end. At a crash
//! moment, the operations whose last request completed have *returned* (`L`: the last of them);
//! the operation that issued the last request may have been cut short; none after it did
//! anything. So the recovered tree can only reflect states up to `U` (`L`, or `L + 1` when that
//! operation issued I/O).
//!
//! Durable points, from the returned operations:
//! * `fsync(f)` / `fdatasync(f)` at `i`: file `f` (contents, size, xattrs) and every name it has
//!   in `states[i]`;
//! * `fsync(dir)` at `i`: every name in that directory (present or absent);
//! * `sync_fs` at `i`: every file and every name;
//! * the start (`0`): everything.
//!
//! For a file `f` let `lo(f)` be its last durable point at which it existed, and for a name
//! `(dir, name)` let `lo(dir, name)` be its last durable point. The checks:
//!
//! 1. **names**: in every directory present after recovery, each name maps to what it mapped to
//!    (some inode, or nothing) in one of `states[lo(dir, name)..=U]` — so durable names are
//!    there, durable removals stay removed, and no name is invented;
//! 2. **files**: a file that exists in every state of `states[lo(f)..=U]` is present after
//!    recovery; a file present after recovery has contents equal to its contents in one of the
//!    states of `states[lo(f)..=U]` that hold it (fsync'd data is there; nothing stale, nothing
//!    it never had);
//! 3. **coherence**: each name and the contents of the file it names after recovery were seen
//!    together in one state — operations are atomic, so a file renamed over another shows the
//!    old file or the new one with the contents it had when it got the name, never a torn or
//!    empty version;
//! 4. every inode reached is one the workload made (checked while reading the tree).

use std::collections::{BTreeSet, HashMap};

use super::model::{Id, Node, Op, Tree, show};
use super::states::Moment;

pub struct History<'a> {
    pub ops: &'a [Op],
    pub spans: &'a [(usize, usize)],
    pub states: &'a [Tree],
}

/// Which operations a crash moment saw: `returned` (L) and `upper` (U).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    pub returned: usize,
    pub upper: usize,
}

impl History<'_> {
    /// `None` when the moment falls inside `ops[0]`, the mount: nothing of this run counts yet.
    pub fn cut(&self, m: Moment) -> Option<Cut> {
        let completed = if m.inflight { m.issued - 1 } else { m.issued };
        let returned = (0..self.ops.len())
            .rev()
            .find(|&i| self.spans[i].1 <= completed)?;
        let upper = match m.issued.checked_sub(1) {
            Some(last) => (0..self.ops.len())
                .find(|&i| self.spans[i].0 <= last && last < self.spans[i].1)
                .unwrap_or(returned)
                .max(returned),
            None => returned,
        };
        Some(Cut { returned, upper })
    }

    /// Check a recovered tree; returns what is wrong.
    pub fn check(&self, cut: Cut, got: &Tree) -> Vec<String> {
        let (l, u) = (cut.returned, cut.upper);
        let states = &self.states[..=u];
        let mut lo_file: HashMap<Id, usize> = HashMap::new();
        let mut lo_name: HashMap<(Id, Vec<u8>), usize> = HashMap::new();
        let mut lo_dir: HashMap<Id, usize> = HashMap::new();
        let mut lo_all = 0;
        for i in 1..=l {
            let s = &self.states[i];
            match self.ops[i] {
                Op::SyncFs => {
                    lo_all = i;
                    for &f in s.nodes.keys() {
                        lo_file.insert(f, i);
                    }
                }
                Op::Fsync(p) | Op::Fdatasync(p) => {
                    if let Some(f) = s.resolve(p) {
                        lo_file.insert(f, i);
                        for (d, n, t) in s.entries() {
                            if t == f {
                                lo_name.insert((d, n.to_vec()), i);
                            }
                        }
                    }
                }
                Op::FsyncDir(p) => {
                    if let Some(d) = s.resolve(p) {
                        lo_dir.insert(d, i);
                    }
                }
                _ => {}
            }
        }
        let name_lo = |d: Id, n: &[u8]| {
            lo_all
                .max(lo_dir.get(&d).copied().unwrap_or(0))
                .max(lo_name.get(&(d, n.to_vec())).copied().unwrap_or(0))
        };
        let mut errs = Vec::new();

        // 1. names
        for (&d, node) in &got.nodes {
            let Node::Dir(entries) = node else { continue };
            let mut names: BTreeSet<&[u8]> = entries.keys().map(|k| k.as_slice()).collect();
            for s in states {
                if let Some(m) = s.dir(d) {
                    names.extend(m.keys().map(|k| k.as_slice()));
                }
            }
            for n in names {
                let lo = name_lo(d, n);
                let allowed: BTreeSet<Option<Id>> = states[lo..]
                    .iter()
                    .filter_map(|s| s.dir(d).map(|m| m.get(n).copied()))
                    .collect();
                if allowed.is_empty() {
                    continue; // the directory itself should not be here: its parent's check says so
                }
                let have = entries.get(n).copied();
                if !allowed.contains(&have) {
                    errs.push(format!(
                        "name {}/{}: holds {}, but since state {lo} (durable point) it held only {}",
                        dir_label(d),
                        show(n),
                        label(have),
                        allowed.iter().map(|a| label(*a)).collect::<Vec<_>>().join(" or ")
                    ));
                }
            }
        }

        // 2. files
        let all: BTreeSet<Id> = states
            .iter()
            .flat_map(|s| s.nodes.keys().copied())
            .collect();
        for f in all {
            let lo = lo_file.get(&f).copied().unwrap_or(0);
            let window = &states[lo..];
            let is_file = window.iter().any(|s| s.file(f).is_some());
            if window.iter().all(|s| s.nodes.contains_key(&f)) && !got.nodes.contains_key(&f) {
                errs.push(format!(
                    "#{f} is gone, but it existed from state {lo} (durable point) on"
                ));
            }
            if !is_file {
                continue;
            }
            if let Some(have) = got.file(f)
                && !window.iter().any(|s| s.file(f) == Some(have))
            {
                errs.push(format!(
                    "#{f} holds {have:?}; since state {lo} (durable point) it held only {:?}",
                    window.iter().filter_map(|s| s.file(f)).collect::<Vec<_>>()
                ));
            }
        }

        // 3. coherence
        for (d, n, t) in got.entries() {
            let seen = states.iter().any(|s| {
                s.dir(d).and_then(|m| m.get(n)) == Some(&t)
                    && match got.nodes.get(&t) {
                        Some(Node::File(f)) => s.file(t) == Some(f),
                        Some(Node::Dir(_)) => s.dir(t).is_some(),
                        None => false,
                    }
            });
            if !seen {
                errs.push(format!(
                    "{}/{} names #{t} holding {:?}, which no state had together",
                    dir_label(d),
                    show(n),
                    got.file(t)
                ));
            }
        }
        errs
    }
}

fn dir_label(d: Id) -> String {
    if d == 0 {
        String::new()
    } else {
        format!("#{d}")
    }
}

fn label(x: Option<Id>) -> String {
    match x {
        Some(i) => format!("#{i}"),
        None => "nothing".into(),
    }
}
