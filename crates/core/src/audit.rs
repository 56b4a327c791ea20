//! The audit log: every decision with who, what, when and why.
//!
//! Retention is enforced inside apply, by age (`audit_retention_ms` against the state's
//! clock) and by count (`audit_max_events`), so every replica drops exactly the same events
//! at the same log index.

use std::collections::VecDeque;
use std::sync::Arc;

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

/// Events per sealed chunk of the [`AuditLog`].
pub const AUDIT_CHUNK_EVENTS: usize = 1_024;

/// The retained audit events, oldest first.
///
/// Why chunks: the audit trail is most of a busy cluster's state (100 000 events by default),
/// and a snapshot starts with a consistent copy of the state taken while apply waits. Copying
/// 100 000 events one by one took 30 ms, a stall of every write for each snapshot. Events are
/// append-only and leave only from the front, so full chunks are sealed behind an `Arc` and a
/// copy shares them: copying the log costs one reference per 1 024 events.
///
/// ```text
///   sealed: [ chunk 0 (head_skip dropped) | chunk 1 | ... ]   open: [ newest < 1 024 ]
/// ```
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    /// Full chunks, oldest first, each exactly `AUDIT_CHUNK_EVENTS` long; shared with copies.
    sealed: VecDeque<Arc<[AuditEvent]>>,
    /// Events at the front of `sealed[0]` already dropped by retention; always less than its
    /// length.
    head_skip: usize,
    /// The newest events, not yet a full chunk.
    open: VecDeque<AuditEvent>,
    dropped: u64,
}

impl PartialEq for AuditLog {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.dropped == other.dropped
            && self.events().eq(other.events())
    }
}

impl Eq for AuditLog {}

/// The stored form: the events in order, then the dropped count (the layout of the log before
/// it was chunked, so snapshots do not depend on the chunk size).
impl Serialize for AuditLog {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Events<'a>(&'a AuditLog);
        impl Serialize for Events<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
                for event in self.0.events() {
                    seq.serialize_element(event)?;
                }
                seq.end()
            }
        }
        let mut st = serializer.serialize_struct("AuditLog", 2)?;
        st.serialize_field("events", &Events(self))?;
        st.serialize_field("dropped", &self.dropped)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for AuditLog {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "AuditLog")]
        struct Stored {
            events: Vec<AuditEvent>,
            dropped: u64,
        }
        let stored = Stored::deserialize(deserializer)?;
        let mut log = AuditLog {
            dropped: stored.dropped,
            ..AuditLog::default()
        };
        for event in stored.events {
            log.push(event);
        }
        Ok(log)
    }
}

impl AuditLog {
    /// Events matching `q`, oldest first, at most `q.limit`.
    pub fn query(&self, q: &AuditQuery) -> Vec<AuditEvent> {
        let limit = match q.limit {
            0 => AUDIT_QUERY_DEFAULT_LIMIT,
            n => n.min(AUDIT_QUERY_MAX_LIMIT),
        } as usize;
        self.events()
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
        // Every sealed chunk is full; the first has `head_skip` events dropped.
        self.sealed.len() * AUDIT_CHUNK_EVENTS - self.head_skip + self.open.len()
    }

    /// True when no event is retained.
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.open.is_empty()
    }

    /// Events dropped by retention so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// All retained events, oldest first.
    pub fn events(&self) -> impl DoubleEndedIterator<Item = &AuditEvent> {
        let head_skip = self.head_skip;
        self.sealed
            .iter()
            .enumerate()
            .flat_map(move |(i, chunk)| chunk[if i == 0 { head_skip } else { 0 }..].iter())
            .chain(self.open.iter())
    }

    fn front(&self) -> Option<&AuditEvent> {
        match self.sealed.front() {
            Some(chunk) => chunk.get(self.head_skip),
            None => self.open.front(),
        }
    }

    fn pop_front(&mut self) {
        if let Some(chunk_len) = self.sealed.front().map(|c| c.len()) {
            self.head_skip += 1;
            if self.head_skip == chunk_len {
                self.sealed.pop_front();
                self.head_skip = 0;
            }
        } else if self.open.pop_front().is_none() {
            return;
        }
        self.dropped += 1;
    }

    pub(crate) fn push(&mut self, event: AuditEvent) {
        self.open.push_back(event);
        if self.open.len() == AUDIT_CHUNK_EVENTS {
            self.sealed.push_back(self.open.drain(..).collect());
        }
    }

    /// Drops events older than `retention_ms` before `now_ms`, then the oldest beyond `max_events`.
    pub(crate) fn enforce_retention(&mut self, now_ms: u64, retention_ms: u64, max_events: u32) {
        let cutoff = now_ms.saturating_sub(retention_ms);
        while matches!(self.front(), Some(e) if e.at_ms < cutoff) {
            self.pop_front();
        }
        while self.len() > max_events as usize {
            self.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u64, at_ms: u64) -> AuditEvent {
        AuditEvent {
            index,
            at_ms,
            actor: "operator:alice".into(),
            subject: format!("svc/dep-{}", index % 3),
            kind: "override".into(),
            from: "closed".into(),
            to: "forced_open".into(),
            reason: format!("change {index}"),
        }
    }

    fn log_of(n: u64) -> AuditLog {
        let mut log = AuditLog::default();
        for i in 1..=n {
            log.push(event(i, i * 10));
        }
        log
    }

    fn indexes(log: &AuditLog) -> Vec<u64> {
        log.events().map(|e| e.index).collect()
    }

    /// The layout before chunking: events in order, then the dropped count.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Unchunked {
        events: VecDeque<AuditEvent>,
        dropped: u64,
    }

    #[test]
    fn events_come_back_in_order_across_chunk_boundaries() {
        let n = (AUDIT_CHUNK_EVENTS * 2 + 5) as u64;
        let log = log_of(n);
        assert_eq!(log.len(), n as usize);
        assert_eq!(indexes(&log), (1..=n).collect::<Vec<_>>());
        assert_eq!(log.events().next_back().map(|e| e.index), Some(n));
    }

    #[test]
    fn retention_by_count_drops_the_oldest_across_chunks_and_counts_them() {
        let n = (AUDIT_CHUNK_EVENTS * 3) as u64;
        let mut log = log_of(n);
        let keep = AUDIT_CHUNK_EVENTS as u32 + 7;
        log.enforce_retention(n * 10, u64::MAX, keep);
        assert_eq!(log.len(), keep as usize);
        assert_eq!(log.dropped(), n - u64::from(keep));
        assert_eq!(
            indexes(&log),
            (n - u64::from(keep) + 1..=n).collect::<Vec<_>>()
        );
        // Down to nothing, then growing again.
        log.enforce_retention(n * 10, u64::MAX, 0);
        assert!(log.is_empty());
        assert_eq!(log.dropped(), n);
        log.push(event(n + 1, n * 10 + 10));
        assert_eq!(indexes(&log), vec![n + 1]);
    }

    #[test]
    fn retention_by_age_stops_at_the_first_event_young_enough() {
        let mut log = log_of(3_000);
        // Events are at 10 ms steps: keep those at or after 25 000 ms (index 2 500 on).
        log.enforce_retention(30_000, 5_000, u32::MAX);
        assert_eq!(log.events().next().map(|e| e.index), Some(2_500));
        assert_eq!(log.len(), 501);
        assert_eq!(log.dropped(), 2_499);
    }

    #[test]
    fn a_copy_shares_sealed_chunks_and_is_unaffected_by_later_changes() {
        let mut log = log_of((AUDIT_CHUNK_EVENTS * 2 + 1) as u64);
        let copy = log.clone();
        assert!(Arc::ptr_eq(&log.sealed[0], &copy.sealed[0]));
        log.push(event(9_999, 99_990));
        log.enforce_retention(99_990, u64::MAX, 10);
        assert_eq!(copy.len(), AUDIT_CHUNK_EVENTS * 2 + 1);
        assert_eq!(copy.events().next().map(|e| e.index), Some(1));
        assert_ne!(log, copy);
    }

    #[test]
    fn the_stored_form_is_the_unchunked_layout_and_round_trips() {
        let mut log = log_of((AUDIT_CHUNK_EVENTS + 300) as u64);
        log.enforce_retention(0, u64::MAX, 1_200);
        let json = serde_json::to_string(&log).unwrap();
        let unchunked: Unchunked = serde_json::from_str(&json).unwrap();
        assert_eq!(unchunked.dropped, log.dropped());
        assert_eq!(
            unchunked.events.iter().map(|e| e.index).collect::<Vec<_>>(),
            indexes(&log)
        );
        let bin = bincode::serialize(&log).unwrap();
        assert_eq!(bin, bincode::serialize(&unchunked).unwrap());
        let back: AuditLog = bincode::deserialize(&bin).unwrap();
        assert_eq!(back, log);
        assert_eq!(back.dropped(), log.dropped());
    }
}
