//! CLOSED -> OPEN -> HALF_OPEN: the trip rule, instance rule, timing and back-off.

use switchyard_core::*;

use crate::helpers::*;

#[test]
fn trips_on_failure_rate_from_two_instances() {
    // goal: a fleet-wide failure rate above threshold from 2 instances opens the breaker
    let mut h = Harness::with_scope_policy(whole_window_policy());
    let fx = h.tick(
        T0,
        vec![
            delta("payments/db", "i-1", 20, 14, 0),
            delta("payments/db", "i-2", 20, 14, 0),
        ],
    );
    assert!(fx.contains(&Effect::BreakerCreated {
        key: key("payments/db")
    }));
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::Closed,
            BreakerState::Open,
            "failure_rate 70% >= 50% over 40 calls from 2 instances".into()
        )]
    );
    let v = h.view("payments/db");
    assert_eq!(
        (v.state, v.since_ms, v.consecutive_opens),
        (BreakerState::Open, T0, 1)
    );
    let last = h.state.audit().events().last().unwrap().clone();
    assert_eq!(
        (
            last.actor.to_string().as_str(),
            last.kind.as_str(),
            last.from.as_str(),
            last.to.as_str()
        ),
        ("policy", "breaker_transition", "CLOSED", "OPEN")
    );
}

#[test]
fn trips_on_slow_rate() {
    // goal: with slow_call_rate_threshold 100, a window of only slow calls opens the breaker
    let mut h = Harness::new();
    let fx = h.tick(
        T0,
        vec![
            delta("payments/db", "i-1", 10, 0, 10),
            delta("payments/db", "i-2", 10, 0, 10),
        ],
    );
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::Closed,
            BreakerState::Open,
            "slow_call_rate 100% >= 100% over 20 calls from 2 instances".into()
        )]
    );
}

#[test]
fn does_not_trip_under_min_calls() {
    let mut h = Harness::new();
    h.tick(
        T0,
        vec![
            delta("payments/db", "i-1", 10, 10, 0),
            delta("payments/db", "i-2", 9, 9, 0),
        ],
    );
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    // phase: one more failed call reaches min_calls (20) and trips
    h.tick(T0 + 100, vec![delta("payments/db", "i-2", 1, 1, 0)]);
    assert_eq!(h.state_of("payments/db"), BreakerState::Open);
}

#[test]
fn does_not_trip_below_threshold() {
    let mut h = Harness::new();
    h.tick(
        T0,
        vec![
            delta("payments/db", "i-1", 20, 9, 0),
            delta("payments/db", "i-2", 20, 10, 0),
        ],
    );
    assert_eq!(
        h.state_of("payments/db"),
        BreakerState::Closed,
        "19/40 = 47% < 50%"
    );
}

#[test]
fn one_failing_instance_never_trips_the_fleet() {
    // goal: min_instances 2 -> one sick instance alone cannot open the fleet breaker
    let mut h = Harness::new();
    h.tick(T0, vec![delta("payments/db", "i-1", 1000, 1000, 0)]);
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    // phase: healthy instances report too; still only one bad instance
    h.tick(
        T0 + 100,
        vec![
            delta("payments/db", "i-2", 10, 0, 0),
            delta("payments/db", "i-3", 10, 0, 0),
        ],
    );
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    // phase: a second instance reports failures -> trip
    let fx = h.tick(T0 + 200, vec![delta("payments/db", "i-2", 10, 10, 0)]);
    assert_eq!(
        changed(&fx)[0].2,
        "failure_rate 98% (lower bound 95% ≥ 50%) over 1030 calls (window not yet full) from 2 instances"
    );
}

#[test]
fn required_instances_follow_live_reporters() {
    // goal: min_instances 5 with only 3 live reporters -> all 3 must fail
    let policy = Policy {
        min_instances: 5,
        ..whole_window_policy()
    };
    let mut h = Harness::with_scope_policy(policy);
    h.tick(
        T0,
        vec![
            delta("payments/db", "i-1", 10, 10, 0),
            delta("payments/db", "i-2", 10, 10, 0),
            delta("payments/db", "i-3", 10, 0, 0),
        ],
    );
    assert_eq!(
        h.state_of("payments/db"),
        BreakerState::Closed,
        "2 of 3 live instances failing"
    );
    h.tick(T0 + 10, vec![delta("payments/db", "i-3", 10, 10, 0)]);
    assert_eq!(h.state_of("payments/db"), BreakerState::Open);
    // min_instances 1: a single instance may trip
    let mut h = Harness::with_scope_policy(Policy {
        min_instances: 1,
        ..exact_policy()
    });
    h.tick(T0, vec![delta("payments/db", "i-1", 20, 20, 0)]);
    assert_eq!(h.state_of("payments/db"), BreakerState::Open);
}

#[test]
fn old_failures_leave_the_time_window() {
    let mut h = Harness::new();
    h.tick(T0, vec![delta("payments/db", "i-1", 10, 10, 0)]);
    // 11 s later the first instance's failures are out of the 10 s window
    h.tick(T0 + 11_000, vec![delta("payments/db", "i-2", 10, 10, 0)]);
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    assert_eq!(h.view("payments/db").window_calls, 10);
    assert_eq!(h.view("payments/db").window_instances, 1);
}

#[test]
fn count_window_keeps_the_last_calls() {
    // goal: a count window of 20 forgets older successes so recent failures trip
    let policy = Policy {
        window: WindowSpec::count(20),
        ..exact_policy()
    };
    let mut h = Harness::with_scope_policy(policy);
    for n in 0..5 {
        h.tick(
            T0 + n * 100,
            vec![
                delta("payments/db", "i-1", 10, 0, 0),
                delta("payments/db", "i-2", 10, 0, 0),
            ],
        );
    }
    assert!(h.view("payments/db").window_calls <= 40);
    h.tick(
        T0 + 600,
        vec![
            delta("payments/db", "i-1", 10, 10, 0),
            delta("payments/db", "i-2", 10, 10, 0),
        ],
    );
    assert_eq!(
        h.state_of("payments/db"),
        BreakerState::Open,
        "the 20 newest calls are all failures"
    );
    // many chunks stay bounded
    let mut h = Harness::with_scope_policy(Policy {
        window: WindowSpec::count(100_000),
        ..exact_policy()
    });
    for n in 0..200 {
        h.tick(T0 + n, vec![delta("payments/db", "i-1", 1, 0, 0)]);
    }
    assert_eq!(h.view("payments/db").window_calls, 200);
}

#[test]
fn open_to_half_open_exactly_at_open_until() {
    let mut h = Harness::with_scope_policy(exact_policy());
    let until = h.trip("payments/db", T0);
    assert_eq!(until, T0 + 30_000);
    assert_eq!(h.state.next_deadline_ms(), Some(until));
    h.tick(until - 1, vec![]);
    assert_eq!(
        h.state_of("payments/db"),
        BreakerState::Open,
        "not 1 ms before"
    );
    let fx = h.tick(until, vec![]);
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::Open,
            BreakerState::HalfOpen,
            "open for 30000 ms, probing".into()
        )]
    );
}

#[test]
fn backoff_doubles_per_reopen_and_is_capped() {
    let policy = Policy {
        open_duration_ms: 1_000,
        open_duration_max_ms: 3_000,
        ..exact_policy()
    };
    let mut h = Harness::with_scope_policy(policy);
    let mut at = h.trip("payments/db", T0);
    assert_eq!(at, T0 + 1_000);
    for expected in [2_000, 3_000, 3_000] {
        h.tick(at, vec![]);
        let permit = h.granted(at, "payments/db", "i-1");
        let fx = h
            .release(at, "payments/db", permit, ProbeOutcome::Failure)
            .unwrap()
            .effects;
        assert_eq!(changed(&fx)[0].1, BreakerState::Open);
        let v = h.view("payments/db");
        assert_eq!(v.open_until_ms, Some(at + expected));
        at += expected;
    }
    assert_eq!(h.view("payments/db").consecutive_opens, 4);
}

#[test]
fn jitter_is_deterministic_and_within_bounds() {
    let policy = Policy::default();
    let k = key("payments/db");
    let mut distinct = std::collections::BTreeSet::new();
    for t in 0..500u64 {
        let d = open_duration_ms(&policy, &k, T0 + t * 7, 1);
        assert!((27_000..=33_000).contains(&d), "{d} within ±10% of 30000");
        assert_eq!(
            d,
            open_duration_ms(&policy, &k, T0 + t * 7, 1),
            "deterministic"
        );
        distinct.insert(d);
    }
    assert!(distinct.len() > 100, "jitter actually varies");
    let capped = open_duration_ms(&policy, &k, T0, 10);
    assert!((270_000..=330_000).contains(&capped));
    let no_jitter = Policy {
        open_jitter_percent: 0,
        ..policy
    };
    assert_eq!(open_duration_ms(&no_jitter, &k, T0, 3), 120_000);
}

#[test]
fn unknown_breaker_limit_drops_deltas() {
    // goal: beyond max_breakers, new keys' deltas are dropped and counted, not an error
    let mut h = Harness::new();
    let settings = ClusterSettings {
        max_breakers: 2,
        ..ClusterSettings::default()
    };
    h.ok(T0, Command::PutSettings { settings });
    h.tick(
        T0,
        vec![
            delta("a/x", "i-1", 1, 0, 0),
            delta("b/x", "i-1", 1, 0, 0),
            delta("c/x", "i-1", 1, 0, 0),
            delta("c/x", "i-2", 1, 0, 0),
        ],
    );
    assert_eq!(h.state.breaker_count(), 2);
    assert_eq!(h.state.dropped_deltas(), 2);
    let err = h.apply(
        T0,
        Command::SetOverride {
            key: key("c/x"),
            mode: OverrideMode::ForcedOpen,
            reason: "test override".into(),
            expires_at_ms: None,
        },
    );
    assert!(matches!(err, Err(CommandError::ResourceExhausted { .. })));
}

#[test]
fn invalid_tick_changes_nothing_but_the_clock() {
    let mut h = Harness::new();
    h.tick(T0, vec![delta("payments/db", "i-1", 5, 0, 0)]);
    let before = observable(&h.state);
    let bad = delta("payments/db", "i-1", 5, 6, 0);
    let err = h
        .apply(
            T0,
            Command::Tick {
                deltas: vec![bad].into(),
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::Invalid(ValidationError::new(
            "deltas[0].failures",
            "must be at most calls (5), got 6"
        ))
    );
    assert_eq!(observable(&h.state), before);
    assert_eq!(h.state.last_index(), h.index);
    let err = h
        .apply(
            T0,
            Command::ResetBreaker {
                key: key("payments/nope"),
                reason: String::new(),
            },
        )
        .unwrap_err();
    assert_eq!(err, CommandError::UnknownBreaker(key("payments/nope")));
    assert_eq!(observable(&h.state), before);
}

#[test]
fn policy_put_re_resolves_breakers() {
    let mut h = Harness::new();
    h.tick(T0, vec![delta("payments/db", "i-1", 1, 0, 0)]);
    assert_eq!(h.view("payments/db").policy, Policy::default());
    let scope_policy = Policy {
        min_calls: 5,
        ..Policy::default()
    };
    h.ok(
        T0,
        Command::PutPolicies {
            policies: vec![(PolicyTarget::Scope(scope("payments")), scope_policy.clone())],
        },
    );
    assert_eq!(h.view("payments/db").policy, scope_policy);
    let key_policy = Policy {
        min_calls: 7,
        ..Policy::default()
    };
    let fx = h.ok(
        T0,
        Command::PutPolicies {
            policies: vec![(PolicyTarget::Key(key("payments/db")), key_policy.clone())],
        },
    );
    assert_eq!(
        fx,
        vec![Effect::PolicyChanged {
            target: PolicyTarget::Key(key("payments/db"))
        }]
    );
    assert_eq!(h.view("payments/db").policy, key_policy);
    assert_eq!(
        h.state.effective_policy(&key("payments/other")),
        scope_policy
    );
    h.ok(
        T0,
        Command::DeletePolicy {
            target: PolicyTarget::Key(key("payments/db")),
        },
    );
    assert_eq!(h.view("payments/db").policy, scope_policy);
    let err = h
        .apply(
            T0,
            Command::DeletePolicy {
                target: PolicyTarget::Key(key("payments/db")),
            },
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::NotFound { .. }));
    assert_eq!(h.state.policies().len(), 1);
}

#[test]
fn local_breaker_ignores_instances() {
    // goal: the SDK's local breaker trips on its own calls alone, and runs the same machine
    let policy = whole_window_policy();
    let mut local = LocalBreaker::new(key("payments/db"), policy);
    local.record(T0, 20, 15, 0);
    let t = local.advance(T0).expect("trips");
    assert_eq!(t.reason, "failure_rate 75% >= 50% over 20 calls");
    assert_eq!(local.state(), BreakerState::Open);
    assert!(!local.try_acquire_probe(T0 + 1));
    assert_eq!(
        local.advance(T0 + 30_000).unwrap().to,
        BreakerState::HalfOpen
    );
    for _ in 0..3 {
        assert!(local.try_acquire_probe(T0 + 30_001));
    }
    assert!(!local.try_acquire_probe(T0 + 30_001), "probe_permits = 3");
    assert!(
        local
            .release_probe(T0 + 30_002, ProbeOutcome::Success)
            .is_none()
    );
    assert!(
        local
            .release_probe(T0 + 30_002, ProbeOutcome::Success)
            .is_none()
    );
    let closed = local
        .release_probe(T0 + 30_002, ProbeOutcome::Success)
        .unwrap();
    assert_eq!(
        (closed.to, closed.reason.as_str()),
        (BreakerState::Closed, "3 of 3 probes succeeded")
    );
    assert_eq!(local.reason(), "3 of 3 probes succeeded");
}

#[test]
fn a_policy_batch_is_all_or_nothing() {
    // A batch over the policy limit stores none of its policies.
    let mut h = Harness::new();
    let settings = ClusterSettings {
        max_breakers: 2,
        ..ClusterSettings::default()
    };
    h.ok(T0, Command::PutSettings { settings });
    let batch = |names: &[&str]| Command::PutPolicies {
        policies: names
            .iter()
            .map(|n| (PolicyTarget::Key(key(n)), Policy::default()))
            .collect(),
    };
    h.ok(T0, batch(&["payments/a"]));
    let err = h.state.apply(
        ApplyContext {
            index: 99,
            stamped_ms: T0,
        },
        &Envelope {
            actor: Actor::Policy,
            command: batch(&["payments/b", "payments/c"]),
            trace: None,
        },
    );
    assert!(
        matches!(err, Err(CommandError::ResourceExhausted { .. })),
        "{err:?}"
    );
    assert!(
        h.state
            .policy(&PolicyTarget::Key(key("payments/b")))
            .is_none()
    );
    assert_eq!(h.state.policies().len(), 1);
    // Duplicate targets are rejected by validation, naming the entry.
    let dup = batch(&["payments/a", "payments/a"]);
    let e = dup.validate(h.state.settings()).unwrap_err();
    assert_eq!(e.field, "policies[1].target");
}
