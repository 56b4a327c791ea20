//! Log matching: if two logs hold an entry with the same id (leader id and index), they are
//! identical in every entry up to that index.
//!
//! Read from the disks (every node's, running or crashed) at each check. For each pair, the
//! highest common index with equal ids is found; every common index below it must hold the
//! same bytes. Entries purged behind a snapshot are simply absent and not compared.

use super::{StoredLog, Violation};

/// Stateless; see the module docs.
#[derive(Debug, Default)]
pub struct LogMatching;

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
}
