//! Least-recently-used eviction for the bounded caches (nodes, directory blocks, NAT blocks):
//! each entry carries its cache's clock at its last use, and only clean entries may go.

use core::hash::BuildHasher;

use hashbrown::HashMap;

use crate::mem;

/// An entry of a cache that [`shrink`] may drop.
pub(crate) trait Aged {
    /// The cache's clock at the last use: the smallest is the least recently used.
    fn used(&self) -> u64;
    /// Not yet written: never dropped.
    fn dirty(&self) -> bool;
}

/// Drop up to `n` clean entries of `map`, the least recently used first; returns how many went.
/// `exact` sorts their ages (an allocation); memory reclaim passes false and gets an estimate
/// from the ages' range instead, since it must not allocate.
pub(crate) fn shrink<K, V: Aged, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    n: usize,
    exact: bool,
) -> usize {
    let before = map.len();
    let ages = map.values().filter(|e| !e.dirty()).map(Aged::used);
    let cutoff = cutoff(ages, n, exact);
    let mut excess = n;
    // Those at or below the cutoff first, then any others until `n` went.
    for cutoff in [cutoff, u64::MAX] {
        map.retain(|_, e| {
            if excess > 0 && !e.dirty() && e.used() <= cutoff {
                excess = excess.saturating_sub(1);
                false
            } else {
                true
            }
        });
    }
    before.saturating_sub(map.len())
}

/// The age at or below which the `n` least recently used of `ages` lie: exactly (sorting a
/// copy) when `exact` and there is memory for it, else estimated from their range as if the
/// ages were spread evenly.
fn cutoff(ages: impl Iterator<Item = u64> + Clone, n: usize, exact: bool) -> u64 {
    if exact
        && let Ok(mut v) = mem::collect(ages.clone())
        && let Some(k) = n.min(v.len()).checked_sub(1)
    {
        let (_, nth, _) = v.select_nth_unstable(k);
        return *nth;
    }
    let (mut lo, mut hi, mut count) = (u64::MAX, 0u64, 0u64);
    for a in ages {
        lo = lo.min(a);
        hi = hi.max(a);
        count = count.saturating_add(1);
    }
    if count == 0 {
        return 0;
    }
    // lo + (hi - lo) * n / count, in 128 bits: no overflow.
    let span = u128::from(hi.saturating_sub(lo));
    let step = span
        .saturating_mul(n as u128)
        .checked_div(u128::from(count))
        .unwrap_or(span);
    lo.saturating_add(u64::try_from(step).unwrap_or(u64::MAX))
}
