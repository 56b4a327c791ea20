//! `Tier` numbers and `TierRules` (rules and feature flags of a scope).

use std::collections::BTreeMap;

use switchyard_core::{
    BreakerState, ConditionState, Tier, TierCondition, TierRule, TierRules, ValidationError,
};

use super::state::{breaker_state_from_wire, breaker_state_to_wire};
use super::{parse_key, parse_scope, required, within};
use crate::admin as apb;

/// Decodes a tier number named `field`: 1..=5; 0 (unset) and anything above 5
/// are rejected.
pub fn tier_from_wire(value: u32, field: &str) -> Result<Tier, ValidationError> {
    u8::try_from(value)
        .ok()
        .and_then(|n| Tier::from_number(n).ok())
        .ok_or_else(|| ValidationError::new(field, format!("must be between 1 and 5, got {value}")))
}

/// The wire number of a tier, 1..=5.
pub fn tier_to_wire(tier: Tier) -> u32 {
    u32::from(tier.number())
}

fn condition_state_to_wire(state: ConditionState) -> i32 {
    breaker_state_to_wire(match state {
        ConditionState::Open => BreakerState::Open,
        ConditionState::HalfOpen => BreakerState::HalfOpen,
        ConditionState::ForcedOpen => BreakerState::ForcedOpen,
    })
}

fn condition_state_from_wire(value: i32, field: &str) -> Result<ConditionState, ValidationError> {
    match breaker_state_from_wire(value, field)? {
        BreakerState::Open => Ok(ConditionState::Open),
        BreakerState::HalfOpen => Ok(ConditionState::HalfOpen),
        BreakerState::ForcedOpen => Ok(ConditionState::ForcedOpen),
        other => Err(ValidationError::new(
            field,
            format!("must be OPEN, HALF_OPEN or FORCED_OPEN, got {other:?}"),
        )),
    }
}

impl From<&TierCondition> for apb::TierCondition {
    fn from(condition: &TierCondition) -> Self {
        use apb::tier_condition::Condition;
        let when = match *condition {
            TierCondition::BreakerState { state, .. } => {
                Condition::State(condition_state_to_wire(state))
            }
            TierCondition::P95LatencyAbove {
                p95_latency_ms_above,
                ..
            } => Condition::P95LatencyMsAbove(p95_latency_ms_above),
            TierCondition::FailureRateAbove {
                failure_rate_above, ..
            } => Condition::FailureRateAbove(failure_rate_above),
        };
        apb::TierCondition {
            breaker: condition.breaker().to_string(),
            condition: Some(when),
        }
    }
}

/// Paths are relative to the condition (`breaker`, `condition`, `state`).
impl TryFrom<apb::TierCondition> for TierCondition {
    type Error = ValidationError;

    fn try_from(c: apb::TierCondition) -> Result<Self, Self::Error> {
        use apb::tier_condition::Condition;
        let breaker = parse_key(&c.breaker, "breaker")?;
        Ok(
            match required(
                c.condition,
                "condition", // one of state | p95_latency_ms_above | failure_rate_above
            )? {
                Condition::State(state) => TierCondition::BreakerState {
                    breaker,
                    state: condition_state_from_wire(state, "state")?,
                },
                Condition::P95LatencyMsAbove(p95_latency_ms_above) => {
                    TierCondition::P95LatencyAbove {
                        breaker,
                        p95_latency_ms_above,
                    }
                }
                Condition::FailureRateAbove(failure_rate_above) => {
                    TierCondition::FailureRateAbove {
                        breaker,
                        failure_rate_above,
                    }
                }
            },
        )
    }
}

impl From<&TierRule> for apb::TierRule {
    fn from(rule: &TierRule) -> Self {
        apb::TierRule {
            when: Some((&rule.when).into()),
            tier: tier_to_wire(rule.tier),
        }
    }
}

/// Paths are relative to the rule (`when.breaker`, `tier`).
impl TryFrom<apb::TierRule> for TierRule {
    type Error = ValidationError;

    fn try_from(r: apb::TierRule) -> Result<Self, Self::Error> {
        let when =
            TierCondition::try_from(required(r.when, "when")?).map_err(|e| within(e, "when"))?;
        let tier = tier_from_wire(r.tier, "tier")?;
        Ok(TierRule { when, tier })
    }
}

impl From<&TierRules> for apb::TierRules {
    fn from(rules: &TierRules) -> Self {
        apb::TierRules {
            scope: rules.scope.to_string(),
            recover_after_ms: rules.recover_after_ms,
            rules: rules.rules.iter().map(apb::TierRule::from).collect(),
            features: rules
                .features
                .iter()
                .map(|(name, tier)| (name.clone(), tier_to_wire(*tier)))
                .collect(),
        }
    }
}

/// Validates with [`TierRules::validate`]. Paths are relative to the rules
/// (`scope`, `rules[2].when.breaker`, `features.ml_fraud`).
impl TryFrom<apb::TierRules> for TierRules {
    type Error = ValidationError;

    fn try_from(r: apb::TierRules) -> Result<Self, Self::Error> {
        let scope = parse_scope(&r.scope, "scope")?;
        let mut rules = Vec::with_capacity(r.rules.len());
        for (i, rule) in r.rules.into_iter().enumerate() {
            rules.push(TierRule::try_from(rule).map_err(|e| within(e, &format!("rules[{i}]")))?);
        }
        let mut features = BTreeMap::new();
        for (name, tier) in r.features {
            let tier = tier_from_wire(tier, &format!("features.{name}"))?;
            features.insert(name, tier);
        }
        let rules = TierRules {
            scope,
            recover_after_ms: r.recover_after_ms,
            rules,
            features,
        };
        // Core names the list `rule` (as in rule files); on the wire it is `rules`.
        rules.validate().map_err(|mut e| {
            if let Some(rest) = e.field.strip_prefix("rule") {
                e.field = format!("rules{rest}");
            }
            e
        })?;
        Ok(rules)
    }
}
