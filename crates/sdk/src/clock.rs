//! Time sources: the agent's clock, the coarse clock the hot path may read, and the timer of
//! the wrapped-call paths (`CallTimer`).
//!
//! Why a coarse clock: reading the OS clock (`Instant::now()`) costs about 23 ns on
//! this class of machine, three times the whole `allow()` + `record()` budget. Nothing
//! on the hot path needs better than millisecond resolution, so the background agent
//! reads the real clock once per tick and publishes it in an `AtomicU64`; hot-path
//! code that needs "now" (the retry budget's window) loads that atomic instead.
//!
//! The agent itself reads time through the [`Clock`] trait so tests can drive mode
//! switches (Cluster → Stale → LocalOnly) with a [`ManualClock`] instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonic millisecond clock read by the background agent.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since an arbitrary, fixed origin; never decreases.
    fn now_ms(&self) -> u64;
}

/// The default clock: milliseconds since the clock was created, from
/// `tokio::time::Instant`, so it follows tokio's paused time in tests and the
/// simulated time of turmoil hosts.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock moved by hand, for tests. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// Moves the clock forward by `delta_ms`.
    pub fn advance_ms(&self, delta_ms: u64) {
        self.now_ms.fetch_add(delta_ms, Ordering::Relaxed);
    }

    /// Sets the clock to `now_ms` (ignored if that would move it backwards).
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.fetch_max(now_ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

/// A millisecond clock advanced by the agent and read with one relaxed load.
/// Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct CoarseClock {
    now_ms: Arc<AtomicU64>,
}

impl CoarseClock {
    /// A coarse clock at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// The last published time, ms. One relaxed atomic load.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Publishes `now_ms`; the clock never moves backwards.
    pub fn advance_to(&self, now_ms: u64) {
        self.now_ms.fetch_max(now_ms, Ordering::Relaxed);
    }
}

/// Times one wrapped call (`Breaker::call`, `Guard`, `Fallback`, the tower layer).
///
/// quanta's TSC counter is read raw at both ends and scaled once, from one process-wide
/// calibrated clock. `quanta::Instant::now()` costs more on this path: each reading checks a
/// thread-local mock override and is scaled on its own. Switching cut a wrapped call over a
/// ready future from 40 ns to 34 ns (`cargo bench -p switchyard-sdk --bench hot_path`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallTimer {
    start_raw: u64,
}

fn call_clock() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

impl CallTimer {
    /// Starts timing now.
    pub(crate) fn start() -> Self {
        Self {
            start_raw: call_clock().raw(),
        }
    }

    /// Time since [`CallTimer::start`].
    pub(crate) fn elapsed(&self) -> std::time::Duration {
        let clock = call_clock();
        clock.delta(self.start_raw, clock.raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_timer_measures_wall_time() {
        let timer = CallTimer::start();
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(3) {
            std::hint::spin_loop();
        }
        let measured = timer.elapsed();
        let actual = started.elapsed();
        assert!(
            measured >= std::time::Duration::from_micros(2_700) && measured <= actual * 2,
            "measured {measured:?} for {actual:?}"
        );
    }

    #[test]
    fn coarse_clock_never_moves_backwards() {
        let clock = CoarseClock::new(10);
        clock.advance_to(5);
        assert_eq!(clock.now_ms(), 10);
        clock.advance_to(25);
        assert_eq!(clock.clone().now_ms(), 25);
    }

    #[test]
    fn manual_clock_is_shared_between_clones() {
        let clock = ManualClock::new(0);
        let other = clock.clone();
        clock.advance_ms(7);
        assert_eq!(other.now_ms(), 7);
        other.set_ms(3);
        assert_eq!(clock.now_ms(), 7);
    }
}
