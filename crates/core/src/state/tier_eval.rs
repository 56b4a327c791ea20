//! Tier evaluation: what the scopes' rules demand, with hysteresis and pin expiry.

use std::collections::BTreeMap;

use super::CoordinatorState;
use super::audit_sink::{Sink, Stamp};
use super::breaker_entry::BreakerEntry;
use super::effect::Effect;
use crate::scope_tier::ScopeTier;
use crate::{
    Actor, AuditKind, BreakerKey, BreakerState, ConditionState, Scope, Tier, TierCondition,
    TierRules,
};

/// The tier the rules demand now, and why.
pub(super) fn rules_demand(
    rules: &TierRules,
    breakers: &BTreeMap<BreakerKey, BreakerEntry>,
    now_ms: u64,
) -> (Tier, String) {
    let mut demand = Tier::Full;
    let mut why = "no rule demands a worse tier".to_owned();
    for (i, rule) in rules.rules.iter().enumerate() {
        if rule.tier <= demand {
            continue;
        }
        let Some(entry) = breakers.get(rule.when.breaker()) else {
            continue;
        };
        let b = &entry.breaker;
        let holds = match &rule.when {
            TierCondition::BreakerState { state, .. } => {
                let want = match state {
                    ConditionState::Open => BreakerState::Open,
                    ConditionState::HalfOpen => BreakerState::HalfOpen,
                    ConditionState::ForcedOpen => BreakerState::ForcedOpen,
                };
                b.state() == want
            }
            TierCondition::P95LatencyAbove {
                p95_latency_ms_above,
                ..
            } => b
                .window_latency(now_ms)
                .quantile_us(0.95)
                .is_some_and(|p95| p95 > p95_latency_ms_above.saturating_mul(1000)),
            TierCondition::FailureRateAbove {
                failure_rate_above, ..
            } => {
                let t = b.window_totals(now_ms);
                t.calls > 0
                    && t.calls >= u64::from(b.policy().min_calls)
                    && u128::from(t.failures) * 100
                        > u128::from(*failure_rate_above) * u128::from(t.calls)
            }
        };
        if holds {
            demand = rule.tier;
            why = format!(
                "{} (rule {} demands {})",
                rule.when,
                i + 1,
                rule.tier.as_str()
            );
        }
    }
    (demand, why)
}

/// One scope's tier step: pin expiry, else the rules' demand with hysteresis (FULL at once
/// without rules).
pub(super) fn evaluate_tier(
    scope: &Scope,
    st: &mut ScopeTier,
    rules: Option<&TierRules>,
    breakers: &BTreeMap<BreakerKey, BreakerEntry>,
    sink: &mut Sink<'_>,
) {
    let stamp = sink.stamp;
    let now_ms = stamp.now_ms;
    if st.override_tier().is_some() {
        if st.pinned_at(now_ms) {
            return;
        }
        let (demand, why) = rules.map_or((Tier::Full, "no tier rules".to_owned()), |r| {
            rules_demand(r, breakers, now_ms)
        });
        let text = format!("tier override expired; {why}");
        let (from, change) = st.unpin(now_ms, demand, text.clone());
        match change {
            Some(c) => sink.tier(scope, st, c, &Actor::Policy, AuditKind::TierOverride),
            None => {
                sink.audit.push(
                    stamp
                        .event(AuditKind::TierOverride, Actor::Policy, scope.as_str())
                        .before(from.as_str())
                        .after(from.as_str())
                        .reason(text),
                );
                st.updated_index = stamp.index;
            }
        }
        return;
    }
    let change = match rules {
        Some(r) => {
            let (demand, why) = rules_demand(r, breakers, now_ms);
            st.apply_demand(now_ms, demand, &why, r.recover_after_ms)
        }
        None => st.force(now_ms, Tier::Full, "no tier rules"),
    };
    if let Some(c) = change {
        sink.tier(scope, st, c, &Actor::Policy, AuditKind::TierChange);
    }
}

impl CoordinatorState {
    /// Re-evaluates the scopes in `tier_scopes` in scope order, then drops those left at
    /// rest without rules (evaluating them again would change nothing).
    pub(super) fn evaluate_tiers(&mut self, stamp: &Stamp, effects: &mut Vec<Effect>) {
        let Self {
            scopes,
            tier_rules,
            breakers,
            audit,
            tier_scopes,
            ..
        } = self;
        let mut sink = Sink {
            audit,
            effects,
            stamp,
        };
        tier_scopes.retain(|scope| {
            let Some(st) = scopes.get_mut(scope) else {
                debug_assert!(false, "tier scope `{scope}` exists");
                return false;
            };
            let rules = tier_rules.get(scope);
            evaluate_tier(scope, st, rules, breakers, &mut sink);
            rules.is_some() || !st.at_rest()
        });
    }
}
