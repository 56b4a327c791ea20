//! Span export for `switchyard serve --otlp-endpoint URL` (or `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! The node's `tracing` spans go to an OTLP/gRPC collector through the OpenTelemetry SDK: a
//! batch processor on its own thread, the `opentelemetry-otlp` tonic exporter, and the
//! `tracing-opentelemetry` layer as the bridge. Without an endpoint none of this is built and
//! the layer is not in the subscriber at all, so a node that does not export pays nothing for
//! it. The standard `OTEL_*` variables (`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, ...) apply as the SDK defines them.
//!
//! The resource says which node sent a span: `service.name` is `switchyard` (unless
//! `OTEL_SERVICE_NAME` says otherwise), `service.instance.id` is `node-N` and
//! `switchyard.node_id` is N.

use anyhow::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// A running exporter; [`TraceExport::shutdown`] flushes what is buffered.
#[derive(Debug)]
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Builds the exporter towards `endpoint` and returns it with the layer to add to the
    /// subscriber. Must run inside the tokio runtime the exporter's connection will live on.
    pub fn start<S>(
        endpoint: &str,
        node_id: Option<u64>,
    ) -> anyhow::Result<(
        Self,
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    )>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("--otlp-endpoint {endpoint}: cannot build the exporter"))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("switchyard");
        }
        if let Some(id) = node_id {
            resource = resource.with_attributes([
                KeyValue::new("service.instance.id", format!("node-{id}")),
                KeyValue::new("switchyard.node_id", i64::try_from(id).unwrap_or(i64::MAX)),
            ]);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("switchyard");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer);
        Ok((Self { provider }, layer))
    }

    /// Exports what is still buffered and stops the exporter (called before the process
    /// exits, while the runtime its connection uses still runs).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: trace export did not shut down cleanly: {e}");
        }
    }
}
