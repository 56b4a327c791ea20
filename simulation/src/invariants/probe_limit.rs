//! Fleet-wide probes never exceed `probe_permits`.
//!
//! Two places are watched: the dependency, where the trial calls made under cluster probe
//! permits are counted while in flight (what the recovering dependency actually feels), and
//! every node's applied state, where the live probe leases of the breaker are counted (what
//! the cluster granted). Only a step with trial calls in flight, or a check that finds
//! leases held, counts as an evaluation: a seed that never reaches HALF_OPEN shows zero.

use super::Violation;

/// Reports each kind of excess once.
#[derive(Debug, Default)]
pub struct ProbeLimit {
    reported_calls: bool,
    reported_leases: bool,
    evaluated: u64,
}

impl ProbeLimit {
    /// Checks the trial calls in flight now, and the most ever in flight at once
    /// `(count, at_ms)`.
    pub fn observe_calls(
        &mut self,
        in_flight_now: u64,
        in_flight_max: (u64, u64),
        limit: u64,
        out: &mut Vec<Violation>,
    ) {
        if in_flight_now > 0 {
            self.evaluated += 1;
        }
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
        if leases > 0 {
            self.evaluated += 1;
        }
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

    /// Steps with trial calls in flight, plus checks that found leases held.
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_within_the_limit_pass_and_idle_steps_do_not_count() {
        let mut check = ProbeLimit::default();
        let mut out = Vec::new();
        check.observe_calls(0, (0, 0), 2, &mut out);
        check.observe_calls(2, (2, 50), 2, &mut out);
        check.observe_leases(1, 2, 2, 60, &mut out);
        check.observe_leases(1, 0, 2, 70, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(check.evaluated(), 2);
    }

    #[test]
    fn one_probe_too_many_is_caught_once() {
        let mut check = ProbeLimit::default();
        let mut out = Vec::new();
        check.observe_calls(3, (3, 50), 2, &mut out);
        check.observe_calls(3, (3, 50), 2, &mut out);
        check.observe_leases(2, 3, 2, 60, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(
            out[0],
            Violation::ProbeLimit {
                count: 3,
                limit: 2,
                ..
            }
        ));
    }
}
