//! The invariants, one per file, each reporting its own variant of [`Violation`] and counting
//! how often it actually evaluated something ([`Evaluations`]), so that a pass that checked
//! nothing shows as such.
//!
//! | module | property | evaluated when |
//! |---|---|---|
//! | [`election_safety`] | one node per leader id, leading on its own vote; votes survive restarts | a leader is seen; a restarted node's vote is compared |
//! | [`log_matching`] | equal entry ids at an index ⇒ equal logs up to it | two logs share an entry id |
//! | [`committed_durable`] | no node loses a committed entry it held durably, or an acknowledged one in a crash | a node's durable log is checked against committed entries; a crash |
//! | [`state_digest`] | equal applied index ⇒ equal state digest | two nodes' digests meet at one index |
//! | [`decision_index`] | no SDK ever accepts a lower decision index | every update an SDK applies |
//! | [`probe_limit`] | trial calls and grants never exceed `probe_permits` | probes in flight or leases held |
//! | [`leader_liveness`] | after healing, a leader every node follows within a bound | the liveness verdict |
//! | [`sdk_convergence`] | after healing, every SDK shows the cluster's decision within a bound | the liveness verdict |
//! | [`dead_dependency`] | the fleet stops ordinary calls to a dead dependency within a bound | the liveness verdict |
//! | [`fail_static`] | cut off from every node: calls never wait, modes go stale then local-only on schedule, and back to cluster after the heal | calls made while cut off; instances judged |
//! | [`trip_evidence`] | the fleet never trips on failures seen by one instance, nor on a noisy baseline below the threshold | every fleet trip; every check at which only one instance, or only noise, had failed lately |
//!
//! Election safety is checked per *leader id*, not per term: openraft's default
//! `leader_id_adv` orders votes by `(term, node_id)`, so two nodes may legitimately lead in
//! the same term one after the other (the later one's vote is greater and the earlier
//! cannot commit any more). What makes two leaders of one leader id impossible is that every
//! vote a node acted on survives its crashes; that is checked directly (a node's flushed vote,
//! as its metrics show it, never goes back). Every log identity comparison uses the committed
//! leader id for the same reason.

pub mod committed_durable;
pub mod dead_dependency;
pub mod decision_index;
pub mod election_safety;
pub mod fail_static;
pub mod leader_liveness;
pub mod log_matching;
pub mod probe_limit;
pub mod sdk_convergence;
pub mod state_digest;
pub mod trip_evidence;
mod violation;

pub use violation::Violation;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::entry::RaftEntry;
use switchyard_store::MemDisk;
use switchyard_store::disk::{Disk, TreeId};

use crate::rng::fnv1a;

/// The invariants, for counts and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// [`election_safety`].
    ElectionSafety,
    /// [`log_matching`].
    LogMatching,
    /// [`committed_durable`].
    CommittedDurable,
    /// [`state_digest`].
    StateDigest,
    /// [`decision_index`].
    DecisionIndex,
    /// [`probe_limit`].
    ProbeLimit,
    /// [`leader_liveness`].
    LeaderLiveness,
    /// [`sdk_convergence`].
    SdkConvergence,
    /// [`dead_dependency`].
    DeadDependency,
    /// [`fail_static`]: no call waits on the cluster.
    CallLatency,
    /// [`fail_static`]: stale, then local-only, on schedule.
    FailStaticModes,
    /// [`fail_static`]: back to cluster mode after the heal.
    ClusterReturn,
    /// [`trip_evidence`]: failures seen by one instance never trip the fleet.
    OneInstanceTrip,
    /// [`trip_evidence`]: a noisy baseline below the threshold never trips the fleet.
    NoisyBaselineTrip,
}

impl Invariant {
    /// Every invariant, in report order.
    pub const ALL: [Invariant; 14] = [
        Invariant::ElectionSafety,
        Invariant::LogMatching,
        Invariant::CommittedDurable,
        Invariant::StateDigest,
        Invariant::DecisionIndex,
        Invariant::ProbeLimit,
        Invariant::LeaderLiveness,
        Invariant::SdkConvergence,
        Invariant::DeadDependency,
        Invariant::CallLatency,
        Invariant::FailStaticModes,
        Invariant::ClusterReturn,
        Invariant::OneInstanceTrip,
        Invariant::NoisyBaselineTrip,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::ElectionSafety => "election_safety",
            Invariant::LogMatching => "log_matching",
            Invariant::CommittedDurable => "committed_durable",
            Invariant::StateDigest => "state_digest",
            Invariant::DecisionIndex => "decision_index",
            Invariant::ProbeLimit => "probe_limit",
            Invariant::LeaderLiveness => "leader_liveness",
            Invariant::SdkConvergence => "sdk_convergence",
            Invariant::DeadDependency => "dead_dependency",
            Invariant::CallLatency => "call_latency",
            Invariant::FailStaticModes => "fail_static_modes",
            Invariant::ClusterReturn => "cluster_return",
            Invariant::OneInstanceTrip => "one_instance_trip",
            Invariant::NoisyBaselineTrip => "noisy_baseline_trip",
        }
    }

    /// What one evaluation is, for the summary table.
    pub fn unit(self) -> &'static str {
        match self {
            Invariant::ElectionSafety => "leader views and restarted votes",
            Invariant::LogMatching => "log pairs sharing an entry id",
            Invariant::CommittedDurable => "durable logs and crashes checked",
            Invariant::StateDigest => "cross-node digest comparisons",
            Invariant::DecisionIndex => "SDK updates",
            Invariant::ProbeLimit => "steps and checks with probes out",
            Invariant::LeaderLiveness => "liveness verdicts",
            Invariant::SdkConvergence => "convergence checks",
            Invariant::DeadDependency => "dead-dependency verdicts",
            Invariant::CallLatency => "calls while cut off",
            Invariant::FailStaticModes => "instances judged",
            Invariant::ClusterReturn => "instances judged",
            Invariant::OneInstanceTrip => "fleet trips and checks with one failing instance",
            Invariant::NoisyBaselineTrip => "fleet trips and checks under noise alone",
        }
    }
}

/// How many times each invariant evaluated something in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluations([u64; Invariant::ALL.len()]);

impl Evaluations {
    /// Counts `n` evaluations of `invariant`.
    pub fn add(&mut self, invariant: Invariant, n: u64) {
        self.0[invariant as usize] += n;
    }

    /// Evaluations of `invariant`.
    pub fn get(&self, invariant: Invariant) -> u64 {
        self.0[invariant as usize]
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
    /// Its flushed vote as `(term, node, committed)`, ordered as openraft orders votes.
    pub vote: (u64, u64, bool),
    /// As leader: the last index each voter (itself included) acknowledged as flushed.
    pub matched: BTreeMap<u64, u64>,
}

impl NodeView {
    /// Reads node `node`'s Raft metrics.
    pub fn of(node: &switchyard_server::Node) -> Self {
        let metrics = node.raft().metrics();
        let m = metrics.borrow_watched();
        let status = node.raft_status();
        let vote_leader_id = format!("{}", m.vote.leader_id());
        Self {
            id: status.node_id,
            state: m.state,
            leader: m.current_leader,
            term: m.current_term,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            last_log_index: status.last_log_index,
            vote: (
                leader_id_part(&vote_leader_id, 'T'),
                leader_id_part(&vote_leader_id, 'N'),
                m.vote.is_committed(),
            ),
            matched: m
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|(id, log_id)| (*id, log_id.as_ref().map_or(0, |l| l.index())))
                        .collect()
                })
                .unwrap_or_default(),
            vote_leader_id,
        }
    }
}

/// The number after `part` in a printed leader id `T{term}-N{node}` (0 if absent).
pub fn leader_id_part(leader_id: &str, part: char) -> u64 {
    leader_id
        .split('-')
        .find_map(|p| p.strip_prefix(part))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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
/// writes). Entries at or below the purge point are left out: the store deletes purged keys a
/// few at a time and never reads them, so a stale entry a snapshot install purged may still be
/// on disk without being part of the node's log.
pub fn read_log(disk: &MemDisk) -> StoredLog {
    let pairs = disk
        .range(TreeId::Log, Bound::Unbounded, Bound::Unbounded)
        .unwrap_or_default();
    let purged = disk
        .get(TreeId::Meta, LAST_PURGED)
        .ok()
        .flatten()
        .map_or(0, |v| purge_index(&v));
    let mut log = decode_log(pairs);
    log.retain(|index, _| *index > purged);
    log
}

/// The store's meta key of its purge point.
const LAST_PURGED: &[u8] = b"last_purged";

/// The index of an encoded purge point (0 if it does not decode).
fn purge_index(value: &[u8]) -> u64 {
    switchyard_store::codec::decode::<openraft::alias::LogIdOf<switchyard_store::TypeConfig>>(
        "last purged log id",
        value,
    )
    .map_or(0, |l| l.index())
}

/// What of a node's log would survive a crash now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurableLog {
    /// The durable entries (purged keys not deleted yet included).
    pub log: StoredLog,
    /// The durable purge point: entries at or below it are gone by design.
    pub purged: u64,
}

/// Reads the durable part of `disk`'s log and its purge point.
pub fn read_durable(disk: &MemDisk) -> DurableLog {
    let purged = disk
        .durable_pairs(TreeId::Meta)
        .into_iter()
        .find(|(k, _)| k.as_slice() == LAST_PURGED)
        .map_or(0, |(_, v)| purge_index(&v));
    DurableLog {
        log: decode_log(disk.durable_pairs(TreeId::Log)),
        purged,
    }
}

fn decode_log(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> StoredLog {
    let mut log = StoredLog::new();
    for (key, value) in pairs {
        let Ok(bytes) = <[u8; 8]>::try_from(key.as_slice()) else {
            continue;
        };
        let index = u64::from_be_bytes(bytes);
        let digest = fnv1a(&value);
        log.insert(
            index,
            LogEntryId {
                leader_id: leader_id_of(&value, digest),
                digest,
            },
        );
    }
    log
}

/// Entries whose leader ids [`leader_id_of`] remembers, per thread, before it starts afresh.
const LEADER_ID_MEMO_ENTRIES: usize = 1 << 16;

/// A memo of leader ids: (digest, length) → (the entry's bytes, its printed leader id).
type LeaderIdMemo = HashMap<(u64, usize), (Vec<u8>, String)>;

thread_local! {
    /// Leader ids of entries already decoded, by the digest and length of their bytes (the
    /// bytes are kept and compared, so a digest collision cannot mislead it). The checker
    /// reads every node's whole log at every check; decoding entries it had already decoded
    /// was a quarter of the simulation's time.
    static LEADER_IDS: RefCell<LeaderIdMemo> = RefCell::default();
}

/// The printed leader id of the stored entry `value` (whose FNV-1a is `digest`), or why it
/// does not decode.
fn leader_id_of(value: &[u8], digest: u64) -> String {
    LEADER_IDS.with_borrow_mut(|memo| {
        if let Some((bytes, leader_id)) = memo.get(&(digest, value.len()))
            && bytes.as_slice() == value
        {
            return leader_id.clone();
        }
        let entry: Result<openraft::alias::EntryOf<switchyard_store::TypeConfig>, _> =
            switchyard_store::codec::decode("log entry", value);
        let leader_id = match entry {
            Ok(entry) => format!("{}", entry.log_id().leader_id),
            Err(e) => format!("undecodable: {e}"),
        };
        if memo.len() >= LEADER_ID_MEMO_ENTRIES {
            memo.clear();
        }
        memo.insert((digest, value.len()), (value.to_vec(), leader_id.clone()));
        leader_id
    })
}

/// Hand-built observations for the invariant modules' unit tests.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A running node's view with `vote` `(term, node, committed)`.
    pub(crate) fn node(id: u64, state: ServerState, vote: (u64, u64, bool)) -> NodeView {
        NodeView {
            id,
            state,
            leader: None,
            term: vote.0,
            vote_leader_id: format!("T{}-N{}", vote.0, vote.1),
            commit_index: 0,
            applied_index: 0,
            last_log_index: 0,
            vote,
            matched: BTreeMap::new(),
        }
    }

    /// A stored entry proposed by the leader of `(term, node)`; `salt` varies its bytes.
    pub(crate) fn entry(term: u64, node: u64, salt: u64) -> LogEntryId {
        LogEntryId {
            leader_id: format!("T{term}-N{node}"),
            digest: salt.wrapping_mul(0x9e37_79b9) ^ term,
        }
    }

    #[test]
    fn leader_id_parts_are_read_from_the_printed_form() {
        assert_eq!(leader_id_part("T12-N3", 'T'), 12);
        assert_eq!(leader_id_part("T12-N3", 'N'), 3);
        assert_eq!(entry(4, 2, 0).term(), 4);
    }
}
