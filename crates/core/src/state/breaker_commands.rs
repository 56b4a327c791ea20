//! The breaker commands: overrides, reset, and probe permits.

use super::CoordinatorState;
use super::audit_sink::{Sink, Stamp};
use super::breaker_entry::BreakerEntry;
use super::effect::Effect;
use crate::{Actor, AuditKind, BreakerKey, InstanceId, OverrideMode, ProbeOutcome, Transition};

impl CoordinatorState {
    /// Applies `change` to breaker `key`, if it exists, and records the transition it returns
    /// as `kind` by `actor`.
    fn change_breaker(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        (actor, kind): (&Actor, AuditKind),
        effects: &mut Vec<Effect>,
        change: impl FnOnce(&mut BreakerEntry) -> Option<Transition>,
    ) {
        if let Some(entry) = self.breakers.get_mut(key)
            && let Some(t) = change(entry)
        {
            let mut sink = Sink {
                audit: &mut self.audit,
                effects,
                stamp,
            };
            sink.transition(entry, t, actor, kind);
        }
    }

    /// `SetOverride`: forces a breaker open or closed (creating it if new).
    pub(super) fn set_override(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        mode: &OverrideMode,
        reason: &str,
        expires_at_ms: &Option<u64>,
        effects: &mut Vec<Effect>,
    ) {
        let now_ms = stamp.now_ms;
        if !self.ensure_breaker(key, now_ms, effects) {
            return;
        }
        let by = (&stamp.actor, AuditKind::Override);
        self.change_breaker(stamp, key, by, effects, |entry| {
            let from = entry.breaker.state();
            let changed = entry
                .breaker
                .set_override(now_ms, *mode, reason, *expires_at_ms);
            // An override that changes nothing is still audited.
            Some(changed.unwrap_or_else(|| Transition {
                from,
                to: from,
                reason: entry.breaker.reason().to_owned(),
                at_ms: now_ms,
            }))
        });
    }

    /// `ClearOverride`: the policy decides again.
    pub(super) fn clear_override(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        reason: &str,
        effects: &mut Vec<Effect>,
    ) {
        let by = (&stamp.actor, AuditKind::Override);
        self.change_breaker(stamp, key, by, effects, |entry| {
            entry.breaker.clear_override(stamp.now_ms, reason)
        });
    }

    /// `ResetBreaker`: back to CLOSED with an empty window.
    pub(super) fn reset_breaker(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        reason: &str,
        effects: &mut Vec<Effect>,
    ) {
        let by = (&stamp.actor, AuditKind::BreakerTransition);
        self.change_breaker(stamp, key, by, effects, |entry| {
            Some(entry.breaker.reset(stamp.now_ms, reason))
        });
    }

    /// `AcquireProbe`: a probe permit for `instance`, or why not.
    pub(super) fn acquire_probe(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        instance: &InstanceId,
        effects: &mut Vec<Effect>,
    ) {
        let now_ms = stamp.now_ms;
        if let Some(entry) = self.breakers.get_mut(key) {
            let permit_id = self.next_permit_id + 1;
            match entry
                .breaker
                .acquire_probe(now_ms, permit_id, Some(instance.clone()))
            {
                Ok(expires_at_ms) => {
                    self.next_permit_id = permit_id;
                    entry.updated_index = stamp.index;
                    let reason = format!("lease until {expires_at_ms} ms");
                    let to = format!("permit {permit_id}");
                    self.audit.push(
                        stamp
                            .event(
                                AuditKind::Probe,
                                Actor::Instance(instance.clone()),
                                key.as_str(),
                            )
                            .after(to)
                            .reason(reason),
                    );
                    effects.push(Effect::ProbeGranted {
                        key: key.clone(),
                        instance: instance.clone(),
                        permit_id,
                        expires_at_ms,
                    });
                }
                Err(reason) => effects.push(Effect::ProbeDenied {
                    key: key.clone(),
                    instance: instance.clone(),
                    reason,
                }),
            }
        }
    }

    /// `ReleaseProbe`: a probe's outcome, which may close or re-open the breaker.
    pub(super) fn release_probe(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        permit_id: u64,
        outcome: ProbeOutcome,
        effects: &mut Vec<Effect>,
    ) {
        let by = (&Actor::Policy, AuditKind::BreakerTransition);
        self.change_breaker(stamp, key, by, effects, |entry| {
            entry.updated_index = stamp.index;
            let released = entry
                .breaker
                .release_probe(stamp.now_ms, permit_id, outcome);
            released.ok().flatten()
        });
    }
}
