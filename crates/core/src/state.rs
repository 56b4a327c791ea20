//! The replicated state machine: the one entry point for every command.
//!
//! [`CoordinatorState::apply`] is a pure function of the state, the entry's index and
//! stamped time, and the envelope. Each apply, in this order:
//!
//! 1. advances the clock to `max(now, stamped)` and the last index (always, even on error);
//! 2. validates the command, including the checks that need the state (unknown breaker,
//!    stale permit, expiry in the past); an error leaves everything else unchanged;
//! 3. fires timed transitions now due (override expiry, OPEN -> HALF_OPEN, lease expiry),
//!    in key order;
//! 4. executes the command;
//! 5. re-evaluates the tiers of scopes with rules or a pin (rules, hysteresis, pin expiry)
//!    and enforces audit retention.
//!
//! Why one `Tick` per interval instead of one entry per SDK report: a fleet of thousands of
//! instances reporting every 100 ms would otherwise write tens of thousands of log entries a
//! second. The leader merges reports into one entry, and the apply path evaluates each
//! touched breaker once per tick, so the log grows with the tick rate, not the fleet size.
//!
//! Why nothing in an apply walks the whole fleet: every replica applies every command, so
//! a per-breaker pass on each apply would cap cluster write throughput and make a one-key
//! operator write cost O(fleet). Instead:
//!
//! - SLA time is accounted lazily, per ledger, when that breaker (or scope) changes state or
//!   records a delta; reports add the unaccounted tail (see [`crate::sla`]).
//! - Timed transitions come from a deadline index, `(deadline, key)` for every breaker whose
//!   `next_deadline_ms` is set, re-indexed for the keys a command or a firing touched. It is
//!   derived data but serialized with the state: it is a pure function of the breakers, so
//!   replicas that got here by replay or by snapshot agree byte for byte.
//! - Tiers are re-evaluated for the scopes with rules or not at rest (pinned, pending, not
//!   FULL) only, kept in a second derived set; evaluating any other scope is a no-op. Every
//!   such scope is evaluated on every apply, not only those whose rule breakers were touched,
//!   because window-based conditions (failure rate, p95) change as the window slides with
//!   time alone; there are few such scopes (one rule set each) and a pass is cheap (see the
//!   `apply_admin_tier_rules` bench).
//! - Fleet retry figures ([`crate::FleetRetries`]) are computed only for the breakers a tick
//!   touched with retry figures (or whose pushed figures are still to be retired), and an
//!   [`Effect::FleetRetriesChanged`] is emitted only when they drifted enough to be worth a
//!   push to every watcher; deltas without retry figures take the path they always took,
//!   for the price of one branch (see the `apply_tick` bench and its `_with_retries` twin).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::breaker::fnv1a64;
use crate::scope_tier::{ScopeTier, TierChange};
use crate::sla::{BreakerLedger, ReportInput, build_report};
use crate::{
    AuditEvent, AuditLog, Breaker, BreakerKey, BreakerState, ClusterSettings, Command,
    CommandError, ConditionState, Delta, Envelope, FleetRetries, InstanceId, Policy, PolicyTarget,
    RetryTotals, Scope, SlaReport, SlaWindow, Tier, TierCondition, TierRules, Transition, TripMode,
    ValidationError, WindowTotals,
};

/// Where an entry sits in the log and when the leader stamped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyContext {
    /// The entry's log index.
    pub index: u64,
    /// The leader's wall-clock time when proposing, ms since the Unix epoch.
    pub stamped_ms: u64,
}

/// What an applied command changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The changes, in the order they happened.
    pub effects: Vec<Effect>,
}

/// One observable change, pushed to watchers and returned to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// A breaker's effective state changed.
    BreakerChanged {
        /// The breaker.
        key: BreakerKey,
        /// Before.
        from: BreakerState,
        /// After.
        to: BreakerState,
        /// Why.
        reason: String,
    },
    /// A scope's tier changed.
    TierChanged {
        /// The scope.
        scope: Scope,
        /// Before.
        from: Tier,
        /// After.
        to: Tier,
        /// Why.
        reason: String,
    },
    /// A probe permit was granted.
    ProbeGranted {
        /// The breaker.
        key: BreakerKey,
        /// The instance holding it.
        instance: InstanceId,
        /// The permit id to return with `ReleaseProbe`.
        permit_id: u64,
        /// When the lease expires.
        expires_at_ms: u64,
    },
    /// A probe permit was refused (not an error: the breaker is not HALF_OPEN or full).
    ProbeDenied {
        /// The breaker.
        key: BreakerKey,
        /// The asking instance.
        instance: InstanceId,
        /// Why.
        reason: String,
    },
    /// A policy was put or deleted.
    PolicyChanged {
        /// Its subject.
        target: PolicyTarget,
    },
    /// A scope's tier rules were put or deleted.
    TierRulesChanged {
        /// The scope.
        scope: Scope,
    },
    /// A breaker was created (first report, or an override on a new key).
    BreakerCreated {
        /// The breaker.
        key: BreakerKey,
    },
    /// A breaker's fleet retry figures moved enough to be pushed to SDKs (see
    /// [`crate::FleetRetries::worth_pushing`]); its state did not change.
    FleetRetriesChanged {
        /// The breaker.
        key: BreakerKey,
    },
    /// The cluster settings changed.
    SettingsChanged,
}

/// A read-only view of one breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerView {
    /// The breaker.
    pub key: BreakerKey,
    /// Effective state.
    pub state: BreakerState,
    /// Why.
    pub reason: String,
    /// When the state was entered.
    pub since_ms: u64,
    /// End of OPEN, if OPEN.
    pub open_until_ms: Option<u64>,
    /// End of the active override, if any.
    pub override_expires_at_ms: Option<u64>,
    /// Probe leases held.
    pub probe_permits_in_use: u32,
    /// Policy in force.
    pub policy: Policy,
    /// Completed calls in the window.
    pub window_calls: u64,
    /// Failures in the window.
    pub window_failures: u64,
    /// Slow calls in the window.
    pub window_slow: u64,
    /// Instances that reported in the window.
    pub window_instances: u32,
    /// Opens since the last close.
    pub consecutive_opens: u32,
    /// Log index of the last decision change.
    pub updated_index: u64,
    /// Fleet-wide first attempts and retries of retry-budgeted calls in the window.
    pub fleet_retries: FleetRetries,
}

/// A read-only view of one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeView {
    /// The scope.
    pub scope: Scope,
    /// Current tier.
    pub tier: Tier,
    /// Why.
    pub reason: String,
    /// When the tier was entered.
    pub since_ms: u64,
    /// Pinned tier, if any.
    pub override_tier: Option<Tier>,
    /// End of the pin.
    pub override_expires_at_ms: Option<u64>,
    /// Feature -> on.
    pub features: BTreeMap<String, bool>,
    /// Log index of the last tier change.
    pub updated_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BreakerEntry {
    breaker: Breaker,
    ledger: BreakerLedger,
    updated_index: u64,
    /// The breaker's entry in the deadline index: its `next_deadline_ms` when last indexed.
    indexed_deadline_ms: Option<u64>,
    /// The fleet retry figures last pushed to SDKs (by an effect), and when.
    retries_pushed: FleetRetries,
    retries_pushed_at_ms: u64,
    /// Set while a tick ingests deltas, cleared before apply returns.
    #[serde(skip)]
    touched: bool,
    /// Set while a tick ingests deltas with retry figures, cleared before apply returns.
    #[serde(skip)]
    touched_retries: bool,
}

/// Breakers with a timed transition pending, by deadline then key.
type DeadlineIndex = BTreeSet<(u64, BreakerKey)>;

/// Brings `entry`'s place in the deadline index up to date after anything may have changed
/// its deadline. O(log n); a no-op when the deadline did not move.
fn reindex(index: &mut DeadlineIndex, entry: &mut BreakerEntry) {
    let deadline_ms = entry.breaker.next_deadline_ms();
    if deadline_ms == entry.indexed_deadline_ms {
        return;
    }
    let key = entry.breaker.key();
    if let Some(old) = entry.indexed_deadline_ms {
        let removed = index.remove(&(old, key.clone()));
        debug_assert!(removed, "the index holds every indexed deadline");
    }
    if let Some(new) = deadline_ms {
        index.insert((new, key.clone()));
    }
    entry.indexed_deadline_ms = deadline_ms;
}

/// The whole replicated state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorState {
    now_ms: u64,
    last_index: u64,
    accounted_ms: Option<u64>,
    next_permit_id: u64,
    dropped_deltas: u64,
    settings: ClusterSettings,
    key_policies: BTreeMap<BreakerKey, Policy>,
    scope_policies: BTreeMap<Scope, Policy>,
    breakers: BTreeMap<BreakerKey, BreakerEntry>,
    scopes: BTreeMap<Scope, ScopeTier>,
    tier_rules: BTreeMap<Scope, TierRules>,
    audit: AuditLog,
    /// Derived: every breaker with `next_deadline_ms` set (see the module doc).
    deadline_index: DeadlineIndex,
    /// Derived: every scope with tier rules or not at rest, the only ones tier evaluation
    /// visits. After each apply, exactly those.
    tier_scopes: BTreeSet<Scope>,
}

/// The per-apply context for audit events.
struct Stamp {
    index: u64,
    now_ms: u64,
    actor: String,
    /// `sla_retention_ms` when the apply began.
    retention_ms: u64,
}

const POLICY_ACTOR: &str = "policy";

/// A tick touching at least 1/8 of the breakers judges them in one pass over the map rather
/// than one lookup each.
const INGEST_SCAN_RATIO: usize = 8;

// Tests force the scan so a reference run judges by the other path.
#[cfg(test)]
thread_local! {
    static FORCE_INGEST_SCAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn force_ingest_scan() -> bool {
    FORCE_INGEST_SCAN.with(std::cell::Cell::get)
}

#[cfg(not(test))]
fn force_ingest_scan() -> bool {
    false
}

/// The breaker a command may change besides the ingest of a tick (which re-indexes its own).
/// Policy changes do not move deadlines: `set_policy` keeps the state, open-until and leases.
fn command_breaker(command: &Command) -> Option<&BreakerKey> {
    match command {
        Command::SetOverride { key, .. }
        | Command::ClearOverride { key, .. }
        | Command::ResetBreaker { key, .. }
        | Command::AcquireProbe { key, .. }
        | Command::ReleaseProbe { key, .. } => Some(key),
        Command::Tick { .. }
        | Command::PutPolicies { .. }
        | Command::DeletePolicy { .. }
        | Command::PutTierRules { .. }
        | Command::DeleteTierRules { .. }
        | Command::SetTierOverride { .. }
        | Command::ClearTierOverride { .. }
        | Command::PutSettings { .. } => None,
    }
}

impl Stamp {
    fn event(
        &self,
        actor: &str,
        subject: &str,
        kind: &str,
        from: &str,
        to: &str,
        reason: &str,
    ) -> AuditEvent {
        AuditEvent {
            index: self.index,
            at_ms: self.now_ms,
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            kind: kind.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Records a breaker transition everywhere it must go.
struct Sink<'a> {
    audit: &'a mut AuditLog,
    effects: &'a mut Vec<Effect>,
    stamp: &'a Stamp,
}

impl Sink<'_> {
    fn transition(&mut self, entry: &mut BreakerEntry, t: Transition, actor: &str, kind: &str) {
        let key = entry.breaker.key();
        self.audit.push(self.stamp.event(
            actor,
            key.as_str(),
            kind,
            t.from.as_str(),
            t.to.as_str(),
            &t.reason,
        ));
        entry.updated_index = self.stamp.index;
        if t.from != t.to {
            debug_assert_eq!(
                t.at_ms, self.stamp.now_ms,
                "transitions happen at apply time"
            );
            entry
                .ledger
                .on_transition(t.from, t.to, self.stamp.now_ms, self.stamp.retention_ms);
            self.effects.push(Effect::BreakerChanged {
                key: key.clone(),
                from: t.from,
                to: t.to,
                reason: t.reason,
            });
        }
    }

    fn tier(
        &mut self,
        scope: &Scope,
        st: &mut ScopeTier,
        change: TierChange,
        actor: &str,
        kind: &str,
    ) {
        let (from, to, reason) = change;
        st.ledger
            .on_change(from, to, self.stamp.now_ms, self.stamp.retention_ms);
        self.audit.push(self.stamp.event(
            actor,
            scope.as_str(),
            kind,
            from.as_str(),
            to.as_str(),
            &reason,
        ));
        st.updated_index = self.stamp.index;
        self.effects.push(Effect::TierChanged {
            scope: scope.clone(),
            from,
            to,
            reason,
        });
    }
}

fn policy_json(policy: Option<&Policy>) -> String {
    policy.map_or_else(
        || "default".to_owned(),
        |p| serde_json::to_string(p).unwrap_or_default(),
    )
}

fn resolve_policy(
    key_policies: &BTreeMap<BreakerKey, Policy>,
    scope_policies: &BTreeMap<Scope, Policy>,
    key: &BreakerKey,
) -> Policy {
    key_policies
        .get(key)
        .or_else(|| scope_policies.get(key.scope()))
        .cloned()
        .unwrap_or_default()
}

/// The tier the rules demand now, and why.
fn rules_demand(
    rules: &TierRules,
    breakers: &BTreeMap<BreakerKey, BreakerEntry>,
    now_ms: u64,
) -> (Tier, String) {
    let mut demand = Tier::Full;
    let mut why = "no rule demands a worse tier".to_owned();
    for (i, rule) in rules.rules.iter().enumerate() {
        if rule.tier <= demand {
            continue;
        }
        let Some(entry) = breakers.get(rule.when.breaker()) else {
            continue;
        };
        let b = &entry.breaker;
        let holds = match &rule.when {
            TierCondition::BreakerState { state, .. } => {
                let want = match state {
                    ConditionState::Open => BreakerState::Open,
                    ConditionState::HalfOpen => BreakerState::HalfOpen,
                    ConditionState::ForcedOpen => BreakerState::ForcedOpen,
                };
                b.state() == want
            }
            TierCondition::P95LatencyAbove {
                p95_latency_ms_above,
                ..
            } => b
                .window_latency(now_ms)
                .quantile_us(0.95)
                .is_some_and(|p95| p95 > p95_latency_ms_above.saturating_mul(1000)),
            TierCondition::FailureRateAbove {
                failure_rate_above, ..
            } => {
                let t = b.window_totals(now_ms);
                t.calls > 0
                    && t.calls >= u64::from(b.policy().min_calls)
                    && u128::from(t.failures) * 100
                        > u128::from(*failure_rate_above) * u128::from(t.calls)
            }
        };
        if holds {
            demand = rule.tier;
            why = format!(
                "{} (rule {} demands {})",
                rule.when,
                i + 1,
                rule.tier.as_str()
            );
        }
    }
    (demand, why)
}

/// One scope's tier step: pin expiry, else the rules' demand with hysteresis (FULL at once
/// without rules).
fn evaluate_tier(
    scope: &Scope,
    st: &mut ScopeTier,
    rules: Option<&TierRules>,
    breakers: &BTreeMap<BreakerKey, BreakerEntry>,
    sink: &mut Sink<'_>,
) {
    let stamp = sink.stamp;
    let now_ms = stamp.now_ms;
    if st.override_tier().is_some() {
        if st.pinned_at(now_ms) {
            return;
        }
        let (demand, why) = rules.map_or((Tier::Full, "no tier rules".to_owned()), |r| {
            rules_demand(r, breakers, now_ms)
        });
        let text = format!("tier override expired; {why}");
        let (from, change) = st.unpin(now_ms, demand, text.clone());
        match change {
            Some(c) => sink.tier(scope, st, c, POLICY_ACTOR, "tier_override"),
            None => {
                sink.audit.push(stamp.event(
                    POLICY_ACTOR,
                    scope.as_str(),
                    "tier_override",
                    from.as_str(),
                    from.as_str(),
                    &text,
                ));
                st.updated_index = stamp.index;
            }
        }
        return;
    }
    let change = match rules {
        Some(r) => {
            let (demand, why) = rules_demand(r, breakers, now_ms);
            st.apply_demand(now_ms, demand, &why, r.recover_after_ms)
        }
        None => st.force(now_ms, Tier::Full, "no tier rules"),
    };
    if let Some(c) = change {
        sink.tier(scope, st, c, POLICY_ACTOR, "tier_change");
    }
}

struct FnvWriter(u64);

impl Write for FnvWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CoordinatorState {
    /// An empty state with the given settings.
    pub fn with_settings(settings: ClusterSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Applies one log entry. See the module doc for the order of steps. On error the state
    /// is unchanged except for the clock and the last index.
    pub fn apply(
        &mut self,
        ctx: ApplyContext,
        envelope: &Envelope,
    ) -> Result<Applied, CommandError> {
        let now_ms = self.now_ms.max(ctx.stamped_ms);
        self.now_ms = now_ms;
        self.last_index = ctx.index;
        envelope.command.validate(&self.settings)?;
        self.precheck(&envelope.command, now_ms)?;

        let stamp = Stamp {
            index: ctx.index,
            now_ms,
            actor: envelope.actor.to_string(),
            retention_ms: self.settings.sla_retention_ms,
        };
        let mut effects = Vec::new();
        // Reports read every ledger as accounted up to here (see `crate::sla`).
        self.accounted_ms = Some(now_ms);
        self.fire_timed(&stamp, &mut effects);
        self.execute(&stamp, &envelope.command, &mut effects);
        if let Some(key) = command_breaker(&envelope.command)
            && let Some(entry) = self.breakers.get_mut(key)
        {
            reindex(&mut self.deadline_index, entry);
        }
        self.evaluate_tiers(&stamp, &mut effects);
        self.audit.enforce_retention(
            now_ms,
            self.settings.audit_retention_ms,
            self.settings.audit_max_events,
        );
        Ok(Applied { effects })
    }

    fn expiry_in_future(expires_at_ms: Option<u64>, now_ms: u64) -> Result<(), CommandError> {
        match expires_at_ms {
            Some(e) if e <= now_ms => Err(ValidationError::new(
                "expires_at_ms",
                format!("must be in the future (now {now_ms} ms), got {e} ms"),
            )
            .into()),
            _ => Ok(()),
        }
    }

    fn known(&self, key: &BreakerKey) -> Result<&BreakerEntry, CommandError> {
        self.breakers
            .get(key)
            .ok_or_else(|| CommandError::UnknownBreaker(key.clone()))
    }

    /// The checks that need the state, made before anything changes.
    fn precheck(&self, command: &Command, now_ms: u64) -> Result<(), CommandError> {
        match command {
            Command::Tick { .. } | Command::PutTierRules { .. } | Command::PutSettings { .. } => {
                Ok(())
            }
            Command::PutPolicies { policies } => {
                let new = policies
                    .iter()
                    .filter(|(target, _)| match target {
                        PolicyTarget::Key(k) => !self.key_policies.contains_key(k),
                        PolicyTarget::Scope(s) => !self.scope_policies.contains_key(s),
                    })
                    .count();
                let count = self.key_policies.len() + self.scope_policies.len();
                if count + new > self.settings.max_breakers as usize {
                    return Err(CommandError::ResourceExhausted {
                        limit: "max_policies".into(),
                        max: u64::from(self.settings.max_breakers),
                    });
                }
                Ok(())
            }
            Command::DeletePolicy { target } => {
                let exists = match target {
                    PolicyTarget::Key(k) => self.key_policies.contains_key(k),
                    PolicyTarget::Scope(s) => self.scope_policies.contains_key(s),
                };
                if exists {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("policy for {target}"),
                    })
                }
            }
            Command::SetOverride {
                key, expires_at_ms, ..
            } => {
                Self::expiry_in_future(*expires_at_ms, now_ms)?;
                if !self.breakers.contains_key(key)
                    && self.breakers.len() >= self.settings.max_breakers as usize
                {
                    return Err(CommandError::ResourceExhausted {
                        limit: "max_breakers".into(),
                        max: u64::from(self.settings.max_breakers),
                    });
                }
                Ok(())
            }
            Command::ClearOverride { key, .. } => {
                let b = &self.known(key)?.breaker;
                let active = b.override_mode().is_some()
                    && b.override_expires_at_ms().is_none_or(|e| now_ms < e);
                if active {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("active override on `{key}`"),
                    })
                }
            }
            Command::ResetBreaker { key, .. } | Command::AcquireProbe { key, .. } => {
                self.known(key).map(|_| ())
            }
            Command::ReleaseProbe { key, permit_id, .. } => {
                if self.known(key)?.breaker.has_live_lease(*permit_id, now_ms) {
                    Ok(())
                } else {
                    Err(CommandError::StaleProbe {
                        permit_id: *permit_id,
                    })
                }
            }
            Command::DeleteTierRules { scope } => {
                if self.tier_rules.contains_key(scope) {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("tier rules for scope `{scope}`"),
                    })
                }
            }
            Command::SetTierOverride { expires_at_ms, .. } => {
                Self::expiry_in_future(*expires_at_ms, now_ms)
            }
            Command::ClearTierOverride { scope, .. } => {
                if self.scopes.get(scope).is_some_and(|s| s.pinned_at(now_ms)) {
                    Ok(())
                } else {
                    Err(CommandError::NotFound {
                        what: format!("tier override on scope `{scope}`"),
                    })
                }
            }
        }
    }

    /// Fires the timed transitions due at `now_ms`: pops the due entries of the deadline
    /// index and advances those breakers in key order (the order a full pass would take).
    fn fire_timed(&mut self, stamp: &Stamp, effects: &mut Vec<Effect>) {
        let now_ms = stamp.now_ms;
        let Self {
            breakers,
            deadline_index,
            audit,
            ..
        } = self;
        let mut due = Vec::new();
        while deadline_index.first().is_some_and(|(d, _)| *d <= now_ms) {
            if let Some((_, key)) = deadline_index.pop_first() {
                due.push(key);
            }
        }
        if due.is_empty() {
            return;
        }
        due.sort_unstable();
        let mut sink = Sink {
            audit,
            effects,
            stamp,
        };
        for key in &due {
            let Some(entry) = breakers.get_mut(key) else {
                debug_assert!(false, "indexed breaker `{key}` exists");
                continue;
            };
            entry.indexed_deadline_ms = None;
            if let Some(t) = entry.breaker.advance(now_ms) {
                sink.transition(entry, t, POLICY_ACTOR, "breaker_transition");
            }
            reindex(deadline_index, entry);
        }
    }

    fn ensure_breaker(&mut self, key: &BreakerKey, now_ms: u64, effects: &mut Vec<Effect>) -> bool {
        if self.breakers.contains_key(key) {
            return true;
        }
        if self.breakers.len() >= self.settings.max_breakers as usize {
            return false;
        }
        let policy = resolve_policy(&self.key_policies, &self.scope_policies, key);
        let breaker = Breaker::new(key.clone(), policy, TripMode::Fleet, now_ms);
        self.breakers.insert(
            key.clone(),
            BreakerEntry {
                breaker,
                ledger: BreakerLedger::starting(now_ms),
                updated_index: self.last_index,
                indexed_deadline_ms: None,
                retries_pushed: FleetRetries::default(),
                retries_pushed_at_ms: now_ms,
                touched: false,
                touched_retries: false,
            },
        );
        if !self.scopes.contains_key(key.scope()) {
            self.scopes.insert(key.scope_id(), ScopeTier::new(now_ms));
        }
        effects.push(Effect::BreakerCreated { key: key.clone() });
        true
    }

    fn ingest(&mut self, deltas: &[Delta], stamp: &Stamp, effects: &mut Vec<Effect>) {
        let now_ms = stamp.now_ms;
        let max_instances = self.settings.max_instances_per_breaker as usize;
        let mut touched: Vec<&BreakerKey> = Vec::new();
        let mut i = 0;
        // Deltas arrive grouped by key in practice (the leader merges per breaker), so one
        // map lookup serves a run of deltas; ungrouped input is still correct.
        while i < deltas.len() {
            let key = &deltas[i].key;
            let mut j = i + 1;
            while j < deltas.len() && deltas[j].key == *key {
                j += 1;
            }
            if !self.ensure_breaker(key, now_ms, effects) {
                self.dropped_deltas += (j - i) as u64;
                i = j;
                continue;
            }
            if let Some(entry) = self.breakers.get_mut(key) {
                entry.ledger.catch_up(now_ms, stamp.retention_ms);
                let mut retry_figures = false;
                for d in &deltas[i..j] {
                    let outcomes = WindowTotals {
                        calls: d.calls,
                        failures: d.failures,
                        slow: d.slow,
                    };
                    if d.first_attempts | d.retries == 0 {
                        entry.breaker.record(
                            now_ms,
                            Some(&d.instance),
                            outcomes,
                            Some(&d.latency),
                            max_instances,
                        );
                    } else {
                        let retries = RetryTotals {
                            first_attempts: u64::from(d.first_attempts),
                            retries: u64::from(d.retries),
                        };
                        entry.breaker.record_with_retries(
                            now_ms,
                            Some(&d.instance),
                            outcomes,
                            retries,
                            Some(&d.latency),
                            max_instances,
                        );
                        retry_figures = true;
                    }
                    entry
                        .ledger
                        .record(now_ms, d.calls, d.failures, d.slow, d.rejected, &d.latency);
                }
                entry.touched = true;
                entry.touched_retries |= retry_figures;
                touched.push(key);
            }
            i = j;
        }
        let Self {
            breakers,
            deadline_index,
            audit,
            ..
        } = self;
        let mut sink = Sink {
            audit,
            effects,
            stamp,
        };
        // Judge each touched breaker once, in key order. A tick touching a large part of the
        // fleet walks the map (cheaper than a lookup per key); a small one looks keys up.
        let mut judge = |entry: &mut BreakerEntry| {
            entry.touched = false;
            // Retry figures are looked at only where there are some: a fleet that does not use
            // retry budgets pays one branch per touched breaker.
            let retries =
                std::mem::take(&mut entry.touched_retries) || !entry.retries_pushed.is_empty();
            let (transition, figures) = if retries {
                let (t, figures) = entry.breaker.evaluate_with_retries(now_ms);
                (t, Some(figures))
            } else {
                (entry.breaker.evaluate(now_ms), None)
            };
            if let Some(t) = transition {
                sink.transition(entry, t, POLICY_ACTOR, "breaker_transition");
                reindex(deadline_index, entry);
            }
            if let Some(figures) = figures
                && figures.worth_pushing(&entry.retries_pushed, entry.retries_pushed_at_ms, now_ms)
            {
                entry.retries_pushed = figures;
                entry.retries_pushed_at_ms = now_ms;
                sink.effects.push(Effect::FleetRetriesChanged {
                    key: entry.breaker.key().clone(),
                });
            }
        };
        if touched.len().saturating_mul(INGEST_SCAN_RATIO) >= breakers.len() || force_ingest_scan()
        {
            breakers
                .values_mut()
                .filter(|e| e.touched)
                .for_each(&mut judge);
        } else {
            touched.sort_unstable();
            touched.dedup();
            for key in touched {
                if let Some(entry) = breakers.get_mut(key) {
                    judge(entry);
                }
            }
        }
    }

    /// Re-resolves the policy of the breakers a policy change affects: one key, or the keys of
    /// one scope (a contiguous range of the map).
    fn reresolve(&mut self, scope: Option<&Scope>, key: Option<&BreakerKey>, index: u64) {
        let Self {
            breakers,
            key_policies,
            scope_policies,
            ..
        } = self;
        let update = |k: &BreakerKey, entry: &mut BreakerEntry| {
            let policy = resolve_policy(key_policies, scope_policies, k);
            if &policy != entry.breaker.policy() {
                entry.breaker.set_policy(policy);
                entry.updated_index = index;
            }
        };
        if let Some(k) = key
            && let Some(entry) = breakers.get_mut(k)
        {
            update(k, entry);
        }
        if let Some(s) = scope {
            let from = BreakerKey::scope_lower_bound(s);
            for (k, entry) in breakers
                .range_mut(from..)
                .take_while(|(k, _)| k.scope() == s.as_str())
            {
                update(k, entry);
            }
        }
    }

    fn execute(&mut self, stamp: &Stamp, command: &Command, effects: &mut Vec<Effect>) {
        let now_ms = stamp.now_ms;
        let actor = stamp.actor.as_str();
        match command {
            Command::Tick { deltas } => self.ingest(deltas, stamp, effects),
            Command::PutPolicies { policies } => {
                for (target, policy) in policies {
                    let previous = match target {
                        PolicyTarget::Key(k) => self.key_policies.insert(k.clone(), policy.clone()),
                        PolicyTarget::Scope(s) => {
                            self.scope_policies.insert(s.clone(), policy.clone())
                        }
                    };
                    let event = stamp.event(
                        actor,
                        target.subject(),
                        "policy",
                        &policy_json(previous.as_ref()),
                        &policy_json(Some(policy)),
                        "policy put",
                    );
                    self.audit.push(event);
                    self.reresolve_target(target, stamp.index);
                    effects.push(Effect::PolicyChanged {
                        target: target.clone(),
                    });
                }
            }
            Command::DeletePolicy { target } => {
                let previous = match target {
                    PolicyTarget::Key(k) => self.key_policies.remove(k),
                    PolicyTarget::Scope(s) => self.scope_policies.remove(s),
                };
                let event = stamp.event(
                    actor,
                    target.subject(),
                    "policy",
                    &policy_json(previous.as_ref()),
                    "default",
                    "policy deleted",
                );
                self.audit.push(event);
                self.reresolve_target(target, stamp.index);
                effects.push(Effect::PolicyChanged {
                    target: target.clone(),
                });
            }
            Command::SetOverride {
                key,
                mode,
                reason,
                expires_at_ms,
            } => {
                if !self.ensure_breaker(key, now_ms, effects) {
                    return;
                }
                let mut sink = Sink {
                    audit: &mut self.audit,
                    effects,
                    stamp,
                };
                if let Some(entry) = self.breakers.get_mut(key) {
                    let from = entry.breaker.state();
                    match entry
                        .breaker
                        .set_override(now_ms, *mode, reason, *expires_at_ms)
                    {
                        Some(t) => sink.transition(entry, t, actor, "override"),
                        None => {
                            let t = Transition {
                                from,
                                to: from,
                                reason: entry.breaker.reason().to_owned(),
                                at_ms: now_ms,
                            };
                            sink.transition(entry, t, actor, "override");
                        }
                    }
                }
            }
            Command::ClearOverride { key, reason } => {
                let mut sink = Sink {
                    audit: &mut self.audit,
                    effects,
                    stamp,
                };
                if let Some(entry) = self.breakers.get_mut(key)
                    && let Some(t) = entry.breaker.clear_override(now_ms, reason)
                {
                    sink.transition(entry, t, actor, "override");
                }
            }
            Command::ResetBreaker { key, reason } => {
                let mut sink = Sink {
                    audit: &mut self.audit,
                    effects,
                    stamp,
                };
                if let Some(entry) = self.breakers.get_mut(key) {
                    let t = entry.breaker.reset(now_ms, reason);
                    sink.transition(entry, t, actor, "breaker_transition");
                }
            }
            Command::PutTierRules { rules } => {
                let summary = format!(
                    "{} rules, {} features",
                    rules.rules.len(),
                    rules.features.len()
                );
                let previous = self.tier_rules.insert(rules.scope.clone(), rules.clone());
                let from = previous.map_or_else(
                    || "none".to_owned(),
                    |p| format!("{} rules, {} features", p.rules.len(), p.features.len()),
                );
                self.audit.push(stamp.event(
                    actor,
                    rules.scope.as_str(),
                    "tier_rules",
                    &from,
                    &summary,
                    "tier rules put",
                ));
                if !self.scopes.contains_key(&rules.scope) {
                    self.scopes
                        .insert(rules.scope.clone(), ScopeTier::new(now_ms));
                }
                self.tier_scopes.insert(rules.scope.clone());
                effects.push(Effect::TierRulesChanged {
                    scope: rules.scope.clone(),
                });
            }
            Command::DeleteTierRules { scope } => {
                if let Some(p) = self.tier_rules.remove(scope) {
                    let from = format!("{} rules, {} features", p.rules.len(), p.features.len());
                    self.audit.push(stamp.event(
                        actor,
                        scope.as_str(),
                        "tier_rules",
                        &from,
                        "none",
                        "tier rules deleted",
                    ));
                }
                effects.push(Effect::TierRulesChanged {
                    scope: scope.clone(),
                });
            }
            Command::SetTierOverride {
                scope,
                tier,
                reason,
                expires_at_ms,
            } => {
                let st = self
                    .scopes
                    .entry(scope.clone())
                    .or_insert_with(|| ScopeTier::new(now_ms));
                self.tier_scopes.insert(scope.clone());
                let (from, change) = st.pin(now_ms, *tier, reason, *expires_at_ms);
                let mut sink = Sink {
                    audit: &mut self.audit,
                    effects,
                    stamp,
                };
                match change {
                    Some(c) => sink.tier(scope, st, c, actor, "tier_override"),
                    None => {
                        let event = stamp.event(
                            actor,
                            scope.as_str(),
                            "tier_override",
                            from.as_str(),
                            tier.as_str(),
                            st.reason(),
                        );
                        sink.audit.push(event);
                        st.updated_index = stamp.index;
                    }
                }
            }
            Command::ClearTierOverride { scope, reason } => {
                let demand = self
                    .tier_rules
                    .get(scope)
                    .map(|r| rules_demand(r, &self.breakers, now_ms));
                let (tier, why) = demand.unwrap_or((Tier::Full, "no tier rules".to_owned()));
                if let Some(st) = self.scopes.get_mut(scope) {
                    let text = if reason.is_empty() {
                        format!("tier override cleared; {why}")
                    } else {
                        format!("tier override cleared: {reason}; {why}")
                    };
                    let (from, change) = st.unpin(now_ms, tier, text.clone());
                    let mut sink = Sink {
                        audit: &mut self.audit,
                        effects,
                        stamp,
                    };
                    match change {
                        Some(c) => sink.tier(scope, st, c, actor, "tier_override"),
                        None => {
                            let event = stamp.event(
                                actor,
                                scope.as_str(),
                                "tier_override",
                                from.as_str(),
                                from.as_str(),
                                &text,
                            );
                            sink.audit.push(event);
                            st.updated_index = stamp.index;
                        }
                    }
                }
            }
            Command::AcquireProbe { key, instance } => {
                if let Some(entry) = self.breakers.get_mut(key) {
                    let permit_id = self.next_permit_id + 1;
                    match entry
                        .breaker
                        .acquire_probe(now_ms, permit_id, Some(instance.clone()))
                    {
                        Ok(expires_at_ms) => {
                            self.next_permit_id = permit_id;
                            entry.updated_index = stamp.index;
                            let reason = format!("lease until {expires_at_ms} ms");
                            let to = format!("permit {permit_id}");
                            let probe_actor = format!("instance:{instance}");
                            self.audit.push(stamp.event(
                                &probe_actor,
                                key.as_str(),
                                "probe",
                                "",
                                &to,
                                &reason,
                            ));
                            effects.push(Effect::ProbeGranted {
                                key: key.clone(),
                                instance: instance.clone(),
                                permit_id,
                                expires_at_ms,
                            });
                        }
                        Err(reason) => effects.push(Effect::ProbeDenied {
                            key: key.clone(),
                            instance: instance.clone(),
                            reason,
                        }),
                    }
                }
            }
            Command::ReleaseProbe {
                key,
                permit_id,
                outcome,
            } => {
                let mut sink = Sink {
                    audit: &mut self.audit,
                    effects,
                    stamp,
                };
                if let Some(entry) = self.breakers.get_mut(key) {
                    entry.updated_index = stamp.index;
                    if let Ok(Some(t)) = entry.breaker.release_probe(now_ms, *permit_id, *outcome) {
                        sink.transition(entry, t, POLICY_ACTOR, "breaker_transition");
                    }
                }
            }
            Command::PutSettings { settings } => {
                let from = serde_json::to_string(&self.settings).unwrap_or_default();
                let to = serde_json::to_string(settings).unwrap_or_default();
                self.settings = settings.clone();
                self.audit.push(stamp.event(
                    actor,
                    "cluster",
                    "settings",
                    &from,
                    &to,
                    "settings put",
                ));
                effects.push(Effect::SettingsChanged);
            }
        }
    }

    fn reresolve_target(&mut self, target: &PolicyTarget, index: u64) {
        match target {
            PolicyTarget::Key(k) => self.reresolve(None, Some(k), index),
            PolicyTarget::Scope(s) => self.reresolve(Some(s), None, index),
        }
    }

    /// Re-evaluates the scopes in `tier_scopes` in scope order, then drops those left at
    /// rest without rules (evaluating them again would change nothing).
    fn evaluate_tiers(&mut self, stamp: &Stamp, effects: &mut Vec<Effect>) {
        let Self {
            scopes,
            tier_rules,
            breakers,
            audit,
            tier_scopes,
            ..
        } = self;
        let mut sink = Sink {
            audit,
            effects,
            stamp,
        };
        tier_scopes.retain(|scope| {
            let Some(st) = scopes.get_mut(scope) else {
                debug_assert!(false, "tier scope `{scope}` exists");
                return false;
            };
            let rules = tier_rules.get(scope);
            evaluate_tier(scope, st, rules, breakers, &mut sink);
            rules.is_some() || !st.at_rest()
        });
    }

    /// The state's clock: the largest stamped time applied so far.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The index of the last applied entry.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Deltas dropped because `max_breakers` was reached.
    pub fn dropped_deltas(&self) -> u64 {
        self.dropped_deltas
    }

    /// The earliest future time a timed transition is due (the leader writes an empty `Tick`
    /// then): override expiry, end of OPEN, probe lease expiry, tier pin expiry, tier recovery.
    /// Reads the first entry of the deadline index and the scopes with rules or a pin.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let breakers = self.deadline_index.first().map(|(d, _)| *d);
        let scopes = self.tier_scopes.iter().filter_map(|scope| {
            let st = self.scopes.get(scope)?;
            let pin = st.override_expires_at_ms();
            let recover = self
                .tier_rules
                .get(scope)
                .and_then(|r| st.pending_due_ms(r.recover_after_ms));
            match (pin, recover) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        });
        breakers.into_iter().chain(scopes).min()
    }

    fn view(&self, entry: &BreakerEntry) -> BreakerView {
        let b = &entry.breaker;
        let totals = b.window_totals(self.now_ms);
        BreakerView {
            key: b.key().clone(),
            state: b.state(),
            reason: b.reason().to_owned(),
            since_ms: b.since_ms(),
            open_until_ms: b.open_until_ms(),
            override_expires_at_ms: b.override_expires_at_ms(),
            probe_permits_in_use: b.probe_permits_in_use(),
            policy: b.policy().clone(),
            window_calls: totals.calls,
            window_failures: totals.failures,
            window_slow: totals.slow,
            window_instances: b.live_instances(self.now_ms),
            consecutive_opens: b.consecutive_opens(),
            updated_index: entry.updated_index,
            fleet_retries: b.fleet_retries(self.now_ms),
        }
    }

    /// One breaker's view.
    pub fn breaker(&self, key: &BreakerKey) -> Option<BreakerView> {
        self.breakers.get(key).map(|e| self.view(e))
    }

    /// Every breaker's view, sorted by key.
    pub fn breakers(&self) -> Vec<BreakerView> {
        self.breakers.values().map(|e| self.view(e)).collect()
    }

    /// The underlying state machine of a breaker.
    pub fn breaker_machine(&self, key: &BreakerKey) -> Option<&Breaker> {
        self.breakers.get(key).map(|e| &e.breaker)
    }

    /// Number of breakers.
    pub fn breaker_count(&self) -> usize {
        self.breakers.len()
    }

    /// The policy for `key`: its own, else its scope's default, else [`Policy::default`].
    pub fn effective_policy(&self, key: &BreakerKey) -> Policy {
        resolve_policy(&self.key_policies, &self.scope_policies, key)
    }

    /// Every stored policy: scope defaults first, then key policies, each sorted.
    pub fn policies(&self) -> Vec<(PolicyTarget, Policy)> {
        let scopes = self
            .scope_policies
            .iter()
            .map(|(s, p)| (PolicyTarget::Scope(s.clone()), p.clone()));
        let keys = self
            .key_policies
            .iter()
            .map(|(k, p)| (PolicyTarget::Key(k.clone()), p.clone()));
        scopes.chain(keys).collect()
    }

    /// The stored policy for a target (not the effective one).
    pub fn policy(&self, target: &PolicyTarget) -> Option<&Policy> {
        match target {
            PolicyTarget::Key(k) => self.key_policies.get(k),
            PolicyTarget::Scope(s) => self.scope_policies.get(s),
        }
    }

    fn scope_view(&self, scope: &Scope, st: &ScopeTier) -> ScopeView {
        let features = self
            .tier_rules
            .get(scope)
            .map(|r| {
                r.features
                    .iter()
                    .map(|(name, &worst)| (name.clone(), st.tier() <= worst))
                    .collect()
            })
            .unwrap_or_default();
        ScopeView {
            scope: scope.clone(),
            tier: st.tier(),
            reason: st.reason().to_owned(),
            since_ms: st.since_ms(),
            override_tier: st.override_tier(),
            override_expires_at_ms: st.override_expires_at_ms(),
            features,
            updated_index: st.updated_index,
        }
    }

    /// One scope's view (scopes exist once they have a breaker, rules or a pin).
    pub fn scope(&self, scope: &Scope) -> Option<ScopeView> {
        self.scopes.get(scope).map(|st| self.scope_view(scope, st))
    }

    /// Every scope's view, sorted.
    pub fn scopes(&self) -> Vec<ScopeView> {
        self.scopes
            .iter()
            .map(|(s, st)| self.scope_view(s, st))
            .collect()
    }

    /// A scope's tier rules.
    pub fn tier_rules(&self, scope: &Scope) -> Option<&TierRules> {
        self.tier_rules.get(scope)
    }

    /// The cluster settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// An SLA report for `key` over `window` ending at `now_ms`.
    pub fn sla_report(
        &self,
        key: &BreakerKey,
        window: SlaWindow,
        now_ms: u64,
    ) -> Option<SlaReport> {
        let entry = self.breakers.get(key)?;
        let scope = self.scopes.get(key.scope());
        let input = ReportInput {
            key,
            window,
            now_ms,
            accounted_ms: self.accounted_ms.unwrap_or(now_ms),
            retention_ms: self.settings.sla_retention_ms,
            state: entry.breaker.state(),
            tier: scope.map_or(Tier::Full, |s| s.tier()),
            slo: &self.settings.slo,
        };
        Some(build_report(
            &input,
            &entry.ledger,
            scope.map(|s| &s.ledger),
        ))
    }

    /// FNV-1a 64 over the bincode serialization: equal digests mean equal states (for
    /// simulation comparisons across replicas).
    pub fn digest(&self) -> u64 {
        let mut w = FnvWriter(0xcbf2_9ce4_8422_2325);
        // Serializing plain data into an infallible writer cannot fail.
        let _ = bincode::serialize_into(&mut w, self);
        debug_assert_ne!(w.0, fnv1a64(&[]), "state serialization is never empty");
        w.0
    }
}

#[cfg(test)]
#[path = "state_test.rs"]
mod tests;
