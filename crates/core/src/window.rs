//! A breaker's sliding window of outcomes.
//!
//! Both kinds keep a short queue of slots, each tagged with a monotonically increasing
//! *position*; per-instance marks in the breaker store positions too, so "did this instance
//! report (or fail) inside the window" is one comparison with [`Window::oldest_position`].
//!
//! - Time windows: slot position = absolute bucket number `now_ms / bucket_ms`. A slot is
//!   live while `position > current - buckets`; nothing needs a timer to expire.
//! - Count windows: one slot (chunk) per apply time, numbered 0, 1, 2, ...; beyond
//!   [`COUNT_WINDOW_MAX_CHUNKS`] the two oldest chunks are merged, and the oldest chunk is
//!   evicted while the rest still hold at least `calls` calls. So the window holds between
//!   `calls` and `calls + one chunk` calls: "the last N calls, approximately", at a bounded
//!   memory cost regardless of N.
//!
//! Slots also count the first attempts and retries of retry-budgeted calls ([`RetryTotals`],
//! through [`Window::record_with_retries`]); count windows keep and evict them with the calls
//! of their chunk.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{LatencySketch, WindowSpec};

/// Maximum chunks a count window keeps before merging the oldest.
pub const COUNT_WINDOW_MAX_CHUNKS: usize = 32;

/// Counters of one slot, or a whole window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTotals {
    /// Completed calls.
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Slow calls.
    pub slow: u64,
}

/// First attempts and retries of retry-budgeted calls, in one slot or a whole window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryTotals {
    /// First attempts (each call's first try).
    pub first_attempts: u64,
    /// Retries (attempts after the first).
    pub retries: u64,
}

impl RetryTotals {
    fn add(&mut self, other: RetryTotals) {
        self.first_attempts = self.first_attempts.saturating_add(other.first_attempts);
        self.retries = self.retries.saturating_add(other.retries);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Slot {
    position: u64,
    at_ms: u64,
    totals: WindowTotals,
    retries: RetryTotals,
    latency: LatencySketch,
}

/// The sliding window of one breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    spec: WindowSpec,
    slots: VecDeque<Slot>,
    next_chunk: u64,
}

impl Window {
    /// An empty window.
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            slots: VecDeque::new(),
            next_chunk: 0,
        }
    }

    /// The window's shape.
    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    fn bucket_ms(duration_ms: u64, buckets: u32) -> u64 {
        (duration_ms / u64::from(buckets.max(1))).max(1)
    }

    /// The position a record at `now_ms` lands in.
    pub fn current_position(&self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => now_ms / Self::bucket_ms(duration_ms, buckets),
            WindowSpec::Count { .. } => match self.slots.back() {
                Some(last) if last.at_ms == now_ms => last.position,
                _ => self.next_chunk,
            },
        }
    }

    /// The oldest position still inside the window at `now_ms`.
    pub fn oldest_position(&self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time { buckets, .. } => self
                .current_position(now_ms)
                .saturating_sub(u64::from(buckets.max(1)) - 1),
            WindowSpec::Count { .. } => self.slots.front().map_or(self.next_chunk, |s| s.position),
        }
    }

    /// Makes the last slot the one a record at `now_ms` lands in; returns its position.
    fn open_slot(&mut self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => {
                let position = now_ms / Self::bucket_ms(duration_ms, buckets);
                let same = matches!(self.slots.back(), Some(last) if last.position == position);
                if !same {
                    self.expire(now_ms);
                    self.slots.push_back(Slot {
                        position,
                        at_ms: now_ms,
                        totals: WindowTotals::default(),
                        retries: RetryTotals::default(),
                        latency: LatencySketch::default(),
                    });
                }
                position
            }
            WindowSpec::Count { .. } => {
                let same = matches!(self.slots.back(), Some(last) if last.at_ms == now_ms);
                if !same {
                    self.slots.push_back(Slot {
                        position: self.next_chunk,
                        at_ms: now_ms,
                        totals: WindowTotals::default(),
                        retries: RetryTotals::default(),
                        latency: LatencySketch::default(),
                    });
                    self.next_chunk += 1;
                }
                self.slots.back().map_or(0, |s| s.position)
            }
        }
    }

    /// Adds outcomes at `now_ms`; returns the position they were recorded at.
    pub fn record(
        &mut self,
        now_ms: u64,
        outcomes: WindowTotals,
        latency: Option<&LatencySketch>,
    ) -> u64 {
        let WindowTotals {
            calls,
            failures,
            slow,
        } = outcomes;
        let position = self.open_slot(now_ms);
        if let Some(slot) = self.slots.back_mut() {
            slot.totals.calls = slot.totals.calls.saturating_add(calls);
            slot.totals.failures = slot.totals.failures.saturating_add(failures);
            slot.totals.slow = slot.totals.slow.saturating_add(slow);
            if let Some(latency) = latency {
                slot.latency.merge(latency);
            }
        }
        if let WindowSpec::Count { calls: keep } = self.spec {
            self.compact_count(u64::from(keep));
        }
        position
    }

    /// [`Window::record`] with retry figures.
    pub fn record_with_retries(
        &mut self,
        now_ms: u64,
        outcomes: WindowTotals,
        retries: RetryTotals,
        latency: Option<&LatencySketch>,
    ) -> u64 {
        let position = self.record(now_ms, outcomes, latency);
        // `record` left the slot of `now_ms` last (compaction only merges the oldest two).
        if let Some(slot) = self.slots.back_mut() {
            slot.retries.add(retries);
        }
        position
    }

    fn compact_count(&mut self, keep: u64) {
        while self.slots.len() > COUNT_WINDOW_MAX_CHUNKS {
            // Merge the second-oldest into the oldest (keeping the oldest position, so
            // instance marks in either chunk stay inside the window).
            if let Some(second) = self.slots.remove(1) {
                let first = &mut self.slots[0];
                first.totals.calls += second.totals.calls;
                first.totals.failures += second.totals.failures;
                first.totals.slow += second.totals.slow;
                first.retries.add(second.retries);
                first.latency.merge(&second.latency);
            }
        }
        let mut total: u64 = self.slots.iter().map(|s| s.totals.calls).sum();
        while self.slots.len() > 1 {
            let oldest = self.slots[0].totals.calls;
            if total - oldest >= keep {
                total -= oldest;
                self.slots.pop_front();
            } else {
                break;
            }
        }
    }

    /// Drops time slots that fell out of the window at `now_ms` (count windows never expire by time).
    pub fn expire(&mut self, now_ms: u64) {
        if let WindowSpec::Time { .. } = self.spec {
            let oldest = self.oldest_position(now_ms);
            while matches!(self.slots.front(), Some(s) if s.position < oldest) {
                self.slots.pop_front();
            }
        }
    }

    /// Totals of the slots inside the window at `now_ms`.
    pub fn totals(&self, now_ms: u64) -> WindowTotals {
        let oldest = self.oldest_position(now_ms);
        let mut t = WindowTotals::default();
        for s in self.slots.iter().filter(|s| s.position >= oldest) {
            t.calls += s.totals.calls;
            t.failures += s.totals.failures;
            t.slow += s.totals.slow;
        }
        t
    }

    /// Retry figures of the slots inside the window at `now_ms`.
    pub fn retry_totals(&self, now_ms: u64) -> RetryTotals {
        let oldest = self.oldest_position(now_ms);
        let mut t = RetryTotals::default();
        for s in self.slots.iter().filter(|s| s.position >= oldest) {
            t.add(s.retries);
        }
        t
    }

    /// The time the window covers at `now_ms`: a time window's duration; for a count window,
    /// the age of its oldest chunk (0 when empty).
    pub fn span_ms(&self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time { duration_ms, .. } => duration_ms,
            WindowSpec::Count { .. } => self
                .slots
                .front()
                .map_or(0, |s| now_ms.saturating_sub(s.at_ms)),
        }
    }

    /// The merged latency of the slots inside the window at `now_ms`.
    pub fn latency(&self, now_ms: u64) -> LatencySketch {
        let oldest = self.oldest_position(now_ms);
        let mut sketch = LatencySketch::default();
        for s in self.slots.iter().filter(|s| s.position >= oldest) {
            sketch.merge(&s.latency);
        }
        sketch
    }
}
