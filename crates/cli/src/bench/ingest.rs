//! `switchyard bench ingest`: a simulated fleet reporting into a local cluster.
//!
//! `instances` SDK instances each send one Report carrying `breakers` deltas every
//! `interval_ms`, spread over all nodes (followers forward to the leader, as with real SDKs).
//! The harness reports the sustained Report RPCs/s, their latency and the leader's CPU use.
//! Reports are paced (open loop): a late report is sent as soon as possible, and its latency
//! counts from when it was sent.
//!
//! Accounting ([`super::accounting`]): failed reports by gRPC code; the deltas offered over the
//! whole run against the evidence the leader's state machine applied (after a drain), so a
//! report that was acknowledged but lost on the way shows as a gap; the CPU of every node; and
//! the encoded tick entry bytes per delta.

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use switchyard_proto::client::client_client::ClientClient;
use switchyard_proto::client::{BreakerDelta, LatencyBucket, ReportRequest};

use super::accounting::{self, ErrorsByCode, NodeCpu};
use super::cluster::{BenchCluster, connect, cpu_seconds};
use super::stats::{Percentiles, percentiles};
use super::{CommonArgs, progress};
use crate::output::Fields;

/// `switchyard bench ingest`
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    /// Simulated SDK instances.
    #[arg(long, default_value_t = 1000)]
    pub instances: u32,
    /// Breakers per report.
    #[arg(long, default_value_t = 20)]
    pub breakers: u32,
    /// Report interval of each instance, ms.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Unmeasured seconds first.
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u64,
    /// HTTP/2 connections per node shared by the instances.
    #[arg(long, default_value_t = 8)]
    pub connections_per_node: u32,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The result.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    /// Instances.
    pub instances: u32,
    /// Breakers per report.
    pub breakers: u32,
    /// Offered Report RPCs per second.
    pub offered_reports_per_s: f64,
    /// Successful Report RPCs per second.
    pub reports_per_s: f64,
    /// Deltas per second.
    pub deltas_per_s: f64,
    /// Report latency.
    pub latency: Percentiles,
    /// Failed reports in the measured seconds.
    pub errors: u64,
    /// Failed reports in the measured seconds, by gRPC code.
    pub errors_by_code: ErrorsByCode,
    /// Deltas sent over the whole run (warm-up included).
    pub deltas_offered: u64,
    /// Deltas the leader's state machine applied over the whole run, end to end (its applied
    /// calls divided by the calls per delta).
    pub deltas_applied: u64,
    /// Failed reports over the whole run (warm-up included), by gRPC code.
    pub errors_by_code_whole_run: ErrorsByCode,
    /// Deltas the nodes lost or refused, by reason, over the whole run.
    pub node_losses: accounting::NodeLosses,
    /// Leader CPU, percent of one core.
    pub leader_cpu_percent: f64,
    /// Every node's CPU, percent of one core.
    pub node_cpu: Vec<NodeCpu>,
    /// Encoded bytes of a tick entry per delta it carries.
    pub tick_bytes_per_delta: accounting::TickBytes,
}

/// Calls in each delta of [`report`].
const CALLS_PER_DELTA: u64 = 10;

fn report(instance: u32, breakers: u32, seq: u64) -> ReportRequest {
    ReportRequest {
        instance: format!("bench-{instance}"),
        deltas: (0..breakers)
            .map(|b| BreakerDelta {
                key: format!("fleet/b{b}"),
                calls: CALLS_PER_DELTA,
                failures: u64::from(seq.is_multiple_of(10)),
                slow: 0,
                rejected: 0,
                latency: vec![LatencyBucket {
                    index: 100,
                    count: 10,
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// Runs the harness.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=100_000).contains(&args.instances),
        "--instances: between 1 and 100000"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&args.breakers),
        "--breakers: between 1 and 10000"
    );
    anyhow::ensure!(args.interval_ms >= 10, "--interval-ms: at least 10");
    anyhow::ensure!(
        (1..=64).contains(&args.connections_per_node),
        "--connections-per-node: 1 to 64"
    );
    progress(format!("starting a {}-node cluster", args.common.nodes));
    let cluster = BenchCluster::start(args.common.nodes).await?;
    let (leader_id, _) = cluster.wait_leader(Duration::from_secs(30)).await?;
    let endpoints = cluster.endpoints();
    let mut channels = Vec::new();
    for endpoint in &endpoints {
        for _ in 0..args.connections_per_node {
            channels.push(connect(endpoint).await?);
        }
    }
    progress(format!(
        "{} instances x {} breakers every {} ms ({:.0} reports/s offered): {}s warm-up, {}s measured",
        args.instances,
        args.breakers,
        args.interval_ms,
        f64::from(args.instances) * 1000.0 / args.interval_ms as f64,
        args.warmup_s,
        args.duration_s
    ));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_s);
    let end = measure_from + Duration::from_secs(args.duration_s);
    let interval = Duration::from_millis(args.interval_ms);
    let mut tasks = Vec::new();
    for instance in 0..args.instances {
        let channel = channels[instance as usize % channels.len()].clone();
        let breakers = args.breakers;
        // Spread the instances' phases over one interval, as a real fleet's would be.
        let phase = interval.mul_f64(f64::from(instance) / f64::from(args.instances));
        tasks.push(tokio::spawn(async move {
            let mut client = ClientClient::new(channel);
            let mut samples_us = Vec::new();
            let mut errors = ErrorsByCode::new();
            let mut errors_whole_run = ErrorsByCode::new();
            let mut sent_total = 0u64;
            let mut next = start + phase;
            let mut seq = 0u64;
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let sent = Instant::now();
                let result = client.report(report(instance, breakers, seq)).await;
                let done = Instant::now();
                sent_total += 1;
                if let Err(status) = &result {
                    accounting::count_error(&mut errors_whole_run, status);
                }
                if sent >= measure_from && done <= end {
                    match result {
                        Ok(_) => samples_us.push((done - sent).as_micros() as u64),
                        Err(status) => accounting::count_error(&mut errors, &status),
                    }
                }
                seq += 1;
                next += interval;
            }
            (samples_us, errors, errors_whole_run, sent_total)
        }));
    }
    let pids: Vec<(u64, u32)> = cluster
        .nodes
        .iter()
        .filter_map(|n| Some((n.id, cluster.pid(n.id)?)))
        .collect();
    let cpu_all = || {
        pids.iter()
            .map(|&(id, pid)| (id, cpu_seconds(pid).unwrap_or(0.0)))
            .collect::<Vec<_>>()
    };
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = cpu_all();
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = cpu_all();
    let mut all = Vec::new();
    let mut errors_by_code = ErrorsByCode::new();
    let mut errors_by_code_whole_run = ErrorsByCode::new();
    let mut reports_sent = 0u64;
    for task in tasks {
        let (samples, e, e_whole_run, sent) = task.await?;
        all.extend(samples);
        accounting::merge_errors(&mut errors_by_code, e);
        accounting::merge_errors(&mut errors_by_code_whole_run, e_whole_run);
        reports_sent += sent;
    }
    let seconds = args.duration_s as f64;
    let node_cpu: Vec<NodeCpu> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|(&(node, before), &(_, after))| NodeCpu {
            node,
            leader: node == leader_id,
            cpu_percent: (after - before) / seconds * 100.0,
        })
        .collect();
    let leader_http = cluster.nodes[(leader_id - 1) as usize].http_addr.clone();
    let calls_applied = drain(&leader_http).await?;
    let http_addrs: Vec<String> = cluster.nodes.iter().map(|n| n.http_addr.clone()).collect();
    let node_losses = accounting::node_losses(&http_addrs).await?;
    let deltas_offered = reports_sent * u64::from(args.breakers);
    let result = IngestResult {
        instances: args.instances,
        breakers: args.breakers,
        offered_reports_per_s: f64::from(args.instances) * 1000.0 / args.interval_ms as f64,
        reports_per_s: all.len() as f64 / seconds,
        deltas_per_s: all.len() as f64 * f64::from(args.breakers) / seconds,
        latency: percentiles(&mut all),
        errors: errors_by_code.values().sum(),
        errors_by_code,
        deltas_offered,
        deltas_applied: calls_applied / CALLS_PER_DELTA,
        errors_by_code_whole_run,
        node_losses,
        leader_cpu_percent: node_cpu
            .iter()
            .find(|c| c.leader)
            .map_or(0.0, |c| c.cpu_percent),
        node_cpu,
        tick_bytes_per_delta: accounting::tick_bytes_per_delta(args.instances, |i| {
            report(i, args.breakers, 0)
        })?,
    };
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let mut kv = Fields::new();
        kv.add(
            "instances x breakers",
            format!("{} x {}", result.instances, result.breakers),
        )
        .add(
            "offered reports/s",
            format!("{:.0}", result.offered_reports_per_s),
        )
        .add(
            "sustained reports/s",
            format!("{:.0}", result.reports_per_s),
        )
        .add("deltas/s", format!("{:.0}", result.deltas_per_s))
        .add(
            "report latency p50",
            format!("{:.2} ms", result.latency.p50_ms),
        )
        .add(
            "report latency p99",
            format!("{:.2} ms", result.latency.p99_ms),
        )
        .add("errors", result.errors.to_string());
        for (code, n) in &result.errors_by_code {
            kv.add(&format!("  errors {code}"), n.to_string());
        }
        kv.add(
            "deltas offered / applied",
            format!(
                "{} / {} ({:.2} %)",
                result.deltas_offered,
                result.deltas_applied,
                result.deltas_applied as f64 * 100.0 / result.deltas_offered.max(1) as f64
            ),
        );
        let whole_run: Vec<String> = result
            .errors_by_code_whole_run
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        let losses = result.node_losses;
        kv.add(
            "errors, whole run",
            if whole_run.is_empty() {
                "0".to_string()
            } else {
                whole_run.join(", ")
            },
        )
        .add(
            "deltas lost on nodes",
            format!(
                "refused {}, rejected forwarding {}, lost in a discarded tick {} \
                 (handed over on step-down {}, forwarded again {})",
                losses.refused,
                losses.dropped_forwarding,
                losses.lost_in_tick,
                losses.handed_over,
                losses.forward_retried
            ),
        );
        for c in &result.node_cpu {
            let role = if c.leader { "leader" } else { "follower" };
            kv.add(
                &format!("node {} CPU ({role})", c.node),
                format!("{:.0} % of one core", c.cpu_percent),
            );
        }
        let tick = result.tick_bytes_per_delta;
        kv.add(
            "tick entry bytes/delta",
            format!(
                "{:.1} packed ({:.1} unpacked, {:.1}x)",
                tick.packed,
                tick.unpacked,
                tick.unpacked / tick.packed
            ),
        );
        print!("{}", kv.render());
    }
    Ok(())
}

/// Waits until the leader's applied calls stop growing for 2 s (the last ticks are committed),
/// at most 30 s; returns them.
async fn drain(leader_http: &str) -> anyhow::Result<u64> {
    progress("draining: waiting for the last ticks to apply");
    let mut last = accounting::calls_applied(leader_http).await?;
    let mut unchanged = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = accounting::calls_applied(leader_http).await?;
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
        if unchanged == 4 {
            break;
        }
    }
    Ok(last)
}
