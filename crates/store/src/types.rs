//! The Raft type configuration of Switchyard and the payload of its log entries.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchyard_core::{Applied, CommandError, Envelope};

use crate::RaftRuntime;

/// A node's identity in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Switchyard's openraft type configuration: `u64` node ids, `BasicNode` addresses,
    /// [`Request`] entries and [`Response`] results, on tokio through [`RaftRuntime`] (whose
    /// random draws a seed scope can fix).
    pub TypeConfig:
        D = Request,
        R = Response,
        AsyncRuntime = RaftRuntime,
);

/// The Raft handle of a Switchyard node.
pub type Raft = openraft::Raft<TypeConfig, crate::StateMachine>;

/// One command in the log: an operator, policy or fleet command stamped by the leader with its
/// wall-clock time. The state machine never reads a clock: it uses
/// `max(previous time, stamped_ms)` so time never goes backwards across leader changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Leader wall-clock time when the entry was proposed, in ms since the Unix epoch.
    pub stamped_ms: u64,
    /// The command and who issued it. Shared, not copied: an entry is handed to every
    /// replication stream and to the state machine, and a fleet `Tick` carries thousands of
    /// deltas.
    pub envelope: Arc<Envelope>,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {} at {}",
            self.envelope.command.kind(),
            self.envelope.actor,
            self.stamped_ms
        )
    }
}

/// The result of applying one [`Request`], returned to the proposer once committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The log index the request was applied at.
    pub index: u64,
    /// The effects, or why the command changed nothing.
    pub outcome: Result<Applied, CommandError>,
}
