//! Applied state: nodes that applied up to the same index hold the same state.
//!
//! At each check every running node's state machine is digested
//! (`CoordinatorState::digest`) with its applied index; the first digest seen at an index
//! is the reference for every later one, across nodes and restarts.

use std::collections::BTreeMap;

use super::Violation;

/// Digests seen, by applied index: `(node, digest)`.
#[derive(Debug, Default)]
pub struct StateDigest {
    seen: BTreeMap<u64, (u64, u64)>,
}

impl StateDigest {
    /// Checks `(node, applied_index, digest)` readings.
    pub fn observe(&mut self, readings: &[(u64, u64, u64)], at_ms: u64, out: &mut Vec<Violation>) {
        for &(node, index, digest) in readings {
            if index == 0 {
                continue;
            }
            let first = *self.seen.entry(index).or_insert((node, digest));
            if first.1 != digest {
                out.push(Violation::StateDigest {
                    index,
                    first,
                    second: (node, digest),
                    at_ms,
                });
            }
        }
    }

    /// Distinct applied indexes compared.
    pub fn indexes_seen(&self) -> usize {
        self.seen.len()
    }
}
