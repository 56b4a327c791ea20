//! The node's error type and its one conversion to `tonic::Status`.

use std::path::PathBuf;

use switchyard_core::{CommandError, ValidationError};
use switchyard_store::StoreError;

use crate::config::ConfigError;
use crate::tls::TlsError;

/// Why a node could not do what was asked. [`tonic::Status`] is made from it in one place
/// (the `From` impl below), with the code a client should act on:
///
/// | variant | code | what the caller does |
/// |---|---|---|
/// | `Invalid`, `Command(Invalid)` | `InvalidArgument` | fix the request |
/// | `Limit`, `Command(ResourceExhausted)` | `ResourceExhausted` | slow down, or raise the named limit |
/// | `NotFound`, `Command(NotFound)` | `NotFound` | |
/// | `Command(..)` otherwise | `FailedPrecondition` | the state does not allow it |
/// | `NoLeader`, `Hop`, `CatchUp`, `ShuttingDown`, `Raft`, `Transport` | `Unavailable` | retry, here or elsewhere |
/// | `DeadlinePassed` | `DeadlineExceeded` | nothing was proposed; retry with a new deadline |
/// | `Remote` | the remote node's code | |
/// | `Config`, `Tls`, `DataDir` | `FailedPrecondition` | the node is misconfigured: do not retry |
/// | `Store(Decode)` | `DataLoss` | restore or recreate the data directory |
/// | `Store(..)` otherwise, `Unexpected` | `Internal` | a bug or a broken disk |
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed; nothing changed.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The command was committed but the state machine refused it; nothing changed.
    #[error("{0}")]
    Command(#[from] CommandError),
    /// A limit was hit; nothing changed.
    #[error("{what} over the limit of {max} (`limits.{}`)", .limit.field())]
    Limit {
        /// Which limit.
        limit: LimitName,
        /// What was counted, in words.
        what: String,
        /// Its value.
        max: u64,
    },
    /// No leader is known right now, or it cannot be reached; retry shortly.
    #[error("no leader is known right now{hint}; retry shortly")]
    NoLeader {
        /// What this node knows about the leader.
        hint: NoLeaderHint,
    },
    /// This node has not applied a write it was told about in time (it is behind).
    #[error("this node has not applied up to index {index} within {waited_ms} ms")]
    CatchUp {
        /// The index waited for.
        index: u64,
        /// How long this node waited.
        waited_ms: u64,
    },
    /// The hop from this node to another failed (connection refused, reset or stuck, a
    /// protocol error, no answer in time): the request may be retried on any node.
    #[error("hop from node {from} to node {to} at {addr} failed: {reason}; retry shortly")]
    Hop {
        /// This node.
        from: u64,
        /// The node it tried to reach.
        to: u64,
        /// That node's address.
        addr: String,
        /// What went wrong on the way.
        reason: String,
    },
    /// The caller's deadline passed before the request could be served; nothing was done.
    #[error("the caller's deadline passed {0}; nothing was proposed")]
    DeadlinePassed(String),
    /// The leader (or another node) answered with an error status.
    #[error("{0}")]
    Remote(tonic::Status),
    /// Raft failed on this node (it is stopping, or its storage failed while running).
    #[error("raft: {0}")]
    Raft(String),
    /// The gRPC server failed (its listener, typically).
    #[error("transport: {0}")]
    Transport(String),
    /// A reply or request that the protocol does not allow here (a bug).
    #[error("unexpected: {0}")]
    Unexpected(String),
    /// The requested thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The node's configuration is not usable; it names the setting.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A TLS file is not usable; it names the setting and the file.
    #[error("configuration: {0}")]
    Tls(#[from] TlsError),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {} (set --data-dir): {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
}

/// What a node knows about the leader it could not reach, for [`NodeError::NoLeader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoLeaderHint {
    /// Nothing more to say.
    None,
    /// None was elected within the wait.
    NoneWithin {
        /// How long this node waited.
        wait_ms: u64,
    },
    /// An election or a handover is under way.
    Changing,
    /// Leadership moved while the call was on its way.
    Moved {
        /// The new leader, if known.
        leader: Option<u64>,
    },
    /// The leader is known but its address is not (a membership change in flight).
    NoAddress {
        /// The leader.
        leader: u64,
    },
    /// The leader did not answer.
    Unreachable {
        /// The leader.
        leader: u64,
        /// Why, as the transport said it.
        error: String,
    },
}

impl std::fmt::Display for NoLeaderHint {
    /// Empty for [`NoLeaderHint::None`], otherwise ` (...)`, to follow "no leader is known".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoLeaderHint::None => Ok(()),
            NoLeaderHint::NoneWithin { wait_ms } => write!(f, " (none within {wait_ms} ms)"),
            NoLeaderHint::Changing => f.write_str(" (leadership is changing)"),
            NoLeaderHint::Moved { leader: Some(id) } => write!(f, " (leadership moved to {id})"),
            NoLeaderHint::Moved { leader: None } => f.write_str(" (leadership moved)"),
            NoLeaderHint::NoAddress { leader } => {
                write!(f, " (leader {leader} has no known address)")
            }
            NoLeaderHint::Unreachable { leader, error } => {
                write!(f, " (leader {leader} unreachable: {error})")
            }
        }
    }
}

/// A node limit, by its field in the config's `[limits]` (and its `--limit-*` flag), so a
/// refusal says which setting to raise and metrics can label refusals with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitName {
    /// `report_deltas_max`: deltas in one Report call.
    ReportDeltasMax,
    /// `pending_deltas_max`: deltas waiting for the next tick (or for forwarding).
    PendingDeltasMax,
    /// `report_rate_per_instance_max`: Report calls per second from one instance.
    ReportRatePerInstanceMax,
}

impl LimitName {
    /// The limits a report can be refused at, in the order metrics list them.
    pub const REPORT: [LimitName; 3] = [
        LimitName::ReportRatePerInstanceMax,
        LimitName::ReportDeltasMax,
        LimitName::PendingDeltasMax,
    ];

    /// The field name in `[limits]`.
    pub const fn field(self) -> &'static str {
        match self {
            LimitName::ReportDeltasMax => "report_deltas_max",
            LimitName::PendingDeltasMax => "pending_deltas_max",
            LimitName::ReportRatePerInstanceMax => "report_rate_per_instance_max",
        }
    }
}

impl NodeError {
    /// What a call from node `from` to node `to` at `addr` that failed with `status` means:
    /// a failure on the way (no answer, a broken or refused connection, a protocol error) is
    /// [`NodeError::Hop`], which any node may retry; an answer is [`NodeError::Remote`], passed
    /// on as it is.
    pub fn from_hop_status(from: u64, to: u64, addr: &str, status: tonic::Status) -> NodeError {
        if is_hop_failure(&status) {
            NodeError::Hop {
                from,
                to,
                addr: addr.to_owned(),
                reason: describe(&status),
            }
        } else {
            NodeError::Remote(status)
        }
    }

    /// The limit this error refused at, if it is a limit refusal.
    pub fn limit(&self) -> Option<LimitName> {
        match self {
            NodeError::Limit { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}

/// Whether a failed call failed on the way (no answer, a broken or refused connection, a
/// protocol error) rather than being answered by the other node. Statuses that tonic makes up
/// from a transport error carry that error as their source; `UNKNOWN` and
/// `RESOURCE_EXHAUSTED` made up that way must not reach a client, which would not retry.
fn is_hop_failure(status: &tonic::Status) -> bool {
    use std::error::Error;
    status.source().is_some()
        || matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled
                | tonic::Code::Unknown
        )
}

/// A failed hop in words: tonic's message and its source chain.
fn describe(status: &tonic::Status) -> String {
    use std::error::Error;
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = status.source();
    while let Some(e) = source {
        let detail = e.to_string();
        if !text.contains(&detail) {
            text.push_str(": ");
            text.push_str(&detail);
        }
        source = e.source();
    }
    text
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
            NodeError::DeadlinePassed(_) => Status::deadline_exceeded(e.to_string()),
            NodeError::NoLeader { .. }
            | NodeError::Hop { .. }
            | NodeError::CatchUp { .. }
            | NodeError::ShuttingDown
            | NodeError::Transport(_)
            | NodeError::Raft(_) => Status::unavailable(e.to_string()),
            NodeError::Remote(status) => status,
            NodeError::NotFound(_) => Status::not_found(e.to_string()),
            NodeError::Config(_) | NodeError::Tls(_) | NodeError::DataDir { .. } => {
                Status::failed_precondition(e.to_string())
            }
            NodeError::Store(StoreError::Decode(_)) => Status::data_loss(e.to_string()),
            NodeError::Store(_) | NodeError::Unexpected(_) => Status::internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn every_error_reaches_clients_with_the_code_that_says_what_to_do() {
        let config = ConfigError {
            field: "tick_interval_ms".into(),
            rule: "must be between 10 and 60000".into(),
        };
        let tls = TlsError::Content {
            field: "tls_cert",
            path: "/etc/node.pem".into(),
            rule: "must be a PEM file".into(),
        };
        let decode = switchyard_store::CodecError::Empty { what: "vote" };
        let table: Vec<(NodeError, Code)> = vec![
            (
                NodeError::Limit {
                    limit: LimitName::PendingDeltasMax,
                    what: "deltas pending".into(),
                    max: 5,
                },
                Code::ResourceExhausted,
            ),
            (
                NodeError::NoLeader {
                    hint: NoLeaderHint::Changing,
                },
                Code::Unavailable,
            ),
            (
                NodeError::CatchUp {
                    index: 7,
                    waited_ms: 2_000,
                },
                Code::Unavailable,
            ),
            (NodeError::ShuttingDown, Code::Unavailable),
            (NodeError::Raft("fatal".into()), Code::Unavailable),
            (NodeError::Transport("accept".into()), Code::Unavailable),
            (
                NodeError::Hop {
                    from: 2,
                    to: 1,
                    addr: "10.0.0.1:7070".into(),
                    reason: "connection reset".into(),
                },
                Code::Unavailable,
            ),
            (
                NodeError::DeadlinePassed("before the write was proposed".into()),
                Code::DeadlineExceeded,
            ),
            (NodeError::NotFound("breaker a/b".into()), Code::NotFound),
            (NodeError::Config(config), Code::FailedPrecondition),
            (NodeError::Tls(tls), Code::FailedPrecondition),
            (
                NodeError::DataDir {
                    path: "/data".into(),
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                },
                Code::FailedPrecondition,
            ),
            (
                NodeError::Store(StoreError::from(std::io::Error::from(decode))),
                Code::DataLoss,
            ),
            (
                NodeError::Store(StoreError::Io(std::io::Error::other("eio"))),
                Code::Internal,
            ),
            (NodeError::Unexpected("reply".into()), Code::Internal),
            (
                NodeError::Remote(tonic::Status::permission_denied("no")),
                Code::PermissionDenied,
            ),
        ];
        for (error, code) in table {
            let message = error.to_string();
            let remote = matches!(error, NodeError::Remote(_));
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), code, "{message}");
            if !remote {
                assert_eq!(status.message(), message, "the message travels as it is");
            }
        }
    }

    #[test]
    fn messages_name_the_limit_field_and_the_leader_hint() {
        let limit = NodeError::Limit {
            limit: LimitName::ReportRatePerInstanceMax,
            what: "report calls per second from instance \"web-1\"".into(),
            max: 100,
        };
        assert_eq!(
            limit.to_string(),
            "report calls per second from instance \"web-1\" over the limit of 100 \
             (`limits.report_rate_per_instance_max`)"
        );
        assert_eq!(limit.limit(), Some(LimitName::ReportRatePerInstanceMax));
        let no_hint = NodeError::NoLeader {
            hint: NoLeaderHint::None,
        };
        assert_eq!(
            no_hint.to_string(),
            "no leader is known right now; retry shortly"
        );
        let unreachable = NodeError::NoLeader {
            hint: NoLeaderHint::Unreachable {
                leader: 2,
                error: "connection refused".into(),
            },
        };
        assert_eq!(
            unreachable.to_string(),
            "no leader is known right now (leader 2 unreachable: connection refused); retry shortly"
        );
    }
}
