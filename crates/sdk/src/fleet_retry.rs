//! [`FleetRetryCell`]: one breaker's fleet retry figures, published by the agent for the
//! retry budget (crate-internal).
//!
//! The agent writes the figures when a decision arrives (under its lock, so there is one
//! writer) and says whether they are in force (cluster mode, and the fleet reported retry
//! data). A retry reads them lock-free: the figures are several atomics, so a sequence number
//! tells a reader that raced with a write to read again (a seqlock), and a reader that keeps
//! losing the race falls back to the local budget rather than wait.
//!
//! Besides the figures, the cell holds this instance's first attempts and retries counted
//! *since* the figures: those the cluster cannot have seen yet. The agent adds every drain to
//! them and, on installing new figures, restarts them from the last few drains (reports still
//! on their way into the figures); the budget adds what its stripes hold undrained.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};

use switchyard_core::FleetRetries;

use crate::RetryBudgetSource;

/// Reads that find the figures being rewritten this many times in a row give up.
const READ_ATTEMPTS_MAX: usize = 4;

/// The figures as a retry budget sees them, with this instance's counts since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FleetFigures {
    pub(crate) fleet: FleetRetries,
    /// This instance's first attempts since the figures (drained ones only).
    pub(crate) since_first_attempts: u64,
    /// This instance's retries since the figures (drained ones only).
    pub(crate) since_retries: u64,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct FleetRetryCell {
    /// Odd while the agent writes the figures.
    seq: AtomicU64,
    in_force: AtomicBool,
    first_attempts: AtomicU64,
    retries: AtomicU64,
    instances: AtomicU32,
    window_ms: AtomicU64,
    since_first_attempts: AtomicU64,
    since_retries: AtomicU64,
    /// Retry verdicts since the agent last took them: `[source][allowed]`.
    verdicts: [[AtomicU64; 2]; 2],
}

impl FleetRetryCell {
    /// Agent: installs figures received from the cluster; `recent` are this instance's
    /// `(first attempts, retries)` of the last drains, which the figures may not include yet.
    pub(crate) fn install(&self, fleet: FleetRetries, recent: (u64, u64)) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.first_attempts
            .store(fleet.first_attempts, Ordering::Relaxed);
        self.retries.store(fleet.retries, Ordering::Relaxed);
        self.instances.store(fleet.instances, Ordering::Relaxed);
        self.window_ms.store(fleet.window_ms, Ordering::Relaxed);
        self.since_first_attempts.store(recent.0, Ordering::Relaxed);
        self.since_retries.store(recent.1, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// Agent: whether the budget may use the figures (see the module docs).
    pub(crate) fn set_in_force(&self, in_force: bool) {
        self.in_force.store(in_force, Ordering::Relaxed);
    }

    /// Whether the figures are in force.
    pub(crate) fn in_force(&self) -> bool {
        self.in_force.load(Ordering::Relaxed)
    }

    /// Agent: adds drained counts to the counts since the figures.
    pub(crate) fn add_since(&self, first_attempts: u64, retries: u64) {
        self.since_first_attempts
            .fetch_add(first_attempts, Ordering::Relaxed);
        self.since_retries.fetch_add(retries, Ordering::Relaxed);
    }

    /// The figures, if in force and read consistently.
    pub(crate) fn read(&self) -> Option<FleetFigures> {
        if !self.in_force() {
            return None;
        }
        for _ in 0..READ_ATTEMPTS_MAX {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let figures = FleetFigures {
                fleet: FleetRetries {
                    first_attempts: self.first_attempts.load(Ordering::Relaxed),
                    retries: self.retries.load(Ordering::Relaxed),
                    instances: self.instances.load(Ordering::Relaxed),
                    window_ms: self.window_ms.load(Ordering::Relaxed),
                },
                since_first_attempts: self.since_first_attempts.load(Ordering::Relaxed),
                since_retries: self.since_retries.load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return Some(figures);
            }
        }
        None
    }

    /// Counts one retry verdict.
    pub(crate) fn count_verdict(&self, source: RetryBudgetSource, allowed: bool) {
        self.verdicts[source as usize][usize::from(allowed)].fetch_add(1, Ordering::Relaxed);
    }

    /// Agent: takes the verdicts counted since the last call, `[source][allowed]`.
    pub(crate) fn take_verdicts(&self) -> [[u64; 2]; 2] {
        let take = |source: usize, allowed: usize| {
            self.verdicts[source][allowed].swap(0, Ordering::Relaxed)
        };
        [[take(0, 0), take(0, 1)], [take(1, 0), take(1, 1)]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(first_attempts: u64, retries: u64, instances: u32) -> FleetRetries {
        FleetRetries {
            first_attempts,
            retries,
            instances,
            window_ms: 10_000,
        }
    }

    #[test]
    fn figures_are_read_only_while_in_force() {
        let cell = FleetRetryCell::default();
        cell.install(figures(100, 7, 3), (4, 1));
        assert_eq!(cell.read(), None, "installed but not in force");
        cell.set_in_force(true);
        let read = cell.read().expect("in force");
        assert_eq!(read.fleet, figures(100, 7, 3));
        assert_eq!((read.since_first_attempts, read.since_retries), (4, 1));
        // phase: drains add up; a new install restarts from the recent drains
        cell.add_since(10, 2);
        let read = cell.read().expect("in force");
        assert_eq!((read.since_first_attempts, read.since_retries), (14, 3));
        cell.install(figures(120, 9, 3), (0, 0));
        let read = cell.read().expect("in force");
        assert_eq!((read.since_first_attempts, read.since_retries), (0, 0));
        cell.set_in_force(false);
        assert_eq!(cell.read(), None);
    }

    #[test]
    fn a_reader_never_sees_half_written_figures() {
        // Goal: figures written together are read together, under a racing writer.
        let cell = std::sync::Arc::new(FleetRetryCell::default());
        cell.set_in_force(true);
        cell.install(figures(0, 0, 1), (0, 0));
        let writer = {
            let cell = std::sync::Arc::clone(&cell);
            std::thread::spawn(move || {
                for n in 1..20_000u64 {
                    cell.install(figures(n, n, 1), (n, n));
                }
            })
        };
        let check = |f: FleetFigures| {
            assert_eq!(f.fleet.first_attempts, f.fleet.retries);
            assert_eq!(f.fleet.retries, f.since_retries);
        };
        while !writer.is_finished() {
            if let Some(f) = cell.read() {
                check(f);
            }
        }
        writer.join().expect("writer");
        let last = cell.read().expect("no writer: a consistent read");
        check(last);
        assert_eq!(last.fleet.first_attempts, 19_999);
    }

    #[test]
    fn verdicts_are_counted_per_source_and_taken_once() {
        let cell = FleetRetryCell::default();
        cell.count_verdict(RetryBudgetSource::Fleet, true);
        cell.count_verdict(RetryBudgetSource::Fleet, false);
        cell.count_verdict(RetryBudgetSource::Local, true);
        cell.count_verdict(RetryBudgetSource::Local, true);
        assert_eq!(cell.take_verdicts(), [[1, 1], [0, 2]]);
        assert_eq!(cell.take_verdicts(), [[0, 0], [0, 0]]);
    }
}
