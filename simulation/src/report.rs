//! The CLI's outputs: progress lines, the summary table and its JSON form.

use std::time::Duration;

use serde::Serialize;

use crate::run::RunReport;

/// The JSON summary of a batch of seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// First seed.
    pub start: u64,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds whose invariants all held.
    pub passed: u64,
    /// Failed seeds with their violations and the command that reproduces each.
    pub failures: Vec<Failure>,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Seeds per wall-clock second.
    pub seeds_per_s: f64,
    /// Simulated seconds in total.
    pub simulated_s: f64,
}

/// One failed seed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What broke.
    pub violations: Vec<String>,
    /// The exact command that replays it.
    pub reproduce: String,
}

/// The command that replays `seed`.
pub fn reproduce_command(seed: u64) -> String {
    format!("cargo run -p switchyard-simulation --release -- --reproduce {seed}")
}

impl Summary {
    /// Summarizes `reports` run in `wall`.
    pub fn new(start: u64, reports: &[RunReport], wall: Duration) -> Self {
        let failures: Vec<Failure> = reports
            .iter()
            .filter(|r| !r.passed())
            .map(|r| Failure {
                seed: r.seed,
                violations: r.violations.iter().map(ToString::to_string).collect(),
                reproduce: reproduce_command(r.seed),
            })
            .collect();
        let wall_s = wall.as_secs_f64();
        Self {
            start,
            seeds: reports.len() as u64,
            passed: reports.iter().filter(|r| r.passed()).count() as u64,
            failures,
            wall_s,
            seeds_per_s: reports.len() as f64 / wall_s.max(1e-9),
            simulated_s: reports
                .iter()
                .map(|r| r.simulated_ms as f64 / 1_000.0)
                .sum(),
        }
    }

    /// The human-readable table.
    pub fn table(&self, reports: &[RunReport]) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:>20}  {:>6}  {:>7}  {:>9}  {:>8}  {:>10}  {:>8}  {:<18}\n",
            "seed", "result", "leaders", "committed", "digests", "calls", "probes", "trace digest"
        ));
        for r in reports {
            out.push_str(&format!(
                "{:>20}  {:>6}  {:>7}  {:>9}  {:>8}  {:>10}  {:>8}  {:016x}\n",
                r.seed,
                if r.passed() { "ok" } else { "FAIL" },
                r.leaders_seen,
                r.committed_max,
                r.digests_compared,
                r.tally.normal + r.tally.cluster_probes + r.tally.local_probes,
                r.tally.cluster_probes,
                r.trace_digest
            ));
        }
        out.push_str(&format!(
            "\n{} of {} seeds passed in {:.1} s ({:.2} seeds/s, {:.0} simulated s)\n",
            self.passed, self.seeds, self.wall_s, self.seeds_per_s, self.simulated_s
        ));
        for f in &self.failures {
            out.push_str(&format!("\nseed {} FAILED:\n", f.seed));
            for v in &f.violations {
                out.push_str(&format!("  {v}\n"));
            }
            out.push_str(&format!("  reproduce: {}\n", f.reproduce));
        }
        out
    }
}
