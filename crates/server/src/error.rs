//! The node's error type and its one conversion to `tonic::Status`.

use switchyard_core::{CommandError, ValidationError};

/// Why a node could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed; nothing changed.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The command was committed but the state machine refused it; nothing changed.
    #[error("{0}")]
    Command(#[from] CommandError),
    /// A limit was hit; nothing changed.
    #[error("{what} over the limit of {max}")]
    Limit {
        /// Which limit.
        what: String,
        /// Its value.
        max: u64,
    },
    /// No leader is known right now; retry shortly.
    #[error("no leader is known right now{hint}; retry shortly")]
    NoLeader {
        /// Extra context, e.g. " (election in progress)".
        hint: String,
    },
    /// The leader (or another node) answered with an error status.
    #[error("{0}")]
    Remote(tonic::Status),
    /// Raft or storage failed.
    #[error("raft: {0}")]
    Raft(String),
    /// The requested thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The node's configuration cannot be used (e.g. a TLS file); it names the setting.
    #[error("configuration: {0}")]
    Config(String),
}

impl From<NodeError> for tonic::Status {
    fn from(e: NodeError) -> Self {
        use tonic::Status;
        match e {
            NodeError::Invalid(v) => Status::invalid_argument(v.to_string()),
            NodeError::Command(c) => match c {
                CommandError::Invalid(v) => Status::invalid_argument(v.to_string()),
                CommandError::ResourceExhausted { .. } => Status::resource_exhausted(c.to_string()),
                CommandError::UnknownBreaker(_) | CommandError::NotFound { .. } => {
                    Status::not_found(c.to_string())
                }
                other => Status::failed_precondition(other.to_string()),
            },
            NodeError::Limit { .. } => Status::resource_exhausted(e.to_string()),
            NodeError::NoLeader { .. } | NodeError::ShuttingDown => {
                Status::unavailable(e.to_string())
            }
            NodeError::Remote(status) => status,
            NodeError::Raft(_) => Status::unavailable(e.to_string()),
            NodeError::NotFound(_) => Status::not_found(e.to_string()),
            NodeError::Config(_) => Status::failed_precondition(e.to_string()),
        }
    }
}
