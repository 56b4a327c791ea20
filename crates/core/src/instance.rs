//! Instance ids: one reporting SDK process.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ValidationError;

/// Maximum length of an instance id in bytes.
pub const INSTANCE_ID_MAX_BYTES: usize = 128;

/// Identifies one SDK instance (a service replica): 1 to 128 bytes of `[A-Za-z0-9._:/@-]`,
/// so host names, `pod@node` and `host:port` forms all fit.
///
/// Shared, not copied: a report's deltas (one per breaker) and the instance tables of every
/// breaker it touches all hold the same id, so a clone is a reference count.
///
/// An id carries its hash, computed once as it is parsed, so the instance table of every
/// breaker a report touches finds it without hashing its bytes again (see
/// [`InstanceIdHasher`]). The hash is SipHash under a key drawn at random once per process:
/// ids are chosen by clients, and nobody outside the process can choose ids that collide.
/// Hashes therefore differ between processes and are never stored or sent; equal ids have
/// equal hashes within a process, which is all a hash map needs.
#[derive(Clone)]
pub struct InstanceId {
    name: Arc<str>,
    hash: u64,
}

/// The per-process key of instance id hashes.
fn hash_key() -> &'static RandomState {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new)
}

impl PartialEq for InstanceId {
    fn eq(&self, other: &Self) -> bool {
        // Different hashes are different ids; a shared allocation is the same id.
        self.hash == other.hash && (Arc::ptr_eq(&self.name, &other.name) || self.name == other.name)
    }
}

impl Eq for InstanceId {}

impl Hash for InstanceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InstanceId").field(&self.name).finish()
    }
}

/// The hasher of maps keyed by [`InstanceId`]: it takes the hash the id carries as it is.
/// An id's hash is already keyed SipHash, so hashing it again would only cost time.
#[derive(Clone, Copy, Debug, Default)]
pub struct InstanceIdHasher(u64);

impl Hasher for InstanceIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    /// Only [`InstanceId`] keys belong in these maps; anything else is still spread (FNV-1a).
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Byte order, as `str`'s (ids are ASCII), but eight bytes at a time and without a call to
/// `memcmp`: ids are sorted wherever their order shows (a tick's instance list, a snapshot's
/// instance tables, ties between instances to evict).
impl Ord for InstanceId {
    fn cmp(&self, other: &Self) -> Ordering {
        byte_order(self.name.as_bytes(), other.name.as_bytes())
    }
}

impl PartialOrd for InstanceId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Lexicographic order of `a` and `b` (a proper prefix first), as `<[u8]>::cmp`.
#[inline]
fn byte_order(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= common {
        let (x, y) = (word_at(a, i), word_at(b, i));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < common {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// The eight bytes of `s` from `i`, big-endian, so that words compare as their bytes do.
#[inline]
fn word_at(s: &[u8], i: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&s[i..i + 8]);
    u64::from_be_bytes(word)
}

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
        Ok(Self {
            name: Arc::from(s),
            hash: hash_key().hash_one(s.as_bytes()),
        })
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
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
        serializer.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).expect("valid id")
    }

    #[test]
    fn orders_as_strings_do() {
        let ids = [
            "a",
            "ab",
            "pod-0001",
            "pod-00010",
            "pod-0002",
            "pod-0001-a",
            "payments-api-7f9c8d-abcde",
            "payments-api-7f9c8d-abcdf",
            "payments-api-7f9c8d",
            "Z",
            "host:8080",
            "pod@node-1",
        ];
        for a in ids {
            for b in ids {
                assert_eq!(id(a).cmp(&id(b)), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn ids_parsed_apart_are_equal_and_found_under_their_carried_hash() {
        use std::collections::HashMap;
        use std::hash::BuildHasherDefault;
        let mut table: HashMap<InstanceId, usize, BuildHasherDefault<InstanceIdHasher>> =
            HashMap::default();
        let names: Vec<String> = (0..500).map(|i| format!("payments-api-{i:04}")).collect();
        for (n, name) in names.iter().enumerate() {
            table.insert(id(name), n);
        }
        for (n, name) in names.iter().enumerate() {
            // A separate parse: another allocation, the same id.
            let again = id(name);
            assert!(!Arc::ptr_eq(&again.name, &id(name).name));
            assert_eq!(table.get(&again), Some(&n), "{name}");
        }
        assert_eq!(table.get(&id("payments-api-0500")), None);
        assert_ne!(id("payments-api-0001"), id("payments-api-0002"));
    }

    proptest! {
        #[test]
        fn equality_and_hash_follow_the_string(a in "[a-c]{1,10}", b in "[a-c]{1,10}") {
            let (x, y) = (id(&a), id(&b));
            prop_assert_eq!(x == y, a == b);
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            if a == b {
                prop_assert_eq!(x.hash, y.hash);
            }
        }

        #[test]
        fn byte_order_matches_slice_order(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            b in proptest::collection::vec(any::<u8>(), 0..40),
            shared in proptest::collection::vec(any::<u8>(), 0..24),
        ) {
            let (a, b) = ([&shared[..], &a[..]].concat(), [&shared[..], &b[..]].concat());
            prop_assert_eq!(byte_order(&a, &b), a.cmp(&b));
            prop_assert_eq!(byte_order(&a, &a), Ordering::Equal);
        }
    }
}
