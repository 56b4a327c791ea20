//! Error types of the SDK: [`Error`] for setting up a client, [`CallError`] for guarded calls.

use std::sync::Arc;

use crate::Rejected;

/// Setting up or using a [`crate::Client`] went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A breaker key, scope or instance id broke a validation rule.
    #[error(transparent)]
    Invalid(#[from] switchyard_core::ValidationError),
    /// An endpoint could not be parsed as a URI.
    #[error("invalid endpoint `{endpoint}`: {reason}; expected `host:port` or `http://host:port`")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client was built with endpoints but no instance id.
    #[error("missing instance id: call ClientBuilder::instance_id (e.g. the pod or host name)")]
    MissingInstanceId,
    /// `build()` was called outside a tokio runtime; the agent needs one to run on.
    #[error("no tokio runtime: build the client inside a runtime or use ClientBuilder::build_on")]
    NoRuntime,
    /// More breakers than `breakers_max` were requested.
    #[error("too many breakers: the limit is {limit} (ClientBuilder::breakers_max)")]
    TooManyBreakers {
        /// The configured limit.
        limit: usize,
    },
    /// An option is out of its range.
    #[error("invalid option `{option}`: {rule}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What to fix.
        rule: String,
    },
}

/// A guarded call did not produce a value.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    /// The breaker or the bulkhead did not admit the call; it was not attempted.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// The call took longer than the guard's timeout (counted as a failure).
    #[error("call to `{key}` timed out after {timeout_ms} ms")]
    Timeout {
        /// The breaker key.
        key: Arc<str>,
        /// The timeout, ms.
        timeout_ms: u64,
    },
    /// The call returned an error (after any retries).
    #[error("dependency call failed: {0}")]
    Failed(E),
}

impl<E> CallError<E> {
    /// True when the call was not attempted because it was rejected.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Rejected(_))
    }

    /// The dependency's own error, if the call got that far.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Failed(e) => Some(e),
            _ => None,
        }
    }
}
