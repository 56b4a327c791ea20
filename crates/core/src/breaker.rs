//! The breaker state machine, shared by the cluster ([`TripMode::Fleet`]) and the SDK's local
//! fallback breaker ([`TripMode::Local`]).
//!
//! ```text
//!            whole window or freshest span holds the evidence
//!            (trip_rule: rate, confidence, bad instances >= required)
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
//! **Fleet trip rule** (`trip_rule`: the whole window, and the freshest span with
//! confidence). A fleet-wide trip needs evidence from several instances, so that a
//! fault local to one host (its NIC, its DNS cache, its noisy neighbour) does not open the
//! breaker for everyone. With `live` = instances that reported anything in the window and
//! `bad` = instances that reported failures (or slow calls, for a slow-rate trip) in the span
//! judged, the breaker trips only if `bad >= required`, where
//! `required = max(min(min_instances, live), min(min_instances, 2))`. Taking `live` into
//! account lets a fleet smaller than `min_instances` still trip when all its members agree;
//! the floor of two means that with `min_instances >= 2` **one instance alone never trips the
//! fleet**, whatever its failure rate: that instance's own SDK local breaker (same policy,
//! [`TripMode::Local`], no instance rule) protects it instead.
//!
//! **Open duration** (`open_duration`): doubled per consecutive open, capped, jittered by a
//! hash so that replicas agree and breakers opened together do not probe together.
//!
//! **Overrides.** While an override is active the automatic machine is frozen: no trip, no
//! timed transition, no probe. The window keeps collecting (so METRICS_ONLY observes), but
//! when the override ends (expiry, clear, reset) the breaker restarts CLOSED with a fresh
//! window, so stale evidence from before the override cannot trip it at once.
//!
//! **Per-instance table.** Each breaker remembers, per instance, the window position of its
//! last report and of its last failure and slow call. Entries that fell out of the window are
//! pruned at every evaluation; the table is also bounded by `max_instances_per_breaker` and
//! when it is full the oldest eighth of it by last report is evicted at once (those least
//! likely to still be in the window; one at a time made a fleet larger than the table cost a
//! walk of the table per delta). The table also marks each instance's last first attempt of a
//! retry-budgeted call: the retrying instances of [`crate::FleetRetries`]. An instance joins
//! the table by its completed calls only, so retry figures never change the trip rule's `live`.
//! A breaker stored before fine window positions has its marks rescaled as it loads (see
//! `window_serde`).

mod instance_table;
mod open_duration;
mod record;
mod trip_rule;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use open_duration::open_duration_ms;

use crate::{
    BreakerKey, BreakerState, CommandError, InstanceId, LatencySketch, OverrideMode, Policy,
    ProbeOutcome, Transition, TripMode, Window, WindowTotals,
};

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

impl InstanceMarks {
    /// Marks stored in window positions `scale` times coarser than today's.
    fn rescaled(self, scale: u64) -> Self {
        let next = |v: u64| if v == 0 { 0 } else { (v - 1) * scale + 1 };
        InstanceMarks {
            last_report: self.last_report * scale,
            last_failure_next: next(self.last_failure_next),
            last_slow_next: next(self.last_slow_next),
            last_attempt_next: next(self.last_attempt_next),
        }
    }
}

/// One breaker: automatic state machine, window, override and probe leases. The derive is
/// `remote = "Self"` so that [`Deserialize`] can rescale a loaded legacy window's marks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
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
    #[serde(serialize_with = "instance_table::serialize_in_id_order")]
    instances: instance_table::InstanceTable,
}

impl Serialize for Breaker {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Breaker::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Breaker {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut breaker = Breaker::deserialize(deserializer)?;
        let scale = std::mem::replace(&mut breaker.window.legacy_scale, 1);
        if scale > 1 {
            for marks in breaker.instances.values_mut() {
                *marks = marks.rescaled(scale);
            }
        }
        Ok(breaker)
    }
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
            instances: instance_table::InstanceTable::default(),
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
}
