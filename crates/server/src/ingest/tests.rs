//! The report buffer's tests.

use super::*;
use switchyard_core::{BreakerKey, InstanceId, LatencySketch};

pub(super) fn delta(key: &str, instance: &str, calls: u64, failures: u64) -> Delta {
    let mut latency = LatencySketch::default();
    latency.record_n(1_000, calls);
    Delta {
        key: BreakerKey::parse(key).unwrap(),
        instance: InstanceId::parse(instance).unwrap(),
        calls,
        failures,
        slow: 0,
        rejected: 0,
        latency,
        first_attempts: u32::try_from(calls).unwrap_or(u32::MAX),
        retries: u32::try_from(failures).unwrap_or(u32::MAX),
    }
}

#[test]
fn a_batch_lists_its_calls_in_instance_order_whatever_the_arrival_order() {
    let ingest = Ingest::new(100, 100);
    let names: Vec<String> = (0..12).rev().map(|i| format!("pod-{i:02}")).collect();
    for (n, name) in names.iter().enumerate() {
        for _ in 0..=n % 3 {
            ingest
                .offer(name, vec![delta("s/x", name, 1, 0)], 0)
                .unwrap();
        }
    }
    let calls = ingest.take_batch().calls;
    let mut want: Vec<(String, u32)> = names
        .iter()
        .enumerate()
        .map(|(n, name)| (name.clone(), (n % 3 + 1) as u32))
        .collect();
    want.sort();
    assert_eq!(calls, want);
}

#[test]
fn merges_per_breaker_and_instance() {
    let ingest = Ingest::new(100, 100);
    ingest
        .offer(
            "a",
            vec![delta("s/x", "a", 2, 1), delta("s/y", "a", 1, 0)],
            0,
        )
        .unwrap();
    ingest.offer("b", vec![delta("s/x", "b", 3, 3)], 0).unwrap();
    ingest.offer("a", vec![delta("s/x", "a", 5, 0)], 0).unwrap();
    let merged = ingest.take();
    assert_eq!(merged.len(), 3);
    assert_eq!(
        (
            merged[0].instance.as_str(),
            merged[0].calls,
            merged[0].failures
        ),
        ("a", 7, 1)
    );
    assert_eq!(merged[0].latency.count(), 7);
    assert_eq!(
        (merged[0].first_attempts, merged[0].retries),
        (7, 1),
        "retry figures are summed too"
    );
    assert_eq!((merged[1].instance.as_str(), merged[1].calls), ("b", 3));
    assert_eq!(merged[2].key.as_str(), "s/y");
    assert!(ingest.is_empty());
}

#[test]
fn refuses_at_the_pending_limit_and_changes_nothing() {
    let ingest = Ingest::new(3, 100);
    ingest
        .offer("a", vec![delta("s/x", "a", 1, 0); 3], 0)
        .unwrap();
    let err = ingest
        .offer("b", vec![delta("s/x", "b", 1, 0)], 0)
        .unwrap_err();
    assert!(matches!(err, NodeError::Limit { max: 3, .. }), "{err}");
    assert_eq!(ingest.len(), 3);
}

#[test]
fn a_full_buffer_refuses_without_counting_the_call_and_the_rate_is_named_first() {
    let ingest = Ingest::new(3, 2);
    ingest
        .offer("a", vec![delta("s/x", "a", 1, 0); 3], 0)
        .unwrap();
    // Full: refused at the buffer's limit, for a known instance and a new one alike.
    for instance in ["a", "b"] {
        let err = ingest
            .offer(instance, vec![delta("s/x", instance, 1, 0)], 10)
            .unwrap_err();
        assert_eq!(err.limit(), Some(LimitName::PendingDeltasMax), "{err}");
    }
    // Those refusals did not count: "a" has one call of its two left this second.
    let _ = ingest.take();
    ingest
        .offer("a", vec![delta("s/x", "a", 1, 0)], 20)
        .unwrap();
    // Over its rate and with the buffer full, "a" is refused by its own limit.
    ingest
        .offer("b", vec![delta("s/x", "b", 1, 0); 2], 30)
        .unwrap();
    let err = ingest
        .offer("a", vec![delta("s/x", "a", 1, 0)], 40)
        .unwrap_err();
    assert_eq!(
        err.limit(),
        Some(LimitName::ReportRatePerInstanceMax),
        "{err}"
    );
}

#[test]
fn limits_report_rate_per_instance_per_second() {
    let ingest = Ingest::new(1000, 2);
    ingest
        .offer("a", vec![delta("s/x", "a", 1, 0)], 1_000)
        .unwrap();
    ingest
        .offer("a", vec![delta("s/x", "a", 1, 0)], 1_500)
        .unwrap();
    assert!(
        ingest
            .offer("a", vec![delta("s/x", "a", 1, 0)], 1_999)
            .is_err()
    );
    // Another instance is not affected, and the next second starts afresh.
    ingest
        .offer("b", vec![delta("s/x", "b", 1, 0)], 1_999)
        .unwrap();
    ingest
        .offer("a", vec![delta("s/x", "a", 1, 0)], 2_000)
        .unwrap();
}

#[test]
fn forwarded_calls_count_against_each_instance_across_the_cluster() {
    // The leader has 3 calls from web-1 itself; two followers forward 4 and 5 more in the
    // same second, with a limit of 10: the second batch takes web-1 over, and only its
    // web-1 deltas are refused.
    let ingest = Ingest::new(1_000, 10);
    for _ in 0..3 {
        ingest
            .offer("web-1", vec![delta("a/b", "web-1", 1, 0)], 5_000)
            .unwrap();
    }
    let batch = |n: u32| Batch {
        calls: vec![("web-1".into(), n), ("web-2".into(), 1)],
        deltas: vec![
            delta("a/b", "web-1", u64::from(n), 0),
            delta("a/b", "web-2", 1, 0),
        ],
    };
    let first = ingest.offer_batch(batch(4), 5_100).unwrap();
    assert_eq!(
        first,
        BatchOutcome {
            accepted: 2,
            refused_by_rate: 0
        }
    );
    let second = ingest.offer_batch(batch(5), 5_200).unwrap();
    assert_eq!(
        second,
        BatchOutcome {
            accepted: 1,
            refused_by_rate: 1
        }
    );
    // A new second starts a new window.
    let third = ingest.offer_batch(batch(5), 6_000).unwrap();
    assert_eq!(
        third,
        BatchOutcome {
            accepted: 2,
            refused_by_rate: 0
        }
    );
    // A follower's buffer hands over its calls with its deltas, once.
    let follower = Ingest::new(1_000, u32::MAX);
    follower
        .offer("web-1", vec![delta("a/b", "web-1", 1, 0)], 0)
        .unwrap();
    follower
        .offer("web-1", vec![delta("a/b", "web-1", 1, 0)], 0)
        .unwrap();
    let taken = follower.take_batch();
    assert_eq!(taken.calls, vec![("web-1".to_string(), 2)]);
    assert_eq!(taken.deltas.len(), 1, "merged");
    assert!(follower.take_batch().calls.is_empty());
}

#[test]
fn a_batch_not_handed_on_waits_again_and_counts_against_the_limit_meanwhile() {
    // A follower's buffer of 4: a batch of 3 goes out; while it is out, one more delta
    // fits and a second is refused (the batch still counts). The leader did not take the
    // batch: it comes back and goes with the next one, nothing lost, calls included.
    let buffer = Ingest::new(4, u32::MAX);
    buffer
        .offer(
            "a",
            vec![delta("s/x", "a", 1, 0), delta("s/y", "a", 2, 0)],
            0,
        )
        .unwrap();
    buffer.offer("b", vec![delta("s/x", "b", 4, 1)], 0).unwrap();
    let out = buffer.take_batch();
    assert_eq!(out.deltas.len(), 3);
    buffer.offer("a", vec![delta("s/x", "a", 8, 0)], 0).unwrap();
    let err = buffer
        .offer("c", vec![delta("s/x", "c", 1, 0)], 0)
        .unwrap_err();
    assert_eq!(err.limit(), Some(LimitName::PendingDeltasMax), "{err}");
    buffer.restore(out);
    let again = buffer.take_batch();
    let calls: u64 = again.deltas.iter().map(|d| d.calls).sum();
    assert_eq!(
        calls,
        1 + 2 + 4 + 8,
        "every acknowledged call is still there"
    );
    assert_eq!(again.deltas.len(), 3, "merged with the newer report");
    assert_eq!(
        again.calls,
        vec![("a".to_string(), 2), ("b".to_string(), 1)],
        "the calls that brought them travel again"
    );
    // Handed on this time: the buffer has room for a full limit again.
    buffer.settle();
    buffer
        .offer("c", vec![delta("s/x", "c", 1, 0); 4], 0)
        .unwrap();
}

#[test]
fn a_batch_the_leader_cannot_take_is_handed_back_unchanged() {
    let leader = Ingest::new(2, 100);
    leader.offer("a", vec![delta("s/x", "a", 1, 0)], 0).unwrap();
    let batch = Batch {
        calls: vec![("b".into(), 1)],
        deltas: vec![delta("s/x", "b", 3, 0), delta("s/y", "b", 5, 0)],
    };
    let refused = leader.offer_batch(batch, 0).unwrap_err();
    assert_eq!(refused.error.limit(), Some(LimitName::PendingDeltasMax));
    assert_eq!(refused.batch.calls, vec![("b".to_string(), 1)]);
    let calls: Vec<u64> = refused.batch.deltas.iter().map(|d| d.calls).collect();
    assert_eq!(calls, vec![3, 5]);
    assert_eq!(leader.len(), 1, "nothing changed on the leader");
}
