//! Election safety: at most one node leads with any given Raft leader id.
//!
//! Checked every step from each running node's metrics. Under openraft's `leader_id_adv` a
//! leader id is `(term, node_id)` (see the module table in [`super`] for why not "per term").
//! Leaders are grouped by the leader id of their own *vote*: a node that leads on a vote
//! naming another node, or two nodes leading on one vote, is a broken election.

use std::collections::BTreeMap;

use openraft::ServerState;

use super::{NodeView, Violation};

/// Remembers every (leader id → node) seen leading.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<String, u64>,
}

impl ElectionSafety {
    /// Checks the leaders among `views`.
    pub fn observe(&mut self, views: &[NodeView], at_ms: u64, out: &mut Vec<Violation>) {
        for view in views.iter().filter(|v| v.state == ServerState::Leader) {
            let first = *self
                .leaders
                .entry(view.vote_leader_id.clone())
                .or_insert(view.id);
            if first != view.id {
                out.push(Violation::ElectionSafety {
                    leader_id: view.vote_leader_id.clone(),
                    nodes: vec![first, view.id],
                    at_ms,
                });
            }
        }
    }

    /// Distinct leader ids seen so far.
    pub fn leaders_seen(&self) -> usize {
        self.leaders.len()
    }
}
