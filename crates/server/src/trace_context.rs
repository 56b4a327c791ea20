//! Request ids and W3C trace context at the node's edges.
//!
//! Every gRPC and HTTP request an operator or a service makes passes through
//! [`TraceContextLayer`]:
//!
//! ```text
//!   x-request-id ── valid? ──yes──> kept ─┐          (else a fresh UUID-shaped id)
//!   traceparent  ── valid? ──yes──> parent of the request span   (else a new trace)
//!                                         v
//!   task-local RequestTrace ──> Node::write puts it in the Envelope ──> audit events, and
//!                           └─> a forwarded hop carries both headers on      every node's apply
//!   response: x-request-id = the id used
//! ```
//!
//! The rule for `x-request-id` is the core's (`validate_request_id`: 1 to 128 characters of
//! `[A-Za-z0-9._-]`). A request whose id breaks it is not refused: the node **replaces** the
//! id with one of its own and answers with it, so a correlation header never fails a write and
//! the caller still learns which id the audit trail holds. An invalid `traceparent` is ignored
//! (the request starts a new trace), as the W3C recommendation says.
//!
//! Spans reach a tracing back end only when the node exports them (`--otlp-endpoint`); without
//! an exporter, joining a trace is a failed downcast and nothing else. Raft traffic between
//! peers (appends, votes, snapshots) gets no span and no id: it is not a request anyone
//! quotes; a forwarded request is, and joins the caller's trace on the leader.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use switchyard_core::{RequestIds, RequestTrace, TraceParent, validate_request_id};
use switchyard_proto::{REQUEST_ID_METADATA_KEY, TRACEPARENT_METADATA_KEY};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The request a task is serving.
#[derive(Debug, Clone)]
struct Serving {
    trace: RequestTrace,
    /// An operator request (see [`Kind`]): the node's work for it gets `info` spans.
    operator: bool,
}

tokio::task_local! {
    static CURRENT: Serving;
}

/// Whether the task serves an operator request, whose work (write, forward) gets spans of its
/// own; fleet calls and the node's own loops get none.
pub fn operator_request() -> bool {
    CURRENT.try_with(|s| s.operator).unwrap_or(false)
}

/// The request being served, if any, with the trace context its work continues: the node's
/// current span when spans are exported (so a leader's spans hang under this node's), else
/// the caller's `traceparent` as received.
pub fn current() -> Option<RequestTrace> {
    let mut trace = CURRENT.try_with(|s| s.trace.clone()).ok()?;
    if let Some(own) = span_traceparent(&tracing::Span::current()) {
        trace.traceparent = Some(own.to_string());
    }
    Some(trace)
}

/// Adds the current request's id and trace context to an outgoing call's metadata.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    let Some(trace) = current() else { return };
    // Both were validated (or made here) and are plain ASCII.
    if let Ok(id) = trace.request_id.parse() {
        metadata.insert(REQUEST_ID_METADATA_KEY, id);
    }
    if let Some(Ok(parent)) = trace.traceparent.map(|t| t.parse()) {
        metadata.insert(TRACEPARENT_METADATA_KEY, parent);
    }
}

/// The span context of `span` as a `traceparent`, when spans are exported.
fn span_traceparent(span: &tracing::Span) -> Option<TraceParent> {
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    sc.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
        parent_id: u64::from_be_bytes(sc.span_id().to_bytes()),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Makes `span` a child of the remote span `parent`. Without an exporter there is nothing to
/// join and this does nothing.
pub fn join(span: &tracing::Span, parent: TraceParent) {
    let remote = SpanContext::new(
        TraceId::from(parent.trace_id),
        SpanId::from(parent.parent_id),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    );
    let _not_exported =
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

/// The span of one entry's apply (see `switchyard_store::set_apply_span`): a child of the
/// request's trace context carried in the entry.
pub fn apply_span(index: u64, trace: &RequestTrace) -> tracing::Span {
    let span = tracing::info_span!("apply", index, request_id = %trace.request_id);
    if let Some(parent) = trace.traceparent.as_deref().and_then(TraceParent::parse) {
        join(&span, parent);
    }
    span
}

/// Which requests get an id and a span, and at which level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Operator calls (admin gRPC, the HTTP API) and requests a follower forwarded while
    /// serving one (they carry its request id): `info` spans.
    Operator,
    /// Fleet calls (SDK reports, watches, probes), health checks, metrics, the dashboard:
    /// `debug` spans, so a busy fleet does not flood the trace back end.
    Fleet,
    /// Raft traffic between peers, and the report batches followers forward on their own:
    /// passed through untouched.
    Peer,
}

fn kind(path: &str, headers: &http::HeaderMap) -> Kind {
    let forwarded_request =
        path == "/switchyard.raft.v1.Raft/Forward" && headers.contains_key(REQUEST_ID_METADATA_KEY);
    if forwarded_request || path.starts_with("/switchyard.admin.") || path.starts_with("/api/") {
        Kind::Operator
    } else if path.starts_with("/switchyard.raft.") {
        Kind::Peer
    } else {
        Kind::Fleet
    }
}

/// The request id a request is served under: its own when valid, else a fresh one.
fn request_id_of(headers: &http::HeaderMap, ids: &RequestIds) -> String {
    headers
        .get(REQUEST_ID_METADATA_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|id| validate_request_id(id).is_ok())
        .map_or_else(|| ids.next_id(), str::to_owned)
}

/// A tower layer (gRPC server and HTTP router) that gives each request its id and trace
/// context; see the module doc.
#[derive(Clone, Debug)]
pub struct TraceContextLayer {
    ids: Arc<RequestIds>,
    node_id: u64,
}

impl TraceContextLayer {
    /// The layer of node `node_id`, making ids from `ids`.
    pub fn new(node_id: u64, ids: Arc<RequestIds>) -> Self {
        Self { ids, node_id }
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`TraceContextLayer`] wraps.
#[derive(Clone, Debug)]
pub struct TraceContextService<S> {
    inner: S,
    layer: TraceContextLayer,
}

impl<S, B, RB> Service<http::Request<B>> for TraceContextService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let kind = kind(path, request.headers());
        if kind == Kind::Peer {
            return Box::pin(self.inner.call(request));
        }
        let request_id = request_id_of(request.headers(), &self.layer.ids);
        let parent = request
            .headers()
            .get(TRACEPARENT_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse);
        let node_id = self.layer.node_id;
        let span = match kind {
            Kind::Operator => tracing::info_span!(
                "request", otel.name = %path, request_id = %request_id, node_id
            ),
            _ => tracing::debug_span!(
                "request", otel.name = %path, request_id = %request_id, node_id
            ),
        };
        if let Some(parent) = parent {
            join(&span, parent);
        }
        let echo = http::HeaderValue::from_str(&request_id).ok();
        let serving = Serving {
            trace: RequestTrace {
                request_id,
                traceparent: parent.map(|p| p.to_string()),
            },
            operator: kind == Kind::Operator,
        };
        let call = {
            let _in_span = span.enter();
            self.inner.call(request)
        };
        let call = CURRENT.scope(serving, call.instrument(span));
        Box::pin(async move {
            let mut response = call.await?;
            if let Some(id) = echo {
                response.headers_mut().insert(REQUEST_ID_METADATA_KEY, id);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_up_to_the_limit_and_replaced_past_it() {
        let ids = RequestIds::new(1);
        let mut headers = http::HeaderMap::new();
        let at_limit = "a.B_9-".repeat(21) + "zz";
        assert_eq!(at_limit.len(), 128);
        headers.insert(REQUEST_ID_METADATA_KEY, at_limit.parse().unwrap());
        assert_eq!(request_id_of(&headers, &ids), at_limit);
        for bad in [
            "x".repeat(129),
            "has space".into(),
            "semi;colon".into(),
            String::new(),
        ] {
            headers.insert(REQUEST_ID_METADATA_KEY, bad.parse().unwrap());
            let used = request_id_of(&headers, &ids);
            assert_ne!(used, bad);
            validate_request_id(&used).unwrap();
        }
        headers.remove(REQUEST_ID_METADATA_KEY);
        validate_request_id(&request_id_of(&headers, &ids)).unwrap();
    }

    #[test]
    fn peers_pass_through_and_operators_are_traced() {
        let none = http::HeaderMap::new();
        let mut with_id = http::HeaderMap::new();
        with_id.insert(REQUEST_ID_METADATA_KEY, "req-1".parse().unwrap());
        let forward = "/switchyard.raft.v1.Raft/Forward";
        assert_eq!(
            kind("/switchyard.raft.v1.Raft/AppendEntries", &with_id),
            Kind::Peer
        );
        assert_eq!(kind(forward, &with_id), Kind::Operator);
        // A follower's own report batches carry no request id.
        assert_eq!(kind(forward, &none), Kind::Peer);
        assert_eq!(
            kind("/switchyard.admin.v1.Admin/SetOverride", &none),
            Kind::Operator
        );
        assert_eq!(kind("/api/v1/breakers/a/b/override", &none), Kind::Operator);
        assert_eq!(
            kind("/switchyard.client.v1.Client/Report", &with_id),
            Kind::Fleet
        );
        assert_eq!(kind("/metrics", &none), Kind::Fleet);
    }

    #[tokio::test]
    async fn without_an_exporter_the_callers_traceparent_is_carried_as_received() {
        let trace = RequestTrace {
            request_id: "req-1".into(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        assert_eq!(current(), None);
        let serving = Serving {
            trace: trace.clone(),
            operator: true,
        };
        let seen = CURRENT
            .scope(serving.clone(), async { (current(), operator_request()) })
            .await;
        assert_eq!(seen, (Some(trace), true));
        assert!(!operator_request());
        let mut metadata = tonic::metadata::MetadataMap::new();
        CURRENT
            .scope(serving, async { inject(&mut metadata) })
            .await;
        assert_eq!(metadata.get(REQUEST_ID_METADATA_KEY).unwrap(), "req-1");
        assert_eq!(
            metadata.get(TRACEPARENT_METADATA_KEY).unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }
}
