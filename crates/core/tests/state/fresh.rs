//! The freshest span: the fleet decides on fresh evidence (DESIGN §3), with confidence and
//! from several instances; the whole window is still judged as before once it is warm, and
//! with the same confidence while it is cold.

use switchyard_core::*;

use crate::helpers::*;

/// `n` instances `i-0..` each reporting `calls` calls with `failures` failures.
fn fleet(n: usize, calls: u64, failures: u64, slow: u64) -> Vec<Delta> {
    (0..n)
        .map(|i| delta("payments/db", &format!("i-{i}"), calls, failures, slow))
        .collect()
}

/// A harness whose `payments/db` window is warm: 10 s of healthy calls from 50 instances at
/// 5 calls/s, one tick every 100 ms ending at T0 + 10 s. Returns the time of the last tick.
fn warm(policy: Policy) -> (Harness, u64) {
    let mut h = Harness::with_scope_policy(policy);
    let mut now = T0;
    for tick in 0..100u64 {
        now = T0 + 100 + tick * 100;
        // 50 instances × 5 calls/s = 25 calls per 100 ms, spread over the fleet.
        let deltas = (0..25)
            .map(|i| {
                delta(
                    "payments/db",
                    &format!("i-{}", (tick * 25 + i) % 50),
                    1,
                    0,
                    0,
                )
            })
            .collect();
        h.tick(now, deltas);
    }
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    (h, now)
}

#[test]
fn a_warm_fleet_trips_on_the_first_fresh_failures() {
    // goal: at outage onset the freshest span trips within two ticks, long before the 10 s
    // window's rate reaches 50 %, and the reason names the span
    let (mut h, now) = warm(exact_policy());
    let fx = h.tick(now + 100, fleet(25, 1, 1, 0));
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::Closed,
            BreakerState::Open,
            "failure_rate 100% (lower bound 64% ≥ 50%) over the newest 25 calls (0.0 s) from 25 instances"
                .into()
        )]
    );
    let v = h.view("payments/db");
    assert!(
        v.window_failures * 2 < v.window_calls,
        "the whole window alone would not trip"
    );
}

#[test]
fn a_span_below_the_confidence_bound_does_not_trip() {
    // goal: 19 of 25 fresh calls failing (76 %) is above 50 % but not with 99.99 %
    // confidence; at 95 % confidence the same evidence trips
    for (confidence, trips) in [(Confidence::default(), false), (conf(95.0), true)] {
        let (mut h, now) = warm(Policy {
            fresh_span_confidence: confidence,
            ..exact_policy()
        });
        let mut deltas = fleet(19, 1, 1, 0);
        deltas.extend((19..25).map(|i| delta("payments/db", &format!("i-{i}"), 1, 0, 0)));
        h.tick(now + 100, deltas);
        let open = h.state_of("payments/db") == BreakerState::Open;
        assert_eq!(open, trips, "{confidence}");
    }
}

fn conf(percent: f64) -> Confidence {
    Confidence::from_percent(percent).unwrap()
}

#[test]
fn fresh_failures_from_one_instance_never_trip_the_fleet() {
    // goal: the span's failures must come from min_instances instances: one instance failing
    // every call trips nothing, a second one failing with it does
    let (mut h, now) = warm(exact_policy());
    h.tick(now + 100, vec![delta("payments/db", "i-7", 40, 40, 0)]);
    h.tick(now + 200, vec![delta("payments/db", "i-7", 40, 40, 0)]);
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    let fx = h.tick(
        now + 300,
        vec![
            delta("payments/db", "i-7", 40, 40, 0),
            delta("payments/db", "i-8", 1, 1, 0),
        ],
    );
    assert_eq!(changed(&fx).len(), 1);
    assert!(
        changed(&fx)[0].2.ends_with("from 2 instances"),
        "{:?}",
        changed(&fx)
    );
}

#[test]
fn an_instance_whose_failures_are_older_than_the_span_does_not_count() {
    // goal: the instance rule of the span counts failures inside the span only
    let (mut h, now) = warm(Policy {
        min_instances: 3,
        ..exact_policy()
    });
    // i-3 fails once; 5 s later i-1 and i-2 fail 40 calls: the span (those 40 calls) holds
    // failures from two instances, although three failed inside the whole window.
    h.tick(now + 100, vec![delta("payments/db", "i-3", 1, 1, 0)]);
    h.tick(
        now + 5_100,
        vec![
            delta("payments/db", "i-1", 20, 20, 0),
            delta("payments/db", "i-2", 20, 20, 0),
        ],
    );
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    h.tick(now + 5_200, vec![delta("payments/db", "i-3", 1, 1, 0)]);
    assert_eq!(h.state_of("payments/db"), BreakerState::Open);
}

#[test]
fn the_rule_switched_off_judges_the_whole_window_only() {
    // goal: fresh_span_confidence 0 restores the whole-window rule
    let (mut h, now) = warm(Policy {
        fresh_span_confidence: Confidence::OFF,
        ..exact_policy()
    });
    for t in 1..=4 {
        h.tick(now + t * 100, fleet(25, 1, 1, 0));
    }
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
}

#[test]
fn the_whole_window_is_judged_first() {
    // goal: when both spans hold the evidence, the reason is the whole window's
    let (mut h, now) = warm(exact_policy());
    let fx = h.tick(now + 100, fleet(50, 60, 60, 0));
    assert_eq!(
        changed(&fx)[0].2,
        "failure_rate 56% >= 50% over 5275 calls from 50 instances"
    );
}

#[test]
fn a_cold_window_is_judged_with_confidence() {
    // goal: a window that does not yet cover its length is not tripped by a noisy baseline
    // at its first min_calls calls (10 of 20 failing is 50 %, far from 50 % with
    // confidence); with the margin switched off the raw rate trips it, as before
    for (confidence, trips) in [(Confidence::default(), false), (Confidence::OFF, true)] {
        let mut h = Harness::with_scope_policy(Policy {
            fresh_span_confidence: confidence,
            ..exact_policy()
        });
        let mut deltas = fleet(10, 1, 1, 0);
        deltas.extend((10..20).map(|i| delta("payments/db", &format!("i-{i}"), 1, 0, 0)));
        let fx = h.tick(T0, deltas);
        assert_eq!(
            changed(&fx).len(),
            usize::from(trips),
            "{confidence}: {fx:?}"
        );
    }
}

#[test]
fn a_cold_window_still_trips_on_an_outage_at_once() {
    // goal: a cold window that clears the bound trips, and its reason says the window was not
    // yet full and names the bound (38 of 40 failing); one whose every call failed trips on
    // its raw rate even below the 14 calls the bound needs (a quiet breaker's first failures)
    let mut h = Harness::with_scope_policy(exact_policy());
    let mut deltas = fleet(4, 10, 10, 0);
    deltas[0].failures = 8;
    let fx = h.tick(T0, deltas);
    assert_eq!(
        changed(&fx)[0].2,
        "failure_rate 95% (lower bound 67% ≥ 50%) over 40 calls (window not yet full) from 4 instances"
    );
    let mut h = Harness::with_scope_policy(Policy {
        min_calls: 4,
        ..exact_policy()
    });
    let fx = h.tick(T0, fleet(2, 5, 5, 0));
    assert_eq!(
        changed(&fx)[0].2,
        "failure_rate 100% >= 50% over 10 calls from 2 instances"
    );
}

#[test]
fn a_time_window_is_judged_on_its_raw_rate_once_it_covers_its_length() {
    // goal: exactly 50 % failures, 25 calls per 100 ms from 50 instances: never above 50 %
    // with confidence, so the cold window waits; the tick whose window has a slot in its
    // oldest bucket (the first 1 s bucket is 9 s old) trips on the raw rate
    let mut h = Harness::with_scope_policy(exact_policy());
    let mut tripped_at = None;
    for tick in 0..120u64 {
        let now = T0 + tick * 100;
        let deltas = (0..50)
            .map(|i| {
                delta(
                    "payments/db",
                    &format!("i-{i}"),
                    1,
                    u64::from(i % 2 == 0),
                    0,
                )
            })
            .collect();
        let fx = h.tick(now, deltas);
        if let Some((_, _, reason)) = changed(&fx).into_iter().next() {
            tripped_at = Some((now - T0, reason));
            break;
        }
    }
    let (at, reason) = tripped_at.expect("the warm window trips");
    assert_eq!(at, 9_000, "{reason}");
    assert_eq!(
        reason,
        "failure_rate 50% >= 50% over 4550 calls from 25 instances"
    );
}

#[test]
fn a_count_window_is_cold_until_it_holds_its_calls() {
    // goal: a count window of 100 calls judges 60 % failures on its raw rate only once it
    // holds 100 calls
    let mut h = Harness::with_scope_policy(Policy {
        window: WindowSpec::Count {
            calls: 100,
            max_age_ms: 60_000,
        },
        ..exact_policy()
    });
    for t in 0..3u64 {
        h.tick(T0 + t * 100, fleet(5, 5, 3, 0));
    }
    assert_eq!(h.view("payments/db").window_calls, 75);
    assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
    h.tick(T0 + 300, fleet(5, 5, 3, 0));
    assert_eq!(h.state_of("payments/db"), BreakerState::Open);
}

#[test]
fn slow_calls_trip_the_span_too() {
    // goal: the slow rate is judged on the span with the same confidence and instance rule
    let (mut h, now) = warm(Policy {
        slow_call_rate_threshold: 50,
        ..exact_policy()
    });
    let fx = h.tick(now + 100, fleet(25, 1, 0, 1));
    let reason = &changed(&fx)[0].2;
    assert!(
        reason.starts_with("slow_call_rate 100% (lower bound 64% ≥ 50%) over the newest 25 calls"),
        "{reason}"
    );
}

#[test]
fn the_span_grows_into_older_slots_until_it_holds_min_calls() {
    // goal: a quiet fleet's span reaches back over several slots (and says how long)
    let mut h = Harness::with_scope_policy(exact_policy());
    for t in 0..6u64 {
        h.tick(T0 + t * 400, fleet(2, 2, 2, 0));
    }
    // Ticks at 0, 0.4, ..., 2.0 s, 4 calls each. Fine slots (100 ms) cover the newest two
    // 1 s buckets; older buckets are taken whole.
    let w = h
        .state
        .breaker_machine(&key("payments/db"))
        .unwrap()
        .window();
    let span = w.freshest_span(T0 + 2_000, 8).unwrap();
    assert_eq!((span.totals.calls, span.duration_ms), (8, 400));
    let span = w.freshest_span(T0 + 2_000, 12).unwrap();
    assert_eq!((span.totals.calls, span.duration_ms), (12, 800));
    // 20 calls reach into the first bucket, which is taken whole (12 + 12).
    let span = w.freshest_span(T0 + 2_000, 20).unwrap();
    assert_eq!((span.totals.calls, span.duration_ms), (24, 2_000));
    assert_eq!(w.freshest_span(T0 + 2_000, 25), None);
    // Ten seconds later the first two buckets have left the window.
    let span = w.freshest_span(T0 + 11_000, 1).unwrap();
    assert_eq!((span.totals.calls, span.duration_ms), (4, 9_000));
    assert_eq!(w.freshest_span(T0 + 11_000, 5), None);
}

#[test]
fn the_local_breaker_runs_the_same_rule_without_instances() {
    // goal: the SDK's local breaker trips on its own fresh span, with no instance count
    // (at 5 calls/s after 19 failures of its newest 20 calls, where the whole 10 s window
    // would wait for 25 of 50)
    let policy = Policy {
        min_calls: 20,
        ..exact_policy()
    };
    let mut local = LocalBreaker::new(key("payments/db"), policy);
    let mut now = T0;
    for _ in 0..50 {
        now += 200;
        local.record(now, 1, 0, 0);
    }
    for _ in 0..20 {
        now += 200;
        local.record(now, 1, 1, 0);
        if local.advance(now).is_some() {
            break;
        }
    }
    assert_eq!(local.state(), BreakerState::Open);
    assert_eq!(
        local.reason(),
        "failure_rate 95% (lower bound 53% ≥ 50%) over the newest 20 calls (3.8 s)"
    );
}

#[test]
fn count_windows_forget_calls_older_than_max_age() {
    // goal: a quiet count window does not judge calls older than max_age_ms
    let mut h = Harness::with_scope_policy(Policy {
        window: WindowSpec::Count {
            calls: 100,
            max_age_ms: 5_000,
        },
        ..exact_policy()
    });
    h.tick(T0, fleet(2, 5, 5, 0));
    assert_eq!(h.view("payments/db").window_calls, 10);
    h.tick(T0 + 5_000, fleet(2, 5, 5, 0));
    let v = h.view("payments/db");
    assert_eq!((v.window_calls, v.window_instances), (10, 2));
    assert_eq!(
        v.state,
        BreakerState::Closed,
        "10 fresh calls < min_calls 20"
    );
}
