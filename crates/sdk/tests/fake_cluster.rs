//! Goal: the agent's real I/O loops against an in-process fake of the `Client` service:
//! decisions arrive over Watch, reports go out, and losing the cluster walks the modes
//! Cluster → Stale → LocalOnly → Cluster (time driven by a manual clock); probe permits move
//! to the next endpoint when one answers `UNAVAILABLE`, without waiting for a report to fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_proto::client as pb;
use switchyard_proto::client::client_server::{Client as ClientService, ClientServer};
use switchyard_sdk::clock::ManualClock;
use switchyard_sdk::{Backoff, Client, ClientOptions, Mode, Outcome, RejectReason};
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status};

/// How a fake answers `AcquireProbe` and `ReleaseProbe`.
#[derive(Default, Clone, Copy)]
enum Probes {
    #[default]
    Unimplemented,
    /// As a node whose hop to the leader failed.
    Unavailable,
    Grant,
}

#[derive(Default)]
struct FakeState {
    up: bool,
    snapshot: Option<pb::WatchEvent>,
    streams: Vec<mpsc::Sender<Result<pb::WatchEvent, Status>>>,
    reports: Vec<pb::ReportRequest>,
    probes: Probes,
    acquires: u32,
    releases: Vec<pb::ReleaseProbeRequest>,
    /// Who the fake says it is and who leads, in Report answers (0, 1: an older node).
    node_id: u64,
    leader_id: u64,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<FakeState>>);

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().expect("fake state")
    }

    /// Serves `snapshot` to every new stream (and pushes it to open ones).
    fn publish(&self, snapshot: pb::WatchEvent) {
        let mut s = self.state();
        s.up = true;
        s.streams
            .retain(|tx| tx.try_send(Ok(snapshot.clone())).is_ok());
        s.snapshot = Some(snapshot);
    }

    /// Ends every stream and refuses new ones.
    fn go_down(&self) {
        let mut s = self.state();
        s.up = false;
        s.streams.clear();
    }
}

#[tonic::async_trait]
impl ClientService for Fake {
    async fn report(
        &self,
        request: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let mut s = self.state();
        if !s.up {
            return Err(Status::unavailable("down"));
        }
        let accepted_deltas = request.get_ref().deltas.len() as u32;
        s.reports.push(request.into_inner());
        Ok(Response::new(pb::ReportResponse {
            accepted_deltas,
            leader_id: if s.leader_id == 0 { 1 } else { s.leader_id },
            report_interval_ms: 0,
            node_id: s.node_id,
        }))
    }

    type WatchStream = ReceiverStream<Result<pb::WatchEvent, Status>>;

    async fn watch(
        &self,
        _: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let mut s = self.state();
        let (true, Some(snapshot)) = (s.up, s.snapshot.clone()) else {
            return Err(Status::unavailable("down"));
        };
        let (tx, rx) = mpsc::channel(16);
        tx.try_send(Ok(snapshot)).expect("fresh channel");
        s.streams.push(tx);
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn acquire_probe(
        &self,
        _: Request<pb::AcquireProbeRequest>,
    ) -> Result<Response<pb::AcquireProbeResponse>, Status> {
        let mut s = self.state();
        s.acquires += 1;
        match s.probes {
            Probes::Unimplemented => Err(Status::unimplemented("not in this test")),
            Probes::Unavailable => Err(Status::unavailable("hop to the leader failed")),
            Probes::Grant => Ok(Response::new(pb::AcquireProbeResponse {
                granted: true,
                permit_id: 7,
                ..Default::default()
            })),
        }
    }

    async fn release_probe(
        &self,
        request: Request<pb::ReleaseProbeRequest>,
    ) -> Result<Response<pb::ReleaseProbeResponse>, Status> {
        let mut s = self.state();
        match s.probes {
            Probes::Unimplemented => Err(Status::unimplemented("not in this test")),
            Probes::Unavailable => Err(Status::unavailable("hop to the leader failed")),
            Probes::Grant => {
                s.releases.push(request.into_inner());
                Ok(Response::new(pb::ReleaseProbeResponse::default()))
            }
        }
    }
}

fn snapshot(index: u64, key: &str, state: pb::BreakerState) -> pb::WatchEvent {
    pb::WatchEvent {
        applied_index: index,
        node_id: 1,
        term: 1,
        event: Some(pb::watch_event::Event::Snapshot(pb::DecisionSnapshot {
            breakers: vec![pb::BreakerDecision {
                key: key.into(),
                state: state as i32,
                // A decision as a node sends it: with the policy and the fleet retry figures.
                policy: Some((&switchyard_sdk::Policy::default()).into()),
                fleet_retries: Some(pb::FleetRetries::default()),
                ..Default::default()
            }],
            scopes: vec![pb::ScopeDecision {
                scope: "payments".into(),
                tier: 2,
                features: [("ml_fraud".to_owned(), false)].into_iter().collect(),
                ..Default::default()
            }],
        })),
    }
}

/// Waits for `condition`, checked every 10 ms, for at most 20 s: a liveness bound that a
/// machine busy with other builds must not trip, not a latency figure.
/// `first` and `second` listed so that an SDK with instance id `instance` starts its reports on
/// `first` (see `report_route::first_endpoint`).
fn starting_on(instance: &str, first: String, second: String) -> [String; 2] {
    if switchyard_sdk::report_route::first_endpoint(instance, 2) == 0 {
        [first, second]
    } else {
        [second, first]
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_reports_and_fail_static_modes_over_the_wire() {
    // phase: a fake cluster on port 0 serving an OPEN breaker
    let fake = Fake::default();
    fake.publish(snapshot(5, "payments/ml-fraud", pb::BreakerState::Open));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ClientServer::new(fake.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let clock = ManualClock::new(0);
    let options = ClientOptions {
        report_interval: Duration::from_millis(10),
        rpc_timeout: Duration::from_millis(500),
        watch_backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        ..ClientOptions::default()
    };
    let client = Client::builder()
        .options(options)
        .endpoints([addr.to_string()])
        .instance_id("pod-1")
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("client");
    let ml = client.breaker("payments/ml-fraud").expect("breaker");
    let db = client.breaker("payments/db").expect("breaker");

    // phase: the decision arrives and rules the hot path
    wait_until("cluster mode", || client.mode() == Mode::Cluster).await;
    wait_until("open decision", || ml.allow().is_err()).await;
    assert_eq!(
        ml.allow().expect_err("open").reason,
        RejectReason::ClusterOpen
    );
    assert_eq!(client.applied_index(), 5);
    assert!(!client.feature_enabled("payments", "ml_fraud"));
    assert_eq!(client.tier("payments").number(), 2);

    // phase: outcomes are reported
    let p = db
        .allow()
        .expect("unknown to the cluster: the local breaker admits");
    db.record(p, Outcome::Failure, Duration::from_millis(2));
    wait_until("a report", || {
        fake.state().reports.iter().any(|r| {
            r.deltas
                .iter()
                .any(|d| d.key == "payments/db" && d.failures == 1)
        })
    })
    .await;
    assert_eq!(fake.state().reports[0].instance, "pod-1");

    // phase: the cluster goes away; past stale_after the last decision is kept
    fake.go_down();
    clock.advance_ms(5_000);
    wait_until("stale mode", || client.mode() == Mode::Stale).await;
    assert_eq!(
        ml.allow().expect_err("kept").reason,
        RejectReason::ClusterOpen
    );

    // phase: past fallback_after the local breaker alone decides
    clock.advance_ms(26_000);
    wait_until("local-only mode", || client.mode() == Mode::LocalOnly).await;
    let p = ml.allow().expect("local breaker is closed");
    ml.record(p, Outcome::Success, Duration::from_millis(1));

    // phase: the cluster returns with a newer index: back to Cluster
    fake.publish(snapshot(
        9,
        "payments/ml-fraud",
        pb::BreakerState::ForcedOpen,
    ));
    wait_until("cluster mode again", || client.mode() == Mode::Cluster).await;
    wait_until("new decision", || client.applied_index() == 9).await;
    assert_eq!(
        ml.allow().expect_err("forced").reason,
        RejectReason::ForcedOpen
    );
    assert!(client.stats().watch_reconnects >= 1);

    drop(client);
    server.abort();
}

/// Serves `fake` on a loopback port; returns its address and the server task.
async fn serve(fake: &Fake) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = tonic::transport::Server::builder()
        .add_service(ClientServer::new(fake.clone()))
        .serve_with_incoming(TcpListenerStream::new(listener));
    let task = tokio::spawn(async move {
        server.await.expect("fake serves");
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_move_off_the_leader_and_come_back_only_when_the_follower_fails() {
    // Goal: the endpoint reports start on answers as the leader, the other as a follower:
    // after the first answer, reports go to the follower. When the follower goes down, they rotate
    // back to the leader and stay there for the cooldown instead of leaving it again.
    let (leader, follower) = (Fake::default(), Fake::default());
    for (fake, node_id) in [(&leader, 1), (&follower, 2)] {
        let mut s = fake.state();
        s.node_id = node_id;
        s.leader_id = 1;
        drop(s);
        fake.publish(snapshot(3, "payments/db", pb::BreakerState::Closed));
    }
    let (leader_addr, leader_task) = serve(&leader).await;
    let (follower_addr, follower_task) = serve(&follower).await;
    let clock = ManualClock::new(0);
    let client = Client::builder()
        .options(ClientOptions {
            report_interval: Duration::from_millis(10),
            rpc_timeout: Duration::from_millis(500),
            ..ClientOptions::default()
        })
        .endpoints(starting_on("pod-1", leader_addr, follower_addr))
        .instance_id("pod-1")
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("client");
    let db = client.breaker("payments/db").expect("breaker");
    // One call's outcome, for the next report to carry (reports follow the client's clock).
    let call = || {
        let p = db.allow().expect("closed");
        db.record(p, Outcome::Success, Duration::from_millis(1));
        clock.advance_ms(20);
    };

    // phase: the leader answers the first report, the follower the ones after it
    call();
    wait_until("a report on the leader", || {
        !leader.state().reports.is_empty()
    })
    .await;
    for _ in 0..5 {
        call();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until("reports on the follower", || {
        follower.state().reports.len() >= 3
    })
    .await;
    assert_eq!(
        leader.state().reports.len(),
        1,
        "only the first report went to the leader"
    );

    // phase: the follower goes down; reports fail there once and go back to the leader,
    // which keeps them within the cooldown
    follower.go_down();
    clock.advance_ms(1_000);
    for _ in 0..6 {
        call();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until("reports back on the leader", || {
        leader.state().reports.len() >= 4
    })
    .await;
    let failures = client.metrics().report_failures.get();
    assert!(failures >= 1, "the follower refused one");
    for _ in 0..5 {
        call();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        client.metrics().report_failures.get(),
        failures,
        "no report left the leader again within the cooldown"
    );

    drop(client);
    leader_task.abort();
    follower_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_permits_move_to_the_next_endpoint_on_unavailable() {
    // Goal: the endpoint reports start on accepts them (so the report loop never moves on) but
    // answers AcquireProbe with UNAVAILABLE, as a node whose hop to the leader failed; a
    // half-open breaker still gets its permit from the other endpoint, and returns it there.
    let (first, second) = (Fake::default(), Fake::default());
    for (fake, probes) in [(&first, Probes::Unavailable), (&second, Probes::Grant)] {
        fake.state().probes = probes;
        fake.publish(snapshot(3, "payments/ml-fraud", pb::BreakerState::HalfOpen));
    }
    let (first_addr, first_task) = serve(&first).await;
    let (second_addr, second_task) = serve(&second).await;
    let client = Client::builder()
        .options(ClientOptions {
            report_interval: Duration::from_millis(10),
            rpc_timeout: Duration::from_millis(500),
            ..ClientOptions::default()
        })
        .endpoints(starting_on("pod-1", first_addr, second_addr))
        .instance_id("pod-1")
        .build()
        .expect("client");
    let ml = client.breaker("payments/ml-fraud").expect("breaker");
    wait_until("the half-open decision", || client.applied_index() == 3).await;

    // phase: calls ask for a permit until one is granted
    let mut permit = None;
    wait_until("a probe permit", || {
        permit = ml.allow().ok();
        permit.is_some()
    })
    .await;
    let permit = permit.expect("granted");
    assert!(permit.is_probe());
    assert!(
        first.state().acquires >= 1,
        "the first endpoint was asked first"
    );
    assert_eq!(second.state().acquires, 1);
    assert_eq!(
        client.metrics().report_failures.get(),
        0,
        "no report failed: the probe call moved on by itself"
    );

    // phase: the trial's outcome goes back to the endpoint that granted it
    ml.record(permit, Outcome::Success, Duration::from_millis(1));
    wait_until("the release", || !second.state().releases.is_empty()).await;
    assert_eq!(second.state().releases[0].permit_id, 7);

    drop(client);
    first_task.abort();
    second_task.abort();
}
