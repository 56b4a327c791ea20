//! Degradation tiers: rules, hysteresis, pins and features.

use std::collections::BTreeMap;

use switchyard_core::*;

use crate::helpers::*;

fn rules(recover_after_ms: u64) -> TierRules {
    TierRules {
        scope: scope("payments"),
        recover_after_ms,
        rules: vec![
            TierRule {
                when: TierCondition::BreakerState {
                    breaker: key("payments/ml-fraud"),
                    state: ConditionState::Open,
                },
                tier: Tier::Essential,
            },
            TierRule {
                when: TierCondition::FailureRateAbove {
                    breaker: key("payments/db"),
                    failure_rate_above: 20,
                },
                tier: Tier::Degraded,
            },
            TierRule {
                when: TierCondition::P95LatencyAbove {
                    breaker: key("payments/slow"),
                    p95_latency_ms_above: 5000,
                },
                tier: Tier::ReadOnly,
            },
        ],
        features: BTreeMap::from([("ml_fraud".to_owned(), Tier::Degraded)]),
    }
}

fn harness() -> Harness {
    let mut h = Harness::with_scope_policy(exact_policy());
    h.ok(
        T0,
        Command::PutTierRules {
            rules: rules(30_000),
        },
    );
    h
}

fn tier(h: &Harness) -> Tier {
    h.state.scope(&scope("payments")).unwrap().tier
}

#[test]
fn worsens_immediately_improves_after_recover_after() {
    let mut h = harness();
    assert_eq!(tier(&h), Tier::Full);
    let fx = h.tick(
        T0 + 1,
        vec![
            delta("payments/ml-fraud", "i-1", 20, 20, 0),
            delta("payments/ml-fraud", "i-2", 20, 20, 0),
        ],
    );
    assert_eq!(
        tier_changes(&fx),
        vec![(Tier::Full, Tier::Essential)],
        "same apply as the trip"
    );
    let view = h.state.scope(&scope("payments")).unwrap();
    assert_eq!(
        view.reason,
        "breaker payments/ml-fraud is open (rule 1 demands ESSENTIAL)"
    );
    assert_eq!(
        view.features,
        BTreeMap::from([("ml_fraud".to_owned(), false)])
    );
    // phase: the breaker recovers; the tier waits recover_after_ms
    h.ok(
        T0 + 10,
        Command::ResetBreaker {
            key: key("payments/ml-fraud"),
            reason: String::new(),
        },
    );
    assert_eq!(tier(&h), Tier::Essential);
    assert_eq!(h.state.next_deadline_ms(), Some(T0 + 10 + 30_000));
    h.tick(T0 + 10 + 29_999, vec![]);
    assert_eq!(tier(&h), Tier::Essential);
    let fx = h.tick(T0 + 10 + 30_000, vec![]);
    assert_eq!(tier_changes(&fx), vec![(Tier::Essential, Tier::Full)]);
    assert!(h.state.scope(&scope("payments")).unwrap().features["ml_fraud"]);
    let ev = h
        .state
        .audit()
        .events()
        .filter(|e| e.kind == AuditKind::TierChange)
        .count();
    assert_eq!(ev, 2);
}

#[test]
fn demand_returning_restarts_the_recovery_clock() {
    let mut h = harness();
    let open = |h: &mut Harness, at| {
        h.tick(
            at,
            vec![
                delta("payments/ml-fraud", "i-1", 20, 20, 0),
                delta("payments/ml-fraud", "i-2", 20, 20, 0),
            ],
        );
    };
    let reset = |h: &mut Harness, at| {
        h.ok(
            at,
            Command::ResetBreaker {
                key: key("payments/ml-fraud"),
                reason: String::new(),
            },
        );
    };
    open(&mut h, T0);
    reset(&mut h, T0 + 1_000);
    open(&mut h, T0 + 20_000);
    reset(&mut h, T0 + 21_000);
    h.tick(T0 + 31_000, vec![]);
    assert_eq!(
        tier(&h),
        Tier::Essential,
        "30 s since the first clear, but demand came back"
    );
    h.tick(T0 + 51_000, vec![]);
    assert_eq!(tier(&h), Tier::Full);
}

#[test]
fn failure_rate_and_p95_rules() {
    let mut h = harness();
    h.tick(T0, vec![delta("payments/db", "i-1", 100, 25, 0)]);
    assert_eq!(
        tier(&h),
        Tier::Degraded,
        "25% > 20% (one instance: no trip, but the rule sees it)"
    );
    let mut slow = LatencySketch::default();
    slow.record_n(8_000_000, 10);
    let d = Delta {
        latency: slow,
        ..delta("payments/slow", "i-1", 10, 0, 10)
    };
    h.tick(T0 + 1, vec![d]);
    assert_eq!(tier(&h), Tier::ReadOnly);
}

#[test]
fn pin_overrides_rules_until_expiry() {
    let mut h = harness();
    let fx = h.ok(
        T0,
        Command::SetTierOverride {
            scope: scope("payments"),
            tier: Tier::Maintenance,
            reason: "db migration".into(),
            expires_at_ms: Some(T0 + 1_000),
        },
    );
    assert_eq!(tier_changes(&fx), vec![(Tier::Full, Tier::Maintenance)]);
    let v = h.state.scope(&scope("payments")).unwrap();
    assert_eq!(
        (v.override_tier, v.override_expires_at_ms, v.reason.as_str()),
        (Some(Tier::Maintenance), Some(T0 + 1_000), "db migration")
    );
    h.tick(
        T0 + 1,
        vec![
            delta("payments/ml-fraud", "i-1", 20, 20, 0),
            delta("payments/ml-fraud", "i-2", 20, 20, 0),
        ],
    );
    assert_eq!(tier(&h), Tier::Maintenance, "pinned");
    h.tick(T0 + 999, vec![]);
    assert_eq!(tier(&h), Tier::Maintenance);
    let fx = h.tick(T0 + 1_000, vec![]);
    assert_eq!(
        tier_changes(&fx),
        vec![(Tier::Maintenance, Tier::Essential)],
        "rules apply at once after the pin"
    );
    let ev = h.state.audit().events().last().unwrap().clone();
    assert_eq!(ev.kind, AuditKind::TierOverride);
}

#[test]
fn pin_clear_and_errors() {
    let mut h = harness();
    let err = h
        .apply(
            T0,
            Command::ClearTierOverride {
                scope: scope("payments"),
                reason: String::new(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::NotFound { .. }));
    h.ok(
        T0,
        Command::SetTierOverride {
            scope: scope("orders"),
            tier: Tier::ReadOnly,
            reason: String::new(),
            expires_at_ms: None,
        },
    );
    assert_eq!(
        h.state.scope(&scope("orders")).unwrap().tier,
        Tier::ReadOnly
    );
    let fx = h.ok(
        T0 + 1,
        Command::ClearTierOverride {
            scope: scope("orders"),
            reason: "done".into(),
        },
    );
    assert_eq!(tier_changes(&fx), vec![(Tier::ReadOnly, Tier::Full)]);
    let err = h
        .apply(
            T0 + 2,
            Command::DeleteTierRules {
                scope: scope("orders"),
            },
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::NotFound { .. }));
}

#[test]
fn features_follow_the_tier() {
    let mut h = harness();
    assert!(h.state.scope(&scope("payments")).unwrap().features["ml_fraud"]);
    h.ok(
        T0,
        Command::SetTierOverride {
            scope: scope("payments"),
            tier: Tier::Degraded,
            reason: String::new(),
            expires_at_ms: None,
        },
    );
    assert!(
        h.state.scope(&scope("payments")).unwrap().features["ml_fraud"],
        "on in tiers 1-2"
    );
    h.ok(
        T0,
        Command::SetTierOverride {
            scope: scope("payments"),
            tier: Tier::Essential,
            reason: String::new(),
            expires_at_ms: None,
        },
    );
    assert!(!h.state.scope(&scope("payments")).unwrap().features["ml_fraud"]);
    assert_eq!(rules(0).feature_enabled("ml_fraud", Tier::Full), Some(true));
    assert_eq!(rules(0).feature_enabled("nope", Tier::Full), None);
}

#[test]
fn deleting_rules_returns_to_full() {
    let mut h = harness();
    h.tick(T0, vec![delta("payments/db", "i-1", 100, 25, 0)]);
    assert_eq!(tier(&h), Tier::Degraded);
    let fx = h.ok(
        T0 + 1,
        Command::DeleteTierRules {
            scope: scope("payments"),
        },
    );
    assert_eq!(tier_changes(&fx), vec![(Tier::Degraded, Tier::Full)]);
    assert!(h.state.tier_rules(&scope("payments")).is_none());
}

#[test]
fn tier_numbers_and_names() {
    for (n, t) in (1u8..=5).zip(Tier::ALL) {
        assert_eq!(Tier::from_number(n).unwrap(), t);
        assert_eq!(t.number(), n);
        assert_eq!(Tier::parse(t.as_str()).unwrap(), t);
        assert_eq!(serde_json::to_string(&t).unwrap(), n.to_string());
    }
    assert!(Tier::from_number(0).is_err() && Tier::from_number(6).is_err());
    assert_eq!(Tier::parse("read-only").unwrap(), Tier::ReadOnly);
    assert!(Tier::Full < Tier::Maintenance);
}
