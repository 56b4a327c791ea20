//! Validated requests: each wire request that the server acts on, decoded into
//! a plain struct of domain types. Field paths are those of the request
//! (`key`, `policies[2].policy.window`, `rules.rules[0].tier`).
//!
//! The actor of an admin write is deliberately absent: the server takes it
//! from request metadata ([`crate::ACTOR_METADATA_KEY`]), never from the body.

use std::collections::BTreeSet;

use switchyard_core::{
    BreakerKey, ClusterSettings, InstanceId, OverrideMode, Policy, PolicyTarget, ProbeOutcome,
    Scope, SlaWindow, Tier, TierRules, ValidationError, check_override_for_ms, check_reason,
    check_required_reason,
};

use super::policy::target_at;
use super::sla::sla_window_from_wire;
use super::state::{override_mode_from_wire, probe_outcome_from_wire};
use super::tier::tier_from_wire;
use super::{parse_instance, parse_key, parse_scope, required, within};
use crate::admin as apb;
use crate::client as pb;

/// Maximum length of a member address (`host:port`) in bytes.
pub const MEMBER_ADDR_MAX_BYTES: usize = 255;

fn reason(reason: String) -> Result<String, ValidationError> {
    check_reason("reason", &reason)?;
    Ok(reason)
}

fn for_ms(value: Option<u64>) -> Result<Option<u64>, ValidationError> {
    if let Some(for_ms) = value {
        check_override_for_ms("for_ms", for_ms)?;
    }
    Ok(value)
}

fn node_id(value: u64) -> Result<u64, ValidationError> {
    if value == 0 {
        return Err(ValidationError::new(
            "node_id",
            "must be set (node ids start at 1)",
        ));
    }
    Ok(value)
}

/// `SetOverrideRequest`: pin a breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOverride {
    /// The breaker.
    pub key: BreakerKey,
    /// The override.
    pub mode: OverrideMode,
    /// Why (audit log).
    pub reason: String,
    /// Expire after this long; `None` = until cleared.
    pub for_ms: Option<u64>,
}

impl TryFrom<apb::SetOverrideRequest> for SetOverride {
    type Error = ValidationError;

    fn try_from(r: apb::SetOverrideRequest) -> Result<Self, Self::Error> {
        Ok(SetOverride {
            key: parse_key(&r.key, "key")?,
            mode: override_mode_from_wire(r.mode, "mode")?,
            reason: {
                check_required_reason("reason", &r.reason)?;
                r.reason
            },
            for_ms: for_ms(r.for_ms)?,
        })
    }
}

/// A request naming one breaker and a reason: `ClearOverrideRequest`,
/// `ResetBreakerRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAction {
    /// The breaker.
    pub key: BreakerKey,
    /// Why (audit log).
    pub reason: String,
}

impl TryFrom<apb::ClearOverrideRequest> for KeyAction {
    type Error = ValidationError;

    fn try_from(r: apb::ClearOverrideRequest) -> Result<Self, Self::Error> {
        Ok(KeyAction {
            key: parse_key(&r.key, "key")?,
            reason: reason(r.reason)?,
        })
    }
}

impl TryFrom<apb::ResetBreakerRequest> for KeyAction {
    type Error = ValidationError;

    fn try_from(r: apb::ResetBreakerRequest) -> Result<Self, Self::Error> {
        Ok(KeyAction {
            key: parse_key(&r.key, "key")?,
            reason: reason(r.reason)?,
        })
    }
}

/// `PutPoliciesRequest`: an atomic batch, targets unique, every policy valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutPolicies {
    /// The policies, in request order.
    pub policies: Vec<(PolicyTarget, Policy)>,
    /// Why (audit log).
    pub reason: String,
}

/// Maximum policies in one `PutPolicies` batch (same as a policy file).
pub const PUT_POLICIES_MAX: usize = switchyard_core::POLICY_FILE_MAX_POLICIES;

impl TryFrom<apb::PutPoliciesRequest> for PutPolicies {
    type Error = ValidationError;

    fn try_from(r: apb::PutPoliciesRequest) -> Result<Self, Self::Error> {
        if r.policies.is_empty() || r.policies.len() > PUT_POLICIES_MAX {
            return Err(ValidationError::new(
                "policies",
                format!(
                    "must hold 1 to {PUT_POLICIES_MAX} policies, got {}",
                    r.policies.len()
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut policies = Vec::with_capacity(r.policies.len());
        for (i, entry) in r.policies.into_iter().enumerate() {
            let path = format!("policies[{i}]");
            let (target, policy) =
                <(PolicyTarget, Policy)>::try_from(entry).map_err(|e| within(e, &path))?;
            if !seen.insert(target.clone()) {
                return Err(ValidationError::new(
                    format!("{path}.target"),
                    format!("duplicate target {target} in one batch"),
                ));
            }
            policies.push((target, policy));
        }
        Ok(PutPolicies {
            policies,
            reason: reason(r.reason)?,
        })
    }
}

/// `DeletePolicyRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletePolicy {
    /// The policy to delete.
    pub target: PolicyTarget,
    /// Why (audit log).
    pub reason: String,
}

impl TryFrom<apb::DeletePolicyRequest> for DeletePolicy {
    type Error = ValidationError;

    fn try_from(r: apb::DeletePolicyRequest) -> Result<Self, Self::Error> {
        Ok(DeletePolicy {
            target: target_at(r.target, "target")?,
            reason: reason(r.reason)?,
        })
    }
}

/// `SetTierOverrideRequest`: pin a scope's tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetTierOverride {
    /// The scope.
    pub scope: Scope,
    /// The pinned tier.
    pub tier: Tier,
    /// Why (audit log).
    pub reason: String,
    /// Expire after this long; `None` = until cleared.
    pub for_ms: Option<u64>,
}

impl TryFrom<apb::SetTierOverrideRequest> for SetTierOverride {
    type Error = ValidationError;

    fn try_from(r: apb::SetTierOverrideRequest) -> Result<Self, Self::Error> {
        Ok(SetTierOverride {
            scope: parse_scope(&r.scope, "scope")?,
            tier: tier_from_wire(r.tier, "tier")?,
            reason: reason(r.reason)?,
            for_ms: for_ms(r.for_ms)?,
        })
    }
}

/// A request naming one scope and a reason: `ClearTierOverrideRequest`,
/// `DeleteTierRulesRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeAction {
    /// The scope.
    pub scope: Scope,
    /// Why (audit log).
    pub reason: String,
}

impl TryFrom<apb::ClearTierOverrideRequest> for ScopeAction {
    type Error = ValidationError;

    fn try_from(r: apb::ClearTierOverrideRequest) -> Result<Self, Self::Error> {
        Ok(ScopeAction {
            scope: parse_scope(&r.scope, "scope")?,
            reason: reason(r.reason)?,
        })
    }
}

impl TryFrom<apb::DeleteTierRulesRequest> for ScopeAction {
    type Error = ValidationError;

    fn try_from(r: apb::DeleteTierRulesRequest) -> Result<Self, Self::Error> {
        Ok(ScopeAction {
            scope: parse_scope(&r.scope, "scope")?,
            reason: reason(r.reason)?,
        })
    }
}

/// `PutTierRulesRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutTierRules {
    /// The scope's new rules (replacing the old ones).
    pub rules: TierRules,
    /// Why (audit log).
    pub reason: String,
}

impl TryFrom<apb::PutTierRulesRequest> for PutTierRules {
    type Error = ValidationError;

    fn try_from(r: apb::PutTierRulesRequest) -> Result<Self, Self::Error> {
        let rules =
            TierRules::try_from(required(r.rules, "rules")?).map_err(|e| within(e, "rules"))?;
        Ok(PutTierRules {
            rules,
            reason: reason(r.reason)?,
        })
    }
}

/// `PutSettingsRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct PutSettings {
    /// The new settings (replacing the old ones).
    pub settings: ClusterSettings,
    /// Why (audit log).
    pub reason: String,
}

impl TryFrom<apb::PutSettingsRequest> for PutSettings {
    type Error = ValidationError;

    fn try_from(r: apb::PutSettingsRequest) -> Result<Self, Self::Error> {
        let settings = ClusterSettings::try_from(required(r.settings, "settings")?)
            .map_err(|e| within(e, "settings"))?;
        Ok(PutSettings {
            settings,
            reason: reason(r.reason)?,
        })
    }
}

/// `AddLearnerRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddLearner {
    /// The new member's node id (non-zero).
    pub node_id: u64,
    /// Its gRPC address, `host:port`.
    pub addr: String,
}

impl TryFrom<apb::AddLearnerRequest> for AddLearner {
    type Error = ValidationError;

    fn try_from(r: apb::AddLearnerRequest) -> Result<Self, Self::Error> {
        let node_id = node_id(r.node_id)?;
        let valid_port = r.addr.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
        if r.addr.len() > MEMBER_ADDR_MAX_BYTES
            || !valid_port
            || r.addr.chars().any(|c| c.is_whitespace())
        {
            return Err(ValidationError::new(
                "addr",
                format!(
                    "must be `host:port` (at most {MEMBER_ADDR_MAX_BYTES} bytes), got `{}`",
                    r.addr.escape_debug()
                ),
            ));
        }
        Ok(AddLearner {
            node_id,
            addr: r.addr,
        })
    }
}

/// `PromoteMemberRequest` / `RemoveMemberRequest`: the member's node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberAction {
    /// The member's node id (non-zero).
    pub node_id: u64,
}

impl TryFrom<apb::PromoteMemberRequest> for MemberAction {
    type Error = ValidationError;

    fn try_from(r: apb::PromoteMemberRequest) -> Result<Self, Self::Error> {
        Ok(MemberAction {
            node_id: node_id(r.node_id)?,
        })
    }
}

impl TryFrom<apb::RemoveMemberRequest> for MemberAction {
    type Error = ValidationError;

    fn try_from(r: apb::RemoveMemberRequest) -> Result<Self, Self::Error> {
        Ok(MemberAction {
            node_id: node_id(r.node_id)?,
        })
    }
}

/// `SlaReportRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaReportQuery {
    /// One breaker, or `None` for every breaker.
    pub key: Option<BreakerKey>,
    /// The window (empty on the wire = 24 h).
    pub window: SlaWindow,
    /// Answer from this node's applied state.
    pub local: bool,
}

impl TryFrom<apb::SlaReportRequest> for SlaReportQuery {
    type Error = ValidationError;

    fn try_from(r: apb::SlaReportRequest) -> Result<Self, Self::Error> {
        let key = if r.key.is_empty() {
            None
        } else {
            Some(parse_key(&r.key, "key")?)
        };
        Ok(SlaReportQuery {
            key,
            window: sla_window_from_wire(&r.window, "window")?,
            local: r.local,
        })
    }
}

/// `AcquireProbeRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireProbe {
    /// The HALF_OPEN breaker.
    pub key: BreakerKey,
    /// The asking instance.
    pub instance: InstanceId,
}

impl TryFrom<pb::AcquireProbeRequest> for AcquireProbe {
    type Error = ValidationError;

    fn try_from(r: pb::AcquireProbeRequest) -> Result<Self, Self::Error> {
        Ok(AcquireProbe {
            key: parse_key(&r.key, "key")?,
            instance: parse_instance(&r.instance, "instance")?,
        })
    }
}

/// `ReleaseProbeRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseProbe {
    /// The breaker.
    pub key: BreakerKey,
    /// The permit returned.
    pub permit_id: u64,
    /// What the trial call did.
    pub outcome: ProbeOutcome,
}

impl TryFrom<pb::ReleaseProbeRequest> for ReleaseProbe {
    type Error = ValidationError;

    fn try_from(r: pb::ReleaseProbeRequest) -> Result<Self, Self::Error> {
        Ok(ReleaseProbe {
            key: parse_key(&r.key, "key")?,
            permit_id: r.permit_id,
            outcome: probe_outcome_from_wire(r.outcome, "outcome")?,
        })
    }
}

/// Parses the `key` of a `GetBreakerRequest`.
pub fn get_breaker_key(r: &apb::GetBreakerRequest) -> Result<BreakerKey, ValidationError> {
    parse_key(&r.key, "key")
}

/// Parses the `target` of a `GetPolicyRequest`.
pub fn get_policy_target(r: apb::GetPolicyRequest) -> Result<PolicyTarget, ValidationError> {
    target_at(r.target, "target")
}

/// Parses the `scope` of a `GetTierRequest`.
pub fn get_tier_scope(r: &apb::GetTierRequest) -> Result<Scope, ValidationError> {
    parse_scope(&r.scope, "scope")
}

/// Parses the `scope` of a `GetTierRulesRequest`.
pub fn get_tier_rules_scope(r: &apb::GetTierRulesRequest) -> Result<Scope, ValidationError> {
    parse_scope(&r.scope, "scope")
}

/// Parses the optional `scope` filter of a `ListBreakersRequest` (empty = all)
/// and its `after_key` (empty = from the start).
pub fn list_breakers_filter(
    r: &apb::ListBreakersRequest,
) -> Result<(Option<Scope>, Option<BreakerKey>), ValidationError> {
    let scope = (!r.scope.is_empty())
        .then(|| parse_scope(&r.scope, "scope"))
        .transpose()?;
    let after = (!r.after_key.is_empty())
        .then(|| parse_key(&r.after_key, "after_key"))
        .transpose()?;
    Ok((scope, after))
}

/// Parses the `scopes` of a `WatchRequest` (empty = all scopes), naming
/// `scopes[i]` on error.
pub fn watch_scopes(r: &pb::WatchRequest) -> Result<BTreeSet<Scope>, ValidationError> {
    r.scopes
        .iter()
        .enumerate()
        .map(|(i, s)| parse_scope(s, &format!("scopes[{i}]")))
        .collect()
}
