//! Read-only views of the state: [`BreakerView`], [`ScopeView`], policies, SLA reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::CoordinatorState;
use super::breaker_entry::BreakerEntry;
use super::policy_commands::resolve_policy;
use crate::scope_tier::ScopeTier;
use crate::sla::{ReportInput, build_report};
use crate::{
    Breaker, BreakerKey, BreakerState, FleetRetries, Policy, PolicyTarget, Scope, SlaReport,
    SlaWindow, Tier, TierRules,
};

/// A read-only view of one breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerView {
    /// The breaker.
    pub key: BreakerKey,
    /// Effective state.
    pub state: BreakerState,
    /// Why.
    pub reason: String,
    /// When the state was entered.
    pub since_ms: u64,
    /// End of OPEN, if OPEN.
    pub open_until_ms: Option<u64>,
    /// End of the active override, if any.
    pub override_expires_at_ms: Option<u64>,
    /// Probe leases held.
    pub probe_permits_in_use: u32,
    /// Policy in force.
    pub policy: Policy,
    /// Completed calls in the window.
    pub window_calls: u64,
    /// Failures in the window.
    pub window_failures: u64,
    /// Slow calls in the window.
    pub window_slow: u64,
    /// Instances that reported in the window.
    pub window_instances: u32,
    /// Opens since the last close.
    pub consecutive_opens: u32,
    /// Log index of the last decision change.
    pub updated_index: u64,
    /// Fleet-wide first attempts and retries of retry-budgeted calls in the window.
    pub fleet_retries: FleetRetries,
}

/// A read-only view of one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeView {
    /// The scope.
    pub scope: Scope,
    /// Current tier.
    pub tier: Tier,
    /// Why.
    pub reason: String,
    /// When the tier was entered.
    pub since_ms: u64,
    /// Pinned tier, if any.
    pub override_tier: Option<Tier>,
    /// End of the pin.
    pub override_expires_at_ms: Option<u64>,
    /// Feature -> on.
    pub features: BTreeMap<String, bool>,
    /// Log index of the last tier change.
    pub updated_index: u64,
}

impl CoordinatorState {
    fn view(&self, entry: &BreakerEntry) -> BreakerView {
        let b = &entry.breaker;
        let totals = b.window_totals(self.now_ms);
        BreakerView {
            key: b.key().clone(),
            state: b.state(),
            reason: b.reason().to_owned(),
            since_ms: b.since_ms(),
            open_until_ms: b.open_until_ms(),
            override_expires_at_ms: b.override_expires_at_ms(),
            probe_permits_in_use: b.probe_permits_in_use(),
            policy: b.policy().clone(),
            window_calls: totals.calls,
            window_failures: totals.failures,
            window_slow: totals.slow,
            window_instances: b.live_instances(self.now_ms),
            consecutive_opens: b.consecutive_opens(),
            updated_index: entry.updated_index,
            fleet_retries: b.fleet_retries(self.now_ms),
        }
    }

    /// One breaker's view.
    pub fn breaker(&self, key: &BreakerKey) -> Option<BreakerView> {
        self.breakers.get(key).map(|e| self.view(e))
    }

    /// Every breaker's view, sorted by key.
    pub fn breakers(&self) -> Vec<BreakerView> {
        self.breakers.values().map(|e| self.view(e)).collect()
    }

    /// The underlying state machine of a breaker.
    pub fn breaker_machine(&self, key: &BreakerKey) -> Option<&Breaker> {
        self.breakers.get(key).map(|e| &e.breaker)
    }

    /// Number of breakers.
    pub fn breaker_count(&self) -> usize {
        self.breakers.len()
    }

    /// The policy for `key`: its own, else its scope's default, else [`Policy::default`].
    pub fn effective_policy(&self, key: &BreakerKey) -> Policy {
        resolve_policy(&self.key_policies, &self.scope_policies, key)
    }

    /// Every stored policy: scope defaults first, then key policies, each sorted.
    pub fn policies(&self) -> Vec<(PolicyTarget, Policy)> {
        let scopes = self
            .scope_policies
            .iter()
            .map(|(s, p)| (PolicyTarget::Scope(s.clone()), p.clone()));
        let keys = self
            .key_policies
            .iter()
            .map(|(k, p)| (PolicyTarget::Key(k.clone()), p.clone()));
        scopes.chain(keys).collect()
    }

    /// The stored policy for a target (not the effective one).
    pub fn policy(&self, target: &PolicyTarget) -> Option<&Policy> {
        match target {
            PolicyTarget::Key(k) => self.key_policies.get(k),
            PolicyTarget::Scope(s) => self.scope_policies.get(s),
        }
    }

    fn scope_view(&self, scope: &Scope, st: &ScopeTier) -> ScopeView {
        let features = self
            .tier_rules
            .get(scope)
            .map(|r| {
                r.features
                    .iter()
                    .map(|(name, &worst)| (name.clone(), st.tier() <= worst))
                    .collect()
            })
            .unwrap_or_default();
        ScopeView {
            scope: scope.clone(),
            tier: st.tier(),
            reason: st.reason().to_owned(),
            since_ms: st.since_ms(),
            override_tier: st.override_tier(),
            override_expires_at_ms: st.override_expires_at_ms(),
            features,
            updated_index: st.updated_index,
        }
    }

    /// One scope's view (scopes exist once they have a breaker, rules or a pin).
    pub fn scope(&self, scope: &Scope) -> Option<ScopeView> {
        self.scopes.get(scope).map(|st| self.scope_view(scope, st))
    }

    /// Every scope's view, sorted.
    pub fn scopes(&self) -> Vec<ScopeView> {
        self.scopes
            .iter()
            .map(|(s, st)| self.scope_view(s, st))
            .collect()
    }

    /// A scope's tier rules.
    pub fn tier_rules(&self, scope: &Scope) -> Option<&TierRules> {
        self.tier_rules.get(scope)
    }

    /// An SLA report for `key` over `window` ending at `now_ms`.
    pub fn sla_report(
        &self,
        key: &BreakerKey,
        window: SlaWindow,
        now_ms: u64,
    ) -> Option<SlaReport> {
        let entry = self.breakers.get(key)?;
        let scope = self.scopes.get(key.scope());
        let input = ReportInput {
            key,
            window,
            now_ms,
            accounted_ms: self.accounted_ms.unwrap_or(now_ms),
            retention_ms: self.settings.sla_retention_ms,
            state: entry.breaker.state(),
            tier: scope.map_or(Tier::Full, |s| s.tier()),
            slo: &self.settings.slo,
        };
        Some(build_report(
            &input,
            &entry.ledger,
            scope.map(|s| &s.ledger),
        ))
    }
}
