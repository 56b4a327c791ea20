//! [`Fleet`]: the SDK hosts. Each runs the real `switchyard-sdk` [`Client`] over turmoil and
//! calls the simulated [`Dependency`] at a fixed rate, guarded by one breaker.
//!
//! Each instance also samples what its SDK shows (mode, admission) a few times per SDK tick
//! into an [`InstanceView`] the checker reads. Decision indexes are not sampled: every update
//! an SDK applies is recorded as it happens ([`Fleet::observe_updates`]). While the fleet is
//! cut off from every node ([`Fleet::set_cut`]) each instance also times how long each call
//! waited for its admission, and when its SDK went stale, local-only, and back.
//!
//! The fleet's planted bugs ([`PlantedBug::GreedyProbes`], [`PlantedBug::IgnoreOpen`],
//! [`PlantedBug::BlockingCall`]) live here, in the calling code around the SDK.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_sdk::{Admission, Client, ClientOptions, Mode, ModeOptions, Outcome, PermitKind};

use crate::clock::SimClock;
use crate::cluster::node_addr;
use crate::dependency::Dependency;
use crate::invariants::fail_static::ModeTimers;
use crate::net::SimConnector;
use crate::plant::PlantedBug;
use crate::scenario::{BREAKER_KEY, Scenario};

/// How often each instance samples its SDK's view.
pub const SAMPLE_INTERVAL_MS: u64 = 50;

/// The SDKs' fail-static timers in the simulation: shorter than the defaults (5 s / 30 s) so
/// that a fleet cut of a few simulated seconds reaches local-only mode. An idle watch hears
/// from its node once a second, so `stale_after` stays well above that.
pub const MODE_TIMERS: ModeTimers = ModeTimers {
    stale_after_ms: 2_500,
    fallback_after_ms: 5_000,
};

/// How long a [`PlantedBug::BlockingCall`] instance waits for cluster mode before a call, ms.
const BLOCKING_WAIT_MAX_MS: u64 = 3_000;

/// The host name of instance `i`.
pub fn instance_host(i: u64) -> String {
    format!("app{i}")
}

/// How the fleet runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetOptions {
    /// Every SDK in local-only mode (no cluster): the baseline of the fleet comparison.
    pub local_only: bool,
    /// The planted bug of the run, if any (the fleet acts on its own ones).
    pub plant: Option<PlantedBug>,
}

/// What one instance's SDK showed when last sampled, and what it recorded on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    /// The fail-static mode.
    pub mode: Mode,
    /// The breaker's decision index.
    pub decision_index: u64,
    /// What `allow()` does.
    pub admission: Admission,
    /// Decision-index updates the SDK applied.
    pub updates: u64,
    /// Updates that lowered the decision index: `(at_ms, from, to)`.
    pub index_regressions: Vec<(u64, u64, u64)>,
    /// Samples taken.
    pub samples: u64,
    /// Calls made while the fleet was cut off.
    pub calls_while_cut: u64,
    /// The longest wait for an admission while cut off: `(waited_ms, at_ms)`.
    pub longest_wait_while_cut: (u64, u64),
    /// Samples taken while the fleet was cut off.
    pub samples_while_cut: u64,
    /// When the SDK was first seen stale after the cut began (for an SDK already past stale
    /// when the cut began, the first sample of the cut).
    pub stale_at_ms: Option<u64>,
    /// When it was first seen local-only after the cut began.
    pub local_only_at_ms: Option<u64>,
    /// When it was first seen in cluster mode after the cut healed.
    pub back_in_cluster_at_ms: Option<u64>,
}

impl InstanceView {
    /// Notes the fail-static mode sampled at `now_ms`, with the fleet at `cut`.
    ///
    /// An SDK that an earlier fault had already cut off from its nodes can be local-only by
    /// the first sample of the fleet cut: it went stale before the cut began, so it is on
    /// schedule, and its stale time is that first sample. Local-only seen without stale at
    /// any later sample is a skipped mode (a sample comes every [`SAMPLE_INTERVAL_MS`], far
    /// shorter than the time between the two), and stays unrecorded for the checker to flag.
    pub fn note_mode(&mut self, cut: Cut, mode: Mode, now_ms: u64) {
        self.mode = mode;
        match cut {
            Cut::Since(_) => {
                self.samples_while_cut += 1;
                match mode {
                    Mode::Stale if self.stale_at_ms.is_none() => self.stale_at_ms = Some(now_ms),
                    Mode::LocalOnly if self.local_only_at_ms.is_none() => {
                        if self.samples_while_cut == 1 {
                            self.stale_at_ms.get_or_insert(now_ms);
                        }
                        self.local_only_at_ms = Some(now_ms);
                    }
                    _ => {}
                }
            }
            Cut::HealedAt(_) if mode == Mode::Cluster && self.back_in_cluster_at_ms.is_none() => {
                self.back_in_cluster_at_ms = Some(now_ms);
            }
            _ => {}
        }
    }
}

impl Default for InstanceView {
    fn default() -> Self {
        Self {
            mode: Mode::Cluster,
            decision_index: 0,
            admission: Admission::Allow,
            updates: 0,
            index_regressions: Vec::new(),
            samples: 0,
            calls_while_cut: 0,
            longest_wait_while_cut: (0, 0),
            samples_while_cut: 0,
            stale_at_ms: None,
            local_only_at_ms: None,
            back_in_cluster_at_ms: None,
        }
    }
}

/// Where the fleet stands with respect to a cut from every node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cut {
    /// No cut (yet).
    #[default]
    None,
    /// Cut off since this simulated ms.
    Since(u64),
    /// The cut healed at this simulated ms.
    HealedAt(u64),
}

/// The fleet's shared views, one per instance.
#[derive(Debug, Clone)]
pub struct Fleet {
    views: Arc<Mutex<Vec<InstanceView>>>,
    cut: Arc<Mutex<Cut>>,
    /// While set, only this instance makes calls (the others idle).
    lone_caller: Arc<Mutex<Option<u64>>>,
}

impl Fleet {
    /// Views for `instances` instances.
    pub fn new(instances: u64) -> Self {
        Self {
            views: Arc::new(Mutex::new(vec![
                InstanceView::default();
                instances as usize
            ])),
            cut: Arc::default(),
            lone_caller: Arc::default(),
        }
    }

    /// From now on only instance `lone` makes calls (`None`: every instance does).
    pub fn set_lone_caller(&self, lone: Option<u64>) {
        *self.lone_caller.lock().unwrap_or_else(|p| p.into_inner()) = lone;
    }

    /// Whether instance `i` sits this call out (another one is the lone caller).
    fn idle(&self, i: u64) -> bool {
        self.lone_caller
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|lone| lone != i)
    }

    /// Tells the instances where the fleet stands with respect to a cut.
    pub fn set_cut(&self, cut: Cut) {
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = cut;
    }

    fn cut(&self) -> Cut {
        *self.cut.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records every decision-index update the SDKs on this thread apply, from now until the
    /// run's `PlantGuard` is dropped.
    pub fn observe_updates(&self) {
        let fleet = self.clone();
        switchyard_core::plant::set_decision_observer(Some(Box::new(
            move |instance: &str, from: u64, to: u64| {
                let Some(i) = instance
                    .strip_prefix("app-")
                    .and_then(|i| i.parse::<usize>().ok())
                else {
                    return;
                };
                let mut views = fleet.lock();
                let Some(view) = views.get_mut(i) else { return };
                view.updates += 1;
                if to < from {
                    view.index_regressions
                        .push((SimClock::elapsed_ms(), from, to));
                }
            },
        )));
    }

    fn lock(&self) -> MutexGuard<'_, Vec<InstanceView>> {
        self.views.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every instance's last view.
    pub fn views(&self) -> Vec<InstanceView> {
        self.lock().clone()
    }

    /// Registers instance `i`'s host in `sim`.
    pub fn add_host(
        &self,
        sim: &mut turmoil::Sim<'_>,
        scenario: &Scenario,
        i: u64,
        dependency: &Dependency,
        options: FleetOptions,
    ) {
        let fleet = self.clone();
        let dependency = dependency.clone();
        let nodes = scenario.nodes;
        let policy = scenario.effective_policy();
        let call_interval = Duration::from_millis(1_000 / scenario.calls_per_s.max(1));
        sim.host(instance_host(i), move || {
            let fleet = fleet.clone();
            let dependency = dependency.clone();
            let policy = policy.clone();
            async move {
                let client_options = ClientOptions {
                    stripes: 1,
                    default_policy: policy.clone(),
                    modes: ModeOptions {
                        stale_after: Duration::from_millis(MODE_TIMERS.stale_after_ms),
                        fallback_after: Duration::from_millis(MODE_TIMERS.fallback_after_ms),
                    },
                    ..ClientOptions::default()
                };
                let client = if options.local_only {
                    Client::builder().options(client_options).build()?
                } else {
                    let channels = (1..=nodes)
                        .map(|n| {
                            let addr = node_addr(n);
                            SimConnector::lazy_channel(&addr).map(|c| (addr, c))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Client::builder()
                        .channels(channels)
                        .instance_id(format!("app-{i}"))
                        .options(client_options)
                        .build()?
                };
                let breaker = client.breaker_with_policy(BREAKER_KEY, policy)?;
                tokio::spawn(sample(
                    fleet.clone(),
                    i as usize,
                    client.clone(),
                    breaker.clone(),
                ));
                let mut ticker = tokio::time::interval(call_interval);
                loop {
                    let due_ms = SimClock::elapsed_ms();
                    ticker.tick().await;
                    let meant_ms = SimClock::elapsed_ms().max(due_ms);
                    if fleet.idle(i) {
                        continue;
                    }
                    if options.plant == Some(PlantedBug::BlockingCall) {
                        // The planted bug: ask the cluster first, and wait for it.
                        let give_up_ms = meant_ms + BLOCKING_WAIT_MAX_MS;
                        while client.mode() != Mode::Cluster && SimClock::elapsed_ms() < give_up_ms
                        {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    let decision = breaker.allow();
                    fleet.record_call(i as usize, SimClock::elapsed_ms() - meant_ms);
                    let kind = match decision {
                        Ok(permit) => Some((permit.kind(), Some(permit))),
                        Err(_)
                            if options.plant == Some(PlantedBug::GreedyProbes)
                                && breaker.admission() == Admission::ClusterProbe =>
                        {
                            Some((PermitKind::ClusterProbe, None))
                        }
                        Err(_) if options.plant == Some(PlantedBug::IgnoreOpen) => {
                            Some((PermitKind::Normal, None))
                        }
                        Err(_) => None,
                    };
                    let Some((kind, permit)) = kind else {
                        dependency.rejected();
                        continue;
                    };
                    let plan = dependency.begin(i, kind, crate::clock::SimClock::elapsed_ms());
                    let breaker = breaker.clone();
                    let dependency = dependency.clone();
                    tokio::spawn(async move {
                        let latency = Duration::from_millis(plan.latency_ms);
                        tokio::time::sleep(latency).await;
                        dependency.end(kind);
                        let outcome = if plan.fails {
                            Outcome::Failure
                        } else {
                            Outcome::Success
                        };
                        if let Some(permit) = permit {
                            breaker.record(permit, outcome, latency);
                        }
                    });
                }
            }
        });
    }
}

impl Fleet {
    /// Instance `i` made a call whose admission took `waited_ms`.
    fn record_call(&self, i: usize, waited_ms: u64) {
        if !matches!(self.cut(), Cut::Since(_)) {
            return;
        }
        let mut views = self.lock();
        let view = &mut views[i];
        view.calls_while_cut += 1;
        if waited_ms > view.longest_wait_while_cut.0 {
            view.longest_wait_while_cut = (waited_ms, SimClock::elapsed_ms());
        }
    }
}

async fn sample(fleet: Fleet, i: usize, client: Client, breaker: switchyard_sdk::Breaker) {
    let mut ticker = tokio::time::interval(Duration::from_millis(SAMPLE_INTERVAL_MS));
    loop {
        ticker.tick().await;
        let now_ms = SimClock::elapsed_ms();
        let cut = fleet.cut();
        let mode = client.mode();
        let mut views = fleet.lock();
        let view = &mut views[i];
        view.decision_index = breaker.applied_index();
        view.admission = breaker.admission();
        view.samples += 1;
        view.note_mode(cut, mode, now_ms);
    }
}
