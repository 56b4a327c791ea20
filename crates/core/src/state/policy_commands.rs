//! The policy commands: `PutPolicies`, `DeletePolicy`, and how a breaker's policy resolves.

use std::collections::BTreeMap;

use super::CoordinatorState;
use super::audit_sink::Stamp;
use super::breaker_entry::BreakerEntry;
use super::effect::Effect;
use crate::{AuditKind, BreakerKey, Policy, PolicyTarget, Scope};

fn policy_json(policy: Option<&Policy>) -> String {
    policy.map_or_else(
        || "default".to_owned(),
        |p| serde_json::to_string(p).unwrap_or_default(),
    )
}

/// The policy for `key`: its own, else its scope's default, else the default.
pub(super) fn resolve_policy(
    key_policies: &BTreeMap<BreakerKey, Policy>,
    scope_policies: &BTreeMap<Scope, Policy>,
    key: &BreakerKey,
) -> Policy {
    key_policies
        .get(key)
        .or_else(|| scope_policies.get(key.scope()))
        .cloned()
        .unwrap_or_default()
}

impl CoordinatorState {
    /// `PutPolicies`: stores each policy and re-resolves the breakers it applies to.
    pub(super) fn put_policies(
        &mut self,
        stamp: &Stamp,
        policies: &[(PolicyTarget, Policy)],
        effects: &mut Vec<Effect>,
    ) {
        let actor = &stamp.actor;
        for (target, policy) in policies {
            let previous = match target {
                PolicyTarget::Key(k) => self.key_policies.insert(k.clone(), policy.clone()),
                PolicyTarget::Scope(s) => self.scope_policies.insert(s.clone(), policy.clone()),
            };
            let event = stamp
                .event(AuditKind::Policy, actor.clone(), target.subject())
                .before(policy_json(previous.as_ref()))
                .after(policy_json(Some(policy)))
                .reason("policy put");
            self.audit.push(event);
            self.reresolve_target(target, stamp.index);
            effects.push(Effect::PolicyChanged {
                target: target.clone(),
            });
        }
    }

    /// `DeletePolicy`: the breakers it applied to fall back to the next policy in line.
    pub(super) fn delete_policy(
        &mut self,
        stamp: &Stamp,
        target: &PolicyTarget,
        effects: &mut Vec<Effect>,
    ) {
        let actor = &stamp.actor;
        let previous = match target {
            PolicyTarget::Key(k) => self.key_policies.remove(k),
            PolicyTarget::Scope(s) => self.scope_policies.remove(s),
        };
        let event = stamp
            .event(AuditKind::Policy, actor.clone(), target.subject())
            .before(policy_json(previous.as_ref()))
            .after("default")
            .reason("policy deleted");
        self.audit.push(event);
        self.reresolve_target(target, stamp.index);
        effects.push(Effect::PolicyChanged {
            target: target.clone(),
        });
    }

    /// Re-resolves the policy of the breakers a policy change affects: one key, or the keys of
    /// one scope (a contiguous range of the map).
    fn reresolve(&mut self, scope: Option<&Scope>, key: Option<&BreakerKey>, index: u64) {
        let Self {
            breakers,
            key_policies,
            scope_policies,
            ..
        } = self;
        let update = |k: &BreakerKey, entry: &mut BreakerEntry| {
            let policy = resolve_policy(key_policies, scope_policies, k);
            if &policy != entry.breaker.policy() {
                entry.breaker.set_policy(policy);
                entry.updated_index = index;
            }
        };
        if let Some(k) = key
            && let Some(entry) = breakers.get_mut(k)
        {
            update(k, entry);
        }
        if let Some(s) = scope {
            let from = BreakerKey::scope_lower_bound(s);
            for (k, entry) in breakers
                .range_mut(from..)
                .take_while(|(k, _)| k.scope() == s.as_str())
            {
                update(k, entry);
            }
        }
    }

    fn reresolve_target(&mut self, target: &PolicyTarget, index: u64) {
        match target {
            PolicyTarget::Key(k) => self.reresolve(None, Some(k), index),
            PolicyTarget::Scope(s) => self.reresolve(Some(s), None, index),
        }
    }
}
