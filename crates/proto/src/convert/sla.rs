//! `SlaReport` and the report window.

use std::collections::BTreeMap;

use switchyard_core::{
    BreakerState, OpenEpisode, SlaBreach, SlaReport, SlaWindow, Tier, ValidationError,
};

use super::{at, parse_key};
use crate::admin as apb;

/// Parses a window named `field`: `24h`, `7d`, `30d`, `mtd`; empty = `24h`.
pub fn sla_window_from_wire(value: &str, field: &str) -> Result<SlaWindow, ValidationError> {
    if value.is_empty() {
        return Ok(SlaWindow::Day);
    }
    SlaWindow::parse(value).map_err(|e| at(e, field))
}

fn finite(value: f64, field: &str) -> Result<f64, ValidationError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            format!("must be a finite number, got {value}"),
        ))
    }
}

impl From<&OpenEpisode> for apb::OpenEpisode {
    fn from(e: &OpenEpisode) -> Self {
        apb::OpenEpisode {
            opened_at_ms: e.opened_at_ms,
            closed_at_ms: e.closed_at_ms,
            duration_ms: e.duration_ms,
        }
    }
}

impl From<apb::OpenEpisode> for OpenEpisode {
    fn from(e: apb::OpenEpisode) -> Self {
        OpenEpisode {
            opened_at_ms: e.opened_at_ms,
            closed_at_ms: e.closed_at_ms,
            duration_ms: e.duration_ms,
        }
    }
}

impl From<&SlaBreach> for apb::SlaBreach {
    fn from(b: &SlaBreach) -> Self {
        apb::SlaBreach {
            objective: b.objective.clone(),
            target: b.target.clone(),
            actual: b.actual.clone(),
        }
    }
}

impl From<apb::SlaBreach> for SlaBreach {
    fn from(b: apb::SlaBreach) -> Self {
        SlaBreach {
            objective: b.objective,
            target: b.target,
            actual: b.actual,
        }
    }
}

impl From<&SlaReport> for apb::SlaReport {
    fn from(r: &SlaReport) -> Self {
        apb::SlaReport {
            key: r.key.to_string(),
            window: r.window.as_str().to_owned(),
            from_ms: r.from_ms,
            to_ms: r.to_ms,
            calls: r.calls,
            failures: r.failures,
            slow: r.slow,
            rejected: r.rejected,
            availability_percent: r.availability_percent,
            error_rate_percent: r.error_rate_percent,
            p50_ms: r.p50_ms,
            p95_ms: r.p95_ms,
            p99_ms: r.p99_ms,
            open_episodes: r.open_episodes.iter().map(apb::OpenEpisode::from).collect(),
            time_in_state_ms: r.time_in_state_ms.clone(),
            time_in_tier_ms: r.time_in_tier_ms.clone(),
            time_degraded_ms: r.time_degraded_ms,
            last_success_ms: r.last_success_ms,
            time_since_last_success_ms: r.time_since_last_success_ms,
            breaches: r.breaches.iter().map(apb::SlaBreach::from).collect(),
        }
    }
}

/// For readers of reports (CLI, tools): checks the key, the window, that every
/// number is finite and that the per-state / per-tier maps use known names.
/// Paths: `key`, `window`, `availability_percent`, `time_in_state_ms.BOGUS`.
impl TryFrom<apb::SlaReport> for SlaReport {
    type Error = ValidationError;

    fn try_from(r: apb::SlaReport) -> Result<Self, Self::Error> {
        let key = parse_key(&r.key, "key")?;
        let window = SlaWindow::parse(&r.window).map_err(|e| at(e, "window"))?;
        if let Some(state) = r
            .time_in_state_ms
            .keys()
            .find(|s| BreakerState::parse(s).is_none())
        {
            return Err(ValidationError::new(
                format!("time_in_state_ms.{state}"),
                "must be a breaker state name (CLOSED, OPEN, ...)",
            ));
        }
        if let Some(tier) = r.time_in_tier_ms.keys().find(|t| Tier::parse(t).is_err()) {
            return Err(ValidationError::new(
                format!("time_in_tier_ms.{tier}"),
                "must be a tier name (FULL, DEGRADED, ...)",
            ));
        }
        let time_in_state_ms: BTreeMap<String, u64> = r.time_in_state_ms;
        Ok(SlaReport {
            key,
            window,
            from_ms: r.from_ms,
            to_ms: r.to_ms,
            calls: r.calls,
            failures: r.failures,
            slow: r.slow,
            rejected: r.rejected,
            availability_percent: finite(r.availability_percent, "availability_percent")?,
            error_rate_percent: finite(r.error_rate_percent, "error_rate_percent")?,
            p50_ms: r.p50_ms.map(|v| finite(v, "p50_ms")).transpose()?,
            p95_ms: r.p95_ms.map(|v| finite(v, "p95_ms")).transpose()?,
            p99_ms: r.p99_ms.map(|v| finite(v, "p99_ms")).transpose()?,
            open_episodes: r.open_episodes.into_iter().map(OpenEpisode::from).collect(),
            time_in_state_ms,
            time_in_tier_ms: r.time_in_tier_ms,
            time_degraded_ms: r.time_degraded_ms,
            last_success_ms: r.last_success_ms,
            time_since_last_success_ms: r.time_since_last_success_ms,
            breaches: r.breaches.into_iter().map(SlaBreach::from).collect(),
        })
    }
}
