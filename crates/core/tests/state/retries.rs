//! Fleet retry figures: aggregation across instances, windowing, when they are pushed,
//! limits, and their place in snapshots and digests.

use switchyard_core::*;

use crate::helpers::*;

const KEY: &str = "payments/db";

/// A delta of `calls` successful calls carrying retry figures.
fn retry_delta(i: &str, calls: u64, first_attempts: u32, retries: u32) -> Delta {
    Delta {
        first_attempts,
        retries,
        ..delta(KEY, i, calls, 0, 0)
    }
}

fn pushes(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::FleetRetriesChanged { .. }))
        .count()
}

#[test]
fn figures_sum_the_fleet_and_count_the_retrying_instances() {
    // goal: first attempts and retries add up over instances and ticks; instances that only
    // make calls without a retry budget are not retrying instances
    let mut h = Harness::new();
    let fx = h.tick(
        T0,
        vec![
            retry_delta("i-1", 50, 40, 6),
            retry_delta("i-2", 30, 30, 0),
            delta(KEY, "i-3", 100, 0, 0),
        ],
    );
    assert_eq!(pushes(&fx), 1, "the first figures are pushed");
    h.tick(T0 + 100, vec![retry_delta("i-1", 10, 10, 4)]);
    let v = h.view(KEY);
    assert_eq!(
        v.fleet_retries,
        FleetRetries {
            first_attempts: 80,
            retries: 10,
            instances: 2,
            window_ms: 10_000,
        }
    );
    assert_eq!(v.fleet_retries.retry_percent(), 12);
    assert_eq!(v.window_calls, 190, "calls are windowed as before");
    assert_eq!(v.window_instances, 3);
}

#[test]
fn retry_figures_without_calls_count_but_mark_only_known_instances() {
    // goal: a report of retries whose calls complete later still counts; it marks an instance
    // the breaker knows by its calls, and never makes a new one "live" for the trip rule
    let mut h = Harness::new();
    h.tick(T0, vec![retry_delta("i-1", 5, 0, 0)]);
    h.tick(
        T0 + 100,
        vec![retry_delta("i-1", 0, 3, 2), retry_delta("i-9", 0, 7, 1)],
    );
    let v = h.view(KEY);
    assert_eq!(
        (
            v.fleet_retries.first_attempts,
            v.fleet_retries.retries,
            v.fleet_retries.instances
        ),
        (10, 3, 1)
    );
    assert_eq!(v.window_instances, 1);
    // an instance that only retries (first attempts reported earlier) is not a retrying one
    h.tick(T0 + 200, vec![retry_delta("i-5", 4, 0, 4)]);
    let v = h.view(KEY);
    assert_eq!((v.fleet_retries.instances, v.window_instances), (1, 2));
}

#[test]
fn figures_age_out_with_the_window_and_the_empty_figures_are_pushed_once() {
    // goal: the figures cover the breaker's window (10 s in 10 buckets by default); once
    // the last retry data aged out, SDKs are told once, then never again
    let mut h = Harness::new();
    h.tick(T0, vec![retry_delta("i-1", 20, 20, 5)]);
    h.tick(T0 + 5_000, vec![retry_delta("i-2", 20, 20, 0)]);
    assert_eq!(h.view(KEY).fleet_retries.first_attempts, 40);
    // phase: the first tick's bucket leaves the window
    let fx = h.tick(T0 + 10_000, vec![delta(KEY, "i-3", 1, 0, 0)]);
    let v = h.view(KEY).fleet_retries;
    assert_eq!((v.first_attempts, v.retries, v.instances), (20, 0, 1));
    assert_eq!(pushes(&fx), 1, "one instance left: pushed at once");
    // phase: everything aged out
    let fx = h.tick(T0 + 15_000, vec![delta(KEY, "i-3", 1, 0, 0)]);
    assert!(h.view(KEY).fleet_retries.is_empty());
    assert_eq!(pushes(&fx), 1);
    let fx = h.tick(T0 + 25_100, vec![delta(KEY, "i-3", 1, 0, 0)]);
    assert_eq!(pushes(&fx), 0, "nothing left to push");
}

#[test]
fn small_drifts_are_pushed_only_when_old_large_ones_at_once() {
    // goal: a tick that moves the figures a little does not push a decision to every watcher;
    // a large move, or a small one that is FLEET_RETRIES_REPUSH_MS old, does
    let mut h = Harness::new();
    let instances = ["i-1", "i-2", "i-3", "i-4"];
    let tick = |h: &mut Harness, at: u64, first: u32, retries: u32| {
        let deltas = instances
            .iter()
            .map(|i| retry_delta(i, u64::from(first), first, retries))
            .collect();
        pushes(&h.tick(at, deltas))
    };
    assert_eq!(tick(&mut h, T0, 100, 10), 1);
    // 400 first attempts and 40 retries pushed; +24 first attempts, +0 retries is small
    let mut t = T0;
    let mut pushed = 0;
    for _ in 0..6 {
        t += 100;
        pushed += tick(&mut h, t, 1, 0);
    }
    assert_eq!(pushed, 0, "within 1/16 of what SDKs hold");
    // phase: a retry storm moves retries by more than 1/16 at once
    t += 100;
    assert_eq!(tick(&mut h, t, 1, 5), 1);
    // phase: one small change, then ticks without retry figures, until the push is old
    let pushed_at = t;
    t += 100;
    assert_eq!(tick(&mut h, t, 1, 0), 0);
    let mut pushes_seen = Vec::new();
    while t < pushed_at + FLEET_RETRIES_REPUSH_MS + 1_000 {
        t += 100;
        if pushes(&h.tick(t, vec![delta(KEY, "i-9", 1, 0, 0)])) > 0 {
            pushes_seen.push(t);
        }
    }
    assert_eq!(pushes_seen, vec![pushed_at + FLEET_RETRIES_REPUSH_MS]);
}

#[test]
fn retry_figures_are_validated_against_the_delta_limit() {
    // goal: bad retry figures are refused, naming the field, and change nothing
    let mut h = Harness::new();
    h.tick(T0, vec![retry_delta("i-1", 5, 5, 0)]);
    let before = observable(&h.state);
    for (d, field) in [
        (
            retry_delta("i-1", 5, DELTA_COUNT_MAX as u32 + 1, 0),
            "deltas[0].first_attempts",
        ),
        (retry_delta("i-1", 5, 0, u32::MAX), "deltas[0].retries"),
    ] {
        let err = h
            .apply_as(
                T0 + 1,
                Actor::Node(1),
                Command::Tick {
                    deltas: vec![d].into(),
                },
            )
            .expect_err("over the limit");
        match err {
            CommandError::Invalid(e) => {
                assert_eq!(e.field, field);
                assert!(e.rule.contains("at most 10000000"), "{}", e.rule);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
    assert_eq!(observable(&h.state), before);
    // retries alone (calls and first attempts in other reports) are a valid delta
    assert!(retry_delta("i-1", 0, 0, 3).validate().is_ok());
    let empty = retry_delta("i-1", 0, 0, 0).validate().expect_err("empty");
    assert_eq!(empty.field, "calls");
}

#[test]
fn count_windows_report_the_age_of_their_oldest_chunk() {
    // goal: with a count window the figures say how long a span they cover
    let mut h = Harness::with_scope_policy(Policy {
        window: WindowSpec::count(100),
        ..Policy::default()
    });
    h.tick(T0, vec![retry_delta("i-1", 60, 60, 3)]);
    h.tick(T0 + 2_000, vec![retry_delta("i-1", 60, 60, 3)]);
    let v = h.view(KEY).fleet_retries;
    assert_eq!((v.first_attempts, v.window_ms), (120, 2_000));
    // the oldest chunk leaves once the rest holds 100 calls
    h.tick(T0 + 3_000, vec![retry_delta("i-1", 60, 60, 3)]);
    let v = h.view(KEY).fleet_retries;
    assert_eq!((v.first_attempts, v.window_ms), (120, 1_000));
}

#[test]
fn replicas_and_snapshots_agree_on_retry_figures_and_push_history() {
    // goal: the figures and what was pushed are replicated state: two replicas replaying the
    // same log, and a replica restored from a snapshot, have equal digests and push alike
    let mut a = Harness::new();
    let mut b = Harness::new();
    let ticks: Vec<(u64, Vec<Delta>)> = (0..30u32)
        .map(|n| {
            let deltas = (0..3)
                .map(|i| retry_delta(&format!("i-{i}"), u64::from(10 + n), 10 + n, n % 4))
                .collect();
            (T0 + u64::from(n) * 100, deltas)
        })
        .collect();
    let (mut pushes_a, mut pushes_b) = (0, 0);
    for (at, deltas) in &ticks[..20] {
        pushes_a += pushes(&a.tick(*at, deltas.clone()));
        pushes_b += pushes(&b.tick(*at, deltas.clone()));
    }
    assert_eq!(a.state.digest(), b.state.digest());
    assert_eq!(pushes_a, pushes_b);
    // phase: restore a third replica from a snapshot of `a` and go on
    let bytes = bincode::serialize(&a.state).expect("serialize");
    let mut c = Harness {
        state: bincode::deserialize(&bytes).expect("deserialize"),
        index: a.index,
    };
    assert_eq!(c.state.digest(), a.state.digest());
    let (mut tail_a, mut tail_c) = (0, 0);
    for (at, deltas) in &ticks[20..] {
        tail_a += pushes(&a.tick(*at, deltas.clone()));
        tail_c += pushes(&c.tick(*at, deltas.clone()));
    }
    assert_eq!(a.state.digest(), c.state.digest());
    assert_eq!(
        tail_a, tail_c,
        "the restored replica pushes where the others do"
    );
    let total = pushes_a + tail_a;
    assert!(total > 1 && total < 30, "pushes are throttled: {total}");
    assert_eq!(a.view(KEY), c.view(KEY));
}
