//! [`Fault`]: what the safety phase does to the cluster, the fleet and the dependency.
//!
//! The schedule is drawn from the seed before the run ([`Fault::schedule`]); the run applies
//! each fault at its start time and undoes it after its duration. At the end of the safety
//! phase everything heals at once: links repaired, crashed nodes restarted, the dependency
//! healthy again.

use crate::rng::SimRng;
use crate::scenario::Scenario;

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Node–node partition; `one_way` drops only `a -> b`.
    PartitionNodes {
        /// A node id.
        a: u64,
        /// Another node id.
        b: u64,
        /// Only `a -> b` is cut.
        one_way: bool,
    },
    /// Cut whichever node leads when the fault starts off from every other node.
    IsolateLeader,
    /// Cut one node off from every other node; the fleet still reaches it, so it serves
    /// watches at an index that falls further and further behind.
    IsolateNode {
        /// The node id.
        node: u64,
    },
    /// Fleet–node partition: instances `first..=last` cannot reach `node` (or, `one_way`,
    /// `node` cannot reach them).
    PartitionFleet {
        /// First instance index.
        first: u64,
        /// Last instance index.
        last: u64,
        /// The node id.
        node: u64,
        /// Only `node -> instances` is cut.
        one_way: bool,
    },
    /// Power loss: the node's host stops and its disk forgets unflushed writes; it restarts
    /// when the fault ends.
    CrashNode {
        /// The node id.
        node: u64,
    },
    /// Network latency up to `max_ms` on every link.
    Latency {
        /// The new maximum latency.
        max_ms: u64,
    },
    /// Links fail at random (turmoil's fail rate, per step, in per-mille) and repair at random.
    MessageLoss {
        /// Chance per link and step that it fails, ‰.
        fail_per_mille: u64,
    },
    /// The whole fleet is cut off from every node, both ways (the fail-static scenario).
    IsolateFleet,
    /// The dependency fails every call.
    DependencyDown,
    /// The dependency answers, slowly.
    DependencySlow {
        /// Its latency while slow.
        latency_ms: u64,
    },
    /// The dependency fails calls at random, independently (a noisy baseline), below the
    /// failure threshold. Drawn by [`Fault::schedule`] as a run's opening trouble; the
    /// false-trip measurement schedules it for long stretches.
    DependencyNoisy {
        /// Chance that a call fails, per mille.
        fail_per_mille: u64,
    },
    /// Every call of one instance fails (a fault local to its host). Drawn by
    /// [`Fault::schedule`] as a run's opening trouble, `alone`; the false-trip measurement
    /// schedules it among a busy fleet.
    InstanceSick {
        /// The instance index.
        instance: u64,
        /// The rest of the fleet makes no calls meanwhile (traffic pinned to this instance),
        /// so its failures are all the cluster hears of.
        alone: bool,
    },
}

/// A fault with its start time and duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledFault {
    /// Simulated ms at which it starts.
    pub at_ms: u64,
    /// How long it lasts, ms.
    pub duration_ms: u64,
    /// What it is.
    pub fault: Fault,
}

/// The kinds of fault the swarm draws weights for.
const KINDS: usize = 8;

/// How long a fleet cut lasts: past the SDKs' `fallback_after`, with room to be judged.
pub const FLEET_CUT_MS: u64 = crate::fleet::MODE_TIMERS.fallback_after_ms + 1_500;

/// How long a run's opening trouble (a lone sick instance, or a noisy baseline) lasts, ms;
/// no outage or slowness of the dependency starts before it ends.
pub const OPENING_TROUBLE_MS: u64 = 5_000;

/// A lagging failover's node cut starts in this range, ms (after the first election, early
/// enough that a watch's idle timeout runs out before the heal even in the quick profile).
const LAGGING_CUT_AT_MS: (u64, u64) = (1_000, 1_500);

/// After the lagging node's cut, the fleet loses the node before it in endpoint order this
/// much later, ms: long enough for the cluster to commit past the lagging node.
const LAGGING_UNREACHABLE_AFTER_MS: u64 = 1_000;

impl Fault {
    /// The safety phase's faults: always one dependency outage (so every run exercises the
    /// breaker), plus a seed-chosen mix of everything else, sorted by start time.
    ///
    /// Swarm testing: each seed first draws a weight (0, 1, 2 or 4) per kind of fault, then
    /// draws its faults by those weights, so some seeds pile up one kind (all crashes, all
    /// partitions) and leave others out, which uniform mixes rarely do. About one seed in
    /// three also cuts the whole fleet off from every node for [`FLEET_CUT_MS`], ending with
    /// the heal, so the SDKs go stale, then local-only, then come back.
    pub fn schedule(rng: &mut SimRng, scenario: &Scenario) -> Vec<ScheduledFault> {
        let safety_ms = scenario.profile.safety_ms;
        let nodes = scenario.nodes;
        let instances = scenario.instances;
        let mut faults = vec![ScheduledFault {
            at_ms: rng.range(1_000, safety_ms / 3),
            duration_ms: rng.range(3_000, safety_ms / 2),
            fault: Fault::DependencyDown,
        }];
        let mut weights = [0u64; KINDS];
        for w in &mut weights {
            *w = *rng.pick(&[0, 1, 2, 4]);
        }
        if weights.iter().all(|w| *w == 0) {
            weights[rng.range(0, KINDS as u64 - 1) as usize] = 1;
        }
        let total: u64 = weights.iter().sum();
        let count = rng.range(1, scenario.profile.faults_max);
        for _ in 0..count {
            let at_ms = rng.range(500, safety_ms.saturating_sub(1_000));
            let duration_ms = rng.range(300, 6_000).min(safety_ms - at_ms);
            let mut draw = rng.range(0, total - 1);
            let kind = weights
                .iter()
                .position(|w| {
                    if draw < *w {
                        true
                    } else {
                        draw -= w;
                        false
                    }
                })
                .unwrap_or(0);
            let fault = match kind {
                0 => {
                    let a = rng.range(1, nodes);
                    let b = (a + rng.range(0, nodes - 2)) % nodes + 1;
                    Fault::PartitionNodes {
                        a,
                        b,
                        one_way: rng.percent(40),
                    }
                }
                1 => Fault::IsolateLeader,
                2 => {
                    let first = rng.range(0, instances - 1);
                    let last = rng.range(first, instances - 1);
                    Fault::PartitionFleet {
                        first,
                        last,
                        node: rng.range(1, nodes),
                        one_way: rng.percent(30),
                    }
                }
                3 => Fault::CrashNode {
                    node: rng.range(1, nodes),
                },
                4 => Fault::Latency {
                    max_ms: rng.range(20, 300),
                },
                5 => Fault::MessageLoss {
                    fail_per_mille: rng.range(1, 5),
                },
                6 => Fault::DependencySlow {
                    latency_ms: rng.range(1_000, 2_500),
                },
                _ => Fault::DependencyDown,
            };
            faults.push(ScheduledFault {
                at_ms,
                duration_ms,
                fault,
            });
        }
        let fleet_cut = rng.percent(33) && safety_ms > FLEET_CUT_MS;
        if fleet_cut {
            faults.push(ScheduledFault {
                at_ms: safety_ms - FLEET_CUT_MS,
                duration_ms: FLEET_CUT_MS,
                fault: Fault::IsolateFleet,
            });
        }
        // Drawn last, so that the draws above (and the seeds' mixes) stay as they were; both
        // need the fleet to reach the cluster.
        if !fleet_cut && rng.percent(50) {
            Self::lagging_failover(rng, scenario, &mut faults);
        }
        if !fleet_cut && rng.percent(60) && safety_ms >= OPENING_TROUBLE_MS + 3_000 {
            Self::opening_trouble(rng, scenario, &mut faults);
        }
        faults.sort_by_key(|f| f.at_ms);
        faults
    }

    /// A watch that fails over to a node behind the SDK: one node is cut off from the other
    /// nodes (the fleet still reaches it) until the heal; a second later the fleet loses the
    /// node before it in the SDKs' endpoint order, so the watches there go idle and move on,
    /// `watch_idle_timeout` later, to the lagging node, which serves an older index.
    fn lagging_failover(rng: &mut SimRng, scenario: &Scenario, faults: &mut Vec<ScheduledFault>) {
        let safety_ms = scenario.profile.safety_ms;
        let nodes = scenario.nodes;
        let unreachable = rng.range(1, nodes);
        let lagging = unreachable % nodes + 1;
        let at_ms = rng.range(LAGGING_CUT_AT_MS.0, LAGGING_CUT_AT_MS.1);
        let unreachable_at_ms = at_ms + LAGGING_UNREACHABLE_AFTER_MS;
        faults.push(ScheduledFault {
            at_ms,
            duration_ms: safety_ms - at_ms,
            fault: Fault::IsolateNode { node: lagging },
        });
        faults.push(ScheduledFault {
            at_ms: unreachable_at_ms,
            duration_ms: safety_ms - unreachable_at_ms,
            fault: Fault::PartitionFleet {
                first: 0,
                last: scenario.instances - 1,
                node: unreachable,
                one_way: false,
            },
        });
    }

    /// Trouble the fleet must *not* trip on, from the start of the run for
    /// [`OPENING_TROUBLE_MS`]: a lone sick instance (the rest of the fleet idle) or a noisy
    /// baseline of 25-35 % failures. Outages and slowness of the dependency start after it.
    fn opening_trouble(rng: &mut SimRng, scenario: &Scenario, faults: &mut Vec<ScheduledFault>) {
        let fault = if rng.percent(35) {
            Fault::InstanceSick {
                instance: rng.range(0, scenario.instances - 1),
                alone: true,
            }
        } else {
            Fault::DependencyNoisy {
                fail_per_mille: rng.range(250, 350),
            }
        };
        for f in faults.iter_mut() {
            if matches!(
                f.fault,
                Fault::DependencyDown | Fault::DependencySlow { .. }
            ) {
                f.at_ms = f.at_ms.max(OPENING_TROUBLE_MS);
                f.duration_ms = f.duration_ms.min(scenario.profile.safety_ms - f.at_ms);
            }
        }
        // From 0 ms: the noise meets the cold window of start-up too (a cold window is judged
        // with the confidence margin, so it must not trip either).
        faults.push(ScheduledFault {
            at_ms: 0,
            duration_ms: OPENING_TROUBLE_MS,
            fault,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Profile;

    #[test]
    fn the_ci_seeds_draw_every_scenario_the_trip_and_watch_invariants_need() {
        // Goal: the 200 CI seeds put one_instance_trip, noisy_baseline_trip and the decision
        // index's failover to a lagging node to the test, in both profiles' first 20 seeds
        // too (the planted-bug test's bound).
        for (profile, seeds) in [(Profile::STANDARD, 200), (Profile::QUICK, 20)] {
            let (mut sick, mut noisy, mut lagging) = (0, 0, 0);
            for seed in 0..seeds {
                let s = Scenario::from_seed(seed, profile);
                for f in &s.faults {
                    match f.fault {
                        Fault::InstanceSick { alone: true, .. } => sick += 1,
                        Fault::DependencyNoisy { fail_per_mille } => {
                            assert!(
                                fail_per_mille < 500,
                                "seed {seed}: noise under the threshold"
                            );
                            assert_eq!(f.at_ms, 0, "seed {seed}: noise meets the cold window");
                            noisy += 1;
                        }
                        Fault::IsolateNode { .. } => lagging += 1,
                        Fault::DependencyDown | Fault::DependencySlow { .. }
                            if s.faults.iter().any(|o| {
                                matches!(
                                    o.fault,
                                    Fault::InstanceSick { .. } | Fault::DependencyNoisy { .. }
                                )
                            }) =>
                        {
                            assert!(f.at_ms >= OPENING_TROUBLE_MS, "seed {seed}: outage after");
                        }
                        _ => {}
                    }
                }
            }
            assert!(
                sick >= 2 && noisy >= 2 && lagging >= 2,
                "{profile:?}: {sick} {noisy} {lagging}"
            );
        }
    }
}
