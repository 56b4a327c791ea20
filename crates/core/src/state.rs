//! The replicated state machine: the one entry point for every command.
//!
//! [`CoordinatorState::apply`] is a pure function of the state, the entry's index and
//! stamped time, and the envelope. Each apply, in this order:
//!
//! 1. advances the clock to `max(now, stamped)` and the last index (always, even on error);
//! 2. validates the command, including the checks that need the state (unknown breaker,
//!    stale permit, expiry in the past); an error leaves everything else unchanged;
//! 3. fires timed transitions now due (override expiry, OPEN -> HALF_OPEN, lease expiry),
//!    in key order;
//! 4. executes the command;
//! 5. re-evaluates the tiers of scopes with rules or a pin (rules, hysteresis, pin expiry)
//!    and enforces audit retention.
//!
//! Why one `Tick` per interval instead of one entry per SDK report: a fleet of thousands of
//! instances reporting every 100 ms would otherwise write tens of thousands of log entries a
//! second. The leader merges reports into one entry, and the apply path evaluates each
//! touched breaker once per tick, so the log grows with the tick rate, not the fleet size.
//!
//! Why nothing in an apply walks the whole fleet: every replica applies every command, so
//! a per-breaker pass on each apply would cap cluster write throughput and make a one-key
//! operator write cost O(fleet). Instead:
//!
//! - SLA time is accounted lazily, per ledger, when that breaker (or scope) changes state or
//!   records a delta; reports add the unaccounted tail (see [`crate::sla`]).
//! - Timed transitions come from a deadline index, `(deadline, key)` for every breaker whose
//!   `next_deadline_ms` is set, re-indexed for the keys a command or a firing touched. It is
//!   derived data, a pure function of the breakers: it is not stored, but rebuilt when a
//!   state is loaded (see `stored_layout`), so replicas that got here by replay or by
//!   snapshot agree.
//! - Tiers are re-evaluated for the scopes with rules or not at rest (pinned, pending, not
//!   FULL) only, kept in a second derived set, rebuilt on load like the first; evaluating any
//!   other scope is a no-op. Every
//!   such scope is evaluated on every apply, not only those whose rule breakers were touched,
//!   because window-based conditions (failure rate, p95) change as the window slides with
//!   time alone; there are few such scopes (one rule set each) and a pass is cheap (see the
//!   `apply_admin_tier_rules` bench).
//! - Fleet retry figures ([`crate::FleetRetries`]) are computed only for the breakers a tick
//!   touched with retry figures (or whose pushed figures are still to be retired), and an
//!   [`Effect::FleetRetriesChanged`] is emitted only when they drifted enough to be worth a
//!   push to every watcher; deltas without retry figures take the path they always took,
//!   for the price of one branch (see the `apply_tick` bench and its `_with_retries` twin).
//!
//! Files, one concern each: `effect` (what an apply changed), `view` (read-only views),
//! `breaker_entry` (a breaker with its ledger), `audit_sink` (audit events and effects of an
//! apply), `precheck` (checks that need the state), `deadline_index` (timed transitions),
//! `ingest` (a tick's deltas), `tier_eval` (tier rules), `stored_layout` (what is stored, and
//! the derived indexes rebuilt on load), and one method per command in `policy_commands`,
//! `breaker_commands` and `tier_commands`.

mod audit_sink;
mod breaker_commands;
mod breaker_entry;
mod deadline_index;
mod effect;
mod ingest;
mod policy_commands;
mod precheck;
mod stored_layout;
mod tier_commands;
mod tier_eval;
mod view;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use self::audit_sink::Stamp;
use self::breaker_entry::BreakerEntry;
use self::deadline_index::{DeadlineIndex, command_breaker, reindex};
pub use self::effect::{Applied, Effect};
pub use self::stored_layout::StateWithStoredIndexes;
pub use self::view::{BreakerView, ScopeView};
use crate::hash::Fnv1a64;
use crate::scope_tier::ScopeTier;
use crate::{
    AuditKind, AuditLog, BreakerKey, ClusterSettings, Command, CommandError, Envelope, Policy,
    Scope, TierRules,
};

/// Where an entry sits in the log and when the leader stamped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyContext {
    /// The entry's log index.
    pub index: u64,
    /// The leader's wall-clock time when proposing, ms since the Unix epoch.
    pub stamped_ms: u64,
}

/// The whole replicated state.
///
/// Its serde form holds everything but the derived indexes, which deserializing rebuilds (see
/// `stored_layout`); [`StateWithStoredIndexes`] reads the earlier form that stored them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct CoordinatorState {
    now_ms: u64,
    last_index: u64,
    accounted_ms: Option<u64>,
    next_permit_id: u64,
    dropped_deltas: u64,
    settings: ClusterSettings,
    key_policies: BTreeMap<BreakerKey, Policy>,
    scope_policies: BTreeMap<Scope, Policy>,
    breakers: BTreeMap<BreakerKey, BreakerEntry>,
    scopes: BTreeMap<Scope, ScopeTier>,
    tier_rules: BTreeMap<Scope, TierRules>,
    audit: AuditLog,
    /// Derived: every breaker with `next_deadline_ms` set (see the module doc).
    #[serde(skip)]
    deadline_index: DeadlineIndex,
    /// Derived: every scope with tier rules or not at rest, the only ones tier evaluation
    /// visits. After each apply, exactly those.
    #[serde(skip)]
    tier_scopes: BTreeSet<Scope>,
}

impl CoordinatorState {
    /// An empty state with the given settings.
    pub fn with_settings(settings: ClusterSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Applies one log entry. See the module doc for the order of steps. On error the state
    /// is unchanged except for the clock and the last index.
    pub fn apply(
        &mut self,
        ctx: ApplyContext,
        envelope: &Envelope,
    ) -> Result<Applied, CommandError> {
        let now_ms = self.now_ms.max(ctx.stamped_ms);
        self.now_ms = now_ms;
        self.last_index = ctx.index;
        envelope.command.validate(&self.settings)?;
        self.precheck(&envelope.command, now_ms)?;

        let stamp = Stamp {
            index: ctx.index,
            now_ms,
            actor: envelope.actor.clone(),
            retention_ms: self.settings.sla_retention_ms,
            trace: envelope.trace.clone(),
        };
        let mut effects = Vec::new();
        // Reports read every ledger as accounted up to here (see `crate::sla`).
        self.accounted_ms = Some(now_ms);
        self.fire_timed(&stamp, &mut effects);
        self.execute(&stamp, &envelope.command, &mut effects);
        if let Some(key) = command_breaker(&envelope.command)
            && let Some(entry) = self.breakers.get_mut(key)
        {
            reindex(&mut self.deadline_index, entry);
        }
        self.evaluate_tiers(&stamp, &mut effects);
        self.audit.enforce_retention(
            now_ms,
            self.settings.audit_retention_ms,
            self.settings.audit_max_events,
        );
        Ok(Applied { effects })
    }

    fn execute(&mut self, stamp: &Stamp, command: &Command, effects: &mut Vec<Effect>) {
        match command {
            Command::Tick { deltas } => self.ingest(deltas, stamp, effects),
            Command::TickUnpacked { deltas } => self.ingest(deltas, stamp, effects),
            Command::PutPolicies { policies } => self.put_policies(stamp, policies, effects),
            Command::DeletePolicy { target } => self.delete_policy(stamp, target, effects),
            Command::SetOverride {
                key,
                mode,
                reason,
                expires_at_ms,
            } => self.set_override(stamp, key, mode, reason, expires_at_ms, effects),
            Command::ClearOverride { key, reason } => {
                self.clear_override(stamp, key, reason, effects)
            }
            Command::ResetBreaker { key, reason } => {
                self.reset_breaker(stamp, key, reason, effects)
            }
            Command::PutTierRules { rules } => self.put_tier_rules(stamp, rules, effects),
            Command::DeleteTierRules { scope } => self.delete_tier_rules(stamp, scope, effects),
            Command::SetTierOverride {
                scope,
                tier,
                reason,
                expires_at_ms,
            } => self.set_tier_override(stamp, scope, *tier, reason, *expires_at_ms, effects),
            Command::ClearTierOverride { scope, reason } => {
                self.clear_tier_override(stamp, scope, reason, effects)
            }
            Command::AcquireProbe { key, instance } => {
                self.acquire_probe(stamp, key, instance, effects)
            }
            Command::ReleaseProbe {
                key,
                permit_id,
                outcome,
            } => self.release_probe(stamp, key, *permit_id, *outcome, effects),
            Command::PutSettings { settings } => self.put_settings(stamp, settings, effects),
        }
    }

    /// `PutSettings`.
    fn put_settings(
        &mut self,
        stamp: &Stamp,
        settings: &ClusterSettings,
        effects: &mut Vec<Effect>,
    ) {
        let actor = &stamp.actor;
        let from = serde_json::to_string(&self.settings).unwrap_or_default();
        let to = serde_json::to_string(settings).unwrap_or_default();
        self.settings = settings.clone();
        self.audit.push(
            stamp
                .event(AuditKind::Settings, actor.clone(), "cluster")
                .before(from)
                .after(to)
                .reason("settings put"),
        );
        effects.push(Effect::SettingsChanged);
    }

    /// The state's clock: the largest stamped time applied so far.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The index of the last applied entry.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Deltas dropped because `max_breakers` was reached.
    pub fn dropped_deltas(&self) -> u64 {
        self.dropped_deltas
    }

    /// The cluster settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// FNV-1a 64 over the bincode serialization: equal digests mean equal states (for
    /// simulation comparisons across replicas).
    pub fn digest(&self) -> u64 {
        let mut w = Fnv1a64::new();
        // Serializing plain data into an infallible writer cannot fail.
        let _ = bincode::serialize_into(&mut w, self);
        debug_assert_ne!(w, Fnv1a64::new(), "state serialization is never empty");
        w.finish()
    }
}

#[cfg(test)]
#[path = "state_test.rs"]
mod tests;
