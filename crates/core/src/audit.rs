//! The audit log: every decision with who, what, when and why.
//!
//! Retention is enforced inside apply, by age (`audit_retention_ms` against the state's
//! clock) and by count (`audit_max_events`), so every replica drops exactly the same events
//! at the same log index.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Actor, BreakerKey, Scope, ValidationError};

/// Maximum events one audit page (one query) holds: the one limit the gRPC and HTTP
/// surfaces, the server's `limits.audit_page_max` (which may only lower it) and the docs share.
pub const AUDIT_QUERY_MAX_LIMIT: u32 = 1_000;
/// Events a query returns when `limit` is 0: a full page.
pub const AUDIT_QUERY_DEFAULT_LIMIT: u32 = AUDIT_QUERY_MAX_LIMIT;

/// What kind of decision an [`AuditEvent`] records. Stored in snapshots and sent on the
/// wire as its readable name ([`AuditKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuditKind {
    /// A breaker changed state by policy (trip, OPEN -> HALF_OPEN, close) or was reset.
    BreakerTransition,
    /// An operator override was set, cleared, or expired.
    Override,
    /// A policy was put or deleted.
    Policy,
    /// A scope's tier rules were put or deleted.
    TierRules,
    /// A scope's tier changed by its rules.
    TierChange,
    /// A scope's tier was pinned, unpinned, or its pin expired.
    TierOverride,
    /// The cluster settings changed.
    Settings,
    /// A probe permit was granted.
    Probe,
}

impl AuditKind {
    /// Every kind, in declaration order.
    pub const ALL: [AuditKind; 8] = [
        AuditKind::BreakerTransition,
        AuditKind::Override,
        AuditKind::Policy,
        AuditKind::TierRules,
        AuditKind::TierChange,
        AuditKind::TierOverride,
        AuditKind::Settings,
        AuditKind::Probe,
    ];

    /// The stored and wire name, e.g. `breaker_transition`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::BreakerTransition => "breaker_transition",
            AuditKind::Override => "override",
            AuditKind::Policy => "policy",
            AuditKind::TierRules => "tier_rules",
            AuditKind::TierChange => "tier_change",
            AuditKind::TierOverride => "tier_override",
            AuditKind::Settings => "settings",
            AuditKind::Probe => "probe",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
                ValidationError::new("kind", format!("must be one of {names:?}, got {s:?}"))
            })
    }
}

// The stored form is the name (a string), as it was before the enum: snapshots taken then
// decode unchanged.
impl Serialize for AuditKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// An audit event's actor is stored as its `Display` form (`operator:alice`), as it was
/// when the field was a string; the log's own `Actor` encoding is unchanged.
mod actor_as_text {
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Actor;

    pub(super) fn serialize<S: Serializer>(
        actor: &Actor,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(actor)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Actor, D::Error> {
        let text = String::deserialize(deserializer)?;
        Actor::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// One audited decision. Build one with [`AuditEvent::new`] and the named setters:
///
/// ```
/// # use switchyard_core::{Actor, AuditEvent, AuditKind};
/// let event = AuditEvent::new(7, 1_000, AuditKind::Override, Actor::Policy, "payments/db")
///     .before("open")
///     .after("closed")
///     .reason("override expired");
/// assert_eq!(event.kind.as_str(), "override");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Log index of the entry that caused it.
    pub index: u64,
    /// State time, ms since the Unix epoch.
    pub at_ms: u64,
    /// Who: `policy`, `operator:NAME`, `node:N` or `instance:ID` as text.
    #[serde(with = "actor_as_text")]
    pub actor: Actor,
    /// A breaker key or a scope (or `cluster` for settings).
    pub subject: String,
    /// What kind of decision.
    pub kind: AuditKind,
    /// Before.
    pub from: String,
    /// After.
    pub to: String,
    /// Why.
    pub reason: String,
    /// The request that caused it (see [`crate::RequestTrace`]); `None` for events no
    /// request caused (policy decisions, timed transitions) and for events recorded before
    /// request ids existed.
    pub request_id: Option<String>,
    /// The trace id of that request, when it carried a W3C trace context.
    pub trace_id: Option<String>,
}

/// Events stored before request ids existed decode with none (see [`crate::stored_layout`]).
impl<'de> Deserialize<'de> for AuditEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "AuditEvent")]
        struct BeforeRequestIds {
            index: u64,
            at_ms: u64,
            #[serde(with = "actor_as_text")]
            actor: Actor,
            subject: String,
            kind: AuditKind,
            from: String,
            to: String,
            reason: String,
        }
        #[derive(Deserialize)]
        #[serde(rename = "AuditEvent")]
        struct Stored {
            index: u64,
            at_ms: u64,
            #[serde(with = "actor_as_text")]
            actor: Actor,
            subject: String,
            kind: AuditKind,
            from: String,
            to: String,
            reason: String,
            #[serde(default)]
            request_id: Option<String>,
            #[serde(default)]
            trace_id: Option<String>,
        }
        Ok(match crate::stored_layout::current() {
            crate::stored_layout::Layout::BeforeRequestIds => {
                let e = BeforeRequestIds::deserialize(deserializer)?;
                AuditEvent {
                    index: e.index,
                    at_ms: e.at_ms,
                    actor: e.actor,
                    subject: e.subject,
                    kind: e.kind,
                    from: e.from,
                    to: e.to,
                    reason: e.reason,
                    request_id: None,
                    trace_id: None,
                }
            }
            crate::stored_layout::Layout::Current => {
                let e = Stored::deserialize(deserializer)?;
                AuditEvent {
                    index: e.index,
                    at_ms: e.at_ms,
                    actor: e.actor,
                    subject: e.subject,
                    kind: e.kind,
                    from: e.from,
                    to: e.to,
                    reason: e.reason,
                    request_id: e.request_id,
                    trace_id: e.trace_id,
                }
            }
        })
    }
}

impl AuditEvent {
    /// An event of `kind` by `actor` about `subject`, caused by the entry at log `index`
    /// applied at state time `at_ms`; before, after and reason start empty.
    pub fn new(
        index: u64,
        at_ms: u64,
        kind: AuditKind,
        actor: Actor,
        subject: impl Into<String>,
    ) -> Self {
        Self {
            index,
            at_ms,
            actor,
            subject: subject.into(),
            kind,
            from: String::new(),
            to: String::new(),
            reason: String::new(),
            request_id: None,
            trace_id: None,
        }
    }

    /// Ties the event to the request that caused it.
    pub fn request(mut self, trace: Option<&crate::RequestTrace>) -> Self {
        self.request_id = trace.map(|t| t.request_id.clone());
        self.trace_id = trace.and_then(crate::RequestTrace::trace_id);
        self
    }

    /// Sets what the subject was before.
    pub fn before(mut self, from: impl Into<String>) -> Self {
        self.from = from.into();
        self
    }

    /// Sets what the subject is after.
    pub fn after(mut self, to: impl Into<String>) -> Self {
        self.to = to.into();
        self
    }

    /// Sets why.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
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
    /// Maximum events returned, oldest first; 0 means a full page; capped at
    /// [`AUDIT_QUERY_MAX_LIMIT`].
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
        // A filter that is no actor's text matches no event.
        let actor = q.actor.as_ref().map(|a| Actor::from_str(a).ok());
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
            .filter(|e| actor.as_ref().is_none_or(|a| a.as_ref() == Some(&e.actor)))
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
#[path = "audit_test.rs"]
mod tests;
