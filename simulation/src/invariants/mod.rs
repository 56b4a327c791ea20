//! The invariants, one per file, each reporting its own variant of [`Violation`].
//!
//! | module | property | when |
//! |---|---|---|
//! | [`election_safety`] | at most one leader per Raft leader id | every step |
//! | [`log_matching`] | equal entry ids at an index ⇒ equal logs up to it | every check |
//! | [`committed_durable`] | committed entries are never lost or changed | every check |
//! | [`state_digest`] | equal applied index ⇒ equal state digest | every check |
//! | [`decision_index`] | no SDK ever accepts a lower decision index | every check |
//! | [`probe_limit`] | trial calls and grants never exceed `probe_permits` | every step / check |
//! | [`leader_liveness`] | after healing, a leader every node follows within a bound | liveness |
//! | [`sdk_convergence`] | after healing, every SDK shows the cluster's decision within a bound | liveness |
//! | [`dead_dependency`] | the fleet stops ordinary calls to a dead dependency within a bound | liveness |
//!
//! Election safety is checked per *leader id*, not per term: openraft's default
//! `leader_id_adv` orders votes by `(term, node_id)`, so two nodes may legitimately lead in
//! the same term one after the other (the later one's vote is greater and the earlier
//! cannot commit any more). Every log identity comparison uses the committed leader id for
//! the same reason.

pub mod committed_durable;
pub mod dead_dependency;
pub mod decision_index;
pub mod election_safety;
pub mod leader_liveness;
pub mod log_matching;
pub mod probe_limit;
pub mod sdk_convergence;
pub mod state_digest;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::entry::RaftEntry;
use switchyard_store::MemDisk;
use switchyard_store::disk::{Disk, TreeId};

use crate::rng::fnv1a;

/// A broken invariant: a bug in Switchyard (or in the simulation's planted bug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Two nodes led with the same leader id.
    ElectionSafety {
        /// The leader id, as openraft prints it.
        leader_id: String,
        /// The nodes that led with it.
        nodes: Vec<u64>,
        /// When, simulated ms.
        at_ms: u64,
    },
    /// Two logs hold the same entry id at `index` but differ below it.
    LogMatching {
        /// The two nodes.
        nodes: (u64, u64),
        /// The index of the matching entry id.
        matching_index: u64,
        /// The lower index where they differ.
        differing_index: u64,
        /// When, simulated ms.
        at_ms: u64,
    },
    /// A committed entry was lost or changed.
    CommittedDurable {
        /// The node whose log disagrees.
        node: u64,
        /// The committed index.
        index: u64,
        /// What happened.
        what: String,
        /// When, simulated ms.
        at_ms: u64,
    },
    /// Two nodes applied up to the same index and hold different states.
    StateDigest {
        /// The index.
        index: u64,
        /// `(node, digest)` of the two.
        first: (u64, u64),
        /// `(node, digest)`.
        second: (u64, u64),
        /// When, simulated ms.
        at_ms: u64,
    },
    /// An SDK accepted a lower decision index than it had.
    DecisionIndex {
        /// The instance.
        instance: u64,
        /// The index it had.
        from: u64,
        /// The lower index it accepted.
        to: u64,
        /// When, simulated ms.
        at_ms: u64,
    },
    /// More probes than `probe_permits` at once.
    ProbeLimit {
        /// Where it was seen: trial calls in flight at the dependency, or leases on a node.
        seen_at: String,
        /// How many.
        count: u64,
        /// The policy's limit.
        limit: u64,
        /// When, simulated ms.
        at_ms: u64,
    },
    /// No leader that every node follows within the bound after healing.
    LeaderLiveness {
        /// The bound, ms after healing.
        bound_ms: u64,
    },
    /// Some SDKs did not show the cluster's decision within the bound after healing.
    SdkConvergence {
        /// The bound, ms after healing.
        bound_ms: u64,
        /// Instances still disagreeing at the end of the bound, with what they showed.
        lagging: Vec<String>,
    },
    /// The fleet kept making ordinary calls to a dead dependency past the bound.
    DeadDependency {
        /// When the dependency died, ms.
        died_at_ms: u64,
        /// The last ordinary call, ms.
        last_call_ms: u64,
        /// The bound, ms.
        bound_ms: u64,
    },
    /// A host's software failed (returned an error or panicked).
    HostFailed {
        /// What turmoil reported.
        error: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::ElectionSafety {
                leader_id,
                nodes,
                at_ms,
            } => write!(
                f,
                "election safety: nodes {nodes:?} led with the same leader id {leader_id} at {at_ms} ms"
            ),
            Violation::LogMatching {
                nodes,
                matching_index,
                differing_index,
                at_ms,
            } => write!(
                f,
                "log matching: nodes {} and {} agree at index {matching_index} but differ at {differing_index} ({at_ms} ms)",
                nodes.0, nodes.1
            ),
            Violation::CommittedDurable {
                node,
                index,
                what,
                at_ms,
            } => write!(
                f,
                "committed entry {index} on node {node}: {what} ({at_ms} ms)"
            ),
            Violation::StateDigest {
                index,
                first,
                second,
                at_ms,
            } => write!(
                f,
                "state digest at index {index}: node {} has {:016x}, node {} has {:016x} ({at_ms} ms)",
                first.0, first.1, second.0, second.1
            ),
            Violation::DecisionIndex {
                instance,
                from,
                to,
                at_ms,
            } => write!(
                f,
                "decision index: instance {instance} went from {from} back to {to} at {at_ms} ms"
            ),
            Violation::ProbeLimit {
                seen_at,
                count,
                limit,
                at_ms,
            } => write!(
                f,
                "probe limit: {count} probes ({seen_at}) with probe_permits = {limit} at {at_ms} ms"
            ),
            Violation::LeaderLiveness { bound_ms } => write!(
                f,
                "leader liveness: no leader followed by every node within {bound_ms} ms of healing"
            ),
            Violation::SdkConvergence { bound_ms, lagging } => write!(
                f,
                "sdk convergence: {} instances not on the cluster's decision within {bound_ms} ms of healing: {}",
                lagging.len(),
                lagging.join("; ")
            ),
            Violation::DeadDependency {
                died_at_ms,
                last_call_ms,
                bound_ms,
            } => write!(
                f,
                "dead dependency: died at {died_at_ms} ms, last ordinary call at {last_call_ms} ms (bound {bound_ms} ms)"
            ),
            Violation::HostFailed { error } => write!(f, "host failed: {error}"),
        }
    }
}

/// What one running node shows, read between simulation steps.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// Node id.
    pub id: u64,
    /// Leader, follower, candidate...
    pub state: ServerState,
    /// The leader it follows.
    pub leader: Option<u64>,
    /// Its term.
    pub term: u64,
    /// Its vote's leader id, printed.
    pub vote_leader_id: String,
    /// Its committed index.
    pub commit_index: u64,
    /// Its applied index (Raft metrics).
    pub applied_index: u64,
    /// Its last log index.
    pub last_log_index: u64,
}

impl NodeView {
    /// Reads node `node`'s Raft metrics.
    pub fn of(node: &switchyard_server::Node) -> Self {
        let metrics = node.raft().metrics();
        let m = metrics.borrow_watched();
        let status = node.raft_status();
        Self {
            id: status.node_id,
            state: m.state,
            leader: m.current_leader,
            term: m.current_term,
            vote_leader_id: format!("{}", m.vote.leader_id()),
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            last_log_index: status.last_log_index,
        }
    }
}

/// One stored log entry: its id (leader id and index) and the digest of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntryId {
    /// The committed leader id that proposed it, printed.
    pub leader_id: String,
    /// The digest of the stored entry.
    pub digest: u64,
}

impl LogEntryId {
    /// The term of the leader that proposed the entry (from `T{term}-N{node}`).
    pub fn term(&self) -> u64 {
        self.leader_id
            .strip_prefix('T')
            .and_then(|rest| rest.split('-').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or(u64::MAX)
    }
}

/// A node's log as stored on its disk: index → entry.
pub type StoredLog = BTreeMap<u64, LogEntryId>;

/// Reads the log tree of `disk` (what the node would find after a restart, plus unflushed
/// writes).
pub fn read_log(disk: &MemDisk) -> StoredLog {
    let pairs = disk
        .range(TreeId::Log, Bound::Unbounded, Bound::Unbounded)
        .unwrap_or_default();
    let mut log = StoredLog::new();
    for (key, value) in pairs {
        let Ok(bytes) = <[u8; 8]>::try_from(key.as_slice()) else {
            continue;
        };
        let index = u64::from_be_bytes(bytes);
        let entry: Result<openraft::alias::EntryOf<switchyard_store::TypeConfig>, _> =
            switchyard_store::codec::decode("log entry", &value);
        let leader_id = match entry {
            Ok(entry) => format!("{}", entry.log_id().leader_id),
            Err(e) => format!("undecodable: {e}"),
        };
        log.insert(
            index,
            LogEntryId {
                leader_id,
                digest: fnv1a(&value),
            },
        );
    }
    log
}
