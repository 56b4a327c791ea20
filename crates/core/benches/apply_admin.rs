//! Applies one admin command (`SetOverride` of a single key) to a state of 100 or 10 000
//! breakers whose SLA ledgers hold six hours of history: the cost of one operator write,
//! which must not grow with the fleet (every replica applies every command).
//!
//! A second group does the same with 100 scopes carrying tier rules, the case where the
//! per-command tier re-evaluation (one pass over the scopes with rules) is visible.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchyard_core::{
    Actor, ApplyContext, BreakerKey, Command, ConditionState, CoordinatorState, Delta, Envelope,
    InstanceId, LatencySketch, OverrideMode, Scope, Tier, TierCondition, TierRule, TierRules,
};

const T0: u64 = 1_700_000_000_000;
const SCOPES: usize = 100;
/// Warm-up: one tick with a delta per breaker every 10 minutes for 6 hours.
const WARM_TICKS: u64 = 36;
const WARM_TICK_GAP_MS: u64 = 600_000;

fn key(b: usize) -> BreakerKey {
    BreakerKey::parse(&format!("svc-{}/dep-{b}", b % SCOPES)).expect("valid key")
}

fn warm_tick(breakers: usize) -> Envelope {
    let deltas = (0..breakers)
        .map(|b| {
            let mut latency = LatencySketch::default();
            latency.record_n(2_000, 30);
            latency.record_n(15_000, 5);
            Delta {
                key: key(b),
                instance: InstanceId::parse(&format!("pod-0.svc-{}", b % SCOPES))
                    .expect("valid instance"),
                calls: 35,
                failures: 0,
                slow: 0,
                rejected: 0,
                latency,
                first_attempts: 0,
                retries: 0,
            }
        })
        .collect();
    Envelope {
        actor: Actor::Node(1),
        command: Command::Tick { deltas },
        trace: None,
    }
}

/// Tier rules for every scope: DEGRADED while its first breaker is OPEN, plus a failure-rate
/// and a latency rule, so each evaluation reads window data.
fn tier_rules(scope: usize) -> Envelope {
    let scope_id = Scope::parse(&format!("svc-{scope}")).expect("valid scope");
    let breaker = key(scope);
    let mut rules = TierRules::new(scope_id);
    rules.rules = vec![
        TierRule {
            when: TierCondition::BreakerState {
                breaker: breaker.clone(),
                state: ConditionState::Open,
            },
            tier: Tier::Essential,
        },
        TierRule {
            when: TierCondition::FailureRateAbove {
                breaker: breaker.clone(),
                failure_rate_above: 50,
            },
            tier: Tier::Degraded,
        },
        TierRule {
            when: TierCondition::P95LatencyAbove {
                breaker,
                p95_latency_ms_above: 1_000,
            },
            tier: Tier::ReadOnly,
        },
    ];
    Envelope {
        actor: Actor::Operator("bench".into()),
        command: Command::PutTierRules { rules },
        trace: None,
    }
}

struct Bench {
    state: CoordinatorState,
    index: u64,
    now_ms: u64,
}

impl Bench {
    fn apply(&mut self, envelope: &Envelope) {
        self.index += 1;
        let ctx = ApplyContext {
            index: self.index,
            stamped_ms: self.now_ms,
        };
        black_box(self.state.apply(ctx, black_box(envelope))).expect("command applies");
    }

    fn warmed(breakers: usize, with_tier_rules: bool) -> Self {
        let mut bench = Self {
            state: CoordinatorState::default(),
            index: 0,
            now_ms: T0,
        };
        if with_tier_rules {
            for s in 0..SCOPES {
                bench.apply(&tier_rules(s));
            }
        }
        let tick = warm_tick(breakers);
        for _ in 0..WARM_TICKS {
            bench.now_ms += WARM_TICK_GAP_MS;
            bench.apply(&tick);
        }
        bench
    }
}

/// Overrides of single keys spread over the fleet, alternating FORCED_OPEN / FORCED_CLOSED
/// so each command is a real transition.
fn overrides(breakers: usize) -> Vec<Envelope> {
    (0..64)
        .map(|i| Envelope {
            actor: Actor::Operator("bench".into()),
            command: Command::SetOverride {
                key: key((i * 7_919) % breakers),
                mode: if i % 2 == 0 {
                    OverrideMode::ForcedOpen
                } else {
                    OverrideMode::ForcedClosed
                },
                reason: "bench".into(),
                expires_at_ms: None,
            },
            trace: None,
        })
        .collect()
}

fn run_group(c: &mut Criterion, name: &str, with_tier_rules: bool) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    for breakers in [100usize, 10_000] {
        let mut bench = Bench::warmed(breakers, with_tier_rules);
        let commands = overrides(breakers);
        let mut i = 0;
        group.bench_function(BenchmarkId::new("set_override", breakers), |b| {
            b.iter(|| {
                bench.now_ms += 1;
                bench.apply(&commands[i % commands.len()]);
                i += 1;
            })
        });
    }
    group.finish();
}

fn apply_admin(c: &mut Criterion) {
    run_group(c, "apply_admin", false);
    run_group(c, "apply_admin_tier_rules", true);
}

criterion_group!(benches, apply_admin);
criterion_main!(benches);
