//! The cost of one state-machine snapshot of a busy cluster: 4 096 breakers under operator
//! overrides and a full audit trail (`audit_max_events`, 100 000 events by default).
//!
//! - `copy`: what the snapshot builder does while it holds the state's read lock (so apply
//!   waits for it): take a consistent copy of the state.
//! - `encode`: turning that copy into the record written to disk (no lock held).
//!
//! `cargo bench -p switchyard-store --bench snapshot`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_core::{
    Actor, ApplyContext, BreakerKey, Command, CoordinatorState, Envelope, OverrideMode,
};
use switchyard_store::codec;

const T0: u64 = 1_700_000_000_000;
const BREAKERS: u64 = 4_096;
const WRITES: u64 = 100_000;

fn busy_state() -> CoordinatorState {
    let mut state = CoordinatorState::default();
    for n in 0..WRITES {
        let b = n % BREAKERS;
        let envelope = Envelope {
            actor: Actor::Operator(format!("operator-{}", b % 7)),
            command: Command::SetOverride {
                key: BreakerKey::parse(&format!("bench/c{}-{}", b / 64, b % 64)).expect("key"),
                mode: if n % 2 == 0 {
                    OverrideMode::ForcedClosed
                } else {
                    OverrideMode::ForcedOpen
                },
                reason: "bench".into(),
                expires_at_ms: None,
            },
            trace: None,
        };
        let ctx = ApplyContext {
            index: n + 1,
            stamped_ms: T0 + n / 8,
        };
        state.apply(ctx, &envelope).expect("override applies");
    }
    state
}

fn snapshot(c: &mut Criterion) {
    let state = busy_state();
    eprintln!(
        "state: {} audit events, encoded {} bytes",
        state.audit().len(),
        codec::encode(&state).len()
    );
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(20);
    group.bench_function("copy", |b| b.iter(|| black_box(state.clone())));
    group.bench_function("copy_audit", |b| {
        b.iter(|| black_box(state.audit().clone()))
    });
    group.bench_function("encode", |b| b.iter(|| black_box(codec::encode(&state))));
    group.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
