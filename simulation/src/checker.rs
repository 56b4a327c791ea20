//! [`Checker`]: runs every invariant as the simulation goes, and writes the trace.
//!
//! Cheap checks (leaders, trial calls in flight) run after every step; checks that read
//! logs and digest states run every [`CHECK_INTERVAL_MS`] of simulated time; the trace gets
//! a checkpoint every [`CHECKPOINT_INTERVAL_MS`].

use std::collections::BTreeMap;

use openraft::ServerState;
use switchyard_core::{BreakerKey, BreakerState};

use crate::cluster::Cluster;
use crate::dependency::Dependency;
use crate::fleet::Fleet;
use crate::invariants::committed_durable::CommittedDurable;
use crate::invariants::dead_dependency::DeadDependency;
use crate::invariants::decision_index::DecisionIndex;
use crate::invariants::election_safety::ElectionSafety;
use crate::invariants::fail_static::{CLUSTER_RETURN_BOUND_MS, FailStatic};
use crate::invariants::leader_liveness::LeaderLiveness;
use crate::invariants::log_matching::LogMatching;
use crate::invariants::probe_limit::ProbeLimit;
use crate::invariants::sdk_convergence::SdkConvergence;
use crate::invariants::state_digest::StateDigest;
use crate::invariants::trip_evidence::{TripEvidence, lookback_ms};
use crate::invariants::{
    DurableLog, Evaluations, Invariant, NodeView, StoredLog, Violation, read_durable, read_log,
};
use crate::run::fleet_trips;
use crate::scenario::{BREAKER_KEY, Scenario};
use crate::trace::Trace;

/// Simulated ms between log and state checks.
pub const CHECK_INTERVAL_MS: u64 = 250;
/// Simulated ms between trace checkpoints.
pub const CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// After healing, a followed leader must exist within this bound.
pub const LEADER_BOUND_MS: u64 = 5_000;
/// After healing, every SDK must show the cluster's decision within this bound.
pub const CONVERGENCE_BOUND_MS: u64 = 10_000;
/// The dependency dies for good this long after healing.
pub const DEPENDENCY_DIES_AFTER_HEAL_MS: u64 = 11_000;
/// After it dies, ordinary calls must stop within this bound.
pub const DEAD_DEPENDENCY_BOUND_MS: u64 = 8_000;

/// Every invariant's state, plus the trace.
#[derive(Debug)]
pub struct Checker {
    key: BreakerKey,
    nodes: u64,
    heal_at_ms: u64,
    next_check_ms: u64,
    next_checkpoint_ms: u64,
    last_leaders: BTreeMap<u64, (u64, String)>,
    election_safety: ElectionSafety,
    log_matching: LogMatching,
    committed: CommittedDurable,
    state_digest: StateDigest,
    decision_index: DecisionIndex,
    probe_limit: ProbeLimit,
    leader_liveness: LeaderLiveness,
    sdk_convergence: SdkConvergence,
    dead_dependency: DeadDependency,
    fail_static: FailStatic,
    trip_evidence: TripEvidence,
    /// How far before a fleet trip its evidence may lie, ms (`None`: trips are not judged).
    trip_lookback_ms: Option<u64>,
    /// When the fleet cut heals and when its return is judged, if the run has one.
    fleet_cut: Option<(u64, u64)>,
    /// Everything broken so far.
    pub violations: Vec<Violation>,
    /// The run's trace.
    pub trace: Trace,
}

impl Checker {
    /// A checker for `scenario`.
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            key: BreakerKey::parse(BREAKER_KEY).expect("the simulation's key is valid"),
            nodes: scenario.nodes,
            heal_at_ms: scenario.heal_at_ms(),
            next_check_ms: CHECK_INTERVAL_MS,
            next_checkpoint_ms: CHECKPOINT_INTERVAL_MS,
            last_leaders: BTreeMap::new(),
            election_safety: ElectionSafety::default(),
            log_matching: LogMatching::default(),
            committed: CommittedDurable::default(),
            state_digest: StateDigest::default(),
            decision_index: DecisionIndex::default(),
            probe_limit: ProbeLimit::default(),
            leader_liveness: LeaderLiveness::default(),
            sdk_convergence: SdkConvergence::default(),
            dead_dependency: DeadDependency::default(),
            fail_static: FailStatic::default(),
            trip_evidence: TripEvidence::default(),
            trip_lookback_ms: scenario
                .judge_trips
                .then(|| lookback_ms(&scenario.effective_policy())),
            fleet_cut: scenario
                .fleet_cut()
                .map(|(_, until_ms)| (until_ms, until_ms + CLUSTER_RETURN_BOUND_MS)),
            violations: Vec::new(),
            trace: Trace::default(),
        }
    }

    /// After every step.
    pub fn after_step(
        &mut self,
        now_ms: u64,
        cluster: &Cluster,
        fleet: &Fleet,
        dependency: &Dependency,
        probe_permits: u64,
    ) {
        let live = cluster.live();
        let views: Vec<NodeView> = live.values().map(NodeView::of).collect();
        self.election_safety
            .observe(&views, now_ms, &mut self.violations);
        for v in views.iter().filter(|v| v.state == ServerState::Leader) {
            let seen = (v.term, v.vote_leader_id.clone());
            if self.last_leaders.get(&v.id) != Some(&seen) {
                self.trace.line(
                    now_ms,
                    format_args!(
                        "leader node{} term {} vote {}",
                        v.id, v.term, v.vote_leader_id
                    ),
                );
                self.last_leaders.insert(v.id, seen);
            }
        }
        self.probe_limit.observe_calls(
            dependency.cluster_probes_in_flight(),
            dependency.cluster_probes_in_flight_max(),
            probe_permits,
            &mut self.violations,
        );
        let healed = now_ms >= self.heal_at_ms;
        if healed && now_ms <= self.heal_at_ms + LEADER_BOUND_MS {
            self.leader_liveness
                .observe(&views, self.nodes as usize, now_ms);
        }
        if now_ms >= self.next_check_ms {
            self.next_check_ms += CHECK_INTERVAL_MS;
            self.check(now_ms, cluster, &live, &views, fleet, healed);
            self.check_trips(now_ms, cluster, dependency);
        }
        if now_ms >= self.next_checkpoint_ms {
            self.next_checkpoint_ms += CHECKPOINT_INTERVAL_MS;
            self.checkpoint(now_ms, &live, &views, fleet, dependency);
        }
    }

    fn check(
        &mut self,
        now_ms: u64,
        cluster: &Cluster,
        live: &BTreeMap<u64, switchyard_server::Node>,
        views: &[NodeView],
        fleet: &Fleet,
        healed: bool,
    ) {
        let logs: Vec<(u64, StoredLog)> = cluster
            .disks
            .iter()
            .map(|(id, disk)| (*id, read_log(disk)))
            .collect();
        self.log_matching
            .observe(&logs, now_ms, &mut self.violations);
        self.committed
            .observe(views, &logs, now_ms, &mut self.violations);
        for (id, disk) in &cluster.disks {
            self.committed
                .observe_durable(*id, &read_durable(disk), now_ms, &mut self.violations);
        }
        let mut readings = Vec::new();
        for (id, node) in live {
            let state = node.state_machine().read();
            readings.push((*id, state.applied_index(), state.core().digest()));
            if let Some(view) = state.core().breaker(&self.key) {
                self.probe_limit.observe_leases(
                    *id,
                    u64::from(view.probe_permits_in_use),
                    u64::from(view.policy.probe_permits),
                    now_ms,
                    &mut self.violations,
                );
            }
        }
        self.state_digest
            .observe(&readings, now_ms, &mut self.violations);
        let instances = fleet.views();
        self.decision_index
            .observe(&instances, &mut self.violations);
        self.fail_static
            .observe_calls(&instances, &mut self.violations);
        if let Some((_, judge_return_at_ms)) = self.fleet_cut
            && now_ms >= judge_return_at_ms
        {
            self.fleet_cut = None;
            self.fail_static
                .return_verdict(&instances, &mut self.violations);
        }
        if healed && now_ms <= self.heal_at_ms + CONVERGENCE_BOUND_MS {
            let decision = self.cluster_decision(live, views);
            self.sdk_convergence.observe(&instances, decision, now_ms);
        }
    }

    /// The trip rule's evidence: who had trouble lately, and the fleet trips so far.
    fn check_trips(&mut self, now_ms: u64, cluster: &Cluster, dependency: &Dependency) {
        let Some(lookback_ms) = self.trip_lookback_ms else {
            return;
        };
        self.trip_evidence
            .observe(dependency.trouble_since(now_ms.saturating_sub(lookback_ms)));
        self.trip_evidence.judge(
            &fleet_trips(cluster),
            |at_ms| dependency.trouble_since(at_ms.saturating_sub(lookback_ms)),
            &mut self.violations,
        );
    }

    /// The breaker's decision on the leader with the greatest term: `(state, updated_index)`.
    fn cluster_decision(
        &self,
        live: &BTreeMap<u64, switchyard_server::Node>,
        views: &[NodeView],
    ) -> Option<(BreakerState, u64)> {
        let leader = views
            .iter()
            .filter(|v| v.state == ServerState::Leader)
            .max_by_key(|v| v.term)?;
        let node = live.get(&leader.id)?;
        let state = node.state_machine().read();
        let view = state.core().breaker(&self.key)?;
        Some((view.state, view.updated_index))
    }

    fn checkpoint(
        &mut self,
        now_ms: u64,
        live: &BTreeMap<u64, switchyard_server::Node>,
        views: &[NodeView],
        fleet: &Fleet,
        dependency: &Dependency,
    ) {
        let mut line = String::from("nodes");
        for v in views {
            let digest = live
                .get(&v.id)
                .map_or(0, |n| n.state_machine().read().core().digest());
            let role = match v.state {
                ServerState::Leader => "L",
                ServerState::Candidate => "C",
                ServerState::Follower => "F",
                ServerState::Learner => "l",
                ServerState::Shutdown => "S",
            };
            line.push_str(&format!(
                " n{}:{role} t{} last{} c{} a{} d{digest:016x}",
                v.id, v.term, v.last_log_index, v.commit_index, v.applied_index
            ));
        }
        self.trace.line(now_ms, line);
        let instances = fleet.views();
        let mut by_view: BTreeMap<String, u64> = BTreeMap::new();
        for v in &instances {
            *by_view
                .entry(format!(
                    "{:?}/{:?}/{}",
                    v.mode, v.admission, v.decision_index
                ))
                .or_default() += 1;
        }
        let summary: Vec<String> = by_view.iter().map(|(k, n)| format!("{k}x{n}")).collect();
        self.trace
            .line(now_ms, format_args!("fleet {}", summary.join(" ")));
        let t = dependency.tally();
        self.trace.line(
            now_ms,
            format_args!(
                "dependency {:?} normal {} cluster_probes {} local_probes {} failed {} rejected {}",
                dependency.health(),
                t.normal,
                t.cluster_probes,
                t.local_probes,
                t.failed,
                t.rejected
            ),
        );
    }

    /// Node `node` has just crashed leaving `durable`; the leader counted `acknowledged` as
    /// flushed on it.
    pub fn crashed(&mut self, node: u64, acknowledged: u64, durable: &DurableLog, now_ms: u64) {
        self.committed
            .observe_crash(node, acknowledged, durable, now_ms, &mut self.violations);
    }

    /// Node `node` is about to restart from `durable`.
    pub fn restarting(&mut self, node: u64, durable: &DurableLog, now_ms: u64) {
        self.election_safety.restarting(node);
        self.committed
            .observe_durable(node, durable, now_ms, &mut self.violations);
    }

    /// The highest committed index seen.
    pub fn committed_max(&self) -> u64 {
        self.committed.committed_max()
    }

    /// The fleet's cut from every node (which began at `cut_at_ms`) heals now: judges the
    /// modes the SDKs went through.
    pub fn fleet_cut_heals(&mut self, fleet: &Fleet, cut_at_ms: u64) {
        self.fail_static.modes_verdict(
            &fleet.views(),
            cut_at_ms,
            crate::fleet::MODE_TIMERS,
            &mut self.violations,
        );
    }

    /// How many times each invariant evaluated something.
    pub fn evaluations(&self) -> Evaluations {
        let mut e = Evaluations::default();
        let (calls, modes, returns) = self.fail_static.evaluated();
        let (one_instance, noisy) = self.trip_evidence.evaluated();
        for (invariant, n) in [
            (Invariant::ElectionSafety, self.election_safety.evaluated()),
            (Invariant::LogMatching, self.log_matching.evaluated()),
            (Invariant::CommittedDurable, self.committed.evaluated()),
            (Invariant::StateDigest, self.state_digest.evaluated()),
            (Invariant::DecisionIndex, self.decision_index.evaluated()),
            (Invariant::ProbeLimit, self.probe_limit.evaluated()),
            (Invariant::LeaderLiveness, self.leader_liveness.evaluated()),
            (Invariant::SdkConvergence, self.sdk_convergence.evaluated()),
            (Invariant::DeadDependency, self.dead_dependency.evaluated()),
            (Invariant::CallLatency, calls),
            (Invariant::FailStaticModes, modes),
            (Invariant::ClusterReturn, returns),
            (Invariant::OneInstanceTrip, one_instance),
            (Invariant::NoisyBaselineTrip, noisy),
        ] {
            e.add(invariant, n);
        }
        e
    }

    /// At the end of the run: the liveness verdicts.
    pub fn finish(&mut self, dependency: &Dependency, died_at_ms: Option<u64>) {
        self.leader_liveness
            .verdict(LEADER_BOUND_MS, &mut self.violations);
        self.sdk_convergence
            .verdict(CONVERGENCE_BOUND_MS, &mut self.violations);
        if let Some(died_at_ms) = died_at_ms {
            self.dead_dependency.verdict(
                died_at_ms,
                dependency.last_normal_call_ms(),
                DEAD_DEPENDENCY_BOUND_MS,
                &mut self.violations,
            );
        }
    }

    /// Numbers for the summary: leader ids seen, highest committed index, digests compared.
    pub fn stats(&self) -> (usize, u64, usize) {
        (
            self.election_safety.leaders_seen(),
            self.committed.committed_max(),
            self.state_digest.indexes_seen(),
        )
    }

    /// When the healed cluster reached a followed leader and a converged fleet.
    pub fn liveness_times(&self) -> (Option<u64>, Option<u64>) {
        (
            self.leader_liveness.reached_at_ms,
            self.sdk_convergence.reached_at_ms,
        )
    }
}
