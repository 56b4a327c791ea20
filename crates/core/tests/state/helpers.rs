//! Shared helpers: a harness that applies commands with increasing indexes.

#![allow(dead_code)]

use switchyard_core::*;

pub const T0: u64 = 1_700_000_000_000;

pub fn key(s: &str) -> BreakerKey {
    BreakerKey::parse(s).unwrap()
}

pub fn scope(s: &str) -> Scope {
    Scope::parse(s).unwrap()
}

pub fn inst(s: &str) -> InstanceId {
    InstanceId::parse(s).unwrap()
}

pub fn delta(k: &str, i: &str, calls: u64, failures: u64, slow: u64) -> Delta {
    Delta {
        key: key(k),
        instance: inst(i),
        calls,
        failures,
        slow,
        rejected: 0,
        latency: LatencySketch::default(),
        first_attempts: 0,
        retries: 0,
    }
}

pub fn operator() -> Actor {
    Actor::Operator("alice".into())
}

/// A policy with no jitter so durations are exact.
pub fn exact_policy() -> Policy {
    Policy {
        open_jitter_percent: 0,
        ..Policy::default()
    }
}

/// [`exact_policy`] judged on the whole window's raw rate alone, warm or cold (the freshest
/// span and the cold window's confidence margin off): for tests of the whole-window rule.
pub fn whole_window_policy() -> Policy {
    Policy {
        fresh_span_confidence: Confidence::OFF,
        ..exact_policy()
    }
}

pub struct Harness {
    pub state: CoordinatorState,
    pub index: u64,
}

impl Harness {
    pub fn new() -> Self {
        Self {
            state: CoordinatorState::default(),
            index: 0,
        }
    }

    /// A harness with `policy` as the default of scope `payments`.
    pub fn with_scope_policy(policy: Policy) -> Self {
        let mut h = Self::new();
        h.ok(
            T0,
            Command::PutPolicies {
                policies: vec![(PolicyTarget::Scope(scope("payments")), policy)],
            },
        );
        h
    }

    pub fn apply_as(
        &mut self,
        at_ms: u64,
        actor: Actor,
        command: Command,
    ) -> Result<Applied, CommandError> {
        self.index += 1;
        self.state.apply(
            ApplyContext {
                index: self.index,
                stamped_ms: at_ms,
            },
            &Envelope {
                actor,
                command,
                trace: None,
            },
        )
    }

    pub fn apply(&mut self, at_ms: u64, command: Command) -> Result<Applied, CommandError> {
        self.apply_as(at_ms, operator(), command)
    }

    pub fn ok(&mut self, at_ms: u64, command: Command) -> Vec<Effect> {
        self.apply(at_ms, command).expect("command applies").effects
    }

    pub fn tick(&mut self, at_ms: u64, deltas: Vec<Delta>) -> Vec<Effect> {
        self.apply_as(
            at_ms,
            Actor::Node(1),
            Command::Tick {
                deltas: deltas.into(),
            },
        )
        .expect("tick applies")
        .effects
    }

    pub fn view(&self, k: &str) -> BreakerView {
        self.state.breaker(&key(k)).expect("breaker exists")
    }

    pub fn state_of(&self, k: &str) -> BreakerState {
        self.view(k).state
    }

    /// Trips `payments/db` with failures from two instances; returns the open-until time.
    pub fn trip(&mut self, k: &str, at_ms: u64) -> u64 {
        self.tick(
            at_ms,
            vec![delta(k, "i-1", 20, 20, 0), delta(k, "i-2", 20, 20, 0)],
        );
        assert_eq!(self.state_of(k), BreakerState::Open);
        self.view(k).open_until_ms.unwrap()
    }

    /// Trips and waits to HALF_OPEN; returns the time it became HALF_OPEN.
    pub fn half_open(&mut self, k: &str, at_ms: u64) -> u64 {
        let until = self.trip(k, at_ms);
        self.tick(until, vec![]);
        assert_eq!(self.state_of(k), BreakerState::HalfOpen);
        until
    }

    pub fn acquire(&mut self, at_ms: u64, k: &str, i: &str) -> Effect {
        let fx = self
            .apply_as(
                at_ms,
                Actor::Instance(inst(i)),
                Command::AcquireProbe {
                    key: key(k),
                    instance: inst(i),
                },
            )
            .unwrap()
            .effects;
        fx.into_iter()
            .find(|e| matches!(e, Effect::ProbeGranted { .. } | Effect::ProbeDenied { .. }))
            .expect("a probe answer")
    }

    pub fn granted(&mut self, at_ms: u64, k: &str, i: &str) -> u64 {
        match self.acquire(at_ms, k, i) {
            Effect::ProbeGranted { permit_id, .. } => permit_id,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    pub fn release(
        &mut self,
        at_ms: u64,
        k: &str,
        permit_id: u64,
        outcome: ProbeOutcome,
    ) -> Result<Applied, CommandError> {
        self.apply_as(
            at_ms,
            Actor::Node(1),
            Command::ReleaseProbe {
                key: key(k),
                permit_id,
                outcome,
            },
        )
    }
}

pub fn changed(effects: &[Effect]) -> Vec<(BreakerState, BreakerState, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::BreakerChanged {
                from, to, reason, ..
            } => Some((*from, *to, reason.clone())),
            _ => None,
        })
        .collect()
}

pub fn tier_changes(effects: &[Effect]) -> Vec<(Tier, Tier)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::TierChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// Everything but the clock and the index, for "an error changed nothing" checks.
pub fn observable(state: &CoordinatorState) -> String {
    serde_json::to_string(&(
        state.breakers(),
        state.scopes(),
        state.policies(),
        state.audit().len(),
        state.settings(),
        state.next_deadline_ms(),
    ))
    .unwrap()
}
