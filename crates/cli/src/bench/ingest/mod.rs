//! `switchyard bench ingest`: a simulated fleet reporting into a local cluster.
//!
//! `instances` SDK instances each make calls on `breakers` breakers and report them as the SDK
//! does ([`pacer`]): one Report with one delta per breaker per report interval, spread over all
//! nodes (followers forward to the leader, as with real SDKs). The interval in force starts at
//! `interval_ms`; after each accepted report it is the cluster's advice
//! (`ReportResponse::report_interval_ms`, never below `interval_ms`), and a report refused with
//! `RESOURCE_EXHAUSTED` doubles it (at most [`pacer::WIDEN_MAX`] = 64 times `interval_ms`).
//! Calls accrue every `interval_ms` whatever the interval in force, and evidence not accepted is
//! kept and sent with the next report, so an overloaded cluster shows as coarser reports (a wider effective
//! interval, fewer reports per instance per second), not as lost calls. Reports are paced: a
//! late report is sent as soon as possible, its latency counts from when it was sent, and the
//! next is due one interval later (no burst to catch up).
//!
//! Accounting ([`super::accounting`]), end to end in calls: the calls the fleet made over the
//! whole run (warm-up included, up to the end) against the calls the state machine of the
//! leader after the run applied (after a drain), with the calls the instances still held unsent
//! at the end shown apart, so `applied = offered - unsent` unless acknowledged evidence was lost
//! on the way (the nodes' loss counters say where); failed reports by gRPC code; the report
//! interval in force at the end (mean and max over the instances) and the reports sent per
//! instance per second; the CPU of every node; the encoded tick entry bytes per delta; the
//! leader's state size (the encoded state machine in its latest snapshot, and the log index
//! that snapshot covers, see [`super::accounting::StateSize`]: `-` before the first one); and
//! the leader's resident memory (VmRSS) right after the cluster elected its first leader and
//! after the drain, whose growth per 1 000 instances is what the fleet costs the leader in
//! memory (state, buffers, and what the allocator keeps). The leader is the one at the start
//! for CPU, the one after the run for the rest; a leader change under load is printed.
//!
//! The nodes snapshot every `--snapshot-every-entries` log entries (default
//! [`SNAPSHOT_EVERY_ENTRIES`] = 20, written to their config file; a node's own default is
//! 5 000, which a 12 s point never reaches), each snapshot after the first once the log since
//! the last one is also at least as large as it. A leader that keeps up writes about 10 tick
//! entries a second (about 120 in a default point: several snapshots, the latest near the
//! end); an overloaded one writes fewer, larger ticks (26 to 35 in a default point at 20 000
//! instances on 2 cores), so 20 is what still leaves every point of the default curve with a
//! snapshot. The state size is therefore real, given with the log index it covers against the
//! leader's applied index, and its cost (copying, encoding and writing the state on every
//! node, a few ms of CPU for a few MB of state) is inside the measured figures.
//!
//! `--curve` measures every point of `--curve-instances` × `--curve-interval-ms` (by default
//! 1 000, 5 000 and 20 000 instances at 100 ms and 1 000 ms), each on a fresh cluster with
//! the same `--duration-s` and `--warmup-s`, and prints one table (`--json`: an array of the
//! points' results).
//!
//! - [`pacer`]: one instance's reporting rules (pure, unit-tested).
//! - [`instance`]: the task that runs one instance against the cluster.
//! - [`point`]: one measurement on a fresh cluster, and its result.
//! - [`render`]: the single-run lines and the curve's table.

mod instance;
mod lag;
mod pacer;
mod point;
mod render;
mod wire;

use clap::Args;

use point::PointSpec;

use super::{CommonArgs, progress};

/// `switchyard bench ingest`
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Simulated SDK instances.
    #[arg(long, default_value_t = 1000, conflicts_with = "curve")]
    pub instances: u32,
    /// Breakers per report.
    #[arg(long, default_value_t = 20)]
    pub breakers: u32,
    /// Configured report interval of each instance, ms (the cluster may ask for a wider one).
    #[arg(long, default_value_t = 100, conflicts_with = "curve")]
    pub interval_ms: u64,
    /// Measured seconds (per point of a curve).
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Unmeasured seconds first (per point of a curve).
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u64,
    /// HTTP/2 connections per node shared by the instances.
    #[arg(long, default_value_t = 8)]
    pub connections_per_node: u32,
    /// Measure the capacity curve: every instance count of `--curve-instances` at every
    /// interval of `--curve-interval-ms`, each on a fresh cluster, in one table.
    #[arg(long)]
    pub curve: bool,
    /// Instance counts of the curve, comma-separated.
    #[arg(
        long,
        default_value = "1000,5000,20000",
        value_delimiter = ',',
        requires = "curve"
    )]
    pub curve_instances: Vec<u32>,
    /// Configured report intervals of the curve, ms, comma-separated.
    #[arg(
        long,
        default_value = "100,1000",
        value_delimiter = ',',
        requires = "curve"
    )]
    pub curve_interval_ms: Vec<u64>,
    /// Build a snapshot on every node after this many log entries (the node's own default is
    /// 5 000; each snapshot after the first also waits until the log since the last one is as
    /// large as it). The state size is the end leader's latest snapshot, shown with the log
    /// index it covers: with the default, every point of 2 s warm-up + 10 s measured builds
    /// at least one during the run (a leader that keeps up writes about 120 tick entries, an
    /// overloaded one fewer, larger ones), and the measured figures include its small cost
    /// (copying, encoding and writing the state on every node: a few ms of CPU for a few MB).
    /// At least 1.
    #[arg(long, value_name = "N", default_value_t = SNAPSHOT_EVERY_ENTRIES)]
    pub snapshot_every_entries: u64,
    /// Every node's `limits.cpu_pressure_max_percent` (0 turns CPU back-pressure off); by
    /// default the node's own default.
    #[arg(long, value_name = "PERCENT")]
    pub cpu_pressure_max_percent: Option<u32>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The default of `--snapshot-every-entries`: every point of the default curve builds a
/// snapshot during its run, the overloaded ones too (they write 26 to 35 entries; see above).
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 20;

fn validate_point(spec: PointSpec, curve: bool) -> anyhow::Result<()> {
    let (instances, interval) = if curve {
        ("--curve-instances", "--curve-interval-ms")
    } else {
        ("--instances", "--interval-ms")
    };
    anyhow::ensure!(
        (1..=100_000).contains(&spec.instances),
        "{instances}: between 1 and 100000"
    );
    anyhow::ensure!(
        (10..=60_000).contains(&spec.interval_ms),
        "{interval}: between 10 and 60000"
    );
    Ok(())
}

/// The points to measure: the curve's grid, or the one point of `--instances` and
/// `--interval-ms`.
fn points(args: &IngestArgs) -> anyhow::Result<Vec<PointSpec>> {
    anyhow::ensure!(
        (1..=10_000).contains(&args.breakers),
        "--breakers: between 1 and 10000"
    );
    anyhow::ensure!(
        (1..=64).contains(&args.connections_per_node),
        "--connections-per-node: 1 to 64"
    );
    anyhow::ensure!(args.duration_s >= 1, "--duration-s: at least 1");
    anyhow::ensure!(
        args.snapshot_every_entries >= 1,
        "--snapshot-every-entries: at least 1 (log entries between two snapshots on a node)"
    );
    anyhow::ensure!(
        args.cpu_pressure_max_percent.is_none_or(|p| p <= 100),
        "--cpu-pressure-max-percent: at most 100 (0 turns it off)"
    );
    let points = if args.curve {
        anyhow::ensure!(
            !args.curve_instances.is_empty() && !args.curve_interval_ms.is_empty(),
            "--curve-instances, --curve-interval-ms: give at least one value each"
        );
        args.curve_instances
            .iter()
            .flat_map(|&instances| {
                args.curve_interval_ms
                    .iter()
                    .map(move |&interval_ms| PointSpec {
                        instances,
                        interval_ms,
                    })
            })
            .collect()
    } else {
        vec![PointSpec {
            instances: args.instances,
            interval_ms: args.interval_ms,
        }]
    };
    for &spec in &points {
        validate_point(spec, args.curve)?;
    }
    Ok(points)
}

/// Runs the harness.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let specs = points(&args)?;
    if !args.curve {
        let result = point::measure(&args, specs[0]).await?;
        if args.common.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            print!("{}", render::fields(&result).render());
        }
        return Ok(());
    }
    let mut results = Vec::new();
    for (n, &spec) in specs.iter().enumerate() {
        progress(format!(
            "point {}/{}: {} instances every {} ms",
            n + 1,
            specs.len(),
            spec.instances,
            spec.interval_ms
        ));
        let r = point::measure(&args, spec).await?;
        progress(format!(
            "point {}/{}: {:.0} of {:.0} reports/s, effective interval {:.0} ms, p99 {:.2} ms, \
             {} errors, {:.2} % of calls applied ({:.2} % unsent), leader CPU {:.0} %{}",
            n + 1,
            specs.len(),
            r.reports_per_s,
            r.offered_reports_per_s,
            r.effective_interval_mean_ms,
            r.latency.p99_ms,
            r.errors,
            r.calls_applied_percent(),
            r.calls_unsent_percent(),
            r.leader_cpu_percent,
            if r.leader_start == r.leader_end {
                String::new()
            } else {
                format!(", leader changed ({} -> {})", r.leader_start, r.leader_end)
            }
        ));
        results.push(r);
    }
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", render::curve_table(&results).render());
        print!("{}", render::curve_note(args.snapshot_every_entries));
    }
    Ok(())
}
