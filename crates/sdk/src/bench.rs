//! A self-contained hot-path benchmark, for `switchyard bench sdk`.
//!
//! It measures our own paths and a bare atomic increment as the floor, with plain
//! `Instant` timing around tight loops (no criterion needed at run time). The comparison
//! with other circuit-breaker crates lives in the criterion bench
//! (`cargo bench -p switchyard-sdk`), which has them as dev-dependencies.

use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use switchyard_core::BreakerKey;

use crate::otel::{CallTracing, ModeSource};
use crate::{Admission, Breaker, Outcome};

/// Options of [`run_hot_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotPathBenchOptions {
    /// Calls per measured row (per thread in the multi-thread rows). Default 10 000 000.
    pub iterations: u64,
    /// Threads of the contended rows. Default 2.
    pub threads: usize,
}

impl Default for HotPathBenchOptions {
    fn default() -> Self {
        Self {
            iterations: 10_000_000,
            threads: 2,
        }
    }
}

/// One measured row.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// What was measured.
    pub name: String,
    /// Threads running it at once.
    pub threads: usize,
    /// Calls per thread.
    pub iterations: u64,
    /// Mean wall time of one call on one thread, ns.
    pub ns_per_call: f64,
}

fn row(name: &str, threads: usize, iterations: u64, elapsed: Duration) -> BenchRow {
    BenchRow {
        name: name.to_owned(),
        threads,
        iterations,
        ns_per_call: elapsed.as_nanos() as f64 / iterations.max(1) as f64,
    }
}

/// Runs `body` `iterations` times on each of `threads` threads started together; returns
/// the slowest thread's elapsed time.
fn on_threads<F>(threads: usize, iterations: u64, body: F) -> Duration
where
    F: Fn() + Sync,
{
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..iterations / 10 {
                        body();
                    }
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iterations {
                        body();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Duration::ZERO))
            .max()
            .unwrap_or_default()
    })
}

fn allow_record(breaker: &Breaker) {
    match black_box(breaker).allow() {
        Ok(permit) => breaker.record(
            permit,
            Outcome::Success,
            black_box(Duration::from_micros(250)),
        ),
        Err(rejected) => {
            black_box(rejected);
        }
    }
}

/// Measures the SDK hot path; see [`BenchRow`] for the units.
pub fn run_hot_path(options: HotPathBenchOptions) -> Vec<BenchRow> {
    let n = options.iterations.max(1);
    let threads = options.threads.max(1);
    let key = |k: &str| BreakerKey::parse(k).unwrap_or_else(|e| panic!("bench key: {e}"));
    let mut rows = Vec::new();

    let counter = AtomicU64::new(0);
    let add = || {
        black_box(&counter).fetch_add(1, Ordering::Relaxed);
    };
    rows.push(row(
        "bare AtomicU64::fetch_add",
        1,
        n,
        on_threads(1, n, add),
    ));
    rows.push(row(
        "bare AtomicU64::fetch_add, one shared counter",
        threads,
        n,
        on_threads(threads, n, add),
    ));

    let breaker = Breaker::detached(key("bench/closed"));
    rows.push(row(
        "allow + record (closed)",
        1,
        n,
        on_threads(1, n, || allow_record(&breaker)),
    ));
    rows.push(row(
        "allow + record (closed), one shared breaker",
        threads,
        n,
        on_threads(threads, n, || allow_record(&breaker)),
    ));

    let open = Breaker::detached(key("bench/open"));
    open.shared.publish(Admission::RejectClusterOpen, 1);
    rows.push(row(
        "allow (open: rejected)",
        1,
        n,
        on_threads(1, n, || allow_record(&open)),
    ));

    let wrapped = Breaker::detached(key("bench/wrapped"));
    let waker = Waker::noop();
    let call_once = || {
        let mut cx = Context::from_waker(waker);
        let fut = pin!(wrapped.call(|| async { Ok::<u64, ()>(black_box(7)) }));
        match fut.poll(&mut cx) {
            Poll::Ready(r) => {
                let _ = black_box(r);
            }
            Poll::Pending => unreachable!("the guarded future is always ready"),
        }
    };
    rows.push(row(
        "wrapped async call (allow, TSC latency, record)",
        1,
        n,
        on_threads(1, n, call_once),
    ));
    let traced = Breaker::detached(key("bench/traced")).with_tracing(Some(std::sync::Arc::new(
        CallTracing::new(
            opentelemetry::global::tracer(crate::otel::TRACER_NAME),
            ModeSource::Fixed(crate::Mode::Cluster),
        ),
    )));
    let traced_once = || {
        let mut cx = Context::from_waker(waker);
        let fut = pin!(traced.call(|| async { Ok::<u64, ()>(black_box(7)) }));
        let _ = black_box(fut.poll(&mut cx));
    };
    rows.push(row(
        "wrapped async call, tracing on (global tracer provider)",
        1,
        n,
        on_threads(1, n, traced_once),
    ));
    let bare_future = || {
        let mut cx = Context::from_waker(waker);
        let fut = pin!(async { Ok::<u64, ()>(black_box(7)) });
        let _ = black_box(fut.poll(&mut cx));
    };
    rows.push(row(
        "bare async call (no guard)",
        1,
        n,
        on_threads(1, n, bare_future),
    ));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_produces_every_row() {
        let rows = run_hot_path(HotPathBenchOptions {
            iterations: 1_000,
            threads: 2,
        });
        assert_eq!(rows.len(), 8);
        assert!(
            rows.iter()
                .all(|r| r.ns_per_call.is_finite() && r.iterations == 1_000)
        );
    }
}
