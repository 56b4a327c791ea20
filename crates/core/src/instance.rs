//! Instance ids: one reporting SDK process.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ValidationError;

/// Maximum length of an instance id in bytes.
pub const INSTANCE_ID_MAX_BYTES: usize = 128;

/// Identifies one SDK instance (a service replica): 1 to 128 bytes of `[A-Za-z0-9._:/@-]`,
/// so host names, `pod@node` and `host:port` forms all fit.
///
/// Shared, not copied: a report's deltas (one per breaker) and the instance tables of every
/// breaker it touches all hold the same id, so a clone is a reference count.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    /// Parses and validates an instance id.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > INSTANCE_ID_MAX_BYTES {
            return Err(ValidationError::new(
                "instance",
                format!(
                    "must be 1 to {INSTANCE_ID_MAX_BYTES} bytes, got {}",
                    s.len()
                ),
            ));
        }
        let ok = s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'@' | b'-')
        });
        if !ok {
            return Err(ValidationError::new(
                "instance",
                format!("must be [A-Za-z0-9._:/@-], got `{}`", s.escape_debug()),
            ));
        }
        Ok(Self(Arc::from(s)))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for InstanceId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
