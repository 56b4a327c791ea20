//! Conversions between the wire messages the SDK receives and the domain types it uses.
//!
//! Kept in one place so a change of the wire contract touches one file of the SDK.

use switchyard_core::{BreakerState, Policy, ProbeOutcome, Tier, WindowSpec};
use switchyard_proto::client as pb;

/// The domain state of a wire state; `None` for `UNSPECIFIED` or an unknown value
/// (such a decision is ignored rather than guessed).
pub(crate) fn breaker_state(state: i32) -> Option<BreakerState> {
    Some(match pb::BreakerState::try_from(state).ok()? {
        pb::BreakerState::Unspecified => return None,
        pb::BreakerState::Closed => BreakerState::Closed,
        pb::BreakerState::Open => BreakerState::Open,
        pb::BreakerState::HalfOpen => BreakerState::HalfOpen,
        pb::BreakerState::ForcedOpen => BreakerState::ForcedOpen,
        pb::BreakerState::ForcedClosed => BreakerState::ForcedClosed,
        pb::BreakerState::Disabled => BreakerState::Disabled,
        pb::BreakerState::MetricsOnly => BreakerState::MetricsOnly,
    })
}

/// The wire value of a domain state (for tests that build decisions).
#[cfg(test)]
pub(crate) fn breaker_state_to_wire(state: BreakerState) -> i32 {
    let s = match state {
        BreakerState::Closed => pb::BreakerState::Closed,
        BreakerState::Open => pb::BreakerState::Open,
        BreakerState::HalfOpen => pb::BreakerState::HalfOpen,
        BreakerState::ForcedOpen => pb::BreakerState::ForcedOpen,
        BreakerState::ForcedClosed => pb::BreakerState::ForcedClosed,
        BreakerState::Disabled => pb::BreakerState::Disabled,
        BreakerState::MetricsOnly => pb::BreakerState::MetricsOnly,
    };
    s as i32
}

/// The wire value of a probe outcome.
pub(crate) fn probe_outcome(outcome: ProbeOutcome) -> i32 {
    let o = match outcome {
        ProbeOutcome::Success => pb::ProbeOutcome::Success,
        ProbeOutcome::Failure => pb::ProbeOutcome::Failure,
        ProbeOutcome::Unused => pb::ProbeOutcome::Unused,
    };
    o as i32
}

/// The domain policy of a wire policy, if it is complete and valid (otherwise the local
/// breaker keeps the policy it has).
pub(crate) fn policy(p: &pb::Policy) -> Option<Policy> {
    let window = match p.window? {
        pb::policy::Window::Time(t) => WindowSpec::Time {
            duration_ms: t.duration_ms,
            buckets: t.buckets,
        },
        pb::policy::Window::Count(c) => WindowSpec::Count { calls: c.calls },
    };
    let policy = Policy {
        window,
        min_calls: p.min_calls,
        failure_rate_threshold: p.failure_rate_threshold,
        slow_call_duration_ms: p.slow_call_duration_ms,
        slow_call_rate_threshold: p.slow_call_rate_threshold,
        min_instances: p.min_instances,
        open_duration_ms: p.open_duration_ms,
        open_duration_max_ms: p.open_duration_max_ms,
        open_jitter_percent: p.open_jitter_percent,
        probe_permits: p.probe_permits,
        probe_success_threshold: p.probe_success_threshold,
        probe_lease_ms: p.probe_lease_ms,
    };
    policy.validate().ok().map(|()| policy)
}

/// The wire form of a domain policy (for tests that build decisions).
#[cfg(test)]
pub(crate) fn policy_to_wire(p: &Policy) -> pb::Policy {
    let window = match p.window {
        WindowSpec::Time {
            duration_ms,
            buckets,
        } => pb::policy::Window::Time(pb::TimeWindow {
            duration_ms,
            buckets,
        }),
        WindowSpec::Count { calls } => pb::policy::Window::Count(pb::CountWindow { calls }),
    };
    pb::Policy {
        window: Some(window),
        min_calls: p.min_calls,
        failure_rate_threshold: p.failure_rate_threshold,
        slow_call_duration_ms: p.slow_call_duration_ms,
        slow_call_rate_threshold: p.slow_call_rate_threshold,
        min_instances: p.min_instances,
        open_duration_ms: p.open_duration_ms,
        open_duration_max_ms: p.open_duration_max_ms,
        open_jitter_percent: p.open_jitter_percent,
        probe_permits: p.probe_permits,
        probe_success_threshold: p.probe_success_threshold,
        probe_lease_ms: p.probe_lease_ms,
    }
}

/// The tier of a wire tier number; out-of-range values mean `None`.
pub(crate) fn tier(n: u32) -> Option<Tier> {
    u8::try_from(n).ok().and_then(|n| Tier::from_number(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_and_state_round_trip() {
        let p = Policy::default();
        assert_eq!(policy(&policy_to_wire(&p)), Some(p));
        for s in BreakerState::ALL {
            assert_eq!(breaker_state(breaker_state_to_wire(s)), Some(s));
        }
        assert_eq!(breaker_state(0), None);
        assert_eq!(breaker_state(99), None);
        assert_eq!(tier(3), Some(Tier::Essential));
        assert_eq!(tier(0), None);
    }

    #[test]
    fn invalid_wire_policy_is_refused() {
        let mut p = policy_to_wire(&Policy::default());
        p.failure_rate_threshold = 0;
        assert_eq!(policy(&p), None);
        p.window = None;
        assert_eq!(policy(&p), None);
    }
}
