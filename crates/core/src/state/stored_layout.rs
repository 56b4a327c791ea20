//! What a stored state holds, and the derived indexes rebuilt when one is loaded.
//!
//! The deadline index, the tier-scope set and each breaker's `indexed_deadline_ms` are pure
//! functions of the rest of the state (see the module doc of `state`). Storing them would
//! cost bytes in every snapshot and leave a way for a stored index to disagree with the
//! state it came with; so the serde form of [`CoordinatorState`] leaves them out and
//! deserializing rebuilds them. That keeps replicas that got here by replay or by snapshot
//! equal, indexes included.
//!
//! States written before this change (switchyard-store's record formats 2 and 3) stored the
//! indexes: [`StateWithStoredIndexes`] reads that layout, ignores what it stored for them and
//! rebuilds them the same way.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::CoordinatorState;
use super::breaker_entry::BreakerEntry;
use super::deadline_index::{DeadlineIndex, reindex};
use crate::scope_tier::ScopeTier;
use crate::sla::BreakerLedger;
use crate::{
    AuditLog, Breaker, BreakerKey, ClusterSettings, FleetRetries, Policy, Scope, TierRules,
};

impl Serialize for CoordinatorState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The derived layout (`#[serde(remote = "Self")]`), which skips the indexes.
        CoordinatorState::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for CoordinatorState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut state = CoordinatorState::deserialize(deserializer)?;
        state.rebuild_indexes();
        Ok(state)
    }
}

impl CoordinatorState {
    /// Rebuilds the derived indexes from the breakers, scopes and tier rules: afterwards they
    /// are what every apply leaves them as.
    fn rebuild_indexes(&mut self) {
        self.deadline_index = DeadlineIndex::new();
        for entry in self.breakers.values_mut() {
            entry.indexed_deadline_ms = None;
            reindex(&mut self.deadline_index, entry);
        }
        let tier_rules = &self.tier_rules;
        self.tier_scopes = self
            .scopes
            .iter()
            .filter(|(scope, st)| tier_rules.contains_key(*scope) || !st.at_rest())
            .map(|(scope, _)| scope.clone())
            .collect();
    }
}

/// A breaker as record formats 2 and 3 stored it: with the deadline it was indexed at.
#[derive(Debug, Deserialize)]
struct BreakerEntryWithIndex {
    breaker: Breaker,
    ledger: BreakerLedger,
    updated_index: u64,
    #[serde(rename = "indexed_deadline_ms")]
    _indexed_deadline_ms: Option<u64>,
    retries_pushed: FleetRetries,
    retries_pushed_at_ms: u64,
}

/// A [`CoordinatorState`] in the layout of record formats 2 and 3, which stored the derived
/// indexes after the state. Read it with serde, then convert: the stored indexes are
/// ignored and rebuilt.
#[derive(Debug, Deserialize)]
pub struct StateWithStoredIndexes {
    now_ms: u64,
    last_index: u64,
    accounted_ms: Option<u64>,
    next_permit_id: u64,
    dropped_deltas: u64,
    settings: ClusterSettings,
    key_policies: BTreeMap<BreakerKey, Policy>,
    scope_policies: BTreeMap<Scope, Policy>,
    breakers: BTreeMap<BreakerKey, BreakerEntryWithIndex>,
    scopes: BTreeMap<Scope, ScopeTier>,
    tier_rules: BTreeMap<Scope, TierRules>,
    audit: AuditLog,
    #[serde(rename = "deadline_index")]
    _deadline_index: DeadlineIndex,
    #[serde(rename = "tier_scopes")]
    _tier_scopes: BTreeSet<Scope>,
}

impl From<StateWithStoredIndexes> for CoordinatorState {
    fn from(stored: StateWithStoredIndexes) -> Self {
        let breakers = stored
            .breakers
            .into_iter()
            .map(|(key, entry)| {
                let entry = BreakerEntry {
                    breaker: entry.breaker,
                    ledger: entry.ledger,
                    updated_index: entry.updated_index,
                    indexed_deadline_ms: None,
                    retries_pushed: entry.retries_pushed,
                    retries_pushed_at_ms: entry.retries_pushed_at_ms,
                    touched: false,
                    touched_retries: false,
                };
                (key, entry)
            })
            .collect();
        let mut state = CoordinatorState {
            now_ms: stored.now_ms,
            last_index: stored.last_index,
            accounted_ms: stored.accounted_ms,
            next_permit_id: stored.next_permit_id,
            dropped_deltas: stored.dropped_deltas,
            settings: stored.settings,
            key_policies: stored.key_policies,
            scope_policies: stored.scope_policies,
            breakers,
            scopes: stored.scopes,
            tier_rules: stored.tier_rules,
            audit: stored.audit,
            deadline_index: DeadlineIndex::new(),
            tier_scopes: BTreeSet::new(),
        };
        state.rebuild_indexes();
        state
    }
}
