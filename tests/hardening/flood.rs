//! Isolation: one instance flooding Report (over its rate limit, from several connections)
//! must not raise another instance's Report latency by more than 2x.
//!
//! The well-behaved client runs on its own thread and runtime, so what is measured is the
//! node's answer time, not the test's own flood tasks competing for its executor. A small
//! absolute floor absorbs scheduler noise on a 2-core machine, where the flood's client side
//! and the node share the CPUs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchyard_proto::client::{self as pb, client_client::ClientClient};

use crate::support::{Cluster, channel};

const SAMPLES: usize = 150;
const GOOD_INTERVAL: Duration = Duration::from_millis(20);
const FLOOD_TASKS: usize = 4;
const FLOOR: Duration = Duration::from_millis(2);

fn report(instance: &str, deltas: usize) -> pb::ReportRequest {
    pb::ReportRequest {
        instance: instance.into(),
        deltas: (0..deltas)
            .map(|i| pb::BreakerDelta {
                key: format!("flood/k{i}"),
                calls: 10,
                failures: 1,
                ..Default::default()
            })
            .collect(),
    }
}

/// Report latencies of a well-behaved instance (50 reports/s, under the default limit of
/// 100/s), measured on a dedicated thread.
fn measure(addr: String) -> Vec<Duration> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut client = ClientClient::new(channel(&addr).await.unwrap());
            for _ in 0..10 {
                client.report(report("good-1", 3)).await.unwrap();
            }
            let mut samples = Vec::with_capacity(SAMPLES);
            for _ in 0..SAMPLES {
                let start = Instant::now();
                client
                    .report(report("good-1", 3))
                    .await
                    .expect("the well-behaved client is never refused");
                samples.push(start.elapsed());
                tokio::time::sleep(GOOD_INTERVAL).await;
            }
            samples
        })
    })
    .join()
    .unwrap()
}

fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_does_not_slow_another_clients_reports() {
    // Goal: p50 Report latency of a well-behaved client under a flood <= 2x its baseline
    // (+ 2 ms floor).
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(Duration::from_secs(20)).await;
    let addr = cluster.nodes[&1].grpc.clone();

    // phase: baseline, alone
    let base = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || measure(addr))
            .await
            .unwrap()
    };

    // phase: the same, while one instance floods from several connections
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut flooders = Vec::new();
    let flood_start = Instant::now();
    for _ in 0..FLOOD_TASKS {
        let mut client = ClientClient::new(channel(&addr).await.unwrap());
        let (stop, accepted, refused) = (stop.clone(), accepted.clone(), refused.clone());
        flooders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.report(report("flooder", 50)).await {
                    Ok(_) => accepted.fetch_add(1, Ordering::Relaxed),
                    Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let flooded = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || measure(addr))
            .await
            .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.await.unwrap();
    }
    let flood_secs = flood_start.elapsed().as_secs_f64();

    // phase: compare
    let (accepted, refused) = (
        accepted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    let (b50, b99) = (quantile(&base, 0.5), quantile(&base, 0.99));
    let (f50, f99) = (quantile(&flooded, 0.5), quantile(&flooded, 0.99));
    println!(
        "report latency alone: p50 {b50:?} p99 {b99:?}; under flood: p50 {f50:?} p99 {f99:?}; \
         flooder: {accepted} accepted, {refused} refused in {flood_secs:.1} s"
    );
    assert!(refused > 0, "the flooder was never rate-limited");
    // The limit counts per wall-clock second: T seconds touch at most floor(T) + 2 windows.
    assert!(
        accepted as f64 <= 100.0 * (flood_secs.floor() + 2.0),
        "the flooder got {accepted} reports accepted in {flood_secs:.1} s (limit 100/s)"
    );
    assert!(
        f50 <= b50 * 2 + FLOOR,
        "p50 under flood {f50:?} > 2 x baseline {b50:?} + {FLOOR:?}"
    );
}
