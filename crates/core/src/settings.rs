//! Cluster-wide limits, retention and service-level objectives.

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::error::check_range;

const DAY_MS: u64 = 86_400_000;

/// Service-level objectives that SLA reports are checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slo {
    /// Minimum availability, percent.
    pub availability_percent: f64,
    /// Maximum p95 latency, ms.
    pub p95_latency_ms: u64,
    /// Maximum error rate, percent.
    pub error_rate_percent: f64,
    /// Maximum time in a degraded tier (worse than FULL) per report window, ms.
    pub degraded_max_ms: u64,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            availability_percent: 99.9,
            p95_latency_ms: 2_000,
            error_rate_percent: 1.0,
            degraded_max_ms: 600_000,
        }
    }
}

impl Slo {
    /// Checks the objectives are finite and in range.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (name, v) in [
            ("slo.availability_percent", self.availability_percent),
            ("slo.error_rate_percent", self.error_rate_percent),
        ] {
            if !v.is_finite() || !(0.0..=100.0).contains(&v) {
                return Err(ValidationError::new(
                    name,
                    format!("must be a finite number between 0 and 100 (percent), got {v}"),
                ));
            }
        }
        check_range(
            "slo.p95_latency_ms",
            self.p95_latency_ms,
            1,
            3_600_000,
            "ms",
        )?;
        check_range(
            "slo.degraded_max_ms",
            self.degraded_max_ms,
            0,
            400 * DAY_MS,
            "ms",
        )?;
        Ok(())
    }
}

/// Cluster-wide settings, replicated like any other state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// Maximum breakers in the cluster.
    pub max_breakers: u32,
    /// Maximum instances tracked per breaker (oldest evicted beyond).
    pub max_instances_per_breaker: u32,
    /// Maximum deltas in one tick.
    pub max_deltas_per_tick: u32,
    /// Audit events older than this are dropped, ms.
    pub audit_retention_ms: u64,
    /// Maximum audit events kept (oldest dropped).
    pub audit_max_events: u32,
    /// SLA hourly buckets older than this are dropped, ms.
    pub sla_retention_ms: u64,
    /// Objectives for SLA reports.
    pub slo: Slo,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            max_breakers: 10_000,
            max_instances_per_breaker: 10_000,
            max_deltas_per_tick: 200_000,
            audit_retention_ms: 90 * DAY_MS,
            audit_max_events: 100_000,
            sla_retention_ms: 35 * DAY_MS,
            slo: Slo::default(),
        }
    }
}

impl ClusterSettings {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("max_breakers", self.max_breakers, 1, 1_000_000, "")?;
        check_range(
            "max_instances_per_breaker",
            self.max_instances_per_breaker,
            1,
            100_000,
            "",
        )?;
        check_range(
            "max_deltas_per_tick",
            self.max_deltas_per_tick,
            1,
            10_000_000,
            "",
        )?;
        check_range(
            "audit_retention_ms",
            self.audit_retention_ms,
            60_000,
            3_650 * DAY_MS,
            "ms",
        )?;
        check_range("audit_max_events", self.audit_max_events, 1, 10_000_000, "")?;
        check_range(
            "sla_retention_ms",
            self.sla_retention_ms,
            3_600_000,
            400 * DAY_MS,
            "ms",
        )?;
        self.slo.validate()
    }
}
