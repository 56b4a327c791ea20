//! [`DeltasRefused`]: report deltas refused at a limit, by limit.

use crate::error::{LimitName, NodeError};

/// Report deltas refused at a limit, by limit: `switchyard_report_deltas_refused_total{limit}`.
/// Every refusal of a report is counted here, wherever it happens (the rate gate, the batch
/// size check, a follower's forward buffer, the leader's tick buffer).
#[derive(Debug, Default)]
pub struct DeltasRefused {
    by_limit: [std::sync::atomic::AtomicU64; LimitName::REPORT.len()],
}

impl DeltasRefused {
    fn slot(&self, limit: LimitName) -> &std::sync::atomic::AtomicU64 {
        let i = LimitName::REPORT
            .iter()
            .position(|l| *l == limit)
            .unwrap_or(0);
        &self.by_limit[i]
    }

    /// Counts `deltas` refused at `limit`.
    pub fn add(&self, limit: LimitName, deltas: u64) {
        self.slot(limit)
            .fetch_add(deltas, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts the deltas of a report refused with `error`, when it is a limit refusal.
    pub fn add_error(&self, error: &NodeError, deltas: u64) {
        if let Some(limit) = error.limit() {
            self.add(limit, deltas);
        }
    }

    /// Deltas refused at `limit` so far.
    pub fn get(&self, limit: LimitName) -> u64 {
        self.slot(limit).load(std::sync::atomic::Ordering::Relaxed)
    }
}
