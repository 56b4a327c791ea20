//! Recording outcomes: the window, and the per-instance table the fleet trip rule counts.

use super::{Breaker, InstanceMarks};
use crate::{InstanceId, LatencySketch, RetryTotals, TripMode, WindowTotals};

impl Breaker {
    /// Adds outcomes reported at `now_ms` (by `instance`, in fleet mode) to the window,
    /// tracking at most `max_instances` instances. Does not judge the window: call
    /// [`Breaker::evaluate`] once after a batch.
    pub fn record(
        &mut self,
        now_ms: u64,
        instance: Option<&InstanceId>,
        outcomes: WindowTotals,
        latency: Option<&LatencySketch>,
        max_instances: usize,
    ) {
        self.record_inner::<false>(
            now_ms,
            instance,
            outcomes,
            RetryTotals::default(),
            latency,
            max_instances,
        );
    }

    /// [`Breaker::record`] with the retry figures of the same report (see [`FleetRetries`]).
    /// Figures from an instance the table does not know yet (a report with no completed
    /// call) are windowed, but do not mark it.
    pub fn record_with_retries(
        &mut self,
        now_ms: u64,
        instance: Option<&InstanceId>,
        outcomes: WindowTotals,
        retries: RetryTotals,
        latency: Option<&LatencySketch>,
        max_instances: usize,
    ) {
        self.record_inner::<true>(now_ms, instance, outcomes, retries, latency, max_instances);
    }

    /// Both records; `RETRIES` = false compiles the retry figures away, so reports without
    /// them (the apply path's common case) cost what they did before fleet retry budgets.
    #[inline(always)]
    fn record_inner<const RETRIES: bool>(
        &mut self,
        now_ms: u64,
        instance: Option<&InstanceId>,
        outcomes: WindowTotals,
        retries: RetryTotals,
        latency: Option<&LatencySketch>,
        max_instances: usize,
    ) {
        let WindowTotals {
            calls,
            failures,
            slow,
        } = outcomes;
        let retrying = RETRIES && retries.first_attempts | retries.retries != 0;
        if calls == 0 && !retrying {
            return;
        }
        let position = if retrying {
            self.window
                .record_with_retries(now_ms, outcomes, retries, latency)
        } else {
            self.window.record(now_ms, outcomes, latency)
        };
        if self.mode == TripMode::Local {
            return;
        }
        let Some(id) = instance else { return };
        let next = position.saturating_add(1);
        let mark = |hit: bool| if hit { next } else { 0 };
        let attempt = RETRIES && retries.first_attempts > 0;
        if let Some(marks) = self.instances.get_mut(id) {
            if calls > 0 {
                marks.last_report = position;
            }
            if failures > 0 {
                marks.last_failure_next = next;
            }
            if slow > 0 {
                marks.last_slow_next = next;
            }
            if attempt {
                marks.last_attempt_next = next;
            }
            return;
        }
        if calls == 0 {
            return;
        }
        if self.instances.len() >= max_instances.max(1) {
            self.make_room(now_ms, max_instances.max(1));
        }
        self.instances.insert(
            id.clone(),
            InstanceMarks {
                last_report: position,
                last_failure_next: mark(failures > 0),
                last_slow_next: mark(slow > 0),
                last_attempt_next: mark(attempt),
            },
        );
    }

    /// Frees room in a full instance table: drops the instances whose last report left the
    /// window, and if it is still full, the oldest [`EVICT_DIVISOR`]th of it by last report
    /// (ties by instance id, so every node evicts the same ones).
    ///
    /// Evicting one instance per newcomer walked the whole table twice for every delta from
    /// an instance it did not hold: with more instances reporting on a breaker than the table
    /// holds, every delta missed, and applying one tick of a 20 000-instance fleet took
    /// seconds on every node. An eighth at a time, the walks are paid once per `max / 8`
    /// newcomers.
    #[cold]
    fn make_room(&mut self, now_ms: u64, max: usize) {
        let oldest = self.window.oldest_position(now_ms);
        self.instances.retain(|_, m| m.last_report >= oldest);
        if self.instances.len() < max {
            return;
        }
        let evict = (self.instances.len() - max + 1).max(max / EVICT_DIVISOR);
        let mut by_age: Vec<(u64, &InstanceId)> = self
            .instances
            .iter()
            .map(|(id, m)| (m.last_report, id))
            .collect();
        by_age.select_nth_unstable(evict - 1);
        let victims: Vec<InstanceId> = by_age[..evict]
            .iter()
            .map(|(_, id)| (*id).clone())
            .collect();
        for id in victims {
            self.instances.remove(&id);
        }
    }
}

/// A full instance table evicts this fraction of itself at once (see `Breaker::make_room`).
const EVICT_DIVISOR: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BreakerKey, Policy};

    fn report(b: &mut Breaker, now_ms: u64, instance: &str, max: usize) {
        let id = InstanceId::parse(instance).unwrap();
        let outcomes = WindowTotals {
            calls: 1,
            failures: 0,
            slow: 0,
        };
        b.record(now_ms, Some(&id), outcomes, None, max);
    }

    #[test]
    fn a_full_instance_table_evicts_its_oldest_eighth_at_once_and_keeps_the_newest() {
        let key = BreakerKey::parse("s/dep").unwrap();
        let mut b = Breaker::new(key, Policy::default(), TripMode::Fleet, 0);
        let max = 64;
        // 64 instances, each reporting 10 ms after the previous one: all within the window.
        for i in 0..max {
            report(&mut b, 1_000 + i as u64 * 10, &format!("i-{i:03}"), max);
        }
        assert_eq!(b.instances.len(), max);
        // A newcomer evicts the 8 oldest, not just one, then joins.
        report(&mut b, 2_000, "new-0", max);
        assert_eq!(b.instances.len(), max - max / EVICT_DIVISOR + 1);
        for i in 0..max / EVICT_DIVISOR {
            assert!(
                !b.instances
                    .contains_key(&InstanceId::parse(&format!("i-{i:03}")).unwrap())
            );
        }
        assert!(
            b.instances
                .contains_key(&InstanceId::parse("i-008").unwrap())
        );
        assert!(
            b.instances
                .contains_key(&InstanceId::parse("new-0").unwrap())
        );
        // The next 7 newcomers fit without evicting anyone; the table never exceeds `max`.
        for n in 1..max / EVICT_DIVISOR {
            report(&mut b, 2_000 + n as u64, &format!("new-{n}"), max);
            assert!(b.instances.len() <= max);
        }
        assert_eq!(b.instances.len(), max);
        assert!(
            b.instances
                .contains_key(&InstanceId::parse("i-008").unwrap())
        );
    }

    #[test]
    fn eviction_ties_are_broken_by_instance_id() {
        let key = BreakerKey::parse("s/dep").unwrap();
        let mut b = Breaker::new(key, Policy::default(), TripMode::Fleet, 0);
        let max = 16;
        // Every instance reports at the same moment, inserted in reverse order.
        for i in (0..max).rev() {
            report(&mut b, 1_000, &format!("i-{i:02}"), max);
        }
        report(&mut b, 1_000, "z", max);
        let mut kept: Vec<String> = b.instances.keys().map(|k| k.to_string()).collect();
        kept.sort();
        assert_eq!(kept.len(), max - max / EVICT_DIVISOR + 1);
        // The two smallest ids at the oldest position went.
        assert_eq!(kept.first().map(String::as_str), Some("i-02"));
        assert!(kept.contains(&"z".to_string()));
    }
}
