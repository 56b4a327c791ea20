//! The lazy apply path against a reference that does what the state machine did before the
//! deadline index and lazy SLA accounting: account every ledger on every apply, fire timed
//! transitions by a pass over every breaker, evaluate every scope, and read the next deadline
//! by a pass over everything. For random command sequences over a few breakers and scopes,
//! both must return the same results, audit, views, next deadline and SLA reports.

use proptest::prelude::*;

use super::audit_sink::Sink;
use super::ingest::FORCE_INGEST_SCAN;
use super::tier_eval::evaluate_tier;
use super::*;
use crate::{
    Actor, AuditKind, BreakerState, ConditionState, Delta, InstanceId, OverrideMode, PolicyTarget,
    ProbeOutcome, SlaWindow, Tier, TierCondition, TierRule,
};

impl CoordinatorState {
    /// The reference apply: eager accounting, full passes.
    fn apply_eager(
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
            actor: envelope.actor.clone(),
            retention_ms: self.settings.sla_retention_ms,
            trace: envelope.trace.clone(),
        };
        let mut effects = Vec::new();
        self.accounted_ms = Some(now_ms);
        for entry in self.breakers.values_mut() {
            entry.ledger.catch_up(now_ms, stamp.retention_ms);
        }
        for st in self.scopes.values_mut() {
            st.ledger.catch_up(now_ms, stamp.retention_ms);
        }
        self.fire_timed_scan(&stamp, &mut effects);
        FORCE_INGEST_SCAN.with(|f| f.set(true));
        self.execute(&stamp, &envelope.command, &mut effects);
        FORCE_INGEST_SCAN.with(|f| f.set(false));
        if let Some(key) = command_breaker(&envelope.command)
            && let Some(entry) = self.breakers.get_mut(key)
        {
            reindex(&mut self.deadline_index, entry);
        }
        let Self {
            scopes,
            tier_rules,
            breakers,
            audit,
            ..
        } = self;
        let mut sink = Sink {
            audit,
            effects: &mut effects,
            stamp: &stamp,
        };
        for (scope, st) in scopes.iter_mut() {
            evaluate_tier(scope, st, tier_rules.get(scope), breakers, &mut sink);
        }
        self.audit.enforce_retention(
            now_ms,
            self.settings.audit_retention_ms,
            self.settings.audit_max_events,
        );
        Ok(Applied { effects })
    }

    /// Timed transitions by a pass over every breaker (keeps the index in step so the
    /// ingest path's re-indexing stays consistent).
    fn fire_timed_scan(&mut self, stamp: &Stamp, effects: &mut Vec<Effect>) {
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
        for entry in breakers.values_mut() {
            if entry
                .breaker
                .next_deadline_ms()
                .is_some_and(|d| d <= stamp.now_ms)
                && let Some(t) = entry.breaker.advance(stamp.now_ms)
            {
                sink.transition(entry, t, &Actor::Policy, AuditKind::BreakerTransition);
            }
            reindex(deadline_index, entry);
        }
    }

    /// The next deadline by a pass over every breaker and scope.
    fn next_deadline_scan(&self) -> Option<u64> {
        let breakers = self
            .breakers
            .values()
            .filter_map(|e| e.breaker.next_deadline_ms());
        let scopes = self.scopes.iter().filter_map(|(scope, st)| {
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
        breakers.chain(scopes).min()
    }

    /// The derived data equals what it is derived from.
    fn check_derived(&self) {
        let expected: DeadlineIndex = self
            .breakers
            .iter()
            .filter_map(|(k, e)| e.breaker.next_deadline_ms().map(|d| (d, k.clone())))
            .collect();
        assert_eq!(self.deadline_index, expected, "deadline index");
        for (k, e) in &self.breakers {
            assert_eq!(e.indexed_deadline_ms, e.breaker.next_deadline_ms(), "{k}");
            assert_eq!(e.ledger.state(), e.breaker.state(), "ledger state of {k}");
            assert!(!e.touched, "{k} left touched");
        }
        let expected: BTreeSet<Scope> = self
            .scopes
            .iter()
            .filter(|(s, st)| self.tier_rules.contains_key(*s) || !st.at_rest())
            .map(|(s, _)| s.clone())
            .collect();
        assert_eq!(self.tier_scopes, expected, "tier scopes");
        for (s, st) in &self.scopes {
            assert_eq!(st.ledger.tier(), st.tier(), "ledger tier of {s}");
        }
    }
}

const T0: u64 = 1_700_000_000_000;
const KEYS: [&str; 4] = [
    "payments/db",
    "payments/cache",
    "search/index",
    "search/ranker",
];
const SCOPES: [&str; 2] = ["payments", "search"];

fn key(i: u8) -> BreakerKey {
    BreakerKey::parse(KEYS[i as usize % KEYS.len()]).expect("valid key")
}

fn scope(i: u8) -> Scope {
    Scope::parse(SCOPES[i as usize % SCOPES.len()]).expect("valid scope")
}

fn instance(i: u8) -> InstanceId {
    InstanceId::parse(&format!("i-{i}")).expect("valid instance")
}

#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    Report {
        key: u8,
        instance: u8,
        calls: u64,
        failures: u64,
    },
    Acquire(u8, u8),
    Release(u8, u64, u8),
    Reset(u8),
    Override(u8, u8, Option<u64>),
    Clear(u8),
    Pin(u8, u8, Option<u64>),
    Unpin(u8),
    PutRules(u8, u64),
    DeleteRules(u8),
    KeyPolicy(u8, u64),
    ScopePolicy(u8, u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u64..60_000).prop_map(Step::Advance),
        1 => (0u64..7_200_000).prop_map(Step::Advance),
        4 => (0u8..4, 0u8..3, 1u64..40, 0u64..40).prop_map(|(key, instance, calls, f)| {
            Step::Report { key, instance, calls, failures: f.min(calls) }
        }),
        2 => (0u8..4, 0u8..4).prop_map(|(k, i)| Step::Acquire(k, i)),
        2 => (0u8..4, 0u64..12, 0u8..3).prop_map(|(k, p, o)| Step::Release(k, p, o)),
        1 => (0u8..4).prop_map(Step::Reset),
        1 => (0u8..4, 0u8..4, prop::option::of(1u64..5_000_000))
            .prop_map(|(k, m, e)| Step::Override(k, m, e)),
        1 => (0u8..4).prop_map(Step::Clear),
        1 => (0u8..2, 0u8..5, prop::option::of(1u64..5_000_000))
            .prop_map(|(s, t, e)| Step::Pin(s, t, e)),
        1 => (0u8..2).prop_map(Step::Unpin),
        1 => (0u8..2, 0u64..120_000).prop_map(|(s, r)| Step::PutRules(s, r)),
        1 => (0u8..2).prop_map(Step::DeleteRules),
        1 => (0u8..4, 0u64..3).prop_map(|(k, p)| Step::KeyPolicy(k, p)),
        1 => (0u8..2, 0u64..3).prop_map(|(s, p)| Step::ScopePolicy(s, p)),
    ]
}

fn small_policy(variant: u64) -> Policy {
    Policy {
        min_calls: 5,
        min_instances: 1,
        open_duration_ms: 1_000 + variant * 400_000,
        open_duration_max_ms: 3_000_000,
        probe_permits: 2,
        probe_success_threshold: 2,
        probe_lease_ms: 500 + variant * 100_000,
        ..Policy::default()
    }
}

fn rules(s: u8, recover_after_ms: u64) -> TierRules {
    let scope = scope(s);
    let first = key(s * 2);
    let second = key(s * 2 + 1);
    TierRules {
        recover_after_ms,
        rules: vec![
            TierRule {
                when: TierCondition::BreakerState {
                    breaker: first,
                    state: ConditionState::Open,
                },
                tier: Tier::Degraded,
            },
            TierRule {
                when: TierCondition::FailureRateAbove {
                    breaker: second,
                    failure_rate_above: 50,
                },
                tier: Tier::Essential,
            },
        ],
        ..TierRules::new(scope)
    }
}

/// The command a step issues; `Advance` moves `now` and issues an empty tick.
fn command(s: &Step, now: &mut u64) -> Command {
    const MODES: [OverrideMode; 4] = [
        OverrideMode::ForcedOpen,
        OverrideMode::ForcedClosed,
        OverrideMode::Disabled,
        OverrideMode::MetricsOnly,
    ];
    const OUTCOMES: [ProbeOutcome; 3] = [
        ProbeOutcome::Success,
        ProbeOutcome::Failure,
        ProbeOutcome::Unused,
    ];
    match s {
        Step::Advance(ms) => {
            *now += ms;
            Command::Tick {
                deltas: Vec::new().into(),
            }
        }
        Step::Report {
            key: k,
            instance: i,
            calls,
            failures,
        } => Command::Tick {
            deltas: vec![Delta {
                key: key(*k),
                instance: instance(*i),
                calls: *calls,
                failures: *failures,
                slow: 0,
                rejected: *failures / 2,
                latency: crate::LatencySketch::default(),
                first_attempts: u32::try_from(*calls / 2).unwrap_or(u32::MAX),
                retries: u32::try_from(*failures / 3).unwrap_or(u32::MAX),
            }]
            .into(),
        },
        Step::Acquire(k, i) => Command::AcquireProbe {
            key: key(*k),
            instance: instance(*i),
        },
        Step::Release(k, p, o) => Command::ReleaseProbe {
            key: key(*k),
            permit_id: *p,
            outcome: OUTCOMES[*o as usize % 3],
        },
        Step::Reset(k) => Command::ResetBreaker {
            key: key(*k),
            reason: String::new(),
        },
        Step::Override(k, m, e) => Command::SetOverride {
            key: key(*k),
            mode: MODES[*m as usize % 4],
            reason: "test override".into(),
            expires_at_ms: e.map(|e| *now + e),
        },
        Step::Clear(k) => Command::ClearOverride {
            key: key(*k),
            reason: String::new(),
        },
        Step::Pin(s, t, e) => Command::SetTierOverride {
            scope: scope(*s),
            tier: Tier::ALL[*t as usize % 5],
            reason: String::new(),
            expires_at_ms: e.map(|e| *now + e),
        },
        Step::Unpin(s) => Command::ClearTierOverride {
            scope: scope(*s),
            reason: String::new(),
        },
        Step::PutRules(s, r) => Command::PutTierRules {
            rules: rules(*s, *r),
        },
        Step::DeleteRules(s) => Command::DeleteTierRules { scope: scope(*s) },
        Step::KeyPolicy(k, p) => Command::PutPolicies {
            policies: vec![(PolicyTarget::Key(key(*k)), small_policy(*p))],
        },
        Step::ScopePolicy(s, p) => Command::PutPolicies {
            policies: vec![(PolicyTarget::Scope(scope(*s)), small_policy(*p))],
        },
    }
}

/// A state with a 3 h SLA retention (every gap in the steps is shorter, so eager accounting
/// never skips time), small policies, tier rules on `payments`, and 16 bystander breakers
/// (so a one-key tick takes the ingest's lookup path, a large one its scan path).
fn start() -> (CoordinatorState, Vec<Envelope>) {
    let settings = ClusterSettings {
        sla_retention_ms: 3 * crate::sla::HOUR_MS,
        ..ClusterSettings::default()
    };
    let setup = [
        Command::PutPolicies {
            policies: SCOPES
                .iter()
                .map(|s| {
                    (
                        PolicyTarget::Scope(Scope::parse(s).expect("valid scope")),
                        small_policy(0),
                    )
                })
                .collect(),
        },
        Command::PutTierRules {
            rules: rules(0, 30_000),
        },
        Command::Tick {
            deltas: (0..16)
                .map(|i| Delta {
                    key: BreakerKey::parse(&format!("bystander/b-{i}")).expect("valid key"),
                    instance: instance(0),
                    calls: 1,
                    failures: 0,
                    slow: 0,
                    rejected: 0,
                    latency: crate::LatencySketch::default(),
                    first_attempts: 0,
                    retries: 0,
                })
                .collect(),
        },
    ];
    let envelopes = setup
        .into_iter()
        .map(|command| Envelope {
            actor: crate::Actor::Node(1),
            command,
            trace: None,
        })
        .collect();
    (CoordinatorState::with_settings(settings), envelopes)
}

fn assert_same_reads(lazy: &CoordinatorState, eager: &CoordinatorState) {
    assert_eq!(lazy.breakers(), eager.breakers());
    assert_eq!(lazy.scopes(), eager.scopes());
    assert_eq!(lazy.audit(), eager.audit());
    assert_eq!(lazy.next_deadline_ms(), eager.next_deadline_scan());
    let now = lazy.now_ms();
    for k in 0..KEYS.len() as u8 {
        for window in [SlaWindow::Day, SlaWindow::Week, SlaWindow::MonthToDate] {
            for report_ms in [now, now + 1_800_000, now + 5 * crate::sla::HOUR_MS] {
                assert_eq!(
                    lazy.sla_report(&key(k), window, report_ms),
                    eager.sla_report(&key(k), window, report_ms),
                    "{} {window} at {report_ms}",
                    KEYS[k as usize],
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Lazy accounting and the deadline index change no result, effect, audit event, view,
    /// deadline or SLA report; a state round-tripped through bincode after every step
    /// (a snapshot install) stays equal to the replayed one.
    #[test]
    fn lazy_apply_matches_eager_full_scan(
        steps in prop::collection::vec(step(), 1..120),
        jitter in prop::collection::vec(0u64..2_000, 120),
    ) {
        let (mut lazy, setup) = start();
        let mut eager = lazy.clone();
        let mut snapshot = lazy.clone();
        let mut index = 0;
        let mut now = T0;
        let mut envelopes = setup;
        for s in &steps {
            let command = command(s, &mut now);
            envelopes.push(Envelope { actor: crate::Actor::Node(1), command, trace: None });
        }
        for (i, envelope) in envelopes.iter().enumerate() {
            index += 1;
            let stamped_ms = now_of(&steps, i).saturating_sub(jitter[i % jitter.len()]);
            let ctx = ApplyContext { index, stamped_ms };
            let a = lazy.apply(ctx, envelope);
            let b = eager.apply_eager(ctx, envelope);
            prop_assert_eq!(&a, &b, "step {}: {:?}", i, envelope.command);
            prop_assert_eq!(snapshot.apply(ctx, envelope), a);
            lazy.check_derived();
            assert_same_reads(&lazy, &eager);
            snapshot = bincode::deserialize(&bincode::serialize(&snapshot).unwrap()).unwrap();
            prop_assert!(snapshot == lazy, "snapshot install differs from replay");
            prop_assert_eq!(snapshot.digest(), lazy.digest());
        }
    }
}

/// Setup envelopes, all stamped `T0`.
const SETUP: usize = 3;

/// The stamped time of envelope `i` (the setup at `T0`, then one per step).
fn now_of(steps: &[Step], i: usize) -> u64 {
    let mut now = T0;
    for s in steps.iter().take((i + 1).saturating_sub(SETUP)) {
        if let Step::Advance(ms) = s {
            now += ms;
        }
    }
    now
}

/// A breaker that nothing touches for hours still reports its whole time in state, and its
/// ledger holds no hour it has not been touched in.
#[test]
fn untouched_breaker_reports_its_tail() {
    let (mut state, setup) = start();
    let mut index = 0;
    let mut apply = |state: &mut CoordinatorState, at_ms: u64, command: Command| {
        index += 1;
        let ctx = ApplyContext {
            index,
            stamped_ms: at_ms,
        };
        let envelope = Envelope {
            actor: crate::Actor::Node(1),
            command,
            trace: None,
        };
        state.apply(ctx, &envelope).expect("applies");
    };
    for envelope in setup {
        apply(&mut state, T0, envelope.command);
    }
    let hour = crate::sla::HOUR_MS;
    let created = T0 + 60_000;
    apply(
        &mut state,
        created,
        Command::SetOverride {
            key: key(2),
            mode: OverrideMode::ForcedOpen,
            reason: "test override".into(),
            expires_at_ms: None,
        },
    );
    // phase: two hours of writes to another breaker only
    apply(
        &mut state,
        created,
        Command::SetOverride {
            key: key(0),
            mode: OverrideMode::MetricsOnly,
            reason: "test override".into(),
            expires_at_ms: None,
        },
    );
    for i in 1..=120 {
        apply(
            &mut state,
            created + i * 60_000,
            Command::ResetBreaker {
                key: key(0),
                reason: String::new(),
            },
        );
    }
    let entry = &state.breakers[&key(2)];
    assert_eq!(entry.ledger.state(), BreakerState::ForcedOpen);
    let report = state
        .sla_report(&key(2), SlaWindow::Day, created + 3 * hour)
        .expect("breaker exists");
    let forced: u64 = 3 * hour;
    assert_eq!(report.time_in_state_ms.get("FORCED_OPEN"), Some(&forced));
    assert_eq!(report.time_in_state_ms.len(), 1, "{report:?}");
}
