//! Conversions between wire messages (`crate::client`, `crate::admin`) and the
//! domain types of `switchyard-core`.
//!
//! Direction and trust differ, so the two directions have different shapes:
//!
//! ```text
//!   domain ──From<&T>──────▶ wire      outbound: infallible, the domain is valid
//!   wire   ──TryFrom<pb::T>──▶ domain  inbound:  validates everything, first error wins
//! ```
//!
//! Every inbound error is a core [`ValidationError`] whose `field` is the full
//! path of the offending field inside the message (`deltas[3].key`,
//! `policies[0].policy.window.buckets`, `rules.rules[2].tier`), so the server
//! answers `INVALID_ARGUMENT` naming exactly what to fix; use
//! [`status_from_validation`] for that one conversion. A standalone message
//! converted with `TryFrom` reports paths relative to itself (`window`,
//! `failure_rate_threshold`); request-level conversions prefix them.
//!
//! Enums: the zero value (`*_UNSPECIFIED`) and any number this build does not
//! know are rejected, never mapped to a default.
//!
//! Modules, one per area of the contract:
//! - `policy`: `Policy`, `PolicyTarget`, `PolicyEntry`, `PutPoliciesRequest`.
//! - `report`: `ReportRequest`, `BreakerDelta`, latency buckets.
//! - `report_wire`: `ReportRequest` decoded from its bytes in one pass (the node's hot path).
//! - `state`: `BreakerState`, `OverrideMode`, `ProbeOutcome`.
//! - `decision`: `BreakerView`/`ScopeView` to decisions and infos, and the
//!   SDK's `DecisionUpdate`/`ScopeUpdate`.
//! - `tier`: `Tier`, `TierRules` and their rules.
//! - `audit`: `AuditEvent`, `AuditQuery`.
//! - `sla`: `SlaWindow`, `SlaReport`.
//! - `settings`: `ClusterSettings`, `Slo`.
//! - `request`: validated admin and client write requests.

mod audit;
mod decision;
mod policy;
mod report;
mod report_keys;
mod report_wire;
mod request;
mod settings;
mod sla;
mod state;
mod tier;

pub use decision::{DecisionUpdate, ScopeUpdate, WatchUpdate, WatchedEvent};
pub use report::{Report, delta_from_wire, latency_from_wire, latency_to_wire};
pub use report_wire::{ReportWire, ReportWireError};
pub use request::*;
pub use sla::sla_window_from_wire;
pub use state::{
    breaker_state_from_wire, breaker_state_to_wire, override_mode_from_wire, override_mode_to_wire,
    probe_outcome_from_wire, probe_outcome_to_wire,
};
pub use tier::{tier_from_wire, tier_to_wire};

use switchyard_core::{BreakerKey, InstanceId, Scope, ValidationError};

/// Maps a validation error to the gRPC status the server returns:
/// `INVALID_ARGUMENT` with a message naming the field and the rule, e.g.
/// "invalid `deltas[3].key`: must be `scope/name` of lowercase [a-z0-9._-]".
pub fn status_from_validation(error: &ValidationError) -> tonic::Status {
    tonic::Status::invalid_argument(error.to_string())
}

/// Replaces the field of `error` with `field` (core names a key `key`; on the
/// wire it may be `deltas[3].key`).
pub(crate) fn at(mut error: ValidationError, field: &str) -> ValidationError {
    error.field = field.to_owned();
    error
}

/// Prefixes the field path of `error` with `parent` (`policy` + `window` =
/// `policy.window`).
pub(crate) fn within(error: ValidationError, parent: &str) -> ValidationError {
    error.within(parent)
}

/// A required message field that is absent.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ValidationError> {
    value.ok_or_else(|| ValidationError::new(field, "is required"))
}

/// Parses a breaker key, naming `field` on error.
pub(crate) fn parse_key(value: &str, field: &str) -> Result<BreakerKey, ValidationError> {
    BreakerKey::parse(value).map_err(|e| at(e, field))
}

/// Parses a scope, naming `field` on error.
pub(crate) fn parse_scope(value: &str, field: &str) -> Result<Scope, ValidationError> {
    Scope::parse(value).map_err(|e| at(e, field))
}

/// Parses an instance id, naming `field` on error.
pub(crate) fn parse_instance(value: &str, field: &str) -> Result<InstanceId, ValidationError> {
    InstanceId::parse(value).map_err(|e| at(e, field))
}

/// The error for an enum number that is `*_UNSPECIFIED` (0) or unknown.
pub(crate) fn bad_enum(field: &str, type_name: &str, value: i32) -> ValidationError {
    if value == 0 {
        ValidationError::new(field, format!("must be set (got {type_name}_UNSPECIFIED)"))
    } else {
        ValidationError::new(field, format!("unknown {type_name} value {value}"))
    }
}

#[cfg(test)]
mod tests;
