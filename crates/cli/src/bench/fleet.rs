//! `switchyard bench fleet`: the headline comparison (DESIGN §6) on real processes.
//!
//! A real cluster of node processes on loopback, and a fleet of SDK instances (real
//! [`Client`]s in this process, one per instance, each with its own instance id, reporting
//! and watching over gRPC) calling an in-process dependency that the bench fails and then
//! recovers. Each configuration runs twice with the same policy: coordinated (the SDKs follow
//! the cluster) and local-only (every SDK on its own local breaker, no cluster).
//!
//! ```text
//!   0 ── warm-up (healthy) ── onset: dependency down ─── recovery: healthy ── fleet closed (or --recovery-s)
//!                             ├─ failed calls: first --onset-s ─┤         ├─ trial calls ─┤
//! ```
//!
//! Per side: failed calls in the first `--onset-s` of the outage, trial (probe) calls from the
//! recovery on, the time from the onset until no instance admits ordinary calls (fleet-wide
//! open), and from the recovery until every instance admits them again (close), sampled every
//! [`SAMPLE_MS`] ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use switchyard_core::{BreakerKey, Policy, PolicyTarget};
use switchyard_proto::admin as apb;
use switchyard_proto::admin::admin_client::AdminClient;
use switchyard_sdk::{Admission, Client, Outcome, PermitKind};

use super::cluster::{BenchCluster, connect};
use super::{CommonArgs, progress};
use crate::output::Table;

/// How often the fleet's admissions are sampled, ms.
pub const SAMPLE_MS: u64 = 10;

/// The rows run without `--instances` / `--calls-per-s`.
pub const ROWS: [(u32, u32); 6] = [(10, 5), (10, 20), (10, 100), (50, 5), (50, 20), (50, 100)];

/// `switchyard bench fleet`
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Run one row with this many instances (with `--calls-per-s`).
    #[arg(long, requires = "calls_per_s", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub instances: Option<u32>,
    /// Calls per second per instance for the one row (with `--instances`).
    #[arg(long, requires = "instances", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub calls_per_s: Option<u32>,
    /// Healthy seconds before the outage.
    #[arg(long, default_value_t = 5)]
    pub warmup_s: u64,
    /// Seconds the dependency is down.
    #[arg(long, default_value_t = 25)]
    pub outage_s: u64,
    /// Failed calls are counted over this many seconds from the onset.
    #[arg(long, default_value_t = 15)]
    pub onset_s: u64,
    /// After the recovery, wait at most this long for the fleet to close.
    #[arg(long, default_value_t = 45)]
    pub recovery_s: u64,
    /// The policy's `open_duration_ms` (both sides); default: the policy default.
    #[arg(long)]
    pub open_duration_ms: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// One side of a row (DESIGN §6 field names).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    /// Failed calls in the first `--onset-s` of the outage.
    pub failed_at_onset: u64,
    /// Trial calls (cluster or local probes) from the recovery on.
    pub probe_calls_in_recovery: u64,
    /// From the onset until no instance admitted ordinary calls, ms.
    pub time_to_open_ms: Option<u64>,
    /// From the recovery until every instance admitted them again, ms.
    pub time_to_close_ms: Option<u64>,
}

/// One configuration, both ways.
#[derive(Debug, Clone, Serialize)]
pub struct FleetRow {
    /// SDK instances.
    pub instances: u32,
    /// Calls per second per instance.
    pub calls_per_s: u32,
    /// With the cluster.
    pub coordinated: Side,
    /// Every SDK on its own.
    pub local_only: Side,
}

/// The schedule of one run, from the first call.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    onset: Duration,
    recovery: Duration,
    onset_end: Duration,
    end: Duration,
}

impl Schedule {
    fn of(args: &FleetArgs) -> Self {
        let onset = Duration::from_secs(args.warmup_s);
        let recovery = onset + Duration::from_secs(args.outage_s);
        Schedule {
            onset,
            recovery,
            onset_end: onset + Duration::from_secs(args.onset_s.min(args.outage_s)),
            end: recovery + Duration::from_secs(args.recovery_s),
        }
    }
}

/// The fleet's tallies.
#[derive(Debug, Default)]
struct Tally {
    failed_at_onset: AtomicU64,
    probes_in_recovery: AtomicU64,
}

fn validate(args: &FleetArgs) -> anyhow::Result<Policy> {
    anyhow::ensure!(args.outage_s >= 1, "--outage-s: must be at least 1");
    anyhow::ensure!(args.onset_s >= 1, "--onset-s: must be at least 1");
    anyhow::ensure!(args.recovery_s >= 1, "--recovery-s: must be at least 1");
    let mut policy = Policy::default();
    if let Some(ms) = args.open_duration_ms {
        policy.open_duration_ms = ms;
        policy.open_duration_max_ms = policy.open_duration_max_ms.max(ms);
    }
    policy
        .validate()
        .map_err(|e| anyhow::anyhow!("--open-duration-ms: {e}"))?;
    Ok(policy)
}

/// Runs the harness.
pub async fn run(args: FleetArgs) -> anyhow::Result<()> {
    let policy = validate(&args)?;
    let rows: Vec<(u32, u32)> = match (args.instances, args.calls_per_s) {
        (Some(i), Some(r)) => vec![(i, r)],
        _ => ROWS.to_vec(),
    };
    progress(format!(
        "starting a {}-node cluster on loopback",
        args.common.nodes
    ));
    let cluster = BenchCluster::start(args.common.nodes).await?;
    let mut results = Vec::new();
    for (n, &(instances, calls_per_s)) in rows.iter().enumerate() {
        let mut sides = Vec::new();
        for coordinated in [true, false] {
            let label = if coordinated {
                "coordinated"
            } else {
                "local-only"
            };
            progress(format!(
                "row {}/{}: {instances} instances x {calls_per_s} calls/s, {label}",
                n + 1,
                rows.len()
            ));
            // A key of its own per run, so no run starts from another's breaker state.
            let key = format!("bench/fleet-{n}-{label}");
            let side = if coordinated {
                let (_, leader) = cluster.wait_leader(Duration::from_secs(30)).await?;
                install(&leader, &key, &policy).await?;
                measure(&args, &key, &policy, instances, calls_per_s, Some(&cluster)).await?
            } else {
                measure(&args, &key, &policy, instances, calls_per_s, None).await?
            };
            progress(format!(
                "  {label}: {} failed at onset, {} probe calls, open after {}, closed {} after recovery",
                side.failed_at_onset,
                side.probe_calls_in_recovery,
                seconds(side.time_to_open_ms),
                seconds(side.time_to_close_ms)
            ));
            sides.push(side);
        }
        let local_only = sides.pop().unwrap_or_default();
        let coordinated = sides.pop().unwrap_or_default();
        results.push(FleetRow {
            instances,
            calls_per_s,
            coordinated,
            local_only,
        });
    }
    drop(cluster);
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", table(&results).render());
    }
    Ok(())
}

/// Puts the row's policy. The write is idempotent, and made again while the node answers that
/// it knows no leader (on a loaded machine a leader just found can lose its term before the
/// write arrives), for at most 30 s.
async fn install(leader: &str, key: &str, policy: &Policy) -> anyhow::Result<()> {
    let target = PolicyTarget::Key(BreakerKey::parse(key)?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let written = AdminClient::new(connect(leader).await?)
            .put_policies(apb::PutPoliciesRequest {
                policies: vec![apb::PolicyEntry::from((&target, policy))],
                reason: "bench fleet".into(),
            })
            .await;
        match written {
            Ok(_) => return Ok(()),
            Err(status)
                if status.code() == tonic::Code::Unavailable
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(status.into()),
        }
    }
}

/// One run: builds the fleet, runs the schedule, and measures.
async fn measure(
    args: &FleetArgs,
    key: &str,
    policy: &Policy,
    instances: u32,
    calls_per_s: u32,
    cluster: Option<&BenchCluster>,
) -> anyhow::Result<Side> {
    let schedule = Schedule::of(args);
    let mut clients = Vec::new();
    let mut breakers = Vec::new();
    for i in 0..instances {
        let builder = Client::builder().instance_id(format!("bench-{i}"));
        let client = match cluster {
            Some(c) => builder.endpoints(c.endpoints()).build()?,
            None => builder.build()?,
        };
        breakers.push(client.breaker_with_policy(key, policy.clone())?);
        clients.push(client);
    }
    if cluster.is_some() {
        // Every SDK follows the cluster before the first call.
        let deadline = Instant::now() + Duration::from_secs(30);
        while clients.iter().any(|c| c.applied_index() == 0) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the fleet did not reach the cluster within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let down = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(calls_per_s));
    let mut callers = Vec::new();
    for breaker in &breakers {
        let (breaker, down, tally) = (breaker.clone(), down.clone(), tally.clone());
        callers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Ok(permit) = breaker.allow() else {
                    continue;
                };
                let at = started.elapsed();
                let probe = permit.kind() != PermitKind::Normal;
                let fails = down.load(Relaxed);
                if fails && (schedule.onset..schedule.onset_end).contains(&at) {
                    tally.failed_at_onset.fetch_add(1, Relaxed);
                }
                if probe && at >= schedule.recovery {
                    tally.probes_in_recovery.fetch_add(1, Relaxed);
                }
                breaker.record(permit, Outcome::failure_if(fails), Duration::from_millis(2));
            }
        }));
    }
    let mut side = Side::default();
    let mut sample = tokio::time::interval(Duration::from_millis(SAMPLE_MS));
    loop {
        sample.tick().await;
        let at = started.elapsed();
        if at >= schedule.end {
            break;
        }
        let outage = (schedule.onset..schedule.recovery).contains(&at);
        down.store(outage, Relaxed);
        if at < schedule.onset {
            continue;
        }
        let allowing = breakers
            .iter()
            .filter(|b| b.admission() == Admission::Allow)
            .count();
        if side.time_to_open_ms.is_none() && allowing == 0 {
            side.time_to_open_ms = Some((at - schedule.onset).as_millis() as u64);
        }
        if at >= schedule.recovery && allowing == breakers.len() {
            side.time_to_close_ms = Some((at - schedule.recovery).as_millis() as u64);
            break;
        }
    }
    for caller in callers {
        caller.abort();
    }
    side.failed_at_onset = tally.failed_at_onset.load(Relaxed);
    side.probe_calls_in_recovery = tally.probes_in_recovery.load(Relaxed);
    Ok(side)
}

fn seconds(ms: Option<u64>) -> String {
    ms.map_or("never".into(), |ms| format!("{:.1} s", ms as f64 / 1_000.0))
}

fn table(rows: &[FleetRow]) -> Table {
    let mut table = Table::new(&[
        "INSTANCES",
        "CALLS/S",
        "FAILED AT ONSET (COORD/LOCAL)",
        "RATIO",
        "PROBES IN RECOVERY",
        "TIME TO OPEN",
        "TIME TO CLOSE",
    ]);
    for r in rows {
        let (c, l) = (&r.coordinated, &r.local_only);
        table.row(vec![
            r.instances.to_string(),
            r.calls_per_s.to_string(),
            format!("{} / {}", c.failed_at_onset, l.failed_at_onset),
            format!(
                "{:.2}",
                c.failed_at_onset as f64 / (l.failed_at_onset as f64).max(1.0)
            ),
            format!(
                "{} / {}",
                c.probe_calls_in_recovery, l.probe_calls_in_recovery
            ),
            format!(
                "{} / {}",
                seconds(c.time_to_open_ms),
                seconds(l.time_to_open_ms)
            ),
            format!(
                "{} / {}",
                seconds(c.time_to_close_ms),
                seconds(l.time_to_close_ms)
            ),
        ]);
    }
    table
}
