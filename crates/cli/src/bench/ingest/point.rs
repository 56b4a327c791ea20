//! One measurement of `bench ingest`: a fresh cluster, a fleet, the accounting.

use std::time::{Duration, Instant};

use serde::Serialize;
use tonic::transport::Channel;

use super::IngestArgs;
use super::instance::{self, InstanceRun, Timeline};
use super::lag::{self, GeneratorLag};
use super::pacer::{CALLS_PER_INTERVAL, Evidence, ReportPacer};
use crate::bench::accounting::{self, ErrorsByCode, NodeCpu, StateSize};
use crate::bench::cluster::{BenchCluster, connect, cpu_seconds, rss_bytes};
use crate::bench::progress;
use crate::bench::stats::{Percentiles, percentiles};

/// What varies between the points of a curve.
#[derive(Debug, Clone, Copy)]
pub struct PointSpec {
    /// Simulated instances.
    pub instances: u32,
    /// Their configured report interval, ms.
    pub interval_ms: u64,
}

/// The result of one point.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    /// Instances.
    pub instances: u32,
    /// Breakers per report.
    pub breakers: u32,
    /// Configured report interval of every instance, ms.
    pub interval_ms: u64,
    /// The leader when the fleet started (its CPU is the leader CPU).
    pub leader_start: u64,
    /// The leader after the run (the applied calls, state size and RSS are read on it).
    pub leader_end: u64,
    /// Report RPCs per second at the configured interval (what the fleet would send unpaced).
    pub offered_reports_per_s: f64,
    /// Report RPCs accepted per second in the measured seconds.
    pub reports_per_s: f64,
    /// Report RPCs started per instance per second in the measured seconds (accepted or not).
    pub reports_sent_per_instance_per_s: f64,
    /// Of the reports accepted in the measured seconds, the percentage the leader answered
    /// itself (the rest went to followers, which forward them in one batch a tick).
    pub answered_by_leader_percent: f64,
    /// Mean of the instances' report intervals in force at the end of the measurement, ms.
    pub effective_interval_mean_ms: f64,
    /// Widest of the instances' report intervals in force at the end of the measurement, ms.
    pub effective_interval_max_ms: u64,
    /// Deltas per second in the reports accepted in the measured seconds.
    pub deltas_per_s: f64,
    /// Calls the fleet makes per second (over all breakers).
    pub offered_calls_per_s: f64,
    /// Calls per second in the reports accepted in the measured seconds.
    pub calls_per_s: f64,
    /// Report latency (accepted reports in the measured seconds).
    pub latency: Percentiles,
    /// Failed reports in the measured seconds.
    pub errors: u64,
    /// Failed reports in the measured seconds, by gRPC code.
    pub errors_by_code: ErrorsByCode,
    /// Failed reports over the whole run (warm-up included), by gRPC code.
    pub errors_by_code_whole_run: ErrorsByCode,
    /// Calls made over the whole run (warm-up included, up to the end), over all breakers.
    pub calls_offered: u64,
    /// Of those, calls the instances still held at the end: never accepted by the cluster.
    pub calls_unsent: u64,
    /// Calls the state machine applied over the whole run, end to end (after a drain; the most
    /// any node applied).
    /// Equal to `calls_offered - calls_unsent` when nothing acknowledged was lost.
    pub calls_applied: u64,
    /// Seconds from the end of the fleet until the calls applied stopped growing: the backlog
    /// the nodes' buffers held.
    pub drain_s: f64,
    /// Deltas the nodes lost or refused, by reason, over the whole run.
    pub node_losses: accounting::NodeLosses,
    /// Leader CPU in the measured seconds, percent of one core.
    pub leader_cpu_percent: f64,
    /// Every node's CPU in the measured seconds, percent of one core, and its runtime lag.
    pub node_cpu: Vec<NodeCpu>,
    /// How late the generator's own runtime ran what was due in the measured seconds: the
    /// share of the report latency that is the harness's wait for a core.
    pub generator_lag: GeneratorLag,
    /// The generator's own CPU in the measured seconds (this process), percent of one core.
    pub generator_cpu_percent: f64,
    /// Encoded bytes of a tick entry per delta it carries.
    pub tick_bytes_per_delta: accounting::TickBytes,
    /// Log entries between snapshots on every node (`--snapshot-every-entries`).
    pub snapshot_every_entries: u64,
    /// The end leader's state size after the drain (its latest snapshot; see [`StateSize`]).
    pub state: StateSize,
    /// The end leader's resident memory right after the first leader was elected, MiB.
    pub leader_rss_baseline_mib: f64,
    /// The end leader's resident memory after the drain, MiB.
    pub leader_rss_mib: f64,
    /// Leader memory growth over the point per 1 000 instances, MiB:
    /// `(leader_rss_mib - leader_rss_baseline_mib) / (instances / 1000)`.
    pub memory_mib_per_1k_instances: f64,
}

impl IngestResult {
    /// Calls applied, percent of the calls offered.
    pub fn calls_applied_percent(&self) -> f64 {
        self.calls_applied as f64 * 100.0 / self.calls_offered.max(1) as f64
    }

    /// The state size per 1 000 instances, bytes (0 before the first snapshot).
    pub fn state_bytes_per_1k_instances(&self) -> f64 {
        self.state.snapshot_bytes as f64 * 1000.0 / f64::from(self.instances.max(1))
    }

    /// Calls held unsent at the end, percent of the calls offered.
    pub fn calls_unsent_percent(&self) -> f64 {
        self.calls_unsent as f64 * 100.0 / self.calls_offered.max(1) as f64
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Every node's resident memory, MiB (0 if it cannot be read), by position.
fn rss_mib(cluster: &BenchCluster) -> Vec<f64> {
    cluster
        .nodes
        .iter()
        .map(|n| {
            cluster
                .pid(n.id)
                .and_then(rss_bytes)
                .map_or(0.0, |b| b as f64 / MIB)
        })
        .collect()
}

/// Measures one point on a fresh cluster.
pub async fn measure(args: &IngestArgs, spec: PointSpec) -> anyhow::Result<IngestResult> {
    progress(format!("starting a {}-node cluster", args.common.nodes));
    let mut config = format!("snapshot_every_entries = {}\n", args.snapshot_every_entries);
    if let Some(percent) = args.cpu_pressure_max_percent {
        config.push_str(&format!("[limits]\ncpu_pressure_max_percent = {percent}\n"));
    }
    let cluster = BenchCluster::start_configured(args.common.nodes, &config).await?;
    let (leader_id, _) = cluster.wait_leader(Duration::from_secs(30)).await?;
    // Every node's: the leader may change under load, and its growth is what counts.
    let rss_baseline_mib = rss_mib(&cluster);
    // `connections_per_node` connections to every node; an instance has its slot on each.
    let mut channels: Vec<Vec<Channel>> = Vec::new();
    for endpoint in &cluster.endpoints() {
        let mut node = Vec::new();
        for _ in 0..args.connections_per_node {
            node.push(connect(endpoint).await?);
        }
        channels.push(node);
    }
    let offered_reports_per_s = f64::from(spec.instances) * 1000.0 / spec.interval_ms as f64;
    progress(format!(
        "{} instances x {} breakers every {} ms ({offered_reports_per_s:.0} reports/s offered): \
         {}s warm-up, {}s measured",
        spec.instances, args.breakers, spec.interval_ms, args.warmup_s, args.duration_s
    ));
    let start = Instant::now();
    let end_ms = (args.warmup_s + args.duration_s) * 1000;
    let timeline = Timeline {
        start,
        measure_from: start + Duration::from_secs(args.warmup_s),
        end: start + Duration::from_millis(end_ms),
    };
    let mut tasks = Vec::new();
    for instance in 0..spec.instances {
        // Instances spread over the nodes and their connections, as before reports left the
        // leader: the instance's first node, then its slot there.
        let per_node = channels[0].len();
        let at = instance as usize % (channels.len() * per_node);
        let (start, slot) = (at / per_node, at % per_node);
        let mine: Vec<Channel> = channels.iter().map(|node| node[slot].clone()).collect();
        // Spread the instances' phases over one interval, as a real fleet's would be.
        let phase_ms = spec.interval_ms * u64::from(instance) / u64::from(spec.instances);
        let pacer = ReportPacer::new(spec.interval_ms, phase_ms, end_ms);
        tasks.push(tokio::spawn(instance::run(
            mine,
            start,
            instance,
            args.breakers,
            pacer,
            timeline,
        )));
    }
    let pids: Vec<(u64, u32)> = cluster
        .nodes
        .iter()
        .filter_map(|n| Some((n.id, cluster.pid(n.id)?)))
        .collect();
    let http_addrs: Vec<String> = cluster.nodes.iter().map(|n| n.http_addr.clone()).collect();
    let generator_lag = lag::probe_generator(timeline.measure_from, timeline.end);
    let nodes_lag = lag::read_nodes(http_addrs.clone(), timeline.measure_from, timeline.end);
    let cpu_all = || {
        pids.iter()
            .map(|&(id, pid)| (id, cpu_seconds(pid).unwrap_or(0.0)))
            .collect::<Vec<_>>()
    };
    tokio::time::sleep_until(timeline.measure_from.into()).await;
    let generator_pid = std::process::id();
    let generator_cpu_before = cpu_seconds(generator_pid).unwrap_or(0.0);
    let cpu_before = cpu_all();
    tokio::time::sleep_until(timeline.end.into()).await;
    let cpu_after = cpu_all();
    let generator_cpu_after = cpu_seconds(generator_pid).unwrap_or(0.0);
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await?);
    }
    let generator_lag = generator_lag.await?;
    let nodes_lag = nodes_lag.await?;
    let seconds = args.duration_s as f64;
    let node_cpu: Vec<NodeCpu> = cpu_before
        .iter()
        .zip(&cpu_after)
        .zip(&nodes_lag)
        .map(
            |((&(node, before), &(_, after)), &runtime_lag_ms)| NodeCpu {
                node,
                leader: node == leader_id,
                cpu_percent: (after - before) / seconds * 100.0,
                runtime_lag_ms,
            },
        )
        .collect();
    // The leader now: under overload leadership may have moved, and a deposed leader may lag.
    let (leader_end, _) = cluster.wait_leader(Duration::from_secs(30)).await?;
    let leader_http = cluster.nodes[(leader_end - 1) as usize].http_addr.clone();
    let (calls_applied, drain_time) = drain(&http_addrs).await?;
    let node_losses = accounting::node_losses(&http_addrs).await?;
    let state = accounting::state_size(&leader_http).await?;
    let end = (leader_end - 1) as usize;
    let (rss_baseline_mib, rss_mib) = (rss_baseline_mib[end], rss_mib(&cluster)[end]);
    drop(cluster);
    let fleet = Fleet::sum(runs);
    let mut samples = fleet.samples_us;
    let breakers = u64::from(args.breakers);
    let instances = f64::from(spec.instances);
    Ok(IngestResult {
        instances: spec.instances,
        breakers: args.breakers,
        interval_ms: spec.interval_ms,
        leader_start: leader_id,
        leader_end,
        offered_reports_per_s,
        reports_per_s: samples.len() as f64 / seconds,
        reports_sent_per_instance_per_s: fleet.reports_sent_measured as f64 / instances / seconds,
        answered_by_leader_percent: fleet.answered_by_leader_measured as f64 * 100.0
            / samples.len().max(1) as f64,
        effective_interval_mean_ms: fleet.interval_sum_ms as f64 / instances,
        effective_interval_max_ms: fleet.interval_max_ms,
        deltas_per_s: samples.len() as f64 * breakers as f64 / seconds,
        offered_calls_per_s: offered_reports_per_s * (breakers * CALLS_PER_INTERVAL) as f64,
        calls_per_s: (fleet.calls_accepted_measured * breakers) as f64 / seconds,
        latency: percentiles(&mut samples),
        errors: fleet.errors.values().sum(),
        errors_by_code: fleet.errors,
        errors_by_code_whole_run: fleet.errors_whole_run,
        calls_offered: fleet.offered_calls * breakers,
        calls_unsent: fleet.held_calls * breakers,
        calls_applied,
        drain_s: drain_time.as_secs_f64(),
        node_losses,
        leader_cpu_percent: node_cpu
            .iter()
            .find(|c| c.leader)
            .map_or(0.0, |c| c.cpu_percent),
        node_cpu,
        generator_lag,
        generator_cpu_percent: (generator_cpu_after - generator_cpu_before) / seconds * 100.0,
        tick_bytes_per_delta: accounting::tick_bytes_per_delta(spec.instances, |i| {
            instance::report(i, args.breakers, Evidence::of_interval(0))
        })?,
        snapshot_every_entries: args.snapshot_every_entries,
        state,
        leader_rss_baseline_mib: rss_baseline_mib,
        leader_rss_mib: rss_mib,
        memory_mib_per_1k_instances: (rss_mib - rss_baseline_mib) / (instances / 1000.0),
    })
}

/// The instances' runs summed.
#[derive(Debug, Default)]
struct Fleet {
    samples_us: Vec<u64>,
    calls_accepted_measured: u64,
    reports_sent_measured: u64,
    answered_by_leader_measured: u64,
    errors: ErrorsByCode,
    errors_whole_run: ErrorsByCode,
    /// Per breaker (every breaker of an instance makes the same calls).
    offered_calls: u64,
    held_calls: u64,
    interval_sum_ms: u64,
    interval_max_ms: u64,
}

impl Fleet {
    fn sum(runs: Vec<InstanceRun>) -> Self {
        let mut fleet = Fleet::default();
        for run in runs {
            fleet.samples_us.extend(run.samples_us);
            fleet.calls_accepted_measured += run.calls_accepted_measured;
            fleet.reports_sent_measured += run.reports_sent_measured;
            fleet.answered_by_leader_measured += run.answered_by_leader_measured;
            accounting::merge_errors(&mut fleet.errors, run.errors);
            accounting::merge_errors(&mut fleet.errors_whole_run, run.errors_whole_run);
            fleet.offered_calls += run.offered.calls;
            fleet.held_calls += run.held.calls;
            fleet.interval_sum_ms += run.interval_ms;
            fleet.interval_max_ms = fleet.interval_max_ms.max(run.interval_ms);
        }
        fleet
    }
}

/// How long the applied calls must stay unchanged before the drain ends.
const DRAIN_QUIET: Duration = Duration::from_secs(5);

/// The longest drain: an overloaded cluster ends a run with every node's buffers full
/// (`pending_deltas_max` each) and may elect a new leader on the way.
const DRAIN_MAX: Duration = Duration::from_secs(180);

/// Waits until the calls applied stop growing for [`DRAIN_QUIET`] (the buffers are empty and
/// the last ticks applied), at most [`DRAIN_MAX`]; returns them (the most any node applied:
/// every node applies the same log, and leadership may move during the drain) and the time it
/// took.
async fn drain(http_addrs: &[String]) -> anyhow::Result<(u64, Duration)> {
    progress("draining: waiting for the buffered reports to apply");
    let started = Instant::now();
    let applied = || async {
        let mut most = 0;
        for addr in http_addrs {
            if let Ok(n) = accounting::calls_applied(addr).await {
                most = most.max(n);
            }
        }
        most
    };
    let mut last = applied().await;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < DRAIN_QUIET && started.elapsed() < DRAIN_MAX {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = applied().await;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    Ok((last, started.elapsed().saturating_sub(DRAIN_QUIET)))
}
