//! `GET /api/v1/audit`: the audit trail as JSON or CSV.
//!
//! ```text
//! GET /api/v1/audit?since_ms=&until_ms=&key=&scope=&actor=&after_index=&limit=&format=json|csv&local=
//! ```
//!
//! Events come oldest first. A page holds at most `limits.audit_page_max` events (the node's
//! config, also the default); when a page is full, `next_after_index` (JSON) or the
//! `x-switchyard-next-after-index` header (CSV) is the `after_index` of the next page. The
//! audit log names operators and their reasons, so this endpoint needs the admin token when one
//! is configured, like the gRPC `QueryAudit` it mirrors.
//!
//! CSV follows RFC 4180: a header row, CRLF line ends, and every field that holds a comma, a
//! quote or a line break quoted with inner quotes doubled.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_core::{Actor, AuditEvent, AuditQuery, BreakerKey, Scope};

use super::AppState;
use super::api_error::ApiError;
use super::params::{Params, RawParams};

/// Response header carrying the next page's `after_index` in CSV exports.
pub const NEXT_AFTER_INDEX_HEADER: &str = "x-switchyard-next-after-index";
/// The CSV header row.
pub const CSV_HEADER: &str =
    "index,at_ms,at_utc,actor,kind,subject,from,to,reason,request_id,trace_id";

/// The JSON response body.
#[derive(Debug, Serialize)]
pub struct AuditResponse {
    /// The applied log index the page was read at.
    pub applied_index: u64,
    /// Matching events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Pass as `after_index` for the next page; absent when this page was not full.
    pub next_after_index: Option<u64>,
}

/// `GET /api/v1/audit`.
pub async fn audit(State(app): State<AppState>, raw: RawParams) -> Result<Response, ApiError> {
    let params = Params::parse(
        raw,
        &[
            "since_ms",
            "until_ms",
            "key",
            "scope",
            "actor",
            "after_index",
            "limit",
            "format",
            "local",
        ],
    )?;
    let csv = match params.str("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("must be json or csv, got {other:?}"),
            ));
        }
    };
    let page_max = u64::from(app.node.config().limits.audit_page_max);
    let limit = params.u64("limit")?.unwrap_or(page_max);
    if !(1..=page_max).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and the audit page limit {page_max}, got {limit}"),
        ));
    }
    let since_ms = params.u64("since_ms")?;
    let until_ms = params.u64("until_ms")?;
    if let (Some(since), Some(until)) = (since_ms, until_ms)
        && until < since
    {
        return Err(ApiError::invalid(
            "until_ms",
            format!("must not be before since_ms ({since}), got {until}"),
        ));
    }
    let query = AuditQuery {
        since_ms,
        until_ms,
        key: params
            .str("key")
            .map(|k| BreakerKey::parse(k).map_err(|e| ApiError::invalid("key", e.rule)))
            .transpose()?,
        scope: params
            .str("scope")
            .map(|s| Scope::parse(s).map_err(|e| ApiError::invalid("scope", e.rule)))
            .transpose()?,
        actor: params
            .str("actor")
            .map(|a| {
                a.parse::<Actor>()
                    .map(|a| a.to_string())
                    .map_err(|e| ApiError::invalid("actor", e.rule))
            })
            .transpose()?,
        after_index: params.u64("after_index")?,
        // `limit` is at most `audit_page_max`, a u32.
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
    };
    app.node.read_barrier(params.flag("local")?).await?;
    let (applied_index, events) = {
        let read = app.node.state_machine().read();
        (read.applied_index(), read.core().audit().query(&query))
    };
    let next_after_index = (events.len() as u64 >= limit)
        .then(|| events.last().map(|e| e.index))
        .flatten();
    if !csv {
        return Ok(Json(AuditResponse {
            applied_index,
            events,
            next_after_index,
        })
        .into_response());
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"switchyard-audit.csv\"",
            ),
        ],
        to_csv(&events),
    )
        .into_response();
    if let Some(next) = next_after_index {
        response
            .headers_mut()
            .insert(NEXT_AFTER_INDEX_HEADER, HeaderValue::from(next));
    }
    Ok(response)
}

/// Renders events as CSV with a header row.
pub fn to_csv(events: &[AuditEvent]) -> String {
    let mut out = String::with_capacity(64 * (events.len() + 1));
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for e in events {
        let fields = [
            e.index.to_string(),
            e.at_ms.to_string(),
            utc_rfc3339(e.at_ms),
            e.actor.to_string(),
            e.kind.to_string(),
            e.subject.clone(),
            e.from.clone(),
            e.to.clone(),
            e.reason.clone(),
            e.request_id.clone().unwrap_or_default(),
            e.trace_id.clone().unwrap_or_default(),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_csv_field(&mut out, field);
        }
        out.push_str("\r\n");
    }
    out
}

fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// `2024-05-01T12:00:00.000Z` for ms since the Unix epoch.
pub fn utc_rfc3339(ms: u64) -> String {
    switchyard_core::utc_rfc3339_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(reason: &str) -> AuditEvent {
        let alice = switchyard_core::Actor::Operator("alice".into());
        let kind = switchyard_core::AuditKind::Override;
        AuditEvent::new(7, 1_714_564_800_000, kind, alice, "payments/db")
            .before("CLOSED")
            .after("FORCED_OPEN")
            .reason(reason)
            .request(Some(&switchyard_core::RequestTrace {
                request_id: "req-7f3a".into(),
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            }))
    }

    #[test]
    fn csv_has_a_header_and_quotes_what_needs_it() {
        let csv = to_csv(&[event("plain"), event("says \"hi\", twice\nok")]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(
            lines[1],
            "7,1714564800000,2024-05-01T12:00:00.000Z,operator:alice,override,payments/db,CLOSED,FORCED_OPEN,plain,req-7f3a,4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(
            csv.contains(",\"says \"\"hi\"\", twice\nok\",req-7f3a,"),
            "{csv}"
        );
    }

    #[test]
    fn utc_times_format_across_leap_years() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_rfc3339(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    }
}
