//! Trace context and request ids across a real cluster: nodes export their spans over OTLP to a
//! receiver inside the test, a write through a follower is one trace with spans from every
//! node, the audit trail names the request, and the CLI prints the id an operator quotes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span;
use switchyard_proto::admin as apb;
use tokio_stream::wrappers::TcpListenerStream;

use crate::support::{self, Cluster, admin, eventually};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The spans one node exported, with the node id from its resource.
#[derive(Debug, Clone)]
struct Received {
    node: i64,
    span: Span,
}

/// An OTLP/gRPC trace receiver: keeps every span it is sent.
#[derive(Debug, Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let attributes = resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default();
            let node = int_attr(&attributes, "switchyard.node_id").unwrap_or(-1);
            assert_eq!(
                str_attr(&attributes, "service.name").as_deref(),
                Some("switchyard")
            );
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received { node, span });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on a loopback port; returns its `http://` URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        url
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn int_attr(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attributes, key)? {
        Value::IntValue(v) => Some(*v),
        Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

fn str_attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attr(attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(v) => Some(v.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn set_override(key: &str, reason: &str) -> apb::SetOverrideRequest {
    apb::SetOverrideRequest {
        key: key.into(),
        mode: apb::OverrideMode::ForcedOpen as i32,
        reason: reason.into(),
        ..Default::default()
    }
}

async fn audit_of(addr: &str, key: &str) -> Vec<apb::AuditEvent> {
    let mut admin = admin(addr).await;
    admin
        .query_audit(apb::QueryAuditRequest {
            key: Some(key.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_a_follower_is_one_trace_with_spans_from_every_node() {
    // goal: with --otlp-endpoint, an admin write sent to a follower with a caller traceparent
    // reaches the receiver as one trace under the caller's trace id, with spans from the
    // follower and the leader (and every node's apply), flushed when the nodes stop
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let mut cluster = Cluster::start(3, &["--otlp-endpoint", &url]);
    let leader = cluster.wait_leader(Duration::from_secs(15)).await;
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let addr = cluster.nodes[&follower].grpc.clone();

    // phase: the traced write, through the follower
    let mut request = tonic::Request::new(set_override("payments/db", "incident 42"));
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    request
        .metadata_mut()
        .insert("x-request-id", "incident-42.write_1".parse().unwrap());
    let response = admin(&addr).await.set_override(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "incident-42.write_1"
    );

    // phase: the audit event names the request and its trace, on every node
    for node in cluster.nodes.values() {
        let events = eventually(
            Duration::from_secs(10),
            "the audit event everywhere",
            || {
                let addr = node.grpc.clone();
                async move {
                    let events = audit_of(&addr, "payments/db").await;
                    (!events.is_empty()).then_some(events)
                }
            },
        )
        .await;
        let event = events.iter().find(|e| e.kind == "override").unwrap();
        assert_eq!(event.request_id, "incident-42.write_1");
        assert_eq!(event.trace_id, TRACE_ID);
    }

    // phase: a bad traceparent is ignored (a new trace), an over-long request id replaced
    let mut request = tonic::Request::new(set_override("payments/cache", "bad headers"));
    request
        .metadata_mut()
        .insert("traceparent", "00-not-a-trace-01".parse().unwrap());
    let too_long = "r".repeat(129);
    request
        .metadata_mut()
        .insert("x-request-id", too_long.parse().unwrap());
    let response = admin(&addr).await.set_override(request).await.unwrap();
    let replaced = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(replaced, too_long);
    switchyard_core::validate_request_id(&replaced).unwrap();
    let events = audit_of(&addr, "payments/cache").await;
    assert_eq!(events.last().unwrap().request_id, replaced);
    let bad_trace_id = events.last().unwrap().trace_id.clone();
    assert_eq!(
        bad_trace_id.len(),
        32,
        "the node's own trace: {bad_trace_id:?}"
    );

    // phase: stop every node; what they buffered is flushed on the way out
    for node in cluster.nodes.values_mut() {
        assert_eq!(node.terminate(), Some(0), "node {} exits cleanly", node.id);
    }
    let spans = eventually(Duration::from_secs(10), "the exported trace", || {
        let spans = receiver.spans();
        async move {
            let in_trace: Vec<Received> = spans
                .into_iter()
                .filter(|r| hex(&r.span.trace_id) == TRACE_ID)
                .collect();
            let applied: BTreeSet<i64> = in_trace
                .iter()
                .filter(|r| r.span.name == "apply")
                .map(|r| r.node)
                .collect();
            (applied.len() == 3).then_some(in_trace)
        }
    })
    .await;
    let by_node: BTreeMap<i64, Vec<&str>> = spans.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.node).or_default().push(r.span.name.as_str());
        m
    });
    let (leader, follower) = (leader as i64, follower as i64);
    // The follower received the call (its root span is a child of the caller's span) and
    // forwarded it; the leader served the forward and proposed; every node applied.
    let root = spans
        .iter()
        .find(|r| r.node == follower && r.span.name.ends_with("/SetOverride"))
        .unwrap_or_else(|| panic!("the follower's request span: {by_node:?}"));
    assert_eq!(hex(&root.span.parent_span_id), CALLER_SPAN);
    assert_eq!(
        str_attr(&root.span.attributes, "request_id").as_deref(),
        Some("incident-42.write_1")
    );
    for (node, name) in [
        (follower, "write"),
        (follower, "forward"),
        (leader, "/switchyard.raft.v1.Raft/Forward"),
        (leader, "propose"),
    ] {
        assert!(
            by_node
                .get(&node)
                .is_some_and(|names| names.contains(&name)),
            "node {node} has a `{name}` span in the trace: {by_node:?}"
        );
    }
    // The write with a bad traceparent started a trace of its own at the follower.
    let fresh = receiver
        .spans()
        .into_iter()
        .find(|r| {
            r.span.name.ends_with("/SetOverride")
                && str_attr(&r.span.attributes, "request_id").as_deref() == Some(&replaced)
        })
        .expect("the span of the write with a bad traceparent");
    assert!(fresh.span.parent_span_id.is_empty(), "a root span");
    assert_eq!(hex(&fresh.span.trace_id), bad_trace_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_http_carry_request_ids_into_the_audit_and_errors() {
    // goal: the CLI sends its request id (given or fresh) with every call, the audit shows it,
    // an error prints it; HTTP echoes the id it used; ids at the limit are kept
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(Duration::from_secs(15)).await;
    let node = &cluster.nodes[&1];
    let cli = |args: &[&str]| {
        Command::new(support::binary())
            .args(["--endpoints", &node.grpc])
            .args(args)
            .env_remove("SWITCHYARD_ADMIN_TOKEN")
            .output()
            .expect("run switchyard")
    };

    // phase: a write with --request-id at the length limit; the audit table and JSON show it
    let at_limit = format!("op-{}", "x".repeat(125));
    assert_eq!(at_limit.len(), 128);
    let out = cli(&[
        "breaker",
        "open",
        "payments/db",
        "--reason",
        "incident 7",
        "--request-id",
        &at_limit,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["audit", "--key", "payments/db", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let event = &json["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(event["request_id"], at_limit.as_str());
    assert_eq!(event["trace_id"], serde_json::Value::Null);
    let out = cli(&["audit", "--key", "payments/db"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("REQUEST_ID") && table.contains(&at_limit),
        "{table}"
    );

    // phase: without --request-id the CLI makes a fresh one per command
    let out = cli(&["breaker", "close", "payments/db", "--reason", "resolved"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = audit_of(&node.grpc, "payments/db").await;
    let fresh = &events.last().unwrap().request_id;
    switchyard_core::validate_request_id(fresh).unwrap();
    assert_ne!(fresh, &at_limit);

    // phase: errors print the request id, whether the node or the CLI refused
    let out = cli(&[
        "breaker",
        "get",
        "payments/none",
        "--request-id",
        "lookup-9",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("request id: lookup-9"), "{stderr}");
    let out = cli(&["breaker", "get", "payments/none"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let printed = stderr
        .lines()
        .find_map(|l| l.strip_prefix("request id: "))
        .unwrap_or_else(|| panic!("a request id on stderr: {stderr}"));
    switchyard_core::validate_request_id(printed).unwrap();
    // An id that breaks the rule is refused before anything is sent, naming the rule.
    let out = cli(&["status", "--request-id", &"y".repeat(129)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 to 128 characters"));

    // phase: HTTP echoes the id it used
    let echo = http_request_id(&node.http, Some("from-http.1"));
    assert_eq!(echo.as_deref(), Some("from-http.1"));
    let made = http_request_id(&node.http, Some("bad id")).unwrap();
    assert_ne!(made, "bad id");
    switchyard_core::validate_request_id(&made).unwrap();
    assert!(http_request_id(&node.http, None).is_some());
}

/// `GET /api/v1/status` with an optional `x-request-id`; the `x-request-id` answered.
fn http_request_id(addr: &str, id: Option<&str>) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let header = id
        .map(|id| format!("x-request-id: {id}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /api/v1/status HTTP/1.1\r\nhost: test\r\n{header}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .map(|v| v.trim().to_string())
}
