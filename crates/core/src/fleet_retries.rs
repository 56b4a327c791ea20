//! [`FleetRetries`]: a breaker's fleet-wide retry figures, the input of the SDKs' fleet
//! retry budget.
//!
//! SDK instances report, per breaker, the first attempts of their retry-budgeted calls and
//! the retries they made ([`crate::Delta::first_attempts`], [`crate::Delta::retries`]). The
//! breaker's window sums them like its other counters, and remembers per instance the window
//! position of its last first attempt, so the figures are "first attempts, retries and
//! retrying instances over the window", computed at the state's time on every replica alike.
//!
//! The cluster does not judge the budget: each SDK applies its own `retry_percent` and floor to
//! the figures (see the SDK's `retry` module). What the cluster decides is *when* to push them,
//! and that is where the cost is: the figures change with every tick that carries retry data,
//! and pushing a decision to every watcher on every tick would multiply watch traffic by the
//! tick rate. The SDK does not need every change. It counts its own first attempts and retries
//! since the figures it holds, so figures that are a little old are still a sound base; only a
//! large drift (the fleet's first attempts, retries or retrying instances moved by more than
//! 1/16 of what was pushed; any change of fewer than 16 instances counts) or age
//! ([`FLEET_RETRIES_REPUSH_MS`]) warrants a push. The rule is a pure function of replicated
//! values, so every replica pushes at the same indexes.

use serde::{Deserialize, Serialize};

/// Figures older than this are pushed again when they changed at all, ms.
pub const FLEET_RETRIES_REPUSH_MS: u64 = 5_000;

/// Fleet-wide retry figures of one breaker over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FleetRetries {
    /// First attempts of retry-budgeted calls reported in the window.
    pub first_attempts: u64,
    /// Retries reported in the window.
    pub retries: u64,
    /// Instances that reported first attempts in the window.
    pub instances: u32,
    /// The time the window covers, ms: the duration of a time window; for a count window, the
    /// age of its oldest chunk (0 when it has none).
    pub window_ms: u64,
}

impl FleetRetries {
    /// True when nothing is known: no retrying instance, no first attempt, no retry.
    pub fn is_empty(&self) -> bool {
        self.instances == 0 && self.first_attempts == 0 && self.retries == 0
    }

    /// Retries per 100 first attempts in the window (0 without first attempts).
    pub fn retry_percent(&self) -> u64 {
        if self.first_attempts == 0 {
            0
        } else {
            (u128::from(self.retries) * 100 / u128::from(self.first_attempts)) as u64
        }
    }

    /// Whether SDKs holding `pushed`, sent at `pushed_at_ms`, should be sent these figures at
    /// `now_ms` (see the module docs).
    pub fn worth_pushing(&self, pushed: &FleetRetries, pushed_at_ms: u64, now_ms: u64) -> bool {
        if self.first_attempts == pushed.first_attempts
            && self.retries == pushed.retries
            && self.instances == pushed.instances
        {
            return false;
        }
        let instances_moved = u64::from(self.instances).abs_diff(u64::from(pushed.instances)) * 16
            > u64::from(pushed.instances).max(1);
        instances_moved
            || drifted(self.first_attempts, pushed.first_attempts)
            || drifted(self.retries, pushed.retries)
            || now_ms.saturating_sub(pushed_at_ms) >= FLEET_RETRIES_REPUSH_MS
    }
}

/// More than 1/16 away from `then` (and at least 2 away, so counts near zero do not push on
/// every single retry).
fn drifted(now: u64, then: u64) -> bool {
    u128::from(now.abs_diff(then)) * 16 > u128::from(then.max(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(first_attempts: u64, retries: u64, instances: u32) -> FleetRetries {
        FleetRetries {
            first_attempts,
            retries,
            instances,
            window_ms: 10_000,
        }
    }

    #[test]
    fn small_drift_waits_for_age_large_drift_pushes_at_once() {
        let pushed = figures(1_600, 160, 4);
        // phase: unchanged figures are never pushed, however old
        assert!(!pushed.worth_pushing(&pushed, 0, 1_000_000));
        // phase: a drift of at most 1/16 waits for the re-push age
        let small = figures(1_700, 170, 4);
        assert!(!small.worth_pushing(&pushed, 0, FLEET_RETRIES_REPUSH_MS - 1));
        assert!(small.worth_pushing(&pushed, 0, FLEET_RETRIES_REPUSH_MS));
        // phase: more than 1/16 on either count, or another instance, pushes at once
        assert!(figures(1_701, 160, 4).worth_pushing(&pushed, 0, 1));
        assert!(figures(1_600, 171, 4).worth_pushing(&pushed, 0, 1));
        assert!(figures(1_600, 149, 4).worth_pushing(&pushed, 0, 1));
        assert!(figures(1_600, 160, 5).worth_pushing(&pushed, 0, 1));
        assert!(figures(1_600, 160, 3).worth_pushing(&pushed, 0, 1));
    }

    #[test]
    fn near_zero_a_single_retry_does_not_push_but_two_do() {
        let pushed = figures(10, 0, 1);
        assert!(!figures(10, 1, 1).worth_pushing(&pushed, 0, 1));
        assert!(figures(10, 2, 1).worth_pushing(&pushed, 0, 1));
        assert!(!pushed.is_empty());
    }

    #[test]
    fn retry_percent_is_retries_per_hundred_first_attempts() {
        assert_eq!(figures(0, 5, 1).retry_percent(), 0);
        assert_eq!(figures(200, 37, 2).retry_percent(), 18);
        assert_eq!(figures(u64::MAX, u64::MAX, 2).retry_percent(), 100);
        assert!(FleetRetries::default().is_empty());
    }
}
