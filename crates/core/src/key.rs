//! Breaker keys: `scope/name`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Scope, ValidationError};

/// Maximum length of a breaker key in bytes.
pub const BREAKER_KEY_MAX_BYTES: usize = 128;

/// Identifies one breaker: `scope/name`, lowercase `[a-z0-9._-]`, exactly one `/`, both parts
/// non-empty, at most 128 bytes. Stored as one string so `as_str` and ordering are free.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BreakerKey {
    full: String,
    slash: usize,
}

/// Whether `b` may appear in a scope or a breaker name: `[a-z0-9._-]`.
pub(crate) fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

/// The rule of [`is_name_byte`] as a table, one load per byte: it runs for the key of every
/// delta of every report.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_lowercase()
            || byte.is_ascii_digit()
            || matches!(byte, b'.' | b'_' | b'-');
        b += 1;
    }
    table
};

impl BreakerKey {
    /// Parses and validates `scope/name`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let slash = Self::slash_of(s)?;
        Ok(Self {
            full: s.to_owned(),
            slash,
        })
    }

    /// [`Self::parse`], keeping the allocation of `s` (a report's keys arrive as owned strings,
    /// one per delta).
    pub fn parse_owned(s: String) -> Result<Self, ValidationError> {
        let slash = Self::slash_of(&s)?;
        Ok(Self { full: s, slash })
    }

    /// Validates `scope/name` and returns the position of its `/`.
    fn slash_of(s: &str) -> Result<usize, ValidationError> {
        let err = |rule: String| ValidationError::new("key", rule);
        if s.is_empty() || s.len() > BREAKER_KEY_MAX_BYTES {
            return Err(err(format!(
                "must be 1 to {BREAKER_KEY_MAX_BYTES} bytes, got {}",
                s.len()
            )));
        }
        let mut slash = None;
        for (i, b) in s.bytes().enumerate() {
            if b == b'/' {
                if slash.is_some() {
                    return Err(err(format!("must contain exactly one '/', got `{s}`")));
                }
                slash = Some(i);
            } else if !is_name_byte(b) {
                return Err(err(format!(
                    "must be `scope/name` of lowercase [a-z0-9._-], got `{}`",
                    s.escape_debug()
                )));
            }
        }
        match slash {
            Some(i) if i > 0 && i + 1 < s.len() => Ok(i),
            Some(_) => Err(err(format!(
                "scope and name must both be non-empty, got `{s}`"
            ))),
            None => Err(err(format!("must be `scope/name` with one '/', got `{s}`"))),
        }
    }

    /// The whole key, `scope/name`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The scope part (before the `/`).
    pub fn scope(&self) -> &str {
        &self.full[..self.slash]
    }

    /// The name part (after the `/`).
    pub fn name(&self) -> &str {
        &self.full[self.slash + 1..]
    }

    /// The scope part as a [`Scope`].
    pub fn scope_id(&self) -> Scope {
        Scope::from_valid(self.scope())
    }

    /// `scope/` with an empty name: not a valid key, but it sorts just before every key of
    /// `scope` (keys sharing the `scope/` prefix are contiguous), so it bounds range scans.
    pub(crate) fn scope_lower_bound(scope: &Scope) -> Self {
        Self {
            full: format!("{scope}/"),
            slash: scope.as_str().len(),
        }
    }
}

impl fmt::Display for BreakerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl FromStr for BreakerKey {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for BreakerKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for BreakerKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_keys() {
        let k = BreakerKey::parse("payments/ml-fraud").unwrap();
        assert_eq!(
            (k.scope(), k.name(), k.as_str()),
            ("payments", "ml-fraud", "payments/ml-fraud")
        );
        assert_eq!(k.scope_id().as_str(), "payments");
        let owned = BreakerKey::parse_owned("payments/ml-fraud".to_owned()).unwrap();
        assert_eq!((owned.scope(), owned.name()), ("payments", "ml-fraud"));
        assert_eq!(owned, k);
        assert_eq!(k.to_string(), "payments/ml-fraud");
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"payments/ml-fraud\"");
    }

    #[test]
    fn rejects_invalid_keys() {
        let long = format!("a/{}", "b".repeat(127));
        for bad in [
            "",
            "payments",
            "/x",
            "x/",
            "a/b/c",
            "Payments/x",
            "a b/c",
            long.as_str(),
        ] {
            let e = BreakerKey::parse(bad).unwrap_err();
            assert_eq!(e.field, "key", "{bad:?}");
            let owned = BreakerKey::parse_owned(bad.to_owned()).unwrap_err();
            assert_eq!((owned.field, owned.rule), (e.field, e.rule), "{bad:?}");
        }
        assert!(
            serde_json::from_str::<BreakerKey>("\"A/b\"").is_err(),
            "deserialize validates"
        );
    }
}
