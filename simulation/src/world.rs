//! [`World`]: the simulated world of one run (turmoil, the cluster's hosts and disks, the
//! dependency) and what applying and undoing each fault does to it, crashes and restarts
//! included.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::ServerState;
use switchyard_store::disk::{Disk, Op, TreeId};

use crate::checker::Checker;
use crate::cluster::{Cluster, node_host};
use crate::dependency::{Dependency, Health};
use crate::faults::{Fault, ScheduledFault};
use crate::fleet::{Cut, Fleet, instance_host};
use crate::invariants::{NodeView, read_durable, read_log};
use crate::plant::PlantedBug;
use crate::scenario::Scenario;

/// How many committed entries [`PlantedBug::DropCommittedOnRestart`] drops from the tail.
const DROPPED_ENTRIES: usize = 5;

/// How far below its last entry [`PlantedBug::CorruptEntry`] corrupts one.
const CORRUPTED_DEPTH: usize = 3;

/// Directed link cuts, counted so overlapping faults undo cleanly.
#[derive(Debug, Default)]
pub(crate) struct Links {
    cuts: BTreeMap<(String, String), u32>,
}

impl Links {
    /// Cuts `from` → `to`, and cuts it again if it already is.
    ///
    /// Cutting again matters because turmoil's random message loss acts on a link as a whole:
    /// while one direction is healthy, a random drop puts both directions in a random
    /// partition, and the random repair that follows makes both healthy, erasing an explicit
    /// cut of the other direction. Soak seed 2128: a one-way fleet partition (node1 → app38)
    /// was erased that way under message loss, the fleet-wide cut that followed counted the
    /// link as already cut, and app38 reached the cluster in the middle of the fleet cut. A
    /// link cut in both directions is never touched by random loss, so re-asserting each cut
    /// whenever another fault cuts or uncuts it keeps nested cuts whole. A lone one-way cut
    /// under message loss can still end early (a weaker fault, never a stronger one).
    fn cut(&mut self, sim: &mut turmoil::Sim<'_>, from: &str, to: &str) {
        *self.cuts.entry((from.into(), to.into())).or_default() += 1;
        sim.partition_oneway(from, to);
    }

    fn uncut(&mut self, sim: &mut turmoil::Sim<'_>, from: &str, to: &str) {
        let key = (from.to_string(), to.to_string());
        if let Some(n) = self.cuts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.cuts.remove(&key);
                sim.repair_oneway(from, to);
            } else {
                sim.partition_oneway(from, to);
            }
        }
    }
}

/// A fault in force and what undoes it.
#[derive(Debug)]
pub(crate) struct Active {
    ends_at_ms: u64,
    undo: Undo,
}

#[derive(Debug)]
pub(crate) enum Undo {
    Links(Vec<(String, String)>),
    Restart(u64),
    Latency,
    MessageLoss,
    Dependency,
    Sick,
    Nothing,
}

/// Everything a run acts on.
pub(crate) struct World<'a> {
    pub(crate) sim: turmoil::Sim<'a>,
    pub(crate) scenario: Scenario,
    pub(crate) cluster: Cluster,
    pub(crate) fleet: Fleet,
    pub(crate) dependency: Dependency,
    pub(crate) plant: Option<PlantedBug>,
    pub(crate) links: Links,
    pub(crate) crashed: BTreeMap<u64, u32>,
    pub(crate) active: Vec<Active>,
}

impl World<'_> {
    pub(crate) fn apply(&mut self, now_ms: u64, scheduled: &ScheduledFault, checker: &mut Checker) {
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
                        checker
                            .trace
                            .line(now_ms, format_args!("isolating leader node{leader}"));
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
            Fault::IsolateNode { node } => {
                let mut cut = Vec::new();
                for other in (1..=self.scenario.nodes).filter(|n| n != node) {
                    cut.push((node_host(*node), node_host(other)));
                    cut.push((node_host(other), node_host(*node)));
                }
                self.cut_all(&cut);
                Undo::Links(cut)
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
            Fault::IsolateFleet => {
                let mut cut = Vec::new();
                for n in 1..=self.scenario.nodes {
                    for i in 0..self.scenario.instances {
                        cut.push((node_host(n), instance_host(i)));
                        cut.push((instance_host(i), node_host(n)));
                    }
                }
                self.cut_all(&cut);
                self.fleet.set_cut(Cut::Since(now_ms));
                Undo::Links(cut)
            }
            Fault::CrashNode { node } => {
                let n = self.crashed.entry(*node).or_default();
                *n += 1;
                if *n == 1 {
                    let acknowledged = self.acknowledged(*node);
                    self.cluster.forget(*node);
                    self.power_off(*node);
                    let disk = &self.cluster.disks[node];
                    disk.crash();
                    checker.crashed(*node, acknowledged, &read_durable(disk), now_ms);
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
            Fault::InstanceSick { instance, alone } => {
                self.dependency.set_sick_instance(Some(*instance));
                if *alone {
                    self.fleet.set_lone_caller(Some(*instance));
                }
                Undo::Sick
            }
        };
        self.active.push(Active { ends_at_ms, undo });
    }

    /// The last index the leader with the greatest vote counts as flushed on `node` (0 if
    /// no leader runs or it has no figure for it).
    fn acknowledged(&self, node: u64) -> u64 {
        self.cluster
            .live()
            .values()
            .map(NodeView::of)
            .filter(|v| v.state == ServerState::Leader)
            .max_by_key(|v| v.vote)
            .and_then(|leader| leader.matched.get(&node).copied())
            .unwrap_or(0)
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

    fn undo(&mut self, undo: Undo, now_ms: u64, checker: &mut Checker) {
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
                    self.restart(node, now_ms, checker);
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
            Undo::Sick => {
                self.dependency.set_sick_instance(None);
                self.fleet.set_lone_caller(None);
            }
            Undo::Nothing => {}
        }
    }

    /// Restarts crashed node `node`, after checking what its disk kept (and, with
    /// [`PlantedBug::DropCommittedOnRestart`], after its recovery lost the committed tail).
    fn restart(&mut self, node: u64, now_ms: u64, checker: &mut Checker) {
        let disk = &self.cluster.disks[&node];
        if self.plant == Some(PlantedBug::DropCommittedOnRestart) {
            let durable = read_durable(disk);
            let committed = checker.committed_max();
            let tail: Vec<Vec<u8>> = durable
                .log
                .keys()
                .filter(|i| **i > durable.purged && **i <= committed)
                .rev()
                .take(DROPPED_ENTRIES)
                .last()
                .map(|last| {
                    durable
                        .log
                        .range(last..)
                        .map(|(i, _)| i.to_be_bytes().to_vec())
                        .collect()
                })
                .unwrap_or_default();
            disk.lose(TreeId::Log, &tail);
        }
        checker.restarting(node, &read_durable(disk), now_ms);
        self.sim.bounce(node_host(node));
    }

    /// [`PlantedBug::CorruptEntry`]: on the node holding the longest log, the entry a few
    /// below the last changes its bytes (its last byte flipped), as bit rot would.
    pub(crate) fn corrupt_entry(&mut self) {
        let longest = self
            .cluster
            .disks
            .iter()
            .map(|(id, disk)| (read_log(disk), *id))
            .max_by_key(|(log, id)| (log.len(), *id));
        let Some((log, id)) = longest else { return };
        let Some(index) = log.keys().rev().nth(CORRUPTED_DEPTH).copied() else {
            return;
        };
        let disk = &self.cluster.disks[&id];
        let key = index.to_be_bytes().to_vec();
        if let Ok(Some(mut value)) = disk.get(TreeId::Log, &key)
            && let Some(last) = value.last_mut()
        {
            *last ^= 0x5a;
            let _ = disk.apply(TreeId::Log, vec![Op::Put(key, value)]);
        }
    }

    pub(crate) fn undo_due(&mut self, now_ms: u64, all: bool, checker: &mut Checker) {
        loop {
            let Some(pos) = self
                .active
                .iter()
                .position(|a| all || a.ends_at_ms <= now_ms)
            else {
                return;
            };
            let active = self.active.remove(pos);
            self.undo(active.undo, now_ms, checker);
        }
    }
}
