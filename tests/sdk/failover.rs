//! The SDK's reports fail over: when the endpoint it reports to answers `UNAVAILABLE`, the next
//! report goes to the next endpoint, so a fleet whose first endpoint is down still reaches the
//! cluster. Probe permits (`AcquireProbe`, `ReleaseProbe`) follow the same endpoint as the
//! reports. An SDK whose reports land on the leader moves them to a follower.

use std::time::Duration;

use switchyard_proto::admin as apb;
use switchyard_proto::client as cpb;
use switchyard_sdk::{Client, Outcome};

use crate::support::{Cluster, admin, eventually, metric, scrape};
use crate::{ELECTION, REPORT_INTERVAL, policy};

/// An SDK client whose reports start on `first`, with `rest` as its other endpoints.
fn sdk(first: &str, rest: &str) -> Client {
    const INSTANCE: &str = "failover-instance";
    // Reports start on the endpoint the instance id picks: `first` is listed there.
    let mut endpoints: Vec<&str> = rest.split(',').collect();
    let at = switchyard_sdk::report_route::first_endpoint(INSTANCE, endpoints.len() + 1);
    endpoints.insert(at, first);
    Client::builder()
        .endpoints(endpoints)
        .instance_id(INSTANCE)
        .report_interval(REPORT_INTERVAL)
        .default_policy(policy())
        .build()
        .expect("sdk client")
}

/// Records `calls` successful calls on `key`.
fn record_calls(client: &Client, key: &str, calls: u32) {
    let breaker = client.breaker(key).expect("breaker");
    for _ in 0..calls {
        let permit = breaker.allow().expect("a closed breaker admits");
        breaker.record(permit, Outcome::Success, Duration::from_millis(1));
    }
}

/// Waits until the cluster behind `addr` has counted `calls` calls of `key` in its window.
async fn wait_counted(addr: &str, key: &str, calls: u64) {
    eventually(
        ELECTION,
        "the cluster counts the reported calls",
        || async {
            let reply = admin(addr)
                .await
                .get_breaker(apb::GetBreakerRequest {
                    key: key.into(),
                    local: false,
                })
                .await
                .ok()?;
            let counted = reply.into_inner().breaker?.window_calls;
            (counted >= calls).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_move_to_the_next_endpoint_when_the_first_node_is_killed() {
    // Goal: the SDK's first endpoint is a killed node (every call to it fails with
    // UNAVAILABLE); its reports still reach the cluster through the next endpoint.
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;
    let killed = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    cluster.nodes.get_mut(&killed).unwrap().kill();
    let killed_addr = cluster.nodes[&killed].grpc.clone();
    let rest = cluster.endpoints();

    // phase: the premise: the killed node answers UNAVAILABLE
    let refused = report_code(&killed_addr).await;
    assert_eq!(refused, Some(tonic::Code::Unavailable), "premise");

    // phase: calls recorded through an SDK that tries the killed node first
    let sdk = sdk(&killed_addr, &rest);
    let key = "payments/failover-killed";
    record_calls(&sdk, key, 25);
    wait_counted(&cluster.nodes[&leader].grpc, key, 25).await;
    assert!(
        sdk.metrics().report_failures.get() >= 1,
        "the first report went to the killed node and failed"
    );
}

/// Report RPCs node `http` has answered (its RPC duration histogram's count).
fn reports_answered(http: &str) -> u64 {
    metric(
        &scrape(http),
        "switchyard_rpc_duration_seconds_count",
        "Client/Report",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_leave_the_leader_for_a_follower() {
    // Goal: every node names itself and the leader in its Report answers, and an SDK whose
    // first endpoint is the leader sends its reports to a follower after the first answer.
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(ELECTION).await;

    // phase: the answers name the node that gave them and the leader
    for (&id, node) in &cluster.nodes {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.grpc))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let answer = cpb::client_client::ClientClient::new(channel)
            .report(cpb::ReportRequest {
                instance: format!("names-{id}"),
                deltas: vec![cpb::BreakerDelta {
                    key: "payments/names".into(),
                    calls: 1,
                    ..Default::default()
                }],
            })
            .await
            .expect("accepted")
            .into_inner();
        assert_eq!(
            (answer.node_id, answer.leader_id),
            (id, leader),
            "node {id}"
        );
    }

    // phase: an SDK listing the leader first reports through a follower
    let leader_node = &cluster.nodes[&leader];
    let followers: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|(id, _)| **id != leader)
        .map(|(_, n)| n.grpc.clone())
        .collect();
    let before = reports_answered(&leader_node.http);
    let sdk = sdk(&leader_node.grpc, &followers.join(","));
    let key = "payments/off-the-leader";
    for round in 1..=10u64 {
        record_calls(&sdk, key, 5);
        wait_counted(&leader_node.grpc, key, round * 5).await;
    }
    let answered_by_leader = reports_answered(&leader_node.http) - before;
    assert!(
        answered_by_leader <= 2,
        "the leader answered {answered_by_leader} of at least 10 reports"
    );
    assert_eq!(sdk.metrics().report_failures.get(), 0);
}

/// The code a one-delta report to `addr` fails with, on a fresh connection and with the SDK's
/// call timeout (`None`: it was accepted).
async fn report_code(addr: &str) -> Option<tonic::Code> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_millis(500))
        .connect_lazy();
    let mut call = tonic::Request::new(cpb::ReportRequest {
        instance: "premise-check".into(),
        deltas: vec![cpb::BreakerDelta {
            key: "payments/premise".into(),
            calls: 1,
            ..Default::default()
        }],
    });
    call.set_timeout(Duration::from_secs(1));
    let mut client = cpb::client_client::ClientClient::new(channel);
    client.report(call).await.err().map(|s| s.code())
}
