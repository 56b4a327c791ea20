//! Applied state: nodes that applied up to the same index hold the same state.
//!
//! At each check every running node's state machine is digested
//! (`CoordinatorState::digest`) with its applied index; the first digest seen at an index
//! is the reference for every later one, across nodes and restarts. Only a reading from
//! *another* node than the reference's counts as a comparison.

use std::collections::BTreeMap;

use super::Violation;

/// Digests seen, by applied index: `(node, digest)`.
#[derive(Debug, Default)]
pub struct StateDigest {
    seen: BTreeMap<u64, (u64, u64)>,
    compared: u64,
}

impl StateDigest {
    /// Checks `(node, applied_index, digest)` readings.
    pub fn observe(&mut self, readings: &[(u64, u64, u64)], at_ms: u64, out: &mut Vec<Violation>) {
        for &(node, index, digest) in readings {
            if index == 0 {
                continue;
            }
            let first = *self.seen.entry(index).or_insert((node, digest));
            if first.0 != node {
                self.compared += 1;
            }
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

    /// Distinct applied indexes seen.
    pub fn indexes_seen(&self) -> usize {
        self.seen.len()
    }

    /// Cross-node comparisons made.
    pub fn evaluated(&self) -> u64 {
        self.compared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_states_at_equal_indexes_pass_and_count_only_cross_node_comparisons() {
        let mut check = StateDigest::default();
        let mut out = Vec::new();
        check.observe(
            &[(1, 7, 0xaa), (1, 7, 0xaa), (2, 7, 0xaa), (3, 8, 0xbb)],
            10,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(check.evaluated(), 1);
        assert_eq!(check.indexes_seen(), 2);
    }

    #[test]
    fn different_states_at_one_index_are_caught() {
        let mut check = StateDigest::default();
        let mut out = Vec::new();
        check.observe(&[(1, 7, 0xaa), (2, 7, 0xab)], 10, &mut out);
        assert_eq!(
            out,
            vec![Violation::StateDigest {
                index: 7,
                first: (1, 0xaa),
                second: (2, 0xab),
                at_ms: 10
            }]
        );
    }
}
