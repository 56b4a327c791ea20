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

use std::collections::BTreeMap;
use std::sync::Mutex;

use switchyard_core::Delta;

use crate::error::NodeError;

#[derive(Debug, Default)]
struct Pending {
    deltas: Vec<Delta>,
    /// Report calls per instance in the current one-second window.
    rate: BTreeMap<String, u32>,
    rate_window_s: u64,
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
        let window_s = now_ms / 1000;
        if pending.rate_window_s != window_s {
            pending.rate_window_s = window_s;
            pending.rate.clear();
        }
        let calls = pending.rate.get(instance).copied().unwrap_or(0);
        if calls >= self.report_rate_per_instance_max {
            return Err(NodeError::Limit {
                what: format!("report calls per second from instance {instance:?}"),
                max: u64::from(self.report_rate_per_instance_max),
            });
        }
        if pending.deltas.len() + deltas.len() > self.pending_deltas_max {
            return Err(NodeError::Limit {
                what: "deltas pending for the next tick on the leader".into(),
                max: self.pending_deltas_max as u64,
            });
        }
        *pending.rate.entry(instance.to_string()).or_insert(0) += 1;
        let accepted = u32::try_from(deltas.len()).unwrap_or(u32::MAX);
        pending.deltas.extend(deltas);
        Ok(accepted)
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
        let deltas = std::mem::take(&mut self.lock().deltas);
        merge(deltas)
    }

    /// Drops everything waiting (a deposed leader); returns how many were dropped.
    pub fn clear(&self) -> usize {
        let mut pending = self.lock();
        let n = pending.deltas.len();
        pending.deltas.clear();
        n
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
/// leader mutex as every well-behaved instance's reports. The leader still counts what
/// reaches it (reports forwarded from every node), so an instance spreading its calls over
/// nodes is limited too.
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

    /// Admits one report call from `instance` at `now_ms`, or refuses it over the rate.
    pub fn admit(&self, instance: &str, now_ms: u64) -> Result<(), NodeError> {
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
                    what: format!("report calls per second from instance {instance:?}"),
                    max: u64::from(self.per_instance_max),
                });
            }
            *calls += 1;
        } else if shard.calls.len() < RATE_GATE_INSTANCES_PER_SHARD_MAX {
            shard.calls.insert(instance.to_owned(), 1);
        }
        Ok(())
    }
}

/// Merges deltas of the same (breaker, instance), summing counts and latency sketches.
pub fn merge(mut deltas: Vec<Delta>) -> Vec<Delta> {
    deltas.sort_unstable_by(|a, b| (&a.key, &a.instance).cmp(&(&b.key, &b.instance)));
    let mut out: Vec<Delta> = Vec::with_capacity(deltas.len());
    for d in deltas {
        match out.last_mut() {
            Some(last) if last.key == d.key && last.instance == d.instance => {
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
    }
    out
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
}
