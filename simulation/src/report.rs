//! The CLI's outputs: progress lines, the summary table and its JSON form, the per-invariant
//! evaluation counts, and the command that reproduces a seed.

use std::time::Duration;

use serde::Serialize;

use crate::invariants::Invariant;
use crate::run::{RunOptions, RunReport};
use crate::scenario::Profile;

/// The JSON summary of a batch of seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// First seed.
    pub start: u64,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds whose invariants all held.
    pub passed: u64,
    /// The planted bug, if any.
    pub plant: Option<String>,
    /// Failed seeds with their violations and the command that reproduces each.
    pub failures: Vec<Failure>,
    /// Per invariant: how often it evaluated something, in how many seeds it never did, and
    /// how many seeds broke it.
    pub invariants: Vec<InvariantTotals>,
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

/// One invariant over a batch of seeds.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantTotals {
    /// Its name.
    pub invariant: &'static str,
    /// What one evaluation is.
    pub unit: &'static str,
    /// Evaluations over all seeds.
    pub evaluated: u64,
    /// Seeds in which it never evaluated anything (a pass there checked nothing).
    pub seeds_not_evaluated: u64,
    /// Seeds that broke it.
    pub seeds_violated: u64,
}

/// The command that replays `seed` run with `options`: the same profile of the build (the
/// simulation's `sim` profile, with debug assertions, as CI runs it), the same `--quick`, the
/// same `--plant`.
pub fn reproduce_command(seed: u64, options: &RunOptions) -> String {
    let mut command =
        format!("cargo run -p switchyard-simulation --profile sim -- --reproduce {seed}");
    if options.profile == Profile::QUICK {
        command.push_str(" --quick");
    }
    if let Some(plant) = options.plant() {
        command.push_str(&format!(" --plant {plant}"));
    }
    command
}

impl Summary {
    /// Summarizes `reports`, run with `options` in `wall`.
    pub fn new(start: u64, reports: &[RunReport], options: &RunOptions, wall: Duration) -> Self {
        let failures: Vec<Failure> = reports
            .iter()
            .filter(|r| !r.passed())
            .map(|r| Failure {
                seed: r.seed,
                violations: r.violations.iter().map(ToString::to_string).collect(),
                reproduce: reproduce_command(r.seed, options),
            })
            .collect();
        let invariants = Invariant::ALL
            .iter()
            .map(|i| InvariantTotals {
                invariant: i.name(),
                unit: i.unit(),
                evaluated: reports.iter().map(|r| r.evaluations.get(*i)).sum(),
                seeds_not_evaluated: reports
                    .iter()
                    .filter(|r| r.evaluations.get(*i) == 0)
                    .count() as u64,
                seeds_violated: reports
                    .iter()
                    .filter(|r| r.violations.iter().any(|v| v.invariant() == Some(*i)))
                    .count() as u64,
            })
            .collect();
        let wall_s = wall.as_secs_f64();
        Self {
            start,
            seeds: reports.len() as u64,
            passed: reports.iter().filter(|r| r.passed()).count() as u64,
            plant: options.plant().map(|p| p.name().to_string()),
            failures,
            invariants,
            wall_s,
            seeds_per_s: reports.len() as f64 / wall_s.max(1e-9),
            simulated_s: reports
                .iter()
                .map(|r| r.simulated_ms as f64 / 1_000.0)
                .sum(),
        }
    }

    /// Invariants that evaluated nothing in any seed of the batch.
    pub fn never_evaluated(&self) -> Vec<&'static str> {
        self.invariants
            .iter()
            .filter(|t| t.evaluated == 0)
            .map(|t| t.invariant)
            .collect()
    }

    /// The human-readable table.
    pub fn table(&self, reports: &[RunReport]) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:>20}  {:>6}  {:>7}  {:>9}  {:>8}  {:>10}  {:>8}  {:>9}  {:<18}\n",
            "seed",
            "result",
            "leaders",
            "committed",
            "digests",
            "calls",
            "probes",
            "unchecked",
            "trace digest"
        ));
        for r in reports {
            let unchecked = Invariant::ALL
                .iter()
                .filter(|i| r.evaluations.get(**i) == 0)
                .count();
            out.push_str(&format!(
                "{:>20}  {:>6}  {:>7}  {:>9}  {:>8}  {:>10}  {:>8}  {:>9}  {:016x}\n",
                r.seed,
                if r.passed() { "ok" } else { "FAIL" },
                r.leaders_seen,
                r.committed_max,
                r.evaluations.get(Invariant::StateDigest),
                r.tally.normal + r.tally.cluster_probes + r.tally.local_probes,
                r.tally.cluster_probes,
                unchecked,
                r.trace_digest
            ));
        }
        out.push_str(&format!(
            "\n{:<19}  {:>12}  {:>14}  {:>8}  {}\n",
            "invariant", "evaluations", "seeds_unchecked", "violated", "(one evaluation is)"
        ));
        for t in &self.invariants {
            out.push_str(&format!(
                "{:<19}  {:>12}  {:>14}  {:>8}  {}\n",
                t.invariant, t.evaluated, t.seeds_not_evaluated, t.seeds_violated, t.unit
            ));
        }
        out.push_str(&format!(
            "\n{} of {} seeds passed in {:.1} s ({:.2} seeds/s, {:.0} simulated s){}\n",
            self.passed,
            self.seeds,
            self.wall_s,
            self.seeds_per_s,
            self.simulated_s,
            self.plant
                .as_ref()
                .map_or(String::new(), |p| format!(", planted bug `{p}`"))
        ));
        let never = self.never_evaluated();
        if !never.is_empty() {
            out.push_str(&format!(
                "never evaluated in any seed (their passes checked nothing): {}\n",
                never.join(", ")
            ));
        }
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
