//! Liveness: after healing, within a bound, some node leads and every running node follows it.

use openraft::ServerState;

use super::{NodeView, Violation};

/// Whether (and when) the healed cluster had a leader everyone follows.
#[derive(Debug, Default)]
pub struct LeaderLiveness {
    /// When a followed leader was first seen after healing, ms.
    pub reached_at_ms: Option<u64>,
    evaluated: u64,
}

impl LeaderLiveness {
    /// Looks at the running nodes after healing; `expected` nodes should be running.
    pub fn observe(&mut self, views: &[NodeView], expected: usize, at_ms: u64) {
        if self.reached_at_ms.is_some() || views.len() < expected {
            return;
        }
        let Some(leader) = views.iter().find(|v| v.state == ServerState::Leader) else {
            return;
        };
        if views.iter().all(|v| v.leader == Some(leader.id)) {
            self.reached_at_ms = Some(at_ms);
        }
    }

    /// At the end of the bound: the violation if no leader was reached.
    pub fn verdict(&mut self, bound_ms: u64, out: &mut Vec<Violation>) {
        self.evaluated += 1;
        if self.reached_at_ms.is_none() {
            out.push(Violation::LeaderLiveness { bound_ms });
        }
    }
}

impl LeaderLiveness {
    /// Verdicts given (one per run that reached the end of its liveness phase).
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::tests::node;

    #[test]
    fn a_leader_every_node_follows_passes() {
        let mut check = LeaderLiveness::default();
        let mut views = vec![
            node(1, ServerState::Leader, (2, 1, true)),
            node(2, ServerState::Follower, (2, 1, true)),
        ];
        views.iter_mut().for_each(|v| v.leader = Some(1));
        check.observe(&views, 2, 100);
        let mut out = Vec::new();
        check.verdict(5_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(check.reached_at_ms, Some(100));
        assert_eq!(check.evaluated(), 1);
    }

    #[test]
    fn a_node_that_never_follows_is_caught() {
        let mut check = LeaderLiveness::default();
        let mut views = vec![
            node(1, ServerState::Leader, (2, 1, true)),
            node(2, ServerState::Candidate, (3, 2, false)),
        ];
        views[0].leader = Some(1);
        check.observe(&views, 2, 100);
        let mut out = Vec::new();
        check.verdict(5_000, &mut out);
        assert_eq!(out, vec![Violation::LeaderLiveness { bound_ms: 5_000 }]);
    }
}
