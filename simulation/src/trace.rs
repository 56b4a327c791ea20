//! [`Trace`]: what the run did and saw, line by line, and its digest.
//!
//! The trace holds only values the simulation controls or observes at fixed simulated
//! times (faults, leaders seen, indexes and state digests at each checkpoint, fleet
//! tallies), in a fixed order, with no map iteration order and no wall-clock time. Two
//! runs of one seed give the same text byte for byte, and are compared by [`Trace::digest`];
//! [`first_difference`] says where two traces part.

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

/// Where traces `a` and `b` first differ, as a line number (from 1) and the two lines, or
/// `None` if they are identical.
pub fn first_difference(a: &str, b: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let mut a_lines = a.lines();
    let mut b_lines = b.lines();
    let mut number = 1;
    loop {
        match (a_lines.next(), b_lines.next()) {
            (Some(x), Some(y)) if x == y => number += 1,
            (x, y) => {
                return Some(format!(
                    "line {number}:\n  first:  {}\n  second: {}",
                    x.unwrap_or("<end of trace>"),
                    y.unwrap_or("<end of trace>")
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_line() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        let diff = first_difference("a\nb\nc\n", "a\nx\nc\n").expect("differs");
        assert!(diff.starts_with("line 2:"), "{diff}");
        assert!(
            diff.contains("first:  b") && diff.contains("second: x"),
            "{diff}"
        );
        let diff = first_difference("a\n", "a\nb\n").expect("differs");
        assert!(diff.contains("<end of trace>"), "{diff}");
    }
}
