//! Goal: prove the hot path allocates nothing: `allow()` + `record()` (admitted and
//! rejected), the wrapped async call (`Breaker::call`, `Guard::call`, the tower layer;
//! admitted and rejected, with tracing off, the default), and retry budget deposits and
//! withdrawals, counted by a `#[global_allocator]`.
//!
//! One test function only: the counting allocator is process-wide, so a concurrent test
//! (or a running agent) would pollute the count. The client runs on a current-thread
//! runtime that is not driven while we measure, so its agent is parked.

use std::alloc::System;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchyard_sdk::{
    CallError, Client, Guard, Outcome, Policy, RejectReason, SwitchyardLayer, WindowSpec,
};
use tower::{Layer, Service};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: u32 = 10_000;

/// Runs `phase` (a loop of `CALLS` calls) and asserts that it allocated nothing. The counting
/// allocator is process-wide, and the test harness's own thread may allocate a few bytes of
/// bookkeeping at any time, so a phase gets three tries: an allocation made by the measured
/// calls shows in every try, never in none.
fn assert_allocates_nothing(what: &str, mut phase: impl FnMut()) {
    let mut last = None;
    for _ in 0..3 {
        let region = Region::new(GLOBAL);
        phase();
        let stats = region.change();
        if (stats.allocations, stats.reallocations) == (0, 0) {
            return;
        }
        last = Some(stats);
    }
    panic!("{what}: allocations in every try: {last:?}");
}

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
    assert_allocates_nothing("allow + record allocated", || {
        for i in 0..CALLS {
            let p = closed.allow().expect("closed");
            let outcome = if i % 7 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            closed.record(p, outcome, Duration::from_micros(u64::from(i)));
        }
    });

    // phase: the wrapped async call path
    assert_allocates_nothing("wrapped call allocated", || {
        for _ in 0..CALLS {
            call_once();
        }
    });

    // phase: a guard and the tower layer around the same wrapped call
    let guard = Guard::new(closed.clone());
    let mut svc = SwitchyardLayer::new(closed.clone())
        .layer(tower::service_fn(|x: u32| async move { Ok::<u32, ()>(x) }));
    let mut guard_and_layer_once = || {
        let mut cx = Context::from_waker(waker);
        let fut = pin!(guard.call(|| async { Ok::<u32, ()>(1) }));
        assert!(matches!(fut.poll(&mut cx), Poll::Ready(Ok(1))));
        let fut = pin!(svc.call(2));
        assert!(matches!(fut.poll(&mut cx), Poll::Ready(Ok(2))));
    };
    guard_and_layer_once();
    assert_allocates_nothing("guard or layer allocated", || {
        for _ in 0..CALLS {
            guard_and_layer_once();
        }
    });

    // phase: retry budget deposits and withdrawals through a breaker (off the hot path, but
    // kept as cheap: no lock, no allocation)
    let budget = client.retry_budget(switchyard_sdk::RetryBudgetOptions::default());
    budget.deposit_for(&closed);
    assert_allocates_nothing("retry budget allocated", || {
        for _ in 0..CALLS {
            budget.deposit_for(&closed);
            let _ = budget.try_withdraw_for(&closed);
        }
    });

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
    assert_allocates_nothing("rejection allocated", || {
        for _ in 0..CALLS {
            let rejected = tripping.allow().expect_err("open");
            assert_eq!(rejected.reason, RejectReason::LocalOpen);
        }
    });

    // phase: rejected wrapped calls (the call is not made)
    assert_allocates_nothing("rejected wrapped call allocated", || {
        for _ in 0..CALLS {
            let mut cx = Context::from_waker(waker);
            let fut = pin!(tripping.call(|| async { Ok::<u32, ()>(1) }));
            assert!(matches!(
                fut.poll(&mut cx),
                Poll::Ready(Err(CallError::Rejected(_)))
            ));
        }
    });
    drop(client);
}
