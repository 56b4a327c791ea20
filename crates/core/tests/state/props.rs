//! Properties that must hold for any sequence of commands.

use proptest::prelude::*;
use switchyard_core::*;

use crate::helpers::*;

/// A random step against breaker `payments/db`.
#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    Fail {
        instance: u8,
        calls: u64,
        failures: u64,
    },
    Acquire(u8),
    Release {
        permit: u64,
        outcome: u8,
    },
    Reset,
    Override {
        mode: u8,
        for_ms: u64,
    },
    Clear,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..40_000).prop_map(Step::Advance),
        (0u8..4, 1u64..50, 0u64..50).prop_map(|(instance, calls, f)| Step::Fail {
            instance,
            calls,
            failures: f.min(calls)
        }),
        (0u8..6).prop_map(Step::Acquire),
        (0u64..20, 0u8..3).prop_map(|(permit, outcome)| Step::Release { permit, outcome }),
        Just(Step::Reset),
        (0u8..4, 1u64..100_000).prop_map(|(mode, for_ms)| Step::Override { mode, for_ms }),
        Just(Step::Clear),
    ]
}

fn mode(n: u8) -> OverrideMode {
    [
        OverrideMode::ForcedOpen,
        OverrideMode::ForcedClosed,
        OverrideMode::Disabled,
        OverrideMode::MetricsOnly,
    ][n as usize % 4]
}

fn outcome(n: u8) -> ProbeOutcome {
    [
        ProbeOutcome::Success,
        ProbeOutcome::Failure,
        ProbeOutcome::Unused,
    ][n as usize % 3]
}

/// The command a step issues at `now`; `Advance` moves `now` and issues an empty tick.
fn command(s: &Step, now: &mut u64) -> Command {
    let k = key("payments/db");
    match s {
        Step::Advance(ms) => {
            *now += ms;
            Command::Tick {
                deltas: Vec::new().into(),
            }
        }
        Step::Fail {
            instance,
            calls,
            failures,
        } => Command::Tick {
            deltas: vec![delta(
                "payments/db",
                &format!("i-{instance}"),
                *calls,
                *failures,
                0,
            )]
            .into(),
        },
        Step::Acquire(i) => Command::AcquireProbe {
            key: k,
            instance: inst(&format!("i-{i}")),
        },
        Step::Release { permit, outcome: o } => Command::ReleaseProbe {
            key: k,
            permit_id: *permit,
            outcome: outcome(*o),
        },
        Step::Reset => Command::ResetBreaker {
            key: k,
            reason: String::new(),
        },
        Step::Override { mode: m, for_ms } => Command::SetOverride {
            key: k,
            mode: mode(*m),
            reason: "test override".into(),
            expires_at_ms: Some(*now + for_ms),
        },
        Step::Clear => Command::ClearOverride {
            key: k,
            reason: String::new(),
        },
    }
}

fn small_policy() -> Policy {
    Policy {
        min_calls: 5,
        open_duration_ms: 1_000,
        open_duration_max_ms: 8_000,
        probe_permits: 2,
        probe_success_threshold: 2,
        probe_lease_ms: 500,
        ..Policy::default()
    }
}

fn run(
    steps: &[Step],
    stamps_jitter: &[u64],
) -> (CoordinatorState, Vec<Result<Applied, CommandError>>) {
    let mut h = Harness::with_scope_policy(small_policy());
    let mut now = T0;
    let mut results = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let cmd = command(s, &mut now);
        // stamps may go backwards by up to the jitter: the state clock must not
        let stamped = now.saturating_sub(stamps_jitter.get(i).copied().unwrap_or(0));
        results.push(h.apply(stamped, cmd));
    }
    (h.state, results)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn probe_grants_never_exceed_permits(steps in prop::collection::vec(step(), 1..80)) {
        let mut h = Harness::with_scope_policy(small_policy());
        let mut now = T0;
        for s in &steps {
            let cmd = command(s, &mut now);
            let _ = h.apply(now, cmd);
            if let Some(v) = h.state.breaker(&key("payments/db")) {
                prop_assert!(v.probe_permits_in_use <= v.policy.probe_permits);
            }
        }
    }

    #[test]
    fn clock_never_goes_backwards(steps in prop::collection::vec(step(), 1..60), jitter in prop::collection::vec(0u64..100_000, 60)) {
        let mut h = Harness::with_scope_policy(small_policy());
        let mut now = T0;
        let mut last = h.state.now_ms();
        for (i, s) in steps.iter().enumerate() {
            let cmd = command(s, &mut now);
            let _ = h.apply(now.saturating_sub(jitter[i]), cmd);
            prop_assert!(h.state.now_ms() >= last);
            prop_assert_eq!(h.state.last_index(), h.index);
            last = h.state.now_ms();
        }
    }

    #[test]
    fn replay_is_byte_identical(steps in prop::collection::vec(step(), 1..60), jitter in prop::collection::vec(0u64..5_000, 60)) {
        let (a, ra) = run(&steps, &jitter);
        let (b, rb) = run(&steps, &jitter);
        prop_assert_eq!(bincode::serialize(&a).unwrap(), bincode::serialize(&b).unwrap());
        prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        prop_assert_eq!(ra, rb);
        prop_assert_eq!(a.digest(), b.digest());
        // and the state survives a round trip through both formats
        // (equal in full: the derived indexes are rebuilt on load to what the applies left)
        let back: CoordinatorState = bincode::deserialize(&bincode::serialize(&a).unwrap()).unwrap();
        prop_assert_eq!(&back, &a);
        let back: CoordinatorState = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        prop_assert_eq!(&back, &a);
    }

    #[test]
    fn override_never_changes_before_expiry(
        m in 0u8..4,
        for_ms in 1_000u64..200_000,
        steps in prop::collection::vec(step().prop_filter("no operator ends", |s| !matches!(s, Step::Reset | Step::Clear | Step::Override { .. })), 1..60),
    ) {
        let mut h = Harness::with_scope_policy(small_policy());
        let expires = T0 + for_ms;
        h.ok(T0, Command::SetOverride { key: key("payments/db"), mode: mode(m), reason: "test override".into(), expires_at_ms: Some(expires) });
        let mut now = T0;
        for s in &steps {
            let cmd = command(s, &mut now);
            let _ = h.apply(now, cmd);
            let state = h.state_of("payments/db");
            if now < expires {
                prop_assert_eq!(state, mode(m).state());
            } else {
                prop_assert!(state != mode(m).state());
            }
        }
    }

    #[test]
    fn single_instance_never_trips_the_fleet(
        min_instances in 2u32..10,
        reports in prop::collection::vec((1u64..500, 0u64..500, 0u64..500, 0u64..3_000), 1..60),
    ) {
        let policy = Policy { min_instances, min_calls: 1, ..Policy::default() };
        let mut h = Harness::with_scope_policy(policy);
        let mut now = T0;
        for (calls, failures, slow, gap) in reports {
            now += gap;
            h.tick(now, vec![delta("payments/db", "only-one", calls, failures.min(calls), slow.min(calls))]);
            prop_assert_eq!(h.state_of("payments/db"), BreakerState::Closed);
        }
    }

    #[test]
    fn tier_never_improves_before_recover_after(
        recover_after_ms in 0u64..60_000,
        steps in prop::collection::vec((0u8..3, 1u64..20_000), 1..60),
    ) {
        let mut h = Harness::with_scope_policy(Policy { open_duration_ms: 3_600_000, open_duration_max_ms: 3_600_000, ..Policy::default() });
        let rules = TierRules {
            recover_after_ms,
            rules: vec![TierRule {
                when: TierCondition::BreakerState { breaker: key("payments/db"), state: ConditionState::Open },
                tier: Tier::Essential,
            }],
            ..TierRules::new(scope("payments"))
        };
        h.ok(T0, Command::PutTierRules { rules });
        h.tick(T0, vec![delta("payments/db", "i-1", 1, 0, 0)]);
        let mut now = T0;
        let mut last_demand_ms = None;
        let mut tier = Tier::Full;
        for (action, gap) in steps {
            now += gap;
            match action {
                0 => { h.tick(now, vec![delta("payments/db", "i-1", 20, 20, 0), delta("payments/db", "i-2", 20, 20, 0)]); }
                1 => { h.ok(now, Command::ResetBreaker { key: key("payments/db"), reason: String::new() }); }
                _ => { h.tick(now, vec![]); }
            }
            let demanded = h.state_of("payments/db") == BreakerState::Open;
            let current = h.state.scope(&scope("payments")).unwrap().tier;
            if current < tier {
                let last = last_demand_ms.expect("improved from a demanded tier");
                prop_assert!(now >= last + recover_after_ms, "improved at {} but demand held at {}", now, last);
            }
            if demanded {
                prop_assert_eq!(current, Tier::Essential, "worsening is immediate");
                last_demand_ms = Some(now);
            }
            tier = current;
        }
    }
}
