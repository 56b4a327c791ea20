//! [`Violation`]: what a broken invariant reports, and which invariant it breaks.

use std::fmt;

use super::Invariant;

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
    /// A node's vote went back (a vote it acted on was lost).
    VoteRegressed {
        /// The node.
        node: u64,
        /// The vote it had, printed.
        from: String,
        /// The lower vote it showed later, printed.
        to: String,
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
    /// An SDK call waited on the cluster while the fleet was cut off.
    CallLatency {
        /// The instance.
        instance: u64,
        /// How long its call waited, ms.
        waited_ms: u64,
        /// The bound, ms.
        bound_ms: u64,
        /// When, simulated ms.
        at_ms: u64,
    },
    /// An SDK did not go stale, then local-only, on schedule while cut off.
    FailStaticModes {
        /// The instance.
        instance: u64,
        /// What it did instead.
        what: String,
    },
    /// Some SDKs were not back in cluster mode within the bound after the fleet's cut healed.
    ClusterReturn {
        /// The bound, ms after the heal.
        bound_ms: u64,
        /// Instances still out, with their mode.
        lagging: Vec<String>,
    },
    /// The fleet tripped with fewer than two instances' calls failing (or slow) lately.
    OneInstanceTrip {
        /// When it tripped, simulated ms.
        at_ms: u64,
        /// Instances whose calls failed or were slow in the lookback.
        instances: u64,
        /// The transition's reason.
        reason: String,
    },
    /// The fleet tripped with only noise below the threshold (no outage, no slowness) lately.
    NoisyBaselineTrip {
        /// When it tripped, simulated ms.
        at_ms: u64,
        /// The transition's reason.
        reason: String,
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
            Violation::VoteRegressed {
                node,
                from,
                to,
                at_ms,
            } => write!(
                f,
                "election safety: node {node}'s vote went back from {from} to {to} at {at_ms} ms (a vote it acted on was lost)"
            ),
            Violation::CallLatency {
                instance,
                waited_ms,
                bound_ms,
                at_ms,
            } => write!(
                f,
                "call latency: instance {instance} waited {waited_ms} ms on a call while cut off from the cluster (bound {bound_ms} ms) at {at_ms} ms"
            ),
            Violation::FailStaticModes { instance, what } => {
                write!(f, "fail-static modes: instance {instance} {what}")
            }
            Violation::ClusterReturn { bound_ms, lagging } => write!(
                f,
                "cluster return: {} instances not back in cluster mode within {bound_ms} ms of the fleet's heal: {}",
                lagging.len(),
                lagging.join("; ")
            ),
            Violation::OneInstanceTrip {
                at_ms,
                instances,
                reason,
            } => write!(
                f,
                "one-instance trip: the fleet tripped at {at_ms} ms with {instances} instance(s) failing lately ({reason})"
            ),
            Violation::NoisyBaselineTrip { at_ms, reason } => write!(
                f,
                "noisy-baseline trip: the fleet tripped at {at_ms} ms on noise below the threshold, no outage lately ({reason})"
            ),
            Violation::HostFailed { error } => write!(f, "host failed: {error}"),
        }
    }
}

impl Violation {
    /// The invariant it breaks (`None`: a host failed outright).
    pub fn invariant(&self) -> Option<Invariant> {
        Some(match self {
            Violation::ElectionSafety { .. } | Violation::VoteRegressed { .. } => {
                Invariant::ElectionSafety
            }
            Violation::LogMatching { .. } => Invariant::LogMatching,
            Violation::CommittedDurable { .. } => Invariant::CommittedDurable,
            Violation::StateDigest { .. } => Invariant::StateDigest,
            Violation::DecisionIndex { .. } => Invariant::DecisionIndex,
            Violation::ProbeLimit { .. } => Invariant::ProbeLimit,
            Violation::LeaderLiveness { .. } => Invariant::LeaderLiveness,
            Violation::SdkConvergence { .. } => Invariant::SdkConvergence,
            Violation::DeadDependency { .. } => Invariant::DeadDependency,
            Violation::CallLatency { .. } => Invariant::CallLatency,
            Violation::FailStaticModes { .. } => Invariant::FailStaticModes,
            Violation::ClusterReturn { .. } => Invariant::ClusterReturn,
            Violation::OneInstanceTrip { .. } => Invariant::OneInstanceTrip,
            Violation::NoisyBaselineTrip { .. } => Invariant::NoisyBaselineTrip,
            Violation::HostFailed { .. } => return None,
        })
    }
}
