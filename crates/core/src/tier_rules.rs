//! A scope's tier rules and feature flags (DESIGN §3, §6).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::check_range;
use crate::{BreakerKey, Scope, Tier, ValidationError};

/// Maximum rules per scope.
pub const TIER_RULES_MAX: usize = 64;
/// Maximum features per scope.
pub const TIER_FEATURES_MAX: usize = 256;
/// Maximum feature name length in bytes.
pub const FEATURE_NAME_MAX_BYTES: usize = 64;
/// Maximum `recover_after_ms`.
pub const RECOVER_AFTER_MAX_MS: u64 = 86_400_000;

/// The breaker states a tier rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionState {
    /// The breaker is OPEN.
    Open,
    /// The breaker is HALF_OPEN.
    HalfOpen,
    /// An operator forced the breaker open.
    ForcedOpen,
}

impl ConditionState {
    /// `open`, `half_open` or `forced_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionState::Open => "open",
            ConditionState::HalfOpen => "half_open",
            ConditionState::ForcedOpen => "forced_open",
        }
    }
}

/// When a tier rule demands its tier.
///
/// Human-readable formats use the flat DESIGN §6 form
/// (`{ breaker = "payments/db", p95_latency_ms_above = 5000 }`): the variant is chosen by which
/// of `state`, `p95_latency_ms_above`, `failure_rate_above` is present. Binary formats use an
/// externally tagged enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TierCondition {
    /// The breaker is in `state`.
    BreakerState {
        /// The breaker tested.
        breaker: BreakerKey,
        /// The state that triggers the rule.
        state: ConditionState,
    },
    /// The breaker window's p95 latency is above the threshold.
    P95LatencyAbove {
        /// The breaker tested.
        breaker: BreakerKey,
        /// Threshold, ms (strictly above).
        p95_latency_ms_above: u64,
    },
    /// The breaker window's failure rate is above the threshold (once `min_calls` is reached).
    FailureRateAbove {
        /// The breaker tested.
        breaker: BreakerKey,
        /// Threshold, percent (strictly above).
        failure_rate_above: u32,
    },
}

impl TierCondition {
    /// The breaker the condition tests.
    pub fn breaker(&self) -> &BreakerKey {
        match self {
            TierCondition::BreakerState { breaker, .. }
            | TierCondition::P95LatencyAbove { breaker, .. }
            | TierCondition::FailureRateAbove { breaker, .. } => breaker,
        }
    }
}

impl fmt::Display for TierCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TierCondition::BreakerState { breaker, state } => {
                write!(f, "breaker {breaker} is {}", state.as_str())
            }
            TierCondition::P95LatencyAbove {
                breaker,
                p95_latency_ms_above,
            } => {
                write!(f, "p95 latency of {breaker} > {p95_latency_ms_above} ms")
            }
            TierCondition::FailureRateAbove {
                breaker,
                failure_rate_above,
            } => {
                write!(f, "failure rate of {breaker} > {failure_rate_above}%")
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionFlat {
    breaker: BreakerKey,
    #[serde(default)]
    state: Option<ConditionState>,
    #[serde(default)]
    p95_latency_ms_above: Option<u64>,
    #[serde(default)]
    failure_rate_above: Option<u32>,
}

#[derive(Serialize, Deserialize)]
enum ConditionBinary {
    BreakerState {
        breaker: BreakerKey,
        state: ConditionState,
    },
    P95LatencyAbove {
        breaker: BreakerKey,
        p95_latency_ms_above: u64,
    },
    FailureRateAbove {
        breaker: BreakerKey,
        failure_rate_above: u32,
    },
}

impl ConditionFlat {
    fn into_condition(self) -> Result<TierCondition, ValidationError> {
        let breaker = self.breaker;
        match (
            self.state,
            self.p95_latency_ms_above,
            self.failure_rate_above,
        ) {
            (Some(state), None, None) => Ok(TierCondition::BreakerState { breaker, state }),
            (None, Some(p95_latency_ms_above), None) => Ok(TierCondition::P95LatencyAbove {
                breaker,
                p95_latency_ms_above,
            }),
            (None, None, Some(failure_rate_above)) => Ok(TierCondition::FailureRateAbove {
                breaker,
                failure_rate_above,
            }),
            _ => Err(ValidationError::new(
                "when",
                "give `breaker` and exactly one of `state`, `p95_latency_ms_above`, `failure_rate_above`",
            )),
        }
    }
}

impl Serialize for TierCondition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let c = self.clone();
        if serializer.is_human_readable() {
            let (breaker, state, p95, rate) = match c {
                TierCondition::BreakerState { breaker, state } => {
                    (breaker, Some(state), None, None)
                }
                TierCondition::P95LatencyAbove {
                    breaker,
                    p95_latency_ms_above,
                } => (breaker, None, Some(p95_latency_ms_above), None),
                TierCondition::FailureRateAbove {
                    breaker,
                    failure_rate_above,
                } => (breaker, None, None, Some(failure_rate_above)),
            };
            // Only the present field is written, so TOML and JSON round-trip the flat form.
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry("breaker", &breaker)?;
            if let Some(s) = state {
                map.serialize_entry("state", &s)?;
            }
            if let Some(p) = p95 {
                map.serialize_entry("p95_latency_ms_above", &p)?;
            }
            if let Some(r) = rate {
                map.serialize_entry("failure_rate_above", &r)?;
            }
            map.end()
        } else {
            match c {
                TierCondition::BreakerState { breaker, state } => {
                    ConditionBinary::BreakerState { breaker, state }
                }
                TierCondition::P95LatencyAbove {
                    breaker,
                    p95_latency_ms_above,
                } => ConditionBinary::P95LatencyAbove {
                    breaker,
                    p95_latency_ms_above,
                },
                TierCondition::FailureRateAbove {
                    breaker,
                    failure_rate_above,
                } => ConditionBinary::FailureRateAbove {
                    breaker,
                    failure_rate_above,
                },
            }
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for TierCondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            ConditionFlat::deserialize(deserializer)?
                .into_condition()
                .map_err(serde::de::Error::custom)
        } else {
            Ok(match ConditionBinary::deserialize(deserializer)? {
                ConditionBinary::BreakerState { breaker, state } => {
                    TierCondition::BreakerState { breaker, state }
                }
                ConditionBinary::P95LatencyAbove {
                    breaker,
                    p95_latency_ms_above,
                } => TierCondition::P95LatencyAbove {
                    breaker,
                    p95_latency_ms_above,
                },
                ConditionBinary::FailureRateAbove {
                    breaker,
                    failure_rate_above,
                } => TierCondition::FailureRateAbove {
                    breaker,
                    failure_rate_above,
                },
            })
        }
    }
}

/// One rule: while `when` holds, the scope's tier is at least `tier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRule {
    /// The condition.
    pub when: TierCondition,
    /// The tier demanded while it holds.
    pub tier: Tier,
}

fn default_recover_after_ms() -> u64 {
    30_000
}

/// A scope's tier rules and feature flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRules {
    /// The scope governed.
    pub scope: Scope,
    /// How long the demanded tier must stay better than the current one before the tier
    /// improves, ms.
    #[serde(default = "default_recover_after_ms")]
    pub recover_after_ms: u64,
    /// The rules (`[[rule]]` in files).
    #[serde(rename = "rule", default)]
    pub rules: Vec<TierRule>,
    /// Feature name -> the worst tier in which it is still on.
    #[serde(default)]
    pub features: BTreeMap<String, Tier>,
}

impl TierRules {
    /// Rules with no conditions and no features for `scope`.
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            recover_after_ms: default_recover_after_ms(),
            rules: Vec::new(),
            features: BTreeMap::new(),
        }
    }

    /// Checks limits and names.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range(
            "recover_after_ms",
            self.recover_after_ms,
            0,
            RECOVER_AFTER_MAX_MS,
            "ms",
        )?;
        if self.rules.len() > TIER_RULES_MAX {
            return Err(ValidationError::new(
                "rule",
                format!("at most {TIER_RULES_MAX} rules, got {}", self.rules.len()),
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if let TierCondition::FailureRateAbove {
                failure_rate_above, ..
            } = rule.when
            {
                check_range(
                    &format!("rule[{i}].when.failure_rate_above"),
                    failure_rate_above,
                    0,
                    99,
                    "percent",
                )?;
            }
            if let TierCondition::P95LatencyAbove {
                p95_latency_ms_above,
                ..
            } = rule.when
            {
                check_range(
                    &format!("rule[{i}].when.p95_latency_ms_above"),
                    p95_latency_ms_above,
                    0,
                    3_600_000,
                    "ms",
                )?;
            }
        }
        if self.features.len() > TIER_FEATURES_MAX {
            return Err(ValidationError::new(
                "features",
                format!(
                    "at most {TIER_FEATURES_MAX} features, got {}",
                    self.features.len()
                ),
            ));
        }
        for name in self.features.keys() {
            validate_feature_name(name)?;
        }
        Ok(())
    }

    /// Whether `feature` is on in `tier`: `None` if the feature is not declared.
    pub fn feature_enabled(&self, feature: &str, tier: Tier) -> Option<bool> {
        self.features.get(feature).map(|&worst| tier <= worst)
    }
}

/// Checks a feature name: 1–64 bytes of `[a-z0-9_.-]`.
pub fn validate_feature_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= FEATURE_NAME_MAX_BYTES
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            format!("features.{name}"),
            format!("feature names must be 1 to {FEATURE_NAME_MAX_BYTES} bytes of [a-z0-9_.-]"),
        ))
    }
}

/// Parses a TOML tier rule file (DESIGN §6) and validates it.
pub fn parse_tier_rules_toml(text: &str) -> Result<TierRules, ValidationError> {
    let value = crate::policy_file::toml_to_json(text)?;
    tier_rules_from_value(&value)
}

/// Parses a JSON tier rule file and validates it.
pub fn parse_tier_rules_json(text: &str) -> Result<TierRules, ValidationError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ValidationError::new("file", format!("is not valid JSON: {e}")))?;
    tier_rules_from_value(&value)
}

fn tier_from_value(field: &str, value: &Value) -> Result<Tier, ValidationError> {
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(n) if n <= u64::from(u8::MAX) => {
                Tier::from_number(n as u8).map_err(|e| ValidationError::new(field, e.rule))
            }
            _ => Err(ValidationError::new(
                field,
                format!("must be between 1 and 5, got {n}"),
            )),
        },
        Value::String(s) => Tier::parse(s).map_err(|e| ValidationError::new(field, e.rule)),
        _ => Err(ValidationError::new(field, "must be a tier number 1-5")),
    }
}

fn object<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, ValidationError> {
    value
        .as_object()
        .ok_or_else(|| ValidationError::new(field, "must be a table/object"))
}

fn condition_from_value(field: &str, value: &Value) -> Result<TierCondition, ValidationError> {
    let map = object(field, value)?;
    let mut flat = ConditionFlat {
        breaker: BreakerKey::parse("x/x").expect("valid"),
        state: None,
        p95_latency_ms_above: None,
        failure_rate_above: None,
    };
    let mut has_breaker = false;
    for (name, v) in map {
        let path = format!("{field}.{name}");
        match name.as_str() {
            "breaker" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| ValidationError::new(&path, "must be a breaker key string"))?;
                flat.breaker =
                    BreakerKey::parse(s).map_err(|e| ValidationError::new(&path, e.rule))?;
                has_breaker = true;
            }
            "state" => {
                flat.state = Some(serde_json::from_value(v.clone()).map_err(|_| {
                    ValidationError::new(
                        &path,
                        "must be \"open\", \"half_open\" or \"forced_open\"",
                    )
                })?);
            }
            "p95_latency_ms_above" => {
                flat.p95_latency_ms_above = Some(v.as_u64().ok_or_else(|| {
                    ValidationError::new(&path, "must be a non-negative integer (ms)")
                })?);
            }
            "failure_rate_above" => {
                let n = v
                    .as_u64()
                    .ok_or_else(|| ValidationError::new(&path, "must be an integer percent"))?;
                flat.failure_rate_above = Some(
                    u32::try_from(n)
                        .map_err(|_| ValidationError::new(&path, "must be an integer percent"))?,
                );
            }
            _ => return Err(ValidationError::new(&path, "unknown field")),
        }
    }
    if !has_breaker {
        return Err(ValidationError::new(
            format!("{field}.breaker"),
            "is required",
        ));
    }
    flat.into_condition()
        .map_err(|e| ValidationError::new(field, e.rule))
}

fn tier_rules_from_value(value: &Value) -> Result<TierRules, ValidationError> {
    let map = object("file", value)?;
    let scope = match map.get("scope") {
        Some(Value::String(s)) => Scope::parse(s)?,
        Some(_) => return Err(ValidationError::new("scope", "must be a string")),
        None => return Err(ValidationError::new("scope", "is required")),
    };
    let mut rules = TierRules::new(scope);
    for (name, v) in map {
        match name.as_str() {
            "scope" => {}
            "recover_after_ms" => {
                rules.recover_after_ms = v.as_u64().ok_or_else(|| {
                    ValidationError::new("recover_after_ms", "must be a non-negative integer (ms)")
                })?;
            }
            "rule" => {
                let items = v
                    .as_array()
                    .ok_or_else(|| ValidationError::new("rule", "must be an array ([[rule]])"))?;
                for (i, item) in items.iter().enumerate() {
                    let path = format!("rule[{i}]");
                    let m = object(&path, item)?;
                    let mut when = None;
                    let mut tier = None;
                    for (k, v) in m {
                        match k.as_str() {
                            "when" => {
                                when = Some(condition_from_value(&format!("{path}.when"), v)?)
                            }
                            "tier" => tier = Some(tier_from_value(&format!("{path}.tier"), v)?),
                            other => {
                                return Err(ValidationError::new(
                                    format!("{path}.{other}"),
                                    "unknown field",
                                ));
                            }
                        }
                    }
                    let when = when.ok_or_else(|| {
                        ValidationError::new(format!("{path}.when"), "is required")
                    })?;
                    let tier = tier.ok_or_else(|| {
                        ValidationError::new(format!("{path}.tier"), "is required")
                    })?;
                    rules.rules.push(TierRule { when, tier });
                }
            }
            "features" => {
                for (feature, t) in object("features", v)? {
                    validate_feature_name(feature)?;
                    rules.features.insert(
                        feature.clone(),
                        tier_from_value(&format!("features.{feature}"), t)?,
                    );
                }
            }
            other => return Err(ValidationError::new(other, "unknown field")),
        }
    }
    rules.validate()?;
    Ok(rules)
}
