//! The breaker state machine, shared by the cluster ([`TripMode::Fleet`]) and the SDK's local
//! fallback breaker ([`TripMode::Local`]).
//!
//! ```text
//!            window: calls >= min_calls, rate >= threshold,
//!            (fleet) bad instances >= required
//!   ┌────────┐ ─────────────────────────────────────────▶ ┌──────┐
//!   │ CLOSED │                                            │ OPEN │◀─┐ any probe fails
//!   └────────┘ ◀──────────────┐                           └──────┘  │ (consecutive_opens+1,
//!        ▲     probe_success_ │         now >= open_until    │      │  duration doubles)
//!        │     threshold      │  ┌───────────┐ ◀─────────────┘      │
//!        │     successes      └──│ HALF_OPEN │──────────────────────┘
//!        │                       └───────────┘  at most probe_permits leases at a time
//!        │
//!        │ override expiry / clear / reset: fresh window, automatic control resumes
//!   FORCED_OPEN · FORCED_CLOSED · DISABLED · METRICS_ONLY   (operator overrides)
//! ```
//!
//! **Fleet trip rule.** A fleet-wide trip needs evidence from several instances, so that a
//! fault local to one host (its NIC, its DNS cache, its noisy neighbour) does not open the
//! breaker for everyone. With `live` = instances that reported anything in the window and
//! `bad` = instances that reported failures (or slow calls, for a slow-rate trip) in it, the
//! breaker trips only if `bad >= required`, where
//! `required = max(min(min_instances, live), min(min_instances, 2))`. Taking `live` into
//! account lets a fleet smaller than `min_instances` still trip when all its members agree;
//! the floor of two means that with `min_instances >= 2` **one instance alone never trips the
//! fleet**, whatever its failure rate: that instance's own SDK local breaker (same policy,
//! [`TripMode::Local`], no instance rule) protects it instead.
//!
//! **Open duration.** `open_duration_ms × 2^(consecutive_opens − 1)`, capped at
//! `open_duration_max_ms`, then moved by a jitter in `±open_jitter_percent` of that value.
//! The jitter is a hash (splitmix64) of the key, the open time and the open count: replicas
//! replaying the log compute the same value, yet breakers opened together do not all probe
//! at the same instant. The jitter is applied after the cap, so a capped duration may exceed
//! the cap by up to the jitter.
//!
//! **Overrides.** While an override is active the automatic machine is frozen: no trip, no
//! timed transition, no probe. The window keeps collecting (so METRICS_ONLY observes), but
//! when the override ends (expiry, clear, reset) the breaker restarts CLOSED with a fresh
//! window, so stale evidence from before the override cannot trip it at once.
//!
//! **Per-instance table.** Each breaker remembers, per instance, the window position of its
//! last report and of its last failure and slow call. Entries that fell out of the window are
//! pruned at every evaluation; the table is also bounded by `max_instances_per_breaker` and
//! when it is full the instance with the oldest report is evicted (it is the one least likely
//! to still be in the window). The table also marks each instance's last first attempt of a
//! retry-budgeted call: the retrying instances of [`FleetRetries`]. An instance joins the
//! table by its completed calls only, so retry figures never change the trip rule's `live`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    BreakerKey, CommandError, FleetRetries, InstanceId, LatencySketch, Policy, RetryTotals, Window,
    WindowSpec, WindowTotals,
};

/// The effective state of a breaker: the automatic state, or the active override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    /// Calls flow; the window is judged.
    Closed,
    /// Calls are rejected until `open_until_ms`.
    Open,
    /// Only calls holding a probe permit flow.
    HalfOpen,
    /// Operator: reject every call.
    ForcedOpen,
    /// Operator: allow every call, never trip.
    ForcedClosed,
    /// Operator: the breaker is off (always allow, no transitions).
    Disabled,
    /// Operator: collect metrics, never trip.
    MetricsOnly,
}

impl BreakerState {
    /// Every state, in declaration order.
    pub const ALL: [BreakerState; 7] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::ForcedClosed,
        BreakerState::Disabled,
        BreakerState::MetricsOnly,
    ];

    /// `CLOSED`, `OPEN`, `HALF_OPEN`, `FORCED_OPEN`, `FORCED_CLOSED`, `DISABLED`, `METRICS_ONLY`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
            BreakerState::ForcedOpen => "FORCED_OPEN",
            BreakerState::ForcedClosed => "FORCED_CLOSED",
            BreakerState::Disabled => "DISABLED",
            BreakerState::MetricsOnly => "METRICS_ONLY",
        }
    }

    /// Parses the `as_str` form (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let upper = s.trim().to_ascii_uppercase();
        Self::ALL.into_iter().find(|st| st.as_str() == upper)
    }

    /// Whether ordinary calls (without a probe permit) are admitted.
    pub fn admits_calls(self) -> bool {
        !matches!(
            self,
            BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
        )
    }

    /// Whether the state counts as part of an open episode for SLA reports.
    pub fn is_open_like(self) -> bool {
        matches!(
            self,
            BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
        )
    }

    /// Index 0–6, for per-state arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator override of the automatic machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideMode {
    /// Reject every call.
    ForcedOpen,
    /// Allow every call.
    ForcedClosed,
    /// Breaker off: always allow, no transitions.
    Disabled,
    /// Collect metrics, never trip.
    MetricsOnly,
}

impl OverrideMode {
    /// The effective state while this override is active.
    pub fn state(self) -> BreakerState {
        match self {
            OverrideMode::ForcedOpen => BreakerState::ForcedOpen,
            OverrideMode::ForcedClosed => BreakerState::ForcedClosed,
            OverrideMode::Disabled => BreakerState::Disabled,
            OverrideMode::MetricsOnly => BreakerState::MetricsOnly,
        }
    }

    /// `forced_open`, `forced_closed`, `disabled`, `metrics_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideMode::ForcedOpen => "forced_open",
            OverrideMode::ForcedClosed => "forced_closed",
            OverrideMode::Disabled => "disabled",
            OverrideMode::MetricsOnly => "metrics_only",
        }
    }
}

/// How a returned probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The trial call succeeded.
    Success,
    /// The trial call failed: the breaker re-opens.
    Failure,
    /// The permit was not used: it just frees its slot.
    Unused,
}

/// Whether the breaker judges a fleet (instance rule applies) or one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TripMode {
    /// The cluster's breaker: `min_instances` applies.
    Fleet,
    /// The SDK's own breaker: `min_instances` does not apply.
    Local,
}

/// A change of effective state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
    /// Why, e.g. `failure_rate 63% >= 50% over 212 calls from 7 instances`.
    pub reason: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ActiveOverride {
    mode: OverrideMode,
    reason: String,
    set_at_ms: u64,
    expires_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProbeLease {
    permit_id: u64,
    instance: Option<InstanceId>,
    expires_at_ms: u64,
}

/// Window positions of an instance's last report and, one past, of its last failure, slow
/// call and first attempt under a retry budget (0: none). Plain integers rather than
/// `Option`s: the table is looked up for every delta and walked on every evaluation, so its
/// entries are kept to 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct InstanceMarks {
    last_report: u64,
    last_failure_next: u64,
    last_slow_next: u64,
    last_attempt_next: u64,
}

/// One breaker: automatic state machine, window, override and probe leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    key: BreakerKey,
    policy: Policy,
    mode: TripMode,
    auto_state: BreakerState,
    state_override: Option<ActiveOverride>,
    reason: String,
    since_ms: u64,
    opened_at_ms: u64,
    open_until_ms: Option<u64>,
    consecutive_opens: u32,
    probe_successes: u32,
    leases: Vec<ProbeLease>,
    window: Window,
    instances: BTreeMap<InstanceId, InstanceMarks>,
}

/// FNV-1a 64 of bytes.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The open duration for the `consecutive_opens`-th open since the last close (1-based),
/// opened at `opened_at_ms`: doubled per re-open, capped, then jittered deterministically.
pub fn open_duration_ms(
    policy: &Policy,
    key: &BreakerKey,
    opened_at_ms: u64,
    consecutive_opens: u32,
) -> u64 {
    let exponent = consecutive_opens.saturating_sub(1);
    let base = if exponent >= 63 {
        u64::MAX
    } else {
        policy.open_duration_ms.saturating_mul(1u64 << exponent)
    };
    let capped = base.min(policy.open_duration_max_ms);
    let span = capped / 100 * u64::from(policy.open_jitter_percent)
        + capped % 100 * u64::from(policy.open_jitter_percent) / 100;
    if span == 0 {
        return capped.max(1);
    }
    let h = splitmix64(
        fnv1a64(key.as_str().as_bytes())
            ^ opened_at_ms
            ^ u64::from(consecutive_opens).rotate_left(32),
    );
    let offset = h % (2 * span + 1);
    (capped - span + offset).max(1)
}

impl Breaker {
    /// A new CLOSED breaker.
    pub fn new(key: BreakerKey, policy: Policy, mode: TripMode, now_ms: u64) -> Self {
        let window = Window::new(policy.window);
        Self {
            key,
            policy,
            mode,
            auto_state: BreakerState::Closed,
            state_override: None,
            reason: "created".to_owned(),
            since_ms: now_ms,
            opened_at_ms: 0,
            open_until_ms: None,
            consecutive_opens: 0,
            probe_successes: 0,
            leases: Vec::new(),
            window,
            instances: BTreeMap::new(),
        }
    }

    /// The breaker's key.
    pub fn key(&self) -> &BreakerKey {
        &self.key
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Fleet or local.
    pub fn mode(&self) -> TripMode {
        self.mode
    }

    /// The effective state.
    pub fn state(&self) -> BreakerState {
        match &self.state_override {
            Some(o) => o.mode.state(),
            None => self.auto_state,
        }
    }

    /// Why the breaker is in its state.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// When the effective state was entered.
    pub fn since_ms(&self) -> u64 {
        self.since_ms
    }

    /// When OPEN ends (only while automatically OPEN).
    pub fn open_until_ms(&self) -> Option<u64> {
        if self.state() == BreakerState::Open {
            self.open_until_ms
        } else {
            None
        }
    }

    /// The active override, if any.
    pub fn override_mode(&self) -> Option<OverrideMode> {
        self.state_override.as_ref().map(|o| o.mode)
    }

    /// The active override's expiry.
    pub fn override_expires_at_ms(&self) -> Option<u64> {
        self.state_override.as_ref().and_then(|o| o.expires_at_ms)
    }

    /// Opens since the last close.
    pub fn consecutive_opens(&self) -> u32 {
        self.consecutive_opens
    }

    /// Probe leases currently held.
    pub fn probe_permits_in_use(&self) -> u32 {
        self.leases.len() as u32
    }

    /// Successful probes counted in this HALF_OPEN period.
    pub fn probe_successes(&self) -> u32 {
        self.probe_successes
    }

    /// The window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Window totals at `now_ms`.
    pub fn window_totals(&self, now_ms: u64) -> WindowTotals {
        self.window.totals(now_ms)
    }

    /// The window's merged latency at `now_ms`.
    pub fn window_latency(&self, now_ms: u64) -> LatencySketch {
        self.window.latency(now_ms)
    }

    /// Instances that reported inside the window at `now_ms`.
    pub fn live_instances(&self, now_ms: u64) -> u32 {
        let oldest = self.window.oldest_position(now_ms);
        self.instances
            .values()
            .filter(|m| m.last_report >= oldest)
            .count() as u32
    }

    /// Whether `permit_id` is a live lease at `now_ms`.
    pub fn has_live_lease(&self, permit_id: u64, now_ms: u64) -> bool {
        self.state() == BreakerState::HalfOpen
            && self
                .leases
                .iter()
                .any(|l| l.permit_id == permit_id && l.expires_at_ms > now_ms)
    }

    /// Replaces the policy. A different window shape starts a fresh window.
    pub fn set_policy(&mut self, policy: Policy) {
        if policy.window != self.policy.window {
            self.window = Window::new(policy.window);
            self.instances.clear();
        }
        self.policy = policy;
    }

    /// Adds outcomes reported at `now_ms` (by `instance`, in fleet mode) to the window,
    /// tracking at most `max_instances` instances. Does not judge the window: call
    /// [`Breaker::evaluate`] once after a batch.
    pub fn record(
        &mut self,
        now_ms: u64,
        instance: Option<&InstanceId>,
        outcomes: WindowTotals,
        latency: Option<&LatencySketch>,
        max_instances: usize,
    ) {
        self.record_inner::<false>(
            now_ms,
            instance,
            outcomes,
            RetryTotals::default(),
            latency,
            max_instances,
        );
    }

    /// [`Breaker::record`] with the retry figures of the same report (see [`FleetRetries`]).
    /// Figures from an instance the table does not know yet (a report with no completed
    /// call) are windowed, but do not mark it.
    pub fn record_with_retries(
        &mut self,
        now_ms: u64,
        instance: Option<&InstanceId>,
        outcomes: WindowTotals,
        retries: RetryTotals,
        latency: Option<&LatencySketch>,
        max_instances: usize,
    ) {
        self.record_inner::<true>(now_ms, instance, outcomes, retries, latency, max_instances);
    }

    /// Both records; `RETRIES` = false compiles the retry figures away, so reports without
    /// them (the apply path's common case) cost what they did before fleet retry budgets.
    #[inline(always)]
    fn record_inner<const RETRIES: bool>(
        &mut self,
        now_ms: u64,
        instance: Option<&InstanceId>,
        outcomes: WindowTotals,
        retries: RetryTotals,
        latency: Option<&LatencySketch>,
        max_instances: usize,
    ) {
        let WindowTotals {
            calls,
            failures,
            slow,
        } = outcomes;
        let retrying = RETRIES && retries.first_attempts | retries.retries != 0;
        if calls == 0 && !retrying {
            return;
        }
        let position = if retrying {
            self.window
                .record_with_retries(now_ms, outcomes, retries, latency)
        } else {
            self.window.record(now_ms, outcomes, latency)
        };
        if self.mode == TripMode::Local {
            return;
        }
        let Some(id) = instance else { return };
        let next = position.saturating_add(1);
        let mark = |hit: bool| if hit { next } else { 0 };
        let attempt = RETRIES && retries.first_attempts > 0;
        if let Some(marks) = self.instances.get_mut(id) {
            if calls > 0 {
                marks.last_report = position;
            }
            if failures > 0 {
                marks.last_failure_next = next;
            }
            if slow > 0 {
                marks.last_slow_next = next;
            }
            if attempt {
                marks.last_attempt_next = next;
            }
            return;
        }
        if calls == 0 {
            return;
        }
        if self.instances.len() >= max_instances.max(1) {
            let oldest = self.window.oldest_position(now_ms);
            self.instances.retain(|_, m| m.last_report >= oldest);
            if self.instances.len() >= max_instances.max(1) {
                let victim = self
                    .instances
                    .iter()
                    .min_by_key(|(_, m)| m.last_report)
                    .map(|(k, _)| k.clone());
                if let Some(victim) = victim {
                    self.instances.remove(&victim);
                }
            }
        }
        self.instances.insert(
            id.clone(),
            InstanceMarks {
                last_report: position,
                last_failure_next: mark(failures > 0),
                last_slow_next: mark(slow > 0),
                last_attempt_next: mark(attempt),
            },
        );
    }

    /// The fleet's retry figures over the window at `now_ms` (see [`FleetRetries`]).
    pub fn fleet_retries(&self, now_ms: u64) -> FleetRetries {
        let oldest = self.window.oldest_position(now_ms);
        let instances = self
            .instances
            .values()
            .filter(|m| m.last_report >= oldest && m.last_attempt_next > oldest)
            .count();
        self.fleet_retries_of(now_ms, u32::try_from(instances).unwrap_or(u32::MAX))
    }

    fn fleet_retries_of(&self, now_ms: u64, instances: u32) -> FleetRetries {
        let totals = self.window.retry_totals(now_ms);
        FleetRetries {
            first_attempts: totals.first_attempts,
            retries: totals.retries,
            instances,
            window_ms: self.window.span_ms(now_ms),
        }
    }

    /// [`Breaker::evaluate`], then the fleet's retry figures at the same time, counting the
    /// retrying instances in the pass that prunes the instance table (equal to
    /// [`Breaker::fleet_retries`], without a second walk over the table).
    pub fn evaluate_with_retries(&mut self, now_ms: u64) -> (Option<Transition>, FleetRetries) {
        let mut retrying = 0u32;
        let transition = self.evaluate_counting(now_ms, Some(&mut retrying));
        (transition, self.fleet_retries_of(now_ms, retrying))
    }

    /// Judges the window at `now_ms`: CLOSED -> OPEN if the trip rule holds.
    pub fn evaluate(&mut self, now_ms: u64) -> Option<Transition> {
        self.evaluate_counting(now_ms, None)
    }

    fn evaluate_counting(&mut self, now_ms: u64, retrying: Option<&mut u32>) -> Option<Transition> {
        self.window.expire(now_ms);
        let oldest = self.window.oldest_position(now_ms);
        if self.mode == TripMode::Fleet {
            match retrying {
                None => self.instances.retain(|_, m| m.last_report >= oldest),
                Some(count) => self.instances.retain(|_, m| {
                    let live = m.last_report >= oldest;
                    *count += u32::from(live && m.last_attempt_next > oldest);
                    live
                }),
            }
        }
        if self.state_override.is_some() || self.auto_state != BreakerState::Closed {
            return None;
        }
        let t = self.window.totals(now_ms);
        if t.calls == 0 || t.calls < u64::from(self.policy.min_calls) {
            return None;
        }
        let failure_hit = u128::from(t.failures) * 100
            >= u128::from(self.policy.failure_rate_threshold) * u128::from(t.calls);
        let slow_hit = u128::from(t.slow) * 100
            >= u128::from(self.policy.slow_call_rate_threshold) * u128::from(t.calls);
        if !failure_hit && !slow_hit {
            return None;
        }
        let percent = |n: u64| (u128::from(n) * 100 / u128::from(t.calls)) as u64;
        if self.mode == TripMode::Local {
            let reason = if failure_hit {
                format!(
                    "failure_rate {}% >= {}% over {} calls",
                    percent(t.failures),
                    self.policy.failure_rate_threshold,
                    t.calls
                )
            } else {
                format!(
                    "slow_call_rate {}% >= {}% over {} calls",
                    percent(t.slow),
                    self.policy.slow_call_rate_threshold,
                    t.calls
                )
            };
            return Some(self.open(now_ms, reason));
        }
        let (mut live, mut failing, mut slowing) = (0usize, 0usize, 0usize);
        for m in self.instances.values() {
            live += 1;
            failing += usize::from(m.last_failure_next > oldest);
            slowing += usize::from(m.last_slow_next > oldest);
        }
        let min_instances = self.policy.min_instances as usize;
        let required = min_instances.min(live).max(min_instances.min(2));
        if failure_hit && failing >= required {
            let reason = format!(
                "failure_rate {}% >= {}% over {} calls from {} instances",
                percent(t.failures),
                self.policy.failure_rate_threshold,
                t.calls,
                failing
            );
            return Some(self.open(now_ms, reason));
        }
        if slow_hit && slowing >= required {
            let reason = format!(
                "slow_call_rate {}% >= {}% over {} calls from {} instances",
                percent(t.slow),
                self.policy.slow_call_rate_threshold,
                t.calls,
                slowing
            );
            return Some(self.open(now_ms, reason));
        }
        None
    }

    fn open(&mut self, now_ms: u64, reason: String) -> Transition {
        let from = self.state();
        self.consecutive_opens = self.consecutive_opens.saturating_add(1);
        self.opened_at_ms = now_ms;
        let duration = open_duration_ms(&self.policy, &self.key, now_ms, self.consecutive_opens);
        self.open_until_ms = Some(now_ms.saturating_add(duration));
        self.auto_state = BreakerState::Open;
        self.leases.clear();
        self.probe_successes = 0;
        self.change(from, now_ms, reason)
    }

    fn close(&mut self, now_ms: u64, reason: String) -> Transition {
        let from = self.state();
        self.restart_closed();
        self.change(from, now_ms, reason)
    }

    fn restart_closed(&mut self) {
        self.state_override = None;
        self.auto_state = BreakerState::Closed;
        self.window = Window::new(self.policy.window);
        self.instances.clear();
        self.consecutive_opens = 0;
        self.open_until_ms = None;
        self.leases.clear();
        self.probe_successes = 0;
    }

    fn change(&mut self, from: BreakerState, now_ms: u64, reason: String) -> Transition {
        let to = self.state();
        if from != to {
            self.since_ms = now_ms;
        }
        self.reason.clone_from(&reason);
        Transition {
            from,
            to,
            reason,
            at_ms: now_ms,
        }
    }

    /// Fires timed transitions due at `now_ms`: override expiry (-> CLOSED, fresh window),
    /// OPEN -> HALF_OPEN at `open_until_ms`, and expiry of probe leases.
    pub fn advance(&mut self, now_ms: u64) -> Option<Transition> {
        if let Some(o) = &self.state_override {
            return match o.expires_at_ms {
                Some(expires) if now_ms >= expires => {
                    let reason = format!(
                        "override {} expired, automatic control resumes",
                        o.mode.as_str()
                    );
                    Some(self.close(now_ms, reason))
                }
                _ => None,
            };
        }
        match self.auto_state {
            BreakerState::Open => match self.open_until_ms {
                Some(until) if now_ms >= until => {
                    let from = self.state();
                    let reason = format!("open for {} ms, probing", until - self.opened_at_ms);
                    self.auto_state = BreakerState::HalfOpen;
                    self.open_until_ms = None;
                    self.leases.clear();
                    self.probe_successes = 0;
                    Some(self.change(from, now_ms, reason))
                }
                _ => None,
            },
            BreakerState::HalfOpen => {
                self.leases.retain(|l| l.expires_at_ms > now_ms);
                None
            }
            _ => None,
        }
    }

    /// The earliest time a timed transition is due: override expiry, end of OPEN, or the
    /// first probe lease expiry.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        if let Some(o) = &self.state_override {
            return o.expires_at_ms;
        }
        match self.auto_state {
            BreakerState::Open => self.open_until_ms,
            BreakerState::HalfOpen => self.leases.iter().map(|l| l.expires_at_ms).min(),
            _ => None,
        }
    }

    /// Grants probe permit `permit_id` if HALF_OPEN with a free slot; returns the lease
    /// expiry, or why not.
    pub fn acquire_probe(
        &mut self,
        now_ms: u64,
        permit_id: u64,
        instance: Option<InstanceId>,
    ) -> Result<u64, String> {
        let state = self.state();
        if state != BreakerState::HalfOpen {
            return Err(format!(
                "breaker is {state}, probes are granted only in HALF_OPEN"
            ));
        }
        self.leases.retain(|l| l.expires_at_ms > now_ms);
        if self.leases.len() >= self.policy.probe_permits as usize {
            return Err(format!(
                "all {} probe permits are in use",
                self.policy.probe_permits
            ));
        }
        let expires_at_ms = now_ms.saturating_add(self.policy.probe_lease_ms);
        self.leases.push(ProbeLease {
            permit_id,
            instance,
            expires_at_ms,
        });
        Ok(expires_at_ms)
    }

    /// The permit ids of live leases, oldest first.
    pub fn lease_ids(&self) -> Vec<u64> {
        self.leases.iter().map(|l| l.permit_id).collect()
    }

    /// Returns permit `permit_id` with its outcome. Success may close the breaker, failure
    /// re-opens it; an unknown or expired permit is [`CommandError::StaleProbe`] and changes
    /// nothing.
    pub fn release_probe(
        &mut self,
        now_ms: u64,
        permit_id: u64,
        outcome: ProbeOutcome,
    ) -> Result<Option<Transition>, CommandError> {
        if !self.has_live_lease(permit_id, now_ms) {
            return Err(CommandError::StaleProbe { permit_id });
        }
        self.leases.retain(|l| l.permit_id != permit_id);
        match outcome {
            ProbeOutcome::Unused => Ok(None),
            ProbeOutcome::Success => {
                self.probe_successes += 1;
                if self.probe_successes >= self.policy.probe_success_threshold {
                    let reason = format!(
                        "{} of {} probes succeeded",
                        self.probe_successes, self.policy.probe_success_threshold
                    );
                    Ok(Some(self.close(now_ms, reason)))
                } else {
                    Ok(None)
                }
            }
            ProbeOutcome::Failure => {
                let next = self.consecutive_opens.saturating_add(1);
                let reason =
                    format!("probe {permit_id} failed, re-opening (consecutive open {next})");
                Ok(Some(self.open(now_ms, reason)))
            }
        }
    }

    /// Sets (or replaces) an override. The automatic machine is frozen until it ends.
    /// Returns the transition if the effective state changed.
    pub fn set_override(
        &mut self,
        now_ms: u64,
        mode: OverrideMode,
        reason: &str,
        expires_at_ms: Option<u64>,
    ) -> Option<Transition> {
        let from = self.state();
        self.auto_state = BreakerState::Closed;
        self.open_until_ms = None;
        self.leases.clear();
        self.probe_successes = 0;
        let text = if reason.is_empty() {
            format!("{} by operator", mode.state().as_str())
        } else {
            reason.to_owned()
        };
        self.state_override = Some(ActiveOverride {
            mode,
            reason: text.clone(),
            set_at_ms: now_ms,
            expires_at_ms,
        });
        let t = self.change(from, now_ms, text);
        (t.from != t.to).then_some(t)
    }

    /// Ends the active override; automatic control resumes at CLOSED with a fresh window.
    /// `None` if there was no override.
    pub fn clear_override(&mut self, now_ms: u64, reason: &str) -> Option<Transition> {
        let mode = self.state_override.as_ref()?.mode;
        let text = if reason.is_empty() {
            format!(
                "override {} cleared, automatic control resumes",
                mode.as_str()
            )
        } else {
            format!("override {} cleared: {reason}", mode.as_str())
        };
        Some(self.close(now_ms, text))
    }

    /// Resets the breaker: ends any override and restarts CLOSED with a fresh window and no
    /// back-off history. Always returns the (possibly CLOSED -> CLOSED) transition.
    pub fn reset(&mut self, now_ms: u64, reason: &str) -> Transition {
        let text = if reason.is_empty() {
            "reset by operator".to_owned()
        } else {
            format!("reset: {reason}")
        };
        self.close(now_ms, text)
    }

    /// A window shape check used by views: the window spec in force.
    pub fn window_spec(&self) -> WindowSpec {
        self.window.spec()
    }
}
