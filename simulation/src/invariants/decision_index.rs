//! No SDK ever accepts a lower decision index than it has.
//!
//! Checked at every update an SDK applies, not by sampling: the SDK reports each one through
//! `switchyard_core::plant::observe_decision_index` (a hook only the simulation installs),
//! and [`crate::fleet::Fleet`] records `(from, to)` per instance as it happens. A decrease
//! and recovery between two samples cannot hide.

use crate::fleet::InstanceView;

use super::Violation;

/// How many updates and regressions of each instance were already looked at.
#[derive(Debug, Default)]
pub struct DecisionIndex {
    reported: Vec<usize>,
    updates_seen: Vec<u64>,
}

impl DecisionIndex {
    /// Reports new decreases in `views`.
    pub fn observe(&mut self, views: &[InstanceView], out: &mut Vec<Violation>) {
        self.reported.resize(views.len(), 0);
        self.updates_seen.resize(views.len(), 0);
        for (i, view) in views.iter().enumerate() {
            for &(at_ms, from, to) in &view.index_regressions[self.reported[i]..] {
                out.push(Violation::DecisionIndex {
                    instance: i as u64,
                    from,
                    to,
                    at_ms,
                });
            }
            self.reported[i] = view.index_regressions.len();
            self.updates_seen[i] = view.updates;
        }
    }

    /// SDK updates checked.
    pub fn evaluated(&self) -> u64 {
        self.updates_seen.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(updates: u64, regressions: Vec<(u64, u64, u64)>) -> InstanceView {
        InstanceView {
            updates,
            index_regressions: regressions,
            ..InstanceView::default()
        }
    }

    #[test]
    fn updates_that_only_go_forward_pass() {
        let mut check = DecisionIndex::default();
        let mut out = Vec::new();
        check.observe(&[view(5, vec![]), view(3, vec![])], &mut out);
        assert!(out.is_empty());
        assert_eq!(check.evaluated(), 8);
    }

    #[test]
    fn a_regression_is_reported_once() {
        let mut check = DecisionIndex::default();
        let mut out = Vec::new();
        let views = [view(2, vec![(400, 9, 7)])];
        check.observe(&views, &mut out);
        check.observe(&views, &mut out);
        assert_eq!(
            out,
            vec![Violation::DecisionIndex {
                instance: 0,
                from: 9,
                to: 7,
                at_ms: 400
            }]
        );
    }
}
