//! No SDK ever accepts a lower decision index than it has.
//!
//! Each instance samples its breaker's decision index every
//! [`crate::fleet::SAMPLE_INTERVAL_MS`] and records any decrease when it sees it; the
//! checker reports each recorded decrease once.

use crate::fleet::InstanceView;

use super::Violation;

/// How many regressions of each instance were already reported.
#[derive(Debug, Default)]
pub struct DecisionIndex {
    reported: Vec<usize>,
}

impl DecisionIndex {
    /// Reports new decreases in `views`.
    pub fn observe(&mut self, views: &[InstanceView], out: &mut Vec<Violation>) {
        self.reported.resize(views.len(), 0);
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
        }
    }
}
