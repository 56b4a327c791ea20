//! `ClusterSettings` and `Slo`.

use switchyard_core::{ClusterSettings, Slo, ValidationError};

use super::{required, within};
use crate::admin as apb;

impl From<&Slo> for apb::Slo {
    fn from(slo: &Slo) -> Self {
        apb::Slo {
            availability_percent: slo.availability_percent,
            p95_latency_ms: slo.p95_latency_ms,
            error_rate_percent: slo.error_rate_percent,
            degraded_max_ms: slo.degraded_max_ms,
        }
    }
}

/// Validates with [`Slo::validate`] (NaN, infinities and out-of-range
/// percentages rejected). Paths are relative to the SLO
/// (`availability_percent`).
impl TryFrom<apb::Slo> for Slo {
    type Error = ValidationError;

    fn try_from(s: apb::Slo) -> Result<Self, Self::Error> {
        let slo = Slo {
            availability_percent: s.availability_percent,
            p95_latency_ms: s.p95_latency_ms,
            error_rate_percent: s.error_rate_percent,
            degraded_max_ms: s.degraded_max_ms,
        };
        // Core names the fields `slo.*` (as nested in the settings); strip that here.
        slo.validate().map_err(|mut e| {
            if let Some(rest) = e.field.strip_prefix("slo.") {
                e.field = rest.to_owned();
            }
            e
        })?;
        Ok(slo)
    }
}

impl From<&ClusterSettings> for apb::ClusterSettings {
    fn from(s: &ClusterSettings) -> Self {
        apb::ClusterSettings {
            max_breakers: s.max_breakers,
            max_instances_per_breaker: s.max_instances_per_breaker,
            max_deltas_per_tick: s.max_deltas_per_tick,
            audit_retention_ms: s.audit_retention_ms,
            audit_max_events: s.audit_max_events,
            sla_retention_ms: s.sla_retention_ms,
            slo: Some((&s.slo).into()),
        }
    }
}

/// Validates with [`ClusterSettings::validate`]. Paths are relative to the
/// settings (`audit_retention_ms`, `slo`, `slo.availability_percent`).
impl TryFrom<apb::ClusterSettings> for ClusterSettings {
    type Error = ValidationError;

    fn try_from(s: apb::ClusterSettings) -> Result<Self, Self::Error> {
        let slo = Slo::try_from(required(s.slo, "slo")?).map_err(|e| within(e, "slo"))?;
        let settings = ClusterSettings {
            max_breakers: s.max_breakers,
            max_instances_per_breaker: s.max_instances_per_breaker,
            max_deltas_per_tick: s.max_deltas_per_tick,
            audit_retention_ms: s.audit_retention_ms,
            audit_max_events: s.audit_max_events,
            sla_retention_ms: s.sla_retention_ms,
            slo,
        };
        settings.validate()?;
        Ok(settings)
    }
}
