//! Crash safety: SIGKILL a node during heavy writes, 20 times in a row, rotating through the
//! nodes and hitting the leader every third round. Every acknowledged write must be readable,
//! linearizably, on every node at the end, and every restart must open its store cleanly.
//!
//! A write is a policy on a fresh key (`crash/w{n}` → `min_calls = n`): each key is written
//! once, so an acknowledged write has exactly one value to find.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::{BreakerKey, Policy, PolicyTarget};
use switchyard_proto::admin::{self as apb, admin_client::AdminClient};

use crate::support::{Cluster, channel, status};

const ROUNDS: u64 = 20;
const WRITERS: usize = 3;
const WAIT: Duration = Duration::from_secs(20);

fn write(n: u64) -> apb::PutPoliciesRequest {
    let target = PolicyTarget::Key(BreakerKey::parse(&format!("crash/w{n}")).unwrap());
    let policy = Policy {
        min_calls: n as u32 + 1,
        ..Policy::default()
    };
    apb::PutPoliciesRequest {
        policies: vec![apb::PolicyEntry::from((&target, &policy))],
        reason: String::new(),
    }
}

/// One writer: round-robin over the endpoints, recording every acknowledged write.
async fn writer(
    endpoints: Vec<String>,
    next: Arc<AtomicU64>,
    acked: Arc<Mutex<BTreeMap<String, u32>>>,
    stop: Arc<AtomicBool>,
) {
    let mut at = 0;
    while !stop.load(Ordering::Relaxed) {
        let addr = &endpoints[at % endpoints.len()];
        let Ok(ch) = channel(addr).await else {
            at += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let mut admin = AdminClient::new(ch);
        while !stop.load(Ordering::Relaxed) {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let mut request = tonic::Request::new(write(n));
            request.set_timeout(Duration::from_secs(3));
            match admin.put_policies(request).await {
                Ok(_) => {
                    acked
                        .lock()
                        .unwrap()
                        .insert(format!("crash/w{n}"), n as u32 + 1);
                }
                Err(_) => {
                    at += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    break;
                }
            }
        }
    }
}

async fn leader_of(cluster: &Cluster) -> Option<u64> {
    for node in cluster.nodes.values().filter(|n| n.child.is_some()) {
        if let Ok(s) = status(&node.grpc, true).await
            && s.leader_id == Some(s.node_id)
        {
            return Some(s.node_id);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_twenty_sigkills() {
    // Goal: 20 SIGKILLs mid-write (leader included); all acked writes survive everywhere.
    let started = Instant::now();
    let mut cluster = Cluster::start(3, &[]);
    cluster.wait_leader(WAIT).await;
    let endpoints: Vec<String> = cluster.nodes.values().map(|n| n.grpc.clone()).collect();
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let mut rotated = endpoints.clone();
            rotated.rotate_left(i);
            tokio::spawn(writer(rotated, next.clone(), acked.clone(), stop.clone()))
        })
        .collect();

    for round in 0..ROUNDS {
        // phase: let writes flow, then SIGKILL one node (the leader every third round)
        tokio::time::sleep(Duration::from_millis(250)).await;
        let victim = if round % 3 == 0 {
            leader_of(&cluster).await.unwrap_or(1)
        } else {
            round % 3 + 1
        };
        let before = acked.lock().unwrap().len();
        let node = cluster.nodes.get_mut(&victim).unwrap();
        node.kill();

        // phase: restart from the same data directory; it must open its store and serve
        node.start();
        let addr = node.grpc.clone();
        let up = tokio::time::timeout(WAIT, async {
            loop {
                if status(&addr, true).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let node = cluster.nodes.get_mut(&victim).unwrap();
        let exited = node
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        assert!(
            up.is_ok() && exited.is_none(),
            "round {round}: node {victim} did not come back (exit {exited:?}):\n{}",
            node.log()
        );
        println!(
            "round {round}: killed node {victim} with {before} writes acknowledged; back after restart"
        );
    }

    // phase: stop writing; every acknowledged write, on every node, read linearizably
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    cluster.wait_leader(WAIT).await;
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() as u64 >= ROUNDS * 5,
        "too few writes were acknowledged to mean anything: {}",
        acked.len()
    );
    for node in cluster.nodes.values() {
        let stored: BTreeMap<String, u32> =
            crate::support::eventually(WAIT, "a linearizable read", || {
                let addr = node.grpc.clone();
                async move {
                    let mut admin = AdminClient::new(channel(&addr).await.ok()?);
                    let policies = admin
                        .list_policies(apb::ListPoliciesRequest { local: false })
                        .await
                        .ok()?
                        .into_inner()
                        .policies;
                    Some(
                        policies
                            .into_iter()
                            .filter_map(|e| {
                                let key = match e.target?.target? {
                                    apb::policy_target::Target::Key(k) => k,
                                    apb::policy_target::Target::Scope(_) => return None,
                                };
                                Some((key, e.policy?.min_calls))
                            })
                            .collect(),
                    )
                }
            })
            .await;
        for (key, value) in &acked {
            assert_eq!(
                stored.get(key),
                Some(value),
                "node {}: acknowledged write {key} = {value} lost",
                node.id
            );
        }
        assert!(
            !node.log().contains("panicked"),
            "node {} panicked:\n{}",
            node.id,
            node.log()
        );
    }
    println!(
        "{} acknowledged writes survived {ROUNDS} SIGKILLs on every node in {:?}",
        acked.len(),
        started.elapsed()
    );
}
