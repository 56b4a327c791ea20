//! Policy files (DESIGN §6): TOML or JSON, one policy per file or a `[[policy]]` array.
//!
//! Files are parsed field by field instead of through one derived `Deserialize`, so that a
//! wrong type or an unknown field produces a [`ValidationError`] naming that exact field
//! (`policy[1].window.buckets`) rather than a serde message without a path.

use serde_json::{Map, Value};

use crate::policy::COUNT_MAX_AGE_MS_DEFAULT;
use crate::{BreakerKey, Confidence, Policy, PolicyTarget, Scope, ValidationError, WindowSpec};

/// Maximum number of policies in one file.
pub const POLICY_FILE_MAX_POLICIES: usize = 1_000;

/// Parses a TOML policy file: one policy (with `key = ...` or `scope = ...`) or a
/// `[[policy]]` array. Every policy is validated.
pub fn parse_policy_toml(text: &str) -> Result<Vec<(PolicyTarget, Policy)>, ValidationError> {
    let value = toml_to_json(text)?;
    policies_from_value(&value)
}

/// Parses a JSON policy file: one policy object (with `"key"` or `"scope"`) or
/// `{"policy": [...]}`. Every policy is validated.
pub fn parse_policy_json(text: &str) -> Result<Vec<(PolicyTarget, Policy)>, ValidationError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ValidationError::new("file", format!("is not valid JSON: {e}")))?;
    policies_from_value(&value)
}

/// Parses TOML text into a JSON value tree, so TOML and JSON share one field-by-field reader.
pub(crate) fn toml_to_json(text: &str) -> Result<Value, ValidationError> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| ValidationError::new("file", format!("is not valid TOML: {}", e.message())))?;
    serde_json::to_value(table)
        .map_err(|e| ValidationError::new("file", format!("cannot be read: {e}")))
}

fn policies_from_value(value: &Value) -> Result<Vec<(PolicyTarget, Policy)>, ValidationError> {
    let map = value
        .as_object()
        .ok_or_else(|| ValidationError::new("file", "must be a table/object"))?;
    if let Some(array) = map.get("policy") {
        if let Some(extra) = map.keys().find(|k| *k != "policy") {
            return Err(ValidationError::new(
                extra.as_str(),
                "is not allowed next to a `policy` array; put it inside each [[policy]]",
            ));
        }
        let items = array.as_array().ok_or_else(|| {
            ValidationError::new("policy", "must be an array of tables ([[policy]])")
        })?;
        if items.is_empty() || items.len() > POLICY_FILE_MAX_POLICIES {
            return Err(ValidationError::new(
                "policy",
                format!(
                    "must hold 1 to {POLICY_FILE_MAX_POLICIES} policies, got {}",
                    items.len()
                ),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let obj = item.as_object().ok_or_else(|| {
                    ValidationError::new(format!("policy[{i}]"), "must be a table/object")
                })?;
                policy_from_map(obj).map_err(|e| e.within(&format!("policy[{i}]")))
            })
            .collect()
    } else {
        Ok(vec![policy_from_map(map)?])
    }
}

fn field<T: serde::de::DeserializeOwned>(
    name: &str,
    value: &Value,
    what: &str,
) -> Result<T, ValidationError> {
    serde_json::from_value(value.clone())
        .map_err(|_| ValidationError::new(name, format!("must be {what}, got {}", describe(value))))
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "a table".into(),
    }
}

/// Reads one policy object with its `key` or `scope`.
pub(crate) fn policy_from_map(
    map: &Map<String, Value>,
) -> Result<(PolicyTarget, Policy), ValidationError> {
    let mut target = None;
    let mut p = Policy::default();
    const U32: &str = "a non-negative integer (u32)";
    const U64: &str = "a non-negative integer (u64)";
    for (name, value) in map {
        match name.as_str() {
            "key" | "scope" => {
                if target.is_some() {
                    return Err(ValidationError::new(
                        name.as_str(),
                        "give exactly one of `key` or `scope`",
                    ));
                }
                let s: String = field(name, value, "a string")?;
                target = Some(if name == "key" {
                    PolicyTarget::Key(BreakerKey::parse(&s)?)
                } else {
                    PolicyTarget::Scope(Scope::parse(&s)?)
                });
            }
            "window" => p.window = window_from_value(value)?,
            "min_calls" => p.min_calls = field(name, value, U32)?,
            "failure_rate_threshold" => p.failure_rate_threshold = field(name, value, U32)?,
            "slow_call_duration_ms" => p.slow_call_duration_ms = field(name, value, U64)?,
            "slow_call_rate_threshold" => p.slow_call_rate_threshold = field(name, value, U32)?,
            "min_instances" => p.min_instances = field(name, value, U32)?,
            "open_duration_ms" => p.open_duration_ms = field(name, value, U64)?,
            "open_duration_max_ms" => p.open_duration_max_ms = field(name, value, U64)?,
            "open_jitter_percent" => p.open_jitter_percent = field(name, value, U32)?,
            "probe_permits" => p.probe_permits = field(name, value, U32)?,
            "probe_success_threshold" => p.probe_success_threshold = field(name, value, U32)?,
            "probe_lease_ms" => p.probe_lease_ms = field(name, value, U64)?,
            "fresh_span_confidence" => {
                let percent: f64 = field(name, value, "a number (percent)")?;
                p.fresh_span_confidence = Confidence::from_percent(percent)?;
            }
            other => return Err(ValidationError::new(other, "unknown field")),
        }
    }
    // The max follows a raised base unless given explicitly, so `open_duration_ms = 400000`
    // alone is valid.
    if !map.contains_key("open_duration_max_ms") && p.open_duration_max_ms < p.open_duration_ms {
        p.open_duration_max_ms = p.open_duration_ms;
    }
    let target = target.ok_or_else(|| {
        ValidationError::new("key", "is required (or `scope` for a scope default)")
    })?;
    p.validate()?;
    Ok((target, p))
}

fn window_from_value(value: &Value) -> Result<WindowSpec, ValidationError> {
    let map = value.as_object().ok_or_else(|| {
        ValidationError::new(
            "window",
            format!("must be a table, got {}", describe(value)),
        )
    })?;
    let kind: String = match map.get("kind") {
        Some(v) => field("window.kind", v, "\"time\" or \"count\"")?,
        None => {
            return Err(ValidationError::new(
                "window.kind",
                "is required: \"time\" or \"count\"",
            ));
        }
    };
    let get = |name: &str| map.get(name);
    match kind.as_str() {
        "time" => {
            let mut duration_ms = 10_000;
            let mut buckets = 10;
            for (name, v) in map {
                match name.as_str() {
                    "kind" => {}
                    "duration_ms" => {
                        duration_ms =
                            field("window.duration_ms", v, "a non-negative integer (u64)")?
                    }
                    "buckets" => {
                        buckets = field("window.buckets", v, "a non-negative integer (u32)")?
                    }
                    other => {
                        return Err(ValidationError::new(
                            format!("window.{other}"),
                            "unknown field for a time window",
                        ));
                    }
                }
            }
            Ok(WindowSpec::Time {
                duration_ms,
                buckets,
            })
        }
        "count" => {
            let mut max_age_ms = COUNT_MAX_AGE_MS_DEFAULT;
            for (name, v) in map {
                match name.as_str() {
                    "kind" | "calls" => {}
                    "max_age_ms" => {
                        max_age_ms = field("window.max_age_ms", v, "a non-negative integer (u64)")?
                    }
                    other => {
                        return Err(ValidationError::new(
                            format!("window.{other}"),
                            "unknown field for a count window",
                        ));
                    }
                }
            }
            let calls = match get("calls") {
                Some(v) => field("window.calls", v, "a non-negative integer (u32)")?,
                None => {
                    return Err(ValidationError::new(
                        "window.calls",
                        "is required for a count window",
                    ));
                }
            };
            Ok(WindowSpec::Count { calls, max_age_ms })
        }
        other => Err(ValidationError::new(
            "window.kind",
            format!("must be \"time\" or \"count\", got {other:?}"),
        )),
    }
}
