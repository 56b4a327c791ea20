//! Audit retention and queries; SLA reports.

use switchyard_core::*;

use crate::helpers::*;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 86_400_000;

#[test]
fn audit_retention_by_count_and_age() {
    let mut h = Harness::new();
    let settings = ClusterSettings {
        audit_max_events: 3,
        audit_retention_ms: 60_000,
        ..ClusterSettings::default()
    };
    h.ok(T0, Command::PutSettings { settings });
    for i in 0..5 {
        h.ok(
            T0 + i,
            Command::SetOverride {
                key: key("payments/db"),
                mode: OverrideMode::ForcedOpen,
                reason: format!("r{i}"),
                expires_at_ms: None,
            },
        );
    }
    assert_eq!(h.state.audit().len(), 3);
    let reasons: Vec<String> = h.state.audit().events().map(|e| e.reason.clone()).collect();
    assert_eq!(reasons, vec!["r2", "r3", "r4"]);
    // phase: a minute later every old event has aged out; only the new one remains
    h.ok(
        T0 + 70_000,
        Command::ResetBreaker {
            key: key("payments/db"),
            reason: "later".into(),
        },
    );
    assert_eq!(h.state.audit().len(), 1);
    assert_eq!(h.state.audit().dropped(), 6);
}

#[test]
fn audit_query_filters() {
    let mut h = Harness::new();
    h.ok(
        T0,
        Command::SetOverride {
            key: key("payments/db"),
            mode: OverrideMode::ForcedOpen,
            reason: "test override".into(),
            expires_at_ms: None,
        },
    );
    h.ok(
        T0 + 10,
        Command::SetOverride {
            key: key("orders/db"),
            mode: OverrideMode::Disabled,
            reason: "test override".into(),
            expires_at_ms: None,
        },
    );
    h.apply_as(
        T0 + 20,
        Actor::Operator("bob".into()),
        Command::SetTierOverride {
            scope: scope("payments"),
            tier: Tier::Degraded,
            reason: String::new(),
            expires_at_ms: None,
        },
    )
    .unwrap();
    let audit = h.state.audit();
    let q = |q: AuditQuery| {
        audit
            .query(&q)
            .into_iter()
            .map(|e| e.subject)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        q(AuditQuery {
            key: Some(key("payments/db")),
            ..Default::default()
        }),
        vec!["payments/db"]
    );
    assert_eq!(
        q(AuditQuery {
            scope: Some(scope("payments")),
            ..Default::default()
        }),
        vec!["payments/db", "payments"]
    );
    assert_eq!(
        q(AuditQuery {
            actor: Some("operator:bob".into()),
            ..Default::default()
        }),
        vec!["payments"]
    );
    assert_eq!(
        q(AuditQuery {
            since_ms: Some(T0 + 5),
            until_ms: Some(T0 + 15),
            ..Default::default()
        }),
        vec!["orders/db"]
    );
    assert_eq!(
        q(AuditQuery {
            limit: 1,
            ..Default::default()
        })
        .len(),
        1
    );
    let first = audit.query(&AuditQuery::default())[0].index;
    assert_eq!(
        q(AuditQuery {
            after_index: Some(first),
            ..Default::default()
        })
        .len(),
        2
    );
}

#[test]
fn sla_availability_and_percentiles() {
    let mut h = Harness::new();
    let mut latency = LatencySketch::default();
    latency.record_n(10_000, 90);
    latency.record_n(500_000, 10);
    let d = Delta {
        rejected: 7,
        latency,
        ..delta("payments/db", "i-1", 100, 10, 0)
    };
    h.tick(T0, vec![d]);
    let r = h
        .state
        .sla_report(&key("payments/db"), SlaWindow::Day, T0 + HOUR)
        .unwrap();
    assert_eq!((r.calls, r.failures, r.rejected), (100, 10, 7));
    assert!((r.availability_percent - 90.0).abs() < 1e-9);
    assert!((r.error_rate_percent - 10.0).abs() < 1e-9);
    let p50 = r.p50_ms.unwrap();
    let p99 = r.p99_ms.unwrap();
    assert!((p50 - 10.0).abs() / 10.0 < 0.06, "p50 {p50}");
    assert!((p99 - 500.0).abs() / 500.0 < 0.06, "p99 {p99}");
    assert_eq!(r.last_success_ms, Some(T0));
    assert_eq!(r.time_since_last_success_ms, Some(HOUR));
    let objectives: Vec<&str> = r.breaches.iter().map(|b| b.objective.as_str()).collect();
    assert_eq!(objectives, vec!["availability", "error_rate"]);
    // no calls: 100 % available, no breach
    h.tick(
        T0,
        vec![delta("payments/idle", "i-1", 0, 0, 0).clone()]
            .into_iter()
            .map(|mut d| {
                d.rejected = 1;
                d
            })
            .collect(),
    );
    let r = h
        .state
        .sla_report(&key("payments/idle"), SlaWindow::Week, T0)
        .unwrap();
    assert_eq!((r.availability_percent, r.breaches.len()), (100.0, 0));
}

#[test]
fn sla_time_in_state_and_episodes() {
    let mut h = Harness::with_scope_policy(exact_policy());
    h.tick(T0, vec![delta("payments/db", "i-1", 1, 0, 0)]);
    let until = h.trip("payments/db", T0 + 1_000);
    h.tick(until, vec![]);
    let p: Vec<u64> = (0..3)
        .map(|i| h.granted(until + 1_000, "payments/db", &format!("i-{i}")))
        .collect();
    for id in p {
        h.release(until + 2_000, "payments/db", id, ProbeOutcome::Success)
            .unwrap();
    }
    h.tick(until + 2 * HOUR, vec![]);
    let r = h
        .state
        .sla_report(&key("payments/db"), SlaWindow::Day, until + 2 * HOUR + 500)
        .unwrap();
    assert_eq!(
        r.open_episodes,
        vec![OpenEpisode {
            opened_at_ms: T0 + 1_000,
            closed_at_ms: Some(until + 2_000),
            duration_ms: 32_000
        }]
    );
    assert_eq!(r.time_in_state_ms["OPEN"], 30_000);
    assert_eq!(r.time_in_state_ms["HALF_OPEN"], 2_000);
    let total: u64 = r.time_in_state_ms.values().sum();
    assert_eq!(
        total,
        until + 2 * HOUR + 500 - T0,
        "every ms since creation is attributed, across hour boundaries"
    );
    assert_eq!(r.time_in_tier_ms["FULL"], total);
    assert_eq!(r.time_degraded_ms, 0);
}

#[test]
fn sla_degraded_time_breach() {
    let mut h = Harness::new();
    h.tick(T0, vec![delta("payments/db", "i-1", 1, 0, 0)]);
    h.ok(
        T0,
        Command::SetTierOverride {
            scope: scope("payments"),
            tier: Tier::Degraded,
            reason: String::new(),
            expires_at_ms: None,
        },
    );
    h.tick(T0 + 700_000, vec![]);
    let r = h
        .state
        .sla_report(&key("payments/db"), SlaWindow::Day, T0 + 700_000)
        .unwrap();
    assert_eq!(r.time_degraded_ms, 700_000);
    assert!(r.breaches.iter().any(|b| b.objective == "time_degraded"));
}

#[test]
fn month_to_date_starts_at_the_utc_month() {
    // 2024-03-15T12:00:00Z
    let mid_march = 1_710_504_000_000;
    assert_eq!(
        sla::month_start_ms(mid_march),
        1_709_251_200_000,
        "2024-03-01T00:00:00Z"
    );
    // 2024-02-29T23:59:59.999Z (leap day)
    assert_eq!(
        sla::month_start_ms(1_709_251_199_999),
        1_706_745_600_000,
        "2024-02-01"
    );
    // 2025-01-01T00:00:00Z exactly
    assert_eq!(sla::month_start_ms(1_735_689_600_000), 1_735_689_600_000);
    assert_eq!(sla::month_start_ms(0), 0);
    assert_eq!(
        SlaWindow::MonthToDate.start_ms(mid_march),
        1_709_251_200_000
    );
    assert_eq!(SlaWindow::Days30.start_ms(mid_march), mid_march - 30 * DAY);
    for (s, w) in [
        ("24h", SlaWindow::Day),
        ("7d", SlaWindow::Week),
        ("30d", SlaWindow::Days30),
        ("mtd", SlaWindow::MonthToDate),
    ] {
        assert_eq!(SlaWindow::parse(s).unwrap(), w);
        assert_eq!(w.as_str(), s);
    }
    assert!(SlaWindow::parse("1y").is_err());
}

#[test]
fn sla_hours_are_pruned_after_retention() {
    let mut h = Harness::new();
    h.tick(T0, vec![delta("payments/db", "i-1", 10, 0, 0)]);
    h.tick(T0 + 40 * DAY, vec![delta("payments/db", "i-1", 1, 0, 0)]);
    let r = h
        .state
        .sla_report(&key("payments/db"), SlaWindow::Days30, T0 + 40 * DAY)
        .unwrap();
    assert_eq!(r.calls, 1);
}

#[test]
fn audit_events_name_the_request_that_caused_them_and_no_other() {
    let mut h = Harness::new();
    let until = h.trip("payments/db", T0);
    // An operator write with a request id and a trace context arrives after the open time
    // ended: the same apply fires the timed OPEN -> HALF_OPEN (by policy) first.
    let trace = RequestTrace {
        request_id: "req-7f3a".into(),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    };
    h.index += 1;
    h.state
        .apply(
            ApplyContext {
                index: h.index,
                stamped_ms: until,
            },
            &Envelope::new(
                operator(),
                Command::SetOverride {
                    key: key("payments/db"),
                    mode: OverrideMode::ForcedOpen,
                    reason: "incident 42".into(),
                    expires_at_ms: None,
                },
            )
            .with_trace(Some(trace)),
        )
        .unwrap();
    let events = h.state.audit().query(&AuditQuery {
        since_ms: Some(until),
        ..AuditQuery::default()
    });
    let by_policy: Vec<_> = events.iter().filter(|e| e.actor == Actor::Policy).collect();
    let by_operator: Vec<_> = events.iter().filter(|e| e.actor == operator()).collect();
    assert!(!by_policy.is_empty(), "{events:?}");
    assert!(
        by_policy
            .iter()
            .all(|e| e.request_id.is_none() && e.trace_id.is_none())
    );
    assert_eq!(by_operator.len(), 1, "{events:?}");
    assert_eq!(by_operator[0].request_id.as_deref(), Some("req-7f3a"));
    assert_eq!(
        by_operator[0].trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    // A request without a trace context records its id only.
    h.index += 1;
    let plain = RequestTrace {
        request_id: "req-plain".into(),
        traceparent: None,
    };
    h.state
        .apply(
            ApplyContext {
                index: h.index,
                stamped_ms: until + 1,
            },
            &Envelope::new(
                operator(),
                Command::ClearOverride {
                    key: key("payments/db"),
                    reason: "resolved".into(),
                },
            )
            .with_trace(Some(plain)),
        )
        .unwrap();
    let last = h.state.audit().query(&AuditQuery {
        after_index: Some(h.index - 1),
        ..AuditQuery::default()
    });
    assert_eq!(
        last.last().unwrap().request_id.as_deref(),
        Some("req-plain")
    );
    assert_eq!(last.last().unwrap().trace_id, None);
}
