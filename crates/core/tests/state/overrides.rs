//! Operator overrides: each mode, expiry, clear and reset.

use switchyard_core::*;

use crate::helpers::*;

fn set(h: &mut Harness, at: u64, mode: OverrideMode, expires_at_ms: Option<u64>) -> Vec<Effect> {
    h.ok(
        at,
        Command::SetOverride {
            key: key("payments/db"),
            mode,
            reason: "incident 42".into(),
            expires_at_ms,
        },
    )
}

fn failing(h: &mut Harness, at: u64) {
    h.tick(
        at,
        vec![
            delta("payments/db", "i-1", 50, 50, 0),
            delta("payments/db", "i-2", 50, 50, 0),
        ],
    );
}

#[test]
fn forced_open_creates_and_expires_back_to_closed() {
    let mut h = Harness::new();
    let fx = set(&mut h, T0, OverrideMode::ForcedOpen, Some(T0 + 60_000));
    assert_eq!(
        fx[0],
        Effect::BreakerCreated {
            key: key("payments/db")
        }
    );
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::Closed,
            BreakerState::ForcedOpen,
            "incident 42".into()
        )]
    );
    let ev = h.state.audit().events().last().unwrap().clone();
    assert_eq!(
        (
            ev.actor.to_string().as_str(),
            ev.kind.as_str(),
            ev.to.as_str()
        ),
        ("operator:alice", "override", "FORCED_OPEN")
    );
    assert_eq!(h.state.next_deadline_ms(), Some(T0 + 60_000));
    h.tick(T0 + 59_999, vec![]);
    assert_eq!(h.state_of("payments/db"), BreakerState::ForcedOpen);
    let fx = h.tick(T0 + 60_000, vec![]);
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::ForcedOpen,
            BreakerState::Closed,
            "override forced_open expired, automatic control resumes".into()
        )]
    );
}

#[test]
fn forced_closed_and_disabled_never_trip() {
    for mode in [OverrideMode::ForcedClosed, OverrideMode::Disabled] {
        let mut h = Harness::new();
        set(&mut h, T0, mode, None);
        failing(&mut h, T0 + 1);
        assert_eq!(h.state_of("payments/db"), mode.state());
        let r = h
            .state
            .sla_report(&key("payments/db"), SlaWindow::Day, T0 + 1)
            .unwrap();
        assert_eq!(r.failures, 100, "deltas still count for the SLA");
    }
}

#[test]
fn metrics_only_collects_but_never_trips() {
    let mut h = Harness::new();
    set(&mut h, T0, OverrideMode::MetricsOnly, Some(T0 + 5_000));
    failing(&mut h, T0 + 1);
    let v = h.view("payments/db");
    assert_eq!(
        (v.state, v.window_calls, v.window_failures),
        (BreakerState::MetricsOnly, 100, 100)
    );
    // phase: expiry resumes CLOSED with a fresh window (old evidence does not trip at once)
    h.tick(T0 + 5_000, vec![]);
    let v = h.view("payments/db");
    assert_eq!((v.state, v.window_calls), (BreakerState::Closed, 0));
}

#[test]
fn override_freezes_an_open_breaker_and_clear_resumes() {
    let mut h = Harness::with_scope_policy(exact_policy());
    h.trip("payments/db", T0);
    set(&mut h, T0 + 1, OverrideMode::ForcedClosed, None);
    h.tick(T0 + 40_000, vec![]);
    assert_eq!(
        h.state_of("payments/db"),
        BreakerState::ForcedClosed,
        "no OPEN -> HALF_OPEN under an override"
    );
    let fx = h.ok(
        T0 + 40_001,
        Command::ClearOverride {
            key: key("payments/db"),
            reason: "fixed".into(),
        },
    );
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::ForcedClosed,
            BreakerState::Closed,
            "override forced_closed cleared: fixed".into()
        )]
    );
    let err = h
        .apply(
            T0 + 40_002,
            Command::ClearOverride {
                key: key("payments/db"),
                reason: String::new(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::NotFound { .. }));
}

#[test]
fn override_expiry_must_be_in_the_future() {
    let mut h = Harness::new();
    let err = h
        .apply(
            T0,
            Command::SetOverride {
                key: key("payments/db"),
                mode: OverrideMode::ForcedOpen,
                reason: "test override".into(),
                expires_at_ms: Some(T0),
            },
        )
        .unwrap_err();
    match err {
        CommandError::Invalid(e) => assert_eq!(e.field, "expires_at_ms"),
        other => panic!("{other:?}"),
    }
    assert!(h.state.breaker(&key("payments/db")).is_none());
    let long = "x".repeat(513);
    let err = h
        .apply(
            T0,
            Command::SetOverride {
                key: key("payments/db"),
                mode: OverrideMode::ForcedOpen,
                reason: long,
                expires_at_ms: None,
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Invalid(ValidationError { ref field, .. }) if field == "reason")
    );
    let err = h
        .apply(
            T0,
            Command::ResetBreaker {
                key: key("payments/db"),
                reason: "a\nb".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, CommandError::Invalid(_)));
}

#[test]
fn reset_restarts_closed_with_fresh_window() {
    let mut h = Harness::with_scope_policy(exact_policy());
    h.trip("payments/db", T0);
    let fx = h.ok(
        T0 + 5,
        Command::ResetBreaker {
            key: key("payments/db"),
            reason: "deploy rolled back".into(),
        },
    );
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::Open,
            BreakerState::Closed,
            "reset: deploy rolled back".into()
        )]
    );
    let v = h.view("payments/db");
    assert_eq!(
        (v.window_calls, v.consecutive_opens, v.open_until_ms),
        (0, 0, None)
    );
    assert_eq!(v.updated_index, h.index);
}

#[test]
fn an_override_without_a_reason_is_refused_naming_reason() {
    // Goal: an empty or blank override reason is refused by the state machine itself (the
    // rule every surface shares), and nothing changes.
    let mut h = Harness::new();
    for reason in ["", "   "] {
        let err = h
            .apply(
                T0,
                Command::SetOverride {
                    key: key("payments/db"),
                    mode: OverrideMode::ForcedOpen,
                    reason: reason.into(),
                    expires_at_ms: None,
                },
            )
            .unwrap_err();
        match err {
            CommandError::Invalid(e) => {
                assert_eq!(e.field, "reason");
                assert!(e.rule.contains("required"), "{}", e.rule);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(h.state.breaker(&key("payments/db")).is_none());
    assert_eq!(h.state.audit().len(), 0, "nothing was audited");
}
