//! `switchyard bench failover`: SIGKILL the leader under write load and measure how long the
//! cluster accepts no writes.
//!
//! `writers` closed-loop clients write continuously with a short per-call deadline; a failed
//! or timed-out call moves that writer to the next node. Each trial kills the leader with
//! SIGKILL (no goodbye, no leadership transfer) and measures the longest gap between two
//! successful writes (by any writer) around the kill: that is the window in which the fleet's
//! operators could not change anything. The killed node is restarted from its data directory
//! before the next trial.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use tokio::sync::Mutex;

use super::cluster::BenchCluster;
use super::override_writers::{self, WriteLog};
use super::stats::median;
use super::{CommonArgs, progress};
use crate::output::Table;

/// `switchyard bench failover`
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// Trials (one leader kill each).
    #[arg(long, default_value_t = 10)]
    pub trials: u32,
    /// Concurrent writers.
    #[arg(long, default_value_t = 8)]
    pub writers: u32,
    /// Per-call deadline of a writer, ms.
    #[arg(long, default_value_t = 200)]
    pub timeout_ms: u64,
    /// Seconds of writing before the kill.
    #[arg(long, default_value_t = 2)]
    pub before_kill_s: u64,
    /// Seconds of writing after the kill.
    #[arg(long, default_value_t = 4)]
    pub after_kill_s: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// One trial.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The killed leader.
    pub killed: u64,
    /// The new leader.
    pub new_leader: u64,
    /// Longest gap between successful writes around the kill, ms.
    pub window_ms: f64,
}

/// Runs the harness.
pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=100).contains(&args.trials),
        "--trials: between 1 and 100"
    );
    anyhow::ensure!(
        (1..=256).contains(&args.writers),
        "--writers: between 1 and 256"
    );
    anyhow::ensure!(
        args.common.nodes >= 3,
        "--nodes: failover needs at least 3 nodes"
    );
    progress(format!("starting a {}-node cluster", args.common.nodes));
    let mut cluster = BenchCluster::start(args.common.nodes).await?;
    let mut trials = Vec::new();
    for trial in 1..=args.trials {
        let (leader, _) = cluster.wait_leader(Duration::from_secs(30)).await?;
        let result = one_trial(&mut cluster, leader, &args).await?;
        progress(format!(
            "trial {trial}/{}: killed leader {}, new leader {}, window {:.0} ms",
            args.trials, result.killed, result.new_leader, result.window_ms
        ));
        trials.push(result);
        cluster.start_node(leader)?;
        // Let the restarted node catch up before the next kill.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut windows: Vec<f64> = trials.iter().map(|t| t.window_ms).collect();
    let median_ms = median(&mut windows);
    let max_ms = windows.iter().copied().fold(0.0, f64::max);
    if args.common.json {
        let json =
            serde_json::json!({ "trials": trials, "median_ms": median_ms, "max_ms": max_ms });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        let mut table = Table::new(&["TRIAL", "KILLED", "NEW LEADER", "WINDOW MS"]);
        for (i, t) in trials.iter().enumerate() {
            table.row(vec![
                (i + 1).to_string(),
                t.killed.to_string(),
                t.new_leader.to_string(),
                format!("{:.0}", t.window_ms),
            ]);
        }
        print!("{}", table.render());
        println!(
            "median {median_ms:.0} ms, max {max_ms:.0} ms over {} trials",
            trials.len()
        );
    }
    Ok(())
}

async fn one_trial(
    cluster: &mut BenchCluster,
    leader: u64,
    args: &FailoverArgs,
) -> anyhow::Result<Trial> {
    let endpoints = cluster.endpoints();
    let log: Arc<Mutex<WriteLog>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let timeout = Duration::from_millis(args.timeout_ms);
    let tasks = override_writers::start(endpoints, args.writers, "failover", timeout, &stop, &log);
    tokio::time::sleep(Duration::from_secs(args.before_kill_s)).await;
    let killed_at = Instant::now();
    cluster.kill(leader);
    tokio::time::sleep(Duration::from_secs(args.after_kill_s)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let (new_leader, _) = cluster.wait_leader(Duration::from_secs(30)).await?;
    let times = log.lock().await.acked_at();
    // The window: from the last success before (or at) the kill to the first success after it,
    // or the longest gap after the kill if writes stalled again.
    let before = times
        .iter()
        .rev()
        .find(|t| **t <= killed_at)
        .copied()
        .unwrap_or(killed_at);
    let mut window = Duration::ZERO;
    let mut previous = before;
    for t in times.iter().filter(|t| **t > before) {
        window = window.max(*t - previous);
        previous = *t;
    }
    let end = killed_at + Duration::from_secs(args.after_kill_s);
    if previous < end && times.iter().all(|t| *t <= killed_at) {
        window = end - before;
    }
    Ok(Trial {
        killed: leader,
        new_leader,
        window_ms: window.as_secs_f64() * 1000.0,
    })
}
