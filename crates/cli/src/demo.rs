//! `switchyard demo`: a local 3-node cluster, a simulated fleet and a dependency that fails and
//! recovers on a schedule, with the dashboard URL and a live terminal summary.
//!
//! The fleet is `instances` real SDK clients in this process, each calling a simulated ML
//! scoring dependency `calls_per_s` times a second through its breaker, with a rule-based
//! fallback when the breaker rejects. The dependency follows a fixed cycle:
//!
//! ```text
//!   0 s ──healthy──▶ 20 s ──down (every call fails)──▶ 50 s ──healthy──▶ 70 s (repeat)
//! ```
//!
//! Watch the breaker go OPEN fleet-wide a moment after the outage starts, the `payments` scope
//! drop to DEGRADED (its tier rule), HALF_OPEN admitting only the fleet-wide probe budget, and
//! CLOSED again once probes succeed after recovery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::Args;
use switchyard_core::{Policy, PolicyTarget, Tier, TierCondition, TierRule, TierRules};
use switchyard_proto::admin::{self as apb, admin_client::AdminClient};
use switchyard_sdk::{Client, Mode, Outcome};

use crate::bench::cluster::{BenchCluster, Ports, connect};

const KEY: &str = "payments/ml-scoring";
const CYCLE_S: u64 = 70;
const OUTAGE_FROM_S: u64 = 20;
const OUTAGE_UNTIL_S: u64 = 50;

/// `switchyard demo`
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Simulated service instances.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=200))]
    pub instances: u32,
    /// Calls per second per instance.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub calls_per_s: u32,
    /// Stop after this many seconds (0 = run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub duration_s: u64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    probes: AtomicU64,
    fallback: AtomicU64,
}

fn dependency_up(elapsed: Duration) -> bool {
    let t = elapsed.as_secs() % CYCLE_S;
    !(OUTAGE_FROM_S..OUTAGE_UNTIL_S).contains(&t)
}

async fn configure(admin: &mut AdminClient<tonic::transport::Channel>) -> anyhow::Result<()> {
    let policy = Policy {
        // A short window so the demo trips a couple of seconds into the outage.
        window: switchyard_core::WindowSpec::Time {
            duration_ms: 4_000,
            buckets: 4,
        },
        min_calls: 20,
        min_instances: 2,
        open_duration_ms: 5_000,
        open_duration_max_ms: 20_000,
        probe_permits: 3,
        probe_success_threshold: 3,
        ..Policy::default()
    };
    let target = PolicyTarget::Key(switchyard_core::BreakerKey::parse(KEY)?);
    admin
        .put_policies(apb::PutPoliciesRequest {
            policies: vec![apb::PolicyEntry::from((&target, &policy))],
            reason: "demo".into(),
        })
        .await?;
    let rules = TierRules {
        scope: switchyard_core::Scope::parse("payments")?,
        recover_after_ms: 10_000,
        rules: vec![TierRule {
            when: TierCondition::BreakerState {
                breaker: switchyard_core::BreakerKey::parse(KEY)?,
                state: switchyard_core::ConditionState::Open,
            },
            tier: Tier::Degraded,
        }],
        features: [("ml_fraud".to_string(), Tier::Full)].into_iter().collect(),
    };
    admin
        .put_tier_rules(apb::PutTierRulesRequest {
            rules: Some(apb::TierRules::from(&rules)),
            reason: "demo".into(),
        })
        .await?;
    Ok(())
}

/// Runs the demo until Ctrl-C (or `--duration-s`).
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    eprintln!("starting a 3-node cluster on gRPC 127.0.0.1:7071-7073, HTTP 7081-7083 ...");
    let cluster = BenchCluster::start_on(3, Ports::LocalCluster).await?;
    let (_, leader) = cluster.wait_leader(Duration::from_secs(30)).await?;
    configure(&mut AdminClient::new(connect(&leader).await?)).await?;
    let endpoints = cluster.endpoints();
    println!("dashboard:  http://{}/", cluster.nodes[0].http_addr);
    println!(
        "endpoints:  export SWITCHYARD_ENDPOINTS={}",
        endpoints.join(",")
    );
    println!(
        "fleet:      {} instances x {} calls/s to {KEY}; the dependency is down from {OUTAGE_FROM_S}s to {OUTAGE_UNTIL_S}s of every {CYCLE_S}s",
        args.instances, args.calls_per_s
    );
    println!("stop with Ctrl-C\n");

    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..args.instances {
        let client = Client::builder()
            .endpoints(endpoints.iter().cloned())
            .instance_id(format!("demo-{i}"))
            .build()?;
        let breaker = client.breaker(KEY)?;
        let counters = counters.clone();
        let period = Duration::from_secs_f64(1.0 / f64::from(args.calls_per_s));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                counters.calls.fetch_add(1, Relaxed);
                match breaker.allow() {
                    Ok(permit) => {
                        if permit.is_probe() {
                            counters.probes.fetch_add(1, Relaxed);
                        }
                        let up = dependency_up(started.elapsed());
                        if !up {
                            counters.failed.fetch_add(1, Relaxed);
                        }
                        breaker.record(
                            permit,
                            Outcome::failure_if(!up),
                            Duration::from_millis(if up { 40 } else { 900 }),
                        );
                    }
                    Err(_) => {
                        // The rule-based fallback answers instead.
                        counters.rejected.fetch_add(1, Relaxed);
                        counters.fallback.fetch_add(1, Relaxed);
                    }
                }
            }
        });
        clients.push(client);
    }

    let mut admin = AdminClient::new(connect(&leader).await?);
    let mut table_header_every = 0u32;
    let mut last = [0u64; 4];
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = second.tick() => {}
        }
        let elapsed = started.elapsed();
        if args.duration_s > 0 && elapsed.as_secs() >= args.duration_s {
            break;
        }
        let now = [
            counters.calls.load(Relaxed),
            counters.failed.load(Relaxed),
            counters.rejected.load(Relaxed),
            counters.probes.load(Relaxed),
        ];
        let delta: Vec<u64> = now.iter().zip(last).map(|(n, l)| n - l).collect();
        last = now;
        let state = admin
            .get_breaker(apb::GetBreakerRequest {
                key: KEY.into(),
                local: true,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().breaker?.decision)
            .map(|d| {
                crate::output::enum_name(
                    switchyard_proto::client::BreakerState::try_from(d.state)
                        .map(|s| s.as_str_name())
                        .unwrap_or("?"),
                    "BREAKER_STATE_",
                )
            })
            .unwrap_or_else(|| "-".into());
        let tier = clients[0].tier("payments");
        let modes = clients.iter().filter(|c| c.mode() == Mode::Cluster).count();
        if table_header_every.is_multiple_of(20) {
            println!(
                "{:>6}  {:<10}  {:<12}  {:<10}  {:>7}  {:>8}  {:>10}  {:>8}  {:>7}",
                "T",
                "DEPENDENCY",
                "BREAKER",
                "TIER",
                "CALLS/S",
                "FAILED/S",
                "REJECTED/S",
                "PROBES/S",
                "CLUSTER"
            );
        }
        table_header_every += 1;
        println!(
            "{:>6}  {:<10}  {:<12}  {:<10}  {:>7}  {:>8}  {:>10}  {:>8}  {:>7}",
            format!("{}s", elapsed.as_secs()),
            if dependency_up(elapsed) { "up" } else { "DOWN" },
            state,
            tier.as_str(),
            delta[0],
            delta[1],
            delta[2],
            delta[3],
            format!("{modes}/{}", clients.len()),
        );
    }
    println!(
        "\ntotal: {} calls, {} failed, {} rejected (answered by the fallback), {} probes",
        counters.calls.load(Relaxed),
        counters.failed.load(Relaxed),
        counters.rejected.load(Relaxed),
        counters.probes.load(Relaxed)
    );
    drop(clients);
    drop(cluster);
    Ok(())
}
