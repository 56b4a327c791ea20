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
use crate::cluster::{Cluster, node_host};
use crate::dependency::{CallTally, Dependency, Health};
use crate::faults::{Fault, ScheduledFault};
use crate::fleet::{Fleet, FleetOptions, instance_host};
use crate::invariants::{NodeView, Violation};
use crate::scenario::{Profile, Scenario};

/// How to run a seed.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Durations and fleet sizes.
    pub profile: Profile,
    /// Fleet behaviour (including the planted bug).
    pub fleet: FleetOptions,
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
    /// Applied indexes whose state digests were compared.
    pub digests_compared: usize,
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
fn fleet_trips(cluster: &Cluster) -> Vec<FleetTrip> {
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

/// Directed link cuts, counted so overlapping faults undo cleanly.
#[derive(Debug, Default)]
struct Links {
    cuts: BTreeMap<(String, String), u32>,
}

impl Links {
    fn cut(&mut self, sim: &mut turmoil::Sim<'_>, from: &str, to: &str) {
        let n = self.cuts.entry((from.into(), to.into())).or_default();
        *n += 1;
        if *n == 1 {
            sim.partition_oneway(from, to);
        }
    }

    fn uncut(&mut self, sim: &mut turmoil::Sim<'_>, from: &str, to: &str) {
        let key = (from.to_string(), to.to_string());
        if let Some(n) = self.cuts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.cuts.remove(&key);
                sim.repair_oneway(from, to);
            }
        }
    }
}

/// A fault in force and what undoes it.
#[derive(Debug)]
struct Active {
    ends_at_ms: u64,
    undo: Undo,
}

#[derive(Debug)]
enum Undo {
    Links(Vec<(String, String)>),
    Restart(u64),
    Latency,
    MessageLoss,
    Dependency,
    Sick,
    Nothing,
}

struct World<'a> {
    sim: turmoil::Sim<'a>,
    scenario: Scenario,
    cluster: Cluster,
    dependency: Dependency,
    links: Links,
    crashed: BTreeMap<u64, u32>,
    active: Vec<Active>,
}

impl World<'_> {
    fn apply(&mut self, now_ms: u64, scheduled: &ScheduledFault, trace: &mut crate::trace::Trace) {
        let ends_at_ms = now_ms + scheduled.duration_ms;
        let undo = match &scheduled.fault {
            Fault::PartitionNodes { a, b, one_way } => {
                let mut cut = vec![(node_host(*a), node_host(*b))];
                if !one_way {
                    cut.push((node_host(*b), node_host(*a)));
                }
                self.cut_all(&cut);
                Undo::Links(cut)
            }
            Fault::IsolateLeader => {
                let leader = self
                    .cluster
                    .live()
                    .values()
                    .map(NodeView::of)
                    .filter(|v| v.state == openraft::ServerState::Leader)
                    .max_by_key(|v| v.term)
                    .map(|v| v.id);
                match leader {
                    Some(leader) => {
                        trace.line(now_ms, format_args!("isolating leader node{leader}"));
                        let mut cut = Vec::new();
                        for other in (1..=self.scenario.nodes).filter(|n| *n != leader) {
                            cut.push((node_host(leader), node_host(other)));
                            cut.push((node_host(other), node_host(leader)));
                        }
                        self.cut_all(&cut);
                        Undo::Links(cut)
                    }
                    None => Undo::Nothing,
                }
            }
            Fault::PartitionFleet {
                first,
                last,
                node,
                one_way,
            } => {
                let mut cut = Vec::new();
                for i in *first..=*last {
                    cut.push((node_host(*node), instance_host(i)));
                    if !one_way {
                        cut.push((instance_host(i), node_host(*node)));
                    }
                }
                self.cut_all(&cut);
                Undo::Links(cut)
            }
            Fault::CrashNode { node } => {
                let n = self.crashed.entry(*node).or_default();
                *n += 1;
                if *n == 1 {
                    self.cluster.forget(*node);
                    self.power_off(*node);
                    self.cluster.disks[node].crash();
                }
                Undo::Restart(*node)
            }
            Fault::Latency { max_ms } => {
                self.sim
                    .set_max_message_latency(Duration::from_millis(*max_ms));
                Undo::Latency
            }
            Fault::MessageLoss { fail_per_mille } => {
                self.sim.set_fail_rate(*fail_per_mille as f64 / 1_000.0);
                Undo::MessageLoss
            }
            Fault::DependencyDown => {
                self.dependency.set_health(Health::Down);
                Undo::Dependency
            }
            Fault::DependencySlow { latency_ms } => {
                self.dependency.set_health(Health::Slow(*latency_ms));
                Undo::Dependency
            }
            Fault::DependencyNoisy { fail_per_mille } => {
                self.dependency.set_health(Health::Noisy(*fail_per_mille));
                Undo::Dependency
            }
            Fault::InstanceSick { instance } => {
                self.dependency.set_sick_instance(Some(*instance));
                Undo::Sick
            }
        };
        self.active.push(Active { ends_at_ms, undo });
    }

    /// Stops node `node`'s host as a power loss does: its software dies, and the packets in
    /// flight to or from it are lost, as are the FIN and RST segments turmoil would send for
    /// its sockets as they are dropped. Peers learn of the crash when they next send to it.
    ///
    /// Why every link of the host is cut, both ways, while it stops (besides fidelity to a
    /// power loss): tokio drops a stopped runtime's tasks in an order set by process-wide
    /// task ids, so the order of those segments, and of the simulated network's random draws
    /// for them, would depend on what else the process had run, and a seed run beside or
    /// after others would not replay. On a link cut both ways a segment is dropped whatever
    /// the draw, and the draws are as many in any order.
    fn power_off(&mut self, node: u64) {
        let host = node_host(node);
        let others: Vec<String> = (1..=self.scenario.nodes)
            .filter(|n| *n != node)
            .map(node_host)
            .chain((0..self.scenario.instances).map(instance_host))
            .collect();
        let silenced: Vec<(String, String)> = others
            .iter()
            .flat_map(|other| [(host.clone(), other.clone()), (other.clone(), host.clone())])
            .collect();
        self.cut_all(&silenced);
        self.sim.crash(host);
        for (from, to) in &silenced {
            self.links.uncut(&mut self.sim, from, to);
        }
    }

    fn cut_all(&mut self, cut: &[(String, String)]) {
        for (from, to) in cut {
            self.links.cut(&mut self.sim, from, to);
        }
    }

    fn undo(&mut self, undo: Undo) {
        match undo {
            Undo::Links(cut) => {
                for (from, to) in cut {
                    self.links.uncut(&mut self.sim, &from, &to);
                }
            }
            Undo::Restart(node) => {
                let n = self.crashed.entry(node).or_default();
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.crashed.remove(&node);
                    self.sim.bounce(node_host(node));
                }
            }
            Undo::Latency => {
                if !self.active.iter().any(|a| matches!(a.undo, Undo::Latency)) {
                    self.sim.set_max_message_latency(Duration::from_millis(
                        self.scenario.latency_max_ms,
                    ));
                }
            }
            Undo::MessageLoss => {
                if !self
                    .active
                    .iter()
                    .any(|a| matches!(a.undo, Undo::MessageLoss))
                {
                    self.sim.set_fail_rate(0.0);
                }
            }
            Undo::Dependency => {
                if !self
                    .active
                    .iter()
                    .any(|a| matches!(a.undo, Undo::Dependency))
                {
                    self.dependency.set_health(Health::Healthy);
                }
            }
            Undo::Sick => self.dependency.set_sick_instance(None),
            Undo::Nothing => {}
        }
    }

    fn undo_due(&mut self, now_ms: u64, all: bool) {
        loop {
            let Some(pos) = self
                .active
                .iter()
                .position(|a| all || a.ends_at_ms <= now_ms)
            else {
                return;
            };
            let active = self.active.remove(pos);
            self.undo(active.undo);
        }
    }
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
    let cluster = Cluster::new(scenario.nodes);
    let dependency = Dependency::new(scenario.dependency_latency_ms, scenario.seed);
    let fleet = Fleet::new(scenario.instances);
    let mut world = World {
        sim,
        scenario: scenario.clone(),
        cluster: cluster.clone(),
        dependency: dependency.clone(),
        links: Links::default(),
        crashed: BTreeMap::new(),
        active: Vec::new(),
    };
    if !fleet_options.local_only {
        for id in 1..=scenario.nodes {
            cluster.add_host(&mut world.sim, scenario, id);
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
            world.apply(now_ms, f, &mut checker.trace);
        }
        if !healed && now_ms >= heal_at_ms {
            healed = true;
            world.undo_due(now_ms, true);
            checker.trace.controlled(now_ms, "heal");
        } else {
            world.undo_due(now_ms, false);
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
        tally: dependency.tally(),
        fleet_open_at_ms,
        fleet_closed_at_ms,
        schedule_digest: checker.trace.controlled_digest(),
        failed_per_s: dependency.failed_per_s(),
        probes_per_s: dependency.probes_per_s(),
        fleet_trips: fleet_trips(&cluster),
    }
}
