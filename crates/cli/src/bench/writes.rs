//! `switchyard bench writes`: admin writes/s and commit latency at several client counts.
//!
//! Each client is a closed loop of `SetOverride` calls to the leader over its own HTTP/2
//! connection; a call returns only after the entry is committed on a quorum and applied, with
//! the log flushed to disk on every node before it acknowledges. A fresh cluster is used for
//! each client count so one run's log does not slow the next.

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use switchyard_proto::admin::admin_client::AdminClient;
use switchyard_proto::admin::{OverrideMode, SetOverrideRequest};

use super::cluster::{BenchCluster, connect};
use super::stats::{Percentiles, percentiles};
use super::{CommonArgs, progress};
use crate::output::Table;

/// `switchyard bench writes`
#[derive(Debug, Clone, Args)]
pub struct WritesArgs {
    /// Concurrent clients, comma-separated.
    #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
    pub clients: Vec<u32>,
    /// Measured seconds per client count.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// One row of the result.
#[derive(Debug, Clone, Serialize)]
pub struct WritesRow {
    /// Concurrent clients.
    pub clients: u32,
    /// Committed writes per second.
    pub writes_per_s: f64,
    /// Commit latency.
    pub latency: Percentiles,
    /// Calls that failed.
    pub errors: u64,
}

/// Runs the harness.
pub async fn run(args: WritesArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.clients.is_empty(),
        "--clients: give at least one client count"
    );
    anyhow::ensure!(
        args.clients.iter().all(|c| (1..=1024).contains(c)),
        "--clients: each count must be between 1 and 1024"
    );
    anyhow::ensure!(args.duration_s >= 1, "--duration-s: must be at least 1");
    let mut rows = Vec::new();
    for &clients in &args.clients {
        progress(format!(
            "starting a {}-node cluster for {clients} client(s)",
            args.common.nodes
        ));
        let cluster = BenchCluster::start(args.common.nodes).await?;
        let (_, leader) = cluster.wait_leader(Duration::from_secs(30)).await?;
        progress(format!(
            "{clients} client(s): {}s warm-up, {}s measured against the leader at {leader}",
            args.warmup_s, args.duration_s
        ));
        let row = measure(&leader, clients, args.warmup_s, args.duration_s).await?;
        progress(format!(
            "{clients} client(s): {:.0} writes/s, p50 {:.2} ms, p99 {:.2} ms",
            row.writes_per_s, row.latency.p50_ms, row.latency.p99_ms
        ));
        rows.push(row);
        drop(cluster);
    }
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let mut table = Table::new(&[
            "CLIENTS", "WRITES/S", "P50 MS", "P99 MS", "MAX MS", "ERRORS",
        ]);
        for r in &rows {
            table.row(vec![
                r.clients.to_string(),
                format!("{:.0}", r.writes_per_s),
                format!("{:.2}", r.latency.p50_ms),
                format!("{:.2}", r.latency.p99_ms),
                format!("{:.2}", r.latency.max_ms),
                r.errors.to_string(),
            ]);
        }
        print!("{}", table.render());
    }
    Ok(())
}

async fn measure(
    leader: &str,
    clients: u32,
    warmup_s: u64,
    duration_s: u64,
) -> anyhow::Result<WritesRow> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(warmup_s);
    let end = measure_from + Duration::from_secs(duration_s);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let channel = connect(leader).await?;
        tasks.push(tokio::spawn(async move {
            let mut admin = AdminClient::new(channel);
            let mut samples_us: Vec<u64> = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let request = SetOverrideRequest {
                    // A bounded key space: at most 64 breakers per client.
                    key: format!("bench/c{client}-{}", n % 64),
                    mode: OverrideMode::ForcedClosed as i32,
                    reason: "bench".into(),
                    for_ms: None,
                };
                n += 1;
                let sent = Instant::now();
                let ok = admin.set_override(request).await.is_ok();
                let done = Instant::now();
                if sent >= measure_from && done <= end {
                    if ok {
                        samples_us.push((done - sent).as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
            }
            (samples_us, errors)
        }));
    }
    let mut all: Vec<u64> = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (samples, e) = task.await?;
        all.extend(samples);
        errors += e;
    }
    let writes = all.len() as f64;
    Ok(WritesRow {
        clients,
        writes_per_s: writes / duration_s as f64,
        latency: percentiles(&mut all),
        errors,
    })
}
