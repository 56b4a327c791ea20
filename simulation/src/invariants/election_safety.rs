//! Election safety: at most one node leads with any given Raft leader id, each leader leads
//! on its own vote, and no vote a node acted on is ever lost.
//!
//! Checked every step from each running node's metrics. Under openraft's `leader_id_adv` a
//! leader id is `(term, node_id)` (see the module table in [`super`] for why not "per term"),
//! so two nodes can share one only if one of them leads on a vote naming another node:
//! both are checked. What actually keeps two leaders out of one term is that a node never
//! grants a vote it has already given away, which holds only if every vote it acted on
//! survives its crashes. The metrics show the last *flushed* vote (openraft acts on no other),
//! so a node's vote, ordered as openraft orders votes, must never go back, restarts included:
//! a node that forgot its vote could grant the same term to a second candidate.

use std::collections::BTreeMap;

use openraft::ServerState;

use super::{NodeView, Violation};

/// Remembers every (leader id → node) seen leading, and every node's greatest vote.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<String, u64>,
    votes: BTreeMap<u64, ((u64, u64, bool), String)>,
    evaluated: u64,
}

fn printed(vote: (u64, u64, bool)) -> String {
    format!(
        "T{}-N{}{}",
        vote.0,
        vote.1,
        if vote.2 { " (committed)" } else { "" }
    )
}

impl ElectionSafety {
    /// Checks the leaders and votes among `views`.
    pub fn observe(&mut self, views: &[NodeView], at_ms: u64, out: &mut Vec<Violation>) {
        for view in views.iter().filter(|v| v.state == ServerState::Leader) {
            self.evaluated += 1;
            let first = *self
                .leaders
                .entry(view.vote_leader_id.clone())
                .or_insert(view.id);
            let named = view.vote.1;
            if first != view.id || named != view.id {
                out.push(Violation::ElectionSafety {
                    leader_id: view.vote_leader_id.clone(),
                    nodes: if first != view.id {
                        vec![first, view.id]
                    } else {
                        vec![view.id]
                    },
                    at_ms,
                });
            }
        }
        for view in views {
            match self.votes.get(&view.id) {
                Some((known, known_printed)) if view.vote < *known => {
                    self.evaluated += 1;
                    out.push(Violation::VoteRegressed {
                        node: view.id,
                        from: known_printed.clone(),
                        to: printed(view.vote),
                        at_ms,
                    });
                    self.votes.insert(view.id, (view.vote, printed(view.vote)));
                }
                Some((known, _)) if view.vote == *known => {}
                _ => {
                    self.votes.insert(view.id, (view.vote, printed(view.vote)));
                }
            }
        }
    }

    /// A node is about to restart: its next vote is compared with the last one seen, once.
    pub fn restarting(&mut self, node: u64) {
        if self.votes.contains_key(&node) {
            self.evaluated += 1;
        }
    }

    /// Distinct leader ids seen so far.
    pub fn leaders_seen(&self) -> usize {
        self.leaders.len()
    }

    /// Leader views checked, plus restarted votes compared.
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::tests::node;

    #[test]
    fn a_leader_per_leader_id_on_its_own_vote_passes() {
        let mut check = ElectionSafety::default();
        let mut out = Vec::new();
        check.observe(
            &[
                node(1, ServerState::Leader, (2, 1, true)),
                node(2, ServerState::Follower, (2, 1, true)),
            ],
            10,
            &mut out,
        );
        check.observe(&[node(2, ServerState::Leader, (3, 2, true))], 20, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(check.leaders_seen(), 2);
        assert_eq!(check.evaluated(), 2);
    }

    #[test]
    fn a_node_leading_on_another_nodes_vote_is_caught() {
        let mut check = ElectionSafety::default();
        let mut out = Vec::new();
        check.observe(&[node(1, ServerState::Leader, (2, 1, true))], 10, &mut out);
        let mut imposter = node(2, ServerState::Leader, (2, 1, true));
        imposter.vote_leader_id = "T2-N1".into();
        check.observe(&[imposter], 20, &mut out);
        assert!(
            matches!(&out[..], [Violation::ElectionSafety { nodes, .. }] if nodes == &vec![1, 2]),
            "{out:?}"
        );
    }

    #[test]
    fn a_vote_lost_in_a_restart_is_caught() {
        let mut check = ElectionSafety::default();
        let mut out = Vec::new();
        check.observe(
            &[node(3, ServerState::Follower, (4, 1, true))],
            10,
            &mut out,
        );
        check.restarting(3);
        check.observe(
            &[node(3, ServerState::Follower, (0, 3, false))],
            20,
            &mut out,
        );
        assert!(
            matches!(&out[..], [Violation::VoteRegressed { node: 3, .. }]),
            "{out:?}"
        );
    }
}
