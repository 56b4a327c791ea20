//! [`SimClock`]: wall-clock time for nodes and SDKs, read from turmoil's simulated time.
//!
//! Every host of a run reads the same simulated clock (a fixed epoch plus the simulation's
//! elapsed time), so entries stamped by the leader and the SDKs' mode timers follow
//! simulated time only, never the machine's clock.

/// 2025-01-01T00:00:00Z, the simulated epoch, in ms since the Unix epoch.
pub const EPOCH_MS: u64 = 1_735_689_600_000;

/// Simulated wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimClock;

impl SimClock {
    /// Simulated ms since the start of the run (0 outside a simulation).
    pub fn elapsed_ms() -> u64 {
        turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

impl switchyard_server::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        EPOCH_MS + Self::elapsed_ms()
    }
}

impl switchyard_sdk::clock::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        Self::elapsed_ms()
    }
}
