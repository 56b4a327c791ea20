//! A fixed workload of guarded calls, for counting instructions per call with callgrind
//! (noise-free, unlike wall time on a shared machine).
//!
//! ```text
//! cargo build --release -p switchyard-sdk --example guarded_calls
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     --toggle-collect='guarded_calls::run*' target/release/examples/guarded_calls call 1000000
//! ```
//!
//! Instructions collected inside `run` ÷ calls (1 000 000 plus 100 warm-up calls) is the cost
//! per call; start-up (clock calibration, the client) is left out. It also prints the wall
//! time per call. Workloads:
//!
//! - `raw`: `allow()` + `record()` on a closed breaker;
//! - `call`: `Breaker::call` (the wrapped call: allow, TSC latency, classify, record);
//! - `guard`: `Guard::call` with a timeout-free guard;
//! - `layer`: the tower layer's `call` and response future;
//! - `rejected`: `Breaker::call` on an open breaker (the call is not made).
//!
//! A suffix turns OpenTelemetry tracing on (`Client::builder().tracing(true)`): `+otel-noop`
//! with no tracer provider installed (the API's no-op), `+otel-sdk` with the SDK's provider
//! (spans sampled and recorded, no exporter), e.g. `call+otel-sdk`.

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use switchyard_sdk::{
    Breaker, CallError, Client, Guard, Outcome, Policy, RejectReason, SwitchyardLayer, WindowSpec,
};
use tower::{Layer, Service};

/// Polls a future that is ready at once.
fn ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("every workload completes on its first poll"),
    }
}

#[inline(never)]
fn run(workload: &str, calls: u64, closed: &Breaker, open: &Breaker) {
    match workload {
        "raw" => {
            for _ in 0..calls {
                if let Ok(permit) = black_box(closed).allow() {
                    closed.record(
                        permit,
                        Outcome::Success,
                        black_box(Duration::from_micros(250)),
                    );
                }
            }
        }
        "call" => {
            for _ in 0..calls {
                let r = ready(closed.call(|| async { Ok::<u64, ()>(black_box(7)) }));
                black_box(r.is_ok());
            }
        }
        "guard" => {
            let guard = Guard::new(closed.clone());
            for _ in 0..calls {
                let r = ready(guard.call(|| async { Ok::<u64, ()>(black_box(7)) }));
                black_box(r.is_ok());
            }
        }
        "layer" => {
            let mut svc = SwitchyardLayer::new(closed.clone())
                .layer(tower::service_fn(|x: u64| async move { Ok::<u64, ()>(x) }));
            for i in 0..calls {
                let r = ready(svc.call(black_box(i)));
                black_box(r.is_ok());
            }
        }
        "rejected" => {
            for _ in 0..calls {
                let r = ready(open.call(|| async { Ok::<u64, ()>(black_box(7)) }));
                assert!(matches!(r, Err(CallError::Rejected(_))));
            }
        }
        other => panic!("unknown workload {other:?}: raw, call, guard, layer or rejected"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let arg = args.next().unwrap_or_else(|| "call".to_owned());
    let (workload, tracing) = match arg.split_once('+') {
        None => (arg.as_str(), false),
        Some((workload, "otel-noop")) => (workload, true),
        Some((workload, "otel-sdk")) => {
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            opentelemetry::global::set_tracer_provider(provider);
            (workload, true)
        }
        Some((_, other)) => panic!("unknown tracing {other:?}: otel-noop or otel-sdk"),
    };
    let calls: u64 = args
        .next()
        .map(|n| n.parse().expect("calls: a whole number"))
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = Client::builder()
        .report_interval(Duration::from_millis(10))
        .tracing(tracing)
        .build_on(rt.handle())
        .expect("local-only client");
    let closed = client.breaker("bench/closed").expect("breaker");
    let tripping = Policy {
        window: WindowSpec::count(10),
        min_calls: 5,
        open_duration_ms: 3_600_000,
        open_duration_max_ms: 3_600_000,
        ..Policy::default()
    };
    let open = client
        .breaker_with_policy("bench/open", tripping)
        .expect("breaker");
    for _ in 0..10 {
        let permit = open.allow().expect("closed at first");
        open.record(permit, Outcome::Failure, Duration::from_millis(1));
    }
    // The agent judges the local breaker while the runtime is driven.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    let reason = open.allow().expect_err("the local breaker is open").reason;
    assert_eq!(reason, RejectReason::LocalOpen);
    // Warm up (thread stripe, latency tables, TSC calibration), then the measured calls.
    run(workload, 100, &closed, &open);
    let started = std::time::Instant::now();
    run(workload, calls, &closed, &open);
    let ns = started.elapsed().as_nanos() as f64 / calls.max(1) as f64;
    println!("{arg}: {calls} calls, {ns:.1} ns per call");
}
