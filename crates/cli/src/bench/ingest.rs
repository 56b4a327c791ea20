//! `switchyard bench ingest`: a simulated fleet reporting into a local cluster.
//!
//! `instances` SDK instances each send one Report carrying `breakers` deltas every
//! `interval_ms`, spread over all nodes (followers forward to the leader, as with real SDKs).
//! The harness reports the sustained Report RPCs/s, their latency and the leader's CPU use.
//! Reports are paced (open loop): a late report is sent as soon as possible, and its latency
//! counts from when it was sent.

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use switchyard_proto::client::client_client::ClientClient;
use switchyard_proto::client::{BreakerDelta, LatencyBucket, ReportRequest};

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
    /// Failed reports.
    pub errors: u64,
    /// Leader CPU, percent of one core.
    pub leader_cpu_percent: f64,
}

fn report(instance: u32, breakers: u32, seq: u64) -> ReportRequest {
    ReportRequest {
        instance: format!("bench-{instance}"),
        deltas: (0..breakers)
            .map(|b| BreakerDelta {
                key: format!("fleet/b{b}"),
                calls: 10,
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
            let mut errors = 0u64;
            let mut next = start + phase;
            let mut seq = 0u64;
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let sent = Instant::now();
                let ok = client.report(report(instance, breakers, seq)).await.is_ok();
                let done = Instant::now();
                if sent >= measure_from && done <= end {
                    if ok {
                        samples_us.push((done - sent).as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                seq += 1;
                next += interval;
            }
            (samples_us, errors)
        }));
    }
    let pid = cluster.pid(leader_id).unwrap_or(0);
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = cpu_seconds(pid).unwrap_or(0.0);
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (samples, e) = task.await?;
        all.extend(samples);
        errors += e;
    }
    let seconds = args.duration_s as f64;
    let result = IngestResult {
        instances: args.instances,
        breakers: args.breakers,
        offered_reports_per_s: f64::from(args.instances) * 1000.0 / args.interval_ms as f64,
        reports_per_s: all.len() as f64 / seconds,
        deltas_per_s: all.len() as f64 * f64::from(args.breakers) / seconds,
        latency: percentiles(&mut all),
        errors,
        leader_cpu_percent: (cpu_after - cpu_before) / seconds * 100.0,
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
        .add("errors", result.errors.to_string())
        .add(
            "leader CPU",
            format!("{:.0} % of one core", result.leader_cpu_percent),
        );
        print!("{}", kv.render());
    }
    Ok(())
}
