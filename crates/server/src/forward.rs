//! What a follower forwards to the leader, over the Raft service's `Forward` RPC.
//!
//! Writes are proposed only by the leader, reads are linearized by the leader's read index,
//! and fleet reports are merged into the leader's next tick. A follower that receives any of
//! these sends it on as a [`ForwardRequest`]; the leader answers with a [`ForwardReply`]. A
//! forwarded request is never forwarded again: a node that is no longer leader answers
//! `NotLeader` and the original caller retries, which bounds every request to one hop.

use serde::{Deserialize, Serialize};
use switchyard_core::{Delta, Envelope};
use switchyard_store::Response;

mod deltas;

/// A request only the leader can serve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    /// Propose a command.
    Write(Envelope),
    /// Confirm leadership and return the read index.
    ReadIndex,
    /// Fleet report deltas to merge into the next tick.
    Report {
        /// Report calls per instance that brought these deltas: the leader counts them
        /// against each instance's rate, so the limit holds across the cluster.
        calls: Vec<(String, u32)>,
        /// The deltas, merged per (breaker, instance) (already validated by the receiving node).
        /// Read with each distinct id parsed once per batch (see `deltas`).
        #[serde(deserialize_with = "deltas::deserialize")]
        deltas: Vec<Delta>,
    },
    /// Add a learner.
    AddLearner {
        /// Its node id.
        node_id: u64,
        /// Its advertised address.
        addr: String,
    },
    /// Promote a learner to voter.
    Promote {
        /// The learner.
        node_id: u64,
    },
    /// Remove a member.
    Remove {
        /// The member.
        node_id: u64,
    },
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardReply {
    /// The committed write's result.
    Written(Response),
    /// The confirmed read index.
    ReadIndex(u64),
    /// Deltas accepted into the next tick.
    Reported {
        /// How many.
        accepted: u32,
        /// The report interval the leader asks SDKs for, ms (0: their own; see
        /// `crate::report_pacing`); the follower passes it on with its own.
        report_interval_ms: u64,
    },
    /// A membership change committed at this index.
    Membership(u64),
    /// The receiving node is not the leader (any more).
    NotLeader {
        /// The leader it knows of, if any.
        leader: Option<u64>,
    },
    /// The leader refused the request.
    Failed {
        /// A gRPC status code number.
        code: i32,
        /// The message.
        message: String,
    },
}
