//! Acknowledged reports reach the state machine across a leader change: the leader is frozen
//! (SIGSTOP) with reports in its tick buffer, a follower acknowledges more while the leader
//! cannot be reached, a new leader is elected and the old one resumes. Every acknowledged call
//! must be applied, or be counted by the one counter that says its tick's fate is unknown.

use std::process::Command;
use std::time::Duration;

use switchyard_proto::client as pb;

use crate::support::{Cluster, client, eventually, metric, status, try_scrape};

const KEY: &str = "evidence/loss";
const CALLS: u64 = 3;

fn report(instance: &str) -> pb::ReportRequest {
    pb::ReportRequest {
        instance: instance.into(),
        deltas: vec![pb::BreakerDelta {
            key: KEY.into(),
            calls: CALLS,
            failures: 1,
            ..Default::default()
        }],
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_acknowledged_around_a_leader_change_all_reach_the_state_machine() {
    // A 2 s tick keeps the leader's reports in its buffer long enough to freeze it with them.
    let cluster = Cluster::start_with_env(3, &[], &[("SWITCHYARD_TICK_INTERVAL_MS", "2000")]);
    let old_leader = cluster.wait_leader(Duration::from_secs(15)).await;
    let followers: Vec<u64> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|id| *id != old_leader)
        .collect();
    let via = followers[0];

    // phase: reports acknowledged by the leader, then the leader freezes before its tick
    let mut acked = 0u64;
    let mut sdk = client(&cluster.nodes[&old_leader].grpc).await;
    for i in 0..5 {
        sdk.report(report(&format!("at-leader-{i}"))).await.unwrap();
        acked += CALLS;
    }
    let pid = |id: u64| cluster.nodes[&id].child.as_ref().unwrap().id();
    let other = followers[1];
    signal(pid(old_leader), "STOP");
    signal(pid(other), "STOP");

    // phase: a follower acknowledges reports while no leader answers it (and none can be
    // elected), and keeps them across failed forwards
    let mut sdk = client(&cluster.nodes[&via].grpc).await;
    for i in 0..5 {
        sdk.report(report(&format!("at-follower-{i}")))
            .await
            .unwrap();
        acked += CALLS;
    }
    let via_http = cluster.nodes[&via].http.clone();
    eventually(Duration::from_secs(30), "a failed forward kept", || {
        let via_http = via_http.clone();
        async move {
            let m = try_scrape(&via_http)?;
            (metric(&m, "switchyard_report_deltas_forward_retried_total", "") > 0).then_some(())
        }
    })
    .await;

    // phase: the two followers elect a new leader; the old one resumes and learns it is
    // deposed
    signal(pid(other), "CONT");
    let new_leader = eventually(Duration::from_secs(20), "a new leader", || async {
        let s = tokio::time::timeout(
            Duration::from_secs(2),
            status(&cluster.nodes[&via].grpc, true),
        )
        .await
        .ok()?
        .ok()?;
        s.leader_id.filter(|l| *l != old_leader)
    })
    .await;
    signal(pid(old_leader), "CONT");

    // phase: every acknowledged call is applied (or counted as in a tick of unknown fate)
    let http: Vec<String> = cluster.nodes.values().map(|n| n.http.clone()).collect();
    let leader_http = cluster.nodes[&new_leader].http.clone();
    let (applied, lost) = eventually(
        Duration::from_secs(40),
        "acknowledged calls applied",
        || {
            let http = http.clone();
            let leader_http = leader_http.clone();
            async move {
                let applied = metric(
                    &try_scrape(&leader_http)?,
                    "switchyard_breaker_sla_calls",
                    &format!("key=\"{KEY}\""),
                );
                let mut lost_deltas = 0;
                for h in &http {
                    lost_deltas += metric(
                        &try_scrape(h)?,
                        "switchyard_report_deltas_lost_in_tick_total",
                        "",
                    );
                }
                // One delta per report (every instance is distinct): a lost delta is CALLS calls.
                (applied + lost_deltas * CALLS == acked).then_some((applied, lost_deltas * CALLS))
            }
        },
    )
    .await;
    let handed_over = metric(
        &try_scrape(&cluster.nodes[&old_leader].http).unwrap_or_default(),
        "switchyard_report_deltas_handed_over_total",
        "",
    );
    eprintln!(
        "applied {applied} of {acked} acknowledged calls ({lost} in a tick of unknown fate); \
         {handed_over} deltas handed over by the old leader"
    );
    assert!(applied > 0, "applied {applied}, lost {lost}, acked {acked}");
}
