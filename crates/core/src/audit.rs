//! The audit log: every decision with who, what, when and why.
//!
//! Retention is enforced inside apply, by age (`audit_retention_ms` against the state's
//! clock) and by count (`audit_max_events`), so every replica drops exactly the same events
//! at the same log index.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{BreakerKey, Scope};

/// Default number of events a query returns when `limit` is 0.
pub const AUDIT_QUERY_DEFAULT_LIMIT: u32 = 1_000;
/// Maximum events one query returns.
pub const AUDIT_QUERY_MAX_LIMIT: u32 = 10_000;

/// One audited decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Log index of the entry that caused it.
    pub index: u64,
    /// State time, ms since the Unix epoch.
    pub at_ms: u64,
    /// `policy`, `operator:NAME`, `node:N` or `instance:ID`.
    pub actor: String,
    /// A breaker key or a scope (or `cluster` for settings).
    pub subject: String,
    /// `breaker_transition`, `override`, `policy`, `tier_rules`, `tier_change`,
    /// `tier_override`, `settings` or `probe`.
    pub kind: String,
    /// Before.
    pub from: String,
    /// After.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// A filter over the audit log. All given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    /// Events at or after this time.
    pub since_ms: Option<u64>,
    /// Events at or before this time.
    pub until_ms: Option<u64>,
    /// Events about this breaker.
    pub key: Option<BreakerKey>,
    /// Events about this scope or any of its breakers.
    pub scope: Option<Scope>,
    /// Events by this actor (`Display` form).
    pub actor: Option<String>,
    /// Events with a log index strictly greater (for paging).
    pub after_index: Option<u64>,
    /// Maximum events returned, oldest first; 0 means the default (1000), capped at 10 000.
    pub limit: u32,
}

/// The retained audit events, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    events: VecDeque<AuditEvent>,
    dropped: u64,
}

impl AuditLog {
    /// Events matching `q`, oldest first, at most `q.limit`.
    pub fn query(&self, q: &AuditQuery) -> Vec<AuditEvent> {
        let limit = match q.limit {
            0 => AUDIT_QUERY_DEFAULT_LIMIT,
            n => n.min(AUDIT_QUERY_MAX_LIMIT),
        } as usize;
        self.events
            .iter()
            .filter(|e| q.since_ms.is_none_or(|t| e.at_ms >= t))
            .filter(|e| q.until_ms.is_none_or(|t| e.at_ms <= t))
            .filter(|e| q.after_index.is_none_or(|i| e.index > i))
            .filter(|e| q.key.as_ref().is_none_or(|k| e.subject == k.as_str()))
            .filter(|e| {
                q.scope.as_ref().is_none_or(|s| {
                    e.subject == s.as_str()
                        || (e.subject.len() > s.as_str().len()
                            && e.subject.starts_with(s.as_str())
                            && e.subject.as_bytes()[s.as_str().len()] == b'/')
                })
            })
            .filter(|e| q.actor.as_ref().is_none_or(|a| &e.actor == a))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Number of retained events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when no event is retained.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Events dropped by retention so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// All retained events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &AuditEvent> {
        self.events.iter()
    }

    pub(crate) fn push(&mut self, event: AuditEvent) {
        self.events.push_back(event);
    }

    /// Drops events older than `retention_ms` before `now_ms`, then the oldest beyond `max_events`.
    pub(crate) fn enforce_retention(&mut self, now_ms: u64, retention_ms: u64, max_events: u32) {
        let cutoff = now_ms.saturating_sub(retention_ms);
        while matches!(self.events.front(), Some(e) if e.at_ms < cutoff) {
            self.events.pop_front();
            self.dropped += 1;
        }
        while self.events.len() > max_events as usize {
            self.events.pop_front();
            self.dropped += 1;
        }
    }
}
