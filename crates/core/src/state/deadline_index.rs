//! The deadline index: every breaker with a timed transition pending, by deadline then key,
//! so an apply fires only what is due instead of walking the fleet (see the module doc of
//! `state`).

use std::collections::BTreeSet;

use super::CoordinatorState;
use super::audit_sink::{Sink, Stamp};
use super::breaker_entry::BreakerEntry;
use super::effect::Effect;
use crate::{Actor, AuditKind, BreakerKey, Command};

/// Breakers with a timed transition pending, by deadline then key.
pub(super) type DeadlineIndex = BTreeSet<(u64, BreakerKey)>;

/// Brings `entry`'s place in the deadline index up to date after anything may have changed
/// its deadline. O(log n); a no-op when the deadline did not move.
pub(super) fn reindex(index: &mut DeadlineIndex, entry: &mut BreakerEntry) {
    let deadline_ms = entry.breaker.next_deadline_ms();
    if deadline_ms == entry.indexed_deadline_ms {
        return;
    }
    let key = entry.breaker.key();
    if let Some(old) = entry.indexed_deadline_ms {
        let removed = index.remove(&(old, key.clone()));
        debug_assert!(removed, "the index holds every indexed deadline");
    }
    if let Some(new) = deadline_ms {
        index.insert((new, key.clone()));
    }
    entry.indexed_deadline_ms = deadline_ms;
}

/// The breaker a command may change besides the ingest of a tick (which re-indexes its own).
/// Policy changes do not move deadlines: `set_policy` keeps the state, open-until and leases.
pub(super) fn command_breaker(command: &Command) -> Option<&BreakerKey> {
    match command {
        Command::SetOverride { key, .. }
        | Command::ClearOverride { key, .. }
        | Command::ResetBreaker { key, .. }
        | Command::AcquireProbe { key, .. }
        | Command::ReleaseProbe { key, .. } => Some(key),
        Command::Tick { .. }
        | Command::TickUnpacked { .. }
        | Command::PutPolicies { .. }
        | Command::DeletePolicy { .. }
        | Command::PutTierRules { .. }
        | Command::DeleteTierRules { .. }
        | Command::SetTierOverride { .. }
        | Command::ClearTierOverride { .. }
        | Command::PutSettings { .. } => None,
    }
}

impl CoordinatorState {
    /// Fires the timed transitions due at `now_ms`: pops the due entries of the deadline
    /// index and advances those breakers in key order (the order a full pass would take).
    pub(super) fn fire_timed(&mut self, stamp: &Stamp, effects: &mut Vec<Effect>) {
        let now_ms = stamp.now_ms;
        let Self {
            breakers,
            deadline_index,
            audit,
            ..
        } = self;
        let mut due = Vec::new();
        while deadline_index.first().is_some_and(|(d, _)| *d <= now_ms) {
            if let Some((_, key)) = deadline_index.pop_first() {
                due.push(key);
            }
        }
        if due.is_empty() {
            return;
        }
        due.sort_unstable();
        let mut sink = Sink {
            audit,
            effects,
            stamp,
        };
        for key in &due {
            let Some(entry) = breakers.get_mut(key) else {
                debug_assert!(false, "indexed breaker `{key}` exists");
                continue;
            };
            entry.indexed_deadline_ms = None;
            if let Some(t) = entry.breaker.advance(now_ms) {
                sink.transition(entry, t, &Actor::Policy, AuditKind::BreakerTransition);
            }
            reindex(deadline_index, entry);
        }
    }

    /// The earliest future time a timed transition is due (the leader writes an empty `Tick`
    /// then): override expiry, end of OPEN, probe lease expiry, tier pin expiry, tier recovery.
    /// Reads the first entry of the deadline index and the scopes with rules or a pin.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let breakers = self.deadline_index.first().map(|(d, _)| *d);
        let scopes = self.tier_scopes.iter().filter_map(|scope| {
            let st = self.scopes.get(scope)?;
            let pin = st.override_expires_at_ms();
            let recover = self
                .tier_rules
                .get(scope)
                .and_then(|r| st.pending_due_ms(r.recover_after_ms));
            match (pin, recover) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        });
        breakers.into_iter().chain(scopes).min()
    }
}
