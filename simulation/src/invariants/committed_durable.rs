//! Committed entries are never lost or changed, on any node.
//!
//! Every entry at or below a running node's commit index is recorded the first time it is
//! seen. Then, for *every* node (running or crashed), from its disk:
//!
//! - its log at or below its own commit index (and applied index) holds the same entries (a
//!   node may hold a stale, uncommitted entry above them; the leader overwrites it);
//! - a committed entry it once held *durably* (in what survives a crash) it holds still,
//!   unless a snapshot purged it: a follower that drops one on restart is caught, even though
//!   the leader would quietly send it again;
//! - when it crashes, every entry it acknowledged as flushed (the leader's `matched` for it)
//!   survives: a store that acknowledges before its flush completes is caught there;
//! - the leader with the greatest vote holds every entry committed in an earlier term above
//!   its purge point (Raft's leader completeness). An entry is committed in the term of the
//!   leader that commits it, which may be later than the entry's own term (a new leader
//!   commits an old leader's entries with its first entry); the check uses the lowest term of
//!   a node seen holding it committed, a bound on that term from above.

use std::collections::BTreeMap;

use openraft::ServerState;

use super::{DurableLog, LogEntryId, NodeView, StoredLog, Violation};

/// Committed entries seen so far, by index, and what each node held durably.
#[derive(Debug, Default)]
pub struct CommittedDurable {
    committed: BTreeMap<u64, LogEntryId>,
    /// Per committed index: the lowest current term of a node seen holding it committed. The
    /// entry was committed in that term or an earlier one.
    committed_by_term: BTreeMap<u64, u64>,
    /// Per node: the highest committed index it has held durably.
    held: BTreeMap<u64, u64>,
    evaluated: u64,
}

impl CommittedDurable {
    /// Records the committed entries the running nodes' `views` and their `logs` show, and
    /// checks them against the logs.
    pub fn observe(
        &mut self,
        views: &[NodeView],
        logs: &[(u64, StoredLog)],
        at_ms: u64,
        out: &mut Vec<Violation>,
    ) {
        for view in views {
            let Some((_, log)) = logs.iter().find(|(id, _)| *id == view.id) else {
                continue;
            };
            // Bounded by what the node applied too: a follower's commit index can run ahead
            // of its log I/O (it may still be replacing a stale tail it is about to overwrite),
            // while an applied entry was read back from its log.
            for (index, entry) in log.range(..=view.commit_index.min(view.applied_index)) {
                let by_term = self.committed_by_term.entry(*index).or_insert(view.term);
                *by_term = (*by_term).min(view.term);
                match self.committed.get(index) {
                    None => {
                        self.committed.insert(*index, entry.clone());
                    }
                    Some(known) if known != entry => out.push(Violation::CommittedDurable {
                        node: view.id,
                        index: *index,
                        what: format!(
                            "holds {} ({:016x}) where {} ({:016x}) was committed",
                            entry.leader_id, entry.digest, known.leader_id, known.digest
                        ),
                        at_ms,
                    }),
                    Some(_) => {}
                }
            }
        }
        self.leader_completeness(views, logs, at_ms, out);
    }

    /// Checks node `node`'s durable log: every committed entry it once held durably, above its
    /// purge point, it still holds.
    pub fn observe_durable(
        &mut self,
        node: u64,
        durable: &DurableLog,
        at_ms: u64,
        out: &mut Vec<Violation>,
    ) {
        self.evaluated += 1;
        let held = self.held.get(&node).copied().unwrap_or(0);
        let above_purge = (held > durable.purged).then_some(durable.purged + 1..=held);
        for (index, known) in above_purge.map_or_else(Default::default, |r| self.committed.range(r))
        {
            match durable.log.get(index) {
                Some(entry) if entry == known => {}
                Some(entry) => out.push(Violation::CommittedDurable {
                    node,
                    index: *index,
                    what: format!(
                        "durably holds {} where {} was committed",
                        entry.leader_id, known.leader_id
                    ),
                    at_ms,
                }),
                None => {
                    out.push(Violation::CommittedDurable {
                        node,
                        index: *index,
                        what: format!(
                            "lost it (it held it durably; its durable log now ends at {})",
                            durable.log.keys().next_back().copied().unwrap_or(0)
                        ),
                        at_ms,
                    });
                    return;
                }
            }
        }
        let newly_held = durable
            .log
            .iter()
            .rev()
            .find(|(index, entry)| self.committed.get(index) == Some(entry))
            .map_or(0, |(index, _)| *index);
        self.held.insert(node, held.max(newly_held));
    }

    /// Node `node` has just crashed, leaving `durable`; `acknowledged` is the last index the
    /// leader counted as flushed on it. Every entry up to there must have survived.
    pub fn observe_crash(
        &mut self,
        node: u64,
        acknowledged: u64,
        durable: &DurableLog,
        at_ms: u64,
        out: &mut Vec<Violation>,
    ) {
        self.evaluated += 1;
        let last = durable.log.keys().next_back().copied().unwrap_or(0);
        if acknowledged > durable.purged && acknowledged > last {
            out.push(Violation::CommittedDurable {
                node,
                index: acknowledged,
                what: format!(
                    "acknowledged as flushed, lost in a crash (its durable log ends at {last})"
                ),
                at_ms,
            });
        }
    }

    fn leader_completeness(
        &mut self,
        views: &[NodeView],
        logs: &[(u64, StoredLog)],
        at_ms: u64,
        out: &mut Vec<Violation>,
    ) {
        let leader = views
            .iter()
            .filter(|v| v.state == ServerState::Leader)
            .max_by_key(|v| (v.term, v.id));
        let Some(leader) = leader else { return };
        let Some((_, log)) = logs.iter().find(|(id, _)| *id == leader.id) else {
            return;
        };
        let first_kept = log.keys().next().copied().unwrap_or(u64::MAX);
        // A leader of a later term than the one the entry was committed in must hold it; a
        // stale leader of that or an earlier term (still leading on its side of a partition)
        // need not, even when the entry itself is older than its term.
        for (index, known) in self.committed.range(first_kept..).filter(|(index, _)| {
            self.committed_by_term
                .get(index)
                .is_some_and(|by_term| *by_term < leader.term)
        }) {
            let what = match log.get(index) {
                Some(entry) if entry == known => continue,
                Some(entry) => format!(
                    "leader holds {} where {} was committed",
                    entry.leader_id, known.leader_id
                ),
                None => "leader lost it".into(),
            };
            out.push(Violation::CommittedDurable {
                node: leader.id,
                index: *index,
                what,
                at_ms,
            });
        }
    }

    /// The highest committed index seen.
    pub fn committed_max(&self) -> u64 {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }

    /// Durable logs and crashes checked.
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::tests::{entry, node};

    fn committed_log() -> StoredLog {
        (1..=5).map(|i| (i, entry(1, 1, i))).collect()
    }

    fn leader_view() -> NodeView {
        let mut v = node(1, ServerState::Leader, (1, 1, true));
        v.commit_index = 5;
        v.applied_index = 5;
        v.term = 1;
        v
    }

    #[test]
    fn a_node_keeping_its_committed_entries_passes() {
        let mut check = CommittedDurable::default();
        let mut out = Vec::new();
        check.observe(&[leader_view()], &[(1, committed_log())], 10, &mut out);
        let durable = DurableLog {
            log: committed_log(),
            purged: 0,
        };
        check.observe_durable(2, &durable, 10, &mut out);
        // Purged by a snapshot up to 3: the rest is still there.
        let purged = DurableLog {
            log: (4..=5).map(|i| (i, entry(1, 1, i))).collect(),
            purged: 3,
        };
        check.observe_durable(2, &purged, 20, &mut out);
        check.observe_crash(2, 5, &purged, 20, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(check.committed_max(), 5);
        assert_eq!(check.evaluated(), 3);
    }

    /// Seed 9978 of the soak: node 3 won term 2 and was cut off holding entry 8 of its own
    /// term; node 1, leader of term 1 again elected in term 3, committed its own term-1 entry
    /// 8 with its first term-3 entry. With node 1 crashed, node 3 (restarted, still leading
    /// term 2 alone) is the only leader: it need not hold an entry committed in term 3, but a
    /// leader of term 4 must.
    #[test]
    fn leader_completeness_counts_from_the_term_an_entry_was_committed_in() {
        let mut check = CommittedDurable::default();
        let mut out = Vec::new();
        let committed: StoredLog = (1..=9)
            .map(|i| {
                (
                    i,
                    if i <= 8 {
                        entry(1, 1, i)
                    } else {
                        entry(3, 1, i)
                    },
                )
            })
            .collect();
        let mut term_3 = node(1, ServerState::Leader, (3, 1, true));
        (term_3.term, term_3.commit_index, term_3.applied_index) = (3, 9, 9);
        check.observe(&[term_3], &[(1, committed.clone())], 10, &mut out);
        assert!(out.is_empty(), "{out:?}");

        let mut stale: StoredLog = committed
            .range(..=7)
            .map(|(i, e)| (*i, e.clone()))
            .collect();
        stale.insert(8, entry(2, 3, 8));
        let mut term_2 = node(3, ServerState::Leader, (2, 3, true));
        (term_2.term, term_2.commit_index, term_2.applied_index) = (2, 7, 7);
        check.observe(&[term_2.clone()], &[(3, stale.clone())], 20, &mut out);
        assert!(
            out.is_empty(),
            "a stale term-2 leader is not bound: {out:?}"
        );

        let mut term_4 = term_2;
        term_4.term = 4;
        term_4.vote = (4, 3, true);
        check.observe(&[term_4], &[(3, stale)], 30, &mut out);
        assert!(
            matches!(
                &out[..],
                [
                    Violation::CommittedDurable {
                        node: 3,
                        index: 8,
                        ..
                    },
                    ..
                ]
            ),
            "a term-4 leader must hold entry 8: {out:?}"
        );
    }

    #[test]
    fn a_follower_that_drops_a_committed_entry_is_caught() {
        let mut check = CommittedDurable::default();
        let mut out = Vec::new();
        check.observe(&[leader_view()], &[(1, committed_log())], 10, &mut out);
        check.observe_durable(
            2,
            &DurableLog {
                log: committed_log(),
                purged: 0,
            },
            10,
            &mut out,
        );
        let mut shorter = committed_log();
        shorter.remove(&5);
        check.observe_durable(
            2,
            &DurableLog {
                log: shorter,
                purged: 0,
            },
            20,
            &mut out,
        );
        assert!(
            matches!(
                &out[..],
                [Violation::CommittedDurable {
                    node: 2,
                    index: 5,
                    ..
                }]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn an_acknowledged_entry_lost_in_a_crash_is_caught() {
        let mut check = CommittedDurable::default();
        let mut out = Vec::new();
        let mut shorter = committed_log();
        shorter.remove(&5);
        check.observe_crash(
            3,
            5,
            &DurableLog {
                log: shorter,
                purged: 0,
            },
            30,
            &mut out,
        );
        assert!(
            matches!(
                &out[..],
                [Violation::CommittedDurable {
                    node: 3,
                    index: 5,
                    ..
                }]
            ),
            "{out:?}"
        );
    }
}
