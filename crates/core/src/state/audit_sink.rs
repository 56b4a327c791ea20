//! [`Stamp`] and [`Sink`]: where an apply's audit events and effects go.

use super::breaker_entry::BreakerEntry;
use super::effect::Effect;
use crate::scope_tier::{ScopeTier, TierChange};
use crate::{AuditEvent, AuditLog, Scope, Transition};

/// The per-apply context for audit events.
pub(super) struct Stamp {
    pub(super) index: u64,
    pub(super) now_ms: u64,
    pub(super) actor: String,
    /// `sla_retention_ms` when the apply began.
    pub(super) retention_ms: u64,
}

pub(super) const POLICY_ACTOR: &str = "policy";

impl Stamp {
    pub(super) fn event(
        &self,
        actor: &str,
        subject: &str,
        kind: &str,
        from: &str,
        to: &str,
        reason: &str,
    ) -> AuditEvent {
        AuditEvent {
            index: self.index,
            at_ms: self.now_ms,
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            kind: kind.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Records a breaker transition everywhere it must go.
pub(super) struct Sink<'a> {
    pub(super) audit: &'a mut AuditLog,
    pub(super) effects: &'a mut Vec<Effect>,
    pub(super) stamp: &'a Stamp,
}

impl Sink<'_> {
    pub(super) fn transition(
        &mut self,
        entry: &mut BreakerEntry,
        t: Transition,
        actor: &str,
        kind: &str,
    ) {
        let key = entry.breaker.key();
        self.audit.push(self.stamp.event(
            actor,
            key.as_str(),
            kind,
            t.from.as_str(),
            t.to.as_str(),
            &t.reason,
        ));
        entry.updated_index = self.stamp.index;
        if t.from != t.to {
            debug_assert_eq!(
                t.at_ms, self.stamp.now_ms,
                "transitions happen at apply time"
            );
            entry
                .ledger
                .on_transition(t.from, t.to, self.stamp.now_ms, self.stamp.retention_ms);
            self.effects.push(Effect::BreakerChanged {
                key: key.clone(),
                from: t.from,
                to: t.to,
                reason: t.reason,
            });
        }
    }

    pub(super) fn tier(
        &mut self,
        scope: &Scope,
        st: &mut ScopeTier,
        change: TierChange,
        actor: &str,
        kind: &str,
    ) {
        let (from, to, reason) = change;
        st.ledger
            .on_change(from, to, self.stamp.now_ms, self.stamp.retention_ms);
        self.audit.push(self.stamp.event(
            actor,
            scope.as_str(),
            kind,
            from.as_str(),
            to.as_str(),
            &reason,
        ));
        st.updated_index = self.stamp.index;
        self.effects.push(Effect::TierChanged {
            scope: scope.clone(),
            from,
            to,
            reason,
        });
    }
}
