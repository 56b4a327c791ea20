//! [`Fleet`]: the SDK hosts. Each runs the real `switchyard-sdk` [`Client`] over turmoil and
//! calls the simulated [`Dependency`] at a fixed rate, guarded by one breaker.
//!
//! Each instance also samples what its SDK shows (mode, decision index, admission) a few
//! times per SDK tick into an [`InstanceView`] the checker reads; a decrease of the decision
//! index is recorded at the moment it is seen.
//!
//! [`FleetOptions::greedy_probes`] is the planted bug of the checker's own test: the
//! instance then ignores the probe limit and calls the dependency whenever the cluster says
//! HALF_OPEN, permit or not. The probe-limit invariant must catch it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_sdk::{Admission, Client, ClientOptions, Mode, Outcome, PermitKind};

use crate::cluster::node_addr;
use crate::dependency::Dependency;
use crate::net::SimConnector;
use crate::scenario::{BREAKER_KEY, Scenario};

/// How often each instance samples its SDK's view.
pub const SAMPLE_INTERVAL_MS: u64 = 50;

/// The host name of instance `i`.
pub fn instance_host(i: u64) -> String {
    format!("app{i}")
}

/// How the fleet runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetOptions {
    /// Every SDK in local-only mode (no cluster): the baseline of the fleet comparison.
    pub local_only: bool,
    /// The planted bug: call during HALF_OPEN without a probe permit.
    pub greedy_probes: bool,
}

/// What one instance's SDK showed when last sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    /// The fail-static mode.
    pub mode: Mode,
    /// The breaker's decision index.
    pub decision_index: u64,
    /// What `allow()` does.
    pub admission: Admission,
    /// Decreases of the decision index seen: `(at_ms, from, to)`.
    pub index_regressions: Vec<(u64, u64, u64)>,
    /// Samples taken.
    pub samples: u64,
}

impl Default for InstanceView {
    fn default() -> Self {
        Self {
            mode: Mode::Cluster,
            decision_index: 0,
            admission: Admission::Allow,
            index_regressions: Vec::new(),
            samples: 0,
        }
    }
}

/// The fleet's shared views, one per instance.
#[derive(Debug, Clone)]
pub struct Fleet {
    views: Arc<Mutex<Vec<InstanceView>>>,
}

impl Fleet {
    /// Views for `instances` instances.
    pub fn new(instances: u64) -> Self {
        Self {
            views: Arc::new(Mutex::new(vec![
                InstanceView::default();
                instances as usize
            ])),
        }
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
                tokio::spawn(sample(fleet, i as usize, client.clone(), breaker.clone()));
                let mut ticker = tokio::time::interval(call_interval);
                loop {
                    ticker.tick().await;
                    let kind = match breaker.allow() {
                        Ok(permit) => Some((permit.kind(), Some(permit))),
                        Err(_)
                            if options.greedy_probes
                                && breaker.admission() == Admission::ClusterProbe =>
                        {
                            Some((PermitKind::ClusterProbe, None))
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

async fn sample(fleet: Fleet, i: usize, client: Client, breaker: switchyard_sdk::Breaker) {
    let mut ticker = tokio::time::interval(Duration::from_millis(SAMPLE_INTERVAL_MS));
    loop {
        ticker.tick().await;
        let index = breaker.applied_index();
        let mut views = fleet.lock();
        let view = &mut views[i];
        if index < view.decision_index {
            let at_ms = crate::clock::SimClock::elapsed_ms();
            view.index_regressions
                .push((at_ms, view.decision_index, index));
        }
        view.decision_index = index;
        view.mode = client.mode();
        view.admission = breaker.admission();
        view.samples += 1;
    }
}
