//! TLS on every gRPC path (client, admin, Raft) and mTLS on Raft, with certificates generated
//! in the test.

use std::process::Command;
use std::time::Duration;

use switchyard_proto::admin::{self as apb, admin_client::AdminClient};
use switchyard_proto::raft::{RaftMessage, raft_client::RaftClient};
use switchyard_sdk::{Client, ClientTls};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::certs::Pki;
use crate::support::{Cluster, binary, eventually};

const WAIT: Duration = Duration::from_secs(30);

/// A TLS channel to `addr` trusting `ca_pem`, presenting `identity` if given.
pub async fn tls_channel(
    addr: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_millis(1_000))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
}

async fn tls_status(addr: &str, pki: &Pki) -> Option<apb::StatusResponse> {
    let channel = tls_channel(addr, &pki.ca_pem, None).await.ok()?;
    AdminClient::new(channel)
        .status(apb::StatusRequest { local: true })
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// Waits for a leader over TLS and returns its id.
async fn wait_leader(cluster: &Cluster, pki: &Pki) -> u64 {
    let addrs: Vec<String> = cluster.nodes.values().map(|n| n.grpc.clone()).collect();
    eventually(WAIT, "a leader elected over TLS", || {
        let addrs = addrs.clone();
        async move {
            for addr in &addrs {
                if let Some(s) = tls_status(addr, pki).await
                    && s.leader_id == Some(s.node_id)
                {
                    return Some(s.node_id);
                }
            }
            None
        }
    })
    .await
}

fn start(pki: &Pki, mtls: bool) -> Cluster {
    let args = pki.serve_args(mtls);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Cluster::start(3, &args)
}

/// Writes an override through a follower (so it is forwarded to the leader over the
/// cluster's TLS connections) and reads it back linearizably from every node.
async fn write_through_a_follower_and_read_everywhere(cluster: &Cluster, pki: &Pki, leader: u64) {
    let follower = cluster.nodes.values().find(|n| n.id != leader).unwrap();
    let channel = tls_channel(&follower.grpc, &pki.ca_pem, None)
        .await
        .unwrap();
    let admin = AdminClient::new(channel);
    let written = eventually(WAIT, "a write through a follower", || {
        let mut admin = admin.clone();
        async move {
            admin
                .set_override(apb::SetOverrideRequest {
                    key: "tls/db".into(),
                    mode: apb::OverrideMode::ForcedOpen as i32,
                    reason: "over tls".into(),
                    for_ms: None,
                })
                .await
                .ok()
        }
    })
    .await;
    assert!(written.into_inner().index > 0);
    for node in cluster.nodes.values() {
        let channel = tls_channel(&node.grpc, &pki.ca_pem, None).await.unwrap();
        let info = AdminClient::new(channel)
            .get_breaker(apb::GetBreakerRequest {
                key: "tls/db".into(),
                local: false,
            })
            .await
            .unwrap_or_else(|e| panic!("read on node {}: {e}\n{}", node.id, cluster.logs()))
            .into_inner();
        assert!(info.breaker.is_some(), "node {} has the write", node.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_tls_elect_serve_a_write_and_refuse_plaintext() {
    // Goal: with --tls-cert/--tls-key/--tls-ca a cluster forms over TLS, serves writes and
    // reads, the CLI and the SDK reach it with a CA, and a plaintext client gets nothing.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path(), "cluster");
    let cluster = start(&pki, false);

    // phase: election and a forwarded write, all over TLS
    let leader = wait_leader(&cluster, &pki).await;
    write_through_a_follower_and_read_everywhere(&cluster, &pki, leader).await;

    // phase: a plaintext client is refused by every node
    for node in cluster.nodes.values() {
        let plain = crate::support::status(&node.grpc, true).await;
        assert!(plain.is_err(), "node {} answered plaintext", node.id);
    }

    // phase: the CLI with --tls-ca works; without it, it fails and says so
    let endpoints = cluster.endpoints();
    let out = Command::new(binary())
        .args(["--endpoints", &endpoints, "--tls-ca"])
        .arg(&pki.ca)
        .args(["breaker", "get", "tls/db", "--json"])
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "CLI over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(binary())
        .args(["--endpoints", &endpoints, "--timeout", "2s", "status"])
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .env_remove("SWITCHYARD_TLS_CA")
        .output()
        .unwrap();
    assert!(!out.status.success(), "plaintext CLI must fail");

    // phase: the SDK with a CA follows decisions over TLS
    let sdk = Client::builder()
        .endpoints(cluster.nodes.values().map(|n| n.grpc.clone()))
        .instance_id("tls-sdk")
        .tls(ClientTls::from_ca_pem(&pki.ca_pem))
        .build()
        .unwrap();
    eventually(WAIT, "the SDK to follow decisions over TLS", || {
        let applied = sdk.applied_index();
        async move { (applied > 0).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_lets_certified_peers_in_and_keeps_uncertified_ones_out() {
    // Goal: with --tls-client-ca, peers presenting their certificate form the cluster and
    // forward; a caller without a client certificate, or with one from another CA, cannot
    // make a single Raft call (vote, append, forward), while SDK/admin calls still work.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path(), "cluster");
    let rogue = Pki::generate(dir.path(), "rogue");
    let cluster = start(&pki, true);

    // phase: the certified peers elect a leader and forward a write
    let leader = wait_leader(&cluster, &pki).await;
    write_through_a_follower_and_read_everywhere(&cluster, &pki, leader).await;
    let leader_addr = cluster.nodes[&leader].grpc.clone();
    let term_before = tls_status(&leader_addr, &pki).await.unwrap().term;

    // phase: TLS without a client certificate: every Raft RPC is refused
    let channel = tls_channel(&leader_addr, &pki.ca_pem, None).await.unwrap();
    let mut raft = RaftClient::new(channel.clone());
    let message = || RaftMessage { payload: vec![1] };
    let refusals = [
        raft.vote(message()).await.map(|_| ()),
        raft.append_entries(message()).await.map(|_| ()),
        raft.forward(message()).await.map(|_| ()),
    ];
    for refusal in refusals {
        let status = refusal.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(
            status.message().contains("client certificate"),
            "{status:?}"
        );
    }
    // ... while the same connection serves admin calls.
    AdminClient::new(channel)
        .status(apb::StatusRequest { local: true })
        .await
        .expect("admin call without a client certificate");

    // phase: a certificate from another CA does not get past the handshake
    let rogue_call = async {
        let channel = tls_channel(
            &leader_addr,
            &pki.ca_pem,
            Some((&rogue.cert_pem, &rogue.key_pem)),
        )
        .await
        .map_err(|e| e.to_string())?;
        RaftClient::new(channel)
            .vote(message())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = rogue_call
        .await
        .expect_err("a rogue client certificate must be refused");
    assert!(!err.is_empty());

    // phase: the refused calls changed nothing
    let status = tls_status(&leader_addr, &pki).await.unwrap();
    assert_eq!(
        status.term, term_before,
        "no vote from an uncertified caller counted"
    );
    assert_eq!(status.leader_id, Some(leader));

    // phase: a certified caller gets past authentication (its garbage payload is then
    // rejected as such, not as unauthenticated)
    let channel = tls_channel(
        &leader_addr,
        &pki.ca_pem,
        Some((&pki.cert_pem, &pki.key_pem)),
    )
    .await
    .unwrap();
    let status = RaftClient::new(channel).vote(message()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}
