//! The breaker keys a decoding thread has read: [`KeyCache`].
//!
//! A node reads the same few keys in every report, and an SDK sends its deltas in key order, so
//! most reports repeat the keys of the previous one in the same order. The cache makes a known
//! key cost a byte comparison (no UTF-8 check, no validation, no allocation), and the deltas that
//! carry one key share one copy of it (a clone is a reference count).

use std::collections::HashMap;

use switchyard_core::{BreakerKey, ValidationError};

use super::at;

/// How many keys a thread keeps by their text; full, it starts over.
pub(crate) const KEY_CACHE_MAX: usize = 4_096;

/// How far past the previous match a delta's key is looked for in the last report's keys: a
/// report may skip breakers without traffic.
const LOOKAHEAD: usize = 4;

/// The keys one thread has read.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    /// Every valid key read, by its text. Hashed with the standard keyed hasher: the keys are
    /// chosen by clients.
    by_text: HashMap<Box<str>, BreakerKey>,
    /// The keys of the last report decoded whole, in its order. Distinct: that report passed
    /// the duplicate check.
    last_report: Vec<BreakerKey>,
    /// How far into `last_report` the report being read has matched.
    cursor: usize,
    /// Whether every key of the report being read was found in `last_report`, each after the
    /// one before: the keys are then a subsequence of distinct keys, distinct themselves.
    in_order: bool,
}

/// A delta's key as read.
#[derive(Debug)]
pub(crate) enum KeyRead<'a> {
    /// A key read before (so valid).
    Known(BreakerKey),
    /// Text not seen before, not yet validated.
    Text(&'a str),
}

impl KeyCache {
    /// A new report starts.
    pub fn start_report(&mut self) {
        self.cursor = 0;
        self.in_order = true;
    }

    /// The key of the next delta of the report, read as `bytes`; `None` when they are not UTF-8.
    pub fn read<'a>(&mut self, bytes: &'a [u8]) -> Option<KeyRead<'a>> {
        let ahead = self.last_report.iter().enumerate().skip(self.cursor);
        for (j, key) in ahead.take(LOOKAHEAD) {
            // Equal to a valid key: valid UTF-8 too.
            if key.as_str().as_bytes() == bytes {
                self.cursor = j + 1;
                return Some(KeyRead::Known(key.clone()));
            }
        }
        self.in_order = false;
        let text = std::str::from_utf8(bytes).ok()?;
        Some(match self.by_text.get(text) {
            Some(key) => KeyRead::Known(key.clone()),
            None => KeyRead::Text(text),
        })
    }

    /// The key `text` validated (the error names `key`), kept for the next reads.
    pub fn parse(&mut self, text: &str) -> Result<BreakerKey, ValidationError> {
        let key = BreakerKey::parse(text).map_err(|e| at(e, "key"))?;
        if self.by_text.len() >= KEY_CACHE_MAX {
            self.by_text.clear();
        }
        self.by_text.insert(text.into(), key.clone());
        Ok(key)
    }

    /// Whether the keys of the report read so far are known to be distinct.
    pub fn known_distinct(&self) -> bool {
        self.in_order
    }

    /// The report read so far was valid, with `keys` in its order: the next is compared with it.
    pub fn finish_report<'k>(&mut self, keys: impl ExactSizeIterator<Item = &'k BreakerKey>) {
        if self.in_order {
            return;
        }
        self.last_report.clear();
        if keys.len() <= KEY_CACHE_MAX {
            self.last_report.extend(keys.cloned());
        }
    }

    /// The number of keys kept by their text.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_text.len()
    }
}
