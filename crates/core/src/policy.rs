//! Breaker policies: the thresholds of DESIGN §3, with defaults and validated ranges.
//!
//! Every field has a default (the table in DESIGN §3) and an explicit range; `validate` checks
//! all of them and names the first offending field. Percentages are integers 0–100.

use serde::{Deserialize, Serialize};

use crate::error::check_range;
use crate::{Confidence, ValidationError};

/// `max_age_ms` of a count window when not given, ms.
pub const COUNT_MAX_AGE_MS_DEFAULT: u64 = 60_000;

/// Limits of the policy fields, shared by `validate` and the documentation.
pub mod limits {
    /// Time window duration range, ms.
    pub const WINDOW_DURATION_MS: (u64, u64) = (1_000, 3_600_000);
    /// Buckets in a time window.
    pub const WINDOW_BUCKETS: (u32, u32) = (1, 60);
    /// Minimum width of one time bucket, ms.
    pub const WINDOW_BUCKET_MIN_MS: u64 = 100;
    /// Calls in a count window.
    pub const WINDOW_CALLS: (u32, u32) = (1, 100_000);
    /// Age after which a call leaves a count window, ms.
    pub const WINDOW_MAX_AGE_MS: (u64, u64) = (1_000, 86_400_000);
    /// `min_calls` range.
    pub const MIN_CALLS: (u32, u32) = (1, 1_000_000);
    /// Percent thresholds range.
    pub const RATE_PERCENT: (u32, u32) = (1, 100);
    /// `slow_call_duration_ms` range.
    pub const SLOW_CALL_DURATION_MS: (u64, u64) = (1, 3_600_000);
    /// `min_instances` range.
    pub const MIN_INSTANCES: (u32, u32) = (1, 10_000);
    /// Open duration range (also bounds the max), ms.
    pub const OPEN_DURATION_MS: (u64, u64) = (100, 86_400_000);
    /// Jitter range, percent.
    pub const OPEN_JITTER_PERCENT: (u32, u32) = (0, 50);
    /// Probe permits range.
    pub const PROBE_PERMITS: (u32, u32) = (1, 1_000);
    /// Probe success threshold range.
    pub const PROBE_SUCCESS_THRESHOLD: (u32, u32) = (1, 1_000);
    /// Probe lease range, ms.
    pub const PROBE_LEASE_MS: (u64, u64) = (100, 3_600_000);
}

/// How a breaker's sliding window is cut.
///
/// Human-readable formats (TOML, JSON) use the DESIGN §6 form
/// `{ kind = "time", duration_ms = 10000, buckets = 10 }` /
/// `{ kind = "count", calls = 100, max_age_ms = 60000 }`; binary formats (bincode) use an
/// externally tagged enum (see `policy_serde`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// A ring of `buckets` time buckets covering `duration_ms`.
    Time {
        /// Window length, ms.
        duration_ms: u64,
        /// Number of buckets; a bucket is `duration_ms / buckets` wide.
        buckets: u32,
    },
    /// Approximately the last `calls` completed calls, none older than `max_age_ms`.
    Count {
        /// Calls kept.
        calls: u32,
        /// A call older than this leaves the window whatever the count, ms.
        max_age_ms: u64,
    },
}

impl Default for WindowSpec {
    fn default() -> Self {
        WindowSpec::Time {
            duration_ms: 10_000,
            buckets: 10,
        }
    }
}

impl WindowSpec {
    /// A count window of the last `calls` calls, with the default `max_age_ms`.
    pub const fn count(calls: u32) -> Self {
        WindowSpec::Count {
            calls,
            max_age_ms: COUNT_MAX_AGE_MS_DEFAULT,
        }
    }

    /// Checks the window's ranges; fields are named `window.*`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match *self {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => {
                let (lo, hi) = limits::WINDOW_DURATION_MS;
                check_range("window.duration_ms", duration_ms, lo, hi, "ms")?;
                let (lo, hi) = limits::WINDOW_BUCKETS;
                check_range("window.buckets", buckets, lo, hi, "")?;
                if duration_ms / u64::from(buckets) < limits::WINDOW_BUCKET_MIN_MS {
                    return Err(ValidationError::new(
                        "window.buckets",
                        format!(
                            "each bucket must be at least {} ms wide, got {} ms / {} buckets",
                            limits::WINDOW_BUCKET_MIN_MS,
                            duration_ms,
                            buckets
                        ),
                    ));
                }
                Ok(())
            }
            WindowSpec::Count { calls, max_age_ms } => {
                let (lo, hi) = limits::WINDOW_CALLS;
                check_range("window.calls", calls, lo, hi, "")?;
                let (lo, hi) = limits::WINDOW_MAX_AGE_MS;
                check_range("window.max_age_ms", max_age_ms, lo, hi, "ms")
            }
        }
    }
}

/// The thresholds of one breaker (or a scope's default for its breakers). See DESIGN §3.
///
/// The derive below is the human-readable form (`remote = "Self"`); the `Serialize` and
/// `Deserialize` impls in `policy_serde` add the binary form, which also reads policies
/// stored before `fresh_span_confidence` existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct Policy {
    /// The sliding window over which rates are judged.
    pub window: WindowSpec,
    /// Calls in the window before any rate is judged.
    pub min_calls: u32,
    /// Trip when failures / calls ≥ this, percent 1–100.
    pub failure_rate_threshold: u32,
    /// A call at least this long counts as slow, ms.
    pub slow_call_duration_ms: u64,
    /// Trip when slow / calls ≥ this, percent 1–100.
    pub slow_call_rate_threshold: u32,
    /// Distinct instances with bad calls needed for a fleet trip (see the breaker module).
    pub min_instances: u32,
    /// Time OPEN before HALF_OPEN on the first open, ms.
    pub open_duration_ms: u64,
    /// Cap of the doubled open duration, ms (before jitter).
    pub open_duration_max_ms: u64,
    /// Deterministic jitter applied to the open duration, ± percent 0–50.
    pub open_jitter_percent: u32,
    /// Fleet-wide concurrent probe permits in HALF_OPEN.
    pub probe_permits: u32,
    /// Successful probes that close the breaker.
    pub probe_success_threshold: u32,
    /// An unreturned permit expires after this long, ms.
    pub probe_lease_ms: u64,
    /// How sure the freshest span must be that its rate is above the threshold before it
    /// trips (one-sided Wilson lower bound); off = judge the whole window only.
    pub fresh_span_confidence: Confidence,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            window: WindowSpec::default(),
            min_calls: 20,
            failure_rate_threshold: 50,
            slow_call_duration_ms: 1_000,
            slow_call_rate_threshold: 100,
            min_instances: 2,
            open_duration_ms: 30_000,
            open_duration_max_ms: 300_000,
            open_jitter_percent: 10,
            probe_permits: 3,
            probe_success_threshold: 3,
            probe_lease_ms: 10_000,
            fresh_span_confidence: Confidence::default(),
        }
    }
}

impl Policy {
    /// Checks every field against its range; the error names the first invalid field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        use limits as l;
        self.window.validate()?;
        check_range(
            "min_calls",
            self.min_calls,
            l::MIN_CALLS.0,
            l::MIN_CALLS.1,
            "",
        )?;
        check_range(
            "failure_rate_threshold",
            self.failure_rate_threshold,
            l::RATE_PERCENT.0,
            l::RATE_PERCENT.1,
            "percent",
        )?;
        check_range(
            "slow_call_duration_ms",
            self.slow_call_duration_ms,
            l::SLOW_CALL_DURATION_MS.0,
            l::SLOW_CALL_DURATION_MS.1,
            "ms",
        )?;
        check_range(
            "slow_call_rate_threshold",
            self.slow_call_rate_threshold,
            l::RATE_PERCENT.0,
            l::RATE_PERCENT.1,
            "percent",
        )?;
        check_range(
            "min_instances",
            self.min_instances,
            l::MIN_INSTANCES.0,
            l::MIN_INSTANCES.1,
            "",
        )?;
        check_range(
            "open_duration_ms",
            self.open_duration_ms,
            l::OPEN_DURATION_MS.0,
            l::OPEN_DURATION_MS.1,
            "ms",
        )?;
        check_range(
            "open_duration_max_ms",
            self.open_duration_max_ms,
            self.open_duration_ms.max(l::OPEN_DURATION_MS.0),
            l::OPEN_DURATION_MS.1,
            "ms, at least open_duration_ms",
        )?;
        check_range(
            "open_jitter_percent",
            self.open_jitter_percent,
            l::OPEN_JITTER_PERCENT.0,
            l::OPEN_JITTER_PERCENT.1,
            "percent",
        )?;
        check_range(
            "probe_permits",
            self.probe_permits,
            l::PROBE_PERMITS.0,
            l::PROBE_PERMITS.1,
            "",
        )?;
        check_range(
            "probe_success_threshold",
            self.probe_success_threshold,
            l::PROBE_SUCCESS_THRESHOLD.0,
            l::PROBE_SUCCESS_THRESHOLD.1,
            "",
        )?;
        check_range(
            "probe_lease_ms",
            self.probe_lease_ms,
            l::PROBE_LEASE_MS.0,
            l::PROBE_LEASE_MS.1,
            "ms",
        )?;
        Ok(())
    }
}
