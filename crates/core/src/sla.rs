//! SLA aggregates: hourly buckets per breaker and per scope, open episodes, reports.
//!
//! Per breaker, each UTC hour keeps calls, failures, slow, rejected, a [`LatencySketch`] and
//! the milliseconds spent in each [`BreakerState`]; per scope, the milliseconds in each
//! [`Tier`]. Reports sum the hours that overlap the window, so their resolution is one hour
//! (a 24 h report may include up to one extra partial hour at its start).
//!
//! Why time is accounted lazily: attributing the elapsed time to every breaker on every
//! applied command made one operator write cost O(fleet size) on every replica. Instead each
//! ledger remembers up to when it is accounted (`accounted_ms`) and the state (or tier) it has
//! been in since; the time is split into hours only when the ledger is touched: just before
//! a state change and before a delta is recorded. Hours older than `sla_retention_ms` are
//! dropped at those touches too. A report adds the unaccounted part arithmetically without
//! mutating anything: up to the state's last apply it is split into hours exactly as an
//! eager pass would have, and the time after the last apply (up to the report's `now_ms`)
//! is attributed to the current state. Hours an eager pass would already have dropped are
//! left out, so a report reads the same numbers as if every apply had accounted every ledger.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

pub use crate::sla_window::month_start_ms;
use crate::{BreakerKey, BreakerState, LatencySketch, SlaWindow, Slo, Tier};

/// One hour in ms.
pub const HOUR_MS: u64 = 3_600_000;
/// One day in ms.
pub const DAY_MS: u64 = 86_400_000;
/// Open episodes kept per breaker.
pub const OPEN_EPISODES_MAX: usize = 1_000;

/// A period during which the breaker rejected calls (OPEN, HALF_OPEN or FORCED_OPEN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEpisode {
    /// When it started.
    pub opened_at_ms: u64,
    /// When it ended; `None` while ongoing.
    pub closed_at_ms: Option<u64>,
    /// Its length so far, ms.
    pub duration_ms: u64,
}

/// The objectives a report is checked against, by name: the `objective` of an
/// [`SlaBreach`] and the `objective` label of the server's SLA metrics.
pub const SLA_OBJECTIVES: [&str; 4] = [
    OBJECTIVE_AVAILABILITY,
    OBJECTIVE_ERROR_RATE,
    OBJECTIVE_P95_LATENCY,
    OBJECTIVE_TIME_DEGRADED,
];
const OBJECTIVE_AVAILABILITY: &str = "availability";
const OBJECTIVE_ERROR_RATE: &str = "error_rate";
const OBJECTIVE_P95_LATENCY: &str = "p95_latency";
const OBJECTIVE_TIME_DEGRADED: &str = "time_degraded";

/// An objective a report missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaBreach {
    /// `availability`, `error_rate`, `p95_latency` or `time_degraded`.
    pub objective: String,
    /// The objective, e.g. `>= 99.9%`.
    pub target: String,
    /// The measured value, e.g. `98.500%`.
    pub actual: String,
}

/// An SLA report for one breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaReport {
    /// The breaker.
    pub key: BreakerKey,
    /// The window.
    pub window: SlaWindow,
    /// Window start.
    pub from_ms: u64,
    /// Window end (the report's now).
    pub to_ms: u64,
    /// Completed calls.
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Slow calls.
    pub slow: u64,
    /// Calls rejected by an open breaker (not in `calls`).
    pub rejected: u64,
    /// `(calls - failures) / calls`, percent; 100 with no calls.
    pub availability_percent: f64,
    /// `failures / calls`, percent; 0 with no calls.
    pub error_rate_percent: f64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
    /// Open episodes overlapping the window.
    pub open_episodes: Vec<OpenEpisode>,
    /// Ms in each breaker state (`CLOSED`, ...), non-zero entries only.
    pub time_in_state_ms: BTreeMap<String, u64>,
    /// Ms in each tier of the key's scope (`FULL`, ...), non-zero entries only.
    pub time_in_tier_ms: BTreeMap<String, u64>,
    /// Ms the scope spent worse than FULL.
    pub time_degraded_ms: u64,
    /// Last time a delta reported a successful call.
    pub last_success_ms: Option<u64>,
    /// `to_ms - last_success_ms`.
    pub time_since_last_success_ms: Option<u64>,
    /// Objectives missed.
    pub breaches: Vec<SlaBreach>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BreakerHour {
    hour_start_ms: u64,
    calls: u64,
    failures: u64,
    slow: u64,
    rejected: u64,
    latency: LatencySketch,
    state_ms: [u64; 7],
}

/// Per-breaker SLA history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerLedger {
    hours: VecDeque<BreakerHour>,
    episodes: VecDeque<OpenEpisode>,
    last_success_ms: Option<u64>,
    /// `hours` hold the time in state up to here; the time since is in `state`.
    accounted_ms: u64,
    /// The breaker's state since `accounted_ms`.
    state: BreakerState,
}

impl Default for BreakerLedger {
    /// A CLOSED ledger accounted from the epoch; the state machine uses
    /// [`BreakerLedger::starting`].
    fn default() -> Self {
        Self::starting(0)
    }
}

fn hour_floor(ms: u64) -> u64 {
    ms - ms % HOUR_MS
}

/// The earliest time still worth accounting at `now_ms`: the start of the oldest hour not
/// yet dropped. Time before it lies in hours retention drops, so skipping it changes nothing
/// a report can read.
fn retained_from_ms(now_ms: u64, retention_ms: u64) -> u64 {
    hour_floor(now_ms.saturating_sub(retention_ms))
}

/// Whether an hour survives retention at `accounted_ms` (see [`BreakerLedger::prune`]).
fn retained(hour_start_ms: u64, accounted_ms: u64, retention_ms: u64) -> bool {
    hour_start_ms + HOUR_MS > accounted_ms.saturating_sub(retention_ms)
}

/// `[from_ms, to_ms)` split at hour boundaries: `(hour start, ms in that hour)`.
fn hour_spans(from_ms: u64, to_ms: u64) -> impl Iterator<Item = (u64, u64)> {
    let mut t = from_ms;
    std::iter::from_fn(move || {
        if t >= to_ms {
            return None;
        }
        let start = hour_floor(t);
        let end = (start + HOUR_MS).min(to_ms);
        let span = (start, end - t);
        t = end;
        Some(span)
    })
}

impl BreakerLedger {
    /// An empty ledger of a breaker created CLOSED at `now_ms`.
    pub(crate) fn starting(now_ms: u64) -> Self {
        Self {
            hours: VecDeque::new(),
            episodes: VecDeque::new(),
            last_success_ms: None,
            accounted_ms: now_ms,
            state: BreakerState::Closed,
        }
    }

    /// Accounts the time since `accounted_ms` up to `now_ms` in the current state, then drops
    /// hours past retention. Work: the hours elapsed since the last touch, at most the
    /// retention's.
    pub(crate) fn catch_up(&mut self, now_ms: u64, retention_ms: u64) {
        if now_ms > self.accounted_ms {
            let from = self
                .accounted_ms
                .max(retained_from_ms(now_ms, retention_ms));
            self.account(from, now_ms, self.state);
            self.accounted_ms = now_ms;
        }
        self.prune(now_ms, retention_ms);
    }

    /// The not-yet-accounted time up to `until_ms` as `(hour start, ms)` in [`Self::state`],
    /// exactly as [`Self::catch_up`] would split it.
    fn unaccounted(&self, until_ms: u64, retention_ms: u64) -> impl Iterator<Item = (u64, u64)> {
        let from = self
            .accounted_ms
            .max(retained_from_ms(until_ms, retention_ms));
        hour_spans(from, until_ms)
    }

    /// The state the ledger is accounting time in.
    #[cfg(test)]
    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    fn hour_mut(&mut self, at_ms: u64) -> &mut BreakerHour {
        let start = hour_floor(at_ms);
        let fresh = !matches!(self.hours.back(), Some(h) if h.hour_start_ms >= start);
        if fresh {
            self.hours.push_back(BreakerHour {
                hour_start_ms: start,
                calls: 0,
                failures: 0,
                slow: 0,
                rejected: 0,
                latency: LatencySketch::default(),
                state_ms: [0; 7],
            });
        }
        // Time never goes backwards in the state and every write catches up first (hours are
        // appended in order), so the last hour is the current one.
        let last = self.hours.len() - 1;
        debug_assert_eq!(
            self.hours[last].hour_start_ms, start,
            "hours are written in order"
        );
        &mut self.hours[last]
    }

    /// Adds a delta's counters at `now_ms`. Call [`Self::catch_up`] to `now_ms` first, so
    /// the hours stay in order.
    pub(crate) fn record(
        &mut self,
        now_ms: u64,
        calls: u64,
        failures: u64,
        slow: u64,
        rejected: u64,
        latency: &LatencySketch,
    ) {
        debug_assert!(self.accounted_ms >= now_ms, "record after catch_up");
        let hour = self.hour_mut(now_ms);
        hour.calls += calls;
        hour.failures += failures;
        hour.slow += slow;
        hour.rejected += rejected;
        hour.latency.merge(latency);
        if calls > failures {
            self.last_success_ms = Some(now_ms);
        }
    }

    /// Attributes `[from_ms, to_ms)` to `state`, split at hour boundaries.
    fn account(&mut self, from_ms: u64, to_ms: u64, state: BreakerState) {
        for (start, ms) in hour_spans(from_ms, to_ms) {
            self.hour_mut(start).state_ms[state.index()] += ms;
        }
    }

    /// Accounts the time in `from` up to `at_ms`, then opens or closes an episode.
    pub(crate) fn on_transition(
        &mut self,
        from: BreakerState,
        to: BreakerState,
        at_ms: u64,
        retention_ms: u64,
    ) {
        debug_assert_eq!(self.state, from, "the ledger follows every state change");
        self.catch_up(at_ms, retention_ms);
        self.state = to;
        if !from.is_open_like() && to.is_open_like() {
            self.episodes.push_back(OpenEpisode {
                opened_at_ms: at_ms,
                closed_at_ms: None,
                duration_ms: 0,
            });
            while self.episodes.len() > OPEN_EPISODES_MAX {
                self.episodes.pop_front();
            }
        } else if from.is_open_like()
            && !to.is_open_like()
            && let Some(e) = self.episodes.back_mut()
            && e.closed_at_ms.is_none()
        {
            e.closed_at_ms = Some(at_ms);
            e.duration_ms = at_ms - e.opened_at_ms;
        }
    }

    /// Drops hours entirely older than `retention_ms` before `now_ms`.
    fn prune(&mut self, now_ms: u64, retention_ms: u64) {
        while matches!(self.hours.front(), Some(h) if !retained(h.hour_start_ms, now_ms, retention_ms))
        {
            self.hours.pop_front();
        }
    }

    /// Last time a successful call was reported.
    pub fn last_success_ms(&self) -> Option<u64> {
        self.last_success_ms
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TierHour {
    hour_start_ms: u64,
    tier_ms: [u64; 5],
}

/// Per-scope tier history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeLedger {
    hours: VecDeque<TierHour>,
    /// `hours` hold the time in tier up to here; the time since is in `tier`.
    accounted_ms: u64,
    /// The scope's tier since `accounted_ms`.
    tier: Tier,
}

impl ScopeLedger {
    /// An empty ledger of a scope created FULL at `now_ms`.
    pub(crate) fn starting(now_ms: u64) -> Self {
        Self {
            hours: VecDeque::new(),
            accounted_ms: now_ms,
            tier: Tier::Full,
        }
    }

    /// Attributes `[from_ms, to_ms)` to `tier`, split at hour boundaries.
    fn account(&mut self, from_ms: u64, to_ms: u64, tier: Tier) {
        for (start, ms) in hour_spans(from_ms, to_ms) {
            if !matches!(self.hours.back(), Some(h) if h.hour_start_ms >= start) {
                self.hours.push_back(TierHour {
                    hour_start_ms: start,
                    tier_ms: [0; 5],
                });
            }
            let last = self.hours.len() - 1;
            self.hours[last].tier_ms[tier.index()] += ms;
        }
    }

    /// Accounts the time since `accounted_ms` up to `now_ms` in the current tier, then drops
    /// hours past retention.
    pub(crate) fn catch_up(&mut self, now_ms: u64, retention_ms: u64) {
        if now_ms > self.accounted_ms {
            let from = self
                .accounted_ms
                .max(retained_from_ms(now_ms, retention_ms));
            self.account(from, now_ms, self.tier);
            self.accounted_ms = now_ms;
        }
        while matches!(self.hours.front(), Some(h) if !retained(h.hour_start_ms, now_ms, retention_ms))
        {
            self.hours.pop_front();
        }
    }

    /// Accounts the time in `from` up to `at_ms`, then follows the scope into `to`.
    pub(crate) fn on_change(&mut self, from: Tier, to: Tier, at_ms: u64, retention_ms: u64) {
        debug_assert_eq!(self.tier, from, "the ledger follows every tier change");
        self.catch_up(at_ms, retention_ms);
        self.tier = to;
    }

    /// The tier the ledger is accounting time in.
    #[cfg(test)]
    pub(crate) fn tier(&self) -> Tier {
        self.tier
    }

    /// The not-yet-accounted time up to `until_ms` as `(hour start, ms)` in `tier`.
    fn unaccounted(&self, until_ms: u64, retention_ms: u64) -> impl Iterator<Item = (u64, u64)> {
        let from = self
            .accounted_ms
            .max(retained_from_ms(until_ms, retention_ms));
        hour_spans(from, until_ms)
    }
}

/// Everything a report needs besides the ledgers.
pub(crate) struct ReportInput<'a> {
    pub key: &'a BreakerKey,
    pub window: SlaWindow,
    pub now_ms: u64,
    /// The state's last apply: ledgers read as if accounted and pruned up to here.
    pub accounted_ms: u64,
    pub retention_ms: u64,
    pub state: BreakerState,
    pub tier: Tier,
    pub slo: &'a Slo,
}

fn overlaps(hour_start_ms: u64, from_ms: u64, to_ms: u64) -> bool {
    hour_start_ms + HOUR_MS > from_ms && hour_start_ms <= to_ms
}

fn percent_string(v: f64) -> String {
    format!("{v:.3}%")
}

/// Builds a report from a breaker's ledger and its scope's ledger.
pub(crate) fn build_report(
    input: &ReportInput<'_>,
    ledger: &BreakerLedger,
    scope: Option<&ScopeLedger>,
) -> SlaReport {
    let to_ms = input.now_ms;
    let from_ms = input.window.start_ms(to_ms);
    let (mut calls, mut failures, mut slow, mut rejected) = (0u64, 0u64, 0u64, 0u64);
    let mut latency = LatencySketch::default();
    let (accounted_ms, retention_ms) = (input.accounted_ms, input.retention_ms);
    let in_report =
        |start: u64| overlaps(start, from_ms, to_ms) && retained(start, accounted_ms, retention_ms);
    let mut state_ms = [0u64; 7];
    for h in ledger.hours.iter().filter(|h| in_report(h.hour_start_ms)) {
        calls += h.calls;
        failures += h.failures;
        slow += h.slow;
        rejected += h.rejected;
        latency.merge(&h.latency);
        for (acc, v) in state_ms.iter_mut().zip(h.state_ms) {
            *acc += v;
        }
    }
    for (start, ms) in ledger.unaccounted(accounted_ms, retention_ms) {
        if in_report(start) {
            state_ms[ledger.state.index()] += ms;
        }
    }
    let tail_from = accounted_ms.max(from_ms);
    if to_ms > tail_from {
        state_ms[input.state.index()] += to_ms - tail_from;
    }
    let mut tier_ms = [0u64; 5];
    if let Some(scope) = scope {
        for h in scope.hours.iter().filter(|h| in_report(h.hour_start_ms)) {
            for (acc, v) in tier_ms.iter_mut().zip(h.tier_ms) {
                *acc += v;
            }
        }
        for (start, ms) in scope.unaccounted(accounted_ms, retention_ms) {
            if in_report(start) {
                tier_ms[scope.tier.index()] += ms;
            }
        }
    }
    if to_ms > tail_from {
        tier_ms[input.tier.index()] += to_ms - tail_from;
    }
    let availability_percent = if calls == 0 {
        100.0
    } else {
        (calls - failures) as f64 * 100.0 / calls as f64
    };
    let error_rate_percent = if calls == 0 {
        0.0
    } else {
        failures as f64 * 100.0 / calls as f64
    };
    let q = |q: f64| latency.quantile_us(q).map(|us| us as f64 / 1000.0);
    let (p50_ms, p95_ms, p99_ms) = (q(0.50), q(0.95), q(0.99));
    let open_episodes = ledger
        .episodes
        .iter()
        .filter(|e| e.opened_at_ms <= to_ms && e.closed_at_ms.is_none_or(|c| c > from_ms))
        .map(|e| OpenEpisode {
            opened_at_ms: e.opened_at_ms,
            closed_at_ms: e.closed_at_ms,
            duration_ms: e
                .closed_at_ms
                .unwrap_or(to_ms)
                .saturating_sub(e.opened_at_ms),
        })
        .collect();
    let time_in_state_ms = BreakerState::ALL
        .iter()
        .zip(state_ms)
        .filter(|(_, v)| *v > 0)
        .map(|(s, v)| (s.as_str().to_owned(), v))
        .collect();
    let time_in_tier_ms = Tier::ALL
        .iter()
        .zip(tier_ms)
        .filter(|(_, v)| *v > 0)
        .map(|(t, v)| (t.as_str().to_owned(), v))
        .collect();
    let time_degraded_ms: u64 = tier_ms[1..].iter().sum();
    let slo = input.slo;
    let mut breaches = Vec::new();
    if calls > 0 && availability_percent < slo.availability_percent {
        breaches.push(SlaBreach {
            objective: OBJECTIVE_AVAILABILITY.into(),
            target: format!(">= {}%", slo.availability_percent),
            actual: percent_string(availability_percent),
        });
    }
    if calls > 0 && error_rate_percent > slo.error_rate_percent {
        breaches.push(SlaBreach {
            objective: OBJECTIVE_ERROR_RATE.into(),
            target: format!("<= {}%", slo.error_rate_percent),
            actual: percent_string(error_rate_percent),
        });
    }
    if let Some(p95) = p95_ms
        && p95 > slo.p95_latency_ms as f64
    {
        breaches.push(SlaBreach {
            objective: OBJECTIVE_P95_LATENCY.into(),
            target: format!("<= {} ms", slo.p95_latency_ms),
            actual: format!("{p95:.1} ms"),
        });
    }
    if time_degraded_ms > slo.degraded_max_ms {
        breaches.push(SlaBreach {
            objective: OBJECTIVE_TIME_DEGRADED.into(),
            target: format!("<= {} ms", slo.degraded_max_ms),
            actual: format!("{time_degraded_ms} ms"),
        });
    }
    SlaReport {
        key: input.key.clone(),
        window: input.window,
        from_ms,
        to_ms,
        calls,
        failures,
        slow,
        rejected,
        availability_percent,
        error_rate_percent,
        p50_ms,
        p95_ms,
        p99_ms,
        open_episodes,
        time_in_state_ms,
        time_in_tier_ms,
        time_degraded_ms,
        last_success_ms: ledger.last_success_ms,
        time_since_last_success_ms: ledger.last_success_ms.map(|t| to_ms.saturating_sub(t)),
        breaches,
    }
}
