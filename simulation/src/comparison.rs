//! The fleet comparison: one seeded outage, run with coordinated breakers (the real SDK
//! against a 3-node cluster) and with every SDK in local-only mode (the same policy, the
//! DESIGN defaults), for fleets of 10 and 50 instances at 5, 20 and 100 calls/s each.
//!
//! ```text
//!   0 s        5 s                              30 s                          70 s
//!   healthy ── dependency down (onset) ───────── healthy again (recovery) ──── end
//! ```
//!
//! Reported per configuration: failed calls during the onset (the first 15 s of the
//! outage), trial calls during the recovery, the time from the outage until no instance
//! admits ordinary calls (fleet-wide open) and from the recovery until every instance
//! admits them again (close). With the defaults (`open_duration_ms` 30 s) the first
//! half-open comes about 30 s after the trip, so the run lasts long enough for one.

use serde::Serialize;

use crate::faults::{Fault, ScheduledFault};
use crate::fleet::FleetOptions;
use crate::run::run_scenario;
use crate::scenario::{Profile, Scenario};
use switchyard_core::{Policy, WindowSpec};

/// When the outage starts, ms.
pub const OUTAGE_AT_MS: u64 = 5_000;
/// How long the dependency is down, ms.
pub const OUTAGE_MS: u64 = 25_000;
/// The onset window counted for failed calls, ms.
pub const ONSET_MS: u64 = 15_000;
/// Simulated length of each run, ms.
pub const RUN_MS: u64 = 75_000;
/// The comparison's seed.
pub const SEED: u64 = 42;

/// One configuration, both ways.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The breaker policy, in words.
    pub policy: String,
    /// Instances.
    pub instances: u64,
    /// Calls per second per instance.
    pub calls_per_s: u64,
    /// The coordinated run.
    pub coordinated: Side,
    /// The local-only run.
    pub local_only: Side,
}

/// The measurements of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Failed calls in the first `ONSET_MS` of the outage.
    pub failed_calls_onset: u64,
    /// Trial calls (cluster or local probes) from the recovery to the end.
    pub probe_calls_recovery: u64,
    /// From the outage until no instance admitted ordinary calls, ms.
    pub time_to_open_ms: Option<u64>,
    /// From the recovery until every instance admitted them again, ms.
    pub time_to_close_ms: Option<u64>,
    /// Invariant violations in the run (must be none).
    pub violations: Vec<String>,
}

/// The policies compared: the DESIGN defaults (a 10 s time window, judged whole and on its
/// freshest span at 99.99 % confidence), and the defaults with a count-based window of the
/// last 100 calls.
///
/// Why the freshest span matters: with a time window already full of successes when the
/// outage starts, the whole window's failure rate crosses its threshold at the same moment in
/// the fleet window and in every instance's own window, so the whole window alone gives the
/// fleet no head start. Its freshest span (the newest `min_calls` calls) fills in a fraction
/// of a second for the fleet and in seconds for one instance: that is where per-instance
/// breakers pay "instances x threshold" failed calls and the fleet pays the threshold once.
pub fn policies() -> Vec<(String, Option<Policy>)> {
    vec![
        ("defaults (10 s time window)".into(), None),
        (
            "defaults, count window of 100 calls".into(),
            Some(Policy {
                window: WindowSpec::count(100),
                ..Policy::default()
            }),
        ),
    ]
}

/// The comparison scenario for `instances` × `calls_per_s` under `policy`.
pub fn scenario(instances: u64, calls_per_s: u64, policy: Option<Policy>) -> Scenario {
    let mut s = Scenario::from_seed(SEED, Profile::QUICK);
    s.profile = Profile {
        safety_ms: RUN_MS,
        liveness_ms: 0,
        fleet_min: instances,
        fleet_max: instances,
        faults_max: 0,
    };
    s.nodes = 3;
    s.instances = instances;
    s.calls_per_s = calls_per_s;
    s.heartbeat_interval_ms = 50;
    s.election_timeout_ms = vec![300, 400, 500];
    s.snapshot_every_entries = 1_000;
    s.policy = policy;
    s.faults = vec![ScheduledFault {
        at_ms: OUTAGE_AT_MS,
        duration_ms: OUTAGE_MS,
        fault: Fault::DependencyDown,
    }];
    s
}

fn measure(scenario: &Scenario, local_only: bool) -> Side {
    let report = run_scenario(
        scenario,
        FleetOptions {
            local_only,
            ..FleetOptions::default()
        },
    );
    let outage_s = OUTAGE_AT_MS / 1_000;
    let recovery_ms = OUTAGE_AT_MS + OUTAGE_MS;
    Side {
        failed_calls_onset: report.failed_between_s(outage_s, outage_s + ONSET_MS / 1_000),
        probe_calls_recovery: report.probes_between_s(recovery_ms / 1_000, RUN_MS / 1_000),
        time_to_open_ms: report.fleet_open_at_ms.map(|t| t - OUTAGE_AT_MS),
        time_to_close_ms: report
            .fleet_closed_at_ms
            .map(|t| t.saturating_sub(recovery_ms)),
        violations: report.violations.iter().map(ToString::to_string).collect(),
    }
}

impl Row {
    /// Failed calls at onset, coordinated / local-only.
    pub fn ratio(&self) -> f64 {
        self.coordinated.failed_calls_onset as f64
            / (self.local_only.failed_calls_onset as f64).max(1.0)
    }
}

/// One configuration, both ways.
pub fn row(instances: u64, calls_per_s: u64, name: &str, policy: Option<Policy>) -> Row {
    let s = scenario(instances, calls_per_s, policy);
    Row {
        policy: name.to_string(),
        instances,
        calls_per_s,
        coordinated: measure(&s, false),
        local_only: measure(&s, true),
    }
}

/// Runs every configuration; `progress` gets one line per run.
pub fn run_all(progress: impl Fn(String)) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, policy) in policies() {
        for instances in [10, 50] {
            for calls_per_s in [5, 20, 100] {
                progress(format!(
                    "fleet comparison ({name}): {instances} instances x {calls_per_s} calls/s"
                ));
                rows.push(row(instances, calls_per_s, &name, policy.clone()));
            }
        }
    }
    rows
}

/// `4.9 s`, or `never`.
pub fn seconds(v: Option<u64>) -> String {
    v.map_or("never".into(), |ms| format!("{:.1} s", ms as f64 / 1_000.0))
}

/// The comparison as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| policy | instances | calls/s each | failed calls at onset (coord / local) | ratio | probe calls in recovery (coord / local) | time to fleet-wide open (coord / local) | time to close (coord / local) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = r.ratio();
        out.push_str(&format!(
            "| {} | {} | {} | {} / {} | {:.2} | {} / {} | {} / {} | {} / {} |\n",
            r.policy,
            r.instances,
            r.calls_per_s,
            r.coordinated.failed_calls_onset,
            r.local_only.failed_calls_onset,
            ratio,
            r.coordinated.probe_calls_recovery,
            r.local_only.probe_calls_recovery,
            seconds(r.coordinated.time_to_open_ms),
            seconds(r.local_only.time_to_open_ms),
            seconds(r.coordinated.time_to_close_ms),
            seconds(r.local_only.time_to_close_ms),
        ));
    }
    for r in rows {
        for v in r
            .coordinated
            .violations
            .iter()
            .chain(&r.local_only.violations)
        {
            out.push_str(&format!(
                "\nVIOLATION ({} x {}): {v}\n",
                r.instances, r.calls_per_s
            ));
        }
    }
    out
}
