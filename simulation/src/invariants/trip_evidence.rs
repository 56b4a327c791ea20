//! Safety of the trip rule: the fleet never trips without the evidence DESIGN §3 asks for.
//!
//! - **One instance**: failures seen by one instance never trip the fleet (`min_instances`
//!   is at least 2 in every scenario, and the rule never asks fewer than two instances
//!   then). A fleet trip is a violation when fewer than two instances had a call fail or
//!   turn slow within the lookback before it.
//! - **Noisy baseline**: a healthy dependency whose calls fail at random below the threshold
//!   never trips the fleet. A fleet trip is a violation when, within the lookback, calls
//!   went wrong only on noise (or on a sick instance), never because the dependency was down
//!   or slow.
//!
//! The evidence is the dependency's own record of which instance's calls went wrong and
//! why ([`crate::dependency::Dependency::trouble_since`]), not what the cluster believed.
//! The lookback covers the cluster's window plus the longest an SDK holds a report
//! ([`REPORT_DELAY_MAX_MS`]): a trip is only judged against calls that can no longer be in
//! the window. A longer lookback only excuses more trips, so it cannot make this check
//! report a trip the rule was right to make.
//!
//! The scenarios that put the rule to the test open some seeds with a lone sick instance
//! (the rest of the fleet idle) or a noisy baseline (see [`crate::faults`]); every check at
//! which only one instance, or only noise, had failed lately counts as an evaluation, as
//! does every trip judged.

use switchyard_core::{Policy, WindowSpec};

use super::Violation;
use crate::dependency::TroubleSince;
use crate::run::FleetTrip;

/// The longest an SDK holds an outcome before the cluster applies it, ms: its report queue
/// (64 reports of 100 ms) plus a report RPC's timeouts, rounded up.
pub const REPORT_DELAY_MAX_MS: u64 = 10_000;

/// How far before a trip its evidence may lie under `policy`, ms.
pub fn lookback_ms(policy: &Policy) -> u64 {
    let window_ms = match policy.window {
        WindowSpec::Time { duration_ms, .. } => duration_ms,
        WindowSpec::Count { max_age_ms, .. } => max_age_ms,
    };
    window_ms + REPORT_DELAY_MAX_MS
}

/// Fleet trips judged so far, and evaluation counts.
#[derive(Debug, Default)]
pub struct TripEvidence {
    trips_judged: usize,
    one_instance_checks: u64,
    noise_checks: u64,
}

impl TripEvidence {
    /// A check at which `lately` had trouble within the lookback.
    pub fn observe(&mut self, lately: TroubleSince) {
        self.one_instance_checks += u64::from(lately.instances == 1);
        self.noise_checks += u64::from(lately.noise && !lately.outage);
    }

    /// Judges the trips of `trips` not judged yet; `evidence(at_ms)` says who had trouble in
    /// the lookback before a trip at `at_ms`.
    pub fn judge(
        &mut self,
        trips: &[FleetTrip],
        evidence: impl Fn(u64) -> TroubleSince,
        out: &mut Vec<Violation>,
    ) {
        for trip in trips.iter().skip(self.trips_judged) {
            let lately = evidence(trip.at_ms);
            if lately.instances < 2 {
                out.push(Violation::OneInstanceTrip {
                    at_ms: trip.at_ms,
                    instances: lately.instances,
                    reason: trip.reason.clone(),
                });
            } else if !lately.outage {
                out.push(Violation::NoisyBaselineTrip {
                    at_ms: trip.at_ms,
                    reason: trip.reason.clone(),
                });
            }
        }
        self.trips_judged = self.trips_judged.max(trips.len());
    }

    /// Evaluations: `(one instance, noisy baseline)`.
    pub fn evaluated(&self) -> (u64, u64) {
        let trips = self.trips_judged as u64;
        (trips + self.one_instance_checks, trips + self.noise_checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip(at_ms: u64) -> FleetTrip {
        FleetTrip {
            at_ms,
            reason: "failure_rate 100% >= 50% over 12 calls from 1 instances".into(),
        }
    }

    fn trouble(instances: u64, outage: bool, noise: bool) -> TroubleSince {
        TroubleSince {
            instances,
            outage,
            noise,
        }
    }

    #[test]
    fn a_trip_on_an_outage_many_instances_saw_passes_and_is_judged_once() {
        let mut check = TripEvidence::default();
        let mut out = Vec::new();
        check.observe(trouble(1, true, false));
        let trips = [trip(4_000)];
        check.judge(&trips, |_| trouble(9, true, true), &mut out);
        check.judge(&trips, |_| trouble(0, false, false), &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(check.evaluated(), (2, 1));
    }

    #[test]
    fn a_trip_on_one_instances_failures_is_caught() {
        let mut check = TripEvidence::default();
        let mut out = Vec::new();
        check.judge(&[trip(2_500)], |_| trouble(1, false, false), &mut out);
        assert_eq!(
            out,
            vec![Violation::OneInstanceTrip {
                at_ms: 2_500,
                instances: 1,
                reason: trip(0).reason,
            }]
        );
    }

    #[test]
    fn a_trip_on_noise_alone_is_caught() {
        let mut check = TripEvidence::default();
        let mut out = Vec::new();
        check.observe(trouble(30, false, true));
        check.judge(&[trip(3_000)], |_| trouble(30, false, true), &mut out);
        assert_eq!(
            out,
            vec![Violation::NoisyBaselineTrip {
                at_ms: 3_000,
                reason: trip(0).reason,
            }]
        );
        assert_eq!(check.evaluated(), (1, 2));
    }

    #[test]
    fn the_lookback_covers_the_window_and_the_report_delay() {
        let policy = Policy {
            window: WindowSpec::Time {
                duration_ms: 5_000,
                buckets: 10,
            },
            ..Policy::default()
        };
        assert_eq!(lookback_ms(&policy), 15_000);
    }
}
