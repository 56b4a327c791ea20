//! Breaker keys: `scope/name`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Scope, ValidationError};

/// Maximum length of a breaker key in bytes.
pub const BREAKER_KEY_MAX_BYTES: usize = 128;

/// Identifies one breaker: `scope/name`, lowercase `[a-z0-9._-]`, exactly one `/`, both parts
/// non-empty, at most 128 bytes. Stored as one shared string so `as_str` and ordering are
/// free, and a clone is a reference count: a node reads the same few keys in every report, and
/// shares one copy of each among the deltas that carry it (see `switchyard_proto`'s
/// `ReportWire`). Compared, ordered and hashed by the string alone.
#[derive(Clone, Debug)]
pub struct BreakerKey {
    full: Arc<str>,
    slash: usize,
}

impl PartialEq for BreakerKey {
    fn eq(&self, other: &Self) -> bool {
        // One copy shared: equal without reading the bytes.
        Arc::ptr_eq(&self.full, &other.full) || self.full == other.full
    }
}

impl Eq for BreakerKey {}

impl Ord for BreakerKey {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.full, &other.full) {
            return Ordering::Equal;
        }
        self.full.cmp(&other.full)
    }
}

impl PartialOrd for BreakerKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for BreakerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.full.hash(state);
    }
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
            full: Arc::from(s),
            slash,
        })
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
            full: Arc::from(format!("{scope}/")),
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
        assert_eq!(k.to_string(), "payments/ml-fraud");
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"payments/ml-fraud\"");
    }

    #[test]
    fn keys_compare_by_their_text_whether_or_not_they_share_a_copy() {
        use std::collections::hash_map::RandomState;
        use std::hash::BuildHasher;
        let a = BreakerKey::parse("pay/a").unwrap();
        let shared = a.clone();
        let copy = BreakerKey::parse("pay/a").unwrap();
        let b = BreakerKey::parse("pay/b").unwrap();
        assert!(Arc::ptr_eq(&a.full, &shared.full) && !Arc::ptr_eq(&a.full, &copy.full));
        assert_eq!((a == shared, a == copy, a == b), (true, true, false));
        assert_eq!(a.cmp(&shared), Ordering::Equal);
        assert_eq!(a.cmp(&copy), Ordering::Equal);
        assert_eq!(
            (a.cmp(&b), b.cmp(&copy)),
            (Ordering::Less, Ordering::Greater)
        );
        let hasher = RandomState::new();
        assert_eq!(hasher.hash_one(&a), hasher.hash_one(&copy));
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
        }
        assert!(
            serde_json::from_str::<BreakerKey>("\"A/b\"").is_err(),
            "deserialize validates"
        );
    }
}
