//! The breaker commands: overrides, reset, and probe permits.

use super::CoordinatorState;
use super::audit_sink::{Sink, Stamp};
use super::effect::Effect;
use crate::{Actor, AuditKind, BreakerKey, InstanceId, OverrideMode, ProbeOutcome, Transition};

impl CoordinatorState {
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
        let actor = &stamp.actor;
        if !self.ensure_breaker(key, now_ms, effects) {
            return;
        }
        let mut sink = Sink {
            audit: &mut self.audit,
            effects,
            stamp,
        };
        if let Some(entry) = self.breakers.get_mut(key) {
            let from = entry.breaker.state();
            match entry
                .breaker
                .set_override(now_ms, *mode, reason, *expires_at_ms)
            {
                Some(t) => sink.transition(entry, t, actor, AuditKind::Override),
                None => {
                    let t = Transition {
                        from,
                        to: from,
                        reason: entry.breaker.reason().to_owned(),
                        at_ms: now_ms,
                    };
                    sink.transition(entry, t, actor, AuditKind::Override);
                }
            }
        }
    }

    /// `ClearOverride`: the policy decides again.
    pub(super) fn clear_override(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        reason: &str,
        effects: &mut Vec<Effect>,
    ) {
        let now_ms = stamp.now_ms;
        let actor = &stamp.actor;
        let mut sink = Sink {
            audit: &mut self.audit,
            effects,
            stamp,
        };
        if let Some(entry) = self.breakers.get_mut(key)
            && let Some(t) = entry.breaker.clear_override(now_ms, reason)
        {
            sink.transition(entry, t, actor, AuditKind::Override);
        }
    }

    /// `ResetBreaker`: back to CLOSED with an empty window.
    pub(super) fn reset_breaker(
        &mut self,
        stamp: &Stamp,
        key: &BreakerKey,
        reason: &str,
        effects: &mut Vec<Effect>,
    ) {
        let now_ms = stamp.now_ms;
        let actor = &stamp.actor;
        let mut sink = Sink {
            audit: &mut self.audit,
            effects,
            stamp,
        };
        if let Some(entry) = self.breakers.get_mut(key) {
            let t = entry.breaker.reset(now_ms, reason);
            sink.transition(entry, t, actor, AuditKind::BreakerTransition);
        }
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
        let now_ms = stamp.now_ms;
        let mut sink = Sink {
            audit: &mut self.audit,
            effects,
            stamp,
        };
        if let Some(entry) = self.breakers.get_mut(key) {
            entry.updated_index = stamp.index;
            if let Ok(Some(t)) = entry.breaker.release_probe(now_ms, permit_id, outcome) {
                sink.transition(entry, t, &Actor::Policy, AuditKind::BreakerTransition);
            }
        }
    }
}
