//! [`run_seed`]: one whole run: build the world from the scenario, step it, apply and heal
//! faults on schedule, check every invariant, and report.
//!
//! ```text
//!   0 ──── safety phase: faults ────> heal ── liveness: leader? fleet converged? ──> dependency dies ──> end
//!                                      │        (LEADER_BOUND_MS / CONVERGENCE_BOUND_MS)   (DEAD_DEPENDENCY_BOUND_MS)
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use switchyard_sdk::Admission;
use switchyard_store::RaftRuntime;

use crate::checker::{Checker, DEPENDENCY_DIES_AFTER_HEAL_MS};
use crate::clock::EPOCH_MS;
use crate::cluster::Cluster;
use crate::dependency::{CallTally, Dependency, Health};
use crate::faults::Fault;
use crate::fleet::{Cut, Fleet, FleetOptions};
use crate::invariants::{Evaluations, Violation};
use crate::plant::{PlantGuard, PlantedBug};
use crate::scenario::{Profile, Scenario};
use crate::world::{Links, World};

/// When [`PlantedBug::CorruptEntry`] strikes, simulated ms.
const CORRUPT_AT_MS: u64 = 3_000;

/// How to run a seed.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Durations and fleet sizes.
    pub profile: Profile,
    /// Fleet behaviour (including the planted bug, if any).
    pub fleet: FleetOptions,
}

impl RunOptions {
    /// The planted bug, if any.
    pub fn plant(&self) -> Option<PlantedBug> {
        self.fleet.plant
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            profile: Profile::STANDARD,
            fleet: FleetOptions::default(),
        }
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// The scenario, in one line.
    pub scenario: String,
    /// Every broken invariant (empty: the run passed).
    pub violations: Vec<Violation>,
    /// Digest of the whole trace; the same seed gives the same digest.
    pub trace_digest: u64,
    /// The trace.
    pub trace: String,
    /// Simulated ms run.
    pub simulated_ms: u64,
    /// Distinct Raft leader ids seen.
    pub leaders_seen: usize,
    /// Highest committed index seen.
    pub committed_max: u64,
    /// Distinct applied indexes whose state digests were read.
    pub digests_compared: usize,
    /// How many times each invariant evaluated something.
    pub evaluations: Evaluations,
    /// Calls that reached (or were kept from) the dependency.
    pub tally: CallTally,
    /// First time after the first outage began when no instance admitted ordinary calls.
    pub fleet_open_at_ms: Option<u64>,
    /// First time after that when every instance admitted ordinary calls again.
    pub fleet_closed_at_ms: Option<u64>,
    /// Digest of the controlled part of the trace (scenario, faults, healing, verdicts).
    pub schedule_digest: u64,
    /// Failed calls per simulated second.
    pub failed_per_s: Vec<(u64, u64)>,
    /// Trial calls per simulated second.
    pub probes_per_s: Vec<(u64, u64)>,
    /// Fleet trips: the cluster breaker's CLOSED -> OPEN transitions, from the audit log of
    /// the node that applied the most (0 in local-only runs).
    pub fleet_trips: Vec<FleetTrip>,
}

/// One CLOSED -> OPEN transition of the cluster's breaker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FleetTrip {
    /// Simulated ms since the run started.
    pub at_ms: u64,
    /// The transition's reason.
    pub reason: String,
}

/// The cluster breaker's trips, read from the live node that applied the most.
pub(crate) fn fleet_trips(cluster: &Cluster) -> Vec<FleetTrip> {
    let nodes = cluster.live();
    let Some(node) = nodes
        .values()
        .max_by_key(|n| n.state_machine().read().applied_index())
    else {
        return Vec::new();
    };
    let read = node.state_machine().read();
    read.core()
        .audit()
        .events()
        .filter(|e| {
            e.kind == switchyard_core::AuditKind::BreakerTransition
                && e.from == "CLOSED"
                && e.to == "OPEN"
        })
        .map(|e| FleetTrip {
            at_ms: e.at_ms.saturating_sub(EPOCH_MS),
            reason: e.reason.clone(),
        })
        .collect()
}

impl RunReport {
    /// Failed calls in simulated seconds `from_s..to_s`.
    pub fn failed_between_s(&self, from_s: u64, to_s: u64) -> u64 {
        sum_between(&self.failed_per_s, from_s, to_s)
    }

    /// Trial calls in simulated seconds `from_s..to_s`.
    pub fn probes_between_s(&self, from_s: u64, to_s: u64) -> u64 {
        sum_between(&self.probes_per_s, from_s, to_s)
    }

    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

fn sum_between(per_s: &[(u64, u64)], from_s: u64, to_s: u64) -> u64 {
    per_s
        .iter()
        .filter(|(s, _)| (from_s..to_s).contains(s))
        .map(|(_, n)| n)
        .sum()
}

/// Runs the scenario of `seed`.
pub fn run_seed(seed: u64, options: RunOptions) -> RunReport {
    run_scenario(&Scenario::from_seed(seed, options.profile), options.fleet)
}

/// Runs `scenario` with the fleet behaving as `fleet_options` says.
pub fn run_scenario(scenario: &Scenario, fleet_options: FleetOptions) -> RunReport {
    let step = scenario.step();
    let step_ms = step.as_millis() as u64;
    let unseeded_draws_before = RaftRuntime::unseeded_draws();
    let sim = turmoil::Builder::new()
        .rng_seed(scenario.seed)
        .tick_duration(step)
        .simulation_duration(Duration::from_millis(scenario.end_ms() + 60_000))
        .min_message_latency(Duration::from_millis(scenario.latency_min_ms))
        .max_message_latency(Duration::from_millis(scenario.latency_max_ms))
        .repair_rate(0.2)
        .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
        .tcp_capacity(4_096)
        .build();
    let cluster = Cluster::new(scenario.nodes, scenario.flush_latency_ms);
    let dependency = Dependency::new(scenario.dependency_latency_ms, scenario.seed);
    let fleet = Fleet::new(scenario.instances);
    // Dropped last: the planted bug and the SDK observer stay in force for the whole run.
    let _plant = PlantGuard::new(fleet_options.plant);
    fleet.observe_updates();
    let mut world = World {
        sim,
        scenario: scenario.clone(),
        cluster: cluster.clone(),
        fleet: fleet.clone(),
        dependency: dependency.clone(),
        plant: fleet_options.plant,
        links: Links::default(),
        crashed: BTreeMap::new(),
        active: Vec::new(),
    };
    if !fleet_options.local_only {
        for id in 1..=scenario.nodes {
            cluster.add_host(&mut world.sim, scenario, id, fleet_options.plant);
        }
    }
    for i in 0..scenario.instances {
        fleet.add_host(&mut world.sim, scenario, i, &dependency, fleet_options);
    }
    let mut checker = Checker::new(scenario);
    checker.trace.controlled(0, scenario.describe());
    let probe_permits = u64::from(scenario.effective_policy().probe_permits);
    let mut pending = scenario.faults.iter().peekable();
    let heal_at_ms = scenario.heal_at_ms();
    let dies_at_ms = heal_at_ms + DEPENDENCY_DIES_AFTER_HEAL_MS;
    let mut healed = false;
    let mut died = false;
    let mut corrupted = false;
    let first_outage_ms = scenario
        .faults
        .iter()
        .find(|f| f.fault == Fault::DependencyDown)
        .map(|f| f.at_ms);
    let mut fleet_open_at_ms = None;
    let mut fleet_closed_at_ms = None;
    let mut now_ms = 0;
    while now_ms < scenario.end_ms() {
        while let Some(f) = pending.next_if(|f| f.at_ms <= now_ms && now_ms < heal_at_ms) {
            checker.trace.controlled(
                now_ms,
                format_args!("fault {:?} for {} ms", f.fault, f.duration_ms),
            );
            world.apply(now_ms, f, &mut checker);
        }
        if !healed && now_ms >= heal_at_ms {
            healed = true;
            if let Some((cut_at_ms, _)) = scenario.fleet_cut() {
                checker.fleet_cut_heals(&fleet, cut_at_ms);
                fleet.set_cut(Cut::HealedAt(now_ms));
            }
            world.undo_due(now_ms, true, &mut checker);
            checker.trace.controlled(now_ms, "heal");
        } else {
            world.undo_due(now_ms, false, &mut checker);
        }
        if !corrupted
            && fleet_options.plant == Some(PlantedBug::CorruptEntry)
            && now_ms >= CORRUPT_AT_MS
        {
            corrupted = true;
            world.corrupt_entry();
        }
        if !died && !fleet_options.local_only && now_ms >= dies_at_ms {
            died = true;
            world.dependency.set_health(Health::Down);
            checker.trace.controlled(now_ms, "dependency dies");
        }
        if let Err(e) = world.sim.step() {
            checker.violations.push(Violation::HostFailed {
                error: e.to_string(),
            });
            break;
        }
        now_ms += step_ms;
        if let Some(every) = scenario.progress_every_ms
            && now_ms / every.max(1) != (now_ms - step_ms) / every.max(1)
        {
            eprintln!(
                "  {} of {} simulated min",
                now_ms / 60_000,
                scenario.end_ms() / 60_000
            );
        }
        checker.after_step(now_ms, &cluster, &fleet, &dependency, probe_permits);
        if first_outage_ms.is_some_and(|t| now_ms >= t) && fleet_closed_at_ms.is_none() {
            let views = fleet.views();
            if fleet_open_at_ms.is_none() {
                if views.iter().all(|v| v.admission != Admission::Allow) {
                    fleet_open_at_ms = Some(now_ms);
                }
            } else if views.iter().all(|v| v.admission == Admission::Allow) {
                fleet_closed_at_ms = Some(now_ms);
            }
        }
        if !checker.violations.is_empty() {
            break;
        }
    }
    if checker.violations.is_empty()
        && !fleet_options.local_only
        && scenario.profile.liveness_ms > 0
    {
        checker.finish(&dependency, died.then_some(dies_at_ms));
    }
    for v in &checker.violations {
        checker
            .trace
            .controlled(now_ms, format_args!("VIOLATION {v}"));
    }
    // Every node starts in a seed scope (see `Cluster::add_host`); a draw outside one would
    // make this trace impossible to replay, so it is a bug of the simulation itself.
    assert_eq!(
        RaftRuntime::unseeded_draws(),
        unseeded_draws_before,
        "seed {}: openraft drew from an unseeded random source",
        scenario.seed
    );
    let (leaders_seen, committed_max, digests_compared) = checker.stats();
    RunReport {
        seed: scenario.seed,
        scenario: scenario.describe(),
        violations: checker.violations.clone(),
        trace_digest: checker.trace.digest(),
        trace: checker.trace.text().to_string(),
        simulated_ms: now_ms,
        leaders_seen,
        committed_max,
        digests_compared,
        evaluations: checker.evaluations(),
        tally: dependency.tally(),
        fleet_open_at_ms,
        fleet_closed_at_ms,
        schedule_digest: checker.trace.controlled_digest(),
        failed_per_s: dependency.failed_per_s(),
        probes_per_s: dependency.probes_per_s(),
        fleet_trips: fleet_trips(&cluster),
    }
}
