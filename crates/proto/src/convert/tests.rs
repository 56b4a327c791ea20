//! Round trips (domain -> wire -> domain) and one invalid case per rule, each
//! asserting the error names the offending field path.

use std::collections::BTreeMap;

use switchyard_core::{
    BreakerKey, BreakerState, Confidence, Delta, InstanceId, LatencySketch, OverrideMode, Policy,
    PolicyTarget, ProbeOutcome, Scope, Tier, TierCondition, TierRule, TierRules, ValidationError,
    WindowSpec,
};

use super::state::{breaker_state_from_wire, override_mode_from_wire, probe_outcome_from_wire};
use super::*;
use crate::admin as apb;
use crate::client as pb;

fn key(s: &str) -> BreakerKey {
    BreakerKey::parse(s).expect("valid key")
}

fn scope(s: &str) -> Scope {
    Scope::parse(s).expect("valid scope")
}

/// Asserts `result` failed on `field`, and the message names the field.
#[track_caller]
fn assert_field<T: std::fmt::Debug>(
    result: Result<T, ValidationError>,
    field: &str,
) -> ValidationError {
    let error = result.expect_err("must be rejected");
    assert_eq!(error.field, field, "wrong field in: {error}");
    assert!(
        error.to_string().contains(&format!("`{field}`")),
        "message must name the field: {error}"
    );
    error
}

// ------------------------------------------------------------------ policy

fn count_policy() -> Policy {
    Policy {
        window: WindowSpec::count(100),
        min_calls: 10,
        failure_rate_threshold: 25,
        ..Policy::default()
    }
}

fn wire_policy() -> pb::Policy {
    (&Policy::default()).into()
}

#[test]
fn policy_round_trips() {
    for policy in [Policy::default(), count_policy()] {
        let wire = pb::Policy::from(&policy);
        assert_eq!(Policy::try_from(wire).unwrap(), policy);
    }
}

#[test]
fn policy_fresh_span_fields_round_trip_and_default_when_absent() {
    let policy = Policy {
        window: WindowSpec::Count {
            calls: 50,
            max_age_ms: 5_000,
        },
        fresh_span_confidence: Confidence::from_percent(99.9).unwrap(),
        ..Policy::default()
    };
    let wire = pb::Policy::from(&policy);
    assert_eq!(wire.fresh_span_confidence, Some(99.9));
    assert_eq!(Policy::try_from(wire).unwrap(), policy);
    // A client that predates the fields sends neither: the defaults apply.
    let old = pb::Policy {
        window: Some(pb::policy::Window::Count(pb::CountWindow {
            calls: 50,
            max_age_ms: None,
        })),
        fresh_span_confidence: None,
        ..wire_policy()
    };
    let back = Policy::try_from(old).unwrap();
    assert_eq!(back.window, WindowSpec::count(50));
    assert_eq!(back.fresh_span_confidence, Confidence::default());
    let bad = pb::Policy {
        fresh_span_confidence: Some(97.0),
        ..wire_policy()
    };
    assert_field(Policy::try_from(bad), "fresh_span_confidence");
    let bad = pb::Policy {
        window: Some(pb::policy::Window::Count(pb::CountWindow {
            calls: 50,
            max_age_ms: Some(10),
        })),
        ..wire_policy()
    };
    assert_field(Policy::try_from(bad), "window.max_age_ms");
}

#[test]
fn policy_rejects_missing_window() {
    let wire = pb::Policy {
        window: None,
        ..wire_policy()
    };
    assert_field(Policy::try_from(wire), "window");
}

#[test]
fn policy_rejects_out_of_range_fields() {
    let wire = pb::Policy {
        failure_rate_threshold: 101,
        ..wire_policy()
    };
    assert_field(Policy::try_from(wire), "failure_rate_threshold");
    let wire = pb::Policy {
        probe_permits: 0,
        ..wire_policy()
    };
    assert_field(Policy::try_from(wire), "probe_permits");
    let wire = pb::Policy {
        window: Some(pb::policy::Window::Time(pb::TimeWindow {
            duration_ms: 10_000,
            buckets: 0,
        })),
        ..wire_policy()
    };
    assert_field(Policy::try_from(wire), "window.buckets");
}

#[test]
fn nested_policy_paths_are_prefixed() {
    let entry = apb::PolicyEntry {
        target: Some((&PolicyTarget::Key(key("payments/db"))).into()),
        policy: Some(pb::Policy {
            min_calls: 0,
            ..wire_policy()
        }),
    };
    assert_field(
        <(PolicyTarget, Policy)>::try_from(entry),
        "policy.min_calls",
    );
    let entry = apb::PolicyEntry {
        target: Some((&PolicyTarget::Scope(scope("payments"))).into()),
        policy: None,
    };
    assert_field(<(PolicyTarget, Policy)>::try_from(entry), "policy");
}

#[test]
fn policy_target_round_trips_and_validates() {
    for target in [
        PolicyTarget::Key(key("payments/ml-fraud")),
        PolicyTarget::Scope(scope("payments")),
    ] {
        let wire = apb::PolicyTarget::from(&target);
        assert_eq!(PolicyTarget::try_from(wire).unwrap(), target);
    }
    let bad_key = apb::PolicyTarget {
        target: Some(apb::policy_target::Target::Key("Payments/DB".into())),
    };
    assert_field(PolicyTarget::try_from(bad_key), "key");
    let bad_scope = apb::PolicyTarget {
        target: Some(apb::policy_target::Target::Scope("a/b".into())),
    };
    assert_field(PolicyTarget::try_from(bad_scope), "scope");
    let request = apb::DeletePolicyRequest {
        target: Some(apb::PolicyTarget { target: None }),
        reason: String::new(),
    };
    assert_field(DeletePolicy::try_from(request), "target");
}

#[test]
fn put_policies_validates_every_entry_and_rejects_duplicates() {
    let entry = |target: PolicyTarget, policy: &Policy| apb::PolicyEntry::from((&target, policy));
    let ok = apb::PutPoliciesRequest {
        policies: vec![
            entry(PolicyTarget::Scope(scope("payments")), &Policy::default()),
            entry(PolicyTarget::Key(key("payments/db")), &count_policy()),
        ],
        reason: "rollout".into(),
    };
    let put = PutPolicies::try_from(ok.clone()).unwrap();
    assert_eq!(put.policies.len(), 2);
    assert_eq!(
        put.policies[1],
        (PolicyTarget::Key(key("payments/db")), count_policy())
    );

    let mut bad = ok.clone();
    bad.policies[1]
        .policy
        .as_mut()
        .unwrap()
        .failure_rate_threshold = 0;
    assert_field(
        PutPolicies::try_from(bad),
        "policies[1].policy.failure_rate_threshold",
    );

    let mut bad = ok.clone();
    bad.policies[1].policy.as_mut().unwrap().window = None;
    assert_field(PutPolicies::try_from(bad), "policies[1].policy.window");

    let mut dup = ok.clone();
    dup.policies.push(dup.policies[0].clone());
    assert_field(PutPolicies::try_from(dup), "policies[2].target");

    let empty = apb::PutPoliciesRequest {
        policies: vec![],
        reason: String::new(),
    };
    assert_field(PutPolicies::try_from(empty), "policies");
}

// ------------------------------------------------------------------ report

fn delta(key_str: &str) -> Delta {
    Delta {
        key: key(key_str),
        instance: InstanceId::parse("host-1:8080").unwrap(),
        calls: 10,
        failures: 3,
        slow: 1,
        rejected: 2,
        latency: LatencySketch::from_buckets(vec![(5, 4), (9, 6)]).unwrap(),
        first_attempts: 8,
        retries: 3,
    }
}

fn report() -> Report {
    Report {
        instance: InstanceId::parse("host-1:8080").unwrap(),
        deltas: vec![delta("payments/db"), delta("payments/ml-fraud")],
    }
}

#[test]
fn report_round_trips() {
    let report = report();
    let wire = pb::ReportRequest::from(&report);
    assert_eq!(Report::try_from(wire).unwrap(), report);
}

#[test]
fn report_rejects_bad_instance() {
    let wire = pb::ReportRequest {
        instance: String::new(),
        ..(&report()).into()
    };
    assert_field(Report::try_from(wire), "instance");
    let wire = pb::ReportRequest {
        instance: "has space".into(),
        ..(&report()).into()
    };
    assert_field(Report::try_from(wire), "instance");
}

#[test]
fn report_rejects_bad_keys_with_their_index() {
    for bad in [
        "",
        "payments/ML",
        "no-slash",
        "a/b/c",
        &format!("s/{}", "x".repeat(127)),
    ] {
        let mut wire = pb::ReportRequest::from(&report());
        wire.deltas[1].key = bad.to_owned();
        assert_field(Report::try_from(wire), "deltas[1].key");
    }
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[1].key = wire.deltas[0].key.clone();
    assert_field(Report::try_from(wire), "deltas[1].key");
}

#[test]
fn report_names_the_first_error_in_request_order() {
    // goal: the error names the first delta (in request order) that is wrong, whether a key
    // repeated earlier or a bad field: keys a, b, c, b, a, then a delta with failures > calls
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas = ["s/a", "s/b", "s/c", "s/b", "s/a", "s/d"]
        .iter()
        .map(|k| pb::BreakerDelta::from(&delta(k)))
        .collect();
    wire.deltas[5].failures = 11;
    let err = assert_field(Report::try_from(wire.clone()), "deltas[3].key");
    assert!(err.to_string().contains("duplicate key `s/b`"), "{err}");
    // phase: without the repeats, the bad field is the first error
    wire.deltas[3].key = "s/e".into();
    wire.deltas[4].key = "s/f".into();
    assert_field(Report::try_from(wire.clone()), "deltas[5].failures");
    // phase: a bad field before the first repeat comes first
    wire.deltas[4].key = "s/a".into();
    wire.deltas[2].failures = 11;
    assert_field(Report::try_from(wire), "deltas[2].failures");
}

#[test]
fn report_rejects_inconsistent_counts() {
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].failures = 11;
    assert_field(Report::try_from(wire), "deltas[0].failures");
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].slow = 11;
    assert_field(Report::try_from(wire), "deltas[0].slow");
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].calls = 0;
    wire.deltas[0].failures = 0;
    wire.deltas[0].slow = 0;
    wire.deltas[0].rejected = 0;
    wire.deltas[0].first_attempts = 0;
    wire.deltas[0].retries = 0;
    wire.deltas[0].latency.clear();
    assert_field(Report::try_from(wire), "deltas[0].calls");
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].latency[1].count = 100;
    assert_field(Report::try_from(wire), "deltas[0].latency");
}

#[test]
fn report_retry_figures_round_trip_and_are_bounded() {
    // Goal: retry figures reach the domain as sent; over the per-delta limit they are refused
    // naming the field; alone (calls completing in a later report) they are a valid delta.
    let wire = pb::ReportRequest::from(&report());
    assert_eq!(
        (wire.deltas[0].first_attempts, wire.deltas[0].retries),
        (8, 3)
    );
    for field in ["first_attempts", "retries"] {
        let mut wire = pb::ReportRequest::from(&report());
        let d = &mut wire.deltas[1];
        match field {
            "first_attempts" => d.first_attempts = switchyard_core::DELTA_COUNT_MAX + 1,
            _ => d.retries = u64::MAX,
        }
        let err = Report::try_from(wire).expect_err("over the limit");
        assert_eq!(err.field, format!("deltas[1].{field}"));
        let status = status_from_validation(&err);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains(&format!("deltas[1].{field}")));
    }
    let mut wire = pb::ReportRequest::from(&report());
    let d = &mut wire.deltas[0];
    (d.calls, d.failures, d.slow, d.rejected, d.first_attempts) = (0, 0, 0, 0, 0);
    d.latency.clear();
    let report = Report::try_from(wire).expect("retries alone are valid");
    assert_eq!(report.deltas[0].retries, 3);
}

#[test]
fn a_delta_from_an_sdk_without_retry_figures_still_decodes() {
    // Goal: backward compatibility: fields 7 and 8 absent from an older SDK's delta mean zero.
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].first_attempts = 0;
    wire.deltas[0].retries = 0;
    let bytes = prost::Message::encode_to_vec(&wire);
    let back: pb::ReportRequest = prost::Message::decode(bytes.as_slice()).unwrap();
    let report = Report::try_from(back).unwrap();
    assert_eq!(
        (report.deltas[0].first_attempts, report.deltas[0].retries),
        (0, 0)
    );
}

#[test]
fn report_rejects_bad_latency_buckets() {
    let bucket = |index, count| pb::LatencyBucket { index, count };
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].latency = vec![bucket(9, 1), bucket(5, 1)];
    assert_field(Report::try_from(wire), "deltas[0].latency[1].index");
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].latency = vec![bucket(5, 1), bucket(5, 1)];
    assert_field(Report::try_from(wire), "deltas[0].latency[1].index");
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].latency = vec![bucket(5, 0)];
    assert_field(Report::try_from(wire), "deltas[0].latency[0].count");
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].latency = vec![bucket(u32::from(LatencySketch::max_bucket_index()) + 1, 1)];
    assert_field(Report::try_from(wire), "deltas[0].latency[0].index");
    let mut wire = pb::ReportRequest::from(&report());
    wire.deltas[0].latency = vec![bucket(u32::MAX, 1)];
    assert_field(Report::try_from(wire), "deltas[0].latency[0].index");
}

// ------------------------------------------------------------------ enums

#[test]
fn enums_round_trip() {
    for state in BreakerState::ALL {
        assert_eq!(
            breaker_state_from_wire(pb::BreakerState::from(state) as i32, "state").unwrap(),
            state
        );
    }
    for mode in [
        OverrideMode::ForcedOpen,
        OverrideMode::ForcedClosed,
        OverrideMode::Disabled,
        OverrideMode::MetricsOnly,
    ] {
        assert_eq!(
            override_mode_from_wire(apb::OverrideMode::from(mode) as i32, "mode").unwrap(),
            mode
        );
    }
    for outcome in [
        ProbeOutcome::Success,
        ProbeOutcome::Failure,
        ProbeOutcome::Unused,
    ] {
        assert_eq!(
            probe_outcome_from_wire(pb::ProbeOutcome::from(outcome) as i32, "outcome").unwrap(),
            outcome
        );
    }
}

#[test]
fn enums_reject_unspecified_and_unknown_values() {
    let e = assert_field(breaker_state_from_wire(0, "state"), "state");
    assert!(e.rule.contains("UNSPECIFIED"), "{e}");
    let e = assert_field(breaker_state_from_wire(99, "state"), "state");
    assert!(e.rule.contains("99"), "{e}");
    assert_field(override_mode_from_wire(0, "mode"), "mode");
    assert_field(override_mode_from_wire(99, "mode"), "mode");
    assert_field(probe_outcome_from_wire(0, "outcome"), "outcome");
    assert_field(probe_outcome_from_wire(-1, "outcome"), "outcome");

    let request = apb::SetOverrideRequest {
        key: "payments/db".into(),
        mode: 0,
        reason: "x".into(),
        for_ms: None,
    };
    assert_field(SetOverride::try_from(request), "mode");
    let request = pb::ReleaseProbeRequest {
        key: "payments/db".into(),
        permit_id: 1,
        outcome: 99,
    };
    assert_field(ReleaseProbe::try_from(request), "outcome");
}

// ------------------------------------------------------------------ tiers

fn tier_rules() -> TierRules {
    TierRules {
        scope: scope("payments"),
        recover_after_ms: 30_000,
        rules: vec![
            TierRule {
                when: TierCondition::BreakerState {
                    breaker: key("payments/ml-fraud"),
                    state: switchyard_core::ConditionState::Open,
                },
                tier: Tier::Essential,
            },
            TierRule {
                when: TierCondition::P95LatencyAbove {
                    breaker: key("payments/db"),
                    p95_latency_ms_above: 5_000,
                },
                tier: Tier::ReadOnly,
            },
            TierRule {
                when: TierCondition::FailureRateAbove {
                    breaker: key("payments/db"),
                    failure_rate_above: 20,
                },
                tier: Tier::Degraded,
            },
        ],
        features: BTreeMap::from([("ml_fraud".to_owned(), Tier::Degraded)]),
    }
}

#[test]
fn tier_rules_round_trip() {
    let rules = tier_rules();
    let wire = apb::TierRules::from(&rules);
    assert_eq!(TierRules::try_from(wire).unwrap(), rules);
}

#[test]
fn tiers_outside_one_to_five_are_rejected() {
    for n in 1..=5 {
        assert_eq!(tier::tier_from_wire(n, "tier").unwrap().number(), n as u8);
    }
    for bad in [0, 6, 256, u32::MAX] {
        assert_field(tier::tier_from_wire(bad, "tier"), "tier");
    }
    let request = apb::SetTierOverrideRequest {
        scope: "payments".into(),
        tier: 0,
        reason: String::new(),
        for_ms: None,
    };
    assert_field(SetTierOverride::try_from(request), "tier");
    let request = apb::SetTierOverrideRequest {
        scope: "payments".into(),
        tier: 6,
        reason: String::new(),
        for_ms: None,
    };
    assert_field(SetTierOverride::try_from(request), "tier");
}

#[test]
fn tier_rules_name_the_offending_rule() {
    let put = |rules: apb::TierRules| {
        PutTierRules::try_from(apb::PutTierRulesRequest {
            rules: Some(rules),
            reason: String::new(),
        })
    };
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.rules[1].tier = 6;
    assert_field(put(wire), "rules.rules[1].tier");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.rules[0].when.as_mut().unwrap().breaker = "Bad".into();
    assert_field(put(wire), "rules.rules[0].when.breaker");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.rules[0].when.as_mut().unwrap().condition = Some(apb::tier_condition::Condition::State(
        pb::BreakerState::Closed as i32,
    ));
    assert_field(put(wire), "rules.rules[0].when.state");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.rules[0].when.as_mut().unwrap().condition = None;
    assert_field(put(wire), "rules.rules[0].when.condition");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.rules[2].when.as_mut().unwrap().condition =
        Some(apb::tier_condition::Condition::FailureRateAbove(100));
    assert_field(put(wire), "rules.rules[2].when.failure_rate_above");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.rules[0].when = None;
    assert_field(put(wire), "rules.rules[0].when");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.features.insert("Bad Name".into(), 2);
    assert_field(put(wire), "rules.features.Bad Name");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.features.insert("search".into(), 0);
    assert_field(put(wire), "rules.features.search");
    let mut wire = apb::TierRules::from(&tier_rules());
    wire.scope = String::new();
    assert_field(put(wire), "rules.scope");
    assert_field(
        PutTierRules::try_from(apb::PutTierRulesRequest {
            rules: None,
            reason: String::new(),
        }),
        "rules",
    );
}

// ------------------------------------------------------------------ decisions

fn decision() -> DecisionUpdate {
    DecisionUpdate {
        key: key("payments/ml-fraud"),
        state: BreakerState::Open,
        reason: "failure_rate 63% >= 50% over 212 calls from 7 instances".into(),
        since_ms: 1_700_000_000_000,
        open_until_ms: Some(1_700_000_030_000),
        override_expires_at_ms: None,
        probe_permits_in_use: 0,
        policy: count_policy(),
        fleet_retries: switchyard_core::FleetRetries {
            first_attempts: 1_000,
            retries: 170,
            instances: 7,
            window_ms: 10_000,
        },
    }
}

fn scope_update() -> ScopeUpdate {
    ScopeUpdate {
        scope: scope("payments"),
        tier: Tier::Essential,
        reason: "breaker payments/ml-fraud is open".into(),
        features: BTreeMap::from([("ml_fraud".to_owned(), false), ("search".to_owned(), true)]),
        override_tier: Some(Tier::Essential),
        since_ms: 1_700_000_000_000,
        override_expires_at_ms: Some(1_700_000_600_000),
    }
}

#[test]
fn decisions_round_trip() {
    let d = decision();
    assert_eq!(
        DecisionUpdate::try_from(pb::BreakerDecision::from(&d)).unwrap(),
        d
    );
    let s = scope_update();
    assert_eq!(
        ScopeUpdate::try_from(pb::ScopeDecision::from(&s)).unwrap(),
        s
    );
    assert_eq!(s.feature_enabled("ml_fraud"), Some(false));
    assert_eq!(s.feature_enabled("nope"), None);
    // the fleet retry figures are part of every decision
    let missing = pb::BreakerDecision {
        fleet_retries: None,
        ..(&d).into()
    };
    assert_field(DecisionUpdate::try_from(missing), "fleet_retries");
}

#[test]
fn decisions_reject_bad_fields() {
    let wire = pb::BreakerDecision {
        policy: None,
        ..(&decision()).into()
    };
    assert_field(DecisionUpdate::try_from(wire), "policy");
    let wire = pb::BreakerDecision {
        state: 0,
        ..(&decision()).into()
    };
    assert_field(DecisionUpdate::try_from(wire), "state");
    let wire = pb::BreakerDecision {
        key: "UPPER/case".into(),
        ..(&decision()).into()
    };
    assert_field(DecisionUpdate::try_from(wire), "key");
    let wire = pb::ScopeDecision {
        tier: 0,
        ..(&scope_update()).into()
    };
    assert_field(ScopeUpdate::try_from(wire), "tier");
    let wire = pb::ScopeDecision {
        override_tier: Some(7),
        ..(&scope_update()).into()
    };
    assert_field(ScopeUpdate::try_from(wire), "override_tier");
}

#[test]
fn watch_events_round_trip_and_name_nested_paths() {
    let events = [
        WatchUpdate::Snapshot {
            breakers: vec![decision()],
            scopes: vec![scope_update()],
        },
        WatchUpdate::Breaker(decision()),
        WatchUpdate::Scope(scope_update()),
        WatchUpdate::Heartbeat { now_ms: 42 },
    ];
    for update in events {
        let event = WatchedEvent {
            applied_index: 17,
            node_id: 2,
            term: 3,
            update,
        };
        assert_eq!(
            WatchedEvent::try_from(pb::WatchEvent::from(&event)).unwrap(),
            event
        );
    }
    let event = WatchedEvent {
        applied_index: 1,
        node_id: 1,
        term: 1,
        update: WatchUpdate::Snapshot {
            breakers: vec![decision(), decision()],
            scopes: vec![],
        },
    };
    let mut wire = pb::WatchEvent::from(&event);
    if let Some(pb::watch_event::Event::Snapshot(s)) = wire.event.as_mut() {
        s.breakers[1].policy.as_mut().unwrap().window = None;
    }
    assert_field(
        WatchedEvent::try_from(wire),
        "snapshot.breakers[1].policy.window",
    );
    let wire = pb::WatchEvent {
        event: None,
        ..Default::default()
    };
    assert_field(WatchedEvent::try_from(wire), "event");
}

// ------------------------------------------------------------------ requests

#[test]
fn write_requests_validate_keys_reasons_and_ids() {
    let ok = apb::SetOverrideRequest {
        key: "payments/db".into(),
        mode: apb::OverrideMode::ForcedOpen as i32,
        reason: "incident 42".into(),
        for_ms: Some(60_000),
    };
    let set = SetOverride::try_from(ok.clone()).unwrap();
    assert_eq!(set.mode, OverrideMode::ForcedOpen);
    assert_eq!(set.for_ms, Some(60_000));
    assert_field(
        SetOverride::try_from(apb::SetOverrideRequest {
            key: String::new(),
            ..ok.clone()
        }),
        "key",
    );
    assert_field(
        SetOverride::try_from(apb::SetOverrideRequest {
            key: format!("a/{}", "b".repeat(127)),
            ..ok.clone()
        }),
        "key",
    );
    assert_field(
        SetOverride::try_from(apb::SetOverrideRequest {
            reason: "a\nb".into(),
            ..ok.clone()
        }),
        "reason",
    );
    assert_field(
        SetOverride::try_from(apb::SetOverrideRequest {
            reason: "x".repeat(10_000),
            ..ok.clone()
        }),
        "reason",
    );
    for missing in ["", "  "] {
        assert_field(
            SetOverride::try_from(apb::SetOverrideRequest {
                reason: missing.into(),
                ..ok.clone()
            }),
            "reason",
        );
    }
    assert_field(
        SetOverride::try_from(apb::SetOverrideRequest {
            for_ms: Some(0),
            ..ok
        }),
        "for_ms",
    );

    assert_field(
        KeyAction::try_from(apb::ResetBreakerRequest {
            key: "x".into(),
            reason: String::new(),
        }),
        "key",
    );
    assert_field(
        ScopeAction::try_from(apb::ClearTierOverrideRequest {
            scope: "A".into(),
            reason: String::new(),
        }),
        "scope",
    );
    assert_field(
        MemberAction::try_from(apb::RemoveMemberRequest { node_id: 0 }),
        "node_id",
    );
    assert_eq!(
        MemberAction::try_from(apb::PromoteMemberRequest { node_id: 4 })
            .unwrap()
            .node_id,
        4
    );

    let add = AddLearner::try_from(apb::AddLearnerRequest {
        node_id: 4,
        addr: "10.0.0.4:7070".into(),
    })
    .unwrap();
    assert_eq!(add.addr, "10.0.0.4:7070");
    for bad in ["", "host", ":7070", "host:0", "host:99999", "ho st:7070"] {
        assert_field(
            AddLearner::try_from(apb::AddLearnerRequest {
                node_id: 4,
                addr: bad.into(),
            }),
            "addr",
        );
    }

    let acquire = pb::AcquireProbeRequest {
        key: "payments/db".into(),
        instance: String::new(),
    };
    assert_field(AcquireProbe::try_from(acquire), "instance");
    let watch = pb::WatchRequest {
        scopes: vec!["payments".into(), "Bad".into()],
        known_index: 0,
    };
    assert_field(watch_scopes(&watch), "scopes[1]");
}

#[test]
fn status_from_validation_is_invalid_argument_naming_the_field() {
    let error = ValidationError::new("deltas[3].key", "must be lowercase");
    let status = status_from_validation(&error);
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "invalid `deltas[3].key`: must be lowercase"
    );
}

// ------------------------------------------------------------------ settings

#[test]
fn settings_round_trip() {
    let settings = switchyard_core::ClusterSettings::default();
    let wire = apb::ClusterSettings::from(&settings);
    assert_eq!(
        switchyard_core::ClusterSettings::try_from(wire).unwrap(),
        settings
    );
}

#[test]
fn settings_reject_non_finite_and_out_of_range_slo() {
    let wire = || apb::ClusterSettings::from(&switchyard_core::ClusterSettings::default());
    let put = |settings| {
        PutSettings::try_from(apb::PutSettingsRequest {
            settings: Some(settings),
            reason: String::new(),
        })
    };
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 100.5] {
        let mut s = wire();
        s.slo.as_mut().unwrap().availability_percent = bad;
        assert_field(put(s), "settings.slo.availability_percent");
    }
    let mut s = wire();
    s.slo.as_mut().unwrap().error_rate_percent = f64::NAN;
    assert_field(put(s), "settings.slo.error_rate_percent");
    let mut s = wire();
    s.slo.as_mut().unwrap().p95_latency_ms = 0;
    assert_field(put(s), "settings.slo.p95_latency_ms");
    let mut s = wire();
    s.slo = None;
    assert_field(put(s), "settings.slo");
    let mut s = wire();
    s.audit_retention_ms = 0;
    assert_field(put(s), "settings.audit_retention_ms");
    assert_field(
        PutSettings::try_from(apb::PutSettingsRequest {
            settings: None,
            reason: String::new(),
        }),
        "settings",
    );
}

// ------------------------------------------------------------------ audit

fn audit_event() -> switchyard_core::AuditEvent {
    switchyard_core::AuditEvent {
        index: 42,
        at_ms: 1_700_000_000_000,
        actor: switchyard_core::Actor::Operator("alice".into()),
        subject: "payments/db".into(),
        kind: switchyard_core::AuditKind::Override,
        from: "CLOSED".into(),
        to: "FORCED_OPEN".into(),
        reason: "incident 42".into(),
        request_id: Some("req-7f3a".into()),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
    }
}

#[test]
fn audit_event_and_query_round_trip() {
    let event = audit_event();
    assert_eq!(
        switchyard_core::AuditEvent::try_from(apb::AuditEvent::from(&event)).unwrap(),
        event
    );
    let query = switchyard_core::AuditQuery {
        since_ms: Some(1),
        until_ms: Some(2),
        key: Some(key("payments/db")),
        scope: Some(scope("payments")),
        actor: Some("node:3".into()),
        after_index: Some(7),
        limit: 50,
    };
    assert_eq!(
        switchyard_core::AuditQuery::try_from(apb::QueryAuditRequest::from(&query)).unwrap(),
        query
    );
    let empty = switchyard_core::AuditQuery::default();
    assert_eq!(
        switchyard_core::AuditQuery::try_from(apb::QueryAuditRequest::from(&empty)).unwrap(),
        empty
    );
}

#[test]
fn audit_query_rejects_bad_filters() {
    let q = |f: fn(&mut apb::QueryAuditRequest)| {
        let mut r = apb::QueryAuditRequest::default();
        f(&mut r);
        switchyard_core::AuditQuery::try_from(r)
    };
    assert_field(q(|r| r.key = Some("nope".into())), "key");
    assert_field(q(|r| r.scope = Some("Payments".into())), "scope");
    assert_field(q(|r| r.actor = Some("alice".into())), "actor");
    assert_field(q(|r| r.limit = 1_000_000), "limit");
    // The page limit is core's one constant, the same the server enforces and the docs state.
    assert_eq!(switchyard_core::AUDIT_QUERY_MAX_LIMIT, 1_000);
    assert!(q(|r| r.limit = 1_000).is_ok(), "a full page is allowed");
    assert_field(q(|r| r.limit = 1_001), "limit");
    assert_field(
        q(|r| {
            r.since_ms = Some(10);
            r.until_ms = Some(5);
        }),
        "until_ms",
    );
    let bad_event = apb::AuditEvent {
        actor: "someone".into(),
        ..(&audit_event()).into()
    };
    assert_field(switchyard_core::AuditEvent::try_from(bad_event), "actor");
    let bad_kind = apb::AuditEvent {
        kind: "overide".into(),
        ..(&audit_event()).into()
    };
    assert_field(switchyard_core::AuditEvent::try_from(bad_kind), "kind");
}

// ------------------------------------------------------------------ sla

fn sla_report() -> switchyard_core::SlaReport {
    switchyard_core::SlaReport {
        key: key("payments/db"),
        window: switchyard_core::SlaWindow::Week,
        from_ms: 1_000,
        to_ms: 605_000_000,
        calls: 1_000,
        failures: 15,
        slow: 3,
        rejected: 40,
        availability_percent: 98.5,
        error_rate_percent: 1.5,
        p50_ms: Some(12.0),
        p95_ms: Some(80.5),
        p99_ms: None,
        open_episodes: vec![
            switchyard_core::OpenEpisode {
                opened_at_ms: 5_000,
                closed_at_ms: Some(35_000),
                duration_ms: 30_000,
            },
            switchyard_core::OpenEpisode {
                opened_at_ms: 600_000_000,
                closed_at_ms: None,
                duration_ms: 5_000_000,
            },
        ],
        time_in_state_ms: BTreeMap::from([("CLOSED".to_owned(), 100), ("OPEN".to_owned(), 30_000)]),
        time_in_tier_ms: BTreeMap::from([
            ("FULL".to_owned(), 100),
            ("ESSENTIAL".to_owned(), 30_000),
        ]),
        time_degraded_ms: 30_000,
        last_success_ms: Some(604_000_000),
        time_since_last_success_ms: Some(1_000_000),
        breaches: vec![switchyard_core::SlaBreach {
            objective: "availability".into(),
            target: ">= 99.9%".into(),
            actual: "98.500%".into(),
        }],
    }
}

#[test]
fn sla_report_round_trips() {
    let report = sla_report();
    assert_eq!(
        switchyard_core::SlaReport::try_from(apb::SlaReport::from(&report)).unwrap(),
        report
    );
}

#[test]
fn sla_report_and_request_reject_bad_fields() {
    let wire = || apb::SlaReport::from(&sla_report());
    assert_field(
        switchyard_core::SlaReport::try_from(apb::SlaReport {
            availability_percent: f64::NAN,
            ..wire()
        }),
        "availability_percent",
    );
    assert_field(
        switchyard_core::SlaReport::try_from(apb::SlaReport {
            p95_ms: Some(f64::INFINITY),
            ..wire()
        }),
        "p95_ms",
    );
    assert_field(
        switchyard_core::SlaReport::try_from(apb::SlaReport {
            window: "1y".into(),
            ..wire()
        }),
        "window",
    );
    let mut bad = wire();
    bad.time_in_state_ms.insert("BOGUS".into(), 1);
    assert_field(
        switchyard_core::SlaReport::try_from(bad),
        "time_in_state_ms.BOGUS",
    );

    let request = |key: &str, window: &str| {
        SlaReportQuery::try_from(apb::SlaReportRequest {
            local: true,
            key: key.into(),
            window: window.into(),
        })
    };
    let all = request("", "").unwrap();
    assert_eq!(
        (all.key, all.window, all.local),
        (None, switchyard_core::SlaWindow::Day, true)
    );
    assert_eq!(
        request("payments/db", "mtd").unwrap().window,
        switchyard_core::SlaWindow::MonthToDate
    );
    assert_field(request("payments/db", "1y"), "window");
    assert_field(request("payments", "7d"), "key");
}

// ------------------------------------------------------------------ views

fn breaker_view() -> switchyard_core::BreakerView {
    switchyard_core::BreakerView {
        key: key("payments/ml-fraud"),
        state: BreakerState::HalfOpen,
        reason: "open duration elapsed".into(),
        since_ms: 1_700_000_030_000,
        open_until_ms: None,
        override_expires_at_ms: None,
        probe_permits_in_use: 2,
        policy: Policy::default(),
        window_calls: 212,
        window_failures: 134,
        window_slow: 3,
        window_instances: 7,
        consecutive_opens: 1,
        updated_index: 99,
        fleet_retries: switchyard_core::FleetRetries {
            first_attempts: 180,
            retries: 31,
            instances: 5,
            window_ms: 10_000,
        },
    }
}

fn scope_view() -> switchyard_core::ScopeView {
    switchyard_core::ScopeView {
        scope: scope("payments"),
        tier: Tier::Essential,
        reason: "breaker payments/ml-fraud is open".into(),
        since_ms: 1_700_000_000_000,
        override_tier: None,
        override_expires_at_ms: None,
        features: BTreeMap::from([("ml_fraud".to_owned(), false)]),
        updated_index: 98,
    }
}

#[test]
fn views_round_trip_through_infos_and_decisions() {
    let view = breaker_view();
    let info = apb::BreakerInfo::from(&view);
    assert_eq!(switchyard_core::BreakerView::try_from(info).unwrap(), view);
    let decision = pb::BreakerDecision::from(&view);
    assert_eq!(
        DecisionUpdate::try_from(decision).unwrap(),
        DecisionUpdate::from(&view)
    );

    let view = scope_view();
    let info = apb::ScopeInfo::from(&view);
    assert_eq!(switchyard_core::ScopeView::try_from(info).unwrap(), view);
    let decision = pb::ScopeDecision::from(&view);
    assert_eq!(
        ScopeUpdate::try_from(decision).unwrap(),
        ScopeUpdate::from(&view)
    );
}

#[test]
fn infos_name_nested_paths() {
    let mut info = apb::BreakerInfo::from(&breaker_view());
    info.decision.as_mut().unwrap().state = 99;
    assert_field(
        switchyard_core::BreakerView::try_from(info),
        "decision.state",
    );
    let info = apb::BreakerInfo {
        decision: None,
        ..apb::BreakerInfo::from(&breaker_view())
    };
    assert_field(switchyard_core::BreakerView::try_from(info), "decision");
    let mut info = apb::ScopeInfo::from(&scope_view());
    info.decision.as_mut().unwrap().tier = 6;
    assert_field(switchyard_core::ScopeView::try_from(info), "decision.tier");
}
