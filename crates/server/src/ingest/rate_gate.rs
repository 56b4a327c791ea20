//! [`ReportRateGate`]: the per-instance report rate limit of the node that receives a call.

use std::sync::Mutex;

#[cfg(doc)]
use super::Ingest;
use crate::error::{LimitName, NodeError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
