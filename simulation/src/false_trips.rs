//! False trips: a faster trip that fires on noise is worse than none. Each run is the fleet
//! comparison's world (3 nodes, the real node and SDK code on turmoil) with a dependency that
//! is *not* down, for a long stretch of simulated time, and counts the cluster breaker's
//! CLOSED -> OPEN transitions (fleet trips):
//!
//! - a noisy baseline: every call fails independently with a fixed chance (20 %, 35 %, 45 %);
//! - one sick instance: every call of instance 0 fails, the other instances' calls succeed.
//!
//! [`run_default`] measures the DESIGN defaults at 50 instances × 5 calls/s for one simulated
//! hour each; [`run_trade_off`] repeats the noise runs and the onset comparison for several
//! `fresh_span_confidence` levels, the table behind the default's choice.

use serde::Serialize;

use crate::comparison;
use crate::faults::{Fault, ScheduledFault};
use crate::fleet::FleetOptions;
use crate::run::{FleetTrip, run_scenario};
use crate::scenario::Scenario;
use switchyard_core::{Confidence, Policy};

/// Fleet size of every false-trip run.
pub const INSTANCES: u64 = 50;
/// Calls per second per instance.
pub const CALLS_PER_S: u64 = 5;
/// A progress line on stderr every this many simulated ms (an hour's run takes minutes).
const PROGRESS_EVERY_MS: u64 = 5 * 60_000;

/// What goes wrong with the dependency, short of an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Noise {
    /// Every call fails with this chance, percent.
    BaselinePercent(u64),
    /// Every call of instance 0 fails; the others succeed.
    OneSickInstance,
}

impl Noise {
    fn label(self) -> String {
        match self {
            Noise::BaselinePercent(p) => format!("independent failures at {p} %"),
            Noise::OneSickInstance => format!("1 of {INSTANCES} instances failing every call"),
        }
    }
}

/// One run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What the dependency did.
    pub noise: String,
    /// `fresh_span_confidence`, percent (0: off).
    pub confidence_percent: f64,
    /// Simulated minutes.
    pub minutes: u64,
    /// Fleet trips seen.
    pub fleet_trips: u64,
    /// The first trip, if any.
    pub first_trip: Option<FleetTrip>,
    /// Calls that failed (all of them noise).
    pub failed_calls: u64,
    /// Invariant violations in the run (must be none).
    pub violations: Vec<String>,
}

/// The scenario: `noise` for `minutes` of simulated time under `policy`.
pub fn scenario(noise: Noise, minutes: u64, policy: Policy) -> Scenario {
    let duration_ms = minutes * 60_000;
    let mut s = comparison::scenario(INSTANCES, CALLS_PER_S, Some(policy));
    s.profile.safety_ms = duration_ms;
    s.judge_trips = false;
    s.progress_every_ms = Some(PROGRESS_EVERY_MS);
    let fault = match noise {
        Noise::BaselinePercent(p) => Fault::DependencyNoisy {
            fail_per_mille: p * 10,
        },
        Noise::OneSickInstance => Fault::InstanceSick {
            instance: 0,
            alone: false,
        },
    };
    s.faults = vec![ScheduledFault {
        at_ms: 0,
        duration_ms,
        fault,
    }];
    s
}

/// Runs `noise` for `minutes` under `policy`.
pub fn measure(noise: Noise, minutes: u64, policy: Policy) -> Row {
    let confidence_percent = policy.fresh_span_confidence.percent();
    let report = run_scenario(
        &scenario(noise, minutes, policy),
        FleetOptions {
            local_only: false,
            ..FleetOptions::default()
        },
    );
    Row {
        noise: noise.label(),
        confidence_percent,
        minutes,
        fleet_trips: report.fleet_trips.len() as u64,
        first_trip: report.fleet_trips.first().cloned(),
        failed_calls: report.tally.failed,
        violations: report.violations.iter().map(ToString::to_string).collect(),
    }
}

/// The cases of [`run_default`].
pub const DEFAULT_CASES: [Noise; 3] = [
    Noise::BaselinePercent(20),
    Noise::BaselinePercent(35),
    Noise::OneSickInstance,
];

/// The DESIGN defaults, `minutes` each: baselines of 20 % and 35 %, one sick instance (or
/// only case `only` of [`DEFAULT_CASES`]). `progress` gets one line per run.
pub fn run_default(minutes: u64, only: Option<usize>, progress: impl Fn(String)) -> Vec<Row> {
    DEFAULT_CASES
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .map(|(_, noise)| {
            progress(format!(
                "false trips: {} for {minutes} simulated min",
                noise.label()
            ));
            measure(noise, minutes, Policy::default())
        })
        .collect()
}

/// One confidence level of the trade-off.
#[derive(Debug, Clone, Serialize)]
pub struct TradeOff {
    /// `fresh_span_confidence`, percent (0: off).
    pub confidence_percent: f64,
    /// Onset at 50 × 5 calls/s: failed calls coordinated / local-only.
    pub onset: comparison::Row,
    /// Fleet trips over the noise runs at a 35 % baseline.
    pub baseline_35: Row,
    /// Fleet trips over the noise runs at a 45 % baseline.
    pub baseline_45: Row,
}

/// The confidence levels compared.
pub const TRADE_OFF_LEVELS: [f64; 6] = [0.0, 95.0, 99.0, 99.9, 99.99, 99.999];

/// For each level of [`TRADE_OFF_LEVELS`] (or only level `only`): the onset comparison at
/// 50 × 5 calls/s and the fleet trips over `minutes` at 35 % and 45 % baselines.
pub fn run_trade_off(
    minutes: u64,
    only: Option<usize>,
    progress: impl Fn(String),
) -> Vec<TradeOff> {
    TRADE_OFF_LEVELS
        .iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|o| o == *i))
        .map(|(_, &level)| {
            let policy = Policy {
                fresh_span_confidence: Confidence::from_percent(level)
                    .expect("a level of the table"),
                ..Policy::default()
            };
            progress(format!("trade-off at confidence {level} %: onset"));
            let onset = comparison::row(INSTANCES, CALLS_PER_S, "defaults", Some(policy.clone()));
            progress(format!(
                "trade-off at confidence {level} %: baselines for {minutes} simulated min"
            ));
            TradeOff {
                confidence_percent: level,
                onset,
                baseline_35: measure(Noise::BaselinePercent(35), minutes, policy.clone()),
                baseline_45: measure(Noise::BaselinePercent(45), minutes, policy),
            }
        })
        .collect()
}

/// The false-trip runs as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| dependency | fresh_span_confidence | simulated | failed calls | fleet trips | first trip |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} % | {} min | {} | {} | {} |\n",
            r.noise,
            r.confidence_percent,
            r.minutes,
            r.failed_calls,
            r.fleet_trips,
            r.first_trip.as_ref().map_or("-".into(), |t| format!(
                "{:.1} s: {}",
                t.at_ms as f64 / 1e3,
                t.reason
            )),
        ));
        for v in &r.violations {
            out.push_str(&format!("\nVIOLATION ({}): {v}\n", r.noise));
        }
    }
    out
}

/// The trade-off as a Markdown table.
pub fn trade_off_table(rows: &[TradeOff]) -> String {
    let mut out = String::from(
        "| fresh_span_confidence | failed calls at onset (coord / local) | ratio | time to fleet-wide open | fleet trips, 35 % baseline | fleet trips, 45 % baseline |\n|---|---|---|---|---|---|\n",
    );
    for t in rows {
        let o = &t.onset;
        let level = if t.confidence_percent == 0.0 {
            "off (whole window only)".to_string()
        } else {
            format!("{} %", t.confidence_percent)
        };
        out.push_str(&format!(
            "| {level} | {} / {} | {:.2} | {} | {} in {} min | {} in {} min |\n",
            o.coordinated.failed_calls_onset,
            o.local_only.failed_calls_onset,
            o.ratio(),
            comparison::seconds(o.coordinated.time_to_open_ms),
            t.baseline_35.fleet_trips,
            t.baseline_35.minutes,
            t.baseline_45.fleet_trips,
            t.baseline_45.minutes,
        ));
    }
    out
}
