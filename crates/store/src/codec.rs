//! The on-disk and on-the-wire record format: one version byte, then the bincode encoding of
//! the value.
//!
//! - Version 5: commands ([`switchyard_core::Envelope`]) and audit events gained the request
//!   id and trace id of the request that caused them. Records of versions 2 to 4 decode with
//!   none: [`decode`] tells those two types which layout to read
//!   (`switchyard_core::stored_layout`).
//! - Version 4: the layout of version 3, except that a snapshot's state no longer stores its
//!   derived indexes (they are rebuilt on load: see `switchyard-core`'s
//!   `StateWithStoredIndexes`). Only the snapshot state's layout changed, so
//!   [`decode_with_legacy`] reads a state of versions 2 and 3 in their layout and converts it;
//!   every other record decodes the same in versions 2 to 4 (and 5, but for request ids).
//! - Version 3: the layout of version 2, where policies, window specs and breaker windows
//!   gained the freshest-span rule's fields as new enum variants (see `switchyard-core`'s
//!   `policy_serde` and `window_serde`). Version-2 records decode unchanged into today's types
//!   (their old variants are still read), so snapshots and logs from before the change load;
//!   a build that only knows version 2 refuses version-3 records with a clear error instead of
//!   misreading them.
//! - Version 2: bincode with variable-length integers. A fleet `Tick` entry is mostly small
//!   counters and short strings; fixed 8-byte integers and length prefixes made it about twice
//!   the size, and every byte of it is written, fsynced and sent to each follower.
//! - Version 1 (fixed-width integers) is refused with an error that says so: the log and
//!   snapshot layouts changed with version 2 (fleet retry figures), so a version-1 record
//!   would not decode into today's types anyway, and a half-readable data directory is worse
//!   than a clear refusal.
//!
//! A record that cannot be decoded is reported as [`CodecError`] naming what was being read,
//! never a panic: a torn or corrupt record must not take the rest of the store down with it.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

use bincode::Options;
use switchyard_core::stored_layout::{Layout, decoding};

/// The record format version this build writes.
pub const FORMAT_VERSION: u8 = 5;

/// The first record format version whose snapshot state leaves out the derived indexes.
pub const STATE_WITHOUT_INDEXES_SINCE: u8 = 4;

/// The first record format version whose commands and audit events carry request ids.
pub const REQUEST_IDS_SINCE: u8 = 5;

/// The oldest record format version this build reads.
pub const FORMAT_VERSION_MIN: u8 = 2;

/// The bincode options of versions 2 to 5: variable-length integers, no trailing bytes.
fn v2() -> impl Options {
    bincode::DefaultOptions::new()
}

/// A record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The record is empty.
    #[error("{what}: empty record")]
    Empty {
        /// What was being decoded.
        what: &'static str,
    },
    /// The record was written by an unknown format version.
    #[error(
        "{what}: record format version {version}, this build reads only versions {FORMAT_VERSION_MIN} to {FORMAT_VERSION} (a data directory from an earlier build must be recreated: docs/operations.md)"
    )]
    Version {
        /// What was being decoded.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// The body does not decode.
    #[error("{what}: corrupt record: {source}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        source: bincode::Error,
    },
}

impl From<CodecError> for io::Error {
    fn from(e: CodecError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Encodes a value as a versioned record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serializing our own in-memory types into a Vec cannot fail: every field is serde-derived
    // with no custom error paths and the writer is infallible.
    v2().serialize_into(&mut out, value)
        .expect("bincode encoding into a Vec is infallible");
    out
}

/// The size of `value`'s record in bytes, without encoding it.
pub fn encoded_len<T: Serialize>(value: &T) -> u64 {
    // As in `encode`: our serde-derived types always serialize.
    1 + v2()
        .serialized_size(value)
        .expect("bincode sizing of plain data is infallible")
}

/// Decodes a versioned record.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty { what })?;
    let decoded = match version {
        FORMAT_VERSION_MIN..=FORMAT_VERSION => {
            let layout = if version < REQUEST_IDS_SINCE {
                Layout::BeforeRequestIds
            } else {
                Layout::Current
            };
            decoding(layout, || v2().deserialize(body))
        }
        _ => return Err(CodecError::Version { what, version }),
    };
    decoded.map_err(|source| CodecError::Corrupt { what, source })
}

/// Decodes a versioned record whose layout changed with version `layout_since`: a record of
/// an earlier version is read in its own layout, `Old`, and converted.
pub fn decode_with_legacy<T, Old>(
    what: &'static str,
    bytes: &[u8],
    layout_since: u8,
) -> Result<T, CodecError>
where
    T: DeserializeOwned,
    Old: DeserializeOwned + Into<T>,
{
    match bytes.first() {
        Some(&version) if version < layout_since => decode::<Old>(what, bytes).map(Into::into),
        _ => decode(what, bytes),
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::{CoordinatorState, StateWithStoredIndexes};

    use super::*;

    #[test]
    fn round_trips_and_rejects_corruption() {
        let bytes = encode(&(7u64, "x".to_string()));
        assert_eq!(encoded_len(&(7u64, "x".to_string())), bytes.len() as u64);
        let back: (u64, String) = decode("pair", &bytes).unwrap();
        assert_eq!(back, (7, "x".to_string()));

        let err = decode::<(u64, String)>("pair", &[]).unwrap_err();
        assert_eq!(err.to_string(), "pair: empty record");

        let mut wrong = bytes.clone();
        wrong[0] = 9;
        let err = decode::<(u64, String)>("pair", &wrong).unwrap_err();
        assert!(err.to_string().contains("record format version 9"), "{err}");

        let truncated = &bytes[..bytes.len() - 1];
        let err = decode::<(u64, String)>("pair", truncated).unwrap_err();
        assert!(err.to_string().starts_with("pair: corrupt record"), "{err}");

        let mut trailing = bytes.clone();
        trailing.push(0);
        let err = decode::<(u64, String)>("pair", &trailing).unwrap_err();
        assert!(err.to_string().starts_with("pair: corrupt record"), "{err}");
    }

    #[test]
    fn writes_compact_records_and_refuses_version_1_clearly() {
        let value = (7u64, 300u32, "breaker".to_string(), vec![1u64, 2, 3]);
        let current = encode(&value);
        assert_eq!(current[0], FORMAT_VERSION);
        let back: (u64, u32, String, Vec<u64>) = decode("v4", &current).unwrap();
        assert_eq!(back, value);
        let mut v2 = current.clone();
        v2[0] = 2;
        let back: (u64, u32, String, Vec<u64>) = decode("v2", &v2).unwrap();
        assert_eq!(back, value);

        let mut v1 = vec![1u8];
        bincode::serialize_into(&mut v1, &value).unwrap();
        // Small counters and short strings: variable-length integers at least halve them.
        assert!(
            current.len() * 2 <= v1.len(),
            "v2 {} bytes, v1 {} bytes",
            current.len(),
            v1.len()
        );
        let err = decode::<(u64, u32, String, Vec<u64>)>("log entry", &v1).unwrap_err();
        assert!(
            err.to_string().contains(
                "log entry: record format version 1, this build reads only versions 2 to 5"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_state_written_by_version_2_still_loads() {
        // Written by the build before the freshest-span rule (see switchyard-core's
        // tests/state/compat.rs, which checks its content).
        let bytes = include_bytes!("../../core/tests/state/fixtures/state_v2.bin");
        assert_eq!(bytes[0], 2);
        let state: CoordinatorState = decode_state(bytes).unwrap();
        assert_eq!(state.breaker_count(), 4);
        // Its audit events predate request ids: they load with none.
        let events = state.audit().query(&switchyard_core::AuditQuery::default());
        assert!(!events.is_empty());
        assert!(
            events
                .iter()
                .all(|e| e.request_id.is_none() && e.trace_id.is_none())
        );
        let again = encode(&state);
        assert_eq!(again[0], FORMAT_VERSION);
        let back: CoordinatorState = decode_state(&again).unwrap();
        assert_eq!(back, state);
    }

    fn decode_state(bytes: &[u8]) -> Result<CoordinatorState, CodecError> {
        decode_with_legacy::<_, StateWithStoredIndexes>(
            "snapshot state",
            bytes,
            STATE_WITHOUT_INDEXES_SINCE,
        )
    }

    #[test]
    fn a_state_written_by_version_3_loads_with_its_indexes_rebuilt() {
        // Written by the build before the indexes were left out (see switchyard-core's
        // tests/state/compat_v3.rs, which compares it with the state it was taken from).
        let bytes = include_bytes!("../../core/tests/state/fixtures/state_v3.bin");
        assert_eq!(bytes[0], 3);
        let state = decode_state(bytes).unwrap();
        assert!(
            state.next_deadline_ms().is_some(),
            "the deadline index is rebuilt"
        );
        let again = encode(&state);
        assert_eq!(again[0], FORMAT_VERSION);
        assert!(
            again.len() < bytes.len(),
            "the indexes are no longer stored"
        );
        assert_eq!(decode_state(&again).unwrap(), state);
        // A version-3 state read as today's layout does not decode: the version picks the
        // layout.
        assert!(decode::<CoordinatorState>("snapshot state", bytes).is_err());
    }
}
