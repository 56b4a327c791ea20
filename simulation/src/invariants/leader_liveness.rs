//! Liveness: after healing, within a bound, some node leads and every running node follows it.

use openraft::ServerState;

use super::{NodeView, Violation};

/// Whether (and when) the healed cluster had a leader everyone follows.
#[derive(Debug, Default)]
pub struct LeaderLiveness {
    /// When a followed leader was first seen after healing, ms.
    pub reached_at_ms: Option<u64>,
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
    pub fn verdict(&self, bound_ms: u64, out: &mut Vec<Violation>) {
        if self.reached_at_ms.is_none() {
            out.push(Violation::LeaderLiveness { bound_ms });
        }
    }
}
