//! Why a command changed nothing (apart from the state's clock and log index).

use serde::{Deserialize, Serialize};

use crate::{BreakerKey, ValidationError};

/// A command that was rejected by [`crate::CoordinatorState::apply`]. The state is unchanged
/// except that its clock advanced and its last applied index moved to the entry's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CommandError {
    /// The command broke a validation rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The command names a breaker the cluster does not know.
    #[error("unknown breaker `{0}`")]
    UnknownBreaker(BreakerKey),
    /// A configured limit is reached.
    #[error("limit `{limit}` reached (max {max})")]
    ResourceExhausted {
        /// The limit's name, e.g. `max_breakers`.
        limit: String,
        /// Its configured maximum.
        max: u64,
    },
    /// The thing to change or delete does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A probe permit that is unknown, already returned or expired.
    #[error("probe permit {permit_id} is unknown, returned or expired")]
    StaleProbe {
        /// The permit id the caller presented.
        permit_id: u64,
    },
}
