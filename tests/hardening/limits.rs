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

use crate::support::{Cluster, channel, scrape};

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

/// The value of `switchyard_report_deltas_refused_total{limit="<limit>"}`.
fn refused_metric(metrics: &str, limit: &str) -> u64 {
    let prefix = format!("switchyard_report_deltas_refused_total{{limit=\"{limit}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} sample in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_refusal_is_counted_under_the_limit_that_refused_it() {
    // Goal: switchyard_report_deltas_refused_total{limit} counts exactly the deltas of every
    // report refused, per limit, as the SDK saw the refusals (it stayed 0 when refusals
    // happened before the only place that counted them).
    let flags = [
        "--limit-report-deltas-max",
        "5",
        "--limit-report-rate-per-instance-max",
        "20",
        "--limit-pending-deltas-max",
        "50",
    ];
    // A tick a minute: pending deltas stay pending, so the pending limit is reachable.
    let env = [("SWITCHYARD_TICK_INTERVAL_MS", "60000")];
    let cluster = Cluster::start_with_env(1, &flags, &env);
    cluster.wait_leader(WAIT).await;
    let node = &cluster.nodes[&1];
    let mut sdk = ClientClient::new(channel(&node.grpc).await.unwrap());
    let mut seen = std::collections::BTreeMap::<&str, u64>::new();
    let mut tally = |status: tonic::Status, deltas: u64| {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let limit = [
            "report_rate_per_instance_max",
            "report_deltas_max",
            "pending_deltas_max",
        ]
        .into_iter()
        .find(|l| status.message().contains(&format!("`limits.{l}`")))
        .unwrap_or_else(|| panic!("the refusal names no limit: {status:?}"));
        *seen.entry(limit).or_default() += deltas;
    };

    // phase: one batch over report_deltas_max
    let r = sdk.report(report("batch", DELTAS_MAX + 1)).await;
    tally(r.expect_err("over the batch size"), DELTAS_MAX as u64 + 1);
    // phase: fill the tick buffer to pending_deltas_max, then one more report
    for i in 0..10 {
        sdk.report(report(&format!("fill-{i}"), 5))
            .await
            .expect("under the pending limit");
    }
    let r = sdk.report(report("one-too-many", 3)).await;
    tally(r.expect_err("over the pending limit"), 3);
    // phase: a burst from one instance over report_rate_per_instance_max (refused by the rate
    // gate, or by the full buffer while under the rate)
    for _ in 0..3 * RATE_MAX {
        if let Err(status) = sdk.report(report("burst", 2)).await {
            tally(status, 2);
        }
    }
    assert!(
        seen.get("report_rate_per_instance_max")
            .is_some_and(|n| *n > 0),
        "the burst was never refused by the rate: {seen:?}"
    );

    // phase: the metric agrees with what the client saw, limit by limit
    let metrics = scrape(&node.http);
    for (limit, deltas) in &seen {
        assert_eq!(
            refused_metric(&metrics, limit),
            *deltas,
            "{limit}: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_spreading_reports_over_nodes_is_held_to_its_rate_cluster_wide() {
    // Goal: an instance that sends 9 reports to each of 3 nodes at once (27 calls, each node's
    // own gate allowing 10) gets at most 10 calls' worth of deltas per second into the
    // cluster: followers forward its calls under its own identity, and the leader refuses
    // the calls over the rate, its own callers' and forwarded ones alike (counted under
    // report_rate_per_instance_max on the leader).
    const RATE: u32 = 10;
    const PER_NODE: u32 = 9;
    let rate = RATE.to_string();
    let cluster = Cluster::start(3, &["--limit-report-rate-per-instance-max", &rate]);
    let leader = cluster.wait_leader(WAIT).await;
    let mut clients = Vec::new();
    for node in cluster.nodes.values() {
        clients.push(ClientClient::new(channel(&node.grpc).await.unwrap()));
    }

    // phase: the burst, every node at once; each call is one delta of one call
    let calls = clients.iter().flat_map(|c| {
        (0..PER_NODE).map(move |_| {
            let mut c = c.clone();
            async move {
                c.report(pb::ReportRequest {
                    instance: "spread-1".into(),
                    deltas: vec![delta("spread/db")],
                })
                .await
            }
        })
    });
    let results = futures::future::join_all(calls).await;
    // Followers' gates (9 < 10) admit every call; the leader refuses its own callers once
    // the instance's calls from all nodes reach the rate.
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(
            refused
                .message()
                .contains("limits.report_rate_per_instance_max"),
            "{refused:?}"
        );
    }

    // phase: the leader's view settles: the breaker's window calls and the refusals stop
    // changing once every follower has forwarded its buffer
    let leader_http = cluster.nodes[&leader].http.clone();
    let mut admin = AdminClient::new(channel(&cluster.nodes[&leader].grpc).await.unwrap());
    let deadline = std::time::Instant::now() + WAIT;
    let (mut last, mut same) = ((u64::MAX, u64::MAX), 0);
    let (in_window, refused) = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "never settled: {last:?}"
        );
        let refused = refused_metric(&scrape(&leader_http), "report_rate_per_instance_max");
        let in_window = admin
            .get_breaker(apb::GetBreakerRequest {
                key: "spread/db".into(),
                local: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().breaker)
            .map_or(0, |b| b.window_calls);
        same = if (in_window, refused) == last {
            same + 1
        } else {
            0
        };
        last = (in_window, refused);
        if same >= 3 && refused > 0 {
            break last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The burst may straddle two one-second windows on the leader, never three.
    assert!(
        in_window <= u64::from(2 * RATE),
        "{in_window} calls from one instance got in (rate {RATE}/s); {refused} refused"
    );
    assert!(refused > 0, "the leader refused nothing");
}
