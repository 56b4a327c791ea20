//! How late the runtimes of `bench ingest` run what is due, over the measured seconds: the
//! generator's own (a probe task in this process) and every node's
//! (`switchyard_runtime_lag_seconds`).
//!
//! Why: the report latency the bench measures includes the generator's wait for a core. When
//! the generator and the nodes share the machine, a latency tail with prompt nodes and a late
//! generator is the harness's, not the cluster's; these figures say which.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::bench::accounting;

/// How long the generator's probe sleeps between two readings (the node's probe period).
const PROBE: Duration = Duration::from_millis(10);

/// How often the nodes' gauges are read.
const NODE_READ_EVERY: Duration = Duration::from_secs(1);

/// The generator's lag over the measured seconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GeneratorLag {
    /// Mean lateness of a due wake-up, ms.
    pub mean_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Wake-ups measured.
    pub samples: u64,
}

impl GeneratorLag {
    /// Summarizes lateness samples (µs).
    pub fn of(mut late_us: Vec<u64>) -> Self {
        if late_us.is_empty() {
            return Self::default();
        }
        late_us.sort_unstable();
        let n = late_us.len();
        let p99 = late_us[(n * 99 / 100).min(n - 1)];
        Self {
            mean_ms: late_us.iter().sum::<u64>() as f64 / n as f64 / 1000.0,
            p99_ms: p99 as f64 / 1000.0,
            samples: n as u64,
        }
    }
}

/// Probes this process's runtime from `from` to `until`: sleeps [`PROBE`] again and again and
/// records how much later than asked each wake-up came.
pub fn probe_generator(from: Instant, until: Instant) -> JoinHandle<GeneratorLag> {
    tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let mut late_us = Vec::new();
        while Instant::now() < until {
            let asked = Instant::now();
            tokio::time::sleep(PROBE).await;
            let late = asked.elapsed().saturating_sub(PROBE);
            late_us.push(late.as_micros() as u64);
        }
        GeneratorLag::of(late_us)
    })
}

/// Reads every node's smoothed runtime lag once a second from `from` to `until`; returns each
/// node's mean, ms, by position (0 for a node never read).
pub fn read_nodes(http_addrs: Vec<String>, from: Instant, until: Instant) -> JoinHandle<Vec<f64>> {
    tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let mut sums = vec![(0.0, 0u32); http_addrs.len()];
        let mut next = from;
        while next < until {
            for (addr, (sum, n)) in http_addrs.iter().zip(&mut sums) {
                if let Ok(lag_s) = accounting::runtime_lag_seconds(addr).await {
                    *sum += lag_s * 1000.0;
                    *n += 1;
                }
            }
            next += NODE_READ_EVERY;
            tokio::time::sleep_until(next.into()).await;
        }
        sums.into_iter()
            .map(|(sum, n)| if n == 0 { 0.0 } else { sum / f64::from(n) })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_mean_and_the_99th_percentile_in_ms() {
        let mut late: Vec<u64> = vec![1_000; 99];
        late.push(101_000);
        let lag = GeneratorLag::of(late);
        assert_eq!(lag.samples, 100);
        assert!((lag.mean_ms - 2.0).abs() < 1e-9, "{}", lag.mean_ms);
        assert!((lag.p99_ms - 101.0).abs() < 1e-9, "{}", lag.p99_ms);
        assert_eq!(GeneratorLag::of(Vec::new()).samples, 0);
    }

    #[tokio::test]
    async fn the_probe_measures_a_runtime_kept_busy() {
        // A current-thread runtime whose one thread is held 30 ms at a time: every wake-up of
        // the probe is late by up to that.
        let now = Instant::now();
        let probe = probe_generator(now, now + Duration::from_millis(300));
        let busy = tokio::spawn(async move {
            while now.elapsed() < Duration::from_millis(300) {
                std::thread::sleep(Duration::from_millis(30));
                tokio::task::yield_now().await;
            }
        });
        busy.await.unwrap();
        let lag = probe.await.unwrap();
        assert!(lag.samples > 0);
        assert!(lag.mean_ms >= 5.0, "{lag:?}");
    }
}
