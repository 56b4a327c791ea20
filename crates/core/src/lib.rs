//! Switchyard core: the pure, deterministic domain logic of a Raft-replicated
//! circuit-breaker coordinator. No clock, no randomness, no I/O: time comes in as
//! [`TimestampMs`] values and decisions come out as values.
//!
//! Modules, one main type each:
//!
//! - `key` — [`BreakerKey`], `scope/name`.
//! - `scope` — [`Scope`], the calling service and the unit of tiers.
//! - `instance` — [`InstanceId`], one reporting SDK process.
//! - `error` — [`ValidationError`], naming the field and the rule.
//! - `command_error` — [`CommandError`], why a command changed nothing.
//! - `policy` — [`Policy`] and [`WindowSpec`], thresholds with defaults and ranges.
//! - `policy_serde` — how policies are stored, and how older ones load.
//! - `policy_target` — [`PolicyTarget`], a key or a scope default.
//! - `policy_file` — [`parse_policy_toml`], [`parse_policy_json`]: TOML/JSON policy files.
//! - `sketch` — [`LatencySketch`], a mergeable latency histogram.
//! - `delta` — [`Delta`], one instance's outcomes for one breaker.
//! - `fleet_retries` — [`FleetRetries`], a breaker's fleet-wide retry figures and when to push them.
//! - `confidence` — [`Confidence`], the freshest span's Wilson test (exact integers).
//! - `window` — [`Window`], a breaker's sliding window (time or count).
//! - `window_span` — [`FreshSpan`], the shortest run of newest calls holding `min_calls`.
//! - `window_serde` — how windows are stored, and how older snapshots' windows load.
//! - `breaker_state` — [`BreakerState`], [`OverrideMode`], [`Transition`] and friends.
//! - `breaker` — [`Breaker`], the state machine (its trip rule in `breaker/trip_rule`).
//! - `local` — [`LocalBreaker`], the SDK's local fallback breaker.
//! - `tier` — [`Tier`], degradation tiers 1–5.
//! - `tier_rules` — [`TierRules`], a scope's rules and feature flags.
//! - `scope_tier` — [`ScopeTier`], a scope's tier machine with hysteresis and pin.
//! - `actor` — [`Actor`], who issued a command.
//! - `command` — [`Command`] and [`Envelope`], the log payload.
//! - `request_trace` — [`RequestTrace`] and [`TraceParent`]: request ids and W3C trace context.
//! - [`stored_layout`] — which stored layout a record being decoded was written in.
//! - `tick_codec` — the packed encoding of a tick's deltas (interned ids, varints).
//! - `tick_deltas` — a tick's deltas with that encoding computed once per entry.
//! - `settings` — [`ClusterSettings`] and [`Slo`].
//! - `audit` — [`AuditLog`], every decision with who, when and why.
//! - `sla` — [`SlaReport`], hourly SLA aggregates and reports.
//! - `state` — [`CoordinatorState`], the replicated state machine and its one `apply`.
//! - `plant` — simulation-only planted bugs and observation hooks (off, and free, in production).

mod actor;
mod audit;
mod breaker;
mod breaker_state;
mod civil_date;
mod command;
mod command_error;
mod confidence;
mod delta;
mod error;
mod fleet_retries;
pub mod hash;
mod instance;
mod key;
mod local;
pub mod plant;
mod policy;
mod policy_file;
mod policy_serde;
mod policy_target;
mod request_trace;
mod scope;
mod scope_tier;
mod settings;
mod sketch;
pub mod sla;
mod sla_window;
mod state;
pub mod stored_layout;
pub mod tick_codec;
mod tick_deltas;
mod tier;
mod tier_rules;
mod window;
mod window_serde;
mod window_span;

pub use actor::Actor;
pub use audit::{
    AUDIT_QUERY_DEFAULT_LIMIT, AUDIT_QUERY_MAX_LIMIT, AuditEvent, AuditKind, AuditLog, AuditQuery,
};
pub use breaker::{Breaker, open_duration_ms};
pub use breaker_state::{BreakerState, OverrideMode, ProbeOutcome, Transition, TripMode};
pub use civil_date::{civil_from_days, utc_rfc3339_ms};
pub use command::{Command, Envelope};
pub use command_error::CommandError;
pub use confidence::Confidence;
pub use delta::{DELTA_COUNT_MAX, Delta};
pub use error::{
    OVERRIDE_FOR_MS_MAX, ValidationError, check_override_for_ms, check_reason,
    check_required_reason,
};
pub use fleet_retries::{FLEET_RETRIES_REPUSH_MS, FleetRetries};
pub use instance::{INSTANCE_ID_MAX_BYTES, InstanceId, InstanceIdHasher};
pub use key::{BREAKER_KEY_MAX_BYTES, BreakerKey};
pub use local::LocalBreaker;
pub use policy::{COUNT_MAX_AGE_MS_DEFAULT, Policy, WindowSpec, limits as policy_limits};
pub use policy_file::{POLICY_FILE_MAX_POLICIES, parse_policy_json, parse_policy_toml};
pub use policy_target::PolicyTarget;
pub use request_trace::{
    REQUEST_ID_MAX_BYTES, RequestIds, RequestTrace, TraceParent, validate_request_id,
};
pub use scope::{SCOPE_MAX_BYTES, Scope};
pub use scope_tier::ScopeTier;
pub use settings::{ClusterSettings, Slo};
pub use sketch::{LatencySketch, SKETCH_RELATIVE_ACCURACY, SketchBuckets};
pub use sla::{OpenEpisode, SLA_OBJECTIVES, SlaBreach, SlaReport};
pub use sla_window::SlaWindow;
pub use state::{
    Applied, ApplyContext, BreakerView, CoordinatorState, Effect, ScopeView, StateWithStoredIndexes,
};
pub use tick_deltas::TickDeltas;
pub use tier::Tier;
pub use tier_rules::{
    ConditionState, TierCondition, TierRule, TierRules, parse_tier_rules_json,
    parse_tier_rules_toml, validate_feature_name,
};
pub use window::{
    COUNT_WINDOW_MAX_CHUNKS, FRESH_SLOT_MIN_MS, FRESH_SLOTS_PER_BUCKET_MAX, RetryTotals, Window,
    WindowTotals,
};
pub use window_span::FreshSpan;

/// Milliseconds since the Unix epoch.
pub type TimestampMs = u64;

/// Maximum length of an operator-supplied reason, bytes.
pub const REASON_MAX_BYTES: usize = 512;
