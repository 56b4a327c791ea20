//! Unit tests of the hot path (`breaker.rs`).

use super::*;
use crate::wrapped_call::test_support::{cancel_mid_call, half_open_with_one_token, probe_tokens};

fn breaker() -> Breaker {
    Breaker::detached(BreakerKey::parse("payments/ml-fraud").expect("key"))
}

#[test]
fn record_counts_calls_failures_slow_and_latency() {
    let b = breaker();
    for i in 0..10u64 {
        let permit = b.allow().expect("closed breaker admits");
        let outcome = Outcome::failure_if(i % 5 == 0);
        b.record(
            permit,
            outcome,
            Duration::from_millis(if i == 9 { 1500 } else { 2 }),
        );
    }
    assert_eq!(b.peek_latency().count(), 10);
    let d = b.shared.drain();
    assert_eq!((d.calls, d.failures, d.slow), (10, 2, 1));
    assert_eq!(d.latency.iter().map(|b| b.1).sum::<u64>(), 10);
    assert!(b.shared.drain().is_empty(), "a drain resets the counters");
}

#[test]
fn published_admissions_reject_with_their_reason() {
    let b = breaker();
    for (admission, reason) in [
        (Admission::RejectClusterOpen, RejectReason::ClusterOpen),
        (Admission::RejectForcedOpen, RejectReason::ForcedOpen),
        (Admission::RejectLocalOpen, RejectReason::LocalOpen),
        (Admission::ClusterProbe, RejectReason::HalfOpenNoPermit),
        (Admission::LocalProbe, RejectReason::HalfOpenNoPermit),
    ] {
        b.shared.publish(admission, 1);
        let rejected = b.allow().expect_err("rejects");
        assert_eq!(rejected.reason, reason);
        assert_eq!(&*rejected.key, "payments/ml-fraud");
    }
    let d = b.shared.drain();
    assert_eq!(d.rejected[RejectReason::HalfOpenNoPermit as usize], 2);
    assert_eq!(d.rejected_total(), 5);
}

#[test]
fn half_open_admits_only_calls_holding_a_probe_token() {
    let b = breaker();
    b.shared.publish(Admission::ClusterProbe, 7);
    assert!(b.allow().is_err());
    assert!(
        b.shared.probes[POOL_CLUSTER].demand.load(Relaxed),
        "demand is signalled"
    );
    b.shared.probes[POOL_CLUSTER].tokens.store(1, Relaxed);
    let permit = b.allow().expect("a token admits one call");
    assert_eq!(permit.kind(), PermitKind::ClusterProbe);
    assert!(b.allow().is_err(), "only one token");
    b.record(permit, Outcome::Success, Duration::from_millis(1));
    assert_eq!(b.shared.probes[POOL_CLUSTER].take_outcomes(), (1, 0));
}

#[test]
fn drain_never_reports_more_failures_than_calls() {
    let b = breaker();
    // Simulate the race: a failure counted before its latency bucket.
    b.shared.stripe().failures.fetch_add(1, Relaxed);
    let d = b.shared.drain();
    assert_eq!((d.calls, d.failures), (0, 0));
    b.shared.stripe().latency[3].fetch_add(1, Relaxed);
    let d = b.shared.drain();
    assert_eq!(
        (d.calls, d.failures),
        (1, 1),
        "the carried failure arrives with its call"
    );
}

#[tokio::test]
async fn wrapped_call_records_with_the_classifier() {
    let b = breaker();
    let status_classifier =
        |r: &Result<u16, ()>| r.map_or(Outcome::Failure, Outcome::from_http_status);
    let v = b
        .call_classified(&status_classifier, || async { Ok::<_, ()>(404) })
        .await;
    assert_eq!(v.expect("ok"), 404);
    let v = b
        .call_classified(&status_classifier, || async { Ok::<_, ()>(503) })
        .await;
    assert_eq!(v.expect("ok"), 503);
    let e = b
        .call(|| async { Err::<(), _>("boom") })
        .await
        .expect_err("fails");
    assert!(matches!(e, CallError::Failed("boom")));
    let d = b.shared.drain();
    assert_eq!(
        (d.calls, d.failures),
        (3, 2),
        "404 is a success, 503 and Err are failures"
    );
}

#[test]
fn a_dropped_call_gives_its_probe_permit_back_at_once() {
    let b = half_open_with_one_token("payments/ml-fraud");
    cancel_mid_call(b.call(std::future::pending::<Result<(), ()>>));
    assert_eq!(probe_tokens(&b), 1, "the token is back in the pool");
    let permit = b.allow().expect("the next call makes the trial");
    assert_eq!(permit.kind(), PermitKind::ClusterProbe);
}

#[test]
fn a_dropped_probe_permit_gives_itself_back_and_a_recorded_one_does_not() {
    let b = half_open_with_one_token("payments/ml-fraud");
    drop(b.allow().expect("probe"));
    assert_eq!(probe_tokens(&b), 1, "dropped unrecorded: back in the pool");
    let permit = b.allow().expect("probe");
    b.record(permit, Outcome::Success, Duration::from_millis(1));
    assert_eq!(probe_tokens(&b), 0, "recorded: the trial was made");
    assert!(b.allow().is_err());
}
