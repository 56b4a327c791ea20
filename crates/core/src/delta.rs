//! One instance's aggregated outcomes for one breaker since its last report.

use serde::{Deserialize, Serialize};

use crate::{BreakerKey, InstanceId, LatencySketch, ValidationError};

/// Maximum of each counter in one delta.
pub const DELTA_COUNT_MAX: u64 = 10_000_000;

/// Outcomes reported by one instance for one breaker, aggregated over a report interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// The breaker.
    pub key: BreakerKey,
    /// The reporting instance.
    pub instance: InstanceId,
    /// Completed calls (successes + failures).
    pub calls: u64,
    /// Failed calls among `calls`.
    pub failures: u64,
    /// Slow calls among `calls`.
    pub slow: u64,
    /// Calls rejected locally (breaker open), not among `calls`.
    pub rejected: u64,
    /// Latencies of (some of) the completed calls.
    pub latency: LatencySketch,
    /// First attempts of retry-budgeted calls (each call's first try), for the fleet retry
    /// budget ([`crate::FleetRetries`]). Not a subset of `calls`: an attempt may complete in
    /// a later report, or be rejected. A `u32` (the limit fits): a tick carries ten thousand
    /// deltas, read twice per apply, and their size shows in the apply rate.
    pub first_attempts: u32,
    /// Retries made under a retry budget (attempts after the first). Not bounded by
    /// `first_attempts`: a retry may follow a first attempt reported earlier.
    pub retries: u32,
}

impl Delta {
    /// Checks the counters are consistent and bounded.
    pub fn validate(&self) -> Result<(), ValidationError> {
        // One comparison on the apply path (every delta of every tick is validated); the
        // field-by-field pass only to name the culprit.
        let biggest = self
            .calls
            .max(self.failures)
            .max(self.slow)
            .max(self.rejected)
            .max(u64::from(self.first_attempts))
            .max(u64::from(self.retries));
        if biggest > DELTA_COUNT_MAX {
            for (name, value) in [
                ("calls", self.calls),
                ("failures", self.failures),
                ("slow", self.slow),
                ("rejected", self.rejected),
                ("first_attempts", u64::from(self.first_attempts)),
                ("retries", u64::from(self.retries)),
            ] {
                if value > DELTA_COUNT_MAX {
                    return Err(ValidationError::new(
                        name,
                        format!("must be at most {DELTA_COUNT_MAX}, got {value}"),
                    ));
                }
            }
        }
        if self.failures > self.calls {
            return Err(ValidationError::new(
                "failures",
                format!(
                    "must be at most calls ({}), got {}",
                    self.calls, self.failures
                ),
            ));
        }
        if self.slow > self.calls {
            return Err(ValidationError::new(
                "slow",
                format!("must be at most calls ({}), got {}", self.calls, self.slow),
            ));
        }
        let latency_count = self.latency.count();
        if latency_count > self.calls {
            return Err(ValidationError::new(
                "latency",
                format!(
                    "must hold at most calls ({}) samples, got {latency_count}",
                    self.calls
                ),
            ));
        }
        if self.calls + self.rejected + u64::from(self.first_attempts | self.retries) == 0 {
            return Err(ValidationError::new(
                "calls",
                "a delta must report at least one call, rejection, first attempt or retry",
            ));
        }
        Ok(())
    }
}
