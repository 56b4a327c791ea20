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
            let oldest = self.window.oldest_position(now_ms);
            self.instances.retain(|_, m| m.last_report >= oldest);
            if self.instances.len() >= max_instances.max(1) {
                let victim = self
                    .instances
                    .iter()
                    .min_by_key(|(_, m)| m.last_report)
                    .map(|(k, _)| k.clone());
                if let Some(victim) = victim {
                    self.instances.remove(&victim);
                }
            }
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
}
