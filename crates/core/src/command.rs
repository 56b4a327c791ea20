//! Commands: the payload of the replicated log.

use serde::{Deserialize, Serialize};

use crate::error::{check_reason, check_required_reason};
use crate::stored_layout::Layout;
use crate::{
    Actor, BreakerKey, ClusterSettings, Delta, InstanceId, OverrideMode, Policy, PolicyTarget,
    ProbeOutcome, RequestTrace, Scope, TickDeltas, Tier, TierRules, ValidationError,
};

/// One state-machine command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A [`Command::Tick`] in the field-by-field layout of logs written before ticks were
    /// packed: still read (and applied the same way), never written. It keeps the first
    /// variant index, so those entries decode unchanged.
    TickUnpacked {
        /// Per-breaker, per-instance deltas.
        deltas: Vec<Delta>,
    },
    /// Sets key policies and scope default policies, all or none (a policy file is one
    /// command, so a fleet never runs half of a file).
    PutPolicies {
        /// The subjects and their policies; targets are unique.
        policies: Vec<(PolicyTarget, Policy)>,
    },
    /// Removes a policy (breakers fall back to the scope default or the built-in default).
    DeletePolicy {
        /// The subject.
        target: PolicyTarget,
    },
    /// Sets an operator override; creates the breaker if it does not exist yet.
    SetOverride {
        /// The breaker.
        key: BreakerKey,
        /// The override.
        mode: OverrideMode,
        /// Why (audited).
        reason: String,
        /// When it ends, ms since the Unix epoch; must be in the future.
        expires_at_ms: Option<u64>,
    },
    /// Ends an override.
    ClearOverride {
        /// The breaker.
        key: BreakerKey,
        /// Why (audited).
        reason: String,
    },
    /// Restarts a breaker CLOSED with a fresh window, ending any override.
    ResetBreaker {
        /// The breaker.
        key: BreakerKey,
        /// Why (audited).
        reason: String,
    },
    /// Sets a scope's tier rules and features.
    PutTierRules {
        /// The rules (their scope is the subject).
        rules: TierRules,
    },
    /// Removes a scope's tier rules.
    DeleteTierRules {
        /// The scope.
        scope: Scope,
    },
    /// Pins a scope's tier.
    SetTierOverride {
        /// The scope.
        scope: Scope,
        /// The pinned tier.
        tier: Tier,
        /// Why (audited).
        reason: String,
        /// When the pin ends; must be in the future.
        expires_at_ms: Option<u64>,
    },
    /// Ends a tier pin.
    ClearTierOverride {
        /// The scope.
        scope: Scope,
        /// Why (audited).
        reason: String,
    },
    /// Asks for a probe permit (granted only in HALF_OPEN, within `probe_permits`).
    AcquireProbe {
        /// The breaker.
        key: BreakerKey,
        /// The asking instance.
        instance: InstanceId,
    },
    /// Returns a probe permit with its outcome.
    ReleaseProbe {
        /// The breaker.
        key: BreakerKey,
        /// The permit granted by `AcquireProbe`.
        permit_id: u64,
        /// How the probe went.
        outcome: ProbeOutcome,
    },
    /// Replaces the cluster settings.
    PutSettings {
        /// The new settings.
        settings: ClusterSettings,
    },
    /// Outcome deltas merged by the leader over one tick; also written with no deltas when a
    /// timed transition is due. Encoded packed ([`crate::tick_codec`]): a tick is most of the
    /// log's bytes. The last variant, so older variants keep their indices.
    Tick {
        /// Per-breaker, per-instance deltas (their packing computed once, [`TickDeltas`]).
        deltas: TickDeltas,
    },
}

/// A tick's deltas: at most `max_deltas_per_tick`, each valid.
fn validate_tick(deltas: &[Delta], settings: &ClusterSettings) -> Result<(), ValidationError> {
    if deltas.len() > settings.max_deltas_per_tick as usize {
        return Err(ValidationError::new(
            "deltas",
            format!(
                "at most {} deltas per tick, got {}",
                settings.max_deltas_per_tick,
                deltas.len()
            ),
        ));
    }
    for (i, d) in deltas.iter().enumerate() {
        d.validate()
            .map_err(|e| e.within(&format!("deltas[{i}]")))?;
    }
    Ok(())
}

impl Command {
    /// Stateless validation: every field in range. Checks that need the state (expiry in the
    /// future, unknown breaker, stale permit) happen in apply.
    pub fn validate(&self, settings: &ClusterSettings) -> Result<(), ValidationError> {
        match self {
            Command::Tick { deltas } => validate_tick(deltas, settings),
            Command::TickUnpacked { deltas } => validate_tick(deltas, settings),
            Command::PutPolicies { policies } => {
                if policies.is_empty() || policies.len() > crate::POLICY_FILE_MAX_POLICIES {
                    return Err(ValidationError::new(
                        "policies",
                        format!(
                            "between 1 and {} policies in one command, got {}",
                            crate::POLICY_FILE_MAX_POLICIES,
                            policies.len()
                        ),
                    ));
                }
                for (i, (target, policy)) in policies.iter().enumerate() {
                    if policies[..i].iter().any(|(t, _)| t == target) {
                        return Err(ValidationError::new(
                            format!("policies[{i}].target"),
                            format!("`{target}` appears more than once"),
                        ));
                    }
                    policy
                        .validate()
                        .map_err(|e| e.within(&format!("policies[{i}].policy")))?;
                }
                Ok(())
            }
            Command::DeletePolicy { .. } => Ok(()),
            Command::SetOverride { reason, .. } => check_required_reason("reason", reason),
            Command::SetTierOverride { reason, .. } => check_reason("reason", reason),
            Command::ClearOverride { reason, .. }
            | Command::ResetBreaker { reason, .. }
            | Command::ClearTierOverride { reason, .. } => check_reason("reason", reason),
            Command::PutTierRules { rules } => rules.validate(),
            Command::DeleteTierRules { .. }
            | Command::AcquireProbe { .. }
            | Command::ReleaseProbe { .. } => Ok(()),
            Command::PutSettings { settings } => settings.validate(),
        }
    }

    /// A short name for logs and metrics, e.g. `tick`, `set_override`.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Tick { .. } | Command::TickUnpacked { .. } => "tick",
            Command::PutPolicies { .. } => "put_policies",
            Command::DeletePolicy { .. } => "delete_policy",
            Command::SetOverride { .. } => "set_override",
            Command::ClearOverride { .. } => "clear_override",
            Command::ResetBreaker { .. } => "reset_breaker",
            Command::PutTierRules { .. } => "put_tier_rules",
            Command::DeleteTierRules { .. } => "delete_tier_rules",
            Command::SetTierOverride { .. } => "set_tier_override",
            Command::ClearTierOverride { .. } => "clear_tier_override",
            Command::AcquireProbe { .. } => "acquire_probe",
            Command::ReleaseProbe { .. } => "release_probe",
            Command::PutSettings { .. } => "put_settings",
        }
    }
}

/// A command with its issuer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope {
    /// Who issued it.
    pub actor: Actor,
    /// What to do.
    pub command: Command,
    /// The request that issued it (request id, trace context), when it came from one: every
    /// node's apply of the entry joins that trace, and its audit events name the request.
    pub trace: Option<RequestTrace>,
}

impl Envelope {
    /// Wraps a command issued outside any request.
    pub fn new(actor: Actor, command: Command) -> Self {
        Self {
            actor,
            command,
            trace: None,
        }
    }

    /// The same envelope, tied to the request `trace`.
    pub fn with_trace(mut self, trace: Option<RequestTrace>) -> Self {
        self.trace = trace;
        self
    }
}

/// Entries logged before envelopes carried a trace decode with none (see
/// [`crate::stored_layout`]).
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "Envelope")]
        struct BeforeRequestIds {
            actor: Actor,
            command: Command,
        }
        #[derive(Deserialize)]
        #[serde(rename = "Envelope")]
        struct Stored {
            actor: Actor,
            command: Command,
            #[serde(default)]
            trace: Option<RequestTrace>,
        }
        Ok(match crate::stored_layout::current() {
            Layout::BeforeRequestIds => {
                let old = BeforeRequestIds::deserialize(deserializer)?;
                Envelope::new(old.actor, old.command)
            }
            Layout::Current => {
                let s = Stored::deserialize(deserializer)?;
                Envelope::new(s.actor, s.command).with_trace(s.trace)
            }
        })
    }
}
