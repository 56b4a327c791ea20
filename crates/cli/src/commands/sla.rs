//! `switchyard sla`: availability, error rate, latency, open episodes and time degraded per
//! breaker over 24h, 7d, 30d or month to date.

use serde_json::json;
use switchyard_core::BreakerKey;
use switchyard_proto::admin as apb;

use super::Ctx;
use crate::args::SlaArgs;
use crate::duration::format_duration_ms;
use crate::output::{Table, print_json, print_line, print_text};

/// Runs `switchyard sla`.
pub async fn run(ctx: &Ctx, args: SlaArgs) -> anyhow::Result<()> {
    let key = match &args.key {
        Some(k) => BreakerKey::parse(k)?.as_str().to_string(),
        None => String::new(),
    };
    let request = apb::SlaReportRequest {
        local: ctx.local,
        key,
        window: args.window.clone(),
    };
    let r = ctx
        .admin
        .call("SlaReport", request, |mut c, r| async move {
            c.sla_report(r).await
        })
        .await?;
    if ctx.json {
        let list: Vec<_> = r.reports.iter().map(report_json).collect();
        print_json(&json!({ "reports": list, "applied_index": r.applied_index }));
        return Ok(());
    }
    if r.reports.is_empty() {
        print_line(&format!(
            "no breakers have reported in the last {}",
            args.window
        ));
        return Ok(());
    }
    let mut table = Table::new(&[
        "KEY", "WINDOW", "CALLS", "AVAIL%", "ERR%", "P50", "P95", "P99", "OPENS", "DEGRADED",
        "LAST_OK", "BREACHES",
    ]);
    for s in &r.reports {
        let breaches: Vec<String> = s
            .breaches
            .iter()
            .map(|b| format!("{} {} (target {})", b.objective, b.actual, b.target))
            .collect();
        table.row(vec![
            s.key.clone(),
            s.window.clone(),
            s.calls.to_string(),
            format!("{:.3}", s.availability_percent),
            format!("{:.3}", s.error_rate_percent),
            latency(s.p50_ms),
            latency(s.p95_ms),
            latency(s.p99_ms),
            s.open_episodes.len().to_string(),
            format_duration_ms(s.time_degraded_ms),
            s.time_since_last_success_ms.map_or_else(
                || "never".to_string(),
                |ms| format!("{} ago", format_duration_ms(ms)),
            ),
            if breaches.is_empty() {
                "-".to_string()
            } else {
                breaches.join("; ")
            },
        ]);
    }
    print_text(&table.render());
    Ok(())
}

fn latency(ms: Option<f64>) -> String {
    ms.map_or_else(|| "-".to_string(), |v| format!("{v:.1}ms"))
}

fn report_json(s: &apb::SlaReport) -> serde_json::Value {
    let episodes: Vec<_> = s
        .open_episodes
        .iter()
        .map(|e| json!({ "opened_at_ms": e.opened_at_ms, "closed_at_ms": e.closed_at_ms, "duration_ms": e.duration_ms }))
        .collect();
    let breaches: Vec<_> = s
        .breaches
        .iter()
        .map(|b| json!({ "objective": b.objective, "target": b.target, "actual": b.actual }))
        .collect();
    json!({
        "key": s.key,
        "window": s.window,
        "from_ms": s.from_ms,
        "to_ms": s.to_ms,
        "calls": s.calls,
        "failures": s.failures,
        "slow": s.slow,
        "rejected": s.rejected,
        "availability_percent": s.availability_percent,
        "error_rate_percent": s.error_rate_percent,
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "p99_ms": s.p99_ms,
        "open_episodes": episodes,
        "time_in_state_ms": s.time_in_state_ms,
        "time_in_tier_ms": s.time_in_tier_ms,
        "time_degraded_ms": s.time_degraded_ms,
        "last_success_ms": s.last_success_ms,
        "time_since_last_success_ms": s.time_since_last_success_ms,
        "breaches": breaches,
    })
}
