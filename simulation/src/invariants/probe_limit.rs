//! Fleet-wide probes never exceed `probe_permits`.
//!
//! Two places are watched: the dependency, where the trial calls made under cluster probe
//! permits are counted while in flight (what the recovering dependency actually feels), and
//! every node's applied state, where the live probe leases of the breaker are counted (what
//! the cluster granted).

use super::Violation;

/// Reports each kind of excess once.
#[derive(Debug, Default)]
pub struct ProbeLimit {
    reported_calls: bool,
    reported_leases: bool,
}

impl ProbeLimit {
    /// Checks the most trial calls in flight at once, `(count, at_ms)`.
    pub fn observe_calls(
        &mut self,
        in_flight_max: (u64, u64),
        limit: u64,
        out: &mut Vec<Violation>,
    ) {
        if in_flight_max.0 > limit && !self.reported_calls {
            self.reported_calls = true;
            out.push(Violation::ProbeLimit {
                seen_at: "trial calls in flight at the dependency".into(),
                count: in_flight_max.0,
                limit,
                at_ms: in_flight_max.1,
            });
        }
    }

    /// Checks a node's live leases.
    pub fn observe_leases(
        &mut self,
        node: u64,
        leases: u64,
        limit: u64,
        at_ms: u64,
        out: &mut Vec<Violation>,
    ) {
        if leases > limit && !self.reported_leases {
            self.reported_leases = true;
            out.push(Violation::ProbeLimit {
                seen_at: format!("probe leases in node {node}'s applied state"),
                count: leases,
                limit,
                at_ms,
            });
        }
    }
}
