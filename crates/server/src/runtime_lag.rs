//! How late the node's runtime runs what is due: a figure for operators
//! (`switchyard_runtime_lag_seconds`).
//!
//! A probe task sleeps [`LAG_PROBE`] again and again and records how much later than asked it
//! woke: zero on an idle node, the time a ready task waits for a thread on a busy one. Report
//! calls wait the same way, so when the node's cores are saturated every report's latency
//! grows by about this much while no buffer is anywhere near its limit. The figure is smoothed
//! over about a second ([`RuntimeLag::observe`]), so a single late wake-up (a snapshot being
//! written, a page fault) does not count as load.
//!
//! It is not the back-pressure signal for a CPU that runs short: in `bench ingest` it read
//! 1-2 ms at the rated load and 2-5 ms at twice it, too close to tell apart from noise, where
//! the kernel's CPU pressure read 53-65 % and 88-96 % (see [`crate::cpu_pressure`]).
//!
//! Under simulation the clock is simulated and the lag is always zero.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long the probe sleeps between two readings.
pub const LAG_PROBE: Duration = Duration::from_millis(10);

/// Weight of a new reading in the smoothed lag: 1/16, so with a reading every 10 ms the
/// figure follows a change over about 160 ms and forgets a single spike within a second.
const SMOOTHING_SHIFT: u32 = 4;

/// The smoothed lag of one runtime.
#[derive(Debug, Default)]
pub struct RuntimeLag {
    smoothed_us: AtomicU64,
}

impl RuntimeLag {
    /// Records that a wake-up came `late` after it was due.
    pub fn observe(&self, late: Duration) {
        let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        // One writer (the probe): a plain read-modify-write is enough.
        let old = self.smoothed_us.load(Ordering::Relaxed);
        let next = if late_us >= old {
            old + ((late_us - old) >> SMOOTHING_SHIFT)
        } else {
            old - ((old - late_us) >> SMOOTHING_SHIFT)
        };
        self.smoothed_us.store(next, Ordering::Relaxed);
    }

    /// The smoothed lag, ms.
    pub fn smoothed_ms(&self) -> f64 {
        self.smoothed_us.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_spike_fades_and_a_sustained_lag_is_followed() {
        let lag = RuntimeLag::default();
        lag.observe(Duration::from_millis(200));
        assert!(lag.smoothed_ms() < 15.0, "one spike: {}", lag.smoothed_ms());
        for _ in 0..100 {
            lag.observe(Duration::ZERO);
        }
        assert!(lag.smoothed_ms() < 0.1, "faded: {}", lag.smoothed_ms());
        // A second of wake-ups 30 ms late: the figure gets there.
        for _ in 0..100 {
            lag.observe(Duration::from_millis(30));
        }
        assert!(
            (lag.smoothed_ms() - 30.0).abs() < 1.0,
            "{}",
            lag.smoothed_ms()
        );
    }
}
