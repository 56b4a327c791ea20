//! The agent's state machine: decisions, local breakers, probe ledgers, mode, reports.
//!
//! This is the pure part of the background agent (in the spirit of `crates/core`): every
//! input comes in as a method call with the time as a value, and it does no I/O. The async
//! loops in [`crate::agent`] feed it watch events and ticks and carry out the RPCs it asks
//! for ([`ProbeWork`], queued reports). Tests drive it directly with a fake clock.
//!
//! Per tick (every `report_interval`):
//!
//! 1. swap each breaker's striped counters into a delta (with the first attempts and retries
//!    of calls under a retry budget); feed it to the breaker's [`LocalBreaker`] (same policy
//!    as the cluster's, received with the decisions);
//! 2. re-derive the [`Mode`] from the time since the last watch event;
//! 3. evaluate the decision rule ([`crate::decide`]) and publish each breaker's admission,
//!    and whether its fleet retry figures are in force for retry budgets (cluster mode and
//!    figures with a retrying instance; see [`crate::RetryBudget`]);
//! 4. manage probe permits: ask the cluster for one where calls were turned away for lack
//!    of a permit, hand granted permits to the hot path, return outcomes, expire leases;
//! 5. queue one report with every non-empty delta (bounded queue, drop-oldest).
//!
//! **Index monotonicity.** Every watch event carries the applied index it reflects; an event
//! with a lower index than the one in force is ignored (several events may share an index:
//! one tick entry changes many breakers). This holds across streams and reconnects, so a
//! failover to a lagging node never moves a decision backwards.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use switchyard_core::plant::{self, Plant, planted};
use switchyard_core::{
    BreakerKey, BreakerState, FleetRetries, InstanceId, LocalBreaker, Policy, ProbeOutcome, Tier,
};
use switchyard_proto::client as pb;

use crate::breaker_shared::{BreakerShared, POOL_CLUSTER, POOL_LOCAL};
use crate::metrics::SdkMetrics;
use crate::mode::{ModeOptions, ModeTracker};
use crate::probe_ledger::{HeldPermit, Ledger, expire, outcome_counts, reclaim_all};
use crate::report_queue::{ReportQueue, wire_delta};
use crate::{Admission, Error, Mode, RetryBudgetSource};
use switchyard_proto::convert::{self, DecisionUpdate, ScopeUpdate, WatchUpdate};

/// A scope's tier and feature flags as last received from the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInfo {
    /// The scope's degradation tier.
    pub tier: Tier,
    /// Why the scope is in this tier.
    pub reason: String,
    /// Feature flags evaluated at the tier: name → enabled.
    pub features: BTreeMap<String, bool>,
}

/// What the agent publishes for readers outside the hot path.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub(crate) mode: AtomicU8,
    pub(crate) applied_index: AtomicU64,
    pub(crate) scopes: RwLock<HashMap<String, ScopeInfo>>,
}

/// Settings of the agent state, taken from the client options.
#[derive(Debug, Clone)]
pub(crate) struct AgentConfig {
    pub(crate) instance: InstanceId,
    pub(crate) has_cluster: bool,
    pub(crate) mode: ModeOptions,
    pub(crate) default_policy: Policy,
    pub(crate) stripes: usize,
    pub(crate) breakers_max: usize,
    pub(crate) report_queue_max: usize,
    pub(crate) probe_permits_per_instance_max: u32,
    /// The configured report interval, ms: the narrowest the agent reports at.
    pub(crate) report_interval_ms: u64,
}

/// How far the agent widens its report interval at most, in configured intervals: when the
/// cluster asks for more, or refuses reports at a limit again and again.
pub(crate) const REPORT_INTERVAL_WIDEN_MAX: u64 = 64;

#[derive(Debug, Clone)]
struct ClusterBreaker {
    state: BreakerState,
    policy: Policy,
    /// The fleet retry figures of the decision.
    fleet_retries: FleetRetries,
}

/// Drains whose retry counts may still be on their way into the cluster's figures when new
/// figures arrive: a report interval to send, a leader tick to merge, a push to come back.
const RETRY_DRAINS_IN_FLIGHT: usize = 3;

#[derive(Debug)]
struct Entry {
    shared: Arc<BreakerShared>,
    local: LocalBreaker,
    policy: Policy,
    ledgers: [Ledger; 2],
    /// `(first attempts, retries)` of the last drains, newest at `recent_retry_next - 1`.
    recent_retry_counts: [(u64, u64); RETRY_DRAINS_IN_FLIGHT],
    recent_retry_next: usize,
    /// The retry budget source last exported as a metric; `None` until calls through the
    /// breaker use a retry budget.
    retry_source_metric: Option<RetryBudgetSource>,
}

impl Entry {
    /// Installs fleet retry figures in the breaker's cell, counting the last drains as not
    /// yet included in them.
    fn install_fleet_retries(&self, figures: FleetRetries) {
        let recent = self
            .recent_retry_counts
            .iter()
            .fold((0u64, 0u64), |(a, r), &(x, y)| {
                (a.saturating_add(x), r.saturating_add(y))
            });
        self.shared.fleet.install(figures, recent);
    }
}

/// RPCs the agent must make after a tick.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ProbeWork {
    /// Keys to send `AcquireProbe` for.
    pub(crate) acquire: Vec<String>,
    /// `(key, permit_id, outcome)` to send `ReleaseProbe` for.
    pub(crate) release: Vec<(String, u64, ProbeOutcome)>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct AgentState {
    config: AgentConfig,
    tracker: ModeTracker,
    mode: Mode,
    applied_index: u64,
    cluster: HashMap<String, ClusterBreaker>,
    entries: BTreeMap<String, Entry>,
    pub(crate) reports: ReportQueue,
    /// The report interval in force, ms: the configured one, or wider under back-pressure.
    report_interval_ms: u64,
    /// When the next report is due; outcomes drained before then merge into the queued one.
    next_report_ms: u64,
    /// Whether the last tick made a report due (the sender is woken for it).
    report_due: bool,
    published: Arc<Published>,
    metrics: SdkMetrics,
}

impl AgentState {
    pub(crate) fn new(
        config: AgentConfig,
        now_ms: u64,
        published: Arc<Published>,
        metrics: SdkMetrics,
    ) -> Self {
        let tracker = ModeTracker::new(config.mode, now_ms, config.has_cluster);
        let mode = tracker.mode_at(now_ms);
        published.mode.store(mode as u8, Relaxed);
        metrics.set_mode(mode);
        Self {
            reports: ReportQueue::new(config.report_queue_max),
            report_interval_ms: config.report_interval_ms,
            next_report_ms: 0,
            report_due: false,
            config,
            tracker,
            mode,
            applied_index: 0,
            cluster: HashMap::new(),
            entries: BTreeMap::new(),
            published,
            metrics,
        }
    }

    /// The mode in force.
    #[cfg(test)]
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// The applied index of the decisions in force.
    pub(crate) fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The breaker for `key`, created on first use with `policy` (until the cluster sends
    /// one) or the default policy.
    pub(crate) fn breaker(
        &mut self,
        key: &BreakerKey,
        policy: Option<Policy>,
    ) -> Result<Arc<BreakerShared>, Error> {
        if let Some(e) = self.entries.get(key.as_str()) {
            return Ok(Arc::clone(&e.shared));
        }
        if self.entries.len() >= self.config.breakers_max {
            return Err(Error::TooManyBreakers {
                limit: self.config.breakers_max,
            });
        }
        let cluster_policy = self.cluster.get(key.as_str()).map(|c| c.policy.clone());
        let policy = cluster_policy
            .or(policy)
            .unwrap_or_else(|| self.config.default_policy.clone());
        let shared = Arc::new(BreakerShared::new(
            key.clone(),
            self.config.stripes,
            policy.slow_call_duration_ms,
        ));
        let entry = Entry {
            shared: Arc::clone(&shared),
            local: LocalBreaker::new(key.clone(), policy.clone()),
            policy,
            ledgers: Default::default(),
            recent_retry_counts: Default::default(),
            recent_retry_next: 0,
            retry_source_metric: None,
        };
        if let Some(c) = self.cluster.get(key.as_str()) {
            entry.install_fleet_retries(c.fleet_retries);
        }
        self.entries.insert(key.as_str().to_owned(), entry);
        self.publish_one(key.as_str());
        Ok(shared)
    }

    /// Applies one watch event received at `now_ms`; false if its index was older than the
    /// one in force, or it does not decode (the event still counts as contact). Events are
    /// decoded by proto's conversion, the same rules every reader of the wire applies.
    pub(crate) fn apply_event(&mut self, event: pb::WatchEvent, now_ms: u64) -> bool {
        self.tracker.contact(now_ms);
        let ignored = planted(Plant::IgnoreWatch) && self.applied_index > 0;
        if ignored
            || (event.applied_index < self.applied_index && !planted(Plant::AcceptOlderIndex))
        {
            self.refresh(now_ms);
            return false;
        }
        let index = event.applied_index;
        let event = match convert::WatchedEvent::try_from(event) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(field = %e.field, rule = %e.rule, "ignoring a watch event that does not decode");
                self.refresh(now_ms);
                return false;
            }
        };
        plant::observe_decision_index(self.config.instance.as_str(), self.applied_index, index);
        match event.update {
            WatchUpdate::Snapshot { breakers, scopes } => {
                self.cluster.clear();
                for b in breakers {
                    self.upsert_breaker(b);
                }
                let scopes = scopes.into_iter().map(scope_info).collect();
                *self
                    .published
                    .scopes
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = scopes;
            }
            WatchUpdate::Breaker(b) => self.upsert_breaker(b),
            WatchUpdate::Scope(s) => {
                let (name, info) = scope_info(s);
                self.published
                    .scopes
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name, info);
            }
            WatchUpdate::Heartbeat { .. } => {}
        }
        self.applied_index = event.applied_index;
        self.published
            .applied_index
            .store(self.applied_index, Relaxed);
        self.metrics.applied_index.set(self.applied_index);
        self.refresh(now_ms);
        true
    }

    fn upsert_breaker(&mut self, b: DecisionUpdate) {
        let key = b.key.as_str();
        if let Some(entry) = self.entries.get(key) {
            entry.install_fleet_retries(b.fleet_retries);
        }
        if let Some(entry) = self.entries.get_mut(key)
            && entry.policy != b.policy
        {
            entry.local.set_policy(b.policy.clone());
            entry
                .shared
                .set_slow_call_duration_ms(b.policy.slow_call_duration_ms);
            entry.policy = b.policy.clone();
        }
        // The fleet closed the breaker after its probes succeeded: that is fleet-wide evidence
        // the dependency is back, so a local trip from the same episode must not keep this
        // instance out (and send probes of its own) on top of the fleet's probe budget.
        let was_open = self
            .cluster
            .get(key)
            .is_some_and(|c| matches!(c.state, BreakerState::Open | BreakerState::HalfOpen));
        if was_open
            && b.state == BreakerState::Closed
            && let Some(entry) = self.entries.get_mut(key)
        {
            entry.local = LocalBreaker::new(b.key.clone(), entry.policy.clone());
        }
        self.cluster.insert(
            key.to_owned(),
            ClusterBreaker {
                state: b.state,
                policy: b.policy,
                fleet_retries: b.fleet_retries,
            },
        );
    }

    /// Re-derives the mode and republishes every breaker's admission.
    fn refresh(&mut self, now_ms: u64) {
        let mode = self.tracker.mode_at(now_ms);
        if mode != self.mode {
            tracing::info!(from = %self.mode, to = %mode, "switchyard sdk mode changed");
            self.mode = mode;
            self.published.mode.store(mode as u8, Relaxed);
            self.metrics.set_mode(mode);
        }
        let keys: Vec<String> = self.entries.keys().cloned().collect();
        for key in keys {
            self.publish_one(&key);
        }
    }

    fn publish_one(&mut self, key: &str) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        let cluster = self.cluster.get(key);
        let state = cluster.map(|c| c.state);
        (entry.shared).publish_decision(self.mode, state, entry.local.state(), self.applied_index);
        // The fleet retry budget needs fresh contact and figures that say someone retries.
        let fleet_in_force =
            self.mode == Mode::Cluster && cluster.is_some_and(|c| c.fleet_retries.instances > 0);
        entry.shared.fleet.set_in_force(fleet_in_force);
        let source = if fleet_in_force {
            RetryBudgetSource::Fleet
        } else {
            RetryBudgetSource::Local
        };
        if entry.retry_source_metric.is_some_and(|s| s != source) {
            entry.retry_source_metric = Some(source);
            self.metrics.set_retry_budget_source(key, source);
        }
    }

    /// One agent tick at `now_ms` (see the module docs).
    pub(crate) fn tick(&mut self, now_ms: u64) -> ProbeWork {
        let mut work = ProbeWork::default();
        let mut deltas = Vec::new();
        for (key, e) in &mut self.entries {
            let drained = e.shared.drain();
            self.metrics
                .add_calls(key, drained.calls, &drained.rejected);
            e.recent_retry_counts[e.recent_retry_next] = (drained.first_attempts, drained.retries);
            e.recent_retry_next = (e.recent_retry_next + 1) % RETRY_DRAINS_IN_FLIGHT;
            let verdicts = e.shared.fleet.take_verdicts();
            if verdicts != [[0; 2]; 2] {
                self.metrics.add_retry_verdicts(key, &verdicts);
                if e.retry_source_metric.is_none() {
                    let source = e.shared.retry_budget_source();
                    e.retry_source_metric = Some(source);
                    self.metrics.set_retry_budget_source(key, source);
                }
            }
            if drained.calls > 0 {
                e.local
                    .record(now_ms, drained.calls, drained.failures, drained.slow);
            }
            // Local probe outcomes go straight to the local breaker.
            let (ok, failed) = e.shared.probes[POOL_LOCAL].take_outcomes();
            for (n, outcome) in outcome_counts(ok, failed) {
                for _ in 0..n {
                    if e.ledgers[POOL_LOCAL].held.pop_front().is_some() {
                        log_transition(key, e.local.release_probe(now_ms, outcome));
                    }
                }
            }
            log_transition(key, e.local.advance(now_ms));
            // Cluster probe outcomes become ReleaseProbe calls.
            let (ok, failed) = e.shared.probes[POOL_CLUSTER].take_outcomes();
            for (n, outcome) in outcome_counts(ok, failed) {
                for _ in 0..n {
                    if let Some(p) = e.ledgers[POOL_CLUSTER].held.pop_front() {
                        work.release.push((key.clone(), p.id, outcome));
                    }
                }
            }
            if !drained.is_empty() {
                deltas.push(wire_delta(key, &drained));
            }
        }
        self.refresh(now_ms);
        for (key, e) in &mut self.entries {
            manage_local_probes(e, now_ms);
            manage_cluster_probes(
                key,
                e,
                now_ms,
                self.config.probe_permits_per_instance_max,
                &mut work,
            );
        }
        // Due within half a configured interval: ticks run every configured interval, and a
        // tick a millisecond early must not wait a whole interval more.
        let due = now_ms + self.config.report_interval_ms / 2 >= self.next_report_ms;
        if self.config.has_cluster && !deltas.is_empty() {
            let report = pb::ReportRequest {
                instance: self.config.instance.to_string(),
                deltas,
            };
            // Outcomes wait in the newest unsent report: one RPC carries everything since the
            // last one sent, whatever the interval.
            let (_, dropped) = self.reports.add(report, true);
            if dropped.reports > 0 {
                self.metrics.reports_dropped.inc_by(dropped.reports);
                self.metrics.report_deltas_dropped.inc_by(dropped.deltas);
            }
        }
        self.report_due = due && !self.reports.is_empty();
        if self.report_due {
            self.next_report_ms = now_ms + self.report_interval_ms;
        }
        work
    }

    /// Whether the last tick made a report due.
    pub(crate) fn report_due(&self) -> bool {
        self.report_due
    }

    /// The report interval in force, ms.
    pub(crate) fn report_interval_ms(&self) -> u64 {
        self.report_interval_ms
    }

    fn set_report_interval(&mut self, ms: u64) {
        let configured = self.config.report_interval_ms;
        let widest = configured.saturating_mul(REPORT_INTERVAL_WIDEN_MAX);
        let ms = ms.clamp(configured, widest.max(configured));
        // The report due next moves by the change: a wider interval holds it back at once.
        if ms < self.report_interval_ms {
            self.next_report_ms = self
                .next_report_ms
                .saturating_sub(self.report_interval_ms - ms);
        } else {
            self.next_report_ms += ms - self.report_interval_ms;
        }
        self.report_interval_ms = ms;
        self.metrics.report_interval_seconds.set(ms as f64 / 1000.0);
    }

    /// The cluster accepted a report and asks for `advised_ms` between reports (0: the
    /// configured interval).
    pub(crate) fn on_report_accepted(&mut self, advised_ms: u64) {
        self.set_report_interval(advised_ms);
    }

    /// The cluster refused a report at a limit (`RESOURCE_EXHAUSTED`): the report stays
    /// queued (and takes merges), and the interval doubles until an answer says otherwise.
    pub(crate) fn on_report_refused(&mut self) {
        self.metrics.reports_refused.inc();
        self.set_report_interval(self.report_interval_ms.saturating_mul(2));
    }

    /// The cluster granted a probe permit for `key`. Returns a release to send at once when
    /// the permit is no longer wanted (the breaker left HALF_OPEN meanwhile).
    /// The cluster granted `permit_id` for `key` in answer to a request sent at `requested_ms`;
    /// the local lease runs from the request, so it ends no later than the cluster's.
    pub(crate) fn on_probe_granted(
        &mut self,
        key: &str,
        permit_id: u64,
        requested_ms: u64,
    ) -> Option<(String, u64, ProbeOutcome)> {
        self.metrics.probe_permits_granted.inc();
        let Some(e) = self.entries.get_mut(key) else {
            return Some((key.to_owned(), permit_id, ProbeOutcome::Unused));
        };
        e.ledgers[POOL_CLUSTER].acquiring = false;
        if e.shared.admission() != Admission::ClusterProbe {
            return Some((key.to_owned(), permit_id, ProbeOutcome::Unused));
        }
        let expires_at_ms = requested_ms.saturating_add(e.policy.probe_lease_ms);
        e.ledgers[POOL_CLUSTER].held.push_back(HeldPermit {
            id: permit_id,
            expires_at_ms,
        });
        e.shared.probes[POOL_CLUSTER].tokens.fetch_add(1, Relaxed);
        None
    }

    /// The cluster refused (or failed) a probe request for `key`.
    pub(crate) fn on_probe_refused(&mut self, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.ledgers[POOL_CLUSTER].acquiring = false;
        }
    }
}

fn log_transition(key: &str, t: Option<switchyard_core::Transition>) {
    if let Some(t) = t {
        tracing::info!(key, from = %t.from.as_str(), to = %t.to.as_str(), reason = %t.reason, "local breaker transition");
    }
}

fn manage_local_probes(e: &mut Entry, now_ms: u64) {
    let pool = &e.shared.probes[POOL_LOCAL];
    let ledger = &mut e.ledgers[POOL_LOCAL];
    if e.shared.admission() != Admission::LocalProbe {
        for _ in reclaim_all(ledger, pool) {
            let _ = e.local.release_probe(now_ms, ProbeOutcome::Unused);
        }
        pool.demand.store(false, Relaxed);
        return;
    }
    expire(ledger, pool, now_ms);
    if pool.demand.swap(false, Relaxed)
        && (ledger.held.len() as u64) < u64::from(e.policy.probe_permits)
        && e.local.try_acquire_probe(now_ms)
    {
        let expires_at_ms = now_ms.saturating_add(e.policy.probe_lease_ms);
        ledger.held.push_back(HeldPermit {
            id: 0,
            expires_at_ms,
        });
        pool.tokens.fetch_add(1, Relaxed);
    }
}

fn manage_cluster_probes(
    key: &str,
    e: &mut Entry,
    now_ms: u64,
    per_instance_max: u32,
    work: &mut ProbeWork,
) {
    let pool = &e.shared.probes[POOL_CLUSTER];
    let ledger = &mut e.ledgers[POOL_CLUSTER];
    if e.shared.admission() != Admission::ClusterProbe {
        for p in reclaim_all(ledger, pool) {
            work.release
                .push((key.to_owned(), p.id, ProbeOutcome::Unused));
        }
        pool.demand.store(false, Relaxed);
        return;
    }
    expire(ledger, pool, now_ms);
    if !ledger.acquiring
        && (ledger.held.len() as u64) < u64::from(per_instance_max)
        && pool.demand.swap(false, Relaxed)
    {
        ledger.acquiring = true;
        work.acquire.push(key.to_owned());
    }
}

fn scope_info(s: ScopeUpdate) -> (String, ScopeInfo) {
    let info = ScopeInfo {
        tier: s.tier,
        reason: s.reason,
        features: s.features,
    };
    (s.scope.as_str().to_owned(), info)
}

#[cfg(test)]
#[path = "agent_state_test.rs"]
mod tests;
