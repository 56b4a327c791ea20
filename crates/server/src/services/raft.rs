//! The Raft service: openraft RPCs from peers, and requests forwarded by followers.

use switchyard_proto::raft::{RaftMessage, SnapshotChunk, raft_server};
use switchyard_store::codec;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Role;
use crate::error::NodeError;
use crate::forward::ForwardRequest;
use crate::network::receive_snapshot;
use crate::node::Node;

/// Serves peer-to-peer Raft traffic for one node.
#[derive(Debug, Clone)]
pub struct RaftService {
    node: Node,
}

impl RaftService {
    /// The service for `node`.
    pub fn new(node: Node) -> Self {
        Self { node }
    }

    /// The cluster token (when configured) and, under mTLS, a verified client certificate.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        crate::tls::require_client_cert(self.node.config(), request)?;
        self.node.tokens().check(Role::Cluster, request.metadata())
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    m: &RaftMessage,
) -> Result<T, Status> {
    codec::decode(what, &m.payload).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn reply<T: serde::Serialize>(value: &T) -> Response<RaftMessage> {
    Response::new(RaftMessage {
        payload: codec::encode(value),
    })
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let vote = decode("vote request", request.get_ref())?;
        let response = self.node.raft().vote(vote).await.map_err(raft_status)?;
        Ok(reply(&response))
    }

    async fn pre_vote(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let vote = decode("pre-vote request", request.get_ref())?;
        let response = self
            .node
            .raft()
            .pre_vote(vote)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(reply(&response))
    }

    async fn transfer_leader(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let transfer = decode("transfer leader request", request.get_ref())?;
        let response = self
            .node
            .raft()
            .handle_transfer_leader(transfer)
            .await
            .map_err(raft_status)?;
        Ok(reply(&response))
    }

    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let append = decode("append entries request", request.get_ref())?;
        let response = self
            .node
            .raft()
            .append_entries(append)
            .await
            .map_err(raft_status)?;
        Ok(reply(&response))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let max =
            usize::try_from(self.node.config().limits.snapshot_bytes_max).unwrap_or(usize::MAX);
        let (vote, meta, data) = receive_snapshot(request.into_inner(), max).await?;
        let snapshot = openraft::alias::SnapshotOf::<switchyard_store::TypeConfig, Vec<u8>> {
            meta,
            snapshot: data,
        };
        let response = self
            .node
            .raft()
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(raft_status)?;
        Ok(reply(&response))
    }

    async fn forward(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.authorize(&request)?;
        let deadline_unix_ms = request
            .metadata()
            .get(crate::deadline::DEADLINE_HEADER)
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "`{}` must be Unix milliseconds",
                            crate::deadline::DEADLINE_HEADER
                        ))
                    })
            })
            .transpose()?;
        let forwarded: ForwardRequest = decode("forward request", request.get_ref())?;
        let answer = self.node.serve_forwarded(forwarded, deadline_unix_ms).await;
        Ok(reply(&answer))
    }
}

/// An openraft error on this node, as the one conversion in [`crate::error`] makes it.
fn raft_status(e: impl std::fmt::Display) -> Status {
    NodeError::Raft(e.to_string()).into()
}
