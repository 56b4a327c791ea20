//! Policy and tier rule files (DESIGN §6): good files parse, bad ones name the field.

use switchyard_core::*;

const DESIGN_POLICY: &str = r#"
key = "payments/ml-fraud"            # or: scope = "payments"
failure_rate_threshold = 50
min_calls = 20
min_instances = 2
open_duration_ms = 30000
probe_permits = 3
window = { kind = "time", duration_ms = 10000, buckets = 10 }
"#;

const DESIGN_TIERS: &str = r#"
scope = "payments"
recover_after_ms = 30000
[[rule]]
when = { breaker = "payments/ml-fraud", state = "open" }    # open | half_open | forced_open
tier = 3
[[rule]]
when = { breaker = "payments/db", p95_latency_ms_above = 5000 }
tier = 4
[features]
ml_fraud = 2                          # on while the tier is 1 or 2
"#;

#[test]
fn design_policy_file_parses() {
    let parsed = parse_policy_toml(DESIGN_POLICY).unwrap();
    assert_eq!(
        parsed,
        vec![(
            PolicyTarget::Key(BreakerKey::parse("payments/ml-fraud").unwrap()),
            Policy::default()
        )]
    );
}

#[test]
fn fresh_span_fields_parse_and_bad_values_name_the_field() {
    let toml = r#"
key = "payments/db"
fresh_span_confidence = 99.9
window = { kind = "count", calls = 100, max_age_ms = 5000 }
"#;
    let parsed = parse_policy_toml(toml).unwrap();
    assert_eq!(
        parsed[0].1.window,
        WindowSpec::Count {
            calls: 100,
            max_age_ms: 5_000
        }
    );
    assert_eq!(parsed[0].1.fresh_span_confidence.to_string(), "99.9%");
    let off = parse_policy_json(r#"{"key":"payments/db","fresh_span_confidence":0}"#).unwrap();
    assert!(!off[0].1.fresh_span_confidence.is_on());
    for (text, field, rule) in [
        (
            r#"{"key":"payments/db","fresh_span_confidence":97}"#,
            "fresh_span_confidence",
            "must be one of 0, 50, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999",
        ),
        (
            r#"{"key":"payments/db","fresh_span_confidence":"high"}"#,
            "fresh_span_confidence",
            "must be a number (percent)",
        ),
        (
            r#"{"key":"payments/db","window":{"kind":"count","calls":10,"max_age_ms":999}}"#,
            "window.max_age_ms",
            "must be between 1000 and 86400000",
        ),
        (
            r#"{"key":"payments/db","window":{"kind":"time","duration_ms":10000,"buckets":10,"max_age_ms":5000}}"#,
            "window.max_age_ms",
            "unknown field for a time window",
        ),
    ] {
        let err = parse_policy_json(text).unwrap_err();
        assert_eq!(err.field, field, "{text}: {err}");
        assert!(err.to_string().contains(rule), "{text}: {err}");
    }
    // The JSON form (the HTTP API's) carries both fields and reads back.
    let json = serde_json::to_string(&parsed[0].1).unwrap();
    assert!(json.contains(r#""max_age_ms":5000"#), "{json}");
    assert!(json.contains(r#""fresh_span_confidence":99.9"#), "{json}");
    let back: Policy = serde_json::from_str(&json).unwrap();
    assert_eq!(back, parsed[0].1);
}

#[test]
fn policy_arrays_and_json() {
    let toml = r#"
[[policy]]
scope = "payments"
min_calls = 5
[[policy]]
key = "payments/db"
window = { kind = "count", calls = 100 }
"#;
    let parsed = parse_policy_toml(toml).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].1.min_calls, 5);
    assert_eq!(parsed[1].1.window, WindowSpec::count(100));
    let json = r#"{"policy":[{"scope":"payments","min_calls":5},{"key":"payments/db","window":{"kind":"count","calls":100}}]}"#;
    assert_eq!(parse_policy_json(json).unwrap(), parsed);
    let one = parse_policy_json(r#"{"key":"payments/db","probe_permits":7}"#).unwrap();
    assert_eq!(one[0].1.probe_permits, 7);
}

fn field_of(result: Result<Vec<(PolicyTarget, Policy)>, ValidationError>) -> String {
    result.unwrap_err().field
}

#[test]
fn bad_policy_files_name_the_field() {
    let cases = [
        ("key = \"payments/db\"\nmin_calls = \"many\"", "min_calls"),
        ("key = \"payments/db\"\nbogus = 1", "bogus"),
        (
            "key = \"payments/db\"\nfailure_rate_threshold = 150",
            "failure_rate_threshold",
        ),
        (
            "key = \"payments/db\"\nfailure_rate_threshold = -1",
            "failure_rate_threshold",
        ),
        ("key = \"Payments/db\"", "key"),
        ("min_calls = 5", "key"),
        ("key = \"payments/db\"\nscope = \"payments\"", "scope"),
        (
            "key = \"payments/db\"\nwindow = { kind = \"hourly\" }",
            "window.kind",
        ),
        (
            "key = \"payments/db\"\nwindow = { kind = \"time\", duration_ms = 10000, buckets = 1000 }",
            "window.buckets",
        ),
        (
            "key = \"payments/db\"\nwindow = { kind = \"count\" }",
            "window.calls",
        ),
        (
            "key = \"payments/db\"\nwindow = { kind = \"count\", calls = 5, buckets = 2 }",
            "window.buckets",
        ),
        (
            "[[policy]]\nkey = \"payments/db\"\n[[policy]]\nkey = \"payments/x\"\nprobe_permits = 0",
            "policy[1].probe_permits",
        ),
        ("this is not toml", "file"),
    ];
    for (text, field) in cases {
        assert_eq!(field_of(parse_policy_toml(text)), field, "{text}");
    }
    let e = parse_policy_toml("key = \"payments/db\"\nfailure_rate_threshold = 150").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid `failure_rate_threshold`: must be between 1 and 100 (percent), got 150"
    );
    assert_eq!(
        field_of(parse_policy_json(
            r#"{"key":"payments/db","min_calls":true}"#
        )),
        "min_calls"
    );
    assert_eq!(field_of(parse_policy_json("[1]")), "file");
}

#[test]
fn every_policy_field_is_validated() {
    let p = Policy::default;
    let cases: Vec<(Policy, &str)> = vec![
        (
            Policy {
                window: WindowSpec::Time {
                    duration_ms: 999,
                    buckets: 1,
                },
                ..p()
            },
            "window.duration_ms",
        ),
        (
            Policy {
                window: WindowSpec::Time {
                    duration_ms: 10_000,
                    buckets: 0,
                },
                ..p()
            },
            "window.buckets",
        ),
        (
            Policy {
                window: WindowSpec::count(0),
                ..p()
            },
            "window.calls",
        ),
        (
            Policy {
                min_calls: 0,
                ..p()
            },
            "min_calls",
        ),
        (
            Policy {
                failure_rate_threshold: 0,
                ..p()
            },
            "failure_rate_threshold",
        ),
        (
            Policy {
                slow_call_duration_ms: 0,
                ..p()
            },
            "slow_call_duration_ms",
        ),
        (
            Policy {
                slow_call_rate_threshold: 101,
                ..p()
            },
            "slow_call_rate_threshold",
        ),
        (
            Policy {
                min_instances: 0,
                ..p()
            },
            "min_instances",
        ),
        (
            Policy {
                open_duration_ms: 99,
                ..p()
            },
            "open_duration_ms",
        ),
        (
            Policy {
                open_duration_max_ms: 29_999,
                ..p()
            },
            "open_duration_max_ms",
        ),
        (
            Policy {
                open_jitter_percent: 51,
                ..p()
            },
            "open_jitter_percent",
        ),
        (
            Policy {
                probe_permits: 1001,
                ..p()
            },
            "probe_permits",
        ),
        (
            Policy {
                probe_success_threshold: 0,
                ..p()
            },
            "probe_success_threshold",
        ),
        (
            Policy {
                probe_lease_ms: 99,
                ..p()
            },
            "probe_lease_ms",
        ),
    ];
    for (policy, field) in cases {
        assert_eq!(policy.validate().unwrap_err().field, field);
    }
    assert!(Policy::default().validate().is_ok());
}

#[test]
fn policy_serde_is_the_file_format() {
    let json = serde_json::to_value(Policy::default()).unwrap();
    assert_eq!(
        json["window"],
        serde_json::json!({"kind": "time", "duration_ms": 10000, "buckets": 10})
    );
    let p: Policy = serde_json::from_str(r#"{"min_calls": 3}"#).unwrap();
    assert_eq!(p.min_calls, 3);
    assert!(serde_json::from_str::<Policy>(r#"{"nope": 3}"#).is_err());
    let bytes = bincode::serialize(&Policy {
        window: WindowSpec::count(9),
        ..Policy::default()
    })
    .unwrap();
    let back: Policy = bincode::deserialize(&bytes).unwrap();
    assert_eq!(back.window, WindowSpec::count(9));
}

#[test]
fn design_tier_file_parses() {
    let rules = parse_tier_rules_toml(DESIGN_TIERS).unwrap();
    assert_eq!(rules.scope.as_str(), "payments");
    assert_eq!(rules.rules.len(), 2);
    assert_eq!(rules.rules[1].tier, Tier::ReadOnly);
    assert!(matches!(
        rules.rules[1].when,
        TierCondition::P95LatencyAbove {
            p95_latency_ms_above: 5000,
            ..
        }
    ));
    assert_eq!(rules.features["ml_fraud"], Tier::Degraded);
    let json = serde_json::to_string(&rules).unwrap();
    assert_eq!(parse_tier_rules_json(&json).unwrap(), rules);
    assert_eq!(serde_json::from_str::<TierRules>(&json).unwrap(), rules);
    let bytes = bincode::serialize(&rules).unwrap();
    assert_eq!(bincode::deserialize::<TierRules>(&bytes).unwrap(), rules);
}

#[test]
fn bad_tier_files_name_the_field() {
    let base = "scope = \"payments\"\n";
    let cases = [
        ("recover_after_ms = 5", "scope"),
        (
            "scope = \"payments\"\nrecover_after_ms = \"soon\"",
            "recover_after_ms",
        ),
        (
            "scope = \"payments\"\nrecover_after_ms = 999999999999",
            "recover_after_ms",
        ),
        (
            "[[rule]]\nwhen = { breaker = \"payments/db\", state = \"closed\" }\ntier = 3",
            "rule[0].when.state",
        ),
        (
            "[[rule]]\nwhen = { breaker = \"payments/db\", state = \"open\" }\ntier = 9",
            "rule[0].tier",
        ),
        (
            "[[rule]]\nwhen = { breaker = \"payments/db\" }\ntier = 2",
            "rule[0].when",
        ),
        (
            "[[rule]]\nwhen = { state = \"open\" }\ntier = 2",
            "rule[0].when.breaker",
        ),
        (
            "[[rule]]\nwhen = { breaker = \"payments/db\", failure_rate_above = 20, state = \"open\" }\ntier = 2",
            "rule[0].when",
        ),
        ("[[rule]]\ntier = 2", "rule[0].when"),
        ("[features]\n\"Bad Name\" = 2", "features.Bad Name"),
        ("[features]\nx = 0", "features.x"),
        ("color = 1", "color"),
    ];
    for (text, field) in cases {
        let full = if text.starts_with("scope") || text.starts_with("recover") {
            text.to_owned()
        } else {
            format!("{base}{text}")
        };
        assert_eq!(
            parse_tier_rules_toml(&full).unwrap_err().field,
            field,
            "{full}"
        );
    }
}
