//! [`Stamp`] and [`Sink`]: where an apply's audit events and effects go.

use super::breaker_entry::BreakerEntry;
use super::effect::Effect;
use crate::scope_tier::{ScopeTier, TierChange};
use crate::{Actor, AuditEvent, AuditKind, AuditLog, RequestTrace, Scope, Tier, Transition};

/// The per-apply context for audit events.
pub(super) struct Stamp {
    pub(super) index: u64,
    pub(super) now_ms: u64,
    /// Who issued the command being applied.
    pub(super) actor: Actor,
    /// `sla_retention_ms` when the apply began.
    pub(super) retention_ms: u64,
    /// The request that issued the command, if any.
    pub(super) trace: Option<RequestTrace>,
}

impl Stamp {
    /// An audit event of this apply (its index and time): `kind` by `actor` about `subject`.
    /// Events by the command's own issuer name its request; what others decided in the same
    /// apply (a timed transition by `policy`, say) was not caused by that request.
    pub(super) fn event(&self, kind: AuditKind, actor: Actor, subject: &str) -> AuditEvent {
        let caused = actor == self.actor;
        AuditEvent::new(self.index, self.now_ms, kind, actor, subject)
            .request(self.trace.as_ref().filter(|_| caused))
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
        actor: &Actor,
        kind: AuditKind,
    ) {
        let key = entry.breaker.key();
        let event = self.stamp.event(kind, actor.clone(), key.as_str());
        self.audit.push(
            event
                .before(t.from.as_str())
                .after(t.to.as_str())
                .reason(&t.reason),
        );
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
        actor: &Actor,
        kind: AuditKind,
    ) {
        let (from, to, reason) = change;
        st.ledger
            .on_change(from, to, self.stamp.now_ms, self.stamp.retention_ms);
        let event = self.stamp.event(kind, actor.clone(), scope.as_str());
        self.audit.push(
            event
                .before(from.as_str())
                .after(to.as_str())
                .reason(&reason),
        );
        st.updated_index = self.stamp.index;
        self.effects.push(Effect::TierChanged {
            scope: scope.clone(),
            from,
            to,
            reason,
        });
    }

    /// Records a pin or unpin of `scope` by the stamp's actor: `(from, change)` as
    /// [`ScopeTier::pin`] and `unpin` return it. A change is recorded as one; no change still
    /// leaves an audit event, from `from` to `after` (the tier the command asked for).
    pub(super) fn tier_override(
        &mut self,
        scope: &Scope,
        st: &mut ScopeTier,
        (from, change): (Tier, Option<TierChange>),
        after: Tier,
        reason: &str,
    ) {
        let stamp = self.stamp;
        let actor = &stamp.actor;
        match change {
            Some(c) => self.tier(scope, st, c, actor, AuditKind::TierOverride),
            None => {
                let event = stamp
                    .event(AuditKind::TierOverride, actor.clone(), scope.as_str())
                    .before(from.as_str())
                    .after(after.as_str())
                    .reason(reason);
                self.audit.push(event);
                st.updated_index = stamp.index;
            }
        }
    }
}
