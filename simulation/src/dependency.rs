//! [`Dependency`]: the service the fleet calls, simulated in process.
//!
//! Why in process and not a turmoil host: the dependency is not the system under test. What
//! matters is what it answers and how many calls reach it, and counting those in one place
//! is exact; 5 000 simulated TCP calls per second would only slow the run down without
//! exercising a line of Switchyard.
//!
//! The dependency also keeps the fleet-side tallies the invariants and the fleet comparison
//! read: calls that reached it (normal and trial), failures, trial calls in flight.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_sdk::PermitKind;

use crate::rng::SimRng;

/// The [`SimRng`] stream of the dependency's noise (the scenario draws from 0, Raft from 1).
const NOISE_STREAM: u64 = 2;

/// How the dependency behaves right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Answers every call quickly and successfully.
    Healthy,
    /// Fails every call quickly.
    Down,
    /// Answers successfully after this many ms.
    Slow(u64),
    /// Healthy, but each call fails independently with this chance, per mille (a noisy
    /// baseline, drawn from the dependency's own seeded stream).
    Noisy(u64),
}

/// Why a call went wrong, for the trip invariants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    /// The dependency was down or slow: a real outage, which may trip the fleet.
    Outage = 0,
    /// A noise draw failed the call.
    Noise = 1,
    /// The calling instance is sick.
    Sick = 2,
}

/// Who had trouble with the dependency since some time (see [`Dependency::trouble_since`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TroubleSince {
    /// Instances with a call that failed or was slow.
    pub instances: u64,
    /// Whether some call failed or was slow because the dependency was down or slow.
    pub outage: bool,
    /// Whether some call failed on a noise draw.
    pub noise: bool,
}

/// Counters of calls that reached the dependency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTally {
    /// Ordinary admitted calls.
    pub normal: u64,
    /// Trial calls under a cluster probe permit.
    pub cluster_probes: u64,
    /// Trial calls under a local probe permit.
    pub local_probes: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Calls the SDK rejected (they never reached the dependency).
    pub rejected: u64,
}

#[derive(Debug)]
struct State {
    health: Health,
    normal_latency_ms: u64,
    tally: CallTally,
    /// Failed calls per simulated second (for the fleet comparison's onset window).
    failed_per_s: BTreeMap<u64, u64>,
    /// Trial calls per simulated second.
    probes_per_s: BTreeMap<u64, u64>,
    /// Cluster-probe calls in flight right now, fleet-wide.
    cluster_probes_in_flight: u64,
    /// The most cluster-probe calls ever in flight at once, and when.
    cluster_probes_in_flight_max: (u64, u64),
    /// When the last normal (non-trial) call reached the dependency, ms.
    last_normal_call_ms: Option<u64>,
    /// The instance whose calls all fail whatever the health (a fault local to its host).
    sick_instance: Option<u64>,
    /// Draws of [`Health::Noisy`].
    rng: SimRng,
    /// Per instance, when a call of it last started that went wrong, per [`Trouble`].
    last_trouble: BTreeMap<u64, [Option<u64>; 3]>,
}

/// The simulated dependency; clones share it.
#[derive(Debug, Clone)]
pub struct Dependency {
    state: Arc<Mutex<State>>,
}

/// One call in progress: what the caller must wait and report.
#[derive(Debug, Clone, Copy)]
pub struct CallPlan {
    /// How long the call takes, ms.
    pub latency_ms: u64,
    /// Whether it fails.
    pub fails: bool,
}

impl Dependency {
    /// A healthy dependency answering in `normal_latency_ms`; `seed` feeds its noise.
    pub fn new(normal_latency_ms: u64, seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                health: Health::Healthy,
                normal_latency_ms,
                tally: CallTally::default(),
                failed_per_s: BTreeMap::new(),
                probes_per_s: BTreeMap::new(),
                cluster_probes_in_flight: 0,
                cluster_probes_in_flight_max: (0, 0),
                last_normal_call_ms: None,
                sick_instance: None,
                rng: SimRng::new(seed, NOISE_STREAM),
                last_trouble: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes how the dependency behaves from now on.
    pub fn set_health(&self, health: Health) {
        self.lock().health = health;
    }

    /// Makes every call of `instance` fail (`None`: nobody is sick).
    pub fn set_sick_instance(&self, instance: Option<u64>) {
        self.lock().sick_instance = instance;
    }

    /// How it behaves now.
    pub fn health(&self) -> Health {
        self.lock().health
    }

    /// A call of `kind` by `instance` starts at `now_ms`: how long it takes and whether it
    /// fails.
    pub fn begin(&self, instance: u64, kind: PermitKind, now_ms: u64) -> CallPlan {
        let mut s = self.lock();
        match kind {
            PermitKind::Normal => {
                s.tally.normal += 1;
                s.last_normal_call_ms = Some(now_ms);
            }
            PermitKind::ClusterProbe => {
                s.tally.cluster_probes += 1;
                s.cluster_probes_in_flight += 1;
                if s.cluster_probes_in_flight > s.cluster_probes_in_flight_max.0 {
                    s.cluster_probes_in_flight_max = (s.cluster_probes_in_flight, now_ms);
                }
            }
            PermitKind::LocalProbe => s.tally.local_probes += 1,
        }
        if kind != PermitKind::Normal {
            *s.probes_per_s.entry(now_ms / 1_000).or_default() += 1;
        }
        let sick = s.sick_instance == Some(instance);
        let mut plan = match s.health {
            Health::Noisy(per_mille) => CallPlan {
                latency_ms: s.normal_latency_ms,
                fails: s.rng.range(0, 999) < per_mille,
            },
            Health::Healthy => CallPlan {
                latency_ms: s.normal_latency_ms,
                fails: false,
            },
            // A dead dependency fails as slowly as it answers (a refused connection behind
            // a load balancer), so concurrent trial calls overlap as they do in production.
            Health::Down => CallPlan {
                latency_ms: s.normal_latency_ms,
                fails: true,
            },
            Health::Slow(ms) => CallPlan {
                latency_ms: ms,
                fails: false,
            },
        };
        let troubles = [
            (
                matches!(s.health, Health::Down | Health::Slow(_)),
                Trouble::Outage,
            ),
            (
                matches!(s.health, Health::Noisy(_)) && plan.fails,
                Trouble::Noise,
            ),
            (sick, Trouble::Sick),
        ];
        for (_, trouble) in troubles.into_iter().filter(|(hit, _)| *hit) {
            s.last_trouble.entry(instance).or_default()[trouble as usize] = Some(now_ms);
        }
        plan.fails |= sick;
        if plan.fails {
            s.tally.failed += 1;
            *s.failed_per_s.entry(now_ms / 1_000).or_default() += 1;
        }
        plan
    }

    /// A call of `kind` ended.
    pub fn end(&self, kind: PermitKind) {
        if kind == PermitKind::ClusterProbe {
            let mut s = self.lock();
            s.cluster_probes_in_flight = s.cluster_probes_in_flight.saturating_sub(1);
        }
    }

    /// Who had a call go wrong (fail, or be slow) that started at or after `from_ms`.
    pub fn trouble_since(&self, from_ms: u64) -> TroubleSince {
        let s = self.lock();
        let mut out = TroubleSince::default();
        for last in s.last_trouble.values() {
            let since = |t: Trouble| last[t as usize].is_some_and(|at| at >= from_ms);
            if last.iter().flatten().any(|at| *at >= from_ms) {
                out.instances += 1;
            }
            out.outage |= since(Trouble::Outage);
            out.noise |= since(Trouble::Noise);
        }
        out
    }

    /// The SDK turned a call away.
    pub fn rejected(&self) {
        self.lock().tally.rejected += 1;
    }

    /// Everything counted so far.
    pub fn tally(&self) -> CallTally {
        self.lock().tally.clone()
    }

    /// Cluster-probe calls in flight now.
    pub fn cluster_probes_in_flight(&self) -> u64 {
        self.lock().cluster_probes_in_flight
    }

    /// The most cluster-probe calls in flight at once and when (ms).
    pub fn cluster_probes_in_flight_max(&self) -> (u64, u64) {
        self.lock().cluster_probes_in_flight_max
    }

    /// Resets the in-flight maximum (per half-open episode accounting).
    pub fn reset_cluster_probes_in_flight_max(&self) {
        let mut s = self.lock();
        s.cluster_probes_in_flight_max = (s.cluster_probes_in_flight, 0);
    }

    /// When the last normal call reached the dependency, ms.
    pub fn last_normal_call_ms(&self) -> Option<u64> {
        self.lock().last_normal_call_ms
    }

    /// Failed calls per simulated second.
    pub fn failed_per_s(&self) -> Vec<(u64, u64)> {
        self.lock()
            .failed_per_s
            .iter()
            .map(|(s, n)| (*s, *n))
            .collect()
    }

    /// Trial calls per simulated second.
    pub fn probes_per_s(&self) -> Vec<(u64, u64)> {
        self.lock()
            .probes_per_s
            .iter()
            .map(|(s, n)| (*s, *n))
            .collect()
    }
}
