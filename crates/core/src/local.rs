//! The SDK's local fallback breaker: the same [`Breaker`] code in [`TripMode::Local`].
//!
//! The SDK follows the cluster's decisions; its local breaker protects the instance when a
//! fault is local to it (the fleet rule ignores a single instance) and when the cluster is
//! unreachable for longer than `fallback_after`. It counts only this process's calls, so the
//! `min_instances` rule does not apply, and probes are granted from a local counter.

use crate::{
    Breaker, BreakerKey, BreakerState, Policy, ProbeOutcome, Transition, TripMode, WindowTotals,
};

/// A breaker over one process's outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBreaker {
    breaker: Breaker,
    next_permit_id: u64,
}

impl LocalBreaker {
    /// A CLOSED local breaker.
    pub fn new(key: BreakerKey, policy: Policy) -> Self {
        Self {
            breaker: Breaker::new(key, policy, TripMode::Local, 0),
            next_permit_id: 1,
        }
    }

    /// Replaces the policy (a new window shape starts a fresh window).
    pub fn set_policy(&mut self, policy: Policy) {
        self.breaker.set_policy(policy);
    }

    /// Adds outcomes observed at `now_ms`. The window is judged by [`LocalBreaker::advance`].
    pub fn record(&mut self, now_ms: u64, calls: u64, failures: u64, slow: u64) {
        let outcomes = WindowTotals {
            calls,
            failures,
            slow,
        };
        self.breaker.record(now_ms, None, outcomes, None, 1);
    }

    /// Fires timed transitions due at `now_ms` (OPEN -> HALF_OPEN, lease expiry), then judges
    /// the window (CLOSED -> OPEN). Returns the transition, if any.
    pub fn advance(&mut self, now_ms: u64) -> Option<Transition> {
        if let Some(t) = self.breaker.advance(now_ms) {
            return Some(t);
        }
        self.breaker.evaluate(now_ms)
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Takes a probe permit if HALF_OPEN with a free slot.
    pub fn try_acquire_probe(&mut self, now_ms: u64) -> bool {
        let id = self.next_permit_id;
        match self.breaker.acquire_probe(now_ms, id, None) {
            Ok(_) => {
                self.next_permit_id += 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Returns the oldest outstanding permit with its outcome.
    pub fn release_probe(&mut self, now_ms: u64, outcome: ProbeOutcome) -> Option<Transition> {
        let id = *self.breaker.lease_ids().first()?;
        self.breaker
            .release_probe(now_ms, id, outcome)
            .ok()
            .flatten()
    }

    /// Why the breaker is in its state.
    pub fn reason(&self) -> &str {
        self.breaker.reason()
    }

    /// When OPEN ends, if OPEN.
    pub fn open_until_ms(&self) -> Option<u64> {
        self.breaker.open_until_ms()
    }

    /// The underlying breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}
