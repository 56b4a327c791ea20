//! What a policy applies to: one breaker, or every breaker of a scope by default.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{BreakerKey, Scope};

/// The subject of a policy. A key policy beats its scope's default, which beats
/// [`crate::Policy::default`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PolicyTarget {
    /// One breaker.
    Key(BreakerKey),
    /// The default for every breaker of a scope without its own policy.
    Scope(Scope),
}

impl fmt::Display for PolicyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyTarget::Key(k) => write!(f, "key {k}"),
            PolicyTarget::Scope(s) => write!(f, "scope {s}"),
        }
    }
}

impl PolicyTarget {
    /// The subject string used in the audit log (`scope/name` or `scope`).
    pub fn subject(&self) -> &str {
        match self {
            PolicyTarget::Key(k) => k.as_str(),
            PolicyTarget::Scope(s) => s.as_str(),
        }
    }
}
