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

use std::collections::BTreeMap;
use std::sync::Mutex;

use switchyard_core::Delta;

use crate::error::{LimitName, NodeError};

mod merge;
mod rate_gate;
mod refused;

pub use merge::merge;
pub use rate_gate::{RATE_GATE_INSTANCES_PER_SHARD_MAX, ReportRateGate};
pub use refused::DeltasRefused;

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
        // The window's map holds the instance but for its first call each second; the tick's
        // map is new each tick, and an instance reports about once a tick.
        match pending.rate.get_mut(instance) {
            Some(n) => *n += 1,
            None => {
                pending.rate.insert(instance.to_owned(), 1);
            }
        }
        *pending.calls.entry(instance.to_owned()).or_insert(0) += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::{BreakerKey, InstanceId, LatencySketch};

    pub(super) fn delta(key: &str, instance: &str, calls: u64, failures: u64) -> Delta {
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
