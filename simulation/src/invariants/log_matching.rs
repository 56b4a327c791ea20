//! Log matching: if two logs hold an entry with the same id (leader id and index), they are
//! identical in every entry up to that index.
//!
//! Read from the disks (every node's, running or crashed) at each check. For each pair, the
//! highest common index with equal ids is found; every common index below it must hold the
//! same bytes. Entries purged behind a snapshot are simply absent and not compared.

use super::{StoredLog, Violation};

/// Counts pairs compared; see the module docs.
#[derive(Debug, Default)]
pub struct LogMatching {
    evaluated: u64,
}

impl LogMatching {
    /// Checks every pair of `logs` (`(node, log)`).
    pub fn observe(&mut self, logs: &[(u64, StoredLog)], at_ms: u64, out: &mut Vec<Violation>) {
        for (i, (a, log_a)) in logs.iter().enumerate() {
            for (b, log_b) in &logs[i + 1..] {
                let mut matched: Option<u64> = None;
                for (index, entry_a) in log_a.iter().rev() {
                    let Some(entry_b) = log_b.get(index) else {
                        continue;
                    };
                    match matched {
                        None if entry_a.leader_id == entry_b.leader_id => {
                            matched = Some(*index);
                            self.evaluated += 1;
                            if entry_a.digest != entry_b.digest {
                                out.push(Violation::LogMatching {
                                    nodes: (*a, *b),
                                    matching_index: *index,
                                    differing_index: *index,
                                    at_ms,
                                });
                                return;
                            }
                        }
                        None => {}
                        Some(matching_index) if entry_a != entry_b => {
                            out.push(Violation::LogMatching {
                                nodes: (*a, *b),
                                matching_index,
                                differing_index: *index,
                                at_ms,
                            });
                            return;
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }

    /// Pairs of logs that shared an entry id, and so were compared.
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::tests::entry;

    #[test]
    fn logs_that_agree_below_a_shared_entry_pass() {
        let a: StoredLog = (1..=4).map(|i| (i, entry(1, 1, i))).collect();
        let mut b = a.clone();
        b.insert(5, entry(2, 2, 5)); // a longer log is fine
        let mut check = LogMatching::default();
        let mut out = Vec::new();
        check.observe(&[(1, a), (2, b)], 10, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(check.evaluated(), 1);
    }

    #[test]
    fn a_stale_entry_below_a_shared_one_is_caught() {
        let a: StoredLog = (1..=4).map(|i| (i, entry(1, 1, i))).collect();
        let mut b = a.clone();
        b.insert(2, entry(1, 3, 99)); // differs below the shared entry at 4
        let mut check = LogMatching::default();
        let mut out = Vec::new();
        check.observe(&[(1, a), (2, b)], 10, &mut out);
        assert!(
            matches!(
                &out[..],
                [Violation::LogMatching {
                    matching_index: 4,
                    differing_index: 2,
                    ..
                }]
            ),
            "{out:?}"
        );
    }
}
