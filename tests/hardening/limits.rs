//! Every node limit at its edge: N is accepted, N+1 gets `ResourceExhausted` with a message
//! naming the limit, and the node keeps serving everyone else. The limits are set low with
//! the `serve --limit-*` flags so the edges are cheap to reach.

use std::time::Duration;

use switchyard_core::ClusterSettings;
use switchyard_proto::admin::{self as apb, admin_client::AdminClient};
use switchyard_proto::client::{self as pb, client_client::ClientClient};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::{Cluster, channel};

const WAIT: Duration = Duration::from_secs(20);
const DELTAS_MAX: usize = 5;
const RATE_MAX: usize = 20;
const WATCHES_MAX: usize = 3;
const MESSAGE_BYTES_MAX: usize = 65_536;
const AUDIT_PAGE_MAX: u32 = 20;

fn delta(key: &str) -> pb::BreakerDelta {
    pb::BreakerDelta {
        key: key.into(),
        calls: 1,
        ..Default::default()
    }
}

fn report(instance: &str, deltas: usize) -> pb::ReportRequest {
    pb::ReportRequest {
        instance: instance.into(),
        deltas: (0..deltas).map(|i| delta(&format!("lim/k{i}"))).collect(),
    }
}

#[track_caller]
fn exhausted<T: std::fmt::Debug>(result: Result<T, tonic::Status>, words: &[&str]) {
    let status = result.expect_err("must be refused at the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    for word in words {
        assert!(
            status.message().contains(word),
            "{word:?} missing in {status:?}"
        );
    }
}

async fn set_override(admin: &mut AdminClient<Channel>, key: &str) -> Result<(), tonic::Status> {
    admin
        .set_override(apb::SetOverrideRequest {
            key: key.into(),
            mode: apb::OverrideMode::ForcedOpen as i32,
            reason: "limits".into(),
            for_ms: None,
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_limit_refuses_one_past_its_edge_and_keeps_serving() {
    // Goal: each limit accepts N and refuses N+1 with ResourceExhausted naming it.
    let flags = [
        "--limit-report-deltas-max",
        "5",
        "--limit-report-rate-per-instance-max",
        "20",
        "--limit-watch-streams-max",
        "3",
        "--limit-message-bytes-max",
        "65536",
        "--limit-audit-page-max",
        "20",
    ];
    let cluster = Cluster::start(1, &flags);
    cluster.wait_leader(WAIT).await;
    let ch = channel(&cluster.nodes[&1].grpc).await.unwrap();
    let mut admin = AdminClient::new(ch.clone());
    let mut sdk = ClientClient::new(ch.clone());

    // phase: report batch size (--limit-report-deltas-max)
    sdk.report(report("batch", DELTAS_MAX))
        .await
        .expect("N deltas");
    exhausted(
        sdk.report(report("batch-2", DELTAS_MAX + 1)).await,
        &["deltas", "5"],
    );

    // phase: report rate per instance (--limit-report-rate-per-instance-max)
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..3 * RATE_MAX {
        match sdk.report(report("rate-1", 1)).await {
            Ok(_) => accepted += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("rate-1") && status.message().contains("20"),
                    "{status:?}"
                );
                refused += 1;
            }
        }
    }
    // The window is one wall-clock second: the burst may straddle two windows, never three.
    assert!(
        refused > 0,
        "a burst of {} reports was never limited",
        3 * RATE_MAX
    );
    assert!(accepted <= 2 * RATE_MAX, "{accepted} accepted in a burst");
    sdk.report(report("rate-2", 1))
        .await
        .expect("another instance is not limited by rate-1's burst");

    // phase: message size (--limit-message-bytes-max), for a client and an admin call
    let huge = "x".repeat(MESSAGE_BYTES_MAX + 1);
    exhausted(
        sdk.report(pb::ReportRequest {
            instance: huge.clone(),
            deltas: vec![],
        })
        .await,
        &["too large", "65536"],
    );
    exhausted(
        admin
            .put_policies(apb::PutPoliciesRequest {
                policies: vec![],
                reason: huge,
            })
            .await,
        &["too large"],
    );
    sdk.report(report("after-huge", 1))
        .await
        .expect("the node serves on after an oversized message");

    // phase: audit page size (--limit-audit-page-max)
    let audit = |limit| apb::QueryAuditRequest {
        limit,
        ..Default::default()
    };
    admin.query_audit(audit(AUDIT_PAGE_MAX)).await.expect("N");
    exhausted(
        admin.query_audit(audit(AUDIT_PAGE_MAX + 1)).await,
        &["limit", "20"],
    );

    // phase: key length (128 bytes, part of the key format)
    let key_128 = format!("k/{}", "a".repeat(126));
    set_override(&mut admin, &key_128)
        .await
        .expect("a 128-byte key");
    let status = set_override(&mut admin, &format!("{key_128}a"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("`key`") && status.message().contains("128"),
        "{status:?}"
    );

    // phase: breakers per cluster (cluster setting max_breakers)
    let count = admin
        .list_breakers(apb::ListBreakersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .breakers
        .len() as u32;
    let settings = ClusterSettings {
        max_breakers: count + 1,
        ..ClusterSettings::default()
    };
    admin
        .put_settings(apb::PutSettingsRequest {
            settings: Some((&settings).into()),
            reason: "limits".into(),
        })
        .await
        .unwrap();
    set_override(&mut admin, "lim/last")
        .await
        .expect("breaker N");
    exhausted(
        set_override(&mut admin, "lim/one-too-many").await,
        &["max_breakers"],
    );

    // phase: watch streams per node (--limit-watch-streams-max)
    let watch = || pb::WatchRequest {
        scopes: vec![],
        known_index: 0,
    };
    let mut streams = Vec::new();
    for _ in 0..WATCHES_MAX {
        let mut stream = sdk
            .watch(watch())
            .await
            .expect("a stream under the limit")
            .into_inner();
        stream.next().await.expect("first event").expect("snapshot");
        streams.push(stream);
    }
    exhausted(
        sdk.watch(watch()).await.map(|_| ()),
        &["watch streams", "3"],
    );
    // The open streams keep streaming: a change reaches each of them.
    set_override(&mut admin, "lim/last").await.unwrap();
    for (i, stream) in streams.iter_mut().enumerate() {
        let event = tokio::time::timeout(WAIT, stream.next()).await;
        assert!(
            matches!(event, Ok(Some(Ok(_)))),
            "stream {i} stopped streaming: {event:?}"
        );
    }
    // A closed stream frees its slot.
    drop(streams.pop());
    crate::support::eventually(WAIT, "a freed watch slot", || {
        let mut sdk = sdk.clone();
        async move { sdk.watch(watch()).await.ok().map(|_| ()) }
    })
    .await;
}
