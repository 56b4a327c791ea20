//! Properties of the freshest span and the trip rule built on it.

use proptest::prelude::*;
use switchyard_core::*;

use crate::helpers::*;

fn window_spec() -> impl Strategy<Value = WindowSpec> {
    prop_oneof![
        (
            prop::sample::select(vec![1_000u64, 3_000, 10_000, 60_000]),
            1u32..=20
        )
            .prop_map(|(duration_ms, buckets)| WindowSpec::Time {
                duration_ms,
                buckets: buckets.min((duration_ms / 100) as u32),
            }),
        (
            1u32..300,
            prop::sample::select(vec![1_000u64, 5_000, 60_000])
        )
            .prop_map(|(calls, max_age_ms)| WindowSpec::Count { calls, max_age_ms }),
    ]
}

fn confidence() -> impl Strategy<Value = Confidence> {
    prop::sample::select(Confidence::LEVELS.to_vec())
        .prop_map(|level| Confidence::from_percent(level.parse().unwrap()).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_freshest_span_never_counts_a_call_outside_the_window(
        spec in window_spec(),
        min_calls in 1u32..80,
        records in prop::collection::vec((0u64..1_500, 0u64..30, 0u64..30), 1..120),
        probe_after in 0u64..3_000,
    ) {
        // Model: every record with the position it landed at. A call is inside the window at
        // `now` iff its position is at least the window's oldest position; the span must be
        // exactly the calls at or after its start, all of them inside the window.
        let mut window = Window::new(spec);
        let mut now = T0;
        let mut model: Vec<(u64, u64, u64)> = Vec::new();
        for (gap, calls, failures) in records {
            now += gap;
            let t = WindowTotals { calls, failures: failures.min(calls), slow: 0 };
            let position = window.record(now, t, None);
            model.push((position, t.calls, t.failures));
            for at in [now, now + probe_after] {
                let oldest = window.oldest_position(at);
                let inside: u64 = model.iter().filter(|m| m.0 >= oldest).map(|m| m.1).sum();
                prop_assert_eq!(window.totals(at).calls, inside);
                match window.freshest_span(at, min_calls) {
                    None => prop_assert!(inside < u64::from(min_calls)),
                    Some(span) => {
                        prop_assert!(span.start_position >= oldest);
                        let calls: u64 = model.iter().filter(|m| m.0 >= span.start_position).map(|m| m.1).sum();
                        let failures: u64 = model.iter().filter(|m| m.0 >= span.start_position).map(|m| m.2).sum();
                        prop_assert_eq!((span.totals.calls, span.totals.failures), (calls, failures));
                        prop_assert!(span.totals.calls >= u64::from(min_calls));
                        prop_assert!(span.totals.calls <= inside);
                    }
                }
            }
        }
    }

    #[test]
    fn replaying_fleet_ticks_gives_byte_identical_state(
        spec in window_spec(),
        confidence in confidence(),
        min_calls in 1u32..40,
        ticks in prop::collection::vec((0u64..400, prop::collection::vec((0u64..12, 1u64..20, 0u64..20, 0u64..20), 0..8)), 1..80),
    ) {
        let policy = Policy { window: spec, min_calls, fresh_span_confidence: confidence, open_duration_ms: 1_000, ..Policy::default() };
        let run = || {
            let mut h = Harness::with_scope_policy(policy.clone());
            let mut now = T0;
            let mut reasons = Vec::new();
            for (gap, reports) in &ticks {
                now += gap;
                // One delta per instance and tick (instance = base + its place in the tick).
                let deltas = reports.iter().enumerate().map(|(n, &(base, calls, f, s))| delta("payments/db", &format!("i-{}", base * 8 + n as u64), calls, f.min(calls), s.min(calls))).collect();
                reasons.extend(changed(&h.tick(now, deltas)));
            }
            (h.state, reasons)
        };
        let (a, ra) = run();
        let (b, rb) = run();
        prop_assert_eq!(bincode::serialize(&a).unwrap(), bincode::serialize(&b).unwrap());
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(ra, rb);
        let back: CoordinatorState = bincode::deserialize(&bincode::serialize(&a).unwrap()).unwrap();
        prop_assert_eq!(bincode::serialize(&back).unwrap(), bincode::serialize(&a).unwrap());
    }

    #[test]
    fn one_instances_failures_never_trip_the_fleet(
        spec in window_spec(),
        confidence in confidence(),
        min_instances in 2u32..6,
        min_calls in 1u32..40,
        ticks in prop::collection::vec((0u64..400, 0u64..60, 0u64..4), 1..120),
    ) {
        // One sick instance fails every call; up to three healthy ones report successes.
        let policy = Policy { window: spec, min_calls, min_instances, fresh_span_confidence: confidence, ..Policy::default() };
        let mut h = Harness::with_scope_policy(policy);
        let mut now = T0;
        for (gap, sick_calls, healthy) in ticks {
            now += gap;
            let mut deltas = vec![delta("payments/db", "sick", sick_calls.max(1), sick_calls.max(1), sick_calls.max(1))];
            deltas.extend((0..healthy).map(|i| delta("payments/db", &format!("ok-{i}"), 5, 0, 0)));
            h.tick(now, deltas);
            prop_assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
        }
    }
}
