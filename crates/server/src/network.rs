//! Raft traffic between nodes over tonic: the [`RaftNetworkFactory`] openraft drives.
//!
//! Each RPC frame carries an openraft message encoded with the store's versioned codec (see
//! `proto/switchyard/raft/v1/raft.proto` for why the payload is opaque). Every call has a
//! deadline taken from openraft's [`RPCOption`]: simulated TCP does not retransmit, and a real
//! network can black-hole packets, so no Raft RPC may wait forever.
//!
//! # Catching up after a long partition
//!
//! A follower cut off for minutes returns behind the leader's purged log, so it is caught up
//! in two steps: a full snapshot (`full_snapshot`, streamed in chunks), then every entry
//! written since that snapshot was taken, which can be tens of thousands. openraft sends those
//! one AppendEntries call at a time, each a round trip plus a flush on the follower; calls
//! carry up to 4 096 entries (`node::bootstrap`) and at most [`APPEND_ENTRIES_BYTES_MAX`]
//! bytes, so a batch of large tick entries stays inside the peers' message limit: a call cut
//! short answers `PartialSuccess` and openraft sends the rest next. What remains is the
//! per-entry cost of catching up (docs/benchmarks.md, "Partitions and leadership under load").

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use openraft::alias::{EntryOf, LogIdOf, SnapshotOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, v2::RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend};
use switchyard_proto::raft::{RaftMessage, SnapshotChunk, raft_client::RaftClient};
use switchyard_store::codec;
use switchyard_store::{NodeId, TypeConfig};
use tonic::transport::Channel;

use crate::auth::ClusterCredentials;
use crate::error::NodeError;
use crate::transport::ChannelPool;

/// The most bytes of entries one AppendEntries call carries (always at least one entry).
///
/// openraft batches up to `max_payload_entries` entries per call (see `node::bootstrap`), a
/// count that says nothing about bytes: tick entries can be megabytes each, and a batch of
/// them must stay well inside the peers' 64 MiB Raft message limit. A call cut short reports
/// `PartialSuccess` up to its last entry, and openraft sends the rest next.
pub const APPEND_ENTRIES_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Keeps the longest prefix of `entries` (at least one) whose records fit in `bytes_max`;
/// returns the log id of the last entry kept if any were dropped, and the bytes kept.
fn keep_within_bytes(
    entries: &mut Vec<EntryOf<TypeConfig>>,
    bytes_max: u64,
) -> (Option<LogIdOf<TypeConfig>>, u64) {
    let mut total = 0u64;
    for (at, entry) in entries.iter().enumerate() {
        let size = codec::encoded_len(entry);
        if at > 0 && total + size > bytes_max {
            entries.truncate(at);
            return (entries.last().map(|entry| entry.log_id()), total);
        }
        total += size;
    }
    (None, total)
}

/// Bytes per microsecond an AppendEntries call's deadline allows for its entries, beyond
/// openraft's deadline (4 MB/s: a busy follower decodes, writes and flushes them).
const APPEND_ENTRIES_BYTES_PER_US: u64 = 4;

/// The deadline of an AppendEntries call carrying `bytes` of entries.
///
/// openraft gives every AppendEntries call the heartbeat interval (50 ms) as its deadline,
/// whatever it carries. A heartbeat or a small entry meets it; a batch of fleet ticks may not:
/// a follower must decode, write and flush it, and a new leader's first ticks carry the buffers
/// the old one handed over (up to `max_deltas_per_tick`, 200 000 deltas, each). A call that
/// can never finish in time is retried forever: under twice the rated ingest load a leader
/// change left the log stuck behind such an entry, every append timing out, and nothing was
/// applied again. A call gets openraft's deadline plus time for its bytes (a 4 MiB call, the
/// most one carries, about a second more); a small one keeps practically openraft's, so a
/// call to an unreachable follower still fails as fast as before.
fn append_deadline(openraft_deadline: Duration, bytes: u64) -> Duration {
    openraft_deadline + Duration::from_micros(bytes / APPEND_ENTRIES_BYTES_PER_US)
}

/// Size of one snapshot chunk on the wire.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Creates [`PeerClient`]s over the node's shared channel pool.
#[derive(Debug, Clone)]
pub struct Network {
    id: NodeId,
    pool: ChannelPool,
    credentials: ClusterCredentials,
}

impl Network {
    /// The network of node `id`: it reaches peers through `pool`, authenticating with
    /// `credentials`.
    pub fn new(id: NodeId, pool: ChannelPool, credentials: ClusterCredentials) -> Self {
        Self {
            id,
            pool,
            credentials,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            from: self.id,
            target,
            addr: node.addr.clone(),
            pool: self.pool.clone(),
            credentials: self.credentials.clone(),
        }
    }
}

/// The Raft RPC client for one peer.
#[derive(Debug)]
pub struct PeerClient {
    from: NodeId,
    target: NodeId,
    addr: String,
    pool: ChannelPool,
    credentials: ClusterCredentials,
}

impl PeerClient {
    /// A client on the pooled channel to the peer, and that channel's generation.
    fn client(&self) -> Result<(RaftClient<Channel>, u64), RPCError<TypeConfig>> {
        let pooled = self
            .pool
            .get_pooled(&self.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let client = RaftClient::new(pooled.channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        Ok((client, pooled.generation))
    }

    /// Maps a failed call's status through the node's one hop-error conversion
    /// ([`NodeError::from_hop_status`]): a failure on the way makes the peer unreachable for
    /// openraft (which backs off), and gets it a fresh connection for the next call (see
    /// [`crate::transport`] on fast rejoin); an answer is a network error.
    fn failed(&self, generation: u64, status: tonic::Status) -> RPCError<TypeConfig> {
        let code = status.code();
        match NodeError::from_hop_status(self.from, self.target, &self.addr, status) {
            hop @ NodeError::Hop { .. } => {
                if self.pool.replace(&self.addr, generation) {
                    tracing::debug!(peer = self.target, addr = %self.addr, ?code, "peer did not answer; replacing its connection");
                }
                RPCError::Unreachable(Unreachable::new(&hop))
            }
            answer => RPCError::Network(NetworkError::new(&answer)),
        }
    }

    fn request<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        self.credentials.attach(&mut request);
        request
    }

    /// One unary Raft RPC: encodes `rpc`, sends it through `send` with `option`'s deadline on
    /// the peer's pooled channel, and decodes the reply (`what` names it in errors).
    async fn call<Rpc, Reply, F, Fut>(
        &self,
        what: &'static str,
        rpc: &Rpc,
        option: &RPCOption,
        send: F,
    ) -> Result<Reply, RPCError<TypeConfig>>
    where
        Rpc: serde::Serialize,
        Reply: serde::de::DeserializeOwned,
        F: FnOnce(RaftClient<Channel>, tonic::Request<RaftMessage>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftMessage>, tonic::Status>>,
    {
        let message = RaftMessage {
            payload: codec::encode(rpc),
        };
        let request = self.request(message, option.hard_ttl());
        let (client, generation) = self.client()?;
        let reply = send(client, request)
            .await
            .map_err(|s| self.failed(generation, s))?;
        codec::decode(what, &reply.into_inner().payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    /// The peer this client talks to.
    pub fn target(&self) -> NodeId {
        self.target
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let (sent_up_to, bytes) = keep_within_bytes(&mut rpc.entries, APPEND_ENTRIES_BYTES_MAX);
        let option = RPCOption::new(append_deadline(option.hard_ttl(), bytes));
        let reply = self
            .call(
                "append entries response",
                &rpc,
                &option,
                |mut c, r| async move { c.append_entries(r).await },
            )
            .await?;
        Ok(match (reply, sent_up_to) {
            // The follower took what was sent; openraft sends the rest next.
            (AppendEntriesResponse::Success, Some(last)) => {
                AppendEntriesResponse::PartialSuccess(Some(last))
            }
            (reply, _) => reply,
        })
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(
            "transfer leader response",
            &rpc,
            &option,
            |mut c, r| async move { c.transfer_leader(r).await },
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("vote response", &rpc, &option, |mut c, r| async move {
            c.vote(r).await
        })
        .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("pre-vote response", &rpc, &option, |mut c, r| async move {
            c.pre_vote(r).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let vote_bytes = codec::encode(&vote);
        let meta_bytes = codec::encode(&snapshot.meta);
        let data = snapshot.snapshot;
        let total = data.len();
        let mut chunks: Vec<SnapshotChunk> = Vec::with_capacity(total / SNAPSHOT_CHUNK_BYTES + 1);
        let mut offset = 0usize;
        loop {
            let end = (offset + SNAPSHOT_CHUNK_BYTES).min(total);
            let first = offset == 0;
            chunks.push(SnapshotChunk {
                vote: if first {
                    vote_bytes.clone()
                } else {
                    Vec::new()
                },
                meta: if first {
                    meta_bytes.clone()
                } else {
                    Vec::new()
                },
                offset: offset as u64,
                data: data[offset..end].to_vec(),
                done: end == total,
            });
            if end == total {
                break;
            }
            offset = end;
        }
        // The snapshot deadline scales with its size: a fixed per-RPC deadline would abort large
        // snapshots on slow links and then retry them forever.
        let per_chunk = option.hard_ttl().max(Duration::from_millis(500));
        let timeout = per_chunk * u32::try_from(chunks.len()).unwrap_or(u32::MAX).max(1);
        let request = self.request(futures::stream::iter(chunks), timeout);
        let (mut client, generation) = self.client()?;
        let send = client.install_snapshot(request);
        let reply = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            reply = send => reply,
        };
        let reply = reply.map_err(|s| self.failed(generation, s))?;
        codec::decode("snapshot response", &reply.into_inner().payload)
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))
    }
}

/// Reassembles a snapshot streamed as [`SnapshotChunk`]s: (vote, meta, data).
pub async fn receive_snapshot(
    mut chunks: tonic::Streaming<SnapshotChunk>,
    max_bytes: usize,
) -> Result<
    (
        VoteOf<TypeConfig>,
        openraft::alias::SnapshotMetaOf<TypeConfig>,
        Vec<u8>,
    ),
    tonic::Status,
> {
    let first = chunks
        .next()
        .await
        .ok_or_else(|| tonic::Status::invalid_argument("snapshot stream is empty"))??;
    let vote: VoteOf<TypeConfig> = codec::decode("snapshot vote", &first.vote)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let meta = codec::decode("snapshot meta", &first.meta)
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut data = first.data;
    let mut done = first.done;
    while !done {
        let chunk = chunks.next().await.ok_or_else(|| {
            tonic::Status::invalid_argument("snapshot stream ended before `done`")
        })??;
        if chunk.offset != data.len() as u64 {
            return Err(tonic::Status::invalid_argument(format!(
                "snapshot chunk offset {} does not follow {} bytes received",
                chunk.offset,
                data.len()
            )));
        }
        if data.len() + chunk.data.len() > max_bytes {
            return Err(tonic::Status::resource_exhausted(format!(
                "snapshot larger than the limit of {max_bytes} bytes"
            )));
        }
        data.extend_from_slice(&chunk.data);
        done = chunk.done;
    }
    Ok((vote, meta, data))
}

#[cfg(test)]
mod tests {
    use openraft::testing::log_id;

    use super::*;

    fn entries(n: u64) -> Vec<EntryOf<TypeConfig>> {
        (1..=n)
            .map(|i| EntryOf::<TypeConfig>::new_blank(log_id::<TypeConfig>(1, 1, i)))
            .collect()
    }

    #[test]
    fn an_append_keeps_the_entries_that_fit_and_at_least_one() {
        let one = codec::encoded_len(&entries(1)[0]);
        let mut all = entries(10);
        assert_eq!(
            keep_within_bytes(&mut all, 10 * one),
            (None, 10 * one),
            "all fit"
        );
        assert_eq!(all.len(), 10);

        let mut some = entries(10);
        let (last, bytes) = keep_within_bytes(&mut some, 4 * one + one / 2);
        assert_eq!(some.len(), 4);
        assert_eq!(bytes, 4 * one);
        assert_eq!(last.map(|id| id.index()), Some(4));

        let mut first = entries(10);
        let (last, bytes) = keep_within_bytes(&mut first, 1);
        assert_eq!(bytes, one);
        assert_eq!(
            first.len(),
            1,
            "an entry larger than the bound still goes alone"
        );
        assert_eq!(last.map(|id| id.index()), Some(1));

        let mut none = entries(0);
        assert_eq!(keep_within_bytes(&mut none, 1), (None, 0));
    }

    #[test]
    fn an_append_with_entries_gets_time_for_its_bytes_and_a_heartbeat_keeps_its_deadline() {
        let heartbeat = Duration::from_millis(50);
        assert_eq!(append_deadline(heartbeat, 0), heartbeat);
        // A small entry: practically the heartbeat deadline.
        assert!(append_deadline(heartbeat, 2_000) < Duration::from_millis(51));
        // A full call (4 MiB) gets about a second more.
        let full = append_deadline(heartbeat, APPEND_ENTRIES_BYTES_MAX);
        assert_eq!(full.as_millis(), 50 + 1_048);
    }
}
