//! The freshest span of a window: the shortest run of newest calls that holds at least
//! `min_calls` calls (DESIGN §3, "the fleet decides on fresh evidence").
//!
//! ```text
//!   time window, 10 buckets of 1 s; fine slots of 100 ms in the newest two buckets
//!   ├──── coarse ────┤ … ├──── coarse ────┤┊ fine ┊ fine ┊ … ┊ fine ┊ fine (filling now) ┊
//!                                          ◀── walk newest → oldest until ≥ min_calls ──
//! ```
//!
//! Walking newest to oldest, the span takes whole slots: fine slots of the newest two buckets
//! first, then whole coarse buckets (time windows), or whole chunks (count windows). It never
//! takes a slot outside the window at `now_ms`, so when the whole window holds fewer than
//! `min_calls` calls there is no span.

use crate::{Window, WindowSpec, WindowTotals};

/// The freshest span of a window at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshSpan {
    /// Calls, failures and slow calls in the span.
    pub totals: WindowTotals,
    /// The position of its oldest slot: an instance failed inside the span iff its last
    /// failure is at this position or later.
    pub start_position: u64,
    /// How long the span covers, ms (from its oldest slot's start to now).
    pub duration_ms: u64,
}

impl Window {
    /// The freshest span at `now_ms` holding at least `min_calls` calls (at least one), or
    /// `None` if the window holds fewer.
    pub fn freshest_span(&self, now_ms: u64, min_calls: u32) -> Option<FreshSpan> {
        let need = u64::from(min_calls.max(1));
        let mut totals = WindowTotals::default();
        let done = |totals: &WindowTotals, position: u64, at_ms: u64| {
            (totals.calls >= need).then(|| FreshSpan {
                totals: *totals,
                start_position: position,
                duration_ms: now_ms.saturating_sub(self.position_start_ms(position, at_ms)),
            })
        };
        let floor = self.fresh_floor(now_ms);
        if let WindowSpec::Time { .. } = self.spec {
            for s in self.fresh.iter().rev().filter(|s| s.position >= floor) {
                totals.add(s.totals);
                if let Some(span) = done(&totals, s.position, 0) {
                    return Some(span);
                }
            }
        }
        for s in self.live_slots(now_ms).rev().filter(|s| s.position < floor) {
            totals.add(s.totals);
            if let Some(span) = done(&totals, s.position, s.at_ms) {
                return Some(span);
            }
        }
        None
    }
}
