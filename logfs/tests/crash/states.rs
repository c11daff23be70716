//! Crash states: which of the recorded writes a crash leaves on stable storage.
//!
//! The device has a volatile write cache. At a crash *moment* (after `issued` requests, the last
//! one possibly still in flight) a write is durable when a flush completed after it, when a
//! later write carried a preflush, or when it was itself a FUA write that completed. The other
//! writes since the last barrier may each have reached the medium or not, in any order: a crash
//! state is the durable writes plus any subset of those volatile ones, applied in issue order
//! (so of two writes to one block, the later surviving one wins). Each block of a multi-block
//! request is a unit of its own: a request may be torn.
//!
//! For every moment this module proposes: the state where every issued write survived (a
//! prefix of the log), the one where no volatile write did, each volatile write dropped alone
//! (each request dropped alone when there are many blocks), seeded random subsets and prefixes
//! of a seeded random permutation. States with the same surviving blocks are merged; each keeps
//! the list of moments it can arise at, since which operations had returned depends on the
//! moment.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bento_user::{BlockData, IoEvent};

/// When the crash hit: after `issued` requests of the log were issued, all completed except,
/// with `inflight`, the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Moment {
    pub issued: usize,
    pub inflight: bool,
}

/// One crash state to check.
pub struct Candidate {
    /// Blocks to lay over the run's starting image.
    pub overlay: HashMap<u64, BlockData>,
    pub moments: Vec<Moment>,
    /// How it was made, for reports.
    pub how: String,
}

/// One block written by one request.
struct Unit {
    req: usize,
    block: u64,
    data: BlockData,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most distinct states per run.
    pub max_states: usize,
    /// Random subsets per moment.
    pub random_subsets: usize,
    /// Up to this many volatile blocks, each is dropped alone; above it, each request.
    pub single_drop_blocks: usize,
    pub seed: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct Log {
    units: Vec<Unit>,
    /// Units of request `r`: `first[r]..first[r + 1]`.
    first: Vec<usize>,
    events: Vec<IoEvent>,
}

impl Log {
    fn new(events: &[IoEvent]) -> Log {
        let mut units = Vec::new();
        let mut first = Vec::new();
        for (r, e) in events.iter().enumerate() {
            first.push(units.len());
            if let IoEvent::Write { block, data, .. } = e {
                for (i, d) in data.iter().enumerate() {
                    units.push(Unit {
                        req: r,
                        block: block + i as u64,
                        data: d.clone(),
                    });
                }
            }
        }
        first.push(units.len());
        Log {
            units,
            first,
            events: events.to_vec(),
        }
    }

    /// (units certainly durable, volatile units) at a moment; both in issue order.
    fn split(&self, m: Moment) -> (Vec<usize>, Vec<usize>) {
        let mut barrier = 0; // requests before this are durable
        for (q, e) in self.events[..m.issued].iter().enumerate() {
            match e {
                IoEvent::Flush if !(m.inflight && q + 1 == m.issued) => barrier = q + 1,
                IoEvent::Write { flags, .. } if flags.preflush => barrier = q,
                _ => {}
            }
        }
        let mut durable: Vec<usize> = (0..self.first[barrier]).collect();
        let mut volatile = Vec::new();
        for q in barrier..m.issued {
            let completed = !(m.inflight && q + 1 == m.issued);
            let fua = matches!(&self.events[q], IoEvent::Write { flags, .. } if flags.fua);
            let units = self.first[q]..self.first[q + 1];
            if fua && completed {
                durable.extend(units);
            } else {
                volatile.extend(units);
            }
        }
        durable.sort_unstable();
        (durable, volatile)
    }
}

/// All crash states to check for a run's log, within `limits`. Proposals come in tiers (see
/// the module doc); within a tier they are taken round-robin over the moments, so the limit
/// cuts evenly rather than starving some moments.
pub fn enumerate(events: &[IoEvent], limits: &Limits) -> Vec<Candidate> {
    let log = Log::new(events);
    let mut moments: Vec<Moment> = (0..=events.len())
        .map(|issued| Moment {
            issued,
            inflight: false,
        })
        .collect();
    for (q, e) in events.iter().enumerate() {
        if matches!(e, IoEvent::Write { flags, .. } if flags.fua) {
            moments.push(Moment {
                issued: q + 1,
                inflight: true,
            });
        }
    }
    moments.sort_by_key(|m| (m.issued, m.inflight));
    let splits: Vec<(Vec<usize>, Vec<usize>)> = moments.iter().map(|&m| log.split(m)).collect();
    let mut rng = Rng(limits.seed);
    // tiers[t][i]: proposals (surviving volatile units, description) for moment i.
    type Proposal = (Vec<usize>, String);
    let mut tiers: Vec<Vec<Vec<Proposal>>> = vec![vec![Vec::new(); moments.len()]; 3];
    for (i, (&m, (_, volatile))) in moments.iter().zip(&splits).enumerate() {
        tiers[0][i].push((volatile.clone(), format!("{m:?}: every write survived")));
        if volatile.is_empty() {
            continue;
        }
        tiers[0][i].push((Vec::new(), format!("{m:?}: no volatile write survived")));
        if volatile.len() <= 1 {
            continue;
        }
        // Tier 1: each volatile write (or request) lost alone.
        let groups: Vec<Vec<usize>> = if volatile.len() <= limits.single_drop_blocks {
            volatile.iter().map(|&u| vec![u]).collect()
        } else {
            let mut g: Vec<Vec<usize>> = Vec::new();
            for &u in volatile {
                match g.last_mut() {
                    Some(last) if log.units[last[0]].req == log.units[u].req => last.push(u),
                    _ => g.push(vec![u]),
                }
            }
            g
        };
        for lost in groups {
            let keep = volatile
                .iter()
                .copied()
                .filter(|u| !lost.contains(u))
                .collect();
            let what: Vec<String> = lost
                .iter()
                .map(|&u| format!("req {} block {}", log.units[u].req, log.units[u].block))
                .collect();
            tiers[1][i].push((keep, format!("{m:?}: lost only {what:?}")));
        }
        // Tier 2: random subsets and prefixes of a random permutation.
        for _ in 0..limits.random_subsets {
            let keep: Vec<usize> = volatile
                .iter()
                .copied()
                .filter(|_| rng.next() & 1 == 1)
                .collect();
            let how = format!("{m:?}: random subset, kept units {keep:?}");
            tiers[2][i].push((keep, how));
        }
        let mut perm = volatile.clone();
        for j in (1..perm.len()).rev() {
            perm.swap(j, (rng.next() % (j as u64 + 1)) as usize);
        }
        let n = perm.len();
        let mut cuts: Vec<usize> = vec![1, n / 4, n / 2, 3 * n / 4, n - 1];
        cuts.dedup();
        for c in cuts.into_iter().filter(|&c| c > 0 && c < n) {
            let mut keep = perm[..c].to_vec();
            keep.sort_unstable();
            let how = format!("{m:?}: permutation prefix, kept units {keep:?}");
            tiers[2][i].push((keep, how));
        }
    }

    // Visit the last moments (the end of the workload) first, then the others in a random
    // order: when the limit bites on a long log, what is left out is spread over it.
    let mut order: Vec<usize> = (0..moments.len()).collect();
    let tail = order.len().min(3);
    order.rotate_right(tail);
    order[..tail].reverse();
    for j in (tail + 1..order.len()).rev() {
        let k = tail + (rng.next() % (j - tail + 1) as u64) as usize;
        order.swap(j, k);
    }
    let mut out: Vec<Candidate> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    for tier in tiers {
        let rounds = tier.iter().map(Vec::len).max().unwrap_or(0);
        for r in 0..rounds {
            for &i in &order {
                let Some((keep, how)) = tier[i].get(r) else {
                    continue;
                };
                let m = moments[i];
                // Apply in issue order; the last surviving write of a block wins.
                let mut chosen: Vec<usize> = splits[i].0.iter().chain(keep).copied().collect();
                chosen.sort_unstable();
                let mut last: HashMap<u64, usize> = HashMap::new();
                for &u in &chosen {
                    last.insert(log.units[u].block, u);
                }
                let mut key: Vec<(u64, usize)> = last.iter().map(|(&b, &u)| (b, u)).collect();
                key.sort_unstable();
                let mut h = DefaultHasher::new();
                key.hash(&mut h);
                let k = h.finish();
                if let Some(&j) = index.get(&k) {
                    if !out[j].moments.contains(&m) {
                        out[j].moments.push(m);
                    }
                    continue;
                }
                if out.len() >= limits.max_states {
                    continue;
                }
                index.insert(k, out.len());
                out.push(Candidate {
                    overlay: last
                        .into_iter()
                        .map(|(b, u)| (b, log.units[u].data.clone()))
                        .collect(),
                    moments: vec![m],
                    how: how.clone(),
                });
            }
        }
    }
    out
}

/// The units of a log, described (for reports of a minimized case).
pub fn describe(events: &[IoEvent]) -> String {
    let mut s = String::new();
    for (r, e) in events.iter().enumerate() {
        match e {
            IoEvent::Write { block, data, flags } => s.push_str(&format!(
                "  req {r}: write {} block(s) at {block}{}{}\n",
                data.len(),
                if flags.preflush { " preflush" } else { "" },
                if flags.fua { " fua" } else { "" },
            )),
            IoEvent::Flush => s.push_str(&format!("  req {r}: flush\n")),
        }
    }
    s
}

/// Build the overlay for an explicit crash state: `start`, then every write of requests before
/// `issued` except the listed (request, block) pairs, applied in order.
pub fn explicit(
    start: &HashMap<u64, BlockData>,
    events: &[IoEvent],
    issued: usize,
    lost: &[(usize, u64)],
) -> HashMap<u64, BlockData> {
    let mut overlay = start.clone();
    for (r, e) in events[..issued].iter().enumerate() {
        if let IoEvent::Write { block, data, .. } = e {
            for (i, d) in data.iter().enumerate() {
                let b = block + i as u64;
                if !lost.contains(&(r, b)) {
                    overlay.insert(b, d.clone());
                }
            }
        }
    }
    overlay
}

/// The starting overlay with a candidate's blocks on top.
pub fn layered(start: &Arc<HashMap<u64, BlockData>>, c: &Candidate) -> HashMap<u64, BlockData> {
    let mut o = (**start).clone();
    o.extend(c.overlay.iter().map(|(&b, d)| (b, d.clone())));
    o
}
