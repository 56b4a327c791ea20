//! Committed entries are never lost or changed.
//!
//! Every entry at or below a running node's commit index is recorded the first time it is
//! seen; from then on, any node's log at or below *its own* commit index must hold the same
//! entry there (a node may hold a stale, uncommitted entry above its commit index; that is
//! allowed and is overwritten by the leader). And the leader with the greatest vote must
//! hold every committed entry above its purge point: a leader missing one would replicate
//! a history without it (Raft's leader completeness).

use std::collections::BTreeMap;

use openraft::ServerState;

use super::{LogEntryId, NodeView, StoredLog, Violation};

/// Committed entries seen so far, by index.
#[derive(Debug, Default)]
pub struct CommittedDurable {
    committed: BTreeMap<u64, LogEntryId>,
}

impl CommittedDurable {
    /// Checks the running nodes' `views` against their stored `logs`.
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
            for (index, entry) in log.range(..=view.commit_index) {
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
        // Leader completeness: the leader with the greatest term holds every committed entry
        // of earlier terms.
        let leader = views
            .iter()
            .filter(|v| v.state == ServerState::Leader)
            .max_by_key(|v| (v.term, v.id));
        if let Some(leader) = leader
            && let Some((_, log)) = logs.iter().find(|(id, _)| *id == leader.id)
        {
            let first_kept = log.keys().next().copied().unwrap_or(u64::MAX);
            // A leader of a later term than the entry's must hold it; a stale leader of the
            // same or an earlier term (still leading on its side of a partition) need not.
            for (index, known) in self
                .committed
                .range(first_kept..)
                .filter(|(_, known)| known.term() < leader.term)
            {
                match log.get(index) {
                    Some(entry) if entry == known => {}
                    Some(entry) => out.push(Violation::CommittedDurable {
                        node: leader.id,
                        index: *index,
                        what: format!(
                            "leader holds {} where {} was committed",
                            entry.leader_id, known.leader_id
                        ),
                        at_ms,
                    }),
                    None => out.push(Violation::CommittedDurable {
                        node: leader.id,
                        index: *index,
                        what: "leader lost it".into(),
                        at_ms,
                    }),
                }
            }
        }
    }

    /// The highest committed index seen.
    pub fn committed_max(&self) -> u64 {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }
}
