//! Wiring a node to its listeners: `run` is what `switchyard serve` and the tests call.

use std::future::Future;

use switchyard_proto::raft::raft_server::RaftServer;
use switchyard_proto::{admin::admin_server::AdminServer, client::client_server::ClientServer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::transport::server::Connected;

use crate::http;
use crate::node::{Node, NodeDeps};
use crate::response_date::ResponseDateLayer;
use crate::services::{AdminService, ClientRoutes, ClientService, RaftService};
use crate::tls::TlsState;
use crate::tls::accept::{TlsListener, tls_incoming};
use crate::{config::NodeConfig, error::NodeError};

/// Starts a node and serves gRPC on `grpc_incoming` and (optionally) HTTP on `http_listener`
/// until `shutdown` resolves; then finishes in-flight calls, stops Raft and flushes the store.
pub async fn run<I, IO, IE>(
    config: NodeConfig,
    deps: NodeDeps,
    grpc_incoming: I,
    http_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError>
where
    I: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // TLS files are read before Raft starts: a bad certificate stops the node here, naming
    // the file, instead of after it has joined the cluster.
    let tls = TlsState::load(&config)?;
    run_with_tls(config, deps, tls, grpc_incoming, http_listener, shutdown).await
}

/// [`run`] with TLS material the caller keeps a handle to, to [`TlsState::reload`] it while
/// the node serves (`switchyard serve` does on SIGHUP and when the files change).
pub async fn run_with_tls<I, IO, IE>(
    config: NodeConfig,
    deps: NodeDeps,
    tls: Option<TlsState>,
    grpc_incoming: I,
    http_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError>
where
    I: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let node = Node::start(config, deps).await?;
    tracing::info!(
        node_id = node.id(),
        addr = node.config().advertised(),
        "node started"
    );
    serve_with_tls(node, tls, grpc_incoming, http_listener, shutdown).await
}

/// Serves an already started node (the simulation starts nodes itself).
pub async fn serve_node<I, IO, IE>(
    node: Node,
    grpc_incoming: I,
    http_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError>
where
    I: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = match TlsState::load(node.config()) {
        Ok(tls) => tls,
        Err(e) => {
            node.shutdown().await;
            return Err(NodeError::Tls(e));
        }
    };
    serve_with_tls(node, tls, grpc_incoming, http_listener, shutdown).await
}

async fn serve_with_tls<I, IO, IE>(
    node: Node,
    tls: Option<TlsState>,
    grpc_incoming: I,
    http_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError>
where
    I: Stream<Item = Result<IO, IE>> + Send + 'static,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(tls) = &tls {
        tracing::info!(
            mtls = tls.material().mtls(),
            http = node.config().http_tls_enabled(),
            "gRPC serves TLS"
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = node.clone();
    tokio::spawn(async move {
        shutdown.await;
        // A leader hands over first, while it still serves: writes forwarded to it in the
        // meantime are answered, and the cluster does not wait out an election.
        stopping.hand_over_leadership().await;
        // End the long-lived calls first (Watch streams, the tick and forward loops): the gRPC
        // drain below waits for every in-flight call, and a Watch never finishes by itself.
        stopping.begin_shutdown();
        stop_tx.send_replace(true);
    });
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };

    let http_tls = tls.clone().filter(|_| node.config().http_tls_enabled());
    let http_task = http_listener.map(|listener| {
        let app = http::router(node.clone());
        let stop = wait_stop(stop_rx.clone());
        tokio::spawn(async move {
            let served = match http_tls {
                Some(tls) => match TlsListener::new(listener, tls) {
                    Ok(listener) => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stop)
                            .await
                    }
                    Err(e) => Err(e),
                },
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .await
                }
            };
            if let Err(e) = served {
                tracing::error!(error = %e, "http server failed");
            }
        })
    });

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ClientServer<ClientService>>()
        .await;
    health_reporter
        .set_serving::<AdminServer<AdminService>>()
        .await;
    let limit = node.config().limits.message_bytes_max as usize;
    let raft_limit = usize::try_from(node.config().limits.snapshot_bytes_max)
        .unwrap_or(usize::MAX)
        .min(64 * 1024 * 1024);
    let router = Server::builder()
        .tcp_nodelay(true)
        .layer(ResponseDateLayer::new(std::sync::Arc::clone(node.clock())))
        .layer(tower::util::MapResponseLayer::new(
            oversized_is_resource_exhausted,
        ))
        .layer(node.rpc_metrics().layer())
        .layer(crate::deadline::DeadlineLayer)
        .layer(crate::trace_context::TraceContextLayer::new(
            node.id(),
            std::sync::Arc::clone(node.request_ids()),
        ))
        .add_service(health_service)
        .add_service(ClientRoutes::new(ClientService::new(node.clone()), limit))
        .add_service(
            AdminServer::new(AdminService::new(node.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            RaftServer::new(RaftService::new(node.clone()))
                .max_decoding_message_size(raft_limit)
                .max_encoding_message_size(raft_limit),
        );
    let stop = wait_stop(stop_rx.clone());
    let served = match tls {
        Some(tls) => {
            let incoming = grpc_incoming.map(|r| r.map_err(Into::<BoxError>::into));
            router
                .serve_with_incoming_shutdown(tls_incoming(incoming, tls), stop)
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(grpc_incoming, stop)
                .await
        }
    };
    tracing::info!(node_id = node.id(), "gRPC stopped; shutting the node down");
    health_reporter
        .set_not_serving::<ClientServer<ClientService>>()
        .await;
    node.shutdown().await;
    if let Some(task) = http_task {
        let _ = task.await;
    }
    served.map_err(|e| NodeError::Transport(format!("gRPC server: {e}")))?;
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// tonic refuses a request over `max_decoding_message_size` with `OutOfRange`; DESIGN §8 says
/// every limit answers `ResourceExhausted`. The refusal is a trailers-only response, so its
/// status sits in the headers, where this rewrites the code and keeps tonic's message (which
/// names the size and the limit).
fn oversized_is_resource_exhausted(
    mut response: ::http::Response<tonic::body::Body>,
) -> ::http::Response<tonic::body::Body> {
    const OUT_OF_RANGE: &str = "11";
    const RESOURCE_EXHAUSTED: &str = "8";
    let headers = response.headers_mut();
    let oversized = headers
        .get("grpc-status")
        .is_some_and(|s| s.as_bytes() == OUT_OF_RANGE.as_bytes())
        && headers.get("grpc-message").is_some_and(|m| {
            m.to_str().is_ok_and(|m| {
                m.contains("message%20length%20too%20large")
                    || m.contains("message length too large")
            })
        });
    if oversized {
        headers.insert(
            "grpc-status",
            ::http::HeaderValue::from_static(RESOURCE_EXHAUSTED),
        );
    }
    response
}
