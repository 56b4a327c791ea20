//! The leader's report buffer: fleet deltas wait here until the next tick merges them into one
//! `Tick` log entry.
//!
//! Why ticks instead of one log entry per report: a fleet of thousands of instances reporting
//! every 100 ms would otherwise turn every report into an fsync on a quorum. Merging per
//! (breaker, instance) once per tick makes the log's write rate independent of fleet size, and
//! the tick's timestamp gives every delta in it the same deterministic time on every node.
//!
//! The buffer is bounded (`pending_deltas_max`): when the leader cannot commit fast enough the
//! next reports are refused with `ResourceExhausted`, and the SDKs count them as dropped.
//! Reports are telemetry: acknowledged on acceptance here, not on commit.
//!
//! An acknowledged delta is kept until a leader's tick takes it: a follower's forward buffer
//! (the same type) keeps a batch the leader did not take and offers it again
//! ([`Ingest::take_batch`] then [`Ingest::restore`] or [`Ingest::settle`]), and a leader that
//! steps down hands what it holds to its forward buffer instead of dropping it. The batch out
//! for forwarding counts against the limit, so the buffer never holds more than
//! `pending_deltas_max` deltas plus what a deposed leader handed over.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use switchyard_core::Delta;

use crate::error::{LimitName, NodeError};

#[derive(Debug, Default)]
struct Pending {
    deltas: Vec<Delta>,
    /// Report calls per instance in the current one-second window.
    rate: BTreeMap<String, u32>,
    rate_window_s: u64,
    /// Report calls per instance since the last [`Ingest::take_batch`] (a follower forwards
    /// them with the deltas, so the leader can count each instance across the cluster).
    calls: BTreeMap<String, u32>,
    /// Deltas taken by [`Ingest::take_batch`] and not yet settled or restored.
    in_flight: usize,
}

impl Pending {
    fn roll_window(&mut self, now_ms: u64) {
        let window_s = now_ms / 1000;
        if self.rate_window_s != window_s {
            self.rate_window_s = window_s;
            self.rate.clear();
        }
    }
}

/// Deltas taken from a buffer with the report calls that brought them, per instance.
#[derive(Debug, Default)]
pub struct Batch {
    /// Report calls per instance.
    pub calls: Vec<(String, u32)>,
    /// The deltas, merged per (breaker, instance).
    pub deltas: Vec<Delta>,
}

/// What the leader did with a forwarded [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Deltas accepted into the next tick.
    pub accepted: u32,
    /// Deltas refused because their instance went over `report_rate_per_instance_max`,
    /// counted over every node's calls.
    pub refused_by_rate: u64,
}

/// A forwarded batch refused as a whole, handed back unchanged with the reason.
#[derive(Debug)]
pub struct BatchRefused {
    /// Why.
    pub error: NodeError,
    /// The batch, as offered.
    pub batch: Batch,
}

/// Deltas waiting for the next tick.
#[derive(Debug)]
pub struct Ingest {
    pending: Mutex<Pending>,
    pending_deltas_max: usize,
    report_rate_per_instance_max: u32,
}

impl Ingest {
    /// A buffer holding at most `pending_deltas_max` deltas and accepting at most
    /// `report_rate_per_instance_max` report calls per second from one instance.
    pub fn new(pending_deltas_max: u32, report_rate_per_instance_max: u32) -> Self {
        Self {
            pending: Mutex::default(),
            pending_deltas_max: pending_deltas_max as usize,
            report_rate_per_instance_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts one report's deltas, or refuses all of them at a limit.
    pub fn offer(&self, instance: &str, deltas: Vec<Delta>, now_ms: u64) -> Result<u32, NodeError> {
        let mut pending = self.lock();
        pending.roll_window(now_ms);
        let calls = pending.rate.get(instance).copied().unwrap_or(0);
        if calls >= self.report_rate_per_instance_max {
            return Err(NodeError::Limit {
                limit: LimitName::ReportRatePerInstanceMax,
                what: format!("report calls per second from instance {instance:?}"),
                max: u64::from(self.report_rate_per_instance_max),
            });
        }
        if pending.deltas.len() + pending.in_flight + deltas.len() > self.pending_deltas_max {
            return Err(NodeError::Limit {
                limit: LimitName::PendingDeltasMax,
                what: "deltas pending for the next tick".into(),
                max: self.pending_deltas_max as u64,
            });
        }
        *pending.rate.entry(instance.to_string()).or_insert(0) += 1;
        *pending.calls.entry(instance.to_string()).or_insert(0) += 1;
        let accepted = u32::try_from(deltas.len()).unwrap_or(u32::MAX);
        pending.deltas.extend(deltas);
        Ok(accepted)
    }

    /// Accepts a batch a follower forwarded: each instance's calls count in this node's
    /// one-second window together with the calls it made here and through other followers, so
    /// the per-instance rate holds across the cluster. The deltas of an instance over the rate
    /// are refused (the rest of the batch is kept); over `pending_deltas_max` the whole batch is
    /// refused and nothing changes.
    pub fn offer_batch(&self, batch: Batch, now_ms: u64) -> Result<BatchOutcome, BatchRefused> {
        let mut pending = self.lock();
        pending.roll_window(now_ms);
        let mut over = std::collections::BTreeSet::new();
        let mut counted = Vec::with_capacity(batch.calls.len());
        for (instance, calls) in &batch.calls {
            let seen = pending.rate.get(instance).copied().unwrap_or(0);
            if seen.saturating_add(*calls) > self.report_rate_per_instance_max {
                over.insert(instance.as_str());
            } else {
                counted.push((instance, seen + calls));
            }
        }
        let kept = batch
            .deltas
            .iter()
            .filter(|d| !over.contains(d.instance.as_str()))
            .count();
        if pending.deltas.len() + kept > self.pending_deltas_max {
            return Err(BatchRefused {
                error: NodeError::Limit {
                    limit: LimitName::PendingDeltasMax,
                    what: "deltas pending for the next tick on the leader".into(),
                    max: self.pending_deltas_max as u64,
                },
                batch,
            });
        }
        let (kept, refused): (Vec<Delta>, Vec<Delta>) = batch
            .deltas
            .into_iter()
            .partition(|d| !over.contains(d.instance.as_str()));
        for (instance, calls) in counted {
            pending.rate.insert(instance.clone(), calls);
        }
        let accepted = u32::try_from(kept.len()).unwrap_or(u32::MAX);
        pending.deltas.extend(kept);
        Ok(BatchOutcome {
            accepted,
            refused_by_rate: refused.len() as u64,
        })
    }

    /// Takes everything waiting with the calls that brought it (a follower's forward buffer).
    /// The batch still counts against the limit until [`Ingest::settle`] (it was handed on) or
    /// [`Ingest::restore`] (it was not, and waits here again).
    pub fn take_batch(&self) -> Batch {
        let mut pending = self.lock();
        let deltas = merge(std::mem::take(&mut pending.deltas));
        let calls = std::mem::take(&mut pending.calls).into_iter().collect();
        pending.in_flight = deltas.len();
        Batch { calls, deltas }
    }

    /// Takes everything waiting with its calls, leaving nothing counted against the limit (a
    /// deposed leader's buffer, handed to its forward buffer).
    pub fn take_all(&self) -> Batch {
        let batch = self.take_batch();
        self.settle();
        batch
    }

    /// The batch last taken was handed on: it no longer counts against the limit.
    pub fn settle(&self) {
        self.lock().in_flight = 0;
    }

    /// Puts back deltas that were taken but not handed on (a batch the leader did not take, or
    /// a deposed leader's buffer), with their calls; they are offered again with the next
    /// batch. Never refused: these deltas were acknowledged, and were within a limit when they
    /// were.
    pub fn restore(&self, batch: Batch) {
        let mut pending = self.lock();
        pending.in_flight = 0;
        for (instance, calls) in batch.calls {
            *pending.calls.entry(instance).or_insert(0) += calls;
        }
        pending.deltas.extend(batch.deltas);
    }

    /// The number of deltas waiting.
    pub fn len(&self) -> usize {
        self.lock().deltas.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything waiting, merged so each (breaker, instance) appears once, in key order.
    pub fn take(&self) -> Vec<Delta> {
        let mut pending = self.lock();
        pending.calls.clear();
        let deltas = std::mem::take(&mut pending.deltas);
        drop(pending);
        merge(deltas)
    }
}

/// Report deltas refused at a limit, by limit: `switchyard_report_deltas_refused_total{limit}`.
/// Every refusal of a report is counted here, wherever it happens (the rate gate, the batch
/// size check, a follower's forward buffer, the leader's tick buffer).
#[derive(Debug, Default)]
pub struct DeltasRefused {
    by_limit: [std::sync::atomic::AtomicU64; LimitName::REPORT.len()],
}

impl DeltasRefused {
    fn slot(&self, limit: LimitName) -> &std::sync::atomic::AtomicU64 {
        let i = LimitName::REPORT
            .iter()
            .position(|l| *l == limit)
            .unwrap_or(0);
        &self.by_limit[i]
    }

    /// Counts `deltas` refused at `limit`.
    pub fn add(&self, limit: LimitName, deltas: u64) {
        self.slot(limit)
            .fetch_add(deltas, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts the deltas of a report refused with `error`, when it is a limit refusal.
    pub fn add_error(&self, error: &NodeError, deltas: u64) {
        if let Some(limit) = error.limit() {
            self.add(limit, deltas);
        }
    }

    /// Deltas refused at `limit` so far.
    pub fn get(&self, limit: LimitName) -> u64 {
        self.slot(limit).load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Shards of [`ReportRateGate`]: concurrent reports from different instances rarely contend.
const RATE_GATE_SHARDS: usize = 16;

/// Instances tracked per second by one [`ReportRateGate`] shard; beyond it, new instances are
/// admitted untracked for the rest of the second (the leader's `pending_deltas_max` still
/// bounds what they can queue).
pub const RATE_GATE_INSTANCES_PER_SHARD_MAX: usize = 4_096;

#[derive(Debug, Default)]
struct RateShard {
    window_s: u64,
    calls: std::collections::HashMap<String, u32>,
}

/// The per-instance report rate limit, enforced on the node that receives the call, before the
/// report is validated, forwarded or merged.
///
/// Why here and not only on the leader's [`Ingest`]: a flooding instance must be turned away
/// at the cost of one hash lookup. Counting it after validation and a hop to the leader made
/// every refused call cost as much as an accepted one, and made the flood queue on the same
/// leader mutex as every well-behaved instance's reports. This gate is per node; the leader
/// counts every instance's calls across the cluster (followers forward their calls per
/// instance with the deltas, see [`Ingest::offer_batch`]), so an instance spreading its calls
/// over nodes is held to the same rate.
#[derive(Debug)]
pub struct ReportRateGate {
    shards: Vec<Mutex<RateShard>>,
    per_instance_max: u32,
}

impl ReportRateGate {
    /// A gate admitting `per_instance_max` report calls per instance per second.
    pub fn new(per_instance_max: u32) -> Self {
        Self {
            shards: (0..RATE_GATE_SHARDS).map(|_| Mutex::default()).collect(),
            per_instance_max,
        }
    }

    /// Admits one report call from `instance` at `now_ms` and returns its calls this second
    /// (this one included; 1 when the instance is not tracked), or refuses it over the rate.
    pub fn admit(&self, instance: &str, now_ms: u64) -> Result<u32, NodeError> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(instance);
        let shard = &self.shards[(hash as usize) % self.shards.len()];
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        let window_s = now_ms / 1000;
        if shard.window_s != window_s {
            shard.window_s = window_s;
            shard.calls.clear();
        }
        if let Some(calls) = shard.calls.get_mut(instance) {
            if *calls >= self.per_instance_max {
                return Err(NodeError::Limit {
                    limit: LimitName::ReportRatePerInstanceMax,
                    what: format!("report calls per second from instance {instance:?}"),
                    max: u64::from(self.per_instance_max),
                });
            }
            *calls += 1;
            return Ok(*calls);
        }
        if shard.calls.len() < RATE_GATE_INSTANCES_PER_SHARD_MAX {
            shard.calls.insert(instance.to_owned(), 1);
        }
        Ok(1)
    }
}

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
    let mut key_ids: HashMap<&str, u32> = HashMap::new();
    let mut instance_ids: HashMap<&str, u32> = HashMap::new();
    let mut ids: Vec<(u32, u32)> = Vec::with_capacity(deltas.len());
    let mut previous_instance: Option<(&str, u32)> = None;
    for d in deltas {
        let next = key_ids.len() as u32;
        let key = *key_ids.entry(d.key.as_str()).or_insert(next);
        let instance = match previous_instance {
            Some((name, id)) if name == d.instance.as_str() => id,
            _ => {
                let next = instance_ids.len() as u32;
                let id = *instance_ids.entry(d.instance.as_str()).or_insert(next);
                previous_instance = Some((d.instance.as_str(), id));
                id
            }
        };
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
    use switchyard_core::{BreakerKey, InstanceId, LatencySketch};

    fn delta(key: &str, instance: &str, calls: u64, failures: u64) -> Delta {
        let mut latency = LatencySketch::default();
        latency.record_n(1_000, calls);
        Delta {
            key: BreakerKey::parse(key).unwrap(),
            instance: InstanceId::parse(instance).unwrap(),
            calls,
            failures,
            slow: 0,
            rejected: 0,
            latency,
            first_attempts: u32::try_from(calls).unwrap_or(u32::MAX),
            retries: u32::try_from(failures).unwrap_or(u32::MAX),
        }
    }

    #[test]
    fn merges_per_breaker_and_instance() {
        let ingest = Ingest::new(100, 100);
        ingest
            .offer(
                "a",
                vec![delta("s/x", "a", 2, 1), delta("s/y", "a", 1, 0)],
                0,
            )
            .unwrap();
        ingest.offer("b", vec![delta("s/x", "b", 3, 3)], 0).unwrap();
        ingest.offer("a", vec![delta("s/x", "a", 5, 0)], 0).unwrap();
        let merged = ingest.take();
        assert_eq!(merged.len(), 3);
        assert_eq!(
            (
                merged[0].instance.as_str(),
                merged[0].calls,
                merged[0].failures
            ),
            ("a", 7, 1)
        );
        assert_eq!(merged[0].latency.count(), 7);
        assert_eq!(
            (merged[0].first_attempts, merged[0].retries),
            (7, 1),
            "retry figures are summed too"
        );
        assert_eq!((merged[1].instance.as_str(), merged[1].calls), ("b", 3));
        assert_eq!(merged[2].key.as_str(), "s/y");
        assert!(ingest.is_empty());
    }

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

    #[test]
    fn refuses_at_the_pending_limit_and_changes_nothing() {
        let ingest = Ingest::new(3, 100);
        ingest
            .offer("a", vec![delta("s/x", "a", 1, 0); 3], 0)
            .unwrap();
        let err = ingest
            .offer("b", vec![delta("s/x", "b", 1, 0)], 0)
            .unwrap_err();
        assert!(matches!(err, NodeError::Limit { max: 3, .. }), "{err}");
        assert_eq!(ingest.len(), 3);
    }

    #[test]
    fn the_gate_limits_each_instance_per_second() {
        let gate = ReportRateGate::new(2);
        gate.admit("a", 1_000).unwrap();
        gate.admit("a", 1_400).unwrap();
        let err = gate.admit("a", 1_999).unwrap_err();
        assert!(
            err.to_string().contains("\"a\"") && err.to_string().contains("limit of 2"),
            "{err}"
        );
        gate.admit("b", 1_999).unwrap();
        gate.admit("a", 2_000).unwrap();
    }

    #[test]
    fn limits_report_rate_per_instance_per_second() {
        let ingest = Ingest::new(1000, 2);
        ingest
            .offer("a", vec![delta("s/x", "a", 1, 0)], 1_000)
            .unwrap();
        ingest
            .offer("a", vec![delta("s/x", "a", 1, 0)], 1_500)
            .unwrap();
        assert!(
            ingest
                .offer("a", vec![delta("s/x", "a", 1, 0)], 1_999)
                .is_err()
        );
        // Another instance is not affected, and the next second starts afresh.
        ingest
            .offer("b", vec![delta("s/x", "b", 1, 0)], 1_999)
            .unwrap();
        ingest
            .offer("a", vec![delta("s/x", "a", 1, 0)], 2_000)
            .unwrap();
    }

    #[test]
    fn forwarded_calls_count_against_each_instance_across_the_cluster() {
        // The leader has 3 calls from web-1 itself; two followers forward 4 and 5 more in the
        // same second, with a limit of 10: the second batch takes web-1 over, and only its
        // web-1 deltas are refused.
        let ingest = Ingest::new(1_000, 10);
        for _ in 0..3 {
            ingest
                .offer("web-1", vec![delta("a/b", "web-1", 1, 0)], 5_000)
                .unwrap();
        }
        let batch = |n: u32| Batch {
            calls: vec![("web-1".into(), n), ("web-2".into(), 1)],
            deltas: vec![
                delta("a/b", "web-1", u64::from(n), 0),
                delta("a/b", "web-2", 1, 0),
            ],
        };
        let first = ingest.offer_batch(batch(4), 5_100).unwrap();
        assert_eq!(
            first,
            BatchOutcome {
                accepted: 2,
                refused_by_rate: 0
            }
        );
        let second = ingest.offer_batch(batch(5), 5_200).unwrap();
        assert_eq!(
            second,
            BatchOutcome {
                accepted: 1,
                refused_by_rate: 1
            }
        );
        // A new second starts a new window.
        let third = ingest.offer_batch(batch(5), 6_000).unwrap();
        assert_eq!(
            third,
            BatchOutcome {
                accepted: 2,
                refused_by_rate: 0
            }
        );
        // A follower's buffer hands over its calls with its deltas, once.
        let follower = Ingest::new(1_000, u32::MAX);
        follower
            .offer("web-1", vec![delta("a/b", "web-1", 1, 0)], 0)
            .unwrap();
        follower
            .offer("web-1", vec![delta("a/b", "web-1", 1, 0)], 0)
            .unwrap();
        let taken = follower.take_batch();
        assert_eq!(taken.calls, vec![("web-1".to_string(), 2)]);
        assert_eq!(taken.deltas.len(), 1, "merged");
        assert!(follower.take_batch().calls.is_empty());
    }

    #[test]
    fn a_batch_not_handed_on_waits_again_and_counts_against_the_limit_meanwhile() {
        // A follower's buffer of 4: a batch of 3 goes out; while it is out, one more delta
        // fits and a second is refused (the batch still counts). The leader did not take the
        // batch: it comes back and goes with the next one, nothing lost, calls included.
        let buffer = Ingest::new(4, u32::MAX);
        buffer
            .offer(
                "a",
                vec![delta("s/x", "a", 1, 0), delta("s/y", "a", 2, 0)],
                0,
            )
            .unwrap();
        buffer.offer("b", vec![delta("s/x", "b", 4, 1)], 0).unwrap();
        let out = buffer.take_batch();
        assert_eq!(out.deltas.len(), 3);
        buffer.offer("a", vec![delta("s/x", "a", 8, 0)], 0).unwrap();
        let err = buffer
            .offer("c", vec![delta("s/x", "c", 1, 0)], 0)
            .unwrap_err();
        assert_eq!(err.limit(), Some(LimitName::PendingDeltasMax), "{err}");
        buffer.restore(out);
        let again = buffer.take_batch();
        let calls: u64 = again.deltas.iter().map(|d| d.calls).sum();
        assert_eq!(
            calls,
            1 + 2 + 4 + 8,
            "every acknowledged call is still there"
        );
        assert_eq!(again.deltas.len(), 3, "merged with the newer report");
        assert_eq!(
            again.calls,
            vec![("a".to_string(), 2), ("b".to_string(), 1)],
            "the calls that brought them travel again"
        );
        // Handed on this time: the buffer has room for a full limit again.
        buffer.settle();
        buffer
            .offer("c", vec![delta("s/x", "c", 1, 0); 4], 0)
            .unwrap();
    }

    #[test]
    fn a_batch_the_leader_cannot_take_is_handed_back_unchanged() {
        let leader = Ingest::new(2, 100);
        leader.offer("a", vec![delta("s/x", "a", 1, 0)], 0).unwrap();
        let batch = Batch {
            calls: vec![("b".into(), 1)],
            deltas: vec![delta("s/x", "b", 3, 0), delta("s/y", "b", 5, 0)],
        };
        let refused = leader.offer_batch(batch, 0).unwrap_err();
        assert_eq!(refused.error.limit(), Some(LimitName::PendingDeltasMax));
        assert_eq!(refused.batch.calls, vec![("b".to_string(), 1)]);
        let calls: Vec<u64> = refused.batch.deltas.iter().map(|d| d.calls).collect();
        assert_eq!(calls, vec![3, 5]);
        assert_eq!(leader.len(), 1, "nothing changed on the leader");
    }
}
