//! [`Scenario`]: everything a run does, derived from its seed before the run starts.
//!
//! Cluster size, Raft timeouts, fleet size and call rate, the breaker policy, and the
//! complete fault schedule of the safety phase are drawn here from one [`SimRng`], so a
//! seed names a run exactly and `--reproduce SEED` replays it.
//!
//! openraft's own random draws (election timeouts, the phase of its tick loop) come from
//! [`Scenario::raft_seed`] too: each node starts inside a seed scope of
//! `switchyard_store::RaftRuntime` (see [`crate::cluster`]).
//!
//! Why every node gets a *fixed*, distinct election timeout (`max = min + 1`): the pin dates
//! from when openraft drew its timeouts from an OS-seeded generator, and it still makes
//! which node campaigns first a visible part of the scenario (`election_timeouts_ms` in its
//! description) rather than the outcome of a draw. A seed-derived timeout per node breaks the
//! symmetry that randomization exists to break. Widening these to production-like ranges
//! would replay just as well now, but would change the run of every seed.

use std::time::Duration;

use switchyard_core::{Policy, WindowSpec};

use crate::faults::{Fault, ScheduledFault};
use crate::rng::SimRng;

/// The breaker every SDK guards its dependency with.
pub const BREAKER_KEY: &str = "app/dependency";

/// The [`SimRng`] stream of [`Scenario::raft_seed`] (the scenario itself draws from 0).
const RAFT_STREAM: u64 = 1;

/// How long and how big runs are; the CLI's default and the tests' quick profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Simulated length of the safety phase (faults), ms.
    pub safety_ms: u64,
    /// Simulated length of the liveness phase (healed), ms.
    pub liveness_ms: u64,
    /// Smallest fleet.
    pub fleet_min: u64,
    /// Largest fleet.
    pub fleet_max: u64,
    /// Faults scheduled in the safety phase, at most.
    pub faults_max: u64,
}

impl Profile {
    /// The CLI and CI profile: 10–50 instances, tens of simulated seconds.
    pub const STANDARD: Profile = Profile {
        safety_ms: 12_000,
        liveness_ms: 21_000,
        fleet_min: 10,
        fleet_max: 50,
        faults_max: 12,
    };

    /// A short profile for debug-build tests.
    pub const QUICK: Profile = Profile {
        safety_ms: 8_000,
        liveness_ms: 22_000,
        fleet_min: 10,
        fleet_max: 12,
        faults_max: 7,
    };
}

/// One run, fully determined by `seed` and the profile.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed everything below came from.
    pub seed: u64,
    /// The profile it was drawn with.
    pub profile: Profile,
    /// Server nodes (3 or 5).
    pub nodes: u64,
    /// SDK instances.
    pub instances: u64,
    /// Calls per second each instance makes.
    pub calls_per_s: u64,
    /// Raft heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Per node (index `id - 1`): its fixed election timeout.
    pub election_timeout_ms: Vec<u64>,
    /// Build a snapshot after this many entries.
    pub snapshot_every_entries: u64,
    /// Entries kept after a snapshot.
    pub log_entries_kept_after_snapshot: u64,
    /// Network latency bounds.
    pub latency_min_ms: u64,
    /// Network latency bounds.
    pub latency_max_ms: u64,
    /// The dependency's normal latency, ms.
    pub dependency_latency_ms: u64,
    /// How long a disk flush takes, ms: writes become durable (survive a crash) only then.
    pub flush_latency_ms: u64,
    /// The breaker policy the operator installs (`None`: the defaults, as in the fleet
    /// comparison).
    pub policy: Option<Policy>,
    /// Faults of the safety phase, by start time.
    pub faults: Vec<ScheduledFault>,
    /// Whether the trip-evidence invariants judge the fleet's trips (off in the false-trip
    /// measurement, which counts trips under noise rather than stopping at the first).
    pub judge_trips: bool,
    /// Where every node's openraft random draws come from (a stream of its own, so it moves
    /// nothing above; per node and incarnation see `cluster::raft_seed`).
    pub raft_seed: u64,
    /// Long measurement runs: a line on stderr every this many simulated ms (the seeds stay
    /// quiet). Printing moves nothing in the run or its trace.
    pub progress_every_ms: Option<u64>,
}

impl Scenario {
    /// Draws the scenario of `seed`.
    pub fn from_seed(seed: u64, profile: Profile) -> Self {
        let mut rng = SimRng::new(seed, 0);
        let nodes = *rng.pick(&[3, 3, 5]);
        let instances = rng.range(profile.fleet_min, profile.fleet_max);
        let calls_per_s = *rng.pick(&[5, 10, 20]);
        let heartbeat_interval_ms = *rng.pick(&[40, 50, 60]);
        let base = rng.range(heartbeat_interval_ms * 5, heartbeat_interval_ms * 8);
        let spacing = rng.range(heartbeat_interval_ms, heartbeat_interval_ms * 2);
        let mut election_timeout_ms: Vec<u64> = (0..nodes).map(|i| base + i * spacing).collect();
        // Which node is the quickest to campaign is part of the seed too.
        for i in (1..election_timeout_ms.len()).rev() {
            let j = rng.range(0, i as u64) as usize;
            election_timeout_ms.swap(i, j);
        }
        let probe_permits = rng.range(1, 3) as u32;
        let policy = Policy {
            window: WindowSpec::Time {
                duration_ms: 5_000,
                buckets: 10,
            },
            min_calls: rng.range(10, 20) as u32,
            min_instances: rng.range(2, 3) as u32,
            open_duration_ms: rng.range(2_000, 4_000),
            open_duration_max_ms: 8_000,
            probe_permits,
            probe_success_threshold: rng.range(1, 3) as u32,
            probe_lease_ms: rng.range(3_000, 6_000),
            ..Policy::default()
        };
        let mut scenario = Self {
            seed,
            profile,
            nodes,
            instances,
            calls_per_s,
            heartbeat_interval_ms,
            election_timeout_ms,
            snapshot_every_entries: rng.range(100, 400),
            log_entries_kept_after_snapshot: rng.range(20, 100),
            latency_min_ms: 1,
            latency_max_ms: rng.range(2, 10),
            dependency_latency_ms: rng.range(5, 30),
            flush_latency_ms: rng.range(5, 20),
            policy: Some(policy),
            faults: Vec::new(),
            judge_trips: true,
            progress_every_ms: None,
            raft_seed: SimRng::new(seed, RAFT_STREAM).next_u64(),
        };
        scenario.faults = Fault::schedule(&mut rng, &scenario);
        scenario
    }

    /// The simulation step: openraft's internal tick period (`heartbeat * 13 / 64`), so
    /// every host advances in whole ticks.
    pub fn step(&self) -> Duration {
        Duration::from_millis((self.heartbeat_interval_ms * 13 / 64).max(1))
    }

    /// The policy in force for the breaker (the installed one, or the defaults).
    pub fn effective_policy(&self) -> Policy {
        self.policy.clone().unwrap_or_default()
    }

    /// Simulated ms at which the safety phase ends and everything heals.
    pub fn heal_at_ms(&self) -> u64 {
        self.profile.safety_ms
    }

    /// Simulated ms at which the run ends.
    pub fn end_ms(&self) -> u64 {
        self.profile.safety_ms + self.profile.liveness_ms
    }

    /// When the fleet is cut off from every node, if it is: `(from_ms, until_ms)`.
    pub fn fleet_cut(&self) -> Option<(u64, u64)> {
        self.faults
            .iter()
            .find(|f| f.fault == Fault::IsolateFleet)
            .map(|f| (f.at_ms, f.at_ms + f.duration_ms))
    }

    /// One line describing the scenario, for the trace.
    pub fn describe(&self) -> String {
        format!(
            "seed={} nodes={} instances={} calls_per_s={} heartbeat_ms={} election_timeouts_ms={:?} snapshot_every={} latency_ms={}..{} flush_ms={} faults={}{}",
            self.seed,
            self.nodes,
            self.instances,
            self.calls_per_s,
            self.heartbeat_interval_ms,
            self.election_timeout_ms,
            self.snapshot_every_entries,
            self.latency_min_ms,
            self.latency_max_ms,
            self.flush_latency_ms,
            self.faults.len(),
            if self.fleet_cut().is_some() {
                " fleet_cut"
            } else {
                ""
            }
        )
    }
}
