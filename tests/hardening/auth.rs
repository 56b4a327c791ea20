//! Tokens over real gRPC: each role's credentials open only that role's services.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_proto::admin::{self as apb, admin_client::AdminClient};
use switchyard_proto::client::{self as pb, client_client::ClientClient};
use switchyard_proto::raft::{RaftMessage, raft_client::RaftClient};
use switchyard_sdk::{Client, Outcome};
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::support::{Cluster, binary, channel, eventually, free_port};

const ADMIN: &str = "adm-7Q2v9xK4pLr8";
const CLIENT: &str = "cli-3Hs6Tn1ZwqB5";
const CLUSTER: &str = "clu-8Jd2Mf5RyeC0";
const WAIT: Duration = Duration::from_secs(20);

/// A request carrying `token` as a bearer token (or none).
pub fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ascii token");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The code of a call that must fail.
fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    result.expect_err("must be refused").code()
}

/// Waits until the single node is leader, asking with the admin token.
async fn wait_leader_with(addr: &str, token: &str) {
    eventually(WAIT, "a leader (with the admin token)", || async move {
        let mut admin = AdminClient::new(channel(addr).await.ok()?);
        let status = admin
            .status(with_token(apb::StatusRequest { local: true }, Some(token)))
            .await
            .ok()?
            .into_inner();
        (status.leader_id == Some(status.node_id)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_cannot_call_admin_or_raft_rpcs_and_tokens_stay_out_of_logs() {
    // Goal: a client token opens the client service only; the SDK sends it; no token ever
    // appears in the node's log, even at debug level.
    let env = [
        ("SWITCHYARD_ADMIN_TOKEN", ADMIN),
        ("SWITCHYARD_CLIENT_TOKEN", CLIENT),
        ("SWITCHYARD_CLUSTER_TOKEN", CLUSTER),
        ("RUST_LOG", "debug,openraft=info"),
    ];
    let mut cluster = Cluster::start_with_env(1, &[], &env);
    let addr = cluster.nodes[&1].grpc.clone();
    wait_leader_with(&addr, ADMIN).await;
    let ch = channel(&addr).await.expect("connect");
    let mut admin = AdminClient::new(ch.clone());
    let mut sdk = ClientClient::new(ch.clone());
    let mut raft = RaftClient::new(ch);

    // phase: the client token on admin RPCs (reads and writes) is refused
    let set = apb::SetOverrideRequest {
        key: "auth/db".into(),
        mode: apb::OverrideMode::ForcedOpen as i32,
        reason: "test".into(),
        for_ms: None,
    };
    assert_eq!(
        code(
            admin
                .set_override(with_token(set.clone(), Some(CLIENT)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            admin
                .status(with_token(apb::StatusRequest { local: true }, Some(CLIENT)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            admin
                .put_settings(with_token(apb::PutSettingsRequest::default(), Some(CLIENT)))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            admin
                .add_learner(with_token(
                    apb::AddLearnerRequest {
                        node_id: 9,
                        addr: "127.0.0.1:1".into(),
                    },
                    Some(CLIENT)
                ))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(admin.set_override(with_token(set.clone(), None)).await),
        Code::Unauthenticated
    );
    // ... and on Raft RPCs: neither the client nor the admin token is a cluster token.
    for token in [CLIENT, ADMIN] {
        let r = raft
            .vote(with_token(RaftMessage { payload: vec![1] }, Some(token)))
            .await;
        assert_eq!(code(r), Code::PermissionDenied, "{token}");
    }
    let r = admin
        .list_breakers(with_token(apb::ListBreakersRequest::default(), Some(ADMIN)))
        .await
        .unwrap();
    assert!(r.into_inner().breakers.is_empty(), "nothing was changed");

    // phase: the client token opens the client service; no token does not
    let report = pb::ReportRequest {
        instance: "raw-1".into(),
        deltas: vec![],
    };
    sdk.report(with_token(report.clone(), Some(CLIENT)))
        .await
        .expect("client token accepted on Report");
    assert_eq!(
        code(sdk.report(with_token(report, None)).await),
        Code::Unauthenticated
    );

    // phase: the SDK with `.token(..)` reports and follows decisions; without, it cannot
    let with = Client::builder()
        .endpoints([addr.clone()])
        .instance_id("sdk-with-token")
        .token(CLIENT)
        .report_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let without = Client::builder()
        .endpoints([addr.clone()])
        .instance_id("sdk-without-token")
        .report_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    for client in [&with, &without] {
        let breaker = client.breaker("auth/sdk").unwrap();
        if let Ok(permit) = breaker.allow() {
            breaker.record(permit, Outcome::Success, Duration::from_millis(1));
        }
    }
    eventually(WAIT, "the SDK with a token to follow the cluster", || {
        let applied = with.applied_index();
        async move { (applied > 0).then_some(()) }
    })
    .await;
    eventually(WAIT, "the SDK's report to create its breaker", || {
        let mut admin = admin.clone();
        async move {
            admin
                .get_breaker(with_token(
                    apb::GetBreakerRequest {
                        key: "auth/sdk".into(),
                        local: true,
                    },
                    Some(ADMIN),
                ))
                .await
                .ok()
        }
    })
    .await;
    assert_eq!(
        without.applied_index(),
        0,
        "an SDK without the client token never gets a decision"
    );
    drop((with, without));

    // phase: no token in the log, at debug level, after all of the above
    let node = cluster.nodes.get_mut(&1).unwrap();
    node.terminate();
    let log = node.log();
    assert!(
        log.contains("starting node"),
        "the log was captured:\n{log}"
    );
    for token in [ADMIN, CLIENT, CLUSTER] {
        assert!(!log.contains(token), "a token leaked into the node log");
    }
}

#[test]
fn a_non_loopback_bind_without_tokens_refuses_to_start() {
    // Goal: `serve --grpc-addr 0.0.0.0:PORT` with no tokens exits non-zero naming --insecure
    // (it never binds).
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args(["serve", "--node-id", "1", "--data-dir"])
        .arg(dir.path().join("node"))
        .arg("--grpc-addr")
        .arg(format!("0.0.0.0:{}", free_port()))
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .env_remove("SWITCHYARD_CLIENT_TOKEN")
        .env_remove("SWITCHYARD_CLUSTER_TOKEN")
        .env_remove("SWITCHYARD_INSECURE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve on 0.0.0.0 without tokens kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "must exit non-zero; stderr: {stderr}");
    assert!(
        stderr.contains("--insecure") && stderr.contains("refusing to start"),
        "{stderr}"
    );
}
