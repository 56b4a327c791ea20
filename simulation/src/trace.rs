//! [`Trace`]: what the run did and saw, line by line, and its digest.
//!
//! The trace holds only values the simulation controls or observes at fixed simulated
//! times (faults, leaders seen, indexes and state digests at each checkpoint, fleet
//! tallies), in a fixed order, with no map iteration order and no wall-clock time. Two
//! runs of one seed are compared by [`Trace::digest`].

use std::fmt::Write;

use crate::rng::fnv1a;

/// The run's trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    text: String,
    controlled: String,
    lines: u64,
}

impl Trace {
    /// Appends one line stamped with simulated `at_ms`.
    pub fn line(&mut self, at_ms: u64, what: impl std::fmt::Display) {
        let _ = writeln!(self.text, "{at_ms:>8} {what}");
        self.lines += 1;
    }

    /// Appends a line the simulation controls outright (scenario, faults, healing,
    /// verdicts): it goes into both the trace and the controlled digest.
    pub fn controlled(&mut self, at_ms: u64, what: impl std::fmt::Display) {
        let line = format!("{at_ms:>8} {what}");
        let _ = writeln!(self.controlled, "{line}");
        let _ = writeln!(self.text, "{line}");
        self.lines += 1;
    }

    /// FNV-1a of the controlled lines only.
    pub fn controlled_digest(&self) -> u64 {
        fnv1a(self.controlled.as_bytes())
    }

    /// The whole trace.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Lines so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// FNV-1a of the whole text.
    pub fn digest(&self) -> u64 {
        fnv1a(self.text.as_bytes())
    }
}
