//! Ingest of a `Tick`: the reports' deltas go into their breakers, and each touched breaker
//! is judged once.

use super::CoordinatorState;
use super::audit_sink::{Sink, Stamp};
use super::breaker_entry::BreakerEntry;
use super::deadline_index::reindex;
use super::effect::Effect;
use super::policy_commands::resolve_policy;
use crate::scope_tier::ScopeTier;
use crate::sla::BreakerLedger;
use crate::{
    Actor, AuditKind, Breaker, BreakerKey, Delta, FleetRetries, RetryTotals, TripMode, WindowTotals,
};

/// A tick touching at least 1/8 of the breakers judges them in one pass over the map rather
/// than one lookup each.
const INGEST_SCAN_RATIO: usize = 8;

// Tests force the scan so a reference run judges by the other path.
#[cfg(test)]
thread_local! {
    pub(super) static FORCE_INGEST_SCAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn force_ingest_scan() -> bool {
    FORCE_INGEST_SCAN.with(std::cell::Cell::get)
}

#[cfg(not(test))]
fn force_ingest_scan() -> bool {
    false
}

impl CoordinatorState {
    pub(super) fn ensure_breaker(
        &mut self,
        key: &BreakerKey,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) -> bool {
        if self.breakers.contains_key(key) {
            return true;
        }
        if self.breakers.len() >= self.settings.max_breakers as usize {
            return false;
        }
        let policy = resolve_policy(&self.key_policies, &self.scope_policies, key);
        let breaker = Breaker::new(key.clone(), policy, TripMode::Fleet, now_ms);
        self.breakers.insert(
            key.clone(),
            BreakerEntry {
                breaker,
                ledger: BreakerLedger::starting(now_ms),
                updated_index: self.last_index,
                indexed_deadline_ms: None,
                retries_pushed: FleetRetries::default(),
                retries_pushed_at_ms: now_ms,
                touched: false,
                touched_retries: false,
            },
        );
        if !self.scopes.contains_key(key.scope()) {
            self.scopes.insert(key.scope_id(), ScopeTier::new(now_ms));
        }
        effects.push(Effect::BreakerCreated { key: key.clone() });
        true
    }

    pub(super) fn ingest(&mut self, deltas: &[Delta], stamp: &Stamp, effects: &mut Vec<Effect>) {
        let now_ms = stamp.now_ms;
        let max_instances = self.settings.max_instances_per_breaker as usize;
        let mut touched: Vec<&BreakerKey> = Vec::new();
        let mut i = 0;
        // Deltas arrive grouped by key in practice (the leader merges per breaker), so one
        // map lookup serves a run of deltas; ungrouped input is still correct.
        while i < deltas.len() {
            let key = &deltas[i].key;
            let mut j = i + 1;
            while j < deltas.len() && deltas[j].key == *key {
                j += 1;
            }
            if !self.ensure_breaker(key, now_ms, effects) {
                self.dropped_deltas += (j - i) as u64;
                i = j;
                continue;
            }
            if let Some(entry) = self.breakers.get_mut(key) {
                entry.ledger.catch_up(now_ms, stamp.retention_ms);
                let mut retry_figures = false;
                for d in &deltas[i..j] {
                    let outcomes = WindowTotals {
                        calls: d.calls,
                        failures: d.failures,
                        slow: d.slow,
                    };
                    if d.first_attempts | d.retries == 0 {
                        entry.breaker.record(
                            now_ms,
                            Some(&d.instance),
                            outcomes,
                            Some(&d.latency),
                            max_instances,
                        );
                    } else {
                        let retries = RetryTotals {
                            first_attempts: u64::from(d.first_attempts),
                            retries: u64::from(d.retries),
                        };
                        entry.breaker.record_with_retries(
                            now_ms,
                            Some(&d.instance),
                            outcomes,
                            retries,
                            Some(&d.latency),
                            max_instances,
                        );
                        retry_figures = true;
                    }
                    entry
                        .ledger
                        .record(now_ms, d.calls, d.failures, d.slow, d.rejected, &d.latency);
                }
                entry.touched = true;
                entry.touched_retries |= retry_figures;
                touched.push(key);
            }
            i = j;
        }
        let Self {
            breakers,
            deadline_index,
            audit,
            ..
        } = self;
        let mut sink = Sink {
            audit,
            effects,
            stamp,
        };
        // Judge each touched breaker once, in key order. A tick touching a large part of the
        // fleet walks the map (cheaper than a lookup per key); a small one looks keys up.
        let mut judge = |entry: &mut BreakerEntry| {
            entry.touched = false;
            // Retry figures are looked at only where there are some: a fleet that does not use
            // retry budgets pays one branch per touched breaker.
            let retries =
                std::mem::take(&mut entry.touched_retries) || !entry.retries_pushed.is_empty();
            let (transition, figures) = if retries {
                let (t, figures) = entry.breaker.evaluate_with_retries(now_ms);
                (t, Some(figures))
            } else {
                (entry.breaker.evaluate(now_ms), None)
            };
            if let Some(t) = transition {
                sink.transition(entry, t, &Actor::Policy, AuditKind::BreakerTransition);
                reindex(deadline_index, entry);
            }
            if let Some(figures) = figures
                && figures.worth_pushing(&entry.retries_pushed, entry.retries_pushed_at_ms, now_ms)
            {
                entry.retries_pushed = figures;
                entry.retries_pushed_at_ms = now_ms;
                sink.effects.push(Effect::FleetRetriesChanged {
                    key: entry.breaker.key().clone(),
                });
            }
        };
        if touched.len().saturating_mul(INGEST_SCAN_RATIO) >= breakers.len() || force_ingest_scan()
        {
            breakers
                .values_mut()
                .filter(|e| e.touched)
                .for_each(&mut judge);
        } else {
            touched.sort_unstable();
            touched.dedup();
            for key in touched {
                if let Some(entry) = breakers.get_mut(key) {
                    judge(entry);
                }
            }
        }
    }
}
