//! A real three-node cluster: separate `switchyard serve` processes on loopback ports, sled
//! data directories, gRPC between them. Leader election, replication through any node, leader
//! loss, restart from disk, membership changes and snapshot catch-up; `bench fleet` on one
//! small row and `bench ingest --curve` on a tiny grid; trace context, request ids and span
//! export (`trace_export`).

#[path = "../support/mod.rs"]
mod support;

mod bench_fleet;
mod bench_ingest;
mod report_loss;
mod trace_export;

use std::time::Duration;

use futures::StreamExt;
use support::{Cluster, admin, client, eventually, status};
use switchyard_core::{Actor, BreakerKey, Command, Envelope, OverrideMode, Policy, PolicyTarget};
use switchyard_proto::admin as apb;
use switchyard_proto::client as pb;
use switchyard_proto::raft::{RaftMessage, raft_client::RaftClient};
use switchyard_server::forward::{ForwardReply, ForwardRequest};
use switchyard_store::codec;

const ELECTION: Duration = Duration::from_secs(15);

fn policy_entry(key: &str, min_calls: u32) -> apb::PolicyEntry {
    let target = PolicyTarget::Key(BreakerKey::parse(key).unwrap());
    let policy = Policy {
        min_calls,
        ..Policy::default()
    };
    apb::PolicyEntry::from((&target, &policy))
}

/// Makes the idempotent write `write` until no node answers UNAVAILABLE, for at most
/// `ELECTION`. On a loaded machine a leader just found can lose its term before the write
/// arrives; the node then knows no leader for a moment and says so.
async fn once_a_leader_is_known<T, F, Fut>(what: &str, mut write: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = std::time::Instant::now() + ELECTION;
    loop {
        match write().await {
            Ok(answer) => return answer,
            Err(status)
                if status.code() == tonic::Code::Unavailable
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{what}: {status:?}"),
        }
    }
}

async fn put_policy(addr: &str, key: &str, min_calls: u32) -> Result<u64, tonic::Status> {
    let mut admin = admin(addr).await;
    let request = apb::PutPoliciesRequest {
        policies: vec![policy_entry(key, min_calls)],
        reason: "test".into(),
    };
    Ok(admin.put_policies(request).await?.into_inner().index)
}

async fn read_min_calls(addr: &str, key: &str, local: bool) -> Option<u32> {
    let mut admin = support::try_admin(addr).await?;
    let target = PolicyTarget::Key(BreakerKey::parse(key).unwrap());
    let reply = admin
        .get_policy(apb::GetPolicyRequest {
            target: Some((&target).into()),
            local,
        })
        .await
        .ok()?
        .into_inner();
    if reply.source != apb::PolicySource::Key as i32 {
        return None;
    }
    reply.policy.map(|p| p.min_calls)
}

async fn force_open(addr: &str, key: &str) -> Result<u64, tonic::Status> {
    let mut admin = admin(addr).await;
    let request = apb::SetOverrideRequest {
        key: key.into(),
        mode: apb::OverrideMode::ForcedOpen as i32,
        reason: "test".into(),
        for_ms: None,
    };
    Ok(admin.set_override(request).await?.into_inner().index)
}

fn follower_of(cluster: &Cluster, leader: u64) -> u64 {
    *cluster
        .nodes
        .keys()
        .find(|id| **id != leader)
        .expect("a follower")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_one_leader_that_all_agree_on() {
    // Goal: a fresh 3-node cluster forms itself from --peers and agrees on one leader.
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    for node in cluster.nodes.values() {
        let seen = eventually(ELECTION, "every node to know the leader", || async {
            status(&node.grpc, true)
                .await
                .ok()
                .and_then(|s| s.leader_id)
        })
        .await;
        assert_eq!(seen, leader, "node {} disagrees about the leader", node.id);
        let s = status(&node.grpc, true).await.unwrap();
        assert_eq!(s.members.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_written_through_any_node_is_readable_on_all() {
    // Goal: writes through a follower are forwarded to the leader and committed; linearizable
    // reads on every node see them.
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let follower = follower_of(&cluster, leader);

    // phase: write through a follower and through the leader
    put_policy(&cluster.nodes[&follower].grpc, "payments/ml-fraud", 42)
        .await
        .unwrap();
    put_policy(&cluster.nodes[&leader].grpc, "payments/db", 7)
        .await
        .unwrap();

    // phase: every node answers a linearizable read with both
    for node in cluster.nodes.values() {
        assert_eq!(
            read_min_calls(&node.grpc, "payments/ml-fraud", false).await,
            Some(42),
            "node {}",
            node.id
        );
        assert_eq!(
            read_min_calls(&node.grpc, "payments/db", false).await,
            Some(7),
            "node {}",
            node.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sigkill_elects_a_new_leader_and_watches_keep_streaming() {
    // Goal: after SIGKILL of the leader a new leader accepts writes, and a Watch opened on a
    // surviving node keeps streaming decisions with increasing indexes.
    let mut cluster = Cluster::start(3, &[]);
    let old_leader = cluster.wait_leader(ELECTION).await;
    let watcher_node = follower_of(&cluster, old_leader);
    force_open(&cluster.nodes[&watcher_node].grpc, "payments/before")
        .await
        .unwrap();

    // phase: open a watch on a follower and read its snapshot
    let mut sdk = client(&cluster.nodes[&watcher_node].grpc).await;
    let mut stream = sdk
        .watch(pb::WatchRequest {
            scopes: vec!["payments".into()],
            known_index: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    let Some(pb::watch_event::Event::Snapshot(snapshot)) = first.event else {
        panic!("first watch event must be a snapshot, got {first:?}");
    };
    assert!(snapshot.breakers.iter().any(|b| b.key == "payments/before"));
    let first_index = first.applied_index;

    // phase: kill the leader
    cluster.nodes.get_mut(&old_leader).unwrap().kill();
    let new_leader = cluster.wait_leader(ELECTION).await;
    assert_ne!(new_leader, old_leader);

    // phase: a write through the new leader reaches the watcher
    eventually(ELECTION, "a write after failover", || async {
        force_open(&cluster.nodes[&new_leader].grpc, "payments/after")
            .await
            .ok()
    })
    .await;
    let mut last_index = first_index;
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = stream.next().await {
            let event = event.expect("stream stays healthy");
            assert!(
                event.applied_index >= last_index,
                "watch index went backwards"
            );
            last_index = event.applied_index;
            if let Some(pb::watch_event::Event::Breaker(b)) = &event.event
                && b.key == "payments/after"
            {
                assert_eq!(b.state, pb::BreakerState::ForcedOpen as i32);
                return event.applied_index;
            }
        }
        panic!("watch stream ended");
    })
    .await
    .expect("the surviving node's watch streams the new decision");
    assert!(
        seen > first_index,
        "event index {seen} is not above the snapshot's index {first_index}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_restarts_from_disk_and_loses_nothing_acknowledged() {
    // Goal: every acknowledged write survives a SIGKILL of a node and its restart from its
    // sled directory, including writes committed while it was down.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let victim = follower_of(&cluster, leader);

    // phase: writes before the kill
    for i in 0..20 {
        put_policy(
            &cluster.nodes[&leader].grpc,
            &format!("svc/before-{i}"),
            100 + i,
        )
        .await
        .unwrap();
    }
    // phase: SIGKILL a follower, keep writing
    cluster.nodes.get_mut(&victim).unwrap().kill();
    for i in 0..20 {
        put_policy(
            &cluster.nodes[&leader].grpc,
            &format!("svc/during-{i}"),
            200 + i,
        )
        .await
        .unwrap();
    }
    // phase: restart it from its data dir; its own (local) state must catch up with everything
    cluster.nodes.get_mut(&victim).unwrap().start();
    let addr = cluster.nodes[&victim].grpc.clone();
    for i in 0..20 {
        for (prefix, base) in [("before", 100), ("during", 200)] {
            let key = format!("svc/{prefix}-{i}");
            let got = eventually(ELECTION, &key, || async {
                read_min_calls(&addr, &key, true).await
            })
            .await;
            assert_eq!(got, base + i, "{key}");
        }
    }
    // phase: and the leader too, after a SIGKILL of the whole cluster
    for node in cluster.nodes.values_mut() {
        node.kill();
    }
    for node in cluster.nodes.values_mut() {
        node.start();
    }
    cluster.wait_leader(ELECTION).await;
    for node in cluster.nodes.values() {
        // A node that has not yet heard from the new leader refuses a linearizable read
        // (Unavailable); retry until it can serve one.
        let got = eventually(
            ELECTION,
            "a linearizable read after a full restart",
            || async { read_min_calls(&node.grpc, "svc/during-19", false).await },
        )
        .await;
        assert_eq!(got, 219, "node {}", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_stops_receiving_entries() {
    // Goal: after `members remove`, the removed node's applied index stops moving while the
    // remaining two keep committing.
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let removed = follower_of(&cluster, leader);
    let mut admin_client = admin(&cluster.nodes[&leader].grpc).await;
    admin_client
        .remove_member(apb::RemoveMemberRequest { node_id: removed })
        .await
        .expect("remove member");
    let members = status(&cluster.nodes[&leader].grpc, false)
        .await
        .unwrap()
        .members;
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m.node_id != removed));

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = status(&cluster.nodes[&removed].grpc, true)
        .await
        .unwrap()
        .applied_index;
    for i in 0..10 {
        put_policy(
            &cluster.nodes[&leader].grpc,
            &format!("svc/after-remove-{i}"),
            5,
        )
        .await
        .unwrap();
    }
    let leader_applied = status(&cluster.nodes[&leader].grpc, true)
        .await
        .unwrap()
        .applied_index;
    assert!(leader_applied >= before + 10);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = status(&cluster.nodes[&removed].grpc, true)
        .await
        .unwrap()
        .applied_index;
    assert_eq!(after, before, "the removed node kept applying entries");
    assert_eq!(
        read_min_calls(&cluster.nodes[&removed].grpc, "svc/after-remove-9", true).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_learner_catches_up_through_a_snapshot() {
    // Goal: with the log purged behind a snapshot, a new learner can only catch up by
    // receiving the snapshot; it then serves the same state, and can be promoted.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("node.toml");
    std::fs::write(
        &config,
        "snapshot_every_entries = 20\nlog_entries_kept_after_snapshot = 0\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let snapshot_args = ["--config", config.as_str()];
    let mut cluster = Cluster::start(3, &snapshot_args);
    let leader = cluster.wait_leader(ELECTION).await;
    let leader_addr = cluster.nodes[&leader].grpc.clone();
    for i in 0..60 {
        put_policy(&leader_addr, &format!("svc/p-{i}"), 1000 + i)
            .await
            .unwrap();
    }
    // The first snapshot is due after 20 entries; later ones wait until the log has caught
    // up with the state (whose audit trail grows faster than the log here).
    eventually(ELECTION, "the leader to snapshot and purge", || async {
        let s = status(&leader_addr, true).await.ok()?;
        (s.snapshot_index.unwrap_or(0) >= 20).then_some(())
    })
    .await;

    // phase: a fresh node joins as a learner
    let learner_addr = cluster.spawn_joiner(4, &snapshot_args);
    let mut admin_client = admin(&leader_addr).await;
    admin_client
        .add_learner(apb::AddLearnerRequest {
            node_id: 4,
            addr: learner_addr.clone(),
        })
        .await
        .expect("add learner");
    let target = status(&leader_addr, true).await.unwrap().applied_index;
    eventually(ELECTION, "the learner to catch up", || async {
        let s = status(&learner_addr, true).await.ok()?;
        (s.applied_index >= target).then_some(())
    })
    .await;
    let s = status(&learner_addr, true).await.unwrap();
    assert!(
        s.snapshot_index.is_some(),
        "the learner should hold an installed snapshot: {s:?}"
    );
    for i in [0u32, 30, 59] {
        let key = format!("svc/p-{i}");
        assert_eq!(
            read_min_calls(&learner_addr, &key, true).await,
            Some(1000 + i),
            "{key}"
        );
    }

    // phase: promote it; the cluster now has 4 voters
    admin_client
        .promote_member(apb::PromoteMemberRequest { node_id: 4 })
        .await
        .expect("promote");
    let members = status(&leader_addr, false).await.unwrap().members;
    assert_eq!(
        members
            .iter()
            .filter(|m| m.role == apb::MemberRole::Voter as i32)
            .count(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_transitions_happen_with_no_traffic_at_all() {
    // Goal: OPEN -> HALF_OPEN and override expiry are written by the leader's tick on its own,
    // with no report, probe or admin call arriving.
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let addr = cluster.nodes[&leader].grpc.clone();
    let key = "payments/timed";
    let target = PolicyTarget::Key(BreakerKey::parse(key).unwrap());
    let policy = Policy {
        min_calls: 4,
        min_instances: 2,
        open_duration_ms: 1_000,
        open_jitter_percent: 0,
        ..Policy::default()
    };
    let entry = apb::PolicyEntry::from((&target, &policy));
    once_a_leader_is_known("the policy write", || async {
        admin(&addr)
            .await
            .put_policies(apb::PutPoliciesRequest {
                policies: vec![entry.clone()],
                reason: "test".into(),
            })
            .await
    })
    .await;

    // phase: two instances report failures; the breaker trips
    let mut sdk = client(&addr).await;
    for instance in ["i-1", "i-2"] {
        sdk.report(pb::ReportRequest {
            instance: instance.into(),
            deltas: vec![pb::BreakerDelta {
                key: key.into(),
                calls: 5,
                failures: 5,
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    }
    let state = |admin_addr: String| async move {
        let mut admin = support::try_admin(&admin_addr).await?;
        let info = admin
            .get_breaker(apb::GetBreakerRequest {
                key: key.into(),
                local: false,
            })
            .await
            .ok()?
            .into_inner();
        info.breaker?.decision.map(|d| d.state)
    };
    eventually(ELECTION, "the breaker to open", || async {
        (state(addr.clone()).await? == pb::BreakerState::Open as i32).then_some(())
    })
    .await;

    // phase: nobody calls anything; the breaker moves to HALF_OPEN by itself
    eventually(
        Duration::from_secs(5),
        "HALF_OPEN without traffic",
        || async {
            (state(addr.clone()).await? == pb::BreakerState::HalfOpen as i32).then_some(())
        },
    )
    .await;

    // phase: an override with an expiry ends by itself
    once_a_leader_is_known("the override", || async {
        admin(&addr)
            .await
            .set_override(apb::SetOverrideRequest {
                key: key.into(),
                mode: apb::OverrideMode::ForcedOpen as i32,
                reason: "maintenance".into(),
                for_ms: Some(1_000),
            })
            .await
    })
    .await;
    assert_eq!(
        state(addr.clone()).await,
        Some(pb::BreakerState::ForcedOpen as i32)
    );
    eventually(Duration::from_secs(5), "the override to expire", || async {
        (state(addr.clone()).await? == pb::BreakerState::Closed as i32).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_a_node_down_cleanly_and_it_restarts() {
    // Goal: SIGTERM finishes in-flight work, exits 0 and leaves a store that opens again.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    put_policy(&cluster.nodes[&leader].grpc, "svc/kept", 77)
        .await
        .unwrap();
    // phase: an SDK is watching this node; its stream must not hold the shutdown up
    let mut sdk = client(&cluster.nodes[&leader].grpc).await;
    let mut stream = sdk
        .watch(pb::WatchRequest {
            scopes: vec![],
            known_index: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        stream.next().await.is_some(),
        "the watch delivers its snapshot"
    );
    let node = cluster.nodes.get_mut(&leader).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        node.terminate(),
        Some(0),
        "exit status after SIGTERM; log:\n{}",
        node.log()
    );
    let took = started.elapsed();
    println!("SIGTERM with an open watch: exited in {took:?}");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    // The watcher sees its stream end (and would reconnect to another node).
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the watch stream did not end with the node");
    node.start();
    let addr = node.grpc.clone();
    let got = eventually(ELECTION, "the restarted node to serve", || async {
        read_min_calls(&addr, "svc/kept", true).await
    })
    .await;
    assert_eq!(got, 77);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_leader_hands_leadership_over_before_it_exits() {
    // Goal: a leader stopped with SIGTERM transfers leadership before exiting, so by the time
    // its process is gone the survivors already follow a new leader (without a transfer they
    // would still honour the old leader's lease, then run an election).
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    put_policy(&cluster.nodes[&leader].grpc, "svc/before-handover", 5)
        .await
        .unwrap();
    let node = cluster.nodes.get_mut(&leader).unwrap();
    assert_eq!(node.terminate(), Some(0), "log:\n{}", node.log());
    assert!(
        node.log()
            .contains("handed leadership over before stopping"),
        "log:\n{}",
        node.log()
    );
    let mut views = Vec::new();
    for (id, n) in cluster.nodes.iter().filter(|(id, _)| **id != leader) {
        let s = status(&n.grpc, true).await.unwrap();
        views.push((*id, s.leader_id));
    }
    let new_leader = views[0].1;
    assert!(
        new_leader.is_some() && new_leader != Some(leader),
        "the survivors should already follow a new leader: {views:?}"
    );
    assert!(
        views.iter().all(|(_, l)| *l == new_leader),
        "the survivors disagree: {views:?}"
    );
    let new_leader_addr = cluster.nodes[&new_leader.unwrap()].grpc.clone();
    put_policy(&new_leader_addr, "svc/after-handover", 6)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_its_disk_rejoins_with_join_and_initializes_nothing() {
    // Goal: node 1 (the one that formed the cluster from `--peers`) loses its disk. Restarted
    // empty with `--join` and the same `--peers`, it must not form a cluster of its own: it
    // holds no membership and no log until the cluster adds it back, then catches up.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let leader_addr = cluster.nodes[&leader].grpc.clone();
    put_policy(&leader_addr, "svc/before-loss", 41)
        .await
        .unwrap();

    // phase: node 1 is removed from the membership, killed and its data directory wiped
    let survivor = if leader == 1 { 2 } else { leader };
    let survivor_addr = cluster.nodes[&survivor].grpc.clone();
    let admin_client = admin(&survivor_addr).await;
    eventually(ELECTION, "node 1 to be removed", || {
        let mut admin_client = admin_client.clone();
        async move {
            admin_client
                .remove_member(apb::RemoveMemberRequest { node_id: 1 })
                .await
                .ok()
        }
    })
    .await;
    let node1 = cluster.nodes.get_mut(&1).unwrap();
    node1.kill();
    std::fs::remove_dir_all(&node1.data_dir).unwrap();
    let new_leader = cluster.wait_leader(ELECTION).await;
    assert_ne!(new_leader, 1);
    let leader_addr = cluster.nodes[&new_leader].grpc.clone();
    once_a_leader_is_known("the write while node 1 is away", || {
        put_policy(&leader_addr, "svc/while-away", 42)
    })
    .await;

    // phase: restarted empty with --join, it waits: no membership, no log, no leadership
    let node1 = cluster.nodes.get_mut(&1).unwrap();
    node1.extra_args.push("--join".into());
    node1.start();
    let node1_addr = node1.grpc.clone();
    let waiting = eventually(ELECTION, "node 1 to serve its status", || async {
        status(&node1_addr, true).await.ok()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting_later = status(&node1_addr, true).await.unwrap();
    for s in [&waiting, &waiting_later] {
        assert!(
            s.members.is_empty(),
            "a --join node formed a membership of its own: {s:?}"
        );
        assert_eq!(s.last_log_index, 0, "a --join node wrote a log: {s:?}");
        assert_ne!(s.leader_id, Some(1), "{s:?}");
    }
    assert_eq!(cluster.wait_leader(ELECTION).await, new_leader);

    // phase: added back as a learner and promoted, it catches up with everything
    let mut admin_client = admin(&leader_addr).await;
    admin_client
        .add_learner(apb::AddLearnerRequest {
            node_id: 1,
            addr: node1_addr.clone(),
        })
        .await
        .expect("add learner");
    admin_client
        .promote_member(apb::PromoteMemberRequest { node_id: 1 })
        .await
        .expect("promote");
    put_policy(&leader_addr, "svc/after-rejoin", 43)
        .await
        .unwrap();
    let target = status(&leader_addr, true).await.unwrap().applied_index;
    eventually(ELECTION, "node 1 to catch up", || async {
        let s = status(&node1_addr, true).await.ok()?;
        (s.applied_index >= target).then_some(())
    })
    .await;
    for (key, min_calls) in [
        ("svc/before-loss", 41),
        ("svc/while-away", 42),
        ("svc/after-rejoin", 43),
    ] {
        assert_eq!(
            read_min_calls(&node1_addr, key, true).await,
            Some(min_calls),
            "{key} on the rejoined node"
        );
    }
    let members = status(&leader_addr, false).await.unwrap().members;
    assert_eq!(
        members
            .iter()
            .filter(|m| m.role == apb::MemberRole::Voter as i32)
            .count(),
        3,
        "{members:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_node_that_knows_no_leader_yet_waits_for_one() {
    // Goal: a node that knows no leader (here a fresh `--join` node, as after a restart or
    // during an election) holds a write until it learns the leader, then forwards it, instead
    // of refusing it at once with "no leader is known".
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let leader_addr = cluster.nodes[&leader].grpc.clone();
    let joiner_addr = cluster.spawn_joiner(4, &[]);
    eventually(
        ELECTION,
        "the joiner to answer, knowing no leader",
        || async {
            let s = status(&joiner_addr, true).await.ok()?;
            s.leader_id.is_none().then_some(())
        },
    )
    .await;

    // phase: a write sent to it now waits; adding it as a learner tells it the leader
    let write = tokio::spawn({
        let addr = joiner_addr.clone();
        async move { put_policy(&addr, "svc/through-joiner", 11).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    admin(&leader_addr)
        .await
        .add_learner(apb::AddLearnerRequest {
            node_id: 4,
            addr: joiner_addr.clone(),
        })
        .await
        .expect("add learner");
    let written = write.await.unwrap();
    assert!(
        written.is_ok(),
        "the write was refused instead of waiting for the leader: {written:?}"
    );
    assert_eq!(
        read_min_calls(&leader_addr, "svc/through-joiner", false).await,
        Some(11)
    );
}

/// Sends a `Forward` of a write to `addr` as a follower would, with the caller's deadline at
/// `deadline_unix_ms`; returns the leader's reply.
async fn forward_write(addr: &str, key: &str, deadline_unix_ms: u64) -> ForwardReply {
    let envelope = Envelope {
        actor: Actor::Operator("test".into()),
        command: Command::SetOverride {
            key: key.parse().unwrap(),
            mode: OverrideMode::ForcedOpen,
            reason: "deadline test".into(),
            expires_at_ms: None,
        },
        trace: None,
    };
    let mut call = tonic::Request::new(RaftMessage {
        payload: codec::encode(&ForwardRequest::Write(envelope)),
    });
    call.metadata_mut().insert(
        switchyard_server::deadline::DEADLINE_HEADER,
        deadline_unix_ms.into(),
    );
    let channel = support::channel(addr).await.unwrap();
    let reply = RaftClient::new(channel).forward(call).await.unwrap();
    codec::decode("forward reply", &reply.into_inner().payload).unwrap()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_write_that_reaches_the_leader_after_its_deadline_is_never_proposed() {
    // Goal: a write held up on the way (a stuck connection during a partition delivers it
    // seconds late) is refused by the leader unproposed once its caller's deadline has
    // passed; the same write within its deadline commits.
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let leader_addr = cluster.nodes[&leader].grpc.clone();
    let before = status(&leader_addr, false).await.unwrap();

    // phase: the caller gave up a second ago
    let late = forward_write(&leader_addr, "svc/late", unix_ms() - 1_000).await;
    match &late {
        ForwardReply::Failed { code, message } => {
            assert_eq!(
                tonic::Code::from(*code),
                tonic::Code::DeadlineExceeded,
                "{message}"
            );
            assert!(message.contains("nothing was proposed"), "{message}");
        }
        other => panic!("a write past its deadline was not refused: {other:?}"),
    }
    let after = status(&leader_addr, false).await.unwrap();
    assert_eq!(
        after.last_log_index, before.last_log_index,
        "the refused write reached the log"
    );

    // phase: the same write with time left commits
    let in_time = forward_write(&leader_addr, "svc/in-time", unix_ms() + 5_000).await;
    assert!(
        matches!(in_time, ForwardReply::Written(_)),
        "a write within its deadline was refused: {in_time:?}"
    );
    let after = status(&leader_addr, false).await.unwrap();
    assert!(after.last_log_index > before.last_log_index);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_hop_to_the_leader_reaches_the_client_as_unavailable_naming_the_hop() {
    // Goal: a follower that cannot reach the leader it knows answers UNAVAILABLE (which
    // clients retry elsewhere) with a message that names the hop, not a transport error code.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let follower = follower_of(&cluster, leader);
    let follower_addr = cluster.nodes[&follower].grpc.clone();
    // A connection to the follower first, so the write goes out right after the kill.
    let mut admin_client = admin(&follower_addr).await;

    // phase: the leader dies; the follower still believes in it for an election timeout
    cluster.nodes.get_mut(&leader).unwrap().kill();
    let mut request = tonic::Request::new(apb::SetOverrideRequest {
        key: "svc/hop".into(),
        mode: apb::OverrideMode::ForcedOpen as i32,
        reason: "hop test".into(),
        for_ms: None,
    });
    request.set_timeout(Duration::from_secs(5));
    let answer = admin_client.set_override(request).await;
    let status = answer.expect_err("no node could have committed the write yet");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    // On a loaded machine the follower's election timer can fire before the write arrives;
    // it then knows no leader and says so (still UNAVAILABLE). Otherwise the hop is named.
    assert!(
        status
            .message()
            .contains(&format!("hop from node {follower} to node {leader}"))
            || status.message().contains("no leader is known"),
        "{status:?}"
    );
    assert!(
        status
            .message()
            .contains(&format!("hop from node {follower} to node {leader}")),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_heartbeats_carry_the_applied_index_even_when_nothing_watched_changed() {
    // Goal: a stream following one scope stamps its heartbeats with the node's applied index,
    // also after writes that change nothing it follows (they used to repeat the last index
    // the stream had sent, seconds behind `Status`).
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let leader_addr = cluster.nodes[&leader].grpc.clone();
    force_open(&leader_addr, "payments/watched").await.unwrap();
    let watcher = follower_of(&cluster, leader);
    let mut sdk = client(&cluster.nodes[&watcher].grpc).await;
    let mut stream = sdk
        .watch(pb::WatchRequest {
            scopes: vec!["payments".into()],
            known_index: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert!(matches!(
        first.event,
        Some(pb::watch_event::Event::Snapshot(_))
    ));

    // phase: writes to a scope the stream does not follow
    let mut last = 0;
    for i in 0..3 {
        last = force_open(&leader_addr, &format!("search/unwatched-{i}"))
            .await
            .unwrap();
    }
    assert!(last > first.applied_index);

    // phase: the next heartbeats reach the index of those writes
    let reached = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(event)) = stream.next().await {
            if let Some(pb::watch_event::Event::Heartbeat(_)) = event.event
                && event.applied_index >= last
            {
                return event.applied_index;
            }
        }
        0
    })
    .await;
    assert!(
        matches!(reached, Ok(index) if index >= last),
        "no heartbeat stamped with index {last} or later within 5 s: {reached:?}"
    );
}
