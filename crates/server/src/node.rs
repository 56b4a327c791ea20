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
//!
//! - `bootstrap`: [`Node::start`], opening the store and forming the initial cluster.
//! - `loops`: the leader's tick, snapshot scheduling, a follower's batched report forwarding.
//! - `forwarding`: the one hop from a follower to the leader, both ends.
//! - `membership`: learners, promotion, removal, and handing leadership over on a stop.

mod bootstrap;
mod forwarding;
mod loops;
mod membership;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{ReadPolicy, ServerState};
use switchyard_core::{Actor, Command, Delta, Envelope, RequestIds};
use switchyard_store::{Disk, LogStore, Raft, Request, Response, StateMachine};
use tokio::sync::watch;
use tracing::Instrument;

use crate::auth::{ClusterCredentials, Tokens};
use crate::clock::Clock;
use crate::config::NodeConfig;
use crate::error::{LimitName, NodeError};
use crate::forward::{ForwardReply, ForwardRequest};
use crate::ingest::{Batch, BatchRefused, DeltasRefused, Ingest};
use crate::report_pacing::Pacing;
use crate::rpc_metrics::RpcMetrics;
use crate::runtime_lag::RuntimeLag;
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
    /// Back-pressure from the leader's tick buffer (see [`crate::report_pacing`]).
    pacing: Pacing,
    /// Back-pressure from this node's forward buffer.
    forward_pacing: Pacing,
    /// Back-pressure from this node's CPU pressure (see [`crate::cpu_pressure`]).
    cpu_pacing: Pacing,
    /// This node's smoothed CPU pressure.
    cpu_pressure: crate::cpu_pressure::Smoothed,
    /// Deltas this node took from its buffers (ticks as leader, forward batches as follower):
    /// the report load its CPU pressure is weighed against.
    deltas_taken: AtomicU64,
    /// The interval the leader last asked for in answer to a forwarded batch, ms.
    leader_advice_ms: AtomicU64,
    /// How late this node's runtime runs what is due (see [`crate::runtime_lag`]).
    runtime_lag: RuntimeLag,
    counters: Counters,
    rpc_metrics: RpcMetrics,
    /// Ids for requests that arrive without one (see [`crate::trace_context`]).
    request_ids: Arc<RequestIds>,
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
    /// Deltas this node held as leader and handed to its forward buffer for the next leader
    /// (it stepped down before its tick, or Raft refused the tick before appending it).
    pub deltas_handed_over: AtomicU64,
    /// Deltas a leader did not take from this node's forward buffer, kept for another try
    /// (counted per try).
    pub deltas_forward_retried: AtomicU64,
    /// Deltas a follower accepted that the leader rejected as such (never expected).
    pub deltas_dropped_forwarding: AtomicU64,
    /// Deltas in a tick whose entry was discarded on a leader change, or whose write failed:
    /// it may or may not have committed, so they are not offered again.
    pub deltas_lost_in_tick: AtomicU64,
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
    /// The Linux PSI file this node reads its CPU pressure from (see
    /// [`crate::cpu_pressure`]); `None` (the simulation, a host without PSI) turns the signal
    /// off.
    pub cpu_pressure: Option<std::path::PathBuf>,
    /// Where Raft runs: production passes a [`crate::raft_runtime::RaftRuntime`]'s handle so
    /// request handling cannot delay heartbeats; `None` runs it on the caller's runtime (the
    /// simulation, whose single runtime is driven by turmoil).
    pub raft_runtime: Option<tokio::runtime::Handle>,
}

fn raft_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Raft(e.to_string())
}

impl Node {
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

    /// Where ids for requests that arrive without one come from.
    pub fn request_ids(&self) -> &Arc<RequestIds> {
        &self.inner.request_ids
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// How late this node's runtime runs what is due, smoothed, ms.
    pub fn runtime_lag_ms(&self) -> f64 {
        self.inner.runtime_lag.smoothed_ms()
    }

    /// The share of time this node's tasks waited for a CPU, smoothed (0 when not read).
    pub fn cpu_pressure(&self) -> f64 {
        self.inner.cpu_pressure.get()
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
    /// Validation happens here, before anything reaches the log. The request being served (its
    /// id and trace context, see [`crate::trace_context`]) travels in the entry.
    pub async fn write(&self, actor: Actor, command: Command) -> Result<Response, NodeError> {
        let span = if crate::trace_context::operator_request() {
            tracing::info_span!("write", command = command.kind())
        } else {
            tracing::Span::none()
        };
        self.write_in_span(actor, command).instrument(span).await
    }

    async fn write_in_span(&self, actor: Actor, command: Command) -> Result<Response, NodeError> {
        {
            let state = self.inner.sm.read();
            command.validate(state.core().settings())?;
        }
        let envelope = Envelope::new(actor, command).with_trace(crate::trace_context::current());
        if crate::deadline::remaining().is_some_and(|r| r.is_zero()) {
            return Err(NodeError::DeadlinePassed(
                "before the write was proposed".into(),
            ));
        }
        let response = match self.propose_local(envelope.clone()).await? {
            Ok(response) => response,
            Err(leader) => match self
                .forward(leader, &ForwardRequest::Write(envelope))
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
        // Until committed and applied on this node (the leader); every node's apply has a span
        // of its own (see `crate::trace_context::apply_span`).
        let traced = envelope
            .trace
            .as_ref()
            .is_some_and(|t| t.traceparent.is_some());
        let span = if traced {
            tracing::info_span!("propose", index = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        let request = Request {
            stamped_ms: self.inner.clock.now_ms(),
            envelope: std::sync::Arc::new(envelope),
        };
        match self
            .inner
            .raft
            .client_write(request)
            .instrument(span.clone())
            .await
        {
            Ok(written) => {
                span.record("index", written.data.index);
                Ok(Ok(written.data))
            }
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
                Some(f) => match self
                    .forward(f.leader_id, &ForwardRequest::ReadIndex)
                    .await?
                {
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

    /// The report interval this node asks SDKs for, ms (0: their own): its own buffer's
    /// pacing, and on a follower also what the leader last asked for.
    pub fn report_interval_advice_ms(&self) -> u64 {
        if self.is_leader() {
            self.leader_advice_ms()
        } else {
            self.inner
                .forward_pacing
                .advice_ms()
                .max(self.inner.cpu_pacing.advice_ms())
                .max(self.inner.leader_advice_ms.load(Ordering::Relaxed))
        }
    }

    /// What this node asks for as leader, of its own SDKs and of its followers' (in answer
    /// to their forwarded batches): its tick buffer's pacing and its CPU's.
    fn leader_advice_ms(&self) -> u64 {
        self.inner
            .pacing
            .advice_ms()
            .max(self.inner.cpu_pacing.advice_ms())
    }

    /// Accepts a fleet report: on the leader into the next tick, elsewhere forwarded to it.
    pub async fn report(&self, instance: &str, deltas: Vec<Delta>) -> Result<u32, NodeError> {
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
            self.accept_report(instance, deltas)
        } else {
            // Buffered here and handed to the leader in one batch per forward interval: one
            // Forward RPC per follower per interval instead of one per SDK report.
            self.inner
                .forward_buffer
                .offer(instance, deltas, self.inner.clock.now_ms())
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
    ///
    /// A batch refused as a whole is handed back: its deltas were acknowledged by the node
    /// that forwards them, which keeps them and offers them again (so they are not counted as
    /// refused here).
    fn accept_forwarded_report(&self, batch: Batch) -> Result<u32, BatchRefused> {
        let refused = &self.inner.counters.deltas_refused;
        let outcome = self
            .inner
            .ingest
            .offer_batch(batch, self.inner.clock.now_ms())?;
        refused.add(LimitName::ReportRatePerInstanceMax, outcome.refused_by_rate);
        Ok(outcome.accepted)
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
