//! `switchyard breaker list|get|open|close|disable|metrics-only|reset|clear`.
//!
//! `open`, `close`, `disable` and `metrics-only` pin the breaker with an operator override
//! (optionally expiring after `--for`); `reset` clears any override and restarts automatic
//! control from CLOSED with an empty window; `clear` removes only the override.

use serde_json::json;
use switchyard_core::{BreakerKey, Scope, check_required_reason};
use switchyard_proto::admin as apb;

use super::{
    Ctx, breaker_state_name, check_for, override_name, policy_json, reason_or_default, window_label,
};
use crate::args::{BreakerCommand, KeyReasonArgs, OverrideArgs};
use crate::duration::format_duration_ms;
use crate::output::{
    Fields, Table, format_ago, format_opt_time_ms, now_ms, print_json, print_line, print_text,
    truncate,
};

/// Pages fetched at most by `breaker list` (a guard against a server that never ends a list).
const LIST_PAGES_MAX: usize = 100_000;

/// Runs a `breaker` subcommand.
pub async fn run(ctx: &Ctx, command: BreakerCommand) -> anyhow::Result<()> {
    match command {
        BreakerCommand::List { scope } => list(ctx, scope).await,
        BreakerCommand::Get { key } => get(ctx, &key).await,
        BreakerCommand::Open(a) => {
            set_override(ctx, a, apb::OverrideMode::ForcedOpen, "open").await
        }
        BreakerCommand::Close(a) => {
            set_override(ctx, a, apb::OverrideMode::ForcedClosed, "close").await
        }
        BreakerCommand::Disable(a) => {
            set_override(ctx, a, apb::OverrideMode::Disabled, "disable").await
        }
        BreakerCommand::MetricsOnly(a) => {
            set_override(ctx, a, apb::OverrideMode::MetricsOnly, "metrics-only").await
        }
        BreakerCommand::Reset(a) => reset(ctx, a).await,
        BreakerCommand::Clear(a) => clear(ctx, a).await,
    }
}

fn parse_key(key: &str) -> anyhow::Result<String> {
    BreakerKey::parse(key)
        .map(|k| k.as_str().to_string())
        .map_err(anyhow::Error::from)
}

async fn list(ctx: &Ctx, scope: Option<String>) -> anyhow::Result<()> {
    let scope = match scope {
        Some(s) => Scope::parse(&s)?.as_str().to_string(),
        None => String::new(),
    };
    let mut breakers = Vec::new();
    let mut after_key = String::new();
    let mut applied_index = 0;
    for _ in 0..LIST_PAGES_MAX {
        let request = apb::ListBreakersRequest {
            local: ctx.local,
            scope: scope.clone(),
            after_key: after_key.clone(),
            limit: 0,
        };
        let page = ctx
            .admin
            .call("ListBreakers", request, |mut c, r| async move {
                c.list_breakers(r).await
            })
            .await?;
        applied_index = page.applied_index;
        breakers.extend(page.breakers);
        // Stop at the last page, or if the server does not move forward.
        if page.next_after_key.is_empty() || page.next_after_key <= after_key {
            break;
        }
        after_key = page.next_after_key;
    }
    if ctx.json {
        let list: Vec<_> = breakers.iter().map(breaker_json).collect();
        print_json(&json!({ "breakers": list, "applied_index": applied_index }));
        return Ok(());
    }
    if breakers.is_empty() {
        print_line(&format!(
            "no breakers{}",
            if scope.is_empty() {
                String::new()
            } else {
                format!(" in scope {scope}")
            }
        ));
        return Ok(());
    }
    let now = now_ms();
    let mut table = Table::new(&[
        "KEY",
        "STATE",
        "CALLS",
        "FAILED",
        "SLOW",
        "INSTANCES",
        "SINCE",
        "REASON",
    ]);
    for b in &breakers {
        let d = b.decision.clone().unwrap_or_default();
        table.row(vec![
            d.key.clone(),
            breaker_state_name(d.state),
            b.window_calls.to_string(),
            b.window_failures.to_string(),
            b.window_slow.to_string(),
            b.window_instances.to_string(),
            format_ago(d.since_ms, now),
            truncate(&d.reason, 60),
        ]);
    }
    print_text(&table.render());
    Ok(())
}

async fn get(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    let key = parse_key(key)?;
    let request = apb::GetBreakerRequest {
        key: key.clone(),
        local: ctx.local,
    };
    let r = ctx
        .admin
        .call("GetBreaker", request, |mut c, r| async move {
            c.get_breaker(r).await
        })
        .await?;
    let info = r
        .breaker
        .ok_or_else(|| anyhow::anyhow!("the server answered without a breaker for {key}"))?;
    if ctx.json {
        let mut value = breaker_json(&info);
        value["applied_index"] = json!(r.applied_index);
        print_json(&value);
        return Ok(());
    }
    let d = info.decision.clone().unwrap_or_default();
    let now = now_ms();
    let mut f = Fields::new();
    f.add("key", d.key.clone())
        .add("state", breaker_state_name(d.state))
        .add("reason", d.reason.clone())
        .add(
            "since",
            format!(
                "{} ({})",
                format_opt_time_ms(Some(d.since_ms)),
                format_ago(d.since_ms, now)
            ),
        );
    if let Some(until) = d.open_until_ms {
        f.add("half-open at", format_opt_time_ms(Some(until)));
    }
    f.add(
        "override",
        override_of(d.state).unwrap_or_else(|| "none".to_string()),
    );
    if let Some(expires) = d.override_expires_at_ms {
        let left = expires.saturating_sub(now);
        f.add(
            "override expires",
            format!(
                "{} (in {})",
                format_opt_time_ms(Some(expires)),
                format_duration_ms(left)
            ),
        );
    }
    f.add("probe permits in use", d.probe_permits_in_use.to_string())
        .add(
            "window",
            format!(
                "{} calls, {} failed, {} slow",
                info.window_calls, info.window_failures, info.window_slow
            ),
        )
        .add("failing instances", info.window_instances.to_string())
        .add(
            "fleet retries",
            fleet_retries_line(d.fleet_retries.as_ref()),
        )
        .add("consecutive opens", info.consecutive_opens.to_string())
        .add("updated at index", info.updated_index.to_string());
    if let Some(p) = &d.policy {
        f.add(
            "policy",
            format!(
                "window {}, min_calls {}, failure_rate >= {}%, slow >= {}ms at {}%, min_instances {}, \
                 open {}ms (max {}ms), probes {}/{} lease {}ms",
                window_label(p),
                p.min_calls,
                p.failure_rate_threshold,
                p.slow_call_duration_ms,
                p.slow_call_rate_threshold,
                p.min_instances,
                p.open_duration_ms,
                p.open_duration_max_ms,
                p.probe_permits,
                p.probe_success_threshold,
                p.probe_lease_ms
            ),
        );
    }
    print_text(&f.render());
    Ok(())
}

/// The fleet retry figures in one line, e.g. `37 per 212 first attempts (17%) from 4
/// instances over 10s`.
fn fleet_retries_line(f: Option<&switchyard_proto::client::FleetRetries>) -> String {
    let Some(f) = f else {
        return "not reported by this node".to_string();
    };
    if f.first_attempts == 0 && f.retries == 0 {
        return "none in the window".to_string();
    }
    let percent = if f.first_attempts == 0 {
        String::new()
    } else {
        format!(
            " ({}%)",
            u128::from(f.retries) * 100 / u128::from(f.first_attempts)
        )
    };
    format!(
        "{} per {} first attempts{percent} from {} instances over {}",
        f.retries,
        f.first_attempts,
        f.instances,
        format_duration_ms(f.window_ms)
    )
}

/// The override a state stands for, if it is an operator override (`FORCED_OPEN`, ...).
fn override_of(state: i32) -> Option<String> {
    use switchyard_proto::client::BreakerState as S;
    match S::try_from(state).ok()? {
        S::ForcedOpen | S::ForcedClosed | S::Disabled | S::MetricsOnly => {
            Some(breaker_state_name(state))
        }
        _ => None,
    }
}

/// A breaker as JSON: the decision, the window evidence and the effective policy.
pub fn breaker_json(info: &apb::BreakerInfo) -> serde_json::Value {
    let d = info.decision.clone().unwrap_or_default();
    json!({
        "key": d.key,
        "state": breaker_state_name(d.state),
        "reason": d.reason,
        "since_ms": d.since_ms,
        "open_until_ms": d.open_until_ms,
        "override": override_of(d.state),
        "override_expires_at_ms": d.override_expires_at_ms,
        "probe_permits_in_use": d.probe_permits_in_use,
        "window": {
            "calls": info.window_calls,
            "failures": info.window_failures,
            "slow": info.window_slow,
            "failing_instances": info.window_instances,
        },
        "fleet_retries": d.fleet_retries.as_ref().map(|f| json!({
            "first_attempts": f.first_attempts,
            "retries": f.retries,
            "instances": f.instances,
            "window_ms": f.window_ms,
        })),
        "consecutive_opens": info.consecutive_opens,
        "updated_index": info.updated_index,
        "policy": d.policy.as_ref().map(|p| policy_json(None, p)),
    })
}

/// An override's reason, required (the rule of every surface, from core): refused before
/// anything is sent when missing or blank.
fn override_reason(reason: Option<&str>, verb: &str) -> anyhow::Result<String> {
    let reason = reason.unwrap_or("").trim();
    check_required_reason("reason", reason).map_err(|e| {
        anyhow::anyhow!(
            "invalid `{}`: {} (`switchyard breaker {verb} KEY --reason TEXT`)",
            e.field,
            e.rule
        )
    })?;
    Ok(reason.to_owned())
}

async fn set_override(
    ctx: &Ctx,
    args: OverrideArgs,
    mode: apb::OverrideMode,
    verb: &str,
) -> anyhow::Result<()> {
    let key = parse_key(&args.key)?;
    check_for(args.for_ms)?;
    let reason = override_reason(args.reason.as_deref(), verb)?;
    let request = apb::SetOverrideRequest {
        key: key.clone(),
        mode: mode as i32,
        reason,
        for_ms: args.for_ms,
    };
    let r = ctx
        .admin
        .call("SetOverride", request, |mut c, r| async move {
            c.set_override(r).await
        })
        .await?;
    let until = args.for_ms.map_or_else(
        || " until cleared".to_string(),
        |ms| format!(" for {}", format_duration_ms(ms)),
    );
    ctx.print_committed(
        &format!("{key}: {}{until}", override_name(mode as i32)),
        r.index,
    );
    Ok(())
}

async fn reset(ctx: &Ctx, args: KeyReasonArgs) -> anyhow::Result<()> {
    let key = parse_key(&args.key)?;
    let request = apb::ResetBreakerRequest {
        key: key.clone(),
        reason: reason_or_default(args.reason.as_deref(), "breaker reset"),
    };
    let r = ctx
        .admin
        .call("ResetBreaker", request, |mut c, r| async move {
            c.reset_breaker(r).await
        })
        .await?;
    ctx.print_committed(
        &format!("{key}: reset to CLOSED under automatic control"),
        r.index,
    );
    Ok(())
}

async fn clear(ctx: &Ctx, args: KeyReasonArgs) -> anyhow::Result<()> {
    let key = parse_key(&args.key)?;
    let request = apb::ClearOverrideRequest {
        key: key.clone(),
        reason: reason_or_default(args.reason.as_deref(), "breaker clear"),
    };
    let r = ctx
        .admin
        .call("ClearOverride", request, |mut c, r| async move {
            c.clear_override(r).await
        })
        .await?;
    ctx.print_committed(&format!("{key}: override cleared"), r.index);
    Ok(())
}

#[cfg(test)]
mod override_reason_tests {
    use super::override_reason;

    #[test]
    fn an_override_without_a_reason_is_refused_naming_reason() {
        for missing in [None, Some(""), Some("   ")] {
            let err = override_reason(missing, "open").expect_err("refused");
            assert!(
                err.to_string().starts_with("invalid `reason`: is required"),
                "{err}"
            );
        }
        assert_eq!(
            override_reason(Some(" incident 4711 "), "open").expect("given"),
            "incident 4711"
        );
        let err = override_reason(Some("a\u{7}b"), "open").expect_err("control character");
        assert!(err.to_string().contains("control characters"), "{err}");
    }
}
