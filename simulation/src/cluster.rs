//! [`Cluster`]: the server hosts of a run, their disks, and the handles the checker reads.
//!
//! ```text
//!   run loop (outside the hosts)                     turmoil host "nodeN"
//!   ┌────────────────────────────┐                   ┌──────────────────────────────┐
//!   │ Cluster { disks, live }    │── MemDisk clone ─>│ Node::start(.., disk)        │
//!   │   crash: forget handle,    │<── Node handle ───│ serve_node(turmoil listener) │
//!   │   sim.crash, disk.crash()  │                   └──────────────────────────────┘
//!   │   restart: sim.bounce      │
//!   └────────────────────────────┘
//! ```
//!
//! The disk of each node lives here, outside its host, so it survives the host: a crash
//! drops the host's runtime (every task, every socket), then [`MemDisk::crash`] throws away
//! the writes that were never flushed, and the next incarnation opens what is left.
//!
//! Each incarnation's software runs inside `RaftRuntime::scope` with a seed of its own
//! ([`raft_seed`]: the scenario's openraft seed, the node id, the incarnation), so every
//! election timeout and tick phase openraft draws, in every task it spawns, follows the seed.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_core::{Actor, Command, PolicyTarget};
use switchyard_server::auth::Tokens;
use switchyard_server::{Node, NodeConfig, NodeDeps};
use switchyard_store::{Disk, MemDisk, RaftRuntime};

use crate::clock::SimClock;
use crate::net::{GRPC_PORT, SimConnector, incoming};
use crate::plant::PlantedBug;
use crate::rng::SimRng;
use crate::scenario::{BREAKER_KEY, Scenario};

/// The host name of node `id`.
pub fn node_host(id: u64) -> String {
    format!("node{id}")
}

/// The gRPC address of node `id`.
pub fn node_addr(id: u64) -> String {
    format!("{}:{GRPC_PORT}", node_host(id))
}

/// Handles shared between the run loop and the node hosts.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// The disk of every node, by id; outlives the hosts.
    pub disks: BTreeMap<u64, MemDisk>,
    live: Arc<Mutex<BTreeMap<u64, Node>>>,
    /// Set once the operator's policy is committed.
    policy_installed: Arc<Mutex<bool>>,
}

impl Cluster {
    /// The disks of `nodes` nodes, each flushing in `flush_latency_ms`.
    pub fn new(nodes: u64, flush_latency_ms: u64) -> Self {
        let latency = std::time::Duration::from_millis(flush_latency_ms);
        Self {
            disks: (1..=nodes)
                .map(|id| (id, MemDisk::with_flush_latency(latency)))
                .collect(),
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Node>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles of the nodes running now, by id.
    pub fn live(&self) -> BTreeMap<u64, Node> {
        self.lock().clone()
    }

    /// Forgets node `id`'s handle (its host is about to crash).
    pub fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Whether the operator's policy has been committed.
    pub fn policy_installed(&self) -> bool {
        *self
            .policy_installed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The node configuration of `id` in `scenario`.
    pub fn config(scenario: &Scenario, id: u64) -> NodeConfig {
        let election_timeout_min_ms = scenario.election_timeout_ms[(id - 1) as usize];
        NodeConfig {
            node_id: id,
            grpc_addr: format!("0.0.0.0:{GRPC_PORT}"),
            http_addr: "0.0.0.0:7080".into(),
            advertise_addr: Some(node_addr(id)),
            peers: (1..=scenario.nodes).map(|n| (n, node_addr(n))).collect(),
            heartbeat_interval_ms: scenario.heartbeat_interval_ms,
            election_timeout_min_ms,
            election_timeout_max_ms: election_timeout_min_ms + 1,
            snapshot_every_entries: scenario.snapshot_every_entries,
            log_entries_kept_after_snapshot: scenario.log_entries_kept_after_snapshot,
            insecure: true,
            ..NodeConfig::default()
        }
    }

    /// Registers node `id`'s host in `sim`. With [`PlantedBug::HungRestart`] every
    /// incarnation after the first hangs before its node starts.
    pub fn add_host(
        &self,
        sim: &mut turmoil::Sim<'_>,
        scenario: &Scenario,
        id: u64,
        plant: Option<PlantedBug>,
    ) {
        let config = Self::config(scenario, id);
        let disk: Arc<dyn Disk> = Arc::new(self.disks[&id].clone());
        let cluster = self.clone();
        let policy = scenario.policy.clone();
        let scenario_raft_seed = scenario.raft_seed;
        // Bumped each time turmoil (re)starts the host's software.
        let incarnation = Cell::new(0);
        sim.host(node_host(id), move || {
            let config = config.clone();
            let disk = Arc::clone(&disk);
            let cluster = cluster.clone();
            let policy = policy.clone();
            incarnation.set(incarnation.get() + 1);
            let raft_seed = raft_seed(scenario_raft_seed, id, incarnation.get());
            let incarnation = incarnation.get();
            RaftRuntime::scope(raft_seed, async move {
                if plant == Some(PlantedBug::HungRestart) && incarnation > 1 {
                    std::future::pending::<()>().await;
                }
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", GRPC_PORT)).await?;
                let deps = NodeDeps {
                    clock: Arc::new(SimClock),
                    connector: Arc::new(SimConnector),
                    tokens: Tokens::default(),
                    disk: Some(disk),
                    // One turmoil-driven runtime: extra threads would break determinism.
                    raft_runtime: None,
                    // The host's CPU is not the simulated cluster's.
                    cpu_pressure: None,
                };
                let node = Node::start(config, deps).await?;
                cluster.lock().insert(id, node.clone());
                if let Some(policy) = policy
                    && id == 1
                {
                    tokio::spawn(install_policy(node.clone(), cluster.clone(), policy));
                }
                switchyard_server::serve_node(
                    node,
                    incoming(listener),
                    None,
                    std::future::pending(),
                )
                .await?;
                Ok(())
            })
        });
    }
}

/// The seed of openraft's random draws (election timeouts, tick phase) in incarnation
/// `incarnation` (1 on the first start, +1 per restart) of node `id`, from the scenario's
/// [`Scenario::raft_seed`]. A restarted node draws afresh, as a restarted process would.
pub fn raft_seed(scenario_raft_seed: u64, id: u64, incarnation: u64) -> u64 {
    SimRng::new(scenario_raft_seed, (id << 32) | incarnation).next_u64()
}

/// The operator's one write: the breaker policy of the run, retried until committed.
async fn install_policy(node: Node, cluster: Cluster, policy: switchyard_core::Policy) {
    let key =
        switchyard_core::BreakerKey::parse(BREAKER_KEY).expect("the simulation's key is valid");
    let command = Command::PutPolicies {
        policies: vec![(PolicyTarget::Key(key), policy)],
    };
    while !cluster.policy_installed() {
        let written = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            node.write(Actor::Operator("simulation".into()), command.clone()),
        )
        .await;
        if let Ok(Ok(_)) = written {
            *cluster
                .policy_installed
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = true;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
