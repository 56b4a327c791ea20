//! Decisions pushed to SDKs (`BreakerDecision`, `ScopeDecision`, `WatchEvent`)
//! and the operator's richer views (`BreakerInfo`, `ScopeInfo`).
//!
//! The SDK side decodes into small plain structs ([`DecisionUpdate`],
//! [`ScopeUpdate`], [`WatchUpdate`]) rather than core's state-machine views:
//! the SDK follows decisions, it does not recompute them.

use std::collections::BTreeMap;

use switchyard_core::{
    BreakerKey, BreakerState, BreakerView, FleetRetries, Policy, Scope, ScopeView, Tier,
    ValidationError, validate_feature_name,
};

use super::policy::policy_at;
use super::state::{breaker_state_from_wire, breaker_state_to_wire};
use super::tier::{tier_from_wire, tier_to_wire};
use super::{parse_key, parse_scope, required, within};
use crate::admin as apb;
use crate::client as pb;

/// The cluster's decision for one breaker, as an SDK receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionUpdate {
    /// The breaker.
    pub key: BreakerKey,
    /// Its state.
    pub state: BreakerState,
    /// Why it is in this state.
    pub reason: String,
    /// When it entered this state, Unix ms.
    pub since_ms: u64,
    /// OPEN: when it becomes HALF_OPEN, Unix ms.
    pub open_until_ms: Option<u64>,
    /// Operator override: when it expires, Unix ms (`None` = until cleared).
    pub override_expires_at_ms: Option<u64>,
    /// HALF_OPEN: permits granted and not yet returned or expired.
    pub probe_permits_in_use: u32,
    /// The effective policy (also used by the SDK's local fallback breaker).
    pub policy: Policy,
    /// The fleet's retry figures over the window.
    pub fleet_retries: FleetRetries,
}

impl From<&FleetRetries> for pb::FleetRetries {
    fn from(f: &FleetRetries) -> Self {
        pb::FleetRetries {
            first_attempts: f.first_attempts,
            retries: f.retries,
            instances: f.instances,
            window_ms: f.window_ms,
        }
    }
}

/// Any figures are acceptable: they are counts the SDK divides with care.
impl From<pb::FleetRetries> for FleetRetries {
    fn from(f: pb::FleetRetries) -> Self {
        FleetRetries {
            first_attempts: f.first_attempts,
            retries: f.retries,
            instances: f.instances,
            window_ms: f.window_ms,
        }
    }
}

impl From<&DecisionUpdate> for pb::BreakerDecision {
    fn from(d: &DecisionUpdate) -> Self {
        pb::BreakerDecision {
            key: d.key.to_string(),
            state: breaker_state_to_wire(d.state),
            reason: d.reason.clone(),
            since_ms: d.since_ms,
            open_until_ms: d.open_until_ms,
            override_expires_at_ms: d.override_expires_at_ms,
            probe_permits_in_use: d.probe_permits_in_use,
            policy: Some((&d.policy).into()),
            fleet_retries: Some((&d.fleet_retries).into()),
        }
    }
}

/// Paths are relative to the decision (`key`, `state`, `policy.window`).
impl TryFrom<pb::BreakerDecision> for DecisionUpdate {
    type Error = ValidationError;

    fn try_from(d: pb::BreakerDecision) -> Result<Self, Self::Error> {
        Ok(DecisionUpdate {
            key: parse_key(&d.key, "key")?,
            state: breaker_state_from_wire(d.state, "state")?,
            reason: d.reason,
            since_ms: d.since_ms,
            open_until_ms: d.open_until_ms,
            override_expires_at_ms: d.override_expires_at_ms,
            probe_permits_in_use: d.probe_permits_in_use,
            policy: policy_at(d.policy, "policy")?,
            fleet_retries: required(d.fleet_retries, "fleet_retries")?.into(),
        })
    }
}

/// The cluster's decision for one scope, as an SDK receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeUpdate {
    /// The scope.
    pub scope: Scope,
    /// Its current tier.
    pub tier: Tier,
    /// Why it is in this tier.
    pub reason: String,
    /// Feature flags evaluated at `tier`: name -> enabled.
    pub features: BTreeMap<String, bool>,
    /// The tier an operator pinned, if any.
    pub override_tier: Option<Tier>,
    /// When the tier was entered, Unix ms.
    pub since_ms: u64,
    /// Operator override: when it expires, Unix ms (`None` = until cleared).
    pub override_expires_at_ms: Option<u64>,
}

impl ScopeUpdate {
    /// Whether `feature` is on; `None` when the scope declares no such feature.
    pub fn feature_enabled(&self, feature: &str) -> Option<bool> {
        self.features.get(feature).copied()
    }
}

impl From<&ScopeUpdate> for pb::ScopeDecision {
    fn from(s: &ScopeUpdate) -> Self {
        pb::ScopeDecision {
            scope: s.scope.to_string(),
            tier: tier_to_wire(s.tier),
            reason: s.reason.clone(),
            features: s.features.clone(),
            override_tier: s.override_tier.map(tier_to_wire),
            since_ms: s.since_ms,
            override_expires_at_ms: s.override_expires_at_ms,
        }
    }
}

/// Paths are relative to the decision (`scope`, `tier`, `features.ml_fraud`).
impl TryFrom<pb::ScopeDecision> for ScopeUpdate {
    type Error = ValidationError;

    fn try_from(s: pb::ScopeDecision) -> Result<Self, Self::Error> {
        for name in s.features.keys() {
            validate_feature_name(name)?;
        }
        Ok(ScopeUpdate {
            scope: parse_scope(&s.scope, "scope")?,
            tier: tier_from_wire(s.tier, "tier")?,
            reason: s.reason,
            features: s.features,
            override_tier: s
                .override_tier
                .map(|t| tier_from_wire(t, "override_tier"))
                .transpose()?,
            since_ms: s.since_ms,
            override_expires_at_ms: s.override_expires_at_ms,
        })
    }
}

/// What one watch event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchUpdate {
    /// Full state of the watched scopes; replaces everything known before.
    Snapshot {
        /// Every breaker of the watched scopes.
        breakers: Vec<DecisionUpdate>,
        /// Every scope watched that has a tier.
        scopes: Vec<ScopeUpdate>,
    },
    /// One breaker changed.
    Breaker(DecisionUpdate),
    /// One scope changed.
    Scope(ScopeUpdate),
    /// Nothing changed; the stream is alive.
    Heartbeat {
        /// The node's clock, Unix ms (informational).
        now_ms: u64,
    },
}

/// A validated `WatchEvent`: the update and the applied index it reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// The applied log index; an SDK ignores events older than what it has.
    pub applied_index: u64,
    /// The node that sent the event.
    pub node_id: u64,
    /// The node's Raft term when it sent the event.
    pub term: u64,
    /// The content.
    pub update: WatchUpdate,
}

impl From<&WatchedEvent> for pb::WatchEvent {
    fn from(e: &WatchedEvent) -> Self {
        use pb::watch_event::Event;
        let event = match &e.update {
            WatchUpdate::Snapshot { breakers, scopes } => Event::Snapshot(pb::DecisionSnapshot {
                breakers: breakers.iter().map(pb::BreakerDecision::from).collect(),
                scopes: scopes.iter().map(pb::ScopeDecision::from).collect(),
            }),
            WatchUpdate::Breaker(d) => Event::Breaker(d.into()),
            WatchUpdate::Scope(s) => Event::Scope(s.into()),
            WatchUpdate::Heartbeat { now_ms } => {
                Event::Heartbeat(pb::Heartbeat { now_ms: *now_ms })
            }
        };
        pb::WatchEvent {
            applied_index: e.applied_index,
            node_id: e.node_id,
            term: e.term,
            event: Some(event),
        }
    }
}

/// Paths: `event`, `snapshot.breakers[3].policy.window`, `breaker.key`, `scope.tier`.
impl TryFrom<pb::WatchEvent> for WatchedEvent {
    type Error = ValidationError;

    fn try_from(e: pb::WatchEvent) -> Result<Self, Self::Error> {
        use pb::watch_event::Event;
        let update = match required(e.event, "event")? {
            Event::Snapshot(snapshot) => {
                let mut breakers = Vec::with_capacity(snapshot.breakers.len());
                for (i, d) in snapshot.breakers.into_iter().enumerate() {
                    breakers.push(
                        DecisionUpdate::try_from(d)
                            .map_err(|e| within(e, &format!("snapshot.breakers[{i}]")))?,
                    );
                }
                let mut scopes = Vec::with_capacity(snapshot.scopes.len());
                for (i, s) in snapshot.scopes.into_iter().enumerate() {
                    scopes.push(
                        ScopeUpdate::try_from(s)
                            .map_err(|e| within(e, &format!("snapshot.scopes[{i}]")))?,
                    );
                }
                WatchUpdate::Snapshot { breakers, scopes }
            }
            Event::Breaker(d) => {
                WatchUpdate::Breaker(DecisionUpdate::try_from(d).map_err(|e| within(e, "breaker"))?)
            }
            Event::Scope(s) => {
                WatchUpdate::Scope(ScopeUpdate::try_from(s).map_err(|e| within(e, "scope"))?)
            }
            Event::Heartbeat(h) => WatchUpdate::Heartbeat { now_ms: h.now_ms },
        };
        Ok(WatchedEvent {
            applied_index: e.applied_index,
            node_id: e.node_id,
            term: e.term,
            update,
        })
    }
}

// ------------------------------------------------------------------ views

impl From<&BreakerView> for DecisionUpdate {
    fn from(v: &BreakerView) -> Self {
        DecisionUpdate {
            key: v.key.clone(),
            state: v.state,
            reason: v.reason.clone(),
            since_ms: v.since_ms,
            open_until_ms: v.open_until_ms,
            override_expires_at_ms: v.override_expires_at_ms,
            probe_permits_in_use: v.probe_permits_in_use,
            policy: v.policy.clone(),
            fleet_retries: v.fleet_retries,
        }
    }
}

impl From<&BreakerView> for pb::BreakerDecision {
    fn from(v: &BreakerView) -> Self {
        (&DecisionUpdate::from(v)).into()
    }
}

impl From<&BreakerView> for apb::BreakerInfo {
    fn from(v: &BreakerView) -> Self {
        apb::BreakerInfo {
            decision: Some(v.into()),
            window_calls: v.window_calls,
            window_failures: v.window_failures,
            window_slow: v.window_slow,
            window_instances: v.window_instances,
            consecutive_opens: v.consecutive_opens,
            updated_index: v.updated_index,
        }
    }
}

/// For readers of breaker infos (CLI, dashboard, tests). Paths: `decision`,
/// `decision.key`, `decision.policy.window`.
impl TryFrom<apb::BreakerInfo> for BreakerView {
    type Error = ValidationError;

    fn try_from(i: apb::BreakerInfo) -> Result<Self, Self::Error> {
        let d = DecisionUpdate::try_from(required(i.decision, "decision")?)
            .map_err(|e| within(e, "decision"))?;
        Ok(BreakerView {
            key: d.key,
            state: d.state,
            reason: d.reason,
            since_ms: d.since_ms,
            open_until_ms: d.open_until_ms,
            override_expires_at_ms: d.override_expires_at_ms,
            probe_permits_in_use: d.probe_permits_in_use,
            policy: d.policy,
            window_calls: i.window_calls,
            window_failures: i.window_failures,
            window_slow: i.window_slow,
            window_instances: i.window_instances,
            consecutive_opens: i.consecutive_opens,
            updated_index: i.updated_index,
            fleet_retries: d.fleet_retries,
        })
    }
}

impl From<&ScopeView> for ScopeUpdate {
    fn from(v: &ScopeView) -> Self {
        ScopeUpdate {
            scope: v.scope.clone(),
            tier: v.tier,
            reason: v.reason.clone(),
            features: v.features.clone(),
            override_tier: v.override_tier,
            since_ms: v.since_ms,
            override_expires_at_ms: v.override_expires_at_ms,
        }
    }
}

impl From<&ScopeView> for pb::ScopeDecision {
    fn from(v: &ScopeView) -> Self {
        (&ScopeUpdate::from(v)).into()
    }
}

impl From<&ScopeView> for apb::ScopeInfo {
    fn from(v: &ScopeView) -> Self {
        apb::ScopeInfo {
            decision: Some(v.into()),
            updated_index: v.updated_index,
        }
    }
}

/// For readers of scope infos. Paths: `decision`, `decision.tier`.
impl TryFrom<apb::ScopeInfo> for ScopeView {
    type Error = ValidationError;

    fn try_from(i: apb::ScopeInfo) -> Result<Self, Self::Error> {
        let s = ScopeUpdate::try_from(required(i.decision, "decision")?)
            .map_err(|e| within(e, "decision"))?;
        Ok(ScopeView {
            scope: s.scope,
            tier: s.tier,
            reason: s.reason,
            since_ms: s.since_ms,
            override_tier: s.override_tier,
            override_expires_at_ms: s.override_expires_at_ms,
            features: s.features,
            updated_index: i.updated_index,
        })
    }
}
