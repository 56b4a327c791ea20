//! The SDK against a real three-node cluster: fleet-wide trips, fail-static behaviour with the
//! whole cluster gone, and the return to cluster mode; the fleet retry budget and its fall back
//! to per-process budgets; watch streams that keep the SDK in cluster mode under load; reports
//! that fail over to the next endpoint (`failover`).

#[path = "../support/mod.rs"]
mod support;

mod backpressure;
mod failover;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::{Cluster, admin, eventually};
use switchyard_core::{BreakerKey, Policy, PolicyTarget};
use switchyard_proto::admin as apb;
use switchyard_sdk::{
    Backoff, CallError, Client, Guard, Mode, Outcome, RejectReason, RetryBudgetOptions,
    RetryBudgetSource,
};

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

/// A policy that never trips (min_calls out of reach): the retry tests want failures to be
/// retried, not rejected by an open breaker, in cluster mode and in local-only mode alike.
fn never_trips() -> Policy {
    Policy {
        min_calls: 1_000_000,
        ..Policy::default()
    }
}

/// Retries allowed per instance by the budget options below: 10/s × 10 s = 100, plus 20 %.
const RETRY_FLOOR: u64 = 100;
const RETRY_PERCENT: u64 = 20;

fn retry_options() -> RetryBudgetOptions {
    RetryBudgetOptions {
        ttl: Duration::from_secs(10),
        min_retries_per_sec: 10,
        retry_percent: RETRY_PERCENT as u32,
    }
}

/// Runs `calls` failing guarded calls, `pace` apart; returns (first attempts, retries) made.
async fn failing_calls(guard: &Guard, calls: u64, pace: Duration) -> (u64, u64) {
    let attempts = AtomicU64::new(0);
    for _ in 0..calls {
        let result = guard
            .call(|| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>("dependency down")
            })
            .await;
        assert!(
            matches!(result, Err(CallError::Failed(_))),
            "a failure, not a rejection: {result:?}"
        );
        tokio::time::sleep(pace).await;
    }
    let attempts = attempts.load(Ordering::Relaxed);
    (calls, attempts - calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_shares_one_retry_budget_and_falls_back_to_per_process_budgets() {
    // Goal: five instances retrying failures on one breaker, each far within its own budget,
    // together stay within the fleet budget (one floor plus 20 % of the fleet's first
    // attempts) instead of five floors; with the cluster gone each has its own budget again.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let key = "payments/retry-budget";
    let target = PolicyTarget::Key(BreakerKey::parse(key).unwrap());
    admin(&cluster.nodes[&leader].grpc)
        .await
        .put_policies(apb::PutPoliciesRequest {
            policies: vec![apb::PolicyEntry::from((&target, &never_trips()))],
            reason: "retry budget test".into(),
        })
        .await
        .expect("put policy");
    let clients: Vec<Client> = (0..5)
        .map(|i| {
            Client::builder()
                .endpoints(cluster.endpoints().split(','))
                .instance_id(format!("retry-instance-{i}"))
                .report_interval(REPORT_INTERVAL)
                .stale_after(Duration::from_secs(1))
                .fallback_after(Duration::from_secs(2))
                .default_policy(never_trips())
                .build()
                .expect("sdk client")
        })
        .collect();
    for c in &clients {
        wait_mode(c, Mode::Cluster, ELECTION).await;
    }
    let guards: Vec<Guard> = clients
        .iter()
        .map(|c| {
            let retry = c
                .retry(4, c.retry_budget(retry_options()))
                .with_backoff(Backoff {
                    base: Duration::from_millis(1),
                    max: Duration::from_millis(4),
                });
            Guard::new(c.breaker(key).unwrap()).retry(retry)
        })
        .collect();

    // phase: a few successful calls from every instance bring the fleet figures into force
    let warm_up_started = Instant::now();
    for g in &guards {
        for _ in 0..5 {
            g.call(|| async { Ok::<_, ()>(()) })
                .await
                .expect("succeeds");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while guards
        .iter()
        .any(|g| g.breaker().retry_budget_source() != RetryBudgetSource::Fleet)
    {
        assert!(
            Instant::now() < deadline,
            "the fleet budget never came into force"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // phase: every instance fails 100 calls in 2 s, each wanting up to 3 retries
    let storm = futures::future::join_all(
        guards
            .iter()
            .map(|g| failing_calls(g, 100, Duration::from_millis(20))),
    )
    .await;
    let storm_ended = Instant::now();
    let first_attempts: u64 = 5 * 5 + storm.iter().map(|(f, _)| f).sum::<u64>();
    let retries: Vec<u64> = storm.iter().map(|(_, r)| *r).collect();
    let total: u64 = retries.iter().sum();
    let fleet_bound = RETRY_FLOOR + RETRY_PERCENT * first_attempts / 100;
    let local_bound = 5 * RETRY_FLOOR + RETRY_PERCENT * first_attempts / 100;
    println!(
        "fleet: {total} retries for {first_attempts} first attempts (per instance {retries:?}); \
         fleet budget {fleet_bound}, five per-process budgets {local_bound}"
    );
    assert!(
        warm_up_started.elapsed() < Duration::from_secs(9),
        "the storm must fit in one 10 s window"
    );
    // The figures come back a report, a tick and a push late: a little slack for that.
    assert!(
        total <= fleet_bound + fleet_bound / 5,
        "the fleet retried {total} times, over its budget of {fleet_bound}"
    );
    assert!(
        total >= RETRY_FLOOR / 2,
        "the fleet budget was not used: {total} retries"
    );
    assert!(
        retries.iter().all(|&r| r > 0 && r < RETRY_FLOOR),
        "every instance retried, each far within its own budget: {retries:?}"
    );
    let metrics = clients[0].metrics().encode_text();
    assert!(
        metrics.contains(
            "switchyard_sdk_retry_budget_source{key=\"payments/retry-budget\",source=\"fleet\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "switchyard_sdk_retries_denied_total{key=\"payments/retry-budget\",source=\"fleet\"}"
    ));
    // the operator sees the figures too, once the last reports have been ticked in (a
    // report interval, a tick and a read: poll rather than race them on a loaded machine)
    let leader_addr = cluster.nodes[&leader].grpc.clone();
    let figures = eventually(
        Duration::from_secs(5),
        "the cluster's retry figures",
        || {
            let leader_addr = leader_addr.clone();
            async move {
                let info = admin(&leader_addr)
                    .await
                    .get_breaker(apb::GetBreakerRequest {
                        key: key.into(),
                        local: false,
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .breaker?;
                let figures = info.decision?.fleet_retries?;
                println!("cluster view: {figures:?}");
                (figures.instances == 5
                    && figures.first_attempts >= first_attempts - 50
                    && figures.retries >= total / 2)
                    .then_some(figures)
            }
        },
    )
    .await;
    assert_eq!(figures.instances, 5);

    // phase: the whole cluster goes away: every instance falls back to its own budget
    for node in cluster.nodes.values_mut() {
        node.kill();
    }
    for (c, g) in clients.iter().zip(&guards) {
        wait_mode(c, Mode::LocalOnly, Duration::from_secs(10)).await;
        assert_eq!(g.breaker().retry_budget_source(), RetryBudgetSource::Local);
    }
    // Let the storm leave the per-process windows, so each budget is the full floor again.
    let window_clear = storm_ended + Duration::from_millis(10_500);
    tokio::time::sleep_until(window_clear.into()).await;
    let storm = futures::future::join_all(
        guards
            .iter()
            .map(|g| failing_calls(g, 50, Duration::from_millis(5))),
    )
    .await;
    let retries: Vec<u64> = storm.iter().map(|(_, r)| *r).collect();
    let total: u64 = retries.iter().sum();
    let per_process = RETRY_FLOOR + RETRY_PERCENT * 50 / 100;
    println!("local-only: {total} retries (per instance {retries:?}), {per_process} each allowed");
    assert!(
        retries.iter().all(|&r| r.abs_diff(per_process) <= 2),
        "each instance gets its own per-process budget: {retries:?}, expected {per_process}"
    );
    assert!(total > 2 * (RETRY_FLOOR + RETRY_PERCENT * 250 / 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporting_sdk_stays_in_cluster_mode_on_a_busy_cluster() {
    // Goal: ticks that change nothing a watch stream follows must not silence the stream:
    // an SDK reporting steadily (so the leader writes a tick every 100 ms) with the short
    // stale_after/fallback_after of the example keeps hearing from the cluster and stays in
    // cluster mode (it used to fall to local_only between watch reconnects while reporting).
    let cluster = Cluster::start(3, &[]);
    cluster.wait_leader(ELECTION).await;
    let client = Client::builder()
        .endpoints(cluster.endpoints().split(','))
        .instance_id("busy-reporter")
        .report_interval(REPORT_INTERVAL)
        .stale_after(Duration::from_secs(2))
        .fallback_after(Duration::from_secs(3))
        .build()
        .expect("sdk client");
    wait_mode(&client, Mode::Cluster, ELECTION).await;
    let breaker = client.breaker("payments/busy").unwrap();

    // phase: 8 s of steady calls, longer than the watch idle timeout (5 s)
    let started = Instant::now();
    let sent_before = client.stats().reports_sent;
    // A first connection attempt that failed while the cluster was starting is not the point.
    let reconnects_before = client.stats().watch_reconnects;
    let mut modes = vec![client.mode()];
    while started.elapsed() < Duration::from_secs(8) {
        let permit = breaker.allow().expect("closed");
        breaker.record(permit, Outcome::Success, Duration::from_millis(2));
        if modes.last() != Some(&client.mode()) {
            modes.push(client.mode());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = client.stats();
    assert!(
        stats.reports_sent > sent_before + 40,
        "the SDK kept reporting: {stats:?}"
    );
    assert_eq!(modes, vec![Mode::Cluster], "modes seen while reporting");
    assert_eq!(
        stats.watch_reconnects, reconnects_before,
        "the stream was never idle: {stats:?}"
    );
}
