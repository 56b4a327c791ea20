//! Goal: a real client (its agent running, local-only) built with `.tracing(true)` records its
//! guarded calls through the global tracer provider, with the SDK mode and the local breaker's
//! decisions (admitted, rejected `local_open`, the half-open probe); a client built without
//! it records nothing. One test function: the global provider is process-wide.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::Value;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use switchyard_sdk::otel::{SPAN_CALL, attr};
use switchyard_sdk::{CallError, Client, Policy, RejectReason, WindowSpec};

fn attrs(span: &SpanData) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.clone()))
        .collect()
}

fn calls_of(exporter: &InMemorySpanExporter, key: &str) -> Vec<HashMap<String, Value>> {
    let spans = exporter.get_finished_spans().expect("spans");
    spans
        .iter()
        .filter(|s| s.name == SPAN_CALL)
        .map(attrs)
        .filter(|a| a.get(attr::KEY) == Some(&Value::from(key.to_owned())))
        .collect()
}

fn s(v: &'static str) -> Value {
    Value::from(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_client_records_its_decisions_and_an_untraced_one_nothing() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());

    let policy = Policy {
        window: WindowSpec::count(10),
        min_calls: 5,
        min_instances: 1,
        open_duration_ms: 200,
        open_jitter_percent: 0,
        probe_permits: 1,
        probe_success_threshold: 1,
        ..Policy::default()
    };
    let traced = Client::builder()
        .report_interval(Duration::from_millis(10))
        .tracing(true)
        .build()
        .expect("local-only client");
    let untraced = Client::builder()
        .report_interval(Duration::from_millis(10))
        .build()
        .expect("local-only client");
    let b = traced
        .breaker_with_policy("payments/ml-fraud", policy.clone())
        .expect("breaker");
    let quiet = untraced
        .breaker_with_policy("payments/quiet", policy)
        .expect("breaker");

    // phase: admitted calls, inside the caller's span
    let caller = provider.tracer("caller").start("checkout");
    let cx = opentelemetry::Context::current_with_span(caller);
    let trace_id = cx.span().span_context().trace_id();
    {
        use opentelemetry::context::FutureExt as _;
        b.call(|| async { Ok::<_, ()>(()) })
            .with_context(cx.clone())
            .await
            .expect("admitted");
    }
    quiet
        .call(|| async { Ok::<_, ()>(()) })
        .await
        .expect("admitted");
    let spans = exporter.get_finished_spans().expect("spans");
    let first = spans
        .iter()
        .find(|s| s.name == SPAN_CALL)
        .expect("a call span");
    assert_eq!(
        first.span_context.trace_id(),
        trace_id,
        "joined the caller's trace"
    );
    let calls = calls_of(&exporter, "payments/ml-fraud");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0][attr::DECISION], s("admitted"));
    assert_eq!(calls[0][attr::MODE], s("local_only"));
    assert_eq!(calls[0][attr::STATE], s("closed"));

    // phase: failures trip the local breaker; the agent publishes OPEN
    for _ in 0..10 {
        let _ = b.call(|| async { Err::<(), _>("down") }).await;
        let _ = quiet.call(|| async { Err::<(), _>("down") }).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let rejected = loop {
        match b.call(|| async { Ok::<_, ()>(()) }).await {
            Err(CallError::Rejected(r)) => break r,
            _ => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the breaker never opened"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(rejected.reason, RejectReason::LocalOpen);
    let calls = calls_of(&exporter, "payments/ml-fraud");
    let last = calls.last().expect("the rejection");
    assert_eq!(last[attr::DECISION], s("rejected"));
    assert_eq!(last[attr::REJECT_REASON], s("local_open"));
    assert_eq!(last[attr::STATE], s("open"));

    // phase: after the open duration, one probe is admitted and closes the breaker
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if b.call(|| async { Ok::<_, ()>(()) }).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no probe was admitted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = calls_of(&exporter, "payments/ml-fraud");
    let probe = calls.last().expect("the probe");
    assert_eq!(probe[attr::DECISION], s("probe"));
    assert_eq!(probe[attr::PERMIT], s("local_probe"));
    assert_eq!(probe[attr::STATE], s("half_open"));
    assert_eq!(probe[attr::OUTCOME], s("success"));

    // phase: the untraced client's calls (admitted, failed, rejected) left no span
    assert!(
        quiet.call(|| async { Ok::<_, ()>(()) }).await.is_err(),
        "its breaker is open too"
    );
    assert!(calls_of(&exporter, "payments/quiet").is_empty());
    let _ = provider.shutdown();
}
