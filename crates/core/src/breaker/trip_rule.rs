//! Judging the window: the trip rule of DESIGN §3, "the fleet decides on fresh evidence".
//!
//! A CLOSED breaker trips when either span of its window holds the evidence:
//!
//! | span | calls | rate | instances (fleet mode) |
//! |---|---|---|---|
//! | whole window | ≥ `min_calls` | ≥ threshold | ≥ `required` failed (slow) in the window |
//! | freshest span | ≥ `min_calls` (its definition) | Wilson lower bound at `fresh_span_confidence` ≥ threshold | ≥ `required` failed (slow) inside the span |
//!
//! with `required = max(min(min_instances, live), min(min_instances, 2))` and `live` the
//! instances that reported in the window. The whole window is judged first, failure rate
//! before slow rate, so a breaker that trips under both names the whole window (the reason
//! operators already know). The freshest span ([`crate::FreshSpan`]) is what lets a fleet
//! decide as soon as it has `min_calls` fresh calls: a fleet of 50 instances fills one in a
//! fraction of a second, where each instance needs seconds. The confidence margin keeps that
//! fast decision from firing on noise (see [`crate::Confidence`]), and the instance rule on
//! the span keeps one sick instance from tripping the fleet.
//!
//! A *cold* whole window ([`crate::Window::is_warm`]: it does not yet hold evidence over its
//! whole length, as at start-up and after every HALF_OPEN -> CLOSED) must also clear the
//! confidence bound, like the span: judged at its first `min_calls` calls on its raw rate, it
//! would trip on a baseline well under the threshold by chance (10 of 20 calls fail about
//! 12 % of the time at a 35 % baseline), re-tripping a noisy dependency right after it
//! recovers. An outage still trips at once: the freshest span judges it with the same bound,
//! and a cold window in which every call failed (or was slow) is judged on its raw rate, as
//! before: noise does not fail every call, and a quiet breaker's first `min_calls` failures
//! (fewer than the 14 calls the default bound needs) must still trip it. With
//! `fresh_span_confidence` off, the whole window is judged on its raw rate, warm or cold, as
//! before the span existed.

use super::Breaker;
use crate::plant::{Plant, planted};
use crate::{FleetRetries, FreshSpan, Transition, TripMode, WindowTotals};

/// Which rate a trip is about.
#[derive(Clone, Copy)]
enum Rate {
    Failure,
    Slow,
}

impl Rate {
    fn name(self) -> &'static str {
        match self {
            Rate::Failure => "failure_rate",
            Rate::Slow => "slow_call_rate",
        }
    }

    fn bad(self, t: &WindowTotals) -> u64 {
        match self {
            Rate::Failure => t.failures,
            Rate::Slow => t.slow,
        }
    }
}

fn percent(part: u64, whole: u64) -> u64 {
    (u128::from(part) * 100 / u128::from(whole.max(1))) as u64
}

/// `0.2 s`, `12 s`: the span's age in reasons.
fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{}.{} s", ms / 1_000, ms % 1_000 / 100)
    } else {
        format!("{} s", ms / 1_000)
    }
}

impl Breaker {
    /// The fleet's retry figures over the window at `now_ms` (see [`FleetRetries`]).
    pub fn fleet_retries(&self, now_ms: u64) -> FleetRetries {
        let oldest = self.window.oldest_position(now_ms);
        let instances = self
            .instances
            .values()
            .filter(|m| m.last_report >= oldest && m.last_attempt_next > oldest)
            .count();
        self.fleet_retries_of(now_ms, u32::try_from(instances).unwrap_or(u32::MAX))
    }

    fn fleet_retries_of(&self, now_ms: u64, instances: u32) -> FleetRetries {
        let totals = self.window.retry_totals(now_ms);
        FleetRetries {
            first_attempts: totals.first_attempts,
            retries: totals.retries,
            instances,
            window_ms: self.window.span_ms(now_ms),
        }
    }

    /// [`Breaker::evaluate`], then the fleet's retry figures at the same time, counting the
    /// retrying instances in the pass that prunes the instance table (equal to
    /// [`Breaker::fleet_retries`], without a second walk over the table).
    pub fn evaluate_with_retries(&mut self, now_ms: u64) -> (Option<Transition>, FleetRetries) {
        let mut retrying = 0u32;
        let transition = self.evaluate_counting(now_ms, Some(&mut retrying));
        (transition, self.fleet_retries_of(now_ms, retrying))
    }

    /// Judges the window at `now_ms`: CLOSED -> OPEN if the trip rule holds.
    pub fn evaluate(&mut self, now_ms: u64) -> Option<Transition> {
        self.evaluate_counting(now_ms, None)
    }

    /// The freshest span at `now_ms` (see [`crate::Window::freshest_span`]).
    pub fn freshest_span(&self, now_ms: u64) -> Option<FreshSpan> {
        self.window.freshest_span(now_ms, self.policy.min_calls)
    }

    fn evaluate_counting(&mut self, now_ms: u64, retrying: Option<&mut u32>) -> Option<Transition> {
        self.window.expire(now_ms);
        let oldest = self.window.oldest_position(now_ms);
        if self.mode == TripMode::Fleet {
            match retrying {
                None => self.instances.retain(|_, m| m.last_report >= oldest),
                Some(count) => self.instances.retain(|_, m| {
                    let live = m.last_report >= oldest;
                    *count += u32::from(live && m.last_attempt_next > oldest);
                    live
                }),
            }
        }
        if self.state_override.is_some() || self.auto_state != crate::BreakerState::Closed {
            return None;
        }
        let reason = self.trip_reason(now_ms, oldest)?;
        Some(self.open(now_ms, reason))
    }

    /// Why the breaker must trip at `now_ms`, or `None`.
    fn trip_reason(&self, now_ms: u64, oldest: u64) -> Option<String> {
        let min_calls = u64::from(self.policy.min_calls.max(1));
        let whole = self.window.totals(now_ms);
        let span = if self.policy.fresh_span_confidence.is_on() {
            self.window.freshest_span(now_ms, self.policy.min_calls)
        } else {
            None
        };
        if whole.calls < min_calls && span.is_none() {
            return None;
        }
        // Only asked once the whole window's rate is over a threshold: most evaluations on
        // the apply path never walk the window a second time.
        let warm = || !self.policy.fresh_span_confidence.is_on() || self.window.is_warm(now_ms);
        for rate in [Rate::Failure, Rate::Slow] {
            if whole.calls < min_calls || !self.whole_hit(rate, &whole) {
                continue;
            }
            // Every call bad: noise does not do that, and an outage seen by a quiet breaker
            // must not wait for its window to warm (this also covers a threshold of 100 %,
            // which no bound can reach).
            let raw = rate.bad(&whole) >= whole.calls || warm();
            if (raw || self.clears_with_confidence(rate, &whole))
                && let Some(from) = self.enough_instances(rate, oldest)
            {
                return Some(if raw {
                    self.whole_reason(rate, &whole, from)
                } else {
                    self.cold_reason(rate, &whole, from)
                });
            }
        }
        let span = span?;
        for rate in [Rate::Failure, Rate::Slow] {
            if self.clears_with_confidence(rate, &span.totals)
                && let Some(from) = self.enough_instances(rate, span.start_position)
            {
                return Some(self.span_reason(rate, &span, from));
            }
        }
        None
    }

    /// Whether `rate` over `t` is above its threshold with `fresh_span_confidence`.
    fn clears_with_confidence(&self, rate: Rate, t: &WindowTotals) -> bool {
        if planted(Plant::TripWithoutConfidence) {
            return self.whole_hit(rate, t);
        }
        self.policy
            .fresh_span_confidence
            .clears(rate.bad(t), t.calls, self.threshold(rate))
    }

    fn threshold(&self, rate: Rate) -> u32 {
        match rate {
            Rate::Failure => self.policy.failure_rate_threshold,
            Rate::Slow => self.policy.slow_call_rate_threshold,
        }
    }

    fn whole_hit(&self, rate: Rate, t: &WindowTotals) -> bool {
        u128::from(rate.bad(t)) * 100 >= u128::from(self.threshold(rate)) * u128::from(t.calls)
    }

    /// Fleet mode: the instances with `rate`'s bad calls at or after position `since`, if
    /// there are enough of them (`Some(0)` in local mode, where the rule does not apply).
    fn enough_instances(&self, rate: Rate, since: u64) -> Option<usize> {
        if self.mode == TripMode::Local {
            return Some(0);
        }
        let (mut live, mut bad) = (0usize, 0usize);
        for m in self.instances.values() {
            live += 1;
            let last_bad_next = match rate {
                Rate::Failure => m.last_failure_next,
                Rate::Slow => m.last_slow_next,
            };
            bad += usize::from(last_bad_next > since);
        }
        let min_instances = self.policy.min_instances as usize;
        let required = if planted(Plant::TripIgnoresMinInstances) {
            1
        } else {
            min_instances.min(live).max(min_instances.min(2))
        };
        (bad >= required).then_some(bad)
    }

    fn instances_text(&self, from: usize) -> String {
        match self.mode {
            TripMode::Local => String::new(),
            TripMode::Fleet => format!(" from {from} instances"),
        }
    }

    fn whole_reason(&self, rate: Rate, t: &WindowTotals, from: usize) -> String {
        format!(
            "{} {}% >= {}% over {} calls{}",
            rate.name(),
            percent(rate.bad(t), t.calls),
            self.threshold(rate),
            t.calls,
            self.instances_text(from)
        )
    }

    /// `failure_rate 96% (lower bound 81% ≥ 50%)`: a rate that cleared the confidence bound.
    fn bounded_rate_text(&self, rate: Rate, t: &WindowTotals) -> String {
        let bound = self
            .policy
            .fresh_span_confidence
            .lower_bound(rate.bad(t), t.calls);
        // The decision is the exact integer test; the printed bound (f64, floored) never
        // shows less than the threshold it cleared.
        let bound_percent = ((bound * 100.0) as u64).max(u64::from(self.threshold(rate)));
        format!(
            "{} {}% (lower bound {}% ≥ {}%)",
            rate.name(),
            percent(rate.bad(t), t.calls),
            bound_percent,
            self.threshold(rate),
        )
    }

    fn span_reason(&self, rate: Rate, span: &FreshSpan, from: usize) -> String {
        let t = &span.totals;
        format!(
            "{} over the newest {} calls ({}){}",
            self.bounded_rate_text(rate, t),
            t.calls,
            seconds(span.duration_ms),
            self.instances_text(from)
        )
    }

    fn cold_reason(&self, rate: Rate, t: &WindowTotals, from: usize) -> String {
        format!(
            "{} over {} calls (window not yet full){}",
            self.bounded_rate_text(rate, t),
            t.calls,
            self.instances_text(from)
        )
    }
}
