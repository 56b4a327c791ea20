//! Goal: prove the hot path allocates nothing: `allow()` + `record()` (admitted and
//! rejected), the wrapped async call, and retry budget deposits and withdrawals, counted by a
//! `#[global_allocator]`.
//!
//! One test function only: the counting allocator is process-wide, so a concurrent test
//! (or a running agent) would pollute the count. The client runs on a current-thread
//! runtime that is not driven while we measure, so its agent is parked.

use std::alloc::System;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchyard_sdk::{Client, Outcome, Policy, RejectReason, WindowSpec};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: u32 = 10_000;

#[test]
fn hot_path_allocates_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = Client::builder()
        .report_interval(Duration::from_millis(10))
        .build_on(rt.handle())
        .expect("local-only client");
    let closed = client.breaker("payments/ml-fraud").expect("breaker");
    let policy = Policy {
        window: WindowSpec::count(10),
        min_calls: 5,
        ..Policy::default()
    };
    let tripping = client
        .breaker_with_policy("payments/db", policy)
        .expect("breaker");

    // phase: warm up (thread stripe number, latency tables, TSC calibration)
    for _ in 0..100 {
        let p = closed.allow().expect("closed");
        closed.record(p, Outcome::Success, Duration::from_micros(300));
    }
    let waker = Waker::noop();
    let call_once = || {
        let mut cx = Context::from_waker(waker);
        let fut = pin!(closed.call(|| async { Ok::<u32, ()>(1) }));
        assert!(matches!(fut.poll(&mut cx), Poll::Ready(Ok(1))));
    };
    call_once();

    // phase: admitted calls
    let region = Region::new(GLOBAL);
    for i in 0..CALLS {
        let p = closed.allow().expect("closed");
        let outcome = if i % 7 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        closed.record(p, outcome, Duration::from_micros(u64::from(i)));
    }
    let stats = region.change();
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "allow + record allocated: {stats:?}"
    );

    // phase: the wrapped async call path
    let region = Region::new(GLOBAL);
    for _ in 0..CALLS {
        call_once();
    }
    let stats = region.change();
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "wrapped call allocated: {stats:?}"
    );

    // phase: retry budget deposits and withdrawals through a breaker (off the hot path, but
    // kept as cheap: no lock, no allocation)
    let budget = client.retry_budget(switchyard_sdk::RetryBudgetOptions::default());
    budget.deposit_for(&closed);
    let region = Region::new(GLOBAL);
    for _ in 0..CALLS {
        budget.deposit_for(&closed);
        let _ = budget.try_withdraw_for(&closed);
    }
    let stats = region.change();
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "retry budget allocated: {stats:?}"
    );

    // phase: trip the local breaker (the agent runs while the runtime is driven)
    for _ in 0..10 {
        let p = tripping.allow().expect("closed");
        tripping.record(p, Outcome::Failure, Duration::from_millis(1));
    }
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    assert_eq!(
        tripping.allow().expect_err("local breaker open").reason,
        RejectReason::LocalOpen
    );

    // phase: rejected calls
    let region = Region::new(GLOBAL);
    for _ in 0..CALLS {
        let rejected = tripping.allow().expect_err("open");
        assert_eq!(rejected.reason, RejectReason::LocalOpen);
    }
    let stats = region.change();
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "rejection allocated: {stats:?}"
    );
    drop(client);
}
