//! The crash-consistency harness: record a workload, build the crash states of its write log,
//! mount each, compare what recovery made of it with the model history, unmount and fsck.
//!
//! * `model`: the reference tree and operations;
//! * `run`: the base volume, running workloads on a recording device, reading trees back;
//! * `states`: which writes survive a crash (durable and volatile writes, subsets);
//! * `oracle`: what a recovered tree must satisfy (see its module doc);
//! * `workloads`: ACE-style and random workloads.
//!
//! A run may continue after a crash (`check_run` with `continue_every`): the crash state is
//! mounted on a recording device (recovery is recorded too), a few more operations run, and
//! the crash states of that second log are checked in turn — against the first run's oracle
//! when the crash hits recovery itself, against the second run's history after it.
#![allow(dead_code)]

pub mod model;
pub mod oracle;
pub mod run;
pub mod states;
pub mod workloads;

use std::collections::HashMap;
use std::sync::Arc;

use bento_runtime::fs::{FileSystem, Mount};
use bento_user::CrashDevice;
use logfs::LogFs;

use model::{Op, Tree};
use oracle::{Cut, History};
use run::{Base, Recorded, Start};
use states::{Candidate, Limits, Moment};

/// What checking found.
#[derive(Default)]
pub struct Outcome {
    /// Distinct crash states mounted and checked.
    pub states: usize,
    /// (crash state, moment) pairs checked against the oracle.
    pub moments: usize,
    /// Runs recorded (first runs and continuations).
    pub runs: usize,
    pub violations: Vec<String>,
}

impl Outcome {
    pub fn add(&mut self, o: Outcome) {
        self.states += o.states;
        self.moments += o.moments;
        self.runs += o.runs;
        self.violations.extend(o.violations);
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub limits: Limits,
    /// Continue after every n-th crash state of a first run (0: never).
    pub continue_every: usize,
    /// Operations in a continuation.
    pub continue_len: usize,
}

/// The oracle a crash state is held to.
struct Check<'a> {
    rec: &'a Recorded,
    /// For a continuation: the first run and the moments its crash state stands for, which
    /// apply when the crash hits the continuation's mount (recovery).
    parent: Option<(&'a Recorded, &'a [Moment])>,
}

fn history(rec: &Recorded) -> History<'_> {
    History {
        ops: &rec.ops,
        spans: &rec.spans,
        states: &rec.states,
    }
}

fn ops_text(ops: &[Op]) -> String {
    ops.iter()
        .map(|o| format!("    {o:?}\n"))
        .collect::<String>()
}

/// Mount one crash state, check it, unmount, fsck. Returns the recovered tree if all is well.
fn check_state(
    base: &Base,
    chk: &Check<'_>,
    c: &Candidate,
    out: &mut Outcome,
) -> Option<(Tree, HashMap<u64, bento_user::BlockData>)> {
    let overlay = states::layered(&chk.rec.start, c);
    let dev = Arc::new(CrashDevice::with_overlay(
        base.image.clone(),
        overlay.clone(),
    ));
    out.states += 1;
    let mut errs = Vec::new();
    let mut got = None;
    match LogFs::mount(dev.clone(), &run::mount_options()) {
        Err(e) => errs.push(format!("mount failed: {e:?}")),
        Ok(fs) => {
            match run::read_tree(&fs, &chk.rec.ids) {
                Err(e) => errs.push(format!("reading the recovered tree: {e}")),
                Ok(tree) => {
                    let h = history(chk.rec);
                    for &m in &c.moments {
                        let mut check = |h: &History<'_>, cut: Cut| {
                            out.moments += 1;
                            for e in h.check(cut, &tree) {
                                errs.push(format!("at {m:?} ({cut:?}): {e}"));
                            }
                        };
                        match (h.cut(m), chk.parent) {
                            (Some(cut), _) => check(&h, cut),
                            (None, Some((prec, pmoments))) => {
                                let ph = history(prec);
                                for &pm in pmoments {
                                    let cut = ph.cut(pm).unwrap_or(Cut {
                                        returned: 0,
                                        upper: 0,
                                    });
                                    check(&ph, cut);
                                }
                            }
                            (None, None) => check(
                                &h,
                                Cut {
                                    returned: 0,
                                    upper: 0,
                                },
                            ),
                        }
                    }
                    got = Some(tree);
                }
            }
            if let Err(e) = fs.destroy() {
                errs.push(format!("unmount failed: {e:?}"));
            }
        }
    }
    let report = fsck::check(&*dev, &fsck::CheckOptions::default());
    let findings: Vec<String> = report.errors().map(|f| f.to_string()).collect();
    if !findings.is_empty() || report.has_errors() {
        errs.push(format!("fsck after recovery and unmount: {findings:#?}"));
    }
    if errs.is_empty() {
        return got.map(|t| (t, overlay));
    }
    let mut msg = String::new();
    if let Some((prec, pm)) = chk.parent {
        msg.push_str(&format!(
            "first run:\n{}crashed at {pm:?}, recovered, then continued with:\n",
            ops_text(&prec.ops)
        ));
    }
    msg.push_str(&format!(
        "workload:\n{}crash state: {} (also at {:?})\nwrite log:\n{}",
        ops_text(&chk.rec.ops),
        c.how,
        c.moments,
        states::describe(&chk.rec.events)
    ));
    for e in &errs {
        msg.push_str(&format!("  VIOLATION {e}\n"));
    }
    if let Some(t) = &got {
        msg.push_str(&format!("recovered tree:\n{}", t.render()));
    }
    out.violations.push(msg);
    None
}

/// Record `ops` from `start` and check every crash state of the run; continue after some.
pub fn check_run(base: &Base, start: &Start<'_>, ops: &[Op], cfg: &Config, seed: u64) -> Outcome {
    let mut out = Outcome::default();
    let rec = match run::record(start, ops) {
        Ok(r) => r,
        Err(e) => {
            out.violations.push(format!(
                "workload:\n{}failed before any crash: {e}",
                ops_text(ops)
            ));
            return out;
        }
    };
    out.runs += 1;
    let limits = Limits { seed, ..cfg.limits };
    let cands = states::enumerate(&rec.events, &limits);
    let chk = Check {
        rec: &rec,
        parent: None,
    };
    let mut rng = workloads::Rng(seed ^ 0x5eed);
    for (i, c) in cands.iter().enumerate() {
        let Some((tree, overlay)) = check_state(base, &chk, c, &mut out) else {
            continue;
        };
        if cfg.continue_every == 0 || i % cfg.continue_every != (seed as usize) % cfg.continue_every
        {
            continue;
        }
        let mut more = workloads::random(&tree, cfg.continue_len, rng.next());
        // End with a short fsync chain: recovery follows it, and must stop where it ends.
        let mut after = tree.clone();
        for op in &more {
            after.apply(op, u64::MAX);
        }
        if let Some(f) = ["b", "a", "d/c", "n"]
            .into_iter()
            .find(|p| after.resolve(p).is_some_and(|id| after.file(id).is_some()))
        {
            more.push(Op::Append {
                path: f,
                len: 200,
                seed: rng.next() % 1000,
            });
            more.push(Op::Fsync(f));
        }
        let start2 = Start::recovered(base, &rec, tree, overlay);
        let rec2 = match run::record(&start2, &more) {
            Ok(r) => r,
            Err(e) => {
                out.violations.push(format!(
                    "workload:\n{}crash state {}; after recovery, continuing with\n{}failed: {e}",
                    ops_text(&rec.ops),
                    c.how,
                    ops_text(&more)
                ));
                continue;
            }
        };
        out.runs += 1;
        let chk2 = Check {
            rec: &rec2,
            parent: Some((&rec, &c.moments)),
        };
        let limits2 = Limits {
            seed: rng.next(),
            ..cfg.limits
        };
        for c2 in states::enumerate(&rec2.events, &limits2) {
            // Nothing of the continuation survived: the state just checked, again.
            if !c2.overlay.is_empty() {
                check_state(base, &chk2, &c2, &mut out);
            }
        }
    }
    out
}

/// An explicit crash point in a run's log, for regression tests.
#[derive(Clone, Copy, Debug)]
pub enum Crash {
    /// After the last request completed, every write on disk.
    AfterAll,
    /// With every request but the last one on disk (it was never issued).
    BeforeLast,
    /// During the last request: every block of it on disk except its first.
    LastTornHead,
}

impl Crash {
    fn resolve(self, events: &[bento_user::IoEvent]) -> (Moment, Vec<(usize, u64)>) {
        let n = events.len();
        match self {
            Crash::AfterAll => (
                Moment {
                    issued: n,
                    inflight: false,
                },
                Vec::new(),
            ),
            Crash::BeforeLast => (
                Moment {
                    issued: n.saturating_sub(1),
                    inflight: false,
                },
                Vec::new(),
            ),
            Crash::LastTornHead => {
                let head = match events.last() {
                    Some(bento_user::IoEvent::Write { block, .. }) => *block,
                    _ => u64::MAX,
                };
                (
                    Moment {
                        issued: n,
                        inflight: true,
                    },
                    vec![(n - 1, head)],
                )
            }
        }
    }
}

fn explicit_candidate(rec: &Recorded, crash: Crash) -> Candidate {
    let (m, lost) = crash.resolve(&rec.events);
    Candidate {
        overlay: states::explicit(&HashMap::new(), &rec.events, m.issued, &lost),
        moments: vec![m],
        how: format!("{crash:?}: {m:?}, lost {lost:?}"),
    }
}

/// Check one explicit crash state of `ops` run from the base volume. For regression tests.
pub fn check_one(base: &Base, ops: &[Op], crash: Crash) -> Outcome {
    check_two(base, ops, crash, None)
}

/// Like `check_one`; then, if `then` is given, mount the crash state (recovery), run its
/// operations, and check its crash state too.
pub fn check_two(base: &Base, ops: &[Op], crash: Crash, then: Option<(&[Op], Crash)>) -> Outcome {
    let mut out = Outcome::default();
    let rec = match run::record(&Start::fresh(base), ops) {
        Ok(r) => r,
        Err(e) => {
            out.violations.push(format!("failed before the crash: {e}"));
            return out;
        }
    };
    let c = explicit_candidate(&rec, crash);
    let chk = Check {
        rec: &rec,
        parent: None,
    };
    let Some((tree, overlay)) = check_state(base, &chk, &c, &mut out) else {
        return out;
    };
    let Some((more, crash2)) = then else {
        return out;
    };
    let start2 = Start::recovered(base, &rec, tree, overlay);
    let rec2 = match run::record(&start2, more) {
        Ok(r) => r,
        Err(e) => {
            out.violations
                .push(format!("continuing after recovery failed: {e}"));
            return out;
        }
    };
    let c2 = explicit_candidate(&rec2, crash2);
    let chk2 = Check {
        rec: &rec2,
        parent: Some((&rec, &c.moments)),
    };
    check_state(base, &chk2, &c2, &mut out);
    out
}
