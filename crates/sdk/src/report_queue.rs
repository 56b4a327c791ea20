//! The bounded queue of reports waiting to be sent.
//!
//! Why merge: when the cluster is slow, unreachable, or asks for a wider report interval
//! (back-pressure), outcomes keep coming. A new report is merged into the newest queued one
//! that is not being sent (sums per breaker, latency buckets added), so the queue holds the
//! same evidence in fewer reports and its size stays bounded by the number of breakers, not by
//! time. Only when a merge is impossible (a sum would pass the server's per-delta limit, or the
//! only queued report is in flight) and the queue is full is the oldest report dropped, and the
//! drop is counted (reports and the breaker deltas inside them).

use std::collections::VecDeque;

use switchyard_core::DELTA_COUNT_MAX;

use crate::breaker_shared::DrainedCounts;
use switchyard_proto::client::{BreakerDelta, LatencyBucket, ReportRequest};

/// Default [`ReportQueue`] capacity: 64 reports, 6.4 s of history at the default interval.
pub const REPORT_QUEUE_MAX_DEFAULT: usize = 64;

/// What a push had to drop to stay within the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dropped {
    /// Reports dropped.
    pub reports: u64,
    /// Breaker deltas inside them.
    pub deltas: u64,
}

/// A FIFO of reports holding at most `capacity` (see the module docs).
#[derive(Debug)]
pub struct ReportQueue {
    /// `(sequence number, report)`, oldest first.
    queue: VecDeque<(u64, ReportRequest)>,
    next_seq: u64,
    capacity: usize,
    dropped: Dropped,
    /// The report being sent, which must not change until it is answered.
    in_flight: Option<u64>,
}

impl ReportQueue {
    /// An empty queue of at most `capacity` reports (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            queue: VecDeque::with_capacity(capacity),
            next_seq: 0,
            capacity,
            dropped: Dropped::default(),
            in_flight: None,
        }
    }

    /// Adds `report`: merged into the newest queued report when `merge` asks for it (the
    /// report interval has not passed yet) or the queue is full, else appended; dropping the
    /// oldest only when full and the merge is impossible. Returns whether it became a report of
    /// its own (one more to send), and what was dropped.
    pub fn add(&mut self, report: ReportRequest, merge: bool) -> (bool, Dropped) {
        let full = self.queue.len() >= self.capacity;
        let report = if merge || full {
            match self.queue.back_mut() {
                Some((seq, back)) if Some(*seq) != self.in_flight => {
                    match merge_report(back, report) {
                        Ok(()) => return (false, Dropped::default()),
                        Err(report) => report,
                    }
                }
                _ => report,
            }
        } else {
            report
        };
        (true, self.push(report))
    }

    /// Appends `report`, dropping the oldest when full; returns what was dropped.
    pub fn push(&mut self, report: ReportRequest) -> Dropped {
        let mut dropped = Dropped::default();
        while self.queue.len() >= self.capacity {
            if let Some((_, old)) = self.queue.pop_front() {
                dropped.reports += 1;
                dropped.deltas += old.deltas.len() as u64;
            }
        }
        self.queue.push_back((self.next_seq, report));
        self.next_seq += 1;
        self.dropped.reports += dropped.reports;
        self.dropped.deltas += dropped.deltas;
        dropped
    }

    /// The oldest report and its sequence number, if any.
    pub fn front(&self) -> Option<(u64, &ReportRequest)> {
        self.queue.front().map(|(seq, r)| (*seq, r))
    }

    /// The oldest report to send, marked in flight: nothing is merged into it until
    /// [`ReportQueue::remove_sent`] or [`ReportQueue::unsent`].
    pub fn take_front(&mut self) -> Option<(u64, ReportRequest)> {
        let (seq, report) = self.queue.front()?;
        self.in_flight = Some(*seq);
        Some((*seq, report.clone()))
    }

    /// Report `seq` was not accepted: it stays queued and may take merges again.
    pub fn unsent(&mut self, seq: u64) {
        if self.in_flight == Some(seq) {
            self.in_flight = None;
        }
    }

    /// Removes report `seq` after it was sent, if it is still the oldest (it may have been
    /// dropped while in flight). Returns whether it was removed.
    pub fn remove_sent(&mut self, seq: u64) -> bool {
        self.unsent(seq);
        if self.queue.front().is_some_and(|(s, _)| *s == seq) {
            self.queue.pop_front();
            true
        } else {
            false
        }
    }

    /// Reports waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The limit.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Everything dropped since the queue was created.
    pub fn dropped_total(&self) -> Dropped {
        self.dropped
    }
}

/// The wire delta of drained counts, scaled down proportionally if a counter exceeds the
/// server's per-delta limit ([`DELTA_COUNT_MAX`]).
pub(crate) fn wire_delta(key: &str, d: &DrainedCounts) -> BreakerDelta {
    let biggest = d.calls.max(d.rejected_total());
    let scale = |n: u64| -> u64 {
        if biggest <= DELTA_COUNT_MAX {
            n
        } else {
            // n <= biggest, so the result is <= DELTA_COUNT_MAX.
            ((u128::from(n) * u128::from(DELTA_COUNT_MAX)) / u128::from(biggest)) as u64
        }
    };
    let latency: Vec<LatencyBucket> = d
        .latency
        .iter()
        .map(|&(index, count)| LatencyBucket {
            index: u32::from(index),
            count: scale(count),
        })
        .filter(|b| b.count > 0)
        .collect();
    let calls: u64 = latency.iter().map(|b| b.count).sum();
    BreakerDelta {
        key: key.to_owned(),
        calls,
        failures: scale(d.failures).min(calls),
        slow: scale(d.slow).min(calls),
        rejected: scale(d.rejected_total()),
        latency,
        // Not scaled with the calls: they are not a part of them. Capped at the limit.
        first_attempts: d.first_attempts.min(DELTA_COUNT_MAX),
        retries: d.retries.min(DELTA_COUNT_MAX),
    }
}

/// Merges `from` into `into` (same instance): per breaker key, counts and latency buckets
/// summed; keys new to `into` appended. Refused, with `from` handed back and `into`
/// unchanged, when a sum would pass [`DELTA_COUNT_MAX`] (the server would refuse the report).
pub fn merge_report(into: &mut ReportRequest, from: ReportRequest) -> Result<(), ReportRequest> {
    let fits = |a: u64, b: u64| a.checked_add(b).is_some_and(|s| s <= DELTA_COUNT_MAX);
    let ok = from.deltas.iter().all(|d| {
        into.deltas.iter().find(|e| e.key == d.key).is_none_or(|e| {
            fits(e.calls, d.calls)
                && fits(e.rejected, d.rejected)
                && fits(e.first_attempts, d.first_attempts)
                && fits(e.retries, d.retries)
        })
    });
    if !ok || into.instance != from.instance {
        return Err(from);
    }
    for d in from.deltas {
        match into.deltas.iter_mut().find(|e| e.key == d.key) {
            Some(e) => add_delta(e, d),
            None => into.deltas.push(d),
        }
    }
    Ok(())
}

fn add_delta(into: &mut BreakerDelta, from: BreakerDelta) {
    into.calls += from.calls;
    into.failures += from.failures;
    into.slow += from.slow;
    into.rejected += from.rejected;
    into.first_attempts += from.first_attempts;
    into.retries += from.retries;
    // Both sorted by index, each index once (the server's rule): a sorted merge keeps it so.
    let mut merged: Vec<LatencyBucket> =
        Vec::with_capacity(into.latency.len() + from.latency.len());
    let mut a = std::mem::take(&mut into.latency).into_iter().peekable();
    let mut b = from.latency.into_iter().peekable();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.index == y.index => {
                let (x, y) = (a.next(), b.next());
                x.zip(y).map(|(x, y)| LatencyBucket {
                    index: x.index,
                    count: x.count + y.count,
                })
            }
            (Some(x), Some(y)) if x.index < y.index => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(bucket) => merged.push(bucket),
            None => break,
        }
    }
    into.latency = merged;
}

#[cfg(test)]
mod tests {
    use switchyard_proto::client::BreakerDelta;

    use super::*;

    fn report(n: usize) -> ReportRequest {
        ReportRequest {
            instance: "pod-1".into(),
            deltas: (0..n)
                .map(|i| BreakerDelta {
                    key: format!("s/b{i}"),
                    calls: 1,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn at_the_limit_the_oldest_report_is_dropped_and_counted() {
        let mut q = ReportQueue::new(3);
        for n in 1..=3 {
            assert_eq!(q.push(report(n)), Dropped::default());
        }
        assert_eq!(q.len(), 3);
        // phase: one over the limit
        assert_eq!(
            q.push(report(4)),
            Dropped {
                reports: 1,
                deltas: 1
            }
        );
        assert_eq!(q.len(), 3, "never more than the capacity");
        assert_eq!(
            q.front().map(|(_, r)| r.deltas.len()),
            Some(2),
            "the oldest (1 delta) went"
        );
        // phase: many over the limit
        for _ in 0..10 {
            q.push(report(5));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(
            q.dropped_total(),
            Dropped {
                reports: 11,
                deltas: 1 + 2 + 3 + 4 + 5 * 7
            }
        );
        let (seq, _) = q.front().expect("front");
        assert!(
            !q.remove_sent(seq + 1),
            "only the report that was sent is removed"
        );
        assert!(q.remove_sent(seq));
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn a_report_dropped_while_in_flight_is_not_removed_twice() {
        let mut q = ReportQueue::new(1);
        q.push(report(1));
        let (in_flight, _) = q.front().expect("front");
        q.push(report(2)); // drops the in-flight report
        assert!(!q.remove_sent(in_flight));
        assert_eq!(q.len(), 1, "the newer report stays queued");
    }

    fn bucketed(key: &str, calls: u64, buckets: &[(u32, u64)]) -> BreakerDelta {
        BreakerDelta {
            key: key.into(),
            calls,
            failures: 1,
            latency: buckets
                .iter()
                .map(|&(index, count)| LatencyBucket { index, count })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn while_the_interval_has_not_passed_reports_merge_and_nothing_is_lost() {
        let mut q = ReportQueue::new(3);
        let one = |deltas| ReportRequest {
            instance: "pod-1".into(),
            deltas,
        };
        assert!(
            q.add(one(vec![bucketed("s/a", 3, &[(1, 2), (5, 1)])]), false)
                .0
        );
        let (own, dropped) = q.add(
            one(vec![
                bucketed("s/a", 4, &[(0, 1), (5, 2), (7, 1)]),
                bucketed("s/b", 1, &[(2, 1)]),
            ]),
            true,
        );
        assert!(!own, "merged into the queued report");
        assert_eq!(dropped, Dropped::default());
        assert_eq!(q.len(), 1);
        let (_, r) = q.front().unwrap();
        assert_eq!(r.deltas.len(), 2);
        let a = &r.deltas[0];
        assert_eq!((a.calls, a.failures), (7, 2));
        let buckets: Vec<(u32, u64)> = a.latency.iter().map(|b| (b.index, b.count)).collect();
        assert_eq!(
            buckets,
            vec![(0, 1), (1, 2), (5, 3), (7, 1)],
            "sorted, summed"
        );
        assert_eq!(r.deltas[1].key, "s/b");
    }

    #[test]
    fn at_the_limit_reports_merge_instead_of_dropping_but_never_into_one_in_flight() {
        let mut q = ReportQueue::new(2);
        q.add(report(1), false);
        q.add(report(1), false);
        // Full: the next ten merge into the newest; nothing dropped, the queue stays at 2.
        for _ in 0..10 {
            assert_eq!(q.add(report(2), false), (false, Dropped::default()));
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped_total(), Dropped::default());
        let calls: u64 = q
            .queue
            .iter()
            .flat_map(|(_, r)| &r.deltas)
            .map(|d| d.calls)
            .sum();
        assert_eq!(calls, 1 + 1 + 10 * 2);
        // The front is being sent: merges go to the report behind it.
        let (seq, sent) = q.take_front().unwrap();
        assert!(!q.add(report(1), true).0);
        assert_eq!(
            q.front().unwrap().1,
            &sent,
            "the report in flight did not change"
        );
        assert!(q.remove_sent(seq));
        // Alone and in flight: the next report is one of its own.
        let (seq, _) = q.take_front().unwrap();
        assert!(q.add(report(1), true).0);
        assert_eq!(q.len(), 2);
        // Not accepted: it may take merges again.
        q.unsent(seq);
        q.remove_sent(u64::MAX);
    }

    #[test]
    fn a_merge_that_would_pass_the_per_delta_limit_is_refused_unchanged() {
        let mut big = report(1);
        big.deltas[0].calls = DELTA_COUNT_MAX;
        let before = big.clone();
        let back = merge_report(&mut big, report(1)).unwrap_err();
        assert_eq!(back, report(1));
        assert_eq!(big, before);
        let mut other = report(1);
        other.instance = "pod-2".into();
        assert!(
            merge_report(&mut report(1), other).is_err(),
            "one instance per report"
        );
    }
}
