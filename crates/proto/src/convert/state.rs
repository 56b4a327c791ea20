//! Enums: `BreakerState`, `OverrideMode`, `ProbeOutcome`.
//!
//! prost keeps enum fields as raw `i32`, so inbound conversions start from the
//! number: `*_UNSPECIFIED` (0) and unknown numbers are rejected with the field's path.

use switchyard_core::{BreakerState, OverrideMode, ProbeOutcome, ValidationError};

use super::bad_enum;
use crate::admin as apb;
use crate::client as pb;

impl From<BreakerState> for pb::BreakerState {
    fn from(state: BreakerState) -> Self {
        match state {
            BreakerState::Closed => pb::BreakerState::Closed,
            BreakerState::Open => pb::BreakerState::Open,
            BreakerState::HalfOpen => pb::BreakerState::HalfOpen,
            BreakerState::ForcedOpen => pb::BreakerState::ForcedOpen,
            BreakerState::ForcedClosed => pb::BreakerState::ForcedClosed,
            BreakerState::Disabled => pb::BreakerState::Disabled,
            BreakerState::MetricsOnly => pb::BreakerState::MetricsOnly,
        }
    }
}

/// Rejects `BREAKER_STATE_UNSPECIFIED`; the error's field is empty (callers name it).
impl TryFrom<pb::BreakerState> for BreakerState {
    type Error = ValidationError;

    fn try_from(state: pb::BreakerState) -> Result<Self, Self::Error> {
        Ok(match state {
            pb::BreakerState::Unspecified => return Err(bad_enum("", "BREAKER_STATE", 0)),
            pb::BreakerState::Closed => BreakerState::Closed,
            pb::BreakerState::Open => BreakerState::Open,
            pb::BreakerState::HalfOpen => BreakerState::HalfOpen,
            pb::BreakerState::ForcedOpen => BreakerState::ForcedOpen,
            pb::BreakerState::ForcedClosed => BreakerState::ForcedClosed,
            pb::BreakerState::Disabled => BreakerState::Disabled,
            pb::BreakerState::MetricsOnly => BreakerState::MetricsOnly,
        })
    }
}

/// Decodes a raw `BreakerState` field named `field`.
pub fn breaker_state_from_wire(value: i32, field: &str) -> Result<BreakerState, ValidationError> {
    pb::BreakerState::try_from(value)
        .ok()
        .and_then(|state| BreakerState::try_from(state).ok())
        .ok_or_else(|| bad_enum(field, "BREAKER_STATE", value))
}

/// The wire number of a breaker state.
pub fn breaker_state_to_wire(state: BreakerState) -> i32 {
    pb::BreakerState::from(state) as i32
}

impl From<OverrideMode> for apb::OverrideMode {
    fn from(mode: OverrideMode) -> Self {
        match mode {
            OverrideMode::ForcedOpen => apb::OverrideMode::ForcedOpen,
            OverrideMode::ForcedClosed => apb::OverrideMode::ForcedClosed,
            OverrideMode::Disabled => apb::OverrideMode::Disabled,
            OverrideMode::MetricsOnly => apb::OverrideMode::MetricsOnly,
        }
    }
}

/// Rejects `OVERRIDE_MODE_UNSPECIFIED`; the error's field is empty (callers name it).
impl TryFrom<apb::OverrideMode> for OverrideMode {
    type Error = ValidationError;

    fn try_from(mode: apb::OverrideMode) -> Result<Self, Self::Error> {
        Ok(match mode {
            apb::OverrideMode::Unspecified => return Err(bad_enum("", "OVERRIDE_MODE", 0)),
            apb::OverrideMode::ForcedOpen => OverrideMode::ForcedOpen,
            apb::OverrideMode::ForcedClosed => OverrideMode::ForcedClosed,
            apb::OverrideMode::Disabled => OverrideMode::Disabled,
            apb::OverrideMode::MetricsOnly => OverrideMode::MetricsOnly,
        })
    }
}

/// Decodes a raw `OverrideMode` field named `field`.
pub fn override_mode_from_wire(value: i32, field: &str) -> Result<OverrideMode, ValidationError> {
    apb::OverrideMode::try_from(value)
        .ok()
        .and_then(|mode| OverrideMode::try_from(mode).ok())
        .ok_or_else(|| bad_enum(field, "OVERRIDE_MODE", value))
}

/// The wire number of an override mode.
pub fn override_mode_to_wire(mode: OverrideMode) -> i32 {
    apb::OverrideMode::from(mode) as i32
}

impl From<ProbeOutcome> for pb::ProbeOutcome {
    fn from(outcome: ProbeOutcome) -> Self {
        match outcome {
            ProbeOutcome::Success => pb::ProbeOutcome::Success,
            ProbeOutcome::Failure => pb::ProbeOutcome::Failure,
            ProbeOutcome::Unused => pb::ProbeOutcome::Unused,
        }
    }
}

/// Rejects `PROBE_OUTCOME_UNSPECIFIED`; the error's field is empty (callers name it).
impl TryFrom<pb::ProbeOutcome> for ProbeOutcome {
    type Error = ValidationError;

    fn try_from(outcome: pb::ProbeOutcome) -> Result<Self, Self::Error> {
        Ok(match outcome {
            pb::ProbeOutcome::Unspecified => return Err(bad_enum("", "PROBE_OUTCOME", 0)),
            pb::ProbeOutcome::Success => ProbeOutcome::Success,
            pb::ProbeOutcome::Failure => ProbeOutcome::Failure,
            pb::ProbeOutcome::Unused => ProbeOutcome::Unused,
        })
    }
}

/// Decodes a raw `ProbeOutcome` field named `field`.
pub fn probe_outcome_from_wire(value: i32, field: &str) -> Result<ProbeOutcome, ValidationError> {
    pb::ProbeOutcome::try_from(value)
        .ok()
        .and_then(|outcome| ProbeOutcome::try_from(outcome).ok())
        .ok_or_else(|| bad_enum(field, "PROBE_OUTCOME", value))
}

/// The wire number of a probe outcome.
pub fn probe_outcome_to_wire(outcome: ProbeOutcome) -> i32 {
    pb::ProbeOutcome::from(outcome) as i32
}
