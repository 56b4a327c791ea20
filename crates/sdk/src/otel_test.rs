//! Spans of traced calls, seen by the OpenTelemetry SDK's in-memory exporter.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanId, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use switchyard_core::{BreakerKey, BreakerState};
use tower::{Layer, Service};

use super::*;
use crate::breaker_shared::POOL_CLUSTER;
use crate::wrapped_call::test_support::cancel_mid_call;
use crate::{Bulkhead, CallError, Fallback, Guard, RejectReason, SwitchyardLayer};

/// A tracer provider whose spans land in memory.
struct Recorder {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
}

impl Recorder {
    fn new() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        Self { provider, exporter }
    }

    /// A detached breaker traced into this recorder, its SDK seen in `mode`.
    fn breaker(&self, key: &str, mode: Mode) -> Breaker {
        let tracer = BoxedTracer::new(Box::new(self.provider.tracer("test")));
        let tracing = CallTracing::new(tracer, ModeSource::Fixed(mode));
        Breaker::detached(BreakerKey::parse(key).expect("key"))
            .with_tracing(Some(Arc::new(tracing)))
    }

    /// Runs `f` inside a parent span; returns the parent's context.
    fn in_parent<R>(&self, f: impl FnOnce() -> R) -> (R, opentelemetry::trace::SpanContext) {
        let parent = self.provider.tracer("caller").start("request");
        let cx = Context::current_with_span(parent);
        let span_context = cx.span().span_context().clone();
        let r = {
            let _attached = cx.clone().attach();
            f()
        };
        cx.span().end();
        (r, span_context)
    }

    fn spans(&self, name: &str) -> Vec<SpanData> {
        let spans = self.exporter.get_finished_spans().expect("spans");
        spans.into_iter().filter(|s| s.name == name).collect()
    }
}

fn attrs(span: &SpanData) -> HashMap<&str, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect()
}

fn s(v: &'static str) -> Value {
    Value::from(v)
}

/// Polls a future that completes at once.
fn now<F: std::future::Future>(fut: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(fut).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the call completes on its first poll"),
    }
}

#[test]
fn an_admitted_call_joins_the_callers_trace_and_runs_inside_its_span() {
    let rec = Recorder::new();
    let b = rec.breaker("payments/ml-fraud", Mode::Cluster);
    let (inner, parent) = rec.in_parent(|| {
        now(b.call(|| async { Ok::<_, ()>(Context::current().span().span_context().clone()) }))
            .expect("admitted")
    });
    let [call] = rec.spans(SPAN_CALL).try_into().expect("one call span");
    assert_eq!(
        call.span_context.trace_id(),
        parent.trace_id(),
        "same trace"
    );
    assert_eq!(
        call.parent_span_id,
        parent.span_id(),
        "child of the caller's span"
    );
    assert_eq!(
        inner.span_id(),
        call.span_context.span_id(),
        "the call ran inside it"
    );
    let a = attrs(&call);
    assert_eq!(a[attr::KEY], s("payments/ml-fraud"));
    assert_eq!(a[attr::DECISION], s(decision::ADMITTED));
    assert_eq!(a[attr::PERMIT], s("normal"));
    assert_eq!(a[attr::STATE], s("closed"));
    assert_eq!(a[attr::MODE], s("cluster"));
    assert_eq!(a[attr::OUTCOME], s("success"));
    assert!(!a.contains_key(attr::REJECT_REASON));
    assert_eq!(call.status, Status::Unset);
}

#[test]
fn a_rejected_call_records_the_reason_and_the_state() {
    let rec = Recorder::new();
    let b = rec.breaker("payments/ml-fraud", Mode::Stale);
    b.shared.publish_decision(
        Mode::Stale,
        Some(BreakerState::Open),
        BreakerState::Closed,
        7,
    );
    let (err, parent) =
        rec.in_parent(|| now(b.call(|| async { Ok::<_, ()>(()) })).expect_err("open"));
    assert!(matches!(err, CallError::Rejected(r) if r.reason == RejectReason::ClusterOpen));
    let [call] = rec.spans(SPAN_CALL).try_into().expect("one call span");
    assert_eq!(call.parent_span_id, parent.span_id());
    let a = attrs(&call);
    assert_eq!(a[attr::DECISION], s(decision::REJECTED));
    assert_eq!(a[attr::REJECT_REASON], s("cluster_open"));
    assert_eq!(a[attr::STATE], s("open"));
    assert_eq!(a[attr::MODE], s("stale"));
    assert!(!a.contains_key(attr::OUTCOME), "the call was not made");
    assert!(matches!(call.status, Status::Error { .. }));
}

#[test]
fn a_probe_is_recorded_with_its_permit_kind() {
    let rec = Recorder::new();
    let b = rec.breaker("payments/ml-fraud", Mode::Cluster);
    b.shared.publish_decision(
        Mode::Cluster,
        Some(BreakerState::HalfOpen),
        BreakerState::Closed,
        3,
    );
    b.shared.probes[POOL_CLUSTER]
        .tokens
        .store(1, std::sync::atomic::Ordering::Relaxed);
    now(b.call(|| async { Err::<(), _>("still down") })).expect_err("the probe fails");
    let err = now(b.call(|| async { Ok::<_, ()>(()) })).expect_err("no token left");
    assert!(matches!(err, CallError::Rejected(r) if r.reason == RejectReason::HalfOpenNoPermit));
    let [probe, rejected] = rec.spans(SPAN_CALL).try_into().expect("two call spans");
    let a = attrs(&probe);
    assert_eq!(a[attr::DECISION], s(decision::PROBE));
    assert_eq!(a[attr::PERMIT], s("cluster_probe"));
    assert_eq!(a[attr::STATE], s("half_open"));
    assert_eq!(a[attr::OUTCOME], s("failure"));
    assert!(matches!(probe.status, Status::Error { .. }));
    assert_eq!(
        attrs(&rejected)[attr::REJECT_REASON],
        s("half_open_no_permit")
    );
}

#[tokio::test]
async fn a_fallback_chain_names_the_step_that_decided() {
    let rec = Recorder::new();
    let primary = rec.breaker("payments/ml-primary", Mode::Cluster);
    let cheap = rec.breaker("payments/ml-cheap", Mode::Cluster);
    primary.shared.publish_decision(
        Mode::Cluster,
        Some(BreakerState::Open),
        BreakerState::Closed,
        2,
    );
    let decided = Fallback::new()
        .then("ml-primary", &primary, || async { Ok::<_, String>(0.9) })
        .then("ml-cheap", &cheap, || async {
            Err("model missing".to_owned())
        })
        .then_unguarded("rules", || async { Ok(0.5) })
        .run()
        .await
        .expect("the rules answer");
    assert_eq!(decided.decided_by, "rules");
    let [chain] = rec.spans(SPAN_FALLBACK).try_into().expect("one chain span");
    let a = attrs(&chain);
    assert_eq!(a[attr::FALLBACK_DECIDED_BY], s("rules"));
    assert_eq!(a[attr::FALLBACK_STEPS_TRIED], Value::I64(3));
    let [skipped, failed] = rec.spans(SPAN_CALL).try_into().expect("two step spans");
    for step in [&skipped, &failed] {
        assert_eq!(
            step.parent_span_id,
            chain.span_context.span_id(),
            "inside the chain"
        );
        assert_eq!(step.span_context.trace_id(), chain.span_context.trace_id());
    }
    let (a, b) = (attrs(&skipped), attrs(&failed));
    assert_eq!(a[attr::FALLBACK_STEP], s("ml-primary"));
    assert_eq!(a[attr::REJECT_REASON], s("cluster_open"));
    assert_eq!(b[attr::FALLBACK_STEP], s("ml-cheap"));
    assert_eq!(b[attr::DECISION], s(decision::ADMITTED));
    assert_eq!(b[attr::OUTCOME], s("failure"));

    // phase: every step fails — the chain says so, and names no step
    let err = Fallback::<f64, String>::new()
        .then("ml-cheap", &cheap, || async { Err("down".to_owned()) })
        .run()
        .await
        .expect_err("nothing answers");
    assert_eq!(err.attempts.len(), 1);
    let chains = rec.spans(SPAN_FALLBACK);
    let a = attrs(&chains[1]);
    assert!(!a.contains_key(attr::FALLBACK_DECIDED_BY));
    assert!(matches!(chains[1].status, Status::Error { .. }));
}

#[tokio::test]
async fn guard_records_bulkhead_rejections_and_each_attempt() {
    let rec = Recorder::new();
    let bulkhead = Bulkhead::new("ml", 1);
    let guard =
        Guard::new(rec.breaker("payments/ml-fraud", Mode::LocalOnly)).bulkhead(bulkhead.clone());
    let held = bulkhead.try_acquire().expect("the only slot");
    guard
        .call(|| async { Ok::<_, ()>(()) })
        .await
        .expect_err("full");
    drop(held);
    guard
        .call(|| async { Ok::<_, ()>(()) })
        .await
        .expect("admitted");
    let [full, ok] = rec.spans(SPAN_CALL).try_into().expect("two call spans");
    assert_eq!(attrs(&full)[attr::REJECT_REASON], s("bulkhead"));
    assert_eq!(attrs(&full)[attr::MODE], s("local_only"));
    assert_eq!(attrs(&ok)[attr::OUTCOME], s("success"));
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_call_ends_its_span_with_outcome_timeout() {
    let rec = Recorder::new();
    let guard = Guard::new(rec.breaker("payments/ml-fraud", Mode::Cluster))
        .timeout(Duration::from_millis(50));
    guard
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, ()>(())
        })
        .await
        .expect_err("times out");
    let [call] = rec.spans(SPAN_CALL).try_into().expect("one call span");
    assert_eq!(attrs(&call)[attr::OUTCOME], s("timeout"));
}

#[test]
fn a_cancelled_call_ends_its_span_with_outcome_cancelled() {
    let rec = Recorder::new();
    let b = rec.breaker("payments/ml-fraud", Mode::Cluster);
    cancel_mid_call(b.call(std::future::pending::<Result<(), ()>>));
    let [call] = rec.spans(SPAN_CALL).try_into().expect("one call span");
    assert_eq!(attrs(&call)[attr::OUTCOME], s("cancelled"));
}

#[test]
fn the_layer_traces_each_request_and_the_service_runs_inside_the_span() {
    let rec = Recorder::new();
    let mut svc = SwitchyardLayer::new(rec.breaker("payments/ml-fraud", Mode::Cluster)).layer(
        tower::service_fn(|_: ()| {
            let id = Context::current().span().span_context().span_id();
            async move { Ok::<SpanId, ()>(id) }
        }),
    );
    let inner = now(svc.call(())).expect("admitted");
    let [call] = rec.spans(SPAN_CALL).try_into().expect("one call span");
    assert_eq!(
        inner,
        call.span_context.span_id(),
        "the service was called inside the span"
    );
    assert_eq!(attrs(&call)[attr::DECISION], s(decision::ADMITTED));
}

#[test]
fn an_untraced_breaker_records_nothing() {
    let rec = Recorder::new();
    let b = Breaker::detached(BreakerKey::parse("payments/ml-fraud").expect("key"));
    rec.in_parent(|| now(b.call(|| async { Ok::<_, ()>(()) })).expect("admitted"));
    assert!(rec.spans(SPAN_CALL).is_empty());
    assert_eq!(rec.spans("request").len(), 1, "the recorder works");
}
