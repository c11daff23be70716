//! Crash consistency: systematic crash states of recorded workloads, checked against a model.
//!
//! Each workload runs on a recording device over a small base volume (the smallest mkfs
//! allows, as a sparse image; contents in `crash/workloads.rs`). From the log of write requests
//! (with their preflush / FUA flags) and flushes, `crash/states.rs` builds crash states: every
//! prefix of the log, and for each crash moment the writes since the last barrier dropped,
//! one at a time, in random subsets and as prefixes of random orders (a volatile cache may
//! lose or reorder them). Each distinct state is mounted (recovery runs), its tree is compared
//! with the model history by the oracle in `crash/oracle.rs` (which fsync / fdatasync /
//! sync_fs calls had returned decides what must be there), then it is unmounted and fsck must
//! find nothing wrong. Some crash states are continued: more operations after recovery, and
//! crash states of that run, including crashes during recovery itself.
//!
//! The oracle, in short (details in `crash/oracle.rs`): the model keeps the tree after every
//! operation, and every operation's start and end in the write log. A crash state cut at a
//! moment of the log knows which operations had returned; their fsync / fdatasync / directory
//! fsync / sync_fs calls are the durable points. After recovery, every name must map to what it
//! mapped to in some state since its last durable point; every file that existed throughout
//! since its last durable point must be there, with contents, size, mode and xattrs it had in
//! one of those states; and each name and the contents of its file must have been seen together
//! in one state (so renames over files are atomic and nothing stale or made up appears).
//! Distinct states are counted by their surviving blocks.
//!
//! Workloads: every single core operation with every persistence choice after it (ACE
//! "seq-1"), random samples of 2 and 3 operations, hand-picked cases, longer random sequences.
//!
//! Environment: `LOGFS_CRASH_SCALE` (default 1) multiplies the sampled workloads and random
//! seeds; `LOGFS_CRASH_THREADS` (default: up to 2); `LOGFS_CRASH_MAX_STATES` caps the states
//! of one run (default 120); `LOGFS_CRASH_OPTIONS` passes logfs mount options (for instance
//! `fsync=checkpoint`).

#[path = "crash/mod.rs"]
mod harness;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use harness::model::{FALLOC_ALLOCATE, FALLOC_COLLAPSE, FALLOC_INSERT, FALLOC_PUNCH, Op};
use harness::run::{POPULATE, Start, make_base};
use harness::states::Limits;
use harness::{Config, Outcome, check_run, workloads};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Cases aimed at particular mechanisms: segment cleaning, files large enough for direct nodes,
/// holes punched and preallocated again, names reused across kinds, renames around fsync'd new
/// files, a node segment filled by fsyncs. With how often to continue after a crash state.
fn hand_picked() -> Vec<(Vec<Op>, usize)> {
    let big = 2100 * 4096;
    // Two files interleaved in the same segments, then one overwritten: the volume fills with
    // half-live segments, so checkpoints and segment cleaning happen between the fsyncs.
    let mut churn = vec![Op::Create("n")];
    for k in 0..10u64 {
        for (path, seed) in [("a", 30), ("n", 31)] {
            churn.push(Op::Write {
                path,
                off: k << 20,
                len: 1 << 20,
                seed: seed + k,
            });
        }
    }
    churn.push(Op::Fsync("a"));
    for i in 0..4u64 {
        churn.push(Op::Write {
            path: "n",
            off: 0,
            len: 10 << 20,
            seed: 40 + i,
        });
        churn.push(Op::Fsync("n"));
    }
    // Enough fsyncs between checkpoints for the fsync chain to leave its node segment.
    let fsyncs: Vec<Op> = (0..600u64)
        .flat_map(|i| {
            [
                Op::Write {
                    path: "a",
                    off: (i % 3) * 10,
                    len: 10,
                    seed: i,
                },
                Op::Fsync("a"),
            ]
        })
        .collect();
    // A directory whose first level is exactly full (426 one-slot names): recovery must add a
    // level to give the fsync'd new file its name.
    let mut full_dir = vec![Op::Mkdir("x")];
    for i in 0..426 {
        let name: &'static str = Box::leak(format!("x/f{i}").into_boxed_str());
        full_dir.push(Op::Create(name));
    }
    full_dir.extend([Op::SyncFs, Op::Create("x/new"), Op::Fsync("x/new")]);
    let continued_often = [
        vec![
            Op::Create("n"),
            Op::Write {
                path: "n",
                off: 0,
                len: big,
                seed: 7,
            },
            Op::SyncFs,
            Op::Fallocate {
                path: "n",
                off: 913 * 4096,
                len: 1014 * 4096,
                mode: FALLOC_PUNCH,
            },
            Op::Fsync("n"),
        ],
        vec![
            Op::Create("n"),
            Op::Write {
                path: "n",
                off: 0,
                len: big,
                seed: 8,
            },
            Op::Fsync("n"),
            Op::Truncate {
                path: "n",
                size: 5000,
            },
            Op::Fsync("n"),
            Op::Append {
                path: "n",
                len: 9000,
                seed: 9,
            },
            Op::Fdatasync("n"),
        ],
        vec![
            Op::Fallocate {
                path: "a",
                off: 4096,
                len: 4096,
                mode: FALLOC_PUNCH,
            },
            Op::Fallocate {
                path: "a",
                off: 4096,
                len: 4096,
                mode: FALLOC_ALLOCATE,
            },
            Op::Fsync("a"),
        ],
        // Collapse and insert in a file with direct nodes: blocks the
        // checkpoint knows (copied) and blocks written after it (their addresses moved), then
        // fsync; a crash must show the file before or after each, never a mix.
        vec![
            Op::Create("n"),
            Op::Write {
                path: "n",
                off: 0,
                len: big,
                seed: 10,
            },
            Op::SyncFs,
            Op::Write {
                path: "n",
                off: 1000 * 4096,
                len: 300 * 4096,
                seed: 11,
            },
            Op::Fallocate {
                path: "n",
                off: 900 * 4096,
                len: 20 * 4096,
                mode: FALLOC_COLLAPSE,
            },
            Op::Fsync("n"),
            Op::Fallocate {
                path: "n",
                off: 4096,
                len: 1014 * 4096,
                mode: FALLOC_INSERT,
            },
            Op::Fsync("n"),
        ],
        vec![Op::Rmdir("e"), Op::Create("e"), Op::Fsync("e")],
        vec![
            Op::Create("n"),
            Op::Fsync("n"),
            Op::Rename {
                from: "n",
                to: "d/m",
            },
            Op::Create("n"),
            Op::Fsync("n"),
        ],
        vec![
            Op::Rename { from: "d", to: "x" },
            Op::Create("x/m"),
            Op::Fsync("x/m"),
        ],
        vec![
            Op::Create("n"),
            Op::Write {
                path: "n",
                off: 0,
                len: 5000,
                seed: 10,
            },
            Op::Rename { from: "n", to: "a" },
            Op::Fsync("b"),
        ],
        vec![
            Op::Unlink("b"),
            Op::Create("b"),
            Op::Write {
                path: "b",
                off: 0,
                len: 300,
                seed: 11,
            },
            Op::Fsync("b"),
        ],
    ];
    let mut v = vec![(churn, 8), (fsyncs, 4), (full_dir, 2)];
    v.extend(continued_often.into_iter().map(|w| (w, 1)));
    v
}

#[test]
fn crash_states_recover_to_a_durable_state() {
    let t0 = Instant::now();
    let scale = env("LOGFS_CRASH_SCALE", 1);
    let threads = env("LOGFS_CRASH_THREADS", 0);
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
    } else {
        threads
    };
    let cfg = Config {
        limits: Limits {
            max_states: env("LOGFS_CRASH_MAX_STATES", 120),
            random_subsets: 3,
            single_drop_blocks: 12,
            seed: 0,
        },
        continue_every: 8,
        continue_len: 4,
    };
    let base = make_base(POPULATE);
    let mut workloads: Vec<(String, Vec<Op>)> = Vec::new();
    let mut continue_every = Vec::new();
    for (i, (w, every)) in hand_picked().into_iter().enumerate() {
        workloads.push((format!("hand-picked {i}"), w));
        continue_every.push(every);
    }
    for (i, w) in workloads::ace_1(&base.tree).into_iter().enumerate() {
        workloads.push((format!("ace-1 #{i}"), w));
    }
    for (i, w) in workloads::ace_n(&base.tree, 2, 150 * scale, 2)
        .into_iter()
        .enumerate()
    {
        workloads.push((format!("ace-2 #{i}"), w));
    }
    for (i, w) in workloads::ace_n(&base.tree, 3, 100 * scale, 3)
        .into_iter()
        .enumerate()
    {
        workloads.push((format!("ace-3 #{i}"), w));
    }
    for s in 0..(6 * scale) as u64 {
        workloads.push((
            format!("random seed {s}"),
            workloads::random(&base.tree, 24, 1000 + s),
        ));
    }
    let next = AtomicUsize::new(0);
    let total = Mutex::new(Outcome::default());
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, ops)) = workloads.get(i) else {
                        break;
                    };
                    let cfg = Config {
                        continue_every: continue_every
                            .get(i)
                            .copied()
                            .unwrap_or(cfg.continue_every),
                        ..cfg
                    };
                    let o = check_run(&base, &Start::fresh(&base), ops, &cfg, i as u64 + 1);
                    if !o.violations.is_empty() {
                        failed.lock().unwrap().push(name.clone());
                    }
                    total.lock().unwrap().add(o);
                }
            });
        }
    });
    let total = total.into_inner().unwrap();
    let failed = failed.into_inner().unwrap();
    for v in total.violations.iter().take(5) {
        eprintln!("{v}");
    }
    eprintln!(
        "crash test: {} workloads ({} runs with continuations), {} distinct crash states, {} \
         state/moment checks, {} violations in {} workloads {:?}, {:.1?} on {threads} threads",
        workloads.len(),
        total.runs,
        total.states,
        total.moments,
        total.violations.len(),
        failed.len(),
        failed.iter().take(20).collect::<Vec<_>>(),
        t0.elapsed()
    );
    assert!(total.violations.is_empty(), "crash consistency violated");
    assert!(
        total.states >= 10_000 * scale.min(1),
        "only {} crash states checked",
        total.states
    );
}
