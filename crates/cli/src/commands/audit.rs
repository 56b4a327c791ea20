//! `switchyard audit`: the audit log, oldest first, as a table, JSON or CSV.
//!
//! Pages are fetched until `--limit` events are shown or the log ends; `--since 24h` becomes
//! `since_ms = now - 24h` on this machine's clock.

use serde_json::json;
use switchyard_core::{BreakerKey, Scope};
use switchyard_proto::admin as apb;

use super::Ctx;
use crate::args::{AuditArgs, AuditFormat};
use crate::output::{Table, format_time_ms, now_ms, print_json, print_line, print_text, truncate};

/// Largest page asked for; the server may cap it lower.
const PAGE_EVENTS_MAX: u32 = 1_000;

/// Runs `switchyard audit`.
pub async fn run(ctx: &Ctx, args: AuditArgs) -> anyhow::Result<()> {
    let format = if ctx.json {
        AuditFormat::Json
    } else {
        args.format.unwrap_or(AuditFormat::Table)
    };
    let key = args
        .key
        .as_deref()
        .map(BreakerKey::parse)
        .transpose()?
        .map(|k| k.as_str().to_string());
    let scope = args
        .scope
        .as_deref()
        .map(Scope::parse)
        .transpose()?
        .map(|s| s.as_str().to_string());
    let since_ms = args.since.map(|d| now_ms().saturating_sub(d));

    let mut events: Vec<apb::AuditEvent> = Vec::new();
    let mut after_index = None;
    let mut next_after_index = None;
    let mut applied_index = 0;
    loop {
        let remaining = args
            .limit
            .saturating_sub(u32::try_from(events.len()).unwrap_or(u32::MAX));
        if remaining == 0 {
            break;
        }
        let request = apb::QueryAuditRequest {
            local: ctx.local,
            since_ms,
            until_ms: None,
            key: key.clone(),
            scope: scope.clone(),
            actor: args.actor.as_deref().map(actor_filter),
            after_index,
            limit: remaining.min(PAGE_EVENTS_MAX),
        };
        let page = ctx
            .admin
            .call("QueryAudit", request, |mut c, r| async move {
                c.query_audit(r).await
            })
            .await?;
        applied_index = page.applied_index;
        let got = page.events.len();
        events.extend(page.events);
        events.truncate(args.limit as usize);
        next_after_index = page.next_after_index;
        match page.next_after_index {
            // Stop on the last page, or if the server does not move forward.
            Some(next) if got > 0 && after_index.is_none_or(|a| next > a) => {
                after_index = Some(next)
            }
            _ => break,
        }
    }
    // More may exist past the limit; say where to continue.
    let truncated = events.len() >= args.limit as usize && next_after_index.is_some();

    match format {
        AuditFormat::Json => {
            let list: Vec<_> = events.iter().map(event_json).collect();
            print_json(&json!({
                "events": list,
                "next_after_index": if truncated { next_after_index } else { None },
                "applied_index": applied_index,
            }));
        }
        AuditFormat::Csv => print_text(&table(&events, true).to_csv()),
        AuditFormat::Table => {
            if events.is_empty() {
                print_line("no audit events match");
            } else {
                print_text(&table(&events, false).render());
                if truncated {
                    eprintln!(
                        "(showing the first {} events; raise --limit or narrow --since to see more)",
                        args.limit
                    );
                }
            }
        }
    }
    Ok(())
}

/// An actor filter as the log records it: a bare operator name `alice` means `operator:alice`;
/// `policy` and qualified actors (`node:1`, `instance:web-7`) pass through.
fn actor_filter(actor: &str) -> String {
    let actor = actor.trim();
    if actor.contains(':') || actor == "policy" {
        actor.to_string()
    } else {
        format!("operator:{actor}")
    }
}

fn event_json(e: &apb::AuditEvent) -> serde_json::Value {
    json!({
        "index": e.index,
        "at_ms": e.at_ms,
        "actor": e.actor,
        "kind": e.kind,
        "subject": e.subject,
        "from": e.from,
        "to": e.to,
        "reason": e.reason,
        "request_id": non_empty(&e.request_id),
        "trace_id": non_empty(&e.trace_id),
    })
}

/// Empty wire strings (no request, no trace) are `null` in JSON.
fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// The events as a table; `for_csv` adds `AT_MS` and `TRACE_ID` and keeps every value whole.
/// The request id is never cut: it is what an operator quotes.
fn table(events: &[apb::AuditEvent], for_csv: bool) -> Table {
    let mut headers = vec!["INDEX", "TIME"];
    if for_csv {
        headers.push("AT_MS");
    }
    headers.extend([
        "ACTOR",
        "KIND",
        "SUBJECT",
        "FROM",
        "TO",
        "REASON",
        "REQUEST_ID",
    ]);
    if for_csv {
        headers.push("TRACE_ID");
    }
    let mut table = Table::new(&headers);
    for e in events {
        let mut row = vec![e.index.to_string(), format_time_ms(e.at_ms)];
        if for_csv {
            row.push(e.at_ms.to_string());
        }
        // A table is for reading: long values (a policy as JSON) are cut; CSV keeps them whole.
        let cell = |text: &str, max: usize| {
            if for_csv {
                text.to_string()
            } else {
                truncate(text, max)
            }
        };
        row.extend([
            e.actor.clone(),
            e.kind.clone(),
            e.subject.clone(),
            cell(&e.from, 32),
            cell(&e.to, 32),
            cell(&e.reason, 60),
            e.request_id.clone(),
        ]);
        if for_csv {
            row.push(e.trace_id.clone());
        }
        table.row(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_actor_names_mean_operators() {
        assert_eq!(actor_filter("alice"), "operator:alice");
        assert_eq!(actor_filter("operator:bob"), "operator:bob");
        assert_eq!(actor_filter("node:2"), "node:2");
        assert_eq!(actor_filter("policy"), "policy");
    }
}
