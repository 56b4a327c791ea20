//! The on-disk record format: one version byte, then the bincode encoding of the value.
//!
//! A record that cannot be decoded is reported as [`CodecError`] naming what was being read,
//! never a panic: a torn or corrupt record must not take the rest of the store down with it.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The current record format version.
pub const FORMAT_VERSION: u8 = 1;

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
    #[error("{what}: unknown record format version {version} (this build reads {FORMAT_VERSION})")]
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
    bincode::serialize_into(&mut out, value).expect("bincode encoding into a Vec is infallible");
    out
}

/// Decodes a versioned record.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty { what })?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version { what, version });
    }
    bincode::deserialize(body).map_err(|source| CodecError::Corrupt { what, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_corruption() {
        let bytes = encode(&(7u64, "x".to_string()));
        let back: (u64, String) = decode("pair", &bytes).unwrap();
        assert_eq!(back, (7, "x".to_string()));

        let err = decode::<(u64, String)>("pair", &[]).unwrap_err();
        assert_eq!(err.to_string(), "pair: empty record");

        let mut wrong = bytes.clone();
        wrong[0] = 9;
        let err = decode::<(u64, String)>("pair", &wrong).unwrap_err();
        assert!(
            err.to_string().contains("unknown record format version 9"),
            "{err}"
        );

        let truncated = &bytes[..bytes.len() - 1];
        let err = decode::<(u64, String)>("pair", truncated).unwrap_err();
        assert!(err.to_string().starts_with("pair: corrupt record"), "{err}");
    }
}
