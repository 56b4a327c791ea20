//! One Switchyard node: the Raft instance, its store, and the operations the services call.
//!
//! ```text
//!   client/admin gRPC ──> Node::write ──leader?──yes──> raft.client_write ──> commit ──> apply
//!                              │                                                      │
//!                              └──no──> Forward RPC to the leader (one hop)            v
//!   Report ──> Node::report ──> leader's Ingest ──tick──> one Tick entry     StateMachine feed
//!                  └─follower─> forward buffer ──one batch per half tick──> leader's Ingest
//!                                                                                      │
//!   Watch  <── every node streams from its own applied state <─────────────────────────┘
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{BasicNode, ChangeMembers, Config, ReadPolicy, ServerState, SnapshotPolicy};
use switchyard_core::{Actor, Command, Delta, Envelope};
use switchyard_proto::raft::{RaftMessage, raft_client::RaftClient};
use switchyard_store::{
    Disk, LogStore, Raft, Request, Response, SnapshotProgress, SnapshotSchedule, StateMachine,
    codec,
};
use tokio::sync::watch;

use crate::auth::{ClusterCredentials, Tokens};
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::error::{LimitName, NoLeaderHint};
use crate::forward::{ForwardReply, ForwardRequest};
use crate::ingest::{Batch, DeltasRefused, Ingest};
use crate::network::Network;
use crate::rpc_metrics::RpcMetrics;
use crate::transport::{ChannelPool, Connector};

/// How long a forwarded call may take before the caller is told to retry.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a linearizable read on a follower waits for its state machine to catch up.
const READ_CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the node exposes to its services: everything a call needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct Node {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: u64,
    config: NodeConfig,
    raft: Raft,
    sm: StateMachine,
    log: LogStore,
    clock: Arc<dyn Clock>,
    pool: ChannelPool,
    credentials: ClusterCredentials,
    tokens: Tokens,
    ingest: Ingest,
    /// On a follower: reports waiting to be forwarded to the leader in one batch.
    forward_buffer: Ingest,
    counters: Counters,
    rpc_metrics: RpcMetrics,
    shutdown: watch::Sender<bool>,
}

/// Monotonic counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct Counters {
    /// Report calls accepted (on this node, forwarded or not).
    pub reports_accepted: AtomicU64,
    /// Deltas accepted into a tick.
    pub deltas_accepted: AtomicU64,
    /// Deltas refused at a limit, by limit.
    pub deltas_refused: DeltasRefused,
    /// Deltas dropped because this node stopped being leader before its tick.
    pub deltas_dropped_on_step_down: AtomicU64,
    /// Deltas a follower accepted but could not hand to a leader (none known, or unreachable).
    pub deltas_dropped_forwarding: AtomicU64,
    /// Tick entries written by this node as leader.
    pub ticks_written: AtomicU64,
    /// Watch streams currently open.
    pub watch_streams: AtomicU64,
    /// Requests forwarded to the leader.
    pub forwarded: AtomicU64,
}

/// Everything [`Node::start`] needs from outside.
#[derive(Debug)]
pub struct NodeDeps {
    /// Wall-clock time for stamping entries.
    pub clock: Arc<dyn Clock>,
    /// How to reach peers.
    pub connector: Arc<dyn Connector>,
    /// Accepted tokens; the cluster token is also presented to peers.
    pub tokens: Tokens,
    /// Where the store lives: `None` opens sled in `data_dir`; the simulation passes a
    /// simulated disk that outlives the node's host.
    pub disk: Option<Arc<dyn Disk>>,
}

fn raft_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Raft(e.to_string())
}

impl Node {
    /// Opens the store, starts Raft and, on a fresh data directory, forms the initial cluster:
    /// a node with no peers initializes itself as a single-node cluster; with `peers`, the
    /// lowest id initializes the whole membership and the others join when it contacts them.
    /// With `join`, a fresh node initializes nothing and waits to be added.
    pub async fn start(config: NodeConfig, deps: NodeDeps) -> Result<Self, NodeError> {
        config.validate()?;
        let (log, sm) = match deps.disk {
            Some(disk) => switchyard_store::open_on(disk)?,
            None => {
                std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
                    path: config.data_dir.clone(),
                    source,
                })?;
                switchyard_store::open(&config.data_dir)?
            }
        };
        let raft_config = Config {
            cluster_name: "switchyard".into(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            // Snapshots are scheduled by `snapshot_loop` (see `SnapshotSchedule`), not by entry
            // count alone.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: config.log_entries_kept_after_snapshot,
            install_snapshot_timeout: 2_000,
            ..Default::default()
        }
        .validate()
        .map_err(raft_err)?;
        let pool = ChannelPool::new(deps.connector);
        let credentials = ClusterCredentials::new(deps.tokens.clone());
        let network = Network::new(pool.clone(), credentials.clone());
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log.clone(),
            sm.clone(),
        )
        .await
        .map_err(raft_err)?;

        let initialized = raft.is_initialized().await.map_err(raft_err)?;
        if !initialized && config.join {
            tracing::info!(
                "fresh data directory and --join: waiting to be added by an existing cluster"
            );
        } else if !initialized {
            let lowest = config
                .peers
                .keys()
                .next()
                .copied()
                .unwrap_or(config.node_id);
            if lowest == config.node_id {
                let members: BTreeMap<u64, BasicNode> = if config.peers.is_empty() {
                    BTreeMap::from([(
                        config.node_id,
                        BasicNode {
                            addr: config.advertised().into(),
                        },
                    )])
                } else {
                    config
                        .peers
                        .iter()
                        .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                        .collect()
                };
                tracing::info!(?members, "fresh data directory: initializing the cluster");
                raft.initialize(members).await.map_err(raft_err)?;
            } else {
                tracing::info!(
                    initializer = lowest,
                    "fresh data directory: waiting for node {lowest} to form the cluster"
                );
            }
        }

        let (shutdown, _) = watch::channel(false);
        let node = Self {
            inner: Arc::new(Inner {
                id: config.node_id,
                ingest: Ingest::new(
                    config.limits.pending_deltas_max,
                    config.limits.report_rate_per_instance_max,
                ),
                // No rate of its own: the node's `ReportRateGate` already admitted each call,
                // and the leader counts the forwarded calls per instance cluster-wide.
                forward_buffer: Ingest::new(config.limits.pending_deltas_max, u32::MAX),
                config,
                raft,
                sm,
                log,
                clock: deps.clock,
                pool,
                credentials,
                tokens: deps.tokens,
                counters: Counters::default(),
                rpc_metrics: RpcMetrics::default(),
                shutdown,
            }),
        };
        tokio::spawn(node.clone().tick_loop());
        tokio::spawn(node.clone().forward_loop());
        tokio::spawn(node.clone().snapshot_loop());
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The state machine (applied state, applied feed).
    pub fn state_machine(&self) -> &StateMachine {
        &self.inner.sm
    }

    /// The log store (for size metrics).
    pub fn log_store(&self) -> &LogStore {
        &self.inner.log
    }

    /// The tokens this node accepts.
    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// The node's counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The node's per-RPC latency histograms (recorded by the gRPC server's layer).
    pub fn rpc_metrics(&self) -> &RpcMetrics {
        &self.inner.rpc_metrics
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Resolves when the node begins shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// The leader this node currently knows of.
    pub fn current_leader(&self) -> Option<u64> {
        self.inner.raft.metrics().borrow_watched().current_leader
    }

    /// Whether this node is the leader right now.
    pub fn is_leader(&self) -> bool {
        self.inner.raft.is_leader()
    }

    /// Proposes a command; resolves once it is committed and applied (on the leader).
    /// Validation happens here, before anything reaches the log.
    pub async fn write(&self, actor: Actor, command: Command) -> Result<Response, NodeError> {
        {
            let state = self.inner.sm.read();
            command.validate(state.core().settings())?;
        }
        let envelope = Envelope { actor, command };
        let response = match self.propose_local(envelope.clone()).await? {
            Ok(response) => response,
            Err(leader) => match self
                .forward(leader, ForwardRequest::Write(envelope))
                .await?
            {
                ForwardReply::Written(response) => {
                    // Read your writes on this node: a caller that wrote through a follower
                    // and then reads or watches there must see its write. The entry is
                    // committed either way, so a slow catch-up is not an error.
                    if let Err(e) = self.wait_applied(response.index).await {
                        tracing::debug!(error = %e, index = response.index, "forwarded write not applied here yet");
                    }
                    response
                }
                other => return Err(unexpected(other)),
            },
        };
        match response.outcome {
            Ok(_) => Ok(response),
            Err(e) => Err(NodeError::Command(e)),
        }
    }

    /// Proposes on this node if it is the leader; otherwise returns the leader to forward to.
    async fn propose_local(
        &self,
        envelope: Envelope,
    ) -> Result<Result<Response, Option<u64>>, NodeError> {
        let request = Request {
            stamped_ms: self.inner.clock.now_ms(),
            envelope: std::sync::Arc::new(envelope),
        };
        match self.inner.raft.client_write(request).await {
            Ok(written) => Ok(Ok(written.data)),
            Err(e) => match e.forward_to_leader() {
                Some(f) => Ok(Err(f.leader_id)),
                None => Err(raft_err(e)),
            },
        }
    }

    /// Waits until this node's applied state reflects every write committed before the call
    /// (a read index confirmed by the leader), unless `local` asks for this node's state as is.
    /// Returns the applied index the read will see.
    pub async fn read_barrier(&self, local: bool) -> Result<u64, NodeError> {
        if local {
            return Ok(*self.inner.sm.watch_applied().borrow());
        }
        let index = match self
            .inner
            .raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
        {
            Ok(read) => read.index(),
            Err(e) => match e.forward_to_leader() {
                Some(f) => match self.forward(f.leader_id, ForwardRequest::ReadIndex).await? {
                    ForwardReply::ReadIndex(index) => index,
                    other => return Err(unexpected(other)),
                },
                None => return Err(raft_err(e)),
            },
        };
        self.wait_applied(index).await
    }

    /// Waits (at most `READ_CATCH_UP_TIMEOUT`) until this node has applied `index`; returns the
    /// applied index then.
    async fn wait_applied(&self, index: u64) -> Result<u64, NodeError> {
        let mut applied = self.inner.sm.watch_applied();
        let waited =
            tokio::time::timeout(READ_CATCH_UP_TIMEOUT, applied.wait_for(|a| *a >= index)).await;
        match waited {
            Ok(Ok(seen)) => Ok(*seen),
            Ok(Err(_)) => Err(NodeError::ShuttingDown),
            Err(_) => Err(NodeError::CatchUp {
                index,
                waited_ms: READ_CATCH_UP_TIMEOUT.as_millis() as u64,
            }),
        }
    }

    /// Accepts a fleet report: on the leader into the next tick, elsewhere forwarded to it.
    pub async fn report(&self, instance: String, deltas: Vec<Delta>) -> Result<u32, NodeError> {
        let limit = self.inner.config.limits.report_deltas_max;
        if deltas.len() > limit as usize {
            self.inner
                .counters
                .deltas_refused
                .add(LimitName::ReportDeltasMax, deltas.len() as u64);
            return Err(NodeError::Limit {
                limit: LimitName::ReportDeltasMax,
                what: "deltas in one report".into(),
                max: u64::from(limit),
            });
        }
        let n = deltas.len() as u64;
        let result = if self.is_leader() {
            self.accept_report(&instance, deltas)
        } else {
            // Buffered here and handed to the leader in one batch per forward interval: one
            // Forward RPC per follower per interval instead of one per SDK report.
            self.inner
                .forward_buffer
                .offer(&instance, deltas, self.inner.clock.now_ms())
        };
        let counters = &self.inner.counters;
        match &result {
            Ok(_) => {
                counters.reports_accepted.fetch_add(1, Ordering::Relaxed);
                counters.deltas_accepted.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => counters.deltas_refused.add_error(e, n),
        }
        result
    }

    fn accept_report(&self, instance: &str, deltas: Vec<Delta>) -> Result<u32, NodeError> {
        self.inner
            .ingest
            .offer(instance, deltas, self.inner.clock.now_ms())
    }

    /// A batch forwarded by a follower (or left in this node's forward buffer when it became
    /// leader): its calls count against each instance's rate here, across the cluster, and
    /// refusals are counted here at the limit that refused them.
    fn accept_forwarded_report(&self, batch: Batch) -> Result<u32, NodeError> {
        let n = batch.deltas.len() as u64;
        let refused = &self.inner.counters.deltas_refused;
        match self
            .inner
            .ingest
            .offer_batch(batch, self.inner.clock.now_ms())
        {
            Ok(outcome) => {
                refused.add(LimitName::ReportRatePerInstanceMax, outcome.refused_by_rate);
                Ok(outcome.accepted)
            }
            Err(e) => {
                refused.add_error(&e, n);
                Err(e)
            }
        }
    }

    /// The leader's tick: every `tick_interval_ms`, merge waiting reports into one `Tick`
    /// entry; write an empty one when a timed transition is due, and nothing otherwise.
    async fn tick_loop(self) {
        let mut shutdown = self.shutdown_signal();
        let mut interval =
            tokio::time::interval(Duration::from_millis(self.inner.config.tick_interval_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if !self.is_leader() {
                let dropped = self.inner.ingest.clear();
                if dropped > 0 {
                    tracing::warn!(dropped, "stepped down with reports pending; dropped them");
                    self.inner
                        .counters
                        .deltas_dropped_on_step_down
                        .fetch_add(dropped as u64, Ordering::Relaxed);
                }
                continue;
            }
            let now_ms = self.inner.clock.now_ms();
            let (due, per_tick_max) = {
                let state = self.inner.sm.read();
                let core = state.core();
                (
                    core.next_deadline_ms().is_some_and(|d| d <= now_ms),
                    core.settings().max_deltas_per_tick as usize,
                )
            };
            let deltas = self.inner.ingest.take();
            if deltas.is_empty() && !due {
                continue;
            }
            let mut chunks: Vec<Vec<Delta>> = Vec::new();
            if deltas.is_empty() {
                chunks.push(Vec::new());
            } else {
                let mut rest = deltas;
                while !rest.is_empty() {
                    let tail = rest.split_off(rest.len().min(per_tick_max.max(1)));
                    chunks.push(std::mem::replace(&mut rest, tail));
                }
            }
            for deltas in chunks {
                let envelope = Envelope {
                    actor: Actor::Node(self.inner.id),
                    command: Command::Tick { deltas },
                };
                match self.propose_local(envelope).await {
                    Ok(Ok(_)) => {
                        self.inner
                            .counters
                            .ticks_written
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(_)) => tracing::debug!("lost leadership before the tick was written"),
                    Err(e) => tracing::warn!(error = %e, "tick write failed"),
                }
            }
        }
    }

    /// Builds a snapshot whenever [`SnapshotSchedule`] says one is due, checked after each
    /// applied entry. Every node snapshots its own state; nothing here is replicated.
    async fn snapshot_loop(self) {
        let config = &self.inner.config;
        let schedule = SnapshotSchedule {
            every_entries: config.snapshot_every_entries,
            log_bytes_max: config.snapshot_log_bytes_max,
        };
        let mut shutdown = self.shutdown_signal();
        let mut applied = self.inner.sm.watch_applied();
        // The latest snapshot index seen, and the log bytes appended when it was seen. The log
        // a restarted node found on disk is not counted (only what this process appended), so
        // the first snapshot after a restart can come up to one interval late; never early.
        let mut mark = (self.snapshot_index(), self.inner.log.appended_bytes());
        // A build asked for and not finished yet: the applied index it was asked at.
        let mut requested_at: Option<u64> = None;
        loop {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            let applied_index = *applied.borrow_and_update();
            let snapshot_index = self.snapshot_index();
            if snapshot_index != mark.0 {
                mark = (snapshot_index, self.inner.log.appended_bytes());
                requested_at = None;
            }
            let progress = SnapshotProgress {
                entries_since: applied_index.saturating_sub(snapshot_index),
                log_bytes_since: self.inner.log.appended_bytes().saturating_sub(mark.1),
                snapshot_bytes: self.inner.sm.snapshot_size(),
            };
            // A build that never reported back (it failed) is asked for again after another
            // full interval of entries.
            let pending = requested_at
                .is_some_and(|at| applied_index.saturating_sub(at) < schedule.every_entries);
            if pending || !schedule.due(progress) {
                continue;
            }
            tracing::debug!(?progress, "snapshot due");
            requested_at = Some(applied_index);
            if let Err(e) = self.inner.raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "cannot ask Raft for a snapshot");
                return;
            }
        }
    }

    fn snapshot_index(&self) -> u64 {
        self.inner
            .raft
            .metrics()
            .borrow_watched()
            .snapshot
            .as_ref()
            .map_or(0, |id| id.index())
    }

    /// On a follower: every half tick, hand the buffered reports to the leader as one merged
    /// batch (or, if this node has become leader, straight into its own next tick). A batch
    /// the leader cannot take is dropped and counted: reports are telemetry, and the SDKs'
    /// next reports carry fresh counts.
    async fn forward_loop(self) {
        let mut shutdown = self.shutdown_signal();
        let period = Duration::from_millis((self.inner.config.tick_interval_ms / 2).max(5));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let chunk = (self.inner.config.limits.report_deltas_max as usize).max(1);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            if self.inner.forward_buffer.is_empty() {
                continue;
            }
            let Batch {
                mut calls,
                mut deltas,
            } = self.inner.forward_buffer.take_batch();
            if self.is_leader() {
                let n = deltas.len() as u64;
                if self
                    .accept_forwarded_report(Batch { calls, deltas })
                    .is_err()
                {
                    self.inner
                        .counters
                        .deltas_dropped_forwarding
                        .fetch_add(n, Ordering::Relaxed);
                }
                continue;
            }
            let leader = self.current_leader();
            while !deltas.is_empty() {
                let rest = deltas.split_off(deltas.len().min(chunk));
                let batch = std::mem::replace(&mut deltas, rest);
                let n = batch.len() as u64;
                // The calls travel with the first chunk; the leader counts them once.
                let request = ForwardRequest::Report {
                    calls: std::mem::take(&mut calls),
                    deltas: batch,
                };
                match self.forward(leader, request).await {
                    Ok(ForwardReply::Reported(_)) => {}
                    Ok(other) => {
                        tracing::debug!(reply = ?other, "unexpected reply to forwarded reports");
                        self.inner
                            .counters
                            .deltas_dropped_forwarding
                            .fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "could not forward reports to the leader");
                        self.inner
                            .counters
                            .deltas_dropped_forwarding
                            .fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Adds a learner that will catch up from the leader (through a snapshot if it is far
    /// behind). Returns the index of the membership entry.
    pub async fn add_learner(&self, node_id: u64, addr: String) -> Result<u64, NodeError> {
        self.membership(ForwardRequest::AddLearner { node_id, addr })
            .await
    }

    /// Promotes a learner to voter.
    pub async fn promote(&self, node_id: u64) -> Result<u64, NodeError> {
        self.membership(ForwardRequest::Promote { node_id }).await
    }

    /// Removes a voter or learner from the cluster.
    pub async fn remove(&self, node_id: u64) -> Result<u64, NodeError> {
        self.membership(ForwardRequest::Remove { node_id }).await
    }

    async fn membership(&self, request: ForwardRequest) -> Result<u64, NodeError> {
        if !self.is_leader() {
            return match self.forward(self.current_leader(), request).await? {
                ForwardReply::Membership(index) => Ok(index),
                other => Err(unexpected(other)),
            };
        }
        self.membership_on_leader(request).await
    }

    async fn membership_on_leader(&self, request: ForwardRequest) -> Result<u64, NodeError> {
        let raft = &self.inner.raft;
        let result = match request {
            ForwardRequest::AddLearner { node_id, addr } => {
                if node_id == 0 {
                    return Err(invalid("node_id", "must be >= 1"));
                }
                if addr
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(invalid("addr", format!("must be HOST:PORT, got {addr:?}")));
                }
                raft.add_learner(node_id, BasicNode { addr }, false).await
            }
            ForwardRequest::Promote { node_id } => {
                self.require_member(node_id)?;
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true)
                    .await
            }
            ForwardRequest::Remove { node_id } => {
                self.require_member(node_id)?;
                let voters: BTreeSet<u64> = raft.voter_ids().collect();
                if voters.contains(&node_id) {
                    if voters.len() == 1 {
                        return Err(invalid("node_id", "cannot remove the last voter"));
                    }
                    raft.change_membership(
                        ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
                        false,
                    )
                    .await
                } else {
                    raft.change_membership(
                        ChangeMembers::RemoveNodes(BTreeSet::from([node_id])),
                        false,
                    )
                    .await
                }
            }
            other => return Err(unexpected_request(&other)),
        };
        match result {
            Ok(written) => Ok(written.log_id.index()),
            Err(e) => match e.forward_to_leader() {
                Some(f) => Err(NodeError::NoLeader {
                    hint: NoLeaderHint::Moved {
                        leader: f.leader_id,
                    },
                }),
                None => Err(NodeError::Invalid(switchyard_core::ValidationError {
                    field: "membership".into(),
                    rule: e.to_string(),
                })),
            },
        }
    }

    fn require_member(&self, node_id: u64) -> Result<(), NodeError> {
        let metrics = self.inner.raft.metrics();
        let known = metrics
            .borrow_watched()
            .membership_config
            .membership()
            .nodes()
            .any(|(id, _)| *id == node_id);
        if known {
            Ok(())
        } else {
            Err(NodeError::NotFound(format!("member {node_id}")))
        }
    }

    /// Serves a request forwarded by a follower. Never forwards again.
    pub async fn serve_forwarded(&self, request: ForwardRequest) -> ForwardReply {
        self.inner
            .counters
            .forwarded
            .fetch_add(1, Ordering::Relaxed);
        let not_leader = || ForwardReply::NotLeader {
            leader: self.current_leader(),
        };
        let failed = |e: NodeError| {
            let status = tonic::Status::from(e);
            ForwardReply::Failed {
                code: status.code() as i32,
                message: status.message().to_string(),
            }
        };
        match request {
            ForwardRequest::Write(envelope) => match self.propose_local(envelope).await {
                Ok(Ok(response)) => ForwardReply::Written(response),
                Ok(Err(_)) => not_leader(),
                Err(e) => failed(e),
            },
            ForwardRequest::ReadIndex => {
                match self
                    .inner
                    .raft
                    .ensure_linearizable(ReadPolicy::ReadIndex)
                    .await
                {
                    Ok(read) => ForwardReply::ReadIndex(read.index()),
                    Err(e) if e.forward_to_leader().is_some() => not_leader(),
                    Err(e) => failed(raft_err(e)),
                }
            }
            ForwardRequest::Report { calls, deltas } => {
                if !self.is_leader() {
                    return not_leader();
                }
                match self.accept_forwarded_report(Batch { calls, deltas }) {
                    Ok(n) => ForwardReply::Reported(n),
                    Err(e) => failed(e),
                }
            }
            request @ (ForwardRequest::AddLearner { .. }
            | ForwardRequest::Promote { .. }
            | ForwardRequest::Remove { .. }) => {
                if !self.is_leader() {
                    return not_leader();
                }
                match self.membership_on_leader(request).await {
                    Ok(index) => ForwardReply::Membership(index),
                    Err(e) => failed(e),
                }
            }
        }
    }

    /// `leader`, or, when this node knows none (it has just restarted and not yet heard from
    /// the leader, or an election is under way), the first leader it learns of within two
    /// maximum election timeouts. Refusing at once turned those few hundred milliseconds into
    /// failed writes on a node that was about to know where to send them.
    async fn leader_or_wait(&self, leader: Option<u64>) -> Result<u64, NodeError> {
        if let Some(leader) = leader {
            return Ok(leader);
        }
        let wait = Duration::from_millis(2 * self.inner.config.election_timeout_max_ms);
        self.inner
            .raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader.is_some(), "a known leader")
            .await
            .ok()
            .and_then(|m| m.current_leader)
            .ok_or_else(|| NodeError::NoLeader {
                hint: NoLeaderHint::NoneWithin {
                    wait_ms: wait.as_millis() as u64,
                },
            })
    }

    /// Sends `request` to the leader and returns its reply, mapping refusals to errors.
    async fn forward(
        &self,
        leader: Option<u64>,
        request: ForwardRequest,
    ) -> Result<ForwardReply, NodeError> {
        let leader = self.leader_or_wait(leader).await?;
        if leader == self.inner.id {
            return Err(NodeError::NoLeader {
                hint: NoLeaderHint::Changing,
            });
        }
        let addr = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow_watched();
            m.membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.addr.clone())
                .ok_or_else(|| NodeError::NoLeader {
                    hint: NoLeaderHint::NoAddress { leader },
                })?
        };
        let channel = self
            .inner
            .pool
            .get(&addr)
            .map_err(|e| NodeError::NoLeader {
                hint: NoLeaderHint::Unreachable {
                    leader,
                    error: format!("at {addr}: {e}"),
                },
            })?;
        let limit = self.inner.config.limits.message_bytes_max as usize;
        let mut client = RaftClient::new(channel)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        let mut call = tonic::Request::new(RaftMessage {
            payload: codec::encode(&request),
        });
        call.set_timeout(FORWARD_TIMEOUT);
        self.inner.credentials.attach(&mut call);
        let reply = client
            .forward(call)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => NodeError::NoLeader {
                    hint: NoLeaderHint::Unreachable {
                        leader,
                        error: status.message().to_owned(),
                    },
                },
                _ => NodeError::Remote(status),
            })?;
        let reply: ForwardReply = codec::decode("forward reply", &reply.into_inner().payload)
            .map_err(|e| {
                NodeError::Unexpected(format!("a forward reply that does not decode: {e}"))
            })?;
        match reply {
            ForwardReply::NotLeader { leader } => Err(NodeError::NoLeader {
                hint: NoLeaderHint::Moved { leader },
            }),
            ForwardReply::Failed { code, message } => Err(NodeError::Remote(tonic::Status::new(
                tonic::Code::from(code),
                message,
            ))),
            ok => Ok(ok),
        }
    }

    /// A summary of Raft's view for status and metrics.
    pub fn raft_status(&self) -> RaftStatus {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow_watched();
        let members = m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| {
                let voter = m
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == *id);
                (*id, node.addr.clone(), voter)
            })
            .collect();
        RaftStatus {
            node_id: self.inner.id,
            state: m.state,
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            commit_index: m.local_committed.as_ref().map_or(0, |l| l.index()),
            applied_index: m.last_applied.as_ref().map_or(0, |l| l.index()),
            snapshot_index: m.snapshot.as_ref().map(|l| l.index()),
            purged_index: m.purged.as_ref().map(|l| l.index()),
            members,
        }
    }

    /// Ends the node's long-lived work: Watch streams close, the tick and forward loops stop.
    /// Raft keeps running until [`Node::shutdown`], so in-flight writes can still commit.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// On a graceful stop of the leader: hands leadership to the most up-to-date voter and
    /// waits (at most one `election_timeout_max_ms`) until it has moved. Returns the new
    /// leader, or `None` when this node was not the leader or no voter could take over.
    ///
    /// Why: a leader that just exits leaves the followers honouring its lease and then
    /// running an election, a window of about two election timeouts with no writes. A
    /// transfer lets the target start its election at once (openraft marks the vote request as
    /// a leadership transfer, which the other voters grant inside the old lease), so a rolling
    /// restart costs about one round trip per leader.
    pub async fn hand_over_leadership(&self) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        let target = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow_watched();
            let matched = m.replication.clone().unwrap_or_default();
            m.membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != self.inner.id)
                .max_by_key(|id| (matched.get(id).cloned().flatten().map(|l| l.index()), *id))
        }?;
        if let Err(e) = self.inner.raft.trigger().transfer_leader(target).await {
            tracing::warn!(error = %e, to = target, "could not hand leadership over");
            return None;
        }
        let me = self.inner.id;
        let wait = Duration::from_millis(self.inner.config.election_timeout_max_ms);
        match self
            .inner
            .raft
            .wait(Some(wait))
            .metrics(
                move |m| m.current_leader.is_some_and(|l| l != me),
                "leadership handed over",
            )
            .await
        {
            Ok(m) => {
                tracing::info!(to = ?m.current_leader, "handed leadership over before stopping");
                m.current_leader
            }
            Err(e) => {
                tracing::warn!(error = %e, to = target, "leadership did not move before stopping");
                None
            }
        }
    }

    /// Shuts the node down: ends streams and loops, stops Raft, flushes the store.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        if let Err(e) = self.inner.log.flush_now().await {
            tracing::warn!(error = %e, "final flush of the store failed");
        }
    }
}

/// Raft's view from one node.
#[derive(Debug, Clone)]
pub struct RaftStatus {
    /// This node.
    pub node_id: u64,
    /// Leader, follower, candidate, learner or shutdown.
    pub state: ServerState,
    /// The known leader.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// The last index in the log.
    pub last_log_index: u64,
    /// The committed index.
    pub commit_index: u64,
    /// The applied index.
    pub applied_index: u64,
    /// The last index in the latest snapshot.
    pub snapshot_index: Option<u64>,
    /// The last purged index.
    pub purged_index: Option<u64>,
    /// Members: (id, address, is voter).
    pub members: Vec<(u64, String, bool)>,
}

fn invalid(field: &str, rule: impl Into<String>) -> NodeError {
    NodeError::Invalid(switchyard_core::ValidationError {
        field: field.into(),
        rule: rule.into(),
    })
}

fn unexpected(reply: ForwardReply) -> NodeError {
    NodeError::Unexpected(format!("reply from the leader: {reply:?}"))
}

fn unexpected_request(request: &ForwardRequest) -> NodeError {
    NodeError::Unexpected(format!("not a membership request: {request:?}"))
}
