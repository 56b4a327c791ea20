//! [`StoreError`]: why a node's store could not be opened.
//!
//! openraft's storage traits speak `std::io::Error`, so reads and writes while Raft runs stay
//! `io::Error` (a decoding failure travels inside one as a [`CodecError`]). Opening the store
//! is ours: it says which of three things went wrong, because each asks for a different fix.

use std::io;
use std::path::PathBuf;

use crate::codec::CodecError;

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory cannot be used: missing permissions, a full disk, or another process
    /// holding it. Fix the directory (or `--data-dir`).
    #[error("cannot use the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A stored record does not decode (written by another format version, or corrupt). The
    /// data directory must be restored or recreated.
    #[error("the stored state cannot be read: {0}")]
    Decode(CodecError),
    /// Reading the stored state failed.
    #[error("cannot read the stored state: {0}")]
    Io(io::Error),
}

impl From<io::Error> for StoreError {
    /// Sorts an error from reading the store: a decoding failure carried in an `io::Error`
    /// becomes [`StoreError::Decode`].
    fn from(e: io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<CodecError>()) {
            let inner = e.into_inner().expect("checked above");
            match inner.downcast::<CodecError>() {
                Ok(codec) => StoreError::Decode(*codec),
                Err(other) => StoreError::Io(io::Error::other(other)),
            }
        } else {
            StoreError::Io(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoding_failure_inside_an_io_error_is_told_apart() {
        let codec = CodecError::Empty { what: "vote" };
        let sorted = StoreError::from(io::Error::from(codec));
        assert!(
            matches!(sorted, StoreError::Decode(CodecError::Empty { .. })),
            "{sorted:?}"
        );
        let sorted = StoreError::from(io::Error::other("disk on fire"));
        assert!(matches!(sorted, StoreError::Io(_)), "{sorted:?}");
    }
}
