//! The bounded queue of reports waiting to be sent.
//!
//! Why drop the oldest: when the cluster is slow or unreachable, reports pile up. Keeping
//! them all would grow memory without bound; blocking would stall the agent. The newest
//! outcomes matter most for the cluster's window (old ones may already have aged out of
//! it), so when the queue is full the oldest report is dropped, and the drop is counted
//! (reports and the breaker deltas inside them) so operators can see it.

use std::collections::VecDeque;

use switchyard_proto::client::ReportRequest;

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
        }
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

    /// Removes report `seq` after it was sent, if it is still the oldest (it may have been
    /// dropped while in flight). Returns whether it was removed.
    pub fn remove_sent(&mut self, seq: u64) -> bool {
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
}
