//! Applies one `Tick` of 10 000 per-instance deltas (500 breakers × 20 instances, each delta
//! with a few latency buckets) to a warmed-up state: the state machine's ingest rate. The
//! `_with_retries` variant carries fleet retry figures in every delta (first attempts and
//! retries), so the retry figures and their push rule run for every breaker on every tick.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_core::{
    Actor, ApplyContext, BreakerKey, Command, CoordinatorState, Delta, Envelope, InstanceId,
    LatencySketch,
};

const BREAKERS: usize = 500;
const INSTANCES: usize = 20;
const TICK_MS: u64 = 100;
const T0: u64 = 1_700_000_000_000;

fn tick(with_retries: bool) -> Envelope {
    let mut deltas = Vec::with_capacity(BREAKERS * INSTANCES);
    for b in 0..BREAKERS {
        let key = BreakerKey::parse(&format!("svc-{}/dep-{b}", b % 25)).expect("valid key");
        for i in 0..INSTANCES {
            let mut latency = LatencySketch::default();
            latency.record_n(2_000 + (i as u64) * 10, 30);
            latency.record_n(15_000, 15);
            latency.record_n(250_000, 5);
            deltas.push(Delta {
                key: key.clone(),
                instance: InstanceId::parse(&format!("pod-{i}.svc-{}", b % 25))
                    .expect("valid instance"),
                calls: 50,
                failures: (i % 3) as u64,
                slow: (i % 2) as u64,
                rejected: 0,
                latency,
                first_attempts: if with_retries { 45 } else { 0 },
                retries: if with_retries { (i % 4) as u32 } else { 0 },
            });
        }
    }
    Envelope {
        actor: Actor::Node(1),
        command: Command::Tick {
            deltas: deltas.into(),
        },
        trace: None,
    }
}

fn bench_ticks(c: &mut Criterion, name: &str, with_retries: bool) {
    let envelope = tick(with_retries);
    let mut state = CoordinatorState::default();
    let mut index = 0;
    let mut now = T0;
    // warm-up: every breaker and instance exists, windows and SLA hours are populated
    for _ in 0..20 {
        index += 1;
        now += TICK_MS;
        state
            .apply(
                ApplyContext {
                    index,
                    stamped_ms: now,
                },
                &envelope,
            )
            .expect("tick applies");
    }
    let mut group = c.benchmark_group("apply_tick");
    group.throughput(Throughput::Elements((BREAKERS * INSTANCES) as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            index += 1;
            now += TICK_MS;
            let applied = state.apply(
                ApplyContext {
                    index,
                    stamped_ms: now,
                },
                black_box(&envelope),
            );
            black_box(applied).expect("tick applies");
        })
    });
    group.finish();
}

fn apply_tick(c: &mut Criterion) {
    bench_ticks(c, "500x20_deltas", false);
    bench_ticks(c, "500x20_deltas_with_retries", true);
}

criterion_group!(benches, apply_tick);
criterion_main!(benches);
