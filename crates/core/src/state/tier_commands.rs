//! The tier commands: tier rules and tier overrides (pins).

use super::CoordinatorState;
use super::audit_sink::{Sink, Stamp};
use super::effect::Effect;
use super::tier_eval::rules_demand;
use crate::scope_tier::ScopeTier;
use crate::{AuditKind, Scope, Tier, TierRules};

impl CoordinatorState {
    /// `PutTierRules`: stores a scope's rules; the scope is evaluated from now on.
    pub(super) fn put_tier_rules(
        &mut self,
        stamp: &Stamp,
        rules: &TierRules,
        effects: &mut Vec<Effect>,
    ) {
        let now_ms = stamp.now_ms;
        let actor = &stamp.actor;
        let to = summary(rules);
        let previous = self.tier_rules.insert(rules.scope.clone(), rules.clone());
        let from = previous.map_or_else(|| "none".to_owned(), |p| summary(&p));
        self.audit.push(
            stamp
                .event(AuditKind::TierRules, actor.clone(), rules.scope.as_str())
                .before(from)
                .after(to)
                .reason("tier rules put"),
        );
        if !self.scopes.contains_key(&rules.scope) {
            self.scopes
                .insert(rules.scope.clone(), ScopeTier::new(now_ms));
        }
        self.tier_scopes.insert(rules.scope.clone());
        effects.push(Effect::TierRulesChanged {
            scope: rules.scope.clone(),
        });
    }

    /// `DeleteTierRules`.
    pub(super) fn delete_tier_rules(
        &mut self,
        stamp: &Stamp,
        scope: &Scope,
        effects: &mut Vec<Effect>,
    ) {
        let actor = &stamp.actor;
        if let Some(p) = self.tier_rules.remove(scope) {
            let from = summary(&p);
            self.audit.push(
                stamp
                    .event(AuditKind::TierRules, actor.clone(), scope.as_str())
                    .before(from)
                    .after("none")
                    .reason("tier rules deleted"),
            );
        }
        effects.push(Effect::TierRulesChanged {
            scope: scope.clone(),
        });
    }

    /// `SetTierOverride`: pins a scope's tier.
    pub(super) fn set_tier_override(
        &mut self,
        stamp: &Stamp,
        scope: &Scope,
        tier: Tier,
        reason: &str,
        expires_at_ms: Option<u64>,
        effects: &mut Vec<Effect>,
    ) {
        let now_ms = stamp.now_ms;
        let st = self
            .scopes
            .entry(scope.clone())
            .or_insert_with(|| ScopeTier::new(now_ms));
        self.tier_scopes.insert(scope.clone());
        let outcome = st.pin(now_ms, tier, reason, expires_at_ms);
        let reason = st.reason().to_owned();
        let mut sink = Sink {
            audit: &mut self.audit,
            effects,
            stamp,
        };
        sink.tier_override(scope, st, outcome, tier, &reason);
    }

    /// `ClearTierOverride`: the rules decide again.
    pub(super) fn clear_tier_override(
        &mut self,
        stamp: &Stamp,
        scope: &Scope,
        reason: &str,
        effects: &mut Vec<Effect>,
    ) {
        let now_ms = stamp.now_ms;
        let demand = self
            .tier_rules
            .get(scope)
            .map(|r| rules_demand(r, &self.breakers, now_ms));
        let (tier, why) = demand.unwrap_or((Tier::Full, "no tier rules".to_owned()));
        if let Some(st) = self.scopes.get_mut(scope) {
            let text = if reason.is_empty() {
                format!("tier override cleared; {why}")
            } else {
                format!("tier override cleared: {reason}; {why}")
            };
            let outcome = st.unpin(now_ms, tier, text.clone());
            let kept = outcome.0;
            let mut sink = Sink {
                audit: &mut self.audit,
                effects,
                stamp,
            };
            sink.tier_override(scope, st, outcome, kept, &text);
        }
    }
}

/// Tier rules in a few words, for audit events.
fn summary(rules: &TierRules) -> String {
    format!(
        "{} rules, {} features",
        rules.rules.len(),
        rules.features.len()
    )
}
