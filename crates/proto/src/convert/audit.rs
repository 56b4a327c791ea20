//! `AuditEvent` and the `QueryAuditRequest` filter.

use std::str::FromStr;

use switchyard_core::{
    AUDIT_QUERY_MAX_LIMIT, Actor, AuditEvent, AuditKind, AuditQuery, ValidationError,
};

use super::{at, parse_key, parse_scope};
use crate::admin as apb;

impl From<&AuditEvent> for apb::AuditEvent {
    fn from(e: &AuditEvent) -> Self {
        apb::AuditEvent {
            index: e.index,
            at_ms: e.at_ms,
            actor: e.actor.to_string(),
            kind: e.kind.as_str().to_owned(),
            subject: e.subject.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            reason: e.reason.clone(),
            request_id: e.request_id.clone().unwrap_or_default(),
            trace_id: e.trace_id.clone().unwrap_or_default(),
        }
    }
}

/// Audit events are produced by the cluster; decoding one (CLI, tools) parses the actor from
/// its `Display` form and the kind from its name. Paths: `actor`, `kind`.
impl TryFrom<apb::AuditEvent> for AuditEvent {
    type Error = ValidationError;

    fn try_from(e: apb::AuditEvent) -> Result<Self, Self::Error> {
        let actor = Actor::from_str(&e.actor).map_err(|err| at(err, "actor"))?;
        let kind = AuditKind::from_str(&e.kind).map_err(|err| at(err, "kind"))?;
        Ok(AuditEvent {
            index: e.index,
            at_ms: e.at_ms,
            actor,
            subject: e.subject,
            kind,
            from: e.from,
            to: e.to,
            reason: e.reason,
            request_id: Some(e.request_id).filter(|id| !id.is_empty()),
            trace_id: Some(e.trace_id).filter(|id| !id.is_empty()),
        })
    }
}

impl From<&AuditQuery> for apb::QueryAuditRequest {
    fn from(q: &AuditQuery) -> Self {
        apb::QueryAuditRequest {
            local: false,
            since_ms: q.since_ms,
            until_ms: q.until_ms,
            key: q.key.as_ref().map(ToString::to_string),
            scope: q.scope.as_ref().map(ToString::to_string),
            actor: q.actor.clone(),
            after_index: q.after_index,
            limit: q.limit,
        }
    }
}

/// Paths: `key`, `scope`, `actor`, `until_ms` (before `since_ms`), `limit`.
/// The request's `local` flag is not part of the query; read it separately.
impl TryFrom<apb::QueryAuditRequest> for AuditQuery {
    type Error = ValidationError;

    fn try_from(r: apb::QueryAuditRequest) -> Result<Self, Self::Error> {
        if let (Some(since), Some(until)) = (r.since_ms, r.until_ms)
            && until < since
        {
            return Err(ValidationError::new(
                "until_ms",
                format!("must not be before since_ms ({since}), got {until}"),
            ));
        }
        if r.limit > AUDIT_QUERY_MAX_LIMIT {
            return Err(ValidationError::new(
                "limit",
                format!(
                    "must be at most {AUDIT_QUERY_MAX_LIMIT} (0 = default), got {}",
                    r.limit
                ),
            ));
        }
        let actor = match r.actor {
            Some(actor) => {
                Actor::from_str(&actor).map_err(|e| at(e, "actor"))?;
                Some(actor)
            }
            None => None,
        };
        Ok(AuditQuery {
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            key: r.key.as_deref().map(|k| parse_key(k, "key")).transpose()?,
            scope: r
                .scope
                .as_deref()
                .map(|s| parse_scope(s, "scope"))
                .transpose()?,
            actor,
            after_index: r.after_index,
            limit: r.limit,
        })
    }
}
