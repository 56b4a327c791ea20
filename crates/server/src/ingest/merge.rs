//! [`merge`]: a tick's deltas merged per (breaker, instance), in (breaker, instance) order.

use std::collections::HashMap;

use switchyard_core::{BreakerKey, Delta, InstanceId};

/// Merges deltas of the same (breaker, instance), summing counts and latency sketches, in
/// (breaker, instance) order.
///
/// A tick holds one delta per breaker per reporting instance (20 000 at 1 000 instances × 20
/// breakers) but only a few distinct breakers and instances. Sorting the deltas by their key
/// and instance strings compared strings some 300 000 times a tick, about a sixth of the
/// leader's instructions per report. Instead each distinct key and instance is ranked once by
/// its string, and the deltas are put in order by those ranks with two counting-sort passes:
/// the same order as the string sort, ties in arrival order, in time linear in the deltas.
/// Deltas arrive one report at a time, so consecutive deltas mostly share their instance,
/// and its rank is looked up once per run.
pub fn merge(deltas: Vec<Delta>) -> Vec<Delta> {
    if deltas.len() < 2 {
        return deltas;
    }
    let (ranks, order) = rank_order(&deltas);
    let mut slots: Vec<Option<Delta>> = deltas.into_iter().map(Some).collect();
    let mut out: Vec<Delta> = Vec::with_capacity(slots.len());
    let mut last_rank = None;
    for at in order {
        let Some(d) = slots[at].take() else { continue };
        match out.last_mut() {
            Some(last) if last_rank == Some(ranks[at]) => {
                last.calls = last.calls.saturating_add(d.calls);
                last.failures = last.failures.saturating_add(d.failures);
                last.slow = last.slow.saturating_add(d.slow);
                last.rejected = last.rejected.saturating_add(d.rejected);
                last.first_attempts = last.first_attempts.saturating_add(d.first_attempts);
                last.retries = last.retries.saturating_add(d.retries);
                last.latency.merge(&d.latency);
            }
            _ => out.push(d),
        }
        last_rank = Some(ranks[at]);
    }
    out
}

/// Each delta's `(key rank, instance rank)`, and the deltas' positions in the order of a sort
/// by (key, instance) strings, ties in arrival order.
fn rank_order(deltas: &[Delta]) -> (Vec<(u32, u32)>, Vec<usize>) {
    // Dense ids in order of first appearance, then each id's rank among the distinct strings.
    // A report's deltas share its instance, and SDKs list their breakers in the same order
    // report after report: the instance of the previous delta, and the key at the same
    // position of the previous report, are tried before a hash lookup.
    let mut key_ids: HashMap<&str, u32> = HashMap::new();
    // Compared as ids, not strings: deltas that share an id's allocation (a report's deltas
    // share its instance, and keys come from the reader's cache) are equal without a `memcmp`.
    let mut key_of: Vec<&BreakerKey> = Vec::new();
    let mut instance_ids: HashMap<&str, u32> = HashMap::new();
    let mut ids: Vec<(u32, u32)> = Vec::with_capacity(deltas.len());
    let mut previous_instance: Option<(&InstanceId, u32)> = None;
    let mut previous_run: Vec<u32> = Vec::new();
    let mut run: Vec<u32> = Vec::new();
    for d in deltas {
        let instance = match previous_instance {
            Some((previous, id)) if *previous == d.instance => id,
            _ => {
                let next = instance_ids.len() as u32;
                let id = *instance_ids.entry(d.instance.as_str()).or_insert(next);
                previous_instance = Some((&d.instance, id));
                std::mem::swap(&mut previous_run, &mut run);
                run.clear();
                id
            }
        };
        let key = match previous_run.get(run.len()) {
            Some(&id) if *key_of[id as usize] == d.key => id,
            _ => *key_ids.entry(d.key.as_str()).or_insert_with(|| {
                key_of.push(&d.key);
                key_of.len() as u32 - 1
            }),
        };
        run.push(key);
        ids.push((key, instance));
    }
    let (keys, instances) = (key_ids.len(), instance_ids.len());
    let key_rank = ranks(key_ids);
    let instance_rank = ranks(instance_ids);
    let ranks: Vec<(u32, u32)> = ids
        .into_iter()
        .map(|(k, i)| (key_rank[k as usize], instance_rank[i as usize]))
        .collect();
    // Least significant first: by instance, then (stably) by key.
    let arrival: Vec<usize> = (0..deltas.len()).collect();
    let by_instance = counting_sort(&arrival, instances, |at| ranks[at].1);
    let order = counting_sort(&by_instance, keys, |at| ranks[at].0);
    (ranks, order)
}

/// `positions` stably ordered by `rank`, which is below `buckets`.
fn counting_sort(positions: &[usize], buckets: usize, rank: impl Fn(usize) -> u32) -> Vec<usize> {
    let mut next = vec![0usize; buckets + 1];
    for &at in positions {
        next[rank(at) as usize + 1] += 1;
    }
    for b in 1..=buckets {
        next[b] += next[b - 1];
    }
    let mut out = vec![0; positions.len()];
    for &at in positions {
        let slot = &mut next[rank(at) as usize];
        out[*slot] = at;
        *slot += 1;
    }
    out
}

/// For dense ids `0..n` of distinct strings, each id's rank in string order.
fn ranks(ids: HashMap<&str, u32>) -> Vec<u32> {
    let mut by_name: Vec<(&str, u32)> = ids.into_iter().collect();
    by_name.sort_unstable();
    let mut rank = vec![0; by_name.len()];
    for (r, (_, id)) in by_name.into_iter().enumerate() {
        rank[id as usize] = r as u32;
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::tests::delta;

    /// The merge before ranking: a sort by (key, instance) strings.
    fn merge_by_string_sort(mut deltas: Vec<Delta>) -> Vec<Delta> {
        deltas.sort_by(|a, b| (&a.key, &a.instance).cmp(&(&b.key, &b.instance)));
        let mut out: Vec<Delta> = Vec::new();
        for d in deltas {
            match out.last_mut() {
                Some(last) if last.key == d.key && last.instance == d.instance => {
                    last.calls += d.calls;
                    last.failures += d.failures;
                    last.first_attempts += d.first_attempts;
                    last.retries += d.retries;
                    last.latency.merge(&d.latency);
                }
                _ => out.push(d),
            }
        }
        out
    }

    #[test]
    fn a_fleet_listing_its_breakers_in_one_order_merges_as_a_string_sort_does() {
        // Every instance lists the same breakers in the same order (the key guessed from the
        // previous report is right), except one that lists them reversed and one that skips.
        let mut deltas = Vec::new();
        for i in 0..30 {
            let mut keys: Vec<u32> = (0..8).collect();
            if i == 7 {
                keys.reverse();
            }
            if i == 11 {
                keys.retain(|k| k % 3 != 0);
            }
            for k in keys {
                deltas.push(delta(&format!("s/b{k}"), &format!("pod-{}", i % 20), 2, 1));
            }
        }
        let merged = merge(deltas.clone());
        let expected = merge_by_string_sort(deltas);
        let view = |d: &Delta| (d.key.to_string(), d.instance.to_string(), d.calls);
        assert_eq!(
            merged.iter().map(view).collect::<Vec<_>>(),
            expected.iter().map(view).collect::<Vec<_>>()
        );
    }

    #[test]
    fn merging_by_rank_gives_what_a_string_sort_gives() {
        // Instances and keys whose arrival order, first-seen order and string order all
        // differ ("app-10" sorts before "app-2"), reports repeated and interleaved.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut deltas = Vec::new();
        for _ in 0..600 {
            let instance = format!("app-{}", next(40));
            for _ in 0..next(6) + 1 {
                let key = format!("svc{}/dep-{}", next(3), next(12));
                deltas.push(delta(&key, &instance, next(9) + 1, next(3)));
            }
        }
        let merged = merge(deltas.clone());
        let expected = merge_by_string_sort(deltas);
        assert!(merged.len() < 600 * 3, "duplicates were merged");
        assert_eq!(merged.len(), expected.len());
        for (got, want) in merged.iter().zip(&expected) {
            assert_eq!(
                (
                    got.key.as_str(),
                    got.instance.as_str(),
                    got.calls,
                    got.failures,
                    got.latency.count()
                ),
                (
                    want.key.as_str(),
                    want.instance.as_str(),
                    want.calls,
                    want.failures,
                    want.latency.count()
                )
            );
        }
    }
}
