//! A breaker's sliding window of outcomes.
//!
//! Both kinds keep a short queue of slots, each tagged with a monotonically increasing
//! *position*; per-instance marks in the breaker store positions too, so "did this instance
//! report (or fail) inside the window" — or inside the freshest span — is one comparison.
//!
//! - Time windows: positions count *fine slots*: each bucket of `duration_ms / buckets` is cut
//!   into [`Window::fine_per_bucket`] fine slots (about [`FRESH_SLOT_MIN_MS`] wide, at most
//!   [`FRESH_SLOTS_PER_BUCKET_MAX`]), and position = `bucket × fine_per_bucket + fine slot`.
//!   The coarse slots (one per bucket, at its first position) carry everything: counts, retry
//!   figures and latency. The fine slots of the newest two buckets carry counts only, for the
//!   freshest span ([`crate::window_span`]). A slot is live while its bucket is one of the
//!   newest `buckets`; nothing needs a timer to expire.
//! - Count windows: one slot (chunk) per apply time, numbered 0, 1, 2, ...; beyond
//!   [`COUNT_WINDOW_MAX_CHUNKS`] the two oldest chunks are merged, and the oldest chunk is
//!   evicted while the rest still hold at least `calls` calls. So the window holds between
//!   `calls` and `calls + one chunk` calls: "the last N calls, approximately", at a bounded
//!   memory cost regardless of N. A chunk also leaves once it is `max_age_ms` old, whatever
//!   the count, so a quiet breaker never judges hour-old calls (a merged chunk carries the
//!   time of its oldest part, so it leaves early rather than late).
//!
//! Slots also count the first attempts and retries of retry-budgeted calls ([`RetryTotals`],
//! through [`Window::record_with_retries`]); count windows keep and evict them with the calls
//! of their chunk.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{LatencySketch, WindowSpec};

/// Maximum chunks a count window keeps before merging the oldest.
pub const COUNT_WINDOW_MAX_CHUNKS: usize = 32;

/// The narrowest fine slot of a time window, ms (the cluster's default tick).
pub const FRESH_SLOT_MIN_MS: u64 = 100;

/// At most this many fine slots per time bucket.
pub const FRESH_SLOTS_PER_BUCKET_MAX: u64 = 10;

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

impl WindowTotals {
    pub(crate) fn add(&mut self, other: WindowTotals) {
        self.calls = self.calls.saturating_add(other.calls);
        self.failures = self.failures.saturating_add(other.failures);
        self.slow = self.slow.saturating_add(other.slow);
    }
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
pub(crate) struct Slot {
    pub(crate) position: u64,
    pub(crate) at_ms: u64,
    pub(crate) totals: WindowTotals,
    pub(crate) retries: RetryTotals,
    pub(crate) latency: LatencySketch,
}

/// Counts of one fine slot of a time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FreshSlot {
    pub(crate) position: u64,
    pub(crate) totals: WindowTotals,
}

/// The sliding window of one breaker (stored as described in `window_serde`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub(crate) spec: WindowSpec,
    /// Coarse slots: one per time bucket, or one per count chunk.
    pub(crate) slots: VecDeque<Slot>,
    /// Time windows: fine slots of the newest two buckets (counts only). Empty for counts.
    pub(crate) fresh: VecDeque<FreshSlot>,
    pub(crate) next_chunk: u64,
    /// Set by decoding a window written before fine positions: the factor its positions (and
    /// the breaker's instance marks, which the breaker rescales on load) were multiplied by.
    pub(crate) legacy_scale: u64,
}

impl Window {
    /// An empty window.
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            slots: VecDeque::new(),
            fresh: VecDeque::new(),
            next_chunk: 0,
            legacy_scale: 1,
        }
    }

    /// The window's shape.
    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    pub(crate) fn bucket_ms(duration_ms: u64, buckets: u32) -> u64 {
        (duration_ms / u64::from(buckets.max(1))).max(1)
    }

    /// Fine slots per bucket of a time window `spec` (1 for count windows).
    pub fn fine_per_bucket(spec: WindowSpec) -> u64 {
        match spec {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => (Self::bucket_ms(duration_ms, buckets) / FRESH_SLOT_MIN_MS)
                .clamp(1, FRESH_SLOTS_PER_BUCKET_MAX),
            WindowSpec::Count { .. } => 1,
        }
    }

    /// Time windows: (bucket, fine position) of `now_ms`.
    fn time_position(duration_ms: u64, buckets: u32, now_ms: u64) -> (u64, u64) {
        let bucket_ms = Self::bucket_ms(duration_ms, buckets);
        let fine = Self::fine_per_bucket(WindowSpec::Time {
            duration_ms,
            buckets,
        });
        let bucket = now_ms / bucket_ms;
        let within = (now_ms % bucket_ms) * fine / bucket_ms;
        (bucket, bucket.saturating_mul(fine).saturating_add(within))
    }

    /// When the slot at `position` starts, ms (count windows: when its chunk was recorded).
    pub(crate) fn position_start_ms(&self, position: u64, chunk_at_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => {
                let bucket_ms = Self::bucket_ms(duration_ms, buckets);
                let fine = Self::fine_per_bucket(self.spec);
                let (bucket, within) = (position / fine, position % fine);
                bucket
                    .saturating_mul(bucket_ms)
                    .saturating_add(within * bucket_ms / fine)
            }
            WindowSpec::Count { .. } => chunk_at_ms,
        }
    }

    /// Whether a count chunk recorded at `at_ms` is still young enough at `now_ms`.
    fn young(&self, at_ms: u64, now_ms: u64) -> bool {
        match self.spec {
            WindowSpec::Count { max_age_ms, .. } => at_ms.saturating_add(max_age_ms) > now_ms,
            WindowSpec::Time { .. } => true,
        }
    }

    /// The oldest position still inside the window at `now_ms`.
    pub fn oldest_position(&self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => {
                let (bucket, _) = Self::time_position(duration_ms, buckets, now_ms);
                bucket
                    .saturating_sub(u64::from(buckets.max(1)) - 1)
                    .saturating_mul(Self::fine_per_bucket(self.spec))
            }
            WindowSpec::Count { .. } => self
                .slots
                .iter()
                .find(|s| self.young(s.at_ms, now_ms))
                .map_or(self.next_chunk, |s| s.position),
        }
    }

    /// Time windows: the first position the fine slots cover at `now_ms` (the newest two
    /// buckets, within the window). Coarse slots before it are judged whole.
    pub(crate) fn fresh_floor(&self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => {
                let (bucket, _) = Self::time_position(duration_ms, buckets, now_ms);
                let floor = bucket
                    .saturating_sub(1)
                    .saturating_mul(Self::fine_per_bucket(self.spec));
                floor.max(self.oldest_position(now_ms))
            }
            WindowSpec::Count { .. } => u64::MAX,
        }
    }

    fn empty_slot(position: u64, at_ms: u64) -> Slot {
        Slot {
            position,
            at_ms,
            totals: WindowTotals::default(),
            retries: RetryTotals::default(),
            latency: LatencySketch::default(),
        }
    }

    /// Makes the last slot the one a record at `now_ms` lands in (and, for time windows, the
    /// last fine slot too); returns the record's position.
    fn open_slot(&mut self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time {
                duration_ms,
                buckets,
            } => {
                let (bucket, position) = Self::time_position(duration_ms, buckets, now_ms);
                let coarse = bucket.saturating_mul(Self::fine_per_bucket(self.spec));
                if !matches!(self.slots.back(), Some(last) if last.position == coarse) {
                    self.expire(now_ms);
                    self.slots.push_back(Self::empty_slot(coarse, now_ms));
                }
                if !matches!(self.fresh.back(), Some(last) if last.position == position) {
                    let floor = self.fresh_floor(now_ms);
                    while matches!(self.fresh.front(), Some(s) if s.position < floor) {
                        self.fresh.pop_front();
                    }
                    self.fresh.push_back(FreshSlot {
                        position,
                        totals: WindowTotals::default(),
                    });
                }
                position
            }
            WindowSpec::Count { .. } => {
                if !matches!(self.slots.back(), Some(last) if last.at_ms == now_ms) {
                    self.expire(now_ms);
                    self.slots
                        .push_back(Self::empty_slot(self.next_chunk, now_ms));
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
        let position = self.open_slot(now_ms);
        if let Some(slot) = self.slots.back_mut() {
            slot.totals.add(outcomes);
            if let Some(latency) = latency {
                slot.latency.merge(latency);
            }
        }
        if let Some(fine) = self.fresh.back_mut() {
            fine.totals.add(outcomes);
        }
        if let WindowSpec::Count { calls: keep, .. } = self.spec {
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
                first.totals.add(second.totals);
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

    /// Drops slots that fell out of the window at `now_ms`: time slots by bucket, count
    /// chunks by `max_age_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let oldest = self.oldest_position(now_ms);
        while matches!(self.slots.front(), Some(s) if s.position < oldest) {
            self.slots.pop_front();
        }
        let floor = self.fresh_floor(now_ms);
        while matches!(self.fresh.front(), Some(s) if s.position < floor) {
            self.fresh.pop_front();
        }
    }

    /// The coarse slots inside the window at `now_ms`, oldest first.
    pub(crate) fn live_slots(&self, now_ms: u64) -> impl DoubleEndedIterator<Item = &Slot> {
        let oldest = self.oldest_position(now_ms);
        self.slots.iter().filter(move |s| s.position >= oldest)
    }

    /// Totals of the slots inside the window at `now_ms`.
    pub fn totals(&self, now_ms: u64) -> WindowTotals {
        let mut t = WindowTotals::default();
        for s in self.live_slots(now_ms) {
            t.add(s.totals);
        }
        t
    }

    /// Whether the window's evidence spans its whole length at `now_ms`: a time window holds
    /// a slot in its oldest bucket, a count window holds at least its `calls`. A window is
    /// *cold* until then: at start-up, after every HALF_OPEN -> CLOSED (the window restarts),
    /// and for a count window whose chunks aged out. The trip rule judges a cold window with
    /// the freshest span's confidence margin (see `breaker::trip_rule`).
    pub fn is_warm(&self, now_ms: u64) -> bool {
        match self.spec {
            WindowSpec::Time { .. } => self
                .live_slots(now_ms)
                .next()
                .is_some_and(|s| s.position == self.oldest_position(now_ms)),
            WindowSpec::Count { calls, .. } => self.totals(now_ms).calls >= u64::from(calls),
        }
    }

    /// Retry figures of the slots inside the window at `now_ms`.
    pub fn retry_totals(&self, now_ms: u64) -> RetryTotals {
        let mut t = RetryTotals::default();
        for s in self.live_slots(now_ms) {
            t.add(s.retries);
        }
        t
    }

    /// The time the window covers at `now_ms`: a time window's duration; for a count window,
    /// the age of its oldest live chunk (0 when empty).
    pub fn span_ms(&self, now_ms: u64) -> u64 {
        match self.spec {
            WindowSpec::Time { duration_ms, .. } => duration_ms,
            WindowSpec::Count { .. } => self
                .live_slots(now_ms)
                .next()
                .map_or(0, |s| now_ms.saturating_sub(s.at_ms)),
        }
    }

    /// The merged latency of the slots inside the window at `now_ms`.
    pub fn latency(&self, now_ms: u64) -> LatencySketch {
        let mut sketch = LatencySketch::default();
        for s in self.live_slots(now_ms) {
            sketch.merge(&s.latency);
        }
        sketch
    }
}
