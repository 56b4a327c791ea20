//! The values a breaker reports: its [`BreakerState`], operator [`OverrideMode`]s, probe
//! outcomes, the [`TripMode`] it judges in, and the [`Transition`]s it makes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The effective state of a breaker: the automatic state, or the active override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    /// Calls flow; the window is judged.
    Closed,
    /// Calls are rejected until `open_until_ms`.
    Open,
    /// Only calls holding a probe permit flow.
    HalfOpen,
    /// Operator: reject every call.
    ForcedOpen,
    /// Operator: allow every call, never trip.
    ForcedClosed,
    /// Operator: the breaker is off (always allow, no transitions).
    Disabled,
    /// Operator: collect metrics, never trip.
    MetricsOnly,
}

impl BreakerState {
    /// Every state, in declaration order.
    pub const ALL: [BreakerState; 7] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::ForcedClosed,
        BreakerState::Disabled,
        BreakerState::MetricsOnly,
    ];

    /// `CLOSED`, `OPEN`, `HALF_OPEN`, `FORCED_OPEN`, `FORCED_CLOSED`, `DISABLED`, `METRICS_ONLY`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
            BreakerState::ForcedOpen => "FORCED_OPEN",
            BreakerState::ForcedClosed => "FORCED_CLOSED",
            BreakerState::Disabled => "DISABLED",
            BreakerState::MetricsOnly => "METRICS_ONLY",
        }
    }

    /// Parses the `as_str` form (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let upper = s.trim().to_ascii_uppercase();
        Self::ALL.into_iter().find(|st| st.as_str() == upper)
    }

    /// Whether the state counts as part of an open episode for SLA reports.
    pub fn is_open_like(self) -> bool {
        matches!(
            self,
            BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
        )
    }

    /// Index 0–6, for per-state arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator override of the automatic machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideMode {
    /// Reject every call.
    ForcedOpen,
    /// Allow every call.
    ForcedClosed,
    /// Breaker off: always allow, no transitions.
    Disabled,
    /// Collect metrics, never trip.
    MetricsOnly,
}

impl OverrideMode {
    /// The effective state while this override is active.
    pub fn state(self) -> BreakerState {
        match self {
            OverrideMode::ForcedOpen => BreakerState::ForcedOpen,
            OverrideMode::ForcedClosed => BreakerState::ForcedClosed,
            OverrideMode::Disabled => BreakerState::Disabled,
            OverrideMode::MetricsOnly => BreakerState::MetricsOnly,
        }
    }

    /// `forced_open`, `forced_closed`, `disabled`, `metrics_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideMode::ForcedOpen => "forced_open",
            OverrideMode::ForcedClosed => "forced_closed",
            OverrideMode::Disabled => "disabled",
            OverrideMode::MetricsOnly => "metrics_only",
        }
    }
}

/// How a returned probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The trial call succeeded.
    Success,
    /// The trial call failed: the breaker re-opens.
    Failure,
    /// The permit was not used: it just frees its slot.
    Unused,
}

/// Whether the breaker judges a fleet (instance rule applies) or one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TripMode {
    /// The cluster's breaker: `min_instances` applies.
    Fleet,
    /// The SDK's own breaker: `min_instances` does not apply.
    Local,
}

/// A change of effective state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// Why, e.g. `failure_rate 63% >= 50% over 212 calls from 7 instances`.
    pub reason: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
}
