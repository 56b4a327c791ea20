//! Starting a node: opening the store, starting Raft, forming the initial cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::{BasicNode, Config, SnapshotPolicy};
use switchyard_store::Raft;
use tokio::sync::watch;

use super::{Counters, Inner, Node, NodeDeps, raft_err};
use crate::auth::ClusterCredentials;
use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::ingest::Ingest;
use crate::network::Network;
use crate::report_pacing::{self, Pacing};
use crate::rpc_metrics::RpcMetrics;
use crate::transport::ChannelPool;

impl Node {
    /// Opens the store, starts Raft and, on a fresh data directory, forms the initial cluster:
    /// a node with no peers initializes itself as a single-node cluster; with `peers`, the
    /// lowest id initializes the whole membership and the others join when it contacts them.
    /// With `join`, a fresh node initializes nothing and waits to be added.
    pub async fn start(config: NodeConfig, deps: NodeDeps) -> Result<Self, NodeError> {
        config.validate()?;
        let cpu_pressure_file = deps
            .cpu_pressure
            .clone()
            .filter(|_| config.limits.cpu_pressure_max_percent > 0);
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
            // A node back from isolation first asks whether a majority would elect it, so it
            // cannot depose a leader the majority still follows (DESIGN §4).
            enable_pre_vote: Some(true),
            // Retries to an unreachable peer: openraft's default doubles to 1 s, which alone
            // would spend the whole rejoin budget after a heal. Each retry dials a fresh
            // connection (see `crate::transport`), bounded by the connect timeout, so during a
            // black-hole cut a retry cycle is that timeout (200 ms) plus this backoff, and the
            // first retry after the heal comes up to one cycle late (300 ms, 400 ms with a
            // 200 ms cap). A retry is one SYN.
            backoff: "50ms 100ms ...100ms".into(),
            // A follower back from a long partition catches up one AppendEntries call (a round
            // trip and a flush on the follower) at a time, often tens of thousands of entries:
            // fewer, larger calls than openraft's default of 300 entries. Calls are bounded in
            // bytes too (`network::APPEND_ENTRIES_BYTES_MAX`).
            max_payload_entries: 4_096,
            ..Default::default()
        }
        .validate()
        .map_err(raft_err)?;
        // Raft traffic has its own connections, created (and driven) where Raft runs, so a
        // forwarded write's bytes never sit in front of a heartbeat.
        let pool = ChannelPool::new(Arc::clone(&deps.connector));
        let credentials = ClusterCredentials::new(deps.tokens.clone());
        let network = Network::new(
            config.node_id,
            ChannelPool::new(deps.connector),
            credentials.clone(),
        );
        let new_raft = {
            let (id, log, sm) = (config.node_id, log.clone(), sm.clone());
            async move { Raft::new(id, Arc::new(raft_config), network, log, sm).await }
        };
        let raft = match &deps.raft_runtime {
            // Raft spawns its core, replication and apply tasks where it is created.
            Some(runtime) => runtime
                .spawn(new_raft)
                .await
                .map_err(|e| NodeError::Raft(format!("the Raft runtime stopped: {e}")))?,
            None => new_raft.await,
        }
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
        // Ids for requests that come without one: unique per node and start, and replayable
        // in the simulation (its clock is simulated).
        let request_ids = Arc::new(switchyard_core::RequestIds::new(
            switchyard_core::hash::splitmix64_mix(
                config.node_id ^ deps.clock.now_ms().rotate_left(16),
            ),
        ));
        switchyard_store::set_apply_span(crate::trace_context::apply_span);
        let node = Self {
            inner: Arc::new(Inner {
                id: config.node_id,
                request_ids,
                ingest: Ingest::new(
                    config.limits.pending_deltas_max,
                    config.limits.report_rate_per_instance_max,
                ),
                // No rate of its own: the node's `ReportRateGate` already admitted each call,
                // and the leader counts the forwarded calls per instance cluster-wide.
                forward_buffer: Ingest::new(config.limits.pending_deltas_max, u32::MAX),
                pacing: Pacing::new(config.tick_interval_ms),
                forward_pacing: Pacing::new(config.tick_interval_ms),
                cpu_pacing: Pacing::capped(config.tick_interval_ms, report_pacing::CPU_LEVEL_MAX),
                cpu_pressure: Default::default(),
                deltas_taken: Default::default(),
                leader_advice_ms: Default::default(),
                runtime_lag: Default::default(),
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
        tokio::spawn(node.clone().lag_loop());
        if let Some(file) = cpu_pressure_file {
            tokio::spawn(node.clone().cpu_pressure_loop(file));
        }
        Ok(node)
    }
}
