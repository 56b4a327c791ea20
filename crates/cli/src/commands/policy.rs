//! `switchyard policy put|get|list|delete`.
//!
//! A policy file holds one policy or a `[[policy]]` array; the whole file goes in one
//! `PutPolicies` call, so it is applied atomically (all or nothing). `KEY` is `scope/name` for
//! a breaker's policy or a bare `scope` for the scope's default.

use serde_json::json;
use switchyard_core::{BreakerKey, Confidence, Scope, parse_policy_json, parse_policy_toml};
use switchyard_proto::admin as apb;

use super::{Ctx, policy_json, read_config_file, reason_or_default, window_label};
use crate::args::{KeyReasonArgs, PolicyCommand};
use crate::output::{Fields, Table, enum_name, print_json, print_line, print_text};

/// Runs a `policy` subcommand.
pub async fn run(ctx: &Ctx, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Put { file, reason } => put(ctx, &file, reason.as_deref()).await,
        PolicyCommand::Get { key } => get(ctx, &key).await,
        PolicyCommand::List => list(ctx).await,
        PolicyCommand::Delete(args) => delete(ctx, args).await,
    }
}

/// Parses `scope/name` (a key) or `scope` (a scope default).
pub fn parse_target(text: &str) -> anyhow::Result<apb::PolicyTarget> {
    use apb::policy_target::Target;
    let target = if text.contains('/') {
        Target::Key(BreakerKey::parse(text)?.as_str().to_string())
    } else {
        Target::Scope(Scope::parse(text)?.as_str().to_string())
    };
    Ok(apb::PolicyTarget {
        target: Some(target),
    })
}

/// A target as `scope/name` or `scope (default)`.
fn target_label(target: Option<&apb::PolicyTarget>) -> String {
    match target.and_then(|t| t.target.as_ref()) {
        Some(apb::policy_target::Target::Key(k)) => k.clone(),
        Some(apb::policy_target::Target::Scope(s)) => format!("{s} (scope default)"),
        None => "-".into(),
    }
}

async fn put(ctx: &Ctx, file: &std::path::Path, reason: Option<&str>) -> anyhow::Result<()> {
    let (text, is_json) = read_config_file(file)?;
    let parsed = if is_json {
        parse_policy_json(&text)
    } else {
        parse_policy_toml(&text)
    };
    let policies = parsed.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let entries: Vec<apb::PolicyEntry> = policies
        .iter()
        .map(|(target, policy)| apb::PolicyEntry::from((target, policy)))
        .collect();
    let labels: Vec<String> = entries
        .iter()
        .map(|e| target_label(e.target.as_ref()))
        .collect();
    let request = apb::PutPoliciesRequest {
        policies: entries,
        reason: reason_or_default(reason, "policy put"),
    };
    let r = ctx
        .admin
        .call("PutPolicies", request, |mut c, r| async move {
            c.put_policies(r).await
        })
        .await?;
    let what = match labels.as_slice() {
        [one] => format!("policy for {one} stored"),
        many => format!("{} policies stored: {}", many.len(), many.join(", ")),
    };
    ctx.print_committed(&what, r.index);
    Ok(())
}

async fn get(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    let target = parse_target(key)?;
    let request = apb::GetPolicyRequest {
        target: Some(target.clone()),
        local: ctx.local,
    };
    let r = ctx
        .admin
        .call("GetPolicy", request, |mut c, r| async move {
            c.get_policy(r).await
        })
        .await?;
    let policy = r.policy.unwrap_or_default();
    let source = enum_name(r.source().as_str_name(), "POLICY_SOURCE_");
    if ctx.json {
        let mut value = policy_json(Some(&target), &policy);
        value["source"] = json!(source);
        value["applied_index"] = json!(r.applied_index);
        print_json(&value);
        return Ok(());
    }
    let source_text = match source.as_str() {
        "KEY" => "set for this key",
        "SCOPE" => "the scope's default policy",
        "DEFAULT" => "the built-in default",
        _ => "unknown",
    };
    let mut f = Fields::new();
    f.add("target", target_label(Some(&target)))
        .add("source", format!("{source} ({source_text})"))
        .add("window", window_label(&policy))
        .add("min_calls", policy.min_calls.to_string())
        .add(
            "failure_rate_threshold",
            format!("{}%", policy.failure_rate_threshold),
        )
        .add(
            "slow_call_duration_ms",
            policy.slow_call_duration_ms.to_string(),
        )
        .add(
            "slow_call_rate_threshold",
            format!("{}%", policy.slow_call_rate_threshold),
        )
        .add("min_instances", policy.min_instances.to_string())
        .add("open_duration_ms", policy.open_duration_ms.to_string())
        .add(
            "open_duration_max_ms",
            policy.open_duration_max_ms.to_string(),
        )
        .add(
            "open_jitter_percent",
            format!("{}%", policy.open_jitter_percent),
        )
        .add("probe_permits", policy.probe_permits.to_string())
        .add(
            "probe_success_threshold",
            policy.probe_success_threshold.to_string(),
        )
        .add("probe_lease_ms", policy.probe_lease_ms.to_string())
        .add(
            "fresh_span_confidence",
            confidence_label(policy.fresh_span_confidence),
        );
    print_text(&f.render());
    Ok(())
}

/// `99.99%`, or `off (whole window only)`.
fn confidence_label(percent: Option<f64>) -> String {
    match percent.map(Confidence::from_percent) {
        None => Confidence::default().to_string(),
        Some(Ok(c)) if !c.is_on() => "off (whole window only)".into(),
        Some(Ok(c)) => c.to_string(),
        Some(Err(_)) => format!("{}%", percent.unwrap_or_default()),
    }
}

async fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let request = apb::ListPoliciesRequest { local: ctx.local };
    let r = ctx
        .admin
        .call("ListPolicies", request, |mut c, r| async move {
            c.list_policies(r).await
        })
        .await?;
    if ctx.json {
        // The policy-file format, so the output can be put back as it is.
        let list: Vec<_> = r
            .policies
            .iter()
            .map(|e| policy_json(e.target.as_ref(), &e.policy.unwrap_or_default()))
            .collect();
        print_json(&json!({ "policy": list }));
        return Ok(());
    }
    if r.policies.is_empty() {
        print_line("no policies stored; every breaker uses the built-in default");
        return Ok(());
    }
    let mut table = Table::new(&[
        "TARGET",
        "WINDOW",
        "MIN_CALLS",
        "FAIL%",
        "SLOW_MS",
        "SLOW%",
        "MIN_INST",
        "OPEN_MS",
        "PROBES",
    ]);
    for e in &r.policies {
        let p = e.policy.unwrap_or_default();
        table.row(vec![
            target_label(e.target.as_ref()),
            window_label(&p),
            p.min_calls.to_string(),
            p.failure_rate_threshold.to_string(),
            p.slow_call_duration_ms.to_string(),
            p.slow_call_rate_threshold.to_string(),
            p.min_instances.to_string(),
            p.open_duration_ms.to_string(),
            format!("{}/{}", p.probe_permits, p.probe_success_threshold),
        ]);
    }
    print_text(&table.render());
    Ok(())
}

async fn delete(ctx: &Ctx, args: KeyReasonArgs) -> anyhow::Result<()> {
    let target = parse_target(&args.key)?;
    let label = target_label(Some(&target));
    let request = apb::DeletePolicyRequest {
        target: Some(target),
        reason: reason_or_default(args.reason.as_deref(), "policy delete"),
    };
    let r = ctx
        .admin
        .call("DeletePolicy", request, |mut c, r| async move {
            c.delete_policy(r).await
        })
        .await?;
    ctx.print_committed(&format!("policy for {label} deleted"), r.index);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use apb::policy_target::Target;

    #[test]
    fn targets_are_keys_or_scopes() {
        assert_eq!(
            parse_target("payments/db").unwrap().target,
            Some(Target::Key("payments/db".into()))
        );
        assert_eq!(
            parse_target("payments").unwrap().target,
            Some(Target::Scope("payments".into()))
        );
        let err = parse_target("Payments/DB").unwrap_err().to_string();
        assert!(err.contains("`key`"), "{err}");
        let err = parse_target("Pay ments").unwrap_err().to_string();
        assert!(err.contains("`scope`"), "{err}");
    }
}
