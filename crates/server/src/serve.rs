//! Wiring a node to its listeners: `run` is what `switchyard serve` and the tests call.

use std::future::Future;

use switchyard_proto::raft::raft_server::RaftServer;
use switchyard_proto::{admin::admin_server::AdminServer, client::client_server::ClientServer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_stream::Stream;
use tonic::transport::Server;
use tonic::transport::server::Connected;

use crate::http;
use crate::node::{Node, NodeDeps};
use crate::services::{AdminService, ClientService, RaftService};
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
    let node = Node::start(config, deps).await?;
    tracing::info!(
        node_id = node.id(),
        addr = node.config().advertised(),
        "node started"
    );
    serve_node(node, grpc_incoming, http_listener, shutdown).await
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop_tx.send_replace(true);
    });
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };

    let http_task = http_listener.map(|listener| {
        let app = http::router(node.clone());
        let stop = wait_stop(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
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
        .layer(node.rpc_metrics().layer())
        .add_service(health_service)
        .add_service(
            ClientServer::new(ClientService::new(node.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
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
    let served = router
        .serve_with_incoming_shutdown(grpc_incoming, wait_stop(stop_rx.clone()))
        .await;
    tracing::info!(node_id = node.id(), "gRPC stopped; shutting the node down");
    health_reporter
        .set_not_serving::<ClientServer<ClientService>>()
        .await;
    node.shutdown().await;
    if let Some(task) = http_task {
        let _ = task.await;
    }
    served.map_err(|e| NodeError::Raft(format!("gRPC server: {e}")))?;
    Ok(())
}
