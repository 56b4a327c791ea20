//! Tests of the agent state machine, driven by explicit times (an injected clock).

use std::time::Duration;

use switchyard_core::{BreakerState as S, DELTA_COUNT_MAX, WindowSpec};

use super::*;
use crate::breaker::Breaker;
use crate::breaker_shared::DrainedCounts;
use crate::{Outcome, RejectReason};

const KEY: &str = "payments/ml-fraud";

fn config(has_cluster: bool) -> AgentConfig {
    AgentConfig {
        instance: InstanceId::parse("pod-1").expect("instance"),
        has_cluster,
        mode: ModeOptions::default(),
        default_policy: Policy::default(),
        stripes: 2,
        breakers_max: 4,
        report_queue_max: 2,
        report_interval_ms: 100,
        probe_permits_per_instance_max: 1,
    }
}

fn agent(has_cluster: bool) -> (AgentState, SdkMetrics) {
    let metrics = SdkMetrics::default();
    let state = AgentState::new(
        config(has_cluster),
        0,
        Arc::new(Published::default()),
        metrics.clone(),
    );
    (state, metrics)
}

fn breaker(agent: &mut AgentState, key: &str) -> Breaker {
    Breaker::from_shared(
        agent
            .breaker(&BreakerKey::parse(key).expect("key"), None)
            .expect("breaker"),
    )
}

fn decision(key: &str, state: S) -> pb::BreakerDecision {
    pb::BreakerDecision {
        key: key.to_owned(),
        state: convert::breaker_state_to_wire(state),
        reason: "test".into(),
        policy: Some(pb::Policy::from(&Policy::default())),
        fleet_retries: Some(pb::FleetRetries::default()),
        ..Default::default()
    }
}

fn event(index: u64, event: pb::watch_event::Event) -> pb::WatchEvent {
    pb::WatchEvent {
        applied_index: index,
        node_id: 1,
        term: 1,
        event: Some(event),
    }
}

fn snapshot(index: u64, breakers: Vec<pb::BreakerDecision>) -> pb::WatchEvent {
    event(
        index,
        pb::watch_event::Event::Snapshot(pb::DecisionSnapshot {
            breakers,
            scopes: vec![],
        }),
    )
}

fn heartbeat(index: u64) -> pb::WatchEvent {
    event(
        index,
        pb::watch_event::Event::Heartbeat(pb::Heartbeat { now_ms: 0 }),
    )
}

fn reason(b: &Breaker) -> Option<RejectReason> {
    b.allow().err().map(|r| r.reason)
}

#[test]
fn mode_switches_cluster_stale_local_only_and_back() {
    // Goal: the mode follows the time since the last watch event, and the cluster's OPEN
    // decision is kept while Stale but not in LocalOnly.
    let (mut agent, metrics) = agent(true);
    let b = breaker(&mut agent, KEY);
    assert_eq!(agent.mode(), Mode::Stale, "never contacted");

    // phase: contact with an OPEN decision
    agent.apply_event(snapshot(10, vec![decision(KEY, S::Open)]), 1_000);
    assert_eq!(agent.mode(), Mode::Cluster);
    assert_eq!(reason(&b), Some(RejectReason::ClusterOpen));

    // phase: silence past stale_after keeps the last decision
    agent.tick(6_000);
    assert_eq!(agent.mode(), Mode::Stale);
    assert_eq!(
        reason(&b),
        Some(RejectReason::ClusterOpen),
        "fail-static: last decision kept"
    );

    // phase: silence past fallback_after: the local breaker (closed) alone decides
    agent.tick(31_001);
    assert_eq!(agent.mode(), Mode::LocalOnly);
    assert_eq!(reason(&b), None);
    assert!(
        metrics
            .encode_text()
            .contains("switchyard_sdk_mode{mode=\"local_only\"} 1")
    );

    // phase: contact again
    agent.apply_event(heartbeat(11), 32_000);
    assert_eq!(agent.mode(), Mode::Cluster);
    assert_eq!(reason(&b), Some(RejectReason::ClusterOpen));
}

#[test]
fn an_older_index_is_ignored_across_streams() {
    let (mut agent, _) = agent(true);
    let b = breaker(&mut agent, KEY);
    assert!(agent.apply_event(snapshot(10, vec![decision(KEY, S::Open)]), 0));
    // An older change (e.g. from a lagging node after failover) is ignored.
    assert!(!agent.apply_event(
        event(9, pb::watch_event::Event::Breaker(decision(KEY, S::Closed))),
        1
    ));
    assert!(!agent.apply_event(snapshot(5, vec![decision(KEY, S::Closed)]), 2));
    assert_eq!(agent.applied_index(), 10);
    assert_eq!(reason(&b), Some(RejectReason::ClusterOpen));
    assert_eq!(b.applied_index(), 10);
    // The same index is accepted: one tick entry changes several breakers.
    assert!(agent.apply_event(
        event(
            10,
            pb::watch_event::Event::Breaker(decision(KEY, S::HalfOpen))
        ),
        3
    ));
    assert_eq!(b.admission(), Admission::ClusterProbe);
    assert!(agent.apply_event(
        event(
            12,
            pb::watch_event::Event::Breaker(decision(KEY, S::Closed))
        ),
        4
    ));
    assert_eq!(reason(&b), None);
    assert_eq!(agent.applied_index(), 12);
}

#[test]
fn every_cluster_state_is_published_to_the_hot_path() {
    let (mut agent, _) = agent(true);
    let b = breaker(&mut agent, KEY);
    let cases = [
        (S::Closed, None),
        (S::Open, Some(RejectReason::ClusterOpen)),
        (S::HalfOpen, Some(RejectReason::HalfOpenNoPermit)),
        (S::ForcedOpen, Some(RejectReason::ForcedOpen)),
        (S::ForcedClosed, None),
        (S::Disabled, None),
        (S::MetricsOnly, None),
    ];
    for (i, (state, expected)) in cases.into_iter().enumerate() {
        agent.apply_event(snapshot(i as u64 + 1, vec![decision(KEY, state)]), 0);
        assert_eq!(reason(&b), expected, "cluster {state:?}");
    }
}

#[test]
fn half_open_probe_permit_is_acquired_used_and_released() {
    // Goal: in cluster HALF_OPEN a call turned away creates demand, the agent acquires a
    // permit, the next call gets it, and its outcome is released to the cluster.
    let (mut agent, _) = agent(true);
    let b = breaker(&mut agent, KEY);
    agent.apply_event(snapshot(3, vec![decision(KEY, S::HalfOpen)]), 0);
    assert_eq!(reason(&b), Some(RejectReason::HalfOpenNoPermit));
    let work = agent.tick(100);
    assert_eq!(work.acquire, vec![KEY.to_owned()]);
    assert_eq!(
        agent.tick(200).acquire,
        Vec::<String>::new(),
        "one acquire in flight at a time"
    );
    assert_eq!(agent.on_probe_granted(KEY, 42, 250), None);
    let permit = b.allow().expect("the granted permit admits one call");
    assert!(permit.is_probe());
    assert_eq!(
        reason(&b),
        Some(RejectReason::HalfOpenNoPermit),
        "only one permit"
    );
    b.record(permit, Outcome::Success, Duration::from_millis(3));
    let work = agent.tick(300);
    assert_eq!(
        work.release,
        vec![(KEY.to_owned(), 42, ProbeOutcome::Success)]
    );
}

#[test]
fn an_unused_probe_permit_expires_locally_and_leaving_half_open_returns_it() {
    let (mut agent, _) = agent(true);
    let b = breaker(&mut agent, KEY);
    agent.apply_event(snapshot(3, vec![decision(KEY, S::HalfOpen)]), 0);
    let _ = reason(&b);
    agent.tick(100);
    agent.on_probe_granted(KEY, 7, 100);
    // phase: the lease (10 s by default) runs out without a call taking the permit
    agent.tick(10_200);
    assert_eq!(
        reason(&b),
        Some(RejectReason::HalfOpenNoPermit),
        "the expired permit is gone"
    );
    // phase: a new permit, then the breaker closes before it is used: it goes back as unused
    agent.tick(10_300);
    agent.on_probe_granted(KEY, 8, 10_300);
    agent.apply_event(
        event(4, pb::watch_event::Event::Breaker(decision(KEY, S::Closed))),
        10_400,
    );
    let work = agent.tick(10_500);
    assert_eq!(
        work.release,
        vec![(KEY.to_owned(), 8, ProbeOutcome::Unused)]
    );
}

#[test]
fn local_breaker_trips_on_local_failures_even_when_the_cluster_is_closed() {
    let (mut agent, _) = agent(true);
    let policy = Policy {
        window: WindowSpec::count(10),
        min_calls: 5,
        ..Policy::default()
    };
    let key = BreakerKey::parse(KEY).expect("key");
    let b = Breaker::from_shared(agent.breaker(&key, Some(policy.clone())).expect("breaker"));
    // The cluster's decisions carry the same policy.
    let mut closed = decision(KEY, S::Closed);
    closed.policy = Some(pb::Policy::from(&policy)); // keep the local policy given at creation
    agent.apply_event(snapshot(1, vec![closed]), 0);
    for _ in 0..10 {
        let p = b.allow().expect("closed");
        b.record(p, Outcome::Failure, Duration::from_millis(1));
    }
    agent.tick(100);
    assert_eq!(reason(&b), Some(RejectReason::LocalOpen));
}

#[test]
fn local_only_half_open_hands_out_local_probe_permits() {
    let (mut agent, _) = agent(false);
    let policy = Policy {
        window: WindowSpec::count(10),
        min_calls: 5,
        open_duration_ms: 1_000,
        open_duration_max_ms: 1_000,
        open_jitter_percent: 0,
        probe_success_threshold: 1,
        ..Policy::default()
    };
    let key = BreakerKey::parse(KEY).expect("key");
    let b = Breaker::from_shared(agent.breaker(&key, Some(policy)).expect("breaker"));
    for _ in 0..10 {
        let p = b.allow().expect("closed");
        b.record(p, Outcome::Failure, Duration::from_millis(1));
    }
    agent.tick(100);
    assert_eq!(reason(&b), Some(RejectReason::LocalOpen));
    // phase: the open duration passes: HALF_OPEN, demand, a local permit
    agent.tick(1_200);
    assert_eq!(b.admission(), Admission::LocalProbe);
    assert_eq!(reason(&b), Some(RejectReason::HalfOpenNoPermit));
    agent.tick(1_300);
    let p = b.allow().expect("a local probe permit");
    b.record(p, Outcome::Success, Duration::from_millis(1));
    agent.tick(1_400);
    assert_eq!(
        b.admission(),
        Admission::Allow,
        "a successful probe closes the local breaker"
    );
}

#[test]
fn unsent_reports_merge_into_one_and_nothing_is_dropped() {
    let (mut agent, metrics) = agent(true);
    let b = breaker(&mut agent, KEY);
    for t in 1..=5u64 {
        let p = b.allow().expect("closed");
        b.record(p, Outcome::Success, Duration::from_millis(1));
        agent.tick(t * 100);
    }
    assert_eq!(
        agent.reports.len(),
        1,
        "none was sent: one report holds them all"
    );
    assert_eq!(metrics.reports_dropped.get(), 0);
    let (seq, report) = agent.reports.take_front().expect("queued");
    assert_eq!(report.instance, "pod-1");
    assert_eq!(report.deltas[0].calls, 5);
    // While it is being sent, the next outcomes go into a report of their own.
    let p = b.allow().expect("closed");
    b.record(p, Outcome::Success, Duration::from_millis(1));
    agent.tick(600);
    assert_eq!(agent.reports.len(), 2);
    assert!(agent.reports.remove_sent(seq));
    assert_eq!(agent.reports.front().unwrap().1.deltas[0].calls, 1);
}

fn record_and_tick(agent: &mut AgentState, b: &Breaker, now_ms: u64) -> bool {
    let p = b.allow().expect("closed");
    b.record(p, Outcome::Success, Duration::from_millis(1));
    agent.tick(now_ms);
    agent.report_due()
}

#[test]
fn the_cluster_widens_the_report_interval_and_outcomes_wait_merged_meanwhile() {
    let (mut agent, metrics) = agent(true);
    let b = breaker(&mut agent, KEY);
    // Configured interval: every tick makes a report due.
    assert!(record_and_tick(&mut agent, &b, 100));
    let (seq, _) = agent.reports.take_front().unwrap();
    agent.reports.remove_sent(seq);
    // The answer asks for 400 ms: the next three ticks merge, the fourth is due.
    agent.on_report_accepted(400);
    assert_eq!(metrics.report_interval_seconds.get(), 0.4);
    let due: Vec<bool> = (2..=5)
        .map(|t| record_and_tick(&mut agent, &b, t * 100))
        .collect();
    assert_eq!(due, vec![false, false, false, true]);
    assert_eq!(agent.reports.len(), 1, "one report");
    assert_eq!(agent.reports.front().unwrap().1.deltas[0].calls, 4);
    // Refused at a limit: the interval doubles, up to 64 configured intervals.
    agent.on_report_refused();
    assert_eq!(agent.report_interval_ms(), 800);
    for _ in 0..10 {
        agent.on_report_refused();
    }
    assert_eq!(agent.report_interval_ms(), 6_400);
    assert_eq!(metrics.reports_refused.get(), 11);
    // An answer with no advice brings the configured interval back.
    agent.on_report_accepted(0);
    assert_eq!(agent.report_interval_ms(), 100);
}

#[test]
fn a_local_only_agent_queues_no_reports() {
    let (mut agent, metrics) = agent(false);
    let b = breaker(&mut agent, KEY);
    let p = b.allow().expect("closed");
    b.record(p, Outcome::Success, Duration::from_millis(1));
    let _ = b.shared.drain();
    let p = b.allow().expect("closed");
    b.record(p, Outcome::Success, Duration::from_millis(1));
    agent.tick(100);
    assert!(agent.reports.is_empty());
    assert!(
        metrics
            .encode_text()
            .contains("switchyard_sdk_calls_allowed_total{key=\"payments/ml-fraud\"} 1")
    );
}

#[test]
fn breakers_are_bounded() {
    let (mut agent, _) = agent(true);
    for i in 0..4 {
        breaker(&mut agent, &format!("s/b{i}"));
    }
    let err = agent
        .breaker(&BreakerKey::parse("s/b4").expect("key"), None)
        .expect_err("over the limit");
    assert!(matches!(err, Error::TooManyBreakers { limit: 4 }));
    breaker(&mut agent, "s/b0"); // an existing breaker is still handed out
}

#[test]
fn oversized_deltas_are_scaled_to_the_wire_limit() {
    let d = DrainedCounts {
        calls: 3 * DELTA_COUNT_MAX,
        failures: DELTA_COUNT_MAX,
        slow: 0,
        rejected: [0; RejectReason::COUNT],
        latency: vec![(3, 2 * DELTA_COUNT_MAX), (9, DELTA_COUNT_MAX)],
        first_attempts: 2 * DELTA_COUNT_MAX,
        retries: 7,
    };
    let w = wire_delta(KEY, &d);
    assert!(w.calls <= DELTA_COUNT_MAX && w.failures <= w.calls);
    assert_eq!(
        (w.first_attempts, w.retries),
        (DELTA_COUNT_MAX, 7),
        "retry counts are capped, not scaled"
    );
    assert_eq!(w.calls, w.latency.iter().map(|b| b.count).sum::<u64>());
    assert!(
        (w.failures as f64 / w.calls as f64 - 1.0 / 3.0).abs() < 1e-3,
        "rates are kept"
    );
}

#[test]
fn scope_decisions_reach_tier_and_features() {
    let (mut agent, _) = agent(true);
    let scope = pb::ScopeDecision {
        scope: "payments".into(),
        tier: 3,
        reason: "ml-fraud open".into(),
        features: [("ml_fraud".to_owned(), false)].into_iter().collect(),
        ..Default::default()
    };
    agent.apply_event(event(2, pb::watch_event::Event::Scope(scope)), 0);
    let scopes = agent.published.scopes.read().expect("lock");
    let info = scopes.get("payments").expect("scope");
    assert_eq!(info.tier, Tier::Essential);
    assert_eq!(info.features.get("ml_fraud"), Some(&false));
}

#[test]
fn time_window_local_breaker_trips_probes_and_recovers() {
    // Goal: the demo's policy: trips within a tick of an outage, re-opens on failed
    // probes, and closes after the dependency recovers.
    let (mut agent, _) = agent(false);
    let policy = Policy {
        window: WindowSpec::Time {
            duration_ms: 2_000,
            buckets: 10,
        },
        min_calls: 20,
        open_duration_ms: 1_000,
        open_duration_max_ms: 4_000,
        probe_success_threshold: 2,
        ..Policy::default()
    };
    let key = BreakerKey::parse(KEY).expect("key");
    let b = Breaker::from_shared(agent.breaker(&key, Some(policy)).expect("breaker"));
    let mut trace = Vec::new();
    for step in 1..=200u64 {
        let now = step * 100;
        let failing = (20..60).contains(&step);
        for _ in 0..30 {
            if let Ok(p) = b.allow() {
                b.record(p, Outcome::failure_if(failing), Duration::from_millis(1));
            }
        }
        agent.tick(now);
        trace.push((now, b.admission()));
    }
    let at = |ms: u64| trace.iter().find(|(t, _)| *t == ms).map(|(_, a)| *a);
    assert_eq!(at(1_000), Some(Admission::Allow));
    // The 2 s window still holds the successes from before the outage: the failure rate
    // reaches 50 % about one window-half later.
    let tripped = trace
        .iter()
        .find(|(_, a)| *a == Admission::RejectLocalOpen)
        .map(|(t, _)| *t);
    assert!(
        tripped.is_some_and(|t| (2_000..=3_200).contains(&t)),
        "{trace:?}"
    );
    assert!(
        trace.iter().any(|(_, a)| *a == Admission::LocalProbe),
        "probes while recovering"
    );
    assert_eq!(at(20_000), Some(Admission::Allow), "recovered: {trace:?}");
}

#[test]
fn a_fleet_wide_close_clears_a_local_trip_from_the_same_episode() {
    // The instance tripped locally during the outage; the cluster then probed and closed the
    // breaker for the fleet. The instance follows the fleet instead of running its own probes.
    let (mut agent, _) = agent(true);
    let policy = Policy {
        window: WindowSpec::count(10),
        min_calls: 5,
        ..Policy::default()
    };
    let key = BreakerKey::parse(KEY).expect("key");
    let b = Breaker::from_shared(agent.breaker(&key, Some(policy.clone())).expect("breaker"));
    // The cluster's decisions carry the same policy.
    let mut closed = decision(KEY, S::Closed);
    closed.policy = Some(pb::Policy::from(&policy));
    agent.apply_event(snapshot(1, vec![closed.clone()]), 0);
    for _ in 0..10 {
        let p = b.allow().expect("closed");
        b.record(p, Outcome::Failure, Duration::from_millis(1));
    }
    agent.tick(100);
    assert_eq!(reason(&b), Some(RejectReason::LocalOpen));
    // A close with no open episode in between does not touch the local breaker.
    agent.apply_event(
        event(2, pb::watch_event::Event::Breaker(closed.clone())),
        150,
    );
    assert_eq!(reason(&b), Some(RejectReason::LocalOpen));

    let mut open = decision(KEY, S::Open);
    open.policy = Some(pb::Policy::from(&policy));
    agent.apply_event(event(3, pb::watch_event::Event::Breaker(open)), 200);
    assert_eq!(reason(&b), Some(RejectReason::ClusterOpen));
    agent.apply_event(event(4, pb::watch_event::Event::Breaker(closed)), 300);
    assert_eq!(reason(&b), None, "the fleet's close clears the local trip");
}

// ------------------------------------------------------------ fleet retry budget

fn with_fleet(
    mut d: pb::BreakerDecision,
    first_attempts: u64,
    retries: u64,
    instances: u32,
) -> pb::BreakerDecision {
    d.fleet_retries = Some(pb::FleetRetries {
        first_attempts,
        retries,
        instances,
        window_ms: 10_000,
    });
    d
}

/// 20 % of calls plus a floor of 10 retries/s: 100 over a 10 s window.
fn budget() -> crate::RetryBudget {
    crate::RetryBudget::new(
        crate::RetryBudgetOptions {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            retry_percent: 20,
        },
        crate::clock::CoarseClock::new(0),
    )
}

#[test]
fn the_fleet_budget_applies_in_cluster_mode_and_the_local_one_otherwise() {
    // Goal: with fresh fleet figures a retry draws on this instance's share of the fleet's
    // pool; stale or local-only, the per-process budget decides as it would without a cluster.
    use crate::RetryBudgetSource::{Fleet, Local};
    let (mut agent, metrics) = agent(true);
    let b = breaker(&mut agent, KEY);
    let budget = budget();
    assert_eq!(b.retry_budget_source(), Local, "no contact yet");
    assert_eq!(budget.balance_for(&b), (100, Local), "the floor alone");

    // phase: the fleet (4 instances) made 1 000 first attempts and 250 retries in the window:
    // pool = 100 + 20 % × 1 000 − 250 = 50, this instance's share 12 (of 12.5)
    let fleet = with_fleet(decision(KEY, S::Closed), 1_000, 250, 4);
    agent.apply_event(snapshot(5, vec![fleet]), 1_000);
    assert_eq!(b.retry_budget_source(), Fleet);
    assert_eq!(budget.balance_for(&b), (12, Fleet));
    // own first attempts the figures cannot include yet earn 20 % each
    for _ in 0..10 {
        budget.deposit_for(&b);
    }
    assert_eq!(budget.balance_for(&b), (14, Fleet));
    let allowed = (0..20).filter(|_| budget.try_withdraw_for(&b)).count();
    assert_eq!(
        allowed, 14,
        "the share is spent, whatever the local budget says"
    );
    assert_eq!(
        budget.balance(),
        100 + 2 - 14,
        "the local window saw it all"
    );

    // phase: a tick (the counts wait in the stripes for calls to report with) moves nothing
    agent.tick(1_100);
    assert_eq!(budget.balance_for(&b), (0, Fleet));
    let text = metrics.encode_text();
    assert!(
        text.contains(
            "switchyard_sdk_retries_allowed_total{key=\"payments/ml-fraud\",source=\"fleet\"} 14"
        ),
        "{text}"
    );
    assert!(text.contains(
        "switchyard_sdk_retries_denied_total{key=\"payments/ml-fraud\",source=\"fleet\"} 6"
    ));
    assert!(text.contains(
        "switchyard_sdk_retry_budget_source{key=\"payments/ml-fraud\",source=\"fleet\"} 1"
    ));

    // phase: silence past stale_after: the per-process budget decides again
    agent.tick(6_001);
    assert_eq!(agent.mode(), Mode::Stale);
    assert_eq!(b.retry_budget_source(), Local);
    assert_eq!(budget.balance_for(&b), (88, Local));
    assert!(budget.try_withdraw_for(&b));
    assert!(metrics.encode_text().contains(
        "switchyard_sdk_retry_budget_source{key=\"payments/ml-fraud\",source=\"local\"} 1"
    ));
    agent.tick(31_002);
    assert_eq!(agent.mode(), Mode::LocalOnly);
    assert_eq!(budget.balance_for(&b).1, Local);

    // phase: contact again: the figures held are in force again
    agent.apply_event(heartbeat(6), 32_000);
    assert_eq!(b.retry_budget_source(), Fleet);
}

#[test]
fn the_fleet_floor_is_split_and_an_exhausted_fleet_refuses_retries() {
    use crate::RetryBudgetSource::Fleet;
    let (mut agent, _) = agent(true);
    let b = breaker(&mut agent, KEY);
    let budget = budget();
    // phase: a quiet fleet of 5: the 100-retry floor is split, 20 each
    agent.apply_event(
        snapshot(1, vec![with_fleet(decision(KEY, S::Closed), 0, 0, 5)]),
        0,
    );
    assert_eq!(budget.balance_for(&b), (20, Fleet));
    // phase: the fleet spent more than its pool: nothing, though this process retried little
    let exhausted = with_fleet(decision(KEY, S::Closed), 1_000, 400, 5);
    agent.apply_event(event(2, pb::watch_event::Event::Breaker(exhausted)), 100);
    assert_eq!(budget.balance_for(&b), (-20, Fleet));
    assert!(!budget.try_withdraw_for(&b));
    assert!(
        budget.try_withdraw(),
        "the per-process budget alone would allow it"
    );
}

#[test]
fn without_fleet_figures_the_local_budget_decides() {
    // Goal: a node that predates fleet figures, or figures with no retrying instance, leave
    // retries to the per-process budget even in cluster mode.
    use crate::RetryBudgetSource::{Fleet, Local};
    let (mut agent, _) = agent(true);
    let b = breaker(&mut agent, KEY);
    let budget = budget();
    agent.apply_event(snapshot(1, vec![decision(KEY, S::Closed)]), 0);
    assert_eq!(agent.mode(), Mode::Cluster);
    assert_eq!(budget.balance_for(&b), (100, Local));
    agent.apply_event(
        snapshot(2, vec![with_fleet(decision(KEY, S::Closed), 0, 0, 0)]),
        0,
    );
    assert_eq!(b.retry_budget_source(), Local);
    // a breaker created after the figures arrived picks them up
    agent.apply_event(
        snapshot(
            3,
            vec![with_fleet(decision("payments/db", S::Closed), 10, 0, 1)],
        ),
        0,
    );
    let db = breaker(&mut agent, "payments/db");
    assert_eq!(db.retry_budget_source(), Fleet);
    assert_eq!(budget.balance_for(&db), (102, Fleet));
    // a snapshot without the breaker takes its figures out of force
    agent.apply_event(snapshot(4, vec![]), 0);
    assert_eq!(db.retry_budget_source(), Local);
}

#[test]
fn retry_counts_are_reported_with_calls_and_count_as_recent_on_new_figures() {
    // Goal: first attempts and retries go out in the next report that has calls (never alone:
    // older nodes refuse a delta without calls), and new figures count the last drains as not
    // yet included.
    let (mut agent, _) = agent(true);
    let b = breaker(&mut agent, KEY);
    let budget = budget();
    agent.apply_event(
        snapshot(1, vec![with_fleet(decision(KEY, S::Closed), 100, 0, 1)]),
        0,
    );
    // phase: first attempts without a completed call stay in the stripes
    for _ in 0..5 {
        budget.deposit_for(&b);
    }
    assert!(budget.try_withdraw_for(&b));
    agent.tick(100);
    assert!(agent.reports.is_empty(), "nothing to report without calls");
    // phase: the calls complete: all of it goes out
    let p = b.allow().expect("closed");
    b.record(p, Outcome::Failure, Duration::from_millis(2));
    agent.tick(200);
    let (_, report) = agent.reports.front().expect("a report");
    let d = &report.deltas[0];
    assert_eq!((d.calls, d.first_attempts, d.retries), (1, 5, 1));
    // phase: new figures that do not include the drain yet: it still counts as own
    let balance = budget.balance_for(&b).0;
    agent.apply_event(
        event(
            2,
            pb::watch_event::Event::Breaker(with_fleet(decision(KEY, S::Closed), 100, 0, 1)),
        ),
        250,
    );
    assert_eq!(
        budget.balance_for(&b).0,
        balance,
        "the drain counts until it is old"
    );
    // three drains later it is assumed in the figures
    for t in [300, 400, 500] {
        agent.tick(t);
    }
    agent.apply_event(
        event(
            3,
            pb::watch_event::Event::Breaker(with_fleet(decision(KEY, S::Closed), 105, 1, 1)),
        ),
        550,
    );
    assert_eq!(budget.balance_for(&b).0, balance);
}
