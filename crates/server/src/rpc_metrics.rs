//! Per-RPC latency histograms: a tower layer around the node's gRPC server.
//!
//! [`RpcMetricsLayer`] times every gRPC call from the request reaching the server to the
//! response headers being ready, and records the seconds into a Prometheus `Histogram`
//! labelled by `rpc` (`switchyard.client.v1.Client/Report`). For server-streaming calls
//! (`Watch`) that is the time to open the stream, not its lifetime. `/metrics` exports the
//! histograms as `switchyard_rpc_duration_seconds`.
//!
//! Why a layer and not timing inside each handler: one place covers every service (client,
//! admin, raft, health) including calls refused before the handler runs (authentication,
//! decoding), and no handler can forget it. The cost per call is one `Instant::now()` pair,
//! one boxed future and a read-locked map lookup.
//!
//! The `rpc` label comes from the request path, which a caller chooses, so label values are
//! bounded: only paths of the form `/package.Service/Method` with a short ASCII name are used,
//! and after [`RPC_LABELS_MAX`] distinct values every new one is recorded as `other`.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tower::{Layer, Service};

/// Distinct `rpc` label values kept before new ones are folded into `other`.
pub const RPC_LABELS_MAX: usize = 128;
/// Longest request path used as a label, bytes.
pub const RPC_PATH_MAX_BYTES: usize = 96;
/// Histogram bucket upper bounds, seconds: 250 µs to 10 s.
const BUCKETS_SECONDS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The label set of one RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// `package.Service/Method`, or `other`.
    pub rpc: String,
}

type Durations = Family<RpcLabels, Histogram, fn() -> Histogram>;

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS_SECONDS)
}

/// The node's RPC latency histograms. Cloning shares them.
#[derive(Clone, Debug)]
pub struct RpcMetrics {
    durations: Durations,
    labels: Arc<RwLock<HashSet<String>>>,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        Self {
            durations: Family::new_with_constructor(new_histogram as fn() -> Histogram),
            labels: Arc::default(),
        }
    }
}

impl RpcMetrics {
    /// The histograms, for registering at scrape time.
    pub fn durations(&self) -> Durations {
        self.durations.clone()
    }

    /// A layer that records into these histograms.
    pub fn layer(&self) -> RpcMetricsLayer {
        RpcMetricsLayer {
            metrics: self.clone(),
        }
    }

    /// Records one call of `path` that took `seconds`.
    pub fn observe(&self, path: &str, seconds: f64) {
        let rpc = self.label(path);
        self.durations
            .get_or_create(&RpcLabels { rpc })
            .observe(seconds);
    }

    /// The bounded label for a request path.
    fn label(&self, path: &str) -> String {
        let Some(rpc) = rpc_name(path) else {
            return "other".into();
        };
        {
            let known = self.labels.read().unwrap_or_else(|p| p.into_inner());
            if known.contains(rpc) {
                return rpc.to_owned();
            }
        }
        let mut known = self.labels.write().unwrap_or_else(|p| p.into_inner());
        if known.contains(rpc) || known.len() < RPC_LABELS_MAX {
            known.insert(rpc.to_owned());
            rpc.to_owned()
        } else {
            "other".into()
        }
    }
}

/// `package.Service/Method` from `/package.Service/Method`, if the path has that shape.
fn rpc_name(path: &str) -> Option<&str> {
    let rpc = path.strip_prefix('/')?;
    let (service, method) = rpc.split_once('/')?;
    let fits = rpc.len() <= RPC_PATH_MAX_BYTES
        && !service.is_empty()
        && !method.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    fits.then_some(rpc)
}

/// A tower layer that times gRPC calls into [`RpcMetrics`].
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    metrics: RpcMetrics,
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`RpcMetricsLayer`] wraps around the gRPC router.
#[derive(Clone, Debug)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: RpcMetrics,
}

impl<S, B> Service<http::Request<B>> for RpcMetricsService<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            metrics.observe(&path, started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_rpc_names_and_bounded() {
        assert_eq!(
            rpc_name("/switchyard.client.v1.Client/Report"),
            Some("switchyard.client.v1.Client/Report")
        );
        assert_eq!(rpc_name("/nope"), None);
        assert_eq!(rpc_name("/a b/c"), None);
        assert_eq!(rpc_name(&format!("/s/{}", "m".repeat(200))), None);

        let metrics = RpcMetrics::default();
        for i in 0..RPC_LABELS_MAX + 10 {
            metrics.observe(&format!("/svc/M{i}"), 0.001);
        }
        assert_eq!(metrics.label("/svc/M0"), "svc/M0");
        assert_eq!(metrics.label("/svc/Unseen"), "other");
        assert_eq!(metrics.label("garbage"), "other");
    }
}
