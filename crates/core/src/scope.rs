//! Scopes: the calling service, and the unit of degradation tiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ValidationError;
use crate::key::is_name_byte;

/// Maximum length of a scope in bytes.
pub const SCOPE_MAX_BYTES: usize = 64;

/// A scope: lowercase `[a-z0-9._-]`, no `/`, 1 to 64 bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    /// Parses and validates a scope.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > SCOPE_MAX_BYTES {
            return Err(ValidationError::new(
                "scope",
                format!("must be 1 to {SCOPE_MAX_BYTES} bytes, got {}", s.len()),
            ));
        }
        if !s.bytes().all(is_name_byte) {
            return Err(ValidationError::new(
                "scope",
                format!(
                    "must be lowercase [a-z0-9._-] without '/', got `{}`",
                    s.escape_debug()
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// A scope taken from a valid breaker key (already checked).
    pub(crate) fn from_valid(s: &str) -> Self {
        debug_assert!(Self::parse(s).is_ok(), "scope of a valid key must be valid");
        Self(s.to_owned())
    }

    /// The scope as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Ord, Eq and Hash are derived from the single `String` field, so they agree with `str`'s:
// maps keyed by `Scope` can be looked up with the scope part of a key without allocating.
impl std::borrow::Borrow<str> for Scope {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for Scope {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
