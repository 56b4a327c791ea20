//! HALF_OPEN: fleet-wide probe permits, leases, and the way back to CLOSED or OPEN.

use switchyard_core::*;

use crate::helpers::*;

#[test]
fn half_open_closes_after_threshold_successes() {
    let mut h = Harness::with_scope_policy(exact_policy());
    let at = h.half_open("payments/db", T0);
    let permits: Vec<u64> = (1..=3)
        .map(|i| h.granted(at, "payments/db", &format!("i-{i}")))
        .collect();
    assert_eq!(
        permits,
        vec![1, 2, 3],
        "permit ids come from a counter in the state"
    );
    assert_eq!(h.view("payments/db").probe_permits_in_use, 3);
    for p in &permits[..2] {
        assert!(
            changed(
                &h.release(at + 5, "payments/db", *p, ProbeOutcome::Success)
                    .unwrap()
                    .effects
            )
            .is_empty()
        );
    }
    let fx = h
        .release(at + 5, "payments/db", permits[2], ProbeOutcome::Success)
        .unwrap()
        .effects;
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::HalfOpen,
            BreakerState::Closed,
            "3 of 3 probes succeeded".into()
        )]
    );
    let v = h.view("payments/db");
    assert_eq!(
        (v.window_calls, v.consecutive_opens, v.probe_permits_in_use),
        (0, 0, 0),
        "fresh window, back-off reset"
    );
}

#[test]
fn failed_probe_reopens() {
    let mut h = Harness::with_scope_policy(exact_policy());
    let at = h.half_open("payments/db", T0);
    let p = h.granted(at, "payments/db", "i-1");
    let fx = h
        .release(at + 1, "payments/db", p, ProbeOutcome::Failure)
        .unwrap()
        .effects;
    assert_eq!(
        changed(&fx),
        vec![(
            BreakerState::HalfOpen,
            BreakerState::Open,
            format!("probe {p} failed, re-opening (consecutive open 2)")
        )]
    );
    assert_eq!(h.view("payments/db").open_until_ms, Some(at + 1 + 60_000));
}

#[test]
fn probes_beyond_permits_are_denied() {
    let mut h = Harness::with_scope_policy(exact_policy());
    let at = h.half_open("payments/db", T0);
    for i in 0..3 {
        h.granted(at, "payments/db", &format!("i-{i}"));
    }
    match h.acquire(at, "payments/db", "i-9") {
        Effect::ProbeDenied { reason, .. } => assert_eq!(reason, "all 3 probe permits are in use"),
        other => panic!("{other:?}"),
    }
    // phase: an unused permit frees its slot
    h.release(at, "payments/db", 1, ProbeOutcome::Unused)
        .unwrap();
    h.granted(at, "payments/db", "i-9");
}

#[test]
fn probe_denied_when_not_half_open() {
    let mut h = Harness::new();
    h.tick(T0, vec![delta("payments/db", "i-1", 1, 0, 0)]);
    match h.acquire(T0, "payments/db", "i-1") {
        Effect::ProbeDenied { reason, .. } => assert_eq!(
            reason,
            "breaker is CLOSED, probes are granted only in HALF_OPEN"
        ),
        other => panic!("{other:?}"),
    }
    let err = h
        .apply(
            T0,
            Command::AcquireProbe {
                key: key("payments/none"),
                instance: inst("i-1"),
            },
        )
        .unwrap_err();
    assert_eq!(err, CommandError::UnknownBreaker(key("payments/none")));
}

#[test]
fn lease_expiry_frees_a_permit_and_stales_it() {
    let mut h = Harness::with_scope_policy(exact_policy());
    let at = h.half_open("payments/db", T0);
    for i in 0..3 {
        h.granted(at, "payments/db", &format!("i-{i}"));
    }
    assert_eq!(h.state.next_deadline_ms(), Some(at + 10_000));
    h.tick(at + 9_999, vec![]);
    assert_eq!(h.view("payments/db").probe_permits_in_use, 3);
    h.tick(at + 10_000, vec![]);
    assert_eq!(
        h.view("payments/db").probe_permits_in_use,
        0,
        "leases expire after probe_lease_ms"
    );
    let again = h.granted(at + 10_000, "payments/db", "i-4");
    assert_eq!(again, 4);
    let before = observable(&h.state);
    let err = h
        .release(at + 10_000, "payments/db", 1, ProbeOutcome::Success)
        .unwrap_err();
    assert_eq!(err, CommandError::StaleProbe { permit_id: 1 });
    assert_eq!(
        observable(&h.state),
        before,
        "a stale permit changes nothing"
    );
}

#[test]
fn unknown_permit_is_stale() {
    let mut h = Harness::with_scope_policy(exact_policy());
    let at = h.half_open("payments/db", T0);
    assert_eq!(
        h.release(at, "payments/db", 77, ProbeOutcome::Failure)
            .unwrap_err(),
        CommandError::StaleProbe { permit_id: 77 }
    );
    assert_eq!(h.state_of("payments/db"), BreakerState::HalfOpen);
}

#[test]
fn deltas_in_half_open_do_not_drive_transitions() {
    let mut h = Harness::with_scope_policy(exact_policy());
    let at = h.half_open("payments/db", T0);
    h.tick(
        at + 1,
        vec![
            delta("payments/db", "i-1", 100, 100, 0),
            delta("payments/db", "i-2", 100, 100, 0),
        ],
    );
    assert_eq!(h.state_of("payments/db"), BreakerState::HalfOpen);
    let report = h
        .state
        .sla_report(&key("payments/db"), SlaWindow::Day, at + 1)
        .unwrap();
    assert_eq!(report.failures, 240, "but they feed the SLA");
}
