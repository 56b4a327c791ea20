//! The SDK against a real three-node cluster: fleet-wide trips, fail-static behaviour with the
//! whole cluster gone, and the return to cluster mode.

#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Cluster, admin};
use switchyard_core::{BreakerKey, Policy, PolicyTarget};
use switchyard_proto::admin as apb;
use switchyard_sdk::{Client, Mode, Outcome, RejectReason};

const ELECTION: Duration = Duration::from_secs(15);
const REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// A policy whose fleet window trips on 20 calls from 2 instances, while one instance's local
/// window (the same policy) needs 20 of its own calls.
fn policy() -> Policy {
    Policy {
        min_calls: 20,
        min_instances: 2,
        ..Policy::default()
    }
}

async fn put_policy(addr: &str, key: &str) {
    let target = PolicyTarget::Key(BreakerKey::parse(key).unwrap());
    admin(addr)
        .await
        .put_policies(apb::PutPoliciesRequest {
            policies: vec![apb::PolicyEntry::from((&target, &policy()))],
            reason: "sdk test".into(),
        })
        .await
        .expect("put policy");
}

fn fleet(
    endpoints: &str,
    n: usize,
    stale_after: Duration,
    fallback_after: Duration,
) -> Vec<Client> {
    (0..n)
        .map(|i| {
            Client::builder()
                .endpoints(endpoints.split(','))
                .instance_id(format!("test-instance-{i}"))
                .report_interval(REPORT_INTERVAL)
                .stale_after(stale_after)
                .fallback_after(fallback_after)
                .default_policy(policy())
                .build()
                .expect("sdk client")
        })
        .collect()
}

async fn wait_mode(client: &Client, mode: Mode, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while client.mode() != mode {
        assert!(
            Instant::now() < deadline,
            "client stayed in {:?}, expected {mode:?}",
            client.mode()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_sees_a_fleet_wide_trip_within_one_report_tick_and_round_trip() {
    // Goal: failures spread over five instances, none enough to trip its own local breaker,
    // trip the cluster breaker; every instance then rejects with ClusterOpen.
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let key = "payments/ml-fraud";
    put_policy(&cluster.nodes[&leader].grpc, key).await;
    let clients = fleet(
        &cluster.endpoints(),
        5,
        Duration::from_secs(5),
        Duration::from_secs(30),
    );
    for c in &clients {
        wait_mode(c, Mode::Cluster, ELECTION).await;
    }
    let breakers: Vec<_> = clients.iter().map(|c| c.breaker(key).unwrap()).collect();

    // phase: six failed calls per instance (30 fleet-wide, 6 locally)
    let failed_at = Instant::now();
    for b in &breakers {
        for _ in 0..6 {
            let permit = b.allow().expect("closed breaker admits");
            b.record(permit, Outcome::Failure, Duration::from_millis(5));
        }
    }

    // phase: every instance rejects because the cluster opened
    let mut seen_open = vec![None; breakers.len()];
    let deadline = failed_at + Duration::from_secs(10);
    while seen_open.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "not every instance saw the trip: {seen_open:?}"
        );
        for (i, b) in breakers.iter().enumerate() {
            if seen_open[i].is_none() {
                match b.allow() {
                    Err(rejected) => {
                        assert_eq!(rejected.reason, RejectReason::ClusterOpen, "instance {i}");
                        seen_open[i] = Some(failed_at.elapsed());
                    }
                    Ok(permit) => b.release_unused(permit),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let slowest = seen_open.iter().flatten().max().copied().unwrap();
    // One report interval + one tick + a round trip; the slack covers a loaded CI machine.
    let bound = REPORT_INTERVAL + Duration::from_millis(100) + Duration::from_millis(800);
    println!("fleet-wide OPEN seen by all 5 instances after {slowest:?} (bound {bound:?})");
    assert!(
        slowest <= bound,
        "the trip took {slowest:?}, over {bound:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_whole_cluster_gone_calls_are_decided_locally_and_the_sdk_comes_back() {
    // Goal: kill every node; calls keep being decided without waiting (stale, then local-only
    // with the local breaker deciding); restart the cluster; the SDK returns to cluster mode.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let key = "payments/db";
    put_policy(&cluster.nodes[&leader].grpc, key).await;
    let client = fleet(
        &cluster.endpoints(),
        1,
        Duration::from_secs(1),
        Duration::from_secs(2),
    )
    .pop()
    .unwrap();
    wait_mode(&client, Mode::Cluster, ELECTION).await;
    let breaker = client.breaker(key).unwrap();
    assert!(breaker.allow().map(|p| breaker.release_unused(p)).is_ok());

    // phase: SIGKILL the whole cluster
    for node in cluster.nodes.values_mut() {
        node.kill();
    }
    // phase: calls never wait on the cluster, through Stale into LocalOnly
    let mut slowest_call = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut modes = Vec::new();
    while client.mode() != Mode::LocalOnly {
        assert!(
            Instant::now() < deadline,
            "never reached LocalOnly; modes seen {modes:?}"
        );
        let started = Instant::now();
        if let Ok(permit) = breaker.allow() {
            breaker.release_unused(permit);
        }
        slowest_call = slowest_call.max(started.elapsed());
        if modes.last() != Some(&client.mode()) {
            modes.push(client.mode());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        modes.contains(&Mode::Stale),
        "expected Stale before LocalOnly, saw {modes:?}"
    );
    assert!(
        slowest_call < Duration::from_millis(50),
        "a call waited {slowest_call:?}"
    );

    // phase: the local breaker alone decides: enough local failures open it
    for _ in 0..40 {
        if let Ok(permit) = breaker.allow() {
            breaker.record(permit, Outcome::Failure, Duration::from_millis(1));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match breaker.allow() {
            Err(rejected) => {
                assert_eq!(rejected.reason, RejectReason::LocalOpen);
                break;
            }
            Ok(permit) => breaker.release_unused(permit),
        }
        assert!(Instant::now() < deadline, "the local breaker never opened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // phase: bring the cluster back; the SDK returns to cluster mode by itself
    for node in cluster.nodes.values_mut() {
        node.start();
    }
    cluster.wait_leader(ELECTION).await;
    wait_mode(&client, Mode::Cluster, Duration::from_secs(20)).await;
}
