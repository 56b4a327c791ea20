//! Hot-path cost per guarded call: Switchyard vs `failsafe` vs `recloser`, plus a bare
//! atomic increment as the floor, single-threaded and with threads sharing one breaker.
//!
//! Run: `cargo bench -p switchyard-sdk --bench hot_path -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use switchyard_sdk::{Breaker, Outcome};

const THREADS: usize = 2;

fn trivial_call() -> Result<u64, ()> {
    Ok(black_box(7))
}

fn breaker() -> Breaker {
    Breaker::detached("bench/dependency".parse().expect("key"))
}

fn switchyard_once(b: &Breaker) {
    if let Ok(permit) = b.allow() {
        let r = trivial_call();
        let outcome = if r.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        b.record(permit, outcome, black_box(Duration::from_micros(250)));
        let _ = black_box(r);
    }
}

/// Runs `op` `iters` times on each of `THREADS` threads at once; the slowest thread's time.
fn contended<F: Fn() + Sync>(iters: u64, op: F) -> Duration {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_path_1_thread");
    let counter = AtomicU64::new(0);
    g.bench_function("atomic_fetch_add_baseline", |b| {
        b.iter(|| black_box(&counter).fetch_add(1, Ordering::Relaxed))
    });
    let sy = breaker();
    g.bench_function("switchyard_allow_record", |b| {
        b.iter(|| switchyard_once(&sy))
    });
    let fs = failsafe::Config::new().build();
    g.bench_function("failsafe_call", |b| {
        b.iter(|| black_box(fs.call(trivial_call)))
    });
    let rc = recloser::Recloser::default();
    g.bench_function("recloser_call", |b| {
        b.iter(|| black_box(rc.call(trivial_call)))
    });

    let waker = Waker::noop();
    g.bench_function("switchyard_wrapped_async_call", |b| {
        b.iter(|| {
            let mut cx = Context::from_waker(waker);
            let fut = pin!(sy.call(|| async { trivial_call() }));
            match fut.poll(&mut cx) {
                Poll::Ready(r) => black_box(r.is_ok()),
                Poll::Pending => unreachable!("always ready"),
            }
        })
    });
    g.bench_function("bare_async_call_baseline", |b| {
        b.iter(|| {
            let mut cx = Context::from_waker(waker);
            let fut = pin!(async { trivial_call() });
            match fut.poll(&mut cx) {
                Poll::Ready(r) => black_box(r.is_ok()),
                Poll::Pending => unreachable!("always ready"),
            }
        })
    });
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_path_2_threads_one_breaker");
    let counter = AtomicU64::new(0);
    g.bench_function("atomic_fetch_add_shared_counter", |b| {
        b.iter_custom(|iters| {
            contended(iters, || {
                black_box(&counter).fetch_add(1, Ordering::Relaxed);
            })
        })
    });
    let sy = breaker();
    g.bench_function("switchyard_allow_record", |b| {
        b.iter_custom(|iters| contended(iters, || switchyard_once(&sy)))
    });
    let fs = failsafe::Config::new().build();
    g.bench_function("failsafe_call", |b| {
        b.iter_custom(|iters| {
            contended(iters, || {
                let _ = black_box(fs.call(trivial_call));
            })
        })
    });
    let rc = recloser::Recloser::default();
    g.bench_function("recloser_call", |b| {
        b.iter_custom(|iters| {
            contended(iters, || {
                let _ = black_box(rc.call(trivial_call));
            })
        })
    });
    g.finish();
}

criterion_group!(benches, single_thread, two_threads);
criterion_main!(benches);
