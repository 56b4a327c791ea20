//! The operator commands, one module per command group, all speaking the admin API through
//! [`Admin`]:
//!
//! - [`status`]: cluster overview.
//! - [`breaker`]: list, inspect, override and reset breakers.
//! - [`policy`]: put, get, list and delete policies.
//! - [`tier`]: tiers, tier overrides and tier rules.
//! - [`audit`]: the audit log as a table, JSON or CSV.
//! - [`sla`]: service-level reports.
//! - [`members`]: Raft membership.
//!
//! Reads print an aligned table (or `--json` on stdout); writes print the log index they were
//! committed at.

pub mod audit;
pub mod breaker;
pub mod members;
pub mod policy;
pub mod sla;
pub mod status;
pub mod tier;

use std::path::Path;

use anyhow::Context as _;
use serde_json::json;
use switchyard_core::Tier;
use switchyard_proto::admin as apb;
use switchyard_proto::client as pb;

use crate::admin::Admin;
use crate::output::{enum_name, print_json, print_line};

/// What every operator command needs: the connection and the output flags.
#[derive(Debug)]
pub struct Ctx {
    /// The admin API, with failover.
    pub admin: Admin,
    /// `--json`: machine output on stdout.
    pub json: bool,
    /// `--local`: non-linearizable reads.
    pub local: bool,
}

impl Ctx {
    /// Reports a committed write: `{"index": N}` with `--json`, else `<what> (committed at
    /// index N)`.
    pub fn print_committed(&self, what: &str, index: u64) {
        if self.json {
            print_json(&json!({ "index": index }));
        } else {
            print_line(&format!("{what} (committed at index {index})"));
        }
    }
}

/// Checks `--for` of an override or a pin against core's one limit, before anything is sent.
pub fn check_for(for_ms: Option<u64>) -> anyhow::Result<()> {
    if let Some(for_ms) = for_ms {
        switchyard_core::check_override_for_ms("--for", for_ms)
            .map_err(|e| anyhow::anyhow!("invalid `{}`: {}", e.field, e.rule))?;
    }
    Ok(())
}

/// The reason sent when the operator gives none (the server requires one for the audit log).
pub fn reason_or_default(reason: Option<&str>, command: &str) -> String {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None => format!("`switchyard {command}` (no reason given)"),
    }
}

/// A breaker state number as its name (`OPEN`).
pub fn breaker_state_name(value: i32) -> String {
    pb::BreakerState::try_from(value).map_or_else(
        |_| format!("UNKNOWN({value})"),
        |s| enum_name(s.as_str_name(), "BREAKER_STATE_"),
    )
}

/// An override mode number as its name (`FORCED_OPEN`).
pub fn override_name(value: i32) -> String {
    apb::OverrideMode::try_from(value).map_or_else(
        |_| format!("UNKNOWN({value})"),
        |s| enum_name(s.as_str_name(), "OVERRIDE_MODE_"),
    )
}

/// A tier number as its name (`ESSENTIAL`), or the number if unknown.
pub fn tier_name(value: u32) -> String {
    u8::try_from(value)
        .ok()
        .and_then(|n| Tier::from_number(n).ok())
        .map_or_else(|| value.to_string(), |t| t.as_str().to_string())
}

/// A tier as `3 ESSENTIAL`.
pub fn tier_label(value: u32) -> String {
    format!("{value} {}", tier_name(value))
}

/// Reads a TOML or JSON file: `.json` / `.toml` by extension, otherwise by its first
/// character. Returns the text and whether it is JSON.
pub fn read_config_file(path: &Path) -> anyhow::Result<(String, bool)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_json = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(ext) if ext == "json" => true,
        Some(ext) if ext == "toml" => false,
        _ => text.trim_start().starts_with('{'),
    };
    Ok((text, is_json))
}

/// A policy as JSON in the policy-file format (so `policy list --json` can be put back).
pub fn policy_json(target: Option<&apb::PolicyTarget>, policy: &pb::Policy) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    match target.and_then(|t| t.target.as_ref()) {
        Some(apb::policy_target::Target::Key(key)) => {
            map.insert("key".into(), json!(key));
        }
        Some(apb::policy_target::Target::Scope(scope)) => {
            map.insert("scope".into(), json!(scope));
        }
        None => {}
    }
    let window = match &policy.window {
        Some(pb::policy::Window::Time(w)) => {
            json!({ "kind": "time", "duration_ms": w.duration_ms, "buckets": w.buckets })
        }
        Some(pb::policy::Window::Count(w)) => json!({
            "kind": "count",
            "calls": w.calls,
            "max_age_ms": w.max_age_ms.unwrap_or(switchyard_core::COUNT_MAX_AGE_MS_DEFAULT),
        }),
        None => serde_json::Value::Null,
    };
    map.insert("window".into(), window);
    for (name, value) in [
        ("min_calls", json!(policy.min_calls)),
        (
            "failure_rate_threshold",
            json!(policy.failure_rate_threshold),
        ),
        ("slow_call_duration_ms", json!(policy.slow_call_duration_ms)),
        (
            "slow_call_rate_threshold",
            json!(policy.slow_call_rate_threshold),
        ),
        ("min_instances", json!(policy.min_instances)),
        ("open_duration_ms", json!(policy.open_duration_ms)),
        ("open_duration_max_ms", json!(policy.open_duration_max_ms)),
        ("open_jitter_percent", json!(policy.open_jitter_percent)),
        ("probe_permits", json!(policy.probe_permits)),
        (
            "probe_success_threshold",
            json!(policy.probe_success_threshold),
        ),
        ("probe_lease_ms", json!(policy.probe_lease_ms)),
        (
            "fresh_span_confidence",
            json!(
                policy
                    .fresh_span_confidence
                    .unwrap_or(switchyard_core::Confidence::default().percent())
            ),
        ),
    ] {
        map.insert(name.into(), value);
    }
    serde_json::Value::Object(map)
}

/// A policy window in one short cell: `time 10000ms/10` or `count 100`.
pub fn window_label(policy: &pb::Policy) -> String {
    match &policy.window {
        Some(pb::policy::Window::Time(w)) => format!("time {}ms/{}", w.duration_ms, w.buckets),
        Some(pb::policy::Window::Count(w)) => format!(
            "count {} ≤{}ms",
            w.calls,
            w.max_age_ms
                .unwrap_or(switchyard_core::COUNT_MAX_AGE_MS_DEFAULT)
        ),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_strip_their_prefixes() {
        assert_eq!(
            breaker_state_name(pb::BreakerState::HalfOpen as i32),
            "HALF_OPEN"
        );
        assert_eq!(
            override_name(apb::OverrideMode::MetricsOnly as i32),
            "METRICS_ONLY"
        );
        assert_eq!(breaker_state_name(99), "UNKNOWN(99)");
        assert_eq!(tier_label(4), "4 READ_ONLY");
        assert_eq!(tier_name(9), "9");
    }

    #[test]
    fn a_missing_reason_gets_a_default() {
        assert_eq!(
            reason_or_default(Some(" deploy "), "breaker open"),
            "deploy"
        );
        assert!(reason_or_default(Some(""), "breaker open").contains("breaker open"));
        assert!(reason_or_default(None, "tier set").contains("tier set"));
    }
}
