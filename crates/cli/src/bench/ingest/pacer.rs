//! How one simulated instance of `bench ingest` reports: [`ReportPacer`], the SDK agent's
//! reporting rules without the agent.
//!
//! ```text
//!   every configured interval         take (report due)            accepted(advice)
//!   ─────────────────────────> unsent ────────────────> in flight ─────────────────> applied
//!                                ^                          │      interval = advice, at least
//!                                └──── refused / failed ────┘      the configured one
//!                                  merged back; refused: the interval doubles
//! ```
//!
//! Calls accrue every configured interval whatever happens to reports, as they do in a service
//! (the calls do not wait for the cluster). A report carries everything accrued since the last
//! accepted one, summed into one delta per breaker, so a wider interval sheds load by sending
//! coarser reports and loses nothing. After an accepted report the interval is the one the
//! cluster advised (`ReportResponse::report_interval_ms`, 0: none), never below the configured
//! one; on `RESOURCE_EXHAUSTED` it doubles; both are bounded by [`WIDEN_MAX`] times the configured
//! interval (the SDK's `set_report_interval` in `crates/sdk/src/agent_state.rs`). Any other
//! failure keeps the evidence for the next report, due one interval later.
//!
//! The next report is due one interval after the last was due, or after it was sent if it went
//! out more than half a configured interval late: like the SDK, a late instance does not send
//! the reports it missed in a burst, it sends the next one coarser.
//!
//! Pure: time comes in as milliseconds since the start of the run; no clock, no I/O.

/// The widest interval as a multiple of the configured one: the server's widest advice
/// (`2^LEVEL_MAX` tick intervals), which is also the SDK's bound.
pub const WIDEN_MAX: u64 = 1 << switchyard_server::report_pacing::LEVEL_MAX;

/// Calls one breaker of an instance makes per configured interval.
pub const CALLS_PER_INTERVAL: u64 = 10;

/// Every tenth interval has one failed call per breaker (the rest succeed).
const FAILURE_EVERY_INTERVALS: u64 = 10;

/// The latency bucket every call lands in.
pub const LATENCY_BUCKET: u32 = 100;

/// What one breaker of an instance has to report: the sums of its calls over some intervals.
/// Every breaker of an instance makes the same calls, so one tally serves them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Calls.
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Calls in the latency bucket [`LATENCY_BUCKET`] (all of them).
    pub latency_count: u64,
}

impl Evidence {
    /// The calls of configured interval number `k` (from 0).
    pub fn of_interval(k: u64) -> Self {
        Self {
            calls: CALLS_PER_INTERVAL,
            failures: u64::from(k.is_multiple_of(FAILURE_EVERY_INTERVALS)),
            latency_count: CALLS_PER_INTERVAL,
        }
    }

    /// Adds `other` (sums; the latency bucket counts add up).
    pub fn add(&mut self, other: Evidence) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.latency_count += other.latency_count;
    }

    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.calls == 0
    }
}

/// One instance's reporting state (see the module docs).
#[derive(Debug, Clone)]
pub struct ReportPacer {
    configured_ms: u64,
    /// When the instance's first interval ends (instances are spread over one interval).
    phase_ms: u64,
    /// Calls accrue before this; no report is started at or after it.
    end_ms: u64,
    interval_ms: u64,
    intervals_accrued: u64,
    offered: Evidence,
    unsent: Evidence,
    in_flight: Option<Evidence>,
    due_ms: u64,
    /// When the report in flight was due (or sent, if it went out late).
    base_ms: u64,
}

impl ReportPacer {
    /// An instance reporting every `configured_ms`, first at `phase_ms`, until `end_ms`.
    pub fn new(configured_ms: u64, phase_ms: u64, end_ms: u64) -> Self {
        assert!(configured_ms > 0, "a configured interval of 0 ms");
        Self {
            configured_ms,
            phase_ms,
            end_ms,
            interval_ms: configured_ms,
            intervals_accrued: 0,
            offered: Evidence::default(),
            unsent: Evidence::default(),
            in_flight: None,
            due_ms: phase_ms,
            base_ms: phase_ms,
        }
    }

    /// When the next report is due; `None` while one is in flight or once the run is over.
    pub fn due_ms(&self) -> Option<u64> {
        (self.in_flight.is_none() && self.due_ms < self.end_ms).then_some(self.due_ms)
    }

    /// Adds the calls of every configured interval that ended by `now_ms` (and before the end).
    pub fn accrue(&mut self, now_ms: u64) {
        let last_ms = now_ms.min(self.end_ms.saturating_sub(1));
        let intervals = if self.end_ms == 0 || last_ms < self.phase_ms {
            0
        } else {
            (last_ms - self.phase_ms) / self.configured_ms + 1
        };
        while self.intervals_accrued < intervals {
            let evidence = Evidence::of_interval(self.intervals_accrued);
            self.offered.add(evidence);
            self.unsent.add(evidence);
            self.intervals_accrued += 1;
        }
    }

    /// Starts the report due: everything accrued by `now_ms` and not yet accepted. `None` when
    /// there is nothing to send (the next report is then due at the next interval's end).
    pub fn take(&mut self, now_ms: u64) -> Option<Evidence> {
        assert!(self.in_flight.is_none(), "one report in flight at a time");
        self.accrue(now_ms);
        if self.unsent.is_empty() {
            let next = if now_ms < self.phase_ms {
                self.phase_ms
            } else {
                self.phase_ms
                    + ((now_ms - self.phase_ms) / self.configured_ms + 1) * self.configured_ms
            };
            self.due_ms = self.due_ms.max(next);
            return None;
        }
        self.base_ms = if now_ms > self.due_ms + self.configured_ms / 2 {
            now_ms
        } else {
            self.due_ms
        };
        let evidence = std::mem::take(&mut self.unsent);
        self.in_flight = Some(evidence);
        Some(evidence)
    }

    /// The report in flight was accepted, with `advised_ms` between reports (0: no advice).
    pub fn accepted(&mut self, advised_ms: u64) {
        self.in_flight = None;
        self.set_interval(advised_ms);
        self.due_ms = self.base_ms + self.interval_ms;
    }

    /// The report in flight was refused at a limit (`RESOURCE_EXHAUSTED`): its evidence goes
    /// with the next report, and the interval doubles.
    pub fn refused(&mut self) {
        self.keep_in_flight();
        self.set_interval(self.interval_ms.saturating_mul(2));
        self.due_ms = self.base_ms + self.interval_ms;
    }

    /// The report in flight failed otherwise: its evidence goes with the next report, due one
    /// interval later.
    pub fn failed(&mut self) {
        self.keep_in_flight();
        self.due_ms = self.base_ms + self.interval_ms;
    }

    fn keep_in_flight(&mut self) {
        if let Some(evidence) = self.in_flight.take() {
            self.unsent.add(evidence);
        }
    }

    fn set_interval(&mut self, ms: u64) {
        let widest = self.configured_ms.saturating_mul(WIDEN_MAX);
        self.interval_ms = ms.clamp(self.configured_ms, widest);
    }

    /// The interval in force, ms.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// Everything accrued so far, per breaker.
    pub fn offered(&self) -> Evidence {
        self.offered
    }

    /// Accrued and not accepted (unsent or in flight), per breaker.
    pub fn held(&self) -> Evidence {
        let mut held = self.unsent;
        if let Some(evidence) = self.in_flight {
            held.add(evidence);
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 ms configured, first interval ends at 30 ms, run ends at 10 000 ms.
    fn pacer() -> ReportPacer {
        ReportPacer::new(100, 30, 10_000)
    }

    fn calls(intervals: u64) -> u64 {
        intervals * CALLS_PER_INTERVAL
    }

    #[test]
    fn calls_accrue_once_per_configured_interval_from_the_phase_to_the_end() {
        let mut p = ReportPacer::new(100, 30, 1_000);
        p.accrue(29);
        assert_eq!(p.offered(), Evidence::default());
        p.accrue(30);
        assert_eq!(p.offered().calls, calls(1));
        p.accrue(229);
        assert_eq!(p.offered().calls, calls(2));
        // Intervals end at 30, 130, ..., 930: ten before the end, none after it.
        p.accrue(u64::MAX);
        assert_eq!(p.offered().calls, calls(10));
        assert_eq!(p.offered().latency_count, calls(10));
        // The failure of interval 0 only (every tenth).
        assert_eq!(p.offered().failures, 1);
        assert_eq!(p.held(), p.offered());
    }

    #[test]
    fn a_report_carries_everything_since_the_last_accepted_one_summed() {
        let mut p = pacer();
        assert_eq!(p.due_ms(), Some(30));
        let first = p.take(30).unwrap();
        assert_eq!(
            first,
            Evidence {
                calls: calls(1),
                failures: 1,
                latency_count: calls(1)
            }
        );
        assert_eq!(p.due_ms(), None, "in flight");
        p.accepted(0);
        assert_eq!(p.due_ms(), Some(130));
        // Sent 200 ms late: intervals ending at 130, 230 and 330 in one report.
        let second = p.take(330).unwrap();
        assert_eq!(
            second,
            Evidence {
                calls: calls(3),
                failures: 0,
                latency_count: calls(3)
            }
        );
        p.accepted(0);
        assert_eq!(p.held(), Evidence::default());
        // More than half an interval late: the next is due an interval after the send, with
        // no burst to catch up.
        assert_eq!(p.due_ms(), Some(430));
    }

    #[test]
    fn a_failed_report_is_merged_into_the_next_at_the_same_interval() {
        let mut p = pacer();
        p.take(30).unwrap();
        p.failed();
        assert_eq!(p.interval_ms(), 100);
        assert_eq!(p.due_ms(), Some(130));
        assert_eq!(p.held().calls, calls(1));
        let next = p.take(130).unwrap();
        assert_eq!((next.calls, next.failures), (calls(2), 1));
        p.accepted(0);
        assert_eq!(p.held(), Evidence::default());
    }

    #[test]
    fn the_advice_is_adopted_but_never_below_the_configured_interval() {
        let mut p = pacer();
        p.take(30).unwrap();
        p.accepted(400);
        assert_eq!((p.interval_ms(), p.due_ms()), (400, Some(430)));
        p.take(430).unwrap();
        p.accepted(50);
        assert_eq!((p.interval_ms(), p.due_ms()), (100, Some(530)));
        p.take(530).unwrap();
        p.accepted(400);
        p.take(930).unwrap();
        // No advice: back to the configured interval.
        p.accepted(0);
        assert_eq!((p.interval_ms(), p.due_ms()), (100, Some(1_030)));
    }

    #[test]
    fn resource_exhausted_doubles_the_interval_up_to_the_bound_and_keeps_the_evidence() {
        assert_eq!(WIDEN_MAX, 64);
        let mut p = ReportPacer::new(100, 0, 1_000_000);
        let mut intervals = Vec::new();
        for _ in 0..8 {
            let due = p.due_ms().unwrap();
            p.take(due).unwrap();
            p.refused();
            intervals.push(p.interval_ms());
        }
        assert_eq!(intervals, [200, 400, 800, 1600, 3200, 6400, 6400, 6400]);
        // Due at 0, 200, 600, ..., 19 000, then 25 400. Nothing was lost: that report carries
        // every interval so far (those ending at 0, 100, ..., 25 400).
        assert_eq!(p.due_ms(), Some(25_400));
        let all = p.take(25_400).unwrap();
        assert_eq!(all, p.offered());
        assert_eq!((all.calls, all.failures), (calls(255), 26));
        // Advice past the bound is bounded too.
        p.accepted(1_000_000);
        assert_eq!(p.interval_ms(), 6_400);
    }

    #[test]
    fn offered_is_accepted_plus_held_whatever_the_answers() {
        let mut p = ReportPacer::new(100, 10, 5_000);
        let mut accepted = Evidence::default();
        let mut answer = 0u64;
        while let Some(due) = p.due_ms() {
            // Sent 0-70 ms late.
            let sent = p.take(due + answer % 8 * 10);
            if let Some(evidence) = sent {
                match answer % 4 {
                    0 => p.refused(),
                    1 => p.failed(),
                    n => {
                        accepted.add(evidence);
                        p.accepted(if n == 2 { 300 } else { 0 });
                    }
                }
            }
            answer += 1;
        }
        p.accrue(u64::MAX);
        let mut total = accepted;
        total.add(p.held());
        assert_eq!(total, p.offered());
        assert_eq!(p.offered().calls, calls(50));
        assert!(!p.held().is_empty(), "the last intervals were never sent");
    }

    #[test]
    fn a_report_due_with_nothing_accrued_waits_for_the_next_interval() {
        let mut p = pacer();
        p.take(30).unwrap();
        p.accepted(0);
        // Asked again before the next interval ended: nothing to send.
        assert_eq!(p.take(100), None);
        assert_eq!(p.due_ms(), Some(130));
        assert_eq!(p.take(130).map(|e| e.calls), Some(calls(1)));
    }

    #[test]
    fn no_report_is_started_at_or_after_the_end() {
        let mut p = ReportPacer::new(100, 0, 200);
        p.take(0).unwrap();
        p.accepted(0);
        p.take(100).unwrap();
        p.accepted(0);
        assert_eq!(p.due_ms(), None);
    }
}
