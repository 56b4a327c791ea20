//! `switchyard bench stability`: does leadership stay put on a saturated machine?
//!
//! Starts `burners` busy-loop processes (one `sh` spinning each, as another tenant's work
//! would), then `writers` closed-loop clients write to a local cluster for `duration_s`. A
//! monitor asks every node for its Raft status every 100 ms. Reported: leader changes (a new
//! leader id or term seen by the monitor), the term's growth (every election bumps it, even
//! one that changes nothing), write latency percentiles, and the longest gap between two
//! acknowledged writes by any writer.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use switchyard_proto::admin::StatusRequest;
use switchyard_proto::admin::admin_client::AdminClient;
use tokio::sync::Mutex;

use super::cluster::{BenchCluster, connect};
use super::override_writers::{self, WriteLog};
use super::stats::{Percentiles, percentiles};
use super::{CommonArgs, progress};
use crate::output::Table;

/// `switchyard bench stability`
#[derive(Debug, Clone, Args)]
pub struct StabilityArgs {
    /// Busy-loop processes competing for the CPU.
    #[arg(long, default_value_t = 4)]
    pub burners: u32,
    /// Concurrent writers.
    #[arg(long, default_value_t = 16)]
    pub writers: u32,
    /// Seconds of writing.
    #[arg(long, default_value_t = 60)]
    pub duration_s: u64,
    /// Per-call deadline of a writer, ms.
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StabilityReport {
    /// Busy-loop processes.
    pub burners: u32,
    /// Writers.
    pub writers: u32,
    /// Seconds of writing.
    pub duration_s: u64,
    /// Times the monitor saw a different leader (id or term) than before.
    pub leader_changes: u64,
    /// How much the highest term grew over the run.
    pub term_growth: u64,
    /// Acknowledged writes.
    pub writes: usize,
    /// Failed or timed-out write calls.
    pub write_failures: u64,
    /// Latency of acknowledged writes.
    pub latency: Percentiles,
    /// Longest time without an acknowledged write, ms.
    pub longest_write_gap_ms: f64,
}

/// Busy-loop processes, killed on drop.
struct Burners(Vec<Child>);

impl Burners {
    fn start(n: u32) -> anyhow::Result<Self> {
        let mut children = Vec::new();
        for _ in 0..n {
            children.push(
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()?,
            );
        }
        Ok(Self(children))
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the harness.
pub async fn run(args: StabilityArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.burners <= 64, "--burners: at most 64");
    anyhow::ensure!(
        (1..=256).contains(&args.writers),
        "--writers: between 1 and 256"
    );
    anyhow::ensure!(
        (1..=3600).contains(&args.duration_s),
        "--duration-s: between 1 and 3600"
    );
    anyhow::ensure!(args.common.nodes >= 3, "--nodes: at least 3");
    progress(format!("starting a {}-node cluster", args.common.nodes));
    let cluster = BenchCluster::start(args.common.nodes).await?;
    progress(format!("starting {} busy-loop processes", args.burners));
    let burners = Burners::start(args.burners)?;
    let report = measure(&cluster, &args).await?;
    drop(burners);
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mut table = Table::new(&[
            "BURNERS",
            "WRITERS",
            "SECONDS",
            "LEADER CHANGES",
            "TERM GROWTH",
            "WRITES",
            "FAILED",
            "P50 MS",
            "P99 MS",
            "MAX MS",
            "LONGEST GAP MS",
        ]);
        table.row(vec![
            report.burners.to_string(),
            report.writers.to_string(),
            report.duration_s.to_string(),
            report.leader_changes.to_string(),
            report.term_growth.to_string(),
            report.writes.to_string(),
            report.write_failures.to_string(),
            format!("{:.1}", report.latency.p50_ms),
            format!("{:.1}", report.latency.p99_ms),
            format!("{:.1}", report.latency.max_ms),
            format!("{:.0}", report.longest_write_gap_ms),
        ]);
        print!("{}", table.render());
    }
    Ok(())
}

async fn measure(cluster: &BenchCluster, args: &StabilityArgs) -> anyhow::Result<StabilityReport> {
    let endpoints = Arc::new(cluster.endpoints());
    let log: Arc<Mutex<WriteLog>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let timeout = Duration::from_millis(args.timeout_ms);
    let tasks = override_writers::start(
        (*endpoints).clone(),
        args.writers,
        "stability",
        timeout,
        &stop,
        &log,
    );
    // The monitor: (leader, term) as the nodes report it.
    let mut seen: Option<(u64, u64)> = None;
    let mut leader_changes = 0u64;
    let mut first_term = None;
    let mut last_term = 0u64;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.duration_s);
    let mut next_progress = started + Duration::from_secs(10);
    let mut monitors: Vec<Option<AdminClient<_>>> = vec![None; endpoints.len()];
    while Instant::now() < end {
        for (i, addr) in endpoints.iter().enumerate() {
            if monitors[i].is_none() {
                monitors[i] = connect(addr).await.ok().map(AdminClient::new);
            }
            let Some(admin) = monitors[i].as_mut() else {
                continue;
            };
            let mut request = tonic::Request::new(StatusRequest { local: true });
            request.set_timeout(Duration::from_millis(500));
            let Ok(status) = admin.status(request).await.map(tonic::Response::into_inner) else {
                monitors[i] = None;
                continue;
            };
            first_term.get_or_insert(status.term);
            last_term = last_term.max(status.term);
            if let Some(leader) = status.leader_id {
                let now = (leader, status.term);
                match seen {
                    Some(previous) if previous.1 > now.1 => {}
                    Some(previous) if previous != now => {
                        leader_changes += 1;
                        progress(format!(
                            "leader changed: node {} term {} -> node {} term {}",
                            previous.0, previous.1, now.0, now.1
                        ));
                        seen = Some(now);
                    }
                    Some(_) => {}
                    None => seen = Some(now),
                }
            }
        }
        if Instant::now() >= next_progress {
            progress(format!(
                "{} s of {}: {} writes, {} leader changes",
                started.elapsed().as_secs(),
                args.duration_s,
                log.lock().await.acked.len(),
                leader_changes
            ));
            next_progress += Duration::from_secs(10);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let log = log.lock().await.clone();
    let mut gap = Duration::ZERO;
    let mut previous = started;
    for at in log.acked_at() {
        gap = gap.max(at.saturating_duration_since(previous));
        previous = at;
    }
    gap = gap.max(end.saturating_duration_since(previous));
    let mut latencies: Vec<u64> = log
        .acked
        .iter()
        .map(|(_, took)| took.as_micros() as u64)
        .collect();
    Ok(StabilityReport {
        burners: args.burners,
        writers: args.writers,
        duration_s: args.duration_s,
        leader_changes,
        term_growth: last_term.saturating_sub(first_term.unwrap_or(last_term)),
        writes: log.acked.len(),
        write_failures: log.failures,
        latency: percentiles(&mut latencies),
        longest_write_gap_ms: gap.as_secs_f64() * 1000.0,
    })
}
