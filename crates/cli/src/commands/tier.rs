//! `switchyard tier get|list|set|clear` and `switchyard tier rules put|get|delete`.
//!
//! `tier rules get` prints the rules in the tier-rule file format (TOML, or JSON with
//! `--json`), so the output can be edited and put back.

use std::fmt::Write as _;

use serde_json::json;
use switchyard_core::{Scope, parse_tier_rules_json, parse_tier_rules_toml};
use switchyard_proto::admin as apb;

use super::{
    Ctx, breaker_state_name, check_for, read_config_file, reason_or_default, tier_label, tier_name,
};
use crate::args::{KeyReasonArgs, TierCommand, TierRulesCommand};
use crate::duration::format_duration_ms;
use crate::output::{
    Fields, Table, format_ago, format_opt_time_ms, now_ms, print_json, print_line, print_text,
    truncate,
};

/// Runs a `tier` subcommand.
pub async fn run(ctx: &Ctx, command: TierCommand) -> anyhow::Result<()> {
    match command {
        TierCommand::Get { scope } => get(ctx, &scope).await,
        TierCommand::List => list(ctx).await,
        TierCommand::Set {
            scope,
            tier,
            for_ms,
            reason,
        } => set(ctx, &scope, tier, for_ms, reason.as_deref()).await,
        TierCommand::Clear(args) => clear(ctx, args).await,
        TierCommand::Rules(TierRulesCommand::Put { file, reason }) => {
            rules_put(ctx, &file, reason.as_deref()).await
        }
        TierCommand::Rules(TierRulesCommand::Get { scope }) => rules_get(ctx, &scope).await,
        TierCommand::Rules(TierRulesCommand::Delete(args)) => rules_delete(ctx, args).await,
    }
}

fn parse_scope(scope: &str) -> anyhow::Result<String> {
    Ok(Scope::parse(scope)?.as_str().to_string())
}

/// A scope as JSON.
fn scope_json(info: &apb::ScopeInfo) -> serde_json::Value {
    let d = info.decision.clone().unwrap_or_default();
    json!({
        "scope": d.scope,
        "tier": d.tier,
        "tier_name": tier_name(d.tier),
        "reason": d.reason,
        "since_ms": d.since_ms,
        "features": d.features,
        "override_tier": d.override_tier,
        "override_expires_at_ms": d.override_expires_at_ms,
        "updated_index": info.updated_index,
    })
}

async fn get(ctx: &Ctx, scope: &str) -> anyhow::Result<()> {
    let scope = parse_scope(scope)?;
    let request = apb::GetTierRequest {
        scope: scope.clone(),
        local: ctx.local,
    };
    let r = ctx
        .admin
        .call(
            "GetTier",
            request,
            |mut c, r| async move { c.get_tier(r).await },
        )
        .await?;
    let info = r
        .scope
        .ok_or_else(|| anyhow::anyhow!("the server answered without scope {scope}"))?;
    if ctx.json {
        let mut value = scope_json(&info);
        value["applied_index"] = json!(r.applied_index);
        print_json(&value);
        return Ok(());
    }
    let d = info.decision.clone().unwrap_or_default();
    let now = now_ms();
    let mut f = Fields::new();
    f.add("scope", d.scope.clone())
        .add("tier", tier_label(d.tier))
        .add("reason", d.reason.clone())
        .add(
            "since",
            format!(
                "{} ({})",
                format_opt_time_ms(Some(d.since_ms)),
                format_ago(d.since_ms, now)
            ),
        );
    match d.override_tier {
        Some(t) => {
            let expiry = d.override_expires_at_ms.map_or_else(
                || "until cleared".to_string(),
                |e| {
                    format!(
                        "until {} (in {})",
                        format_opt_time_ms(Some(e)),
                        format_duration_ms(e.saturating_sub(now))
                    )
                },
            );
            f.add("override", format!("{} {expiry}", tier_label(t)));
        }
        None => {
            f.add("override", "none");
        }
    }
    let features: Vec<String> = d
        .features
        .iter()
        .map(|(name, on)| format!("{name}={}", if *on { "on" } else { "off" }))
        .collect();
    f.add(
        "features",
        if features.is_empty() {
            "none".to_string()
        } else {
            features.join(", ")
        },
    )
    .add("updated at index", info.updated_index.to_string());
    print_text(&f.render());
    Ok(())
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let request = apb::ListTiersRequest { local: ctx.local };
    let r = ctx
        .admin
        .call("ListTiers", request, |mut c, r| async move {
            c.list_tiers(r).await
        })
        .await?;
    if ctx.json {
        let list: Vec<_> = r.scopes.iter().map(scope_json).collect();
        print_json(&json!({ "scopes": list, "applied_index": r.applied_index }));
        return Ok(());
    }
    if r.scopes.is_empty() {
        print_line("no scopes known yet");
        return Ok(());
    }
    let now = now_ms();
    let mut table = Table::new(&["SCOPE", "TIER", "OVERRIDE", "SINCE", "REASON"]);
    for info in &r.scopes {
        let d = info.decision.clone().unwrap_or_default();
        table.row(vec![
            d.scope.clone(),
            tier_label(d.tier),
            d.override_tier.map_or_else(|| "-".to_string(), tier_label),
            format_ago(d.since_ms, now),
            truncate(&d.reason, 60),
        ]);
    }
    print_text(&table.render());
    Ok(())
}

async fn set(
    ctx: &Ctx,
    scope: &str,
    tier: u32,
    for_ms: Option<u64>,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    let scope = parse_scope(scope)?;
    check_for(for_ms)?;
    let request = apb::SetTierOverrideRequest {
        scope: scope.clone(),
        tier,
        reason: reason_or_default(reason, "tier set"),
        for_ms,
    };
    let r = ctx
        .admin
        .call("SetTierOverride", request, |mut c, r| async move {
            c.set_tier_override(r).await
        })
        .await?;
    let until = for_ms.map_or_else(
        || " until cleared".to_string(),
        |ms| format!(" for {}", format_duration_ms(ms)),
    );
    ctx.print_committed(
        &format!("{scope}: tier pinned to {}{until}", tier_label(tier)),
        r.index,
    );
    Ok(())
}

async fn clear(ctx: &Ctx, args: KeyReasonArgs) -> anyhow::Result<()> {
    let scope = parse_scope(&args.key)?;
    let request = apb::ClearTierOverrideRequest {
        scope: scope.clone(),
        reason: reason_or_default(args.reason.as_deref(), "tier clear"),
    };
    let r = ctx
        .admin
        .call("ClearTierOverride", request, |mut c, r| async move {
            c.clear_tier_override(r).await
        })
        .await?;
    ctx.print_committed(
        &format!("{scope}: tier override cleared; the rules decide again"),
        r.index,
    );
    Ok(())
}

async fn rules_put(ctx: &Ctx, file: &std::path::Path, reason: Option<&str>) -> anyhow::Result<()> {
    let (text, is_json) = read_config_file(file)?;
    let parsed = if is_json {
        parse_tier_rules_json(&text)
    } else {
        parse_tier_rules_toml(&text)
    };
    let rules = parsed.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let wire = apb::TierRules::from(&rules);
    let summary = format!(
        "tier rules for {} stored ({} rules, {} features)",
        wire.scope,
        wire.rules.len(),
        wire.features.len()
    );
    let request = apb::PutTierRulesRequest {
        rules: Some(wire),
        reason: reason_or_default(reason, "tier rules put"),
    };
    let r = ctx
        .admin
        .call("PutTierRules", request, |mut c, r| async move {
            c.put_tier_rules(r).await
        })
        .await?;
    ctx.print_committed(&summary, r.index);
    Ok(())
}

/// A rule's condition as the fields of the file format's `when` table.
fn condition_fields(when: &apb::TierCondition) -> Vec<(&'static str, serde_json::Value)> {
    use apb::tier_condition::Condition;
    let mut fields = vec![("breaker", json!(when.breaker))];
    match &when.condition {
        Some(Condition::State(s)) => {
            fields.push(("state", json!(breaker_state_name(*s).to_ascii_lowercase())));
        }
        Some(Condition::P95LatencyMsAbove(ms)) => fields.push(("p95_latency_ms_above", json!(ms))),
        Some(Condition::FailureRateAbove(p)) => fields.push(("failure_rate_above", json!(p))),
        None => {}
    }
    fields
}

/// Tier rules as JSON in the tier-rule file format.
fn rules_json(rules: &apb::TierRules) -> serde_json::Value {
    let list: Vec<_> = rules
        .rules
        .iter()
        .map(|rule| {
            let when: serde_json::Map<String, serde_json::Value> = rule
                .when
                .as_ref()
                .map(condition_fields)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            json!({ "when": when, "tier": rule.tier })
        })
        .collect();
    json!({
        "scope": rules.scope,
        "recover_after_ms": rules.recover_after_ms,
        "rule": list,
        "features": rules.features,
    })
}

/// Tier rules as a TOML tier-rule file.
fn rules_toml(rules: &apb::TierRules) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scope = {}", json!(rules.scope));
    let _ = writeln!(out, "recover_after_ms = {}", rules.recover_after_ms);
    for rule in &rules.rules {
        let when: Vec<String> = rule
            .when
            .as_ref()
            .map(condition_fields)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let _ = writeln!(
            out,
            "\n[[rule]]\nwhen = {{ {} }}\ntier = {}",
            when.join(", "),
            rule.tier
        );
    }
    if !rules.features.is_empty() {
        out.push_str("\n[features]\n");
        for (name, tier) in &rules.features {
            let _ = writeln!(out, "{name} = {tier}");
        }
    }
    out
}

async fn rules_get(ctx: &Ctx, scope: &str) -> anyhow::Result<()> {
    let scope = parse_scope(scope)?;
    let request = apb::GetTierRulesRequest {
        scope: scope.clone(),
        local: ctx.local,
    };
    let r = ctx
        .admin
        .call("GetTierRules", request, |mut c, r| async move {
            c.get_tier_rules(r).await
        })
        .await?;
    let rules = r.rules.unwrap_or_else(|| apb::TierRules {
        scope,
        ..Default::default()
    });
    if ctx.json {
        print_json(&rules_json(&rules));
    } else {
        print_text(&rules_toml(&rules));
    }
    Ok(())
}

async fn rules_delete(ctx: &Ctx, args: KeyReasonArgs) -> anyhow::Result<()> {
    let scope = parse_scope(&args.key)?;
    let request = apb::DeleteTierRulesRequest {
        scope: scope.clone(),
        reason: reason_or_default(args.reason.as_deref(), "tier rules delete"),
    };
    let r = ctx
        .admin
        .call("DeleteTierRules", request, |mut c, r| async move {
            c.delete_tier_rules(r).await
        })
        .await?;
    ctx.print_committed(&format!("tier rules for {scope} deleted"), r.index);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_rules_parse_back_to_the_same_rules() {
        let file = "scope = \"payments\"\nrecover_after_ms = 30000\n\
                    [[rule]]\nwhen = { breaker = \"payments/ml-fraud\", state = \"open\" }\ntier = 3\n\
                    [[rule]]\nwhen = { breaker = \"payments/db\", p95_latency_ms_above = 5000 }\ntier = 4\n\
                    [features]\nml_fraud = 2\n";
        let rules = parse_tier_rules_toml(file).unwrap();
        let wire = apb::TierRules::from(&rules);
        assert_eq!(parse_tier_rules_toml(&rules_toml(&wire)).unwrap(), rules);
        let json_text = rules_json(&wire).to_string();
        assert_eq!(parse_tier_rules_json(&json_text).unwrap(), rules);
    }
}
