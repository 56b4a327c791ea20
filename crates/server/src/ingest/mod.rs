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

use std::collections::HashMap;
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
    /// Report calls per instance in the current one-second window. Hash maps (keyed SipHash:
    /// ids are chosen by clients), looked up once or twice per report: an ordered map of a
    /// thousand instances cost a dozen string comparisons each time.
    rate: HashMap<String, u32>,
    rate_window_s: u64,
    /// Report calls per instance since the last [`Ingest::take_batch`] (a follower forwards
    /// them with the deltas, so the leader can count each instance across the cluster).
    calls: HashMap<String, u32>,
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
        let rate_max = self.report_rate_per_instance_max;
        let over_rate = || NodeError::Limit {
            limit: LimitName::ReportRatePerInstanceMax,
            what: format!("report calls per second from instance {instance:?}"),
            max: u64::from(rate_max),
        };
        let full =
            pending.deltas.len() + pending.in_flight + deltas.len() > self.pending_deltas_max;
        let over_pending = || NodeError::Limit {
            limit: LimitName::PendingDeltasMax,
            what: "deltas pending for the next tick".into(),
            max: self.pending_deltas_max as u64,
        };
        // One lookup, the rate checked first (a flooding instance is refused by its own limit):
        // the window's map holds the instance but for its first call each second; the tick's
        // map is new each tick, and an instance reports about once a tick.
        match pending.rate.get_mut(instance) {
            Some(calls) if *calls >= rate_max => return Err(over_rate()),
            Some(_) if full => return Err(over_pending()),
            Some(calls) => *calls += 1,
            None if rate_max == 0 => return Err(over_rate()),
            None if full => return Err(over_pending()),
            None => {
                pending.rate.insert(instance.to_owned(), 1);
            }
        }
        match pending.calls.get_mut(instance) {
            Some(n) => *n += 1,
            None => {
                pending.calls.insert(instance.to_owned(), 1);
            }
        }
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
        // In id order, so a forwarded batch's bytes do not depend on a hash map's seed.
        let mut calls: Vec<(String, u32)> =
            std::mem::take(&mut pending.calls).into_iter().collect();
        calls.sort_unstable();
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
mod tests;
