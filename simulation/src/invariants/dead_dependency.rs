//! Liveness: once a dependency dies for good, the fleet stops calling it within a bound.
//!
//! "Stops calling" means no more ordinary calls: after the breaker opens, only trial calls
//! under probe permits may reach the dependency, a handful per open period.

use super::Violation;

/// The verdict at the end of the run.
#[derive(Debug, Default)]
pub struct DeadDependency {
    evaluated: u64,
}

impl DeadDependency {
    /// Judges the last ordinary call against the death of the dependency.
    pub fn verdict(
        &mut self,
        died_at_ms: u64,
        last_call_ms: Option<u64>,
        bound_ms: u64,
        out: &mut Vec<Violation>,
    ) {
        self.evaluated += 1;
        if let Some(last_call_ms) = last_call_ms
            && last_call_ms > died_at_ms + bound_ms
        {
            out.push(Violation::DeadDependency {
                died_at_ms,
                last_call_ms,
                bound_ms,
            });
        }
    }
}

impl DeadDependency {
    /// Verdicts given (one per run whose dependency died).
    pub fn evaluated(&self) -> u64 {
        self.evaluated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_that_stop_within_the_bound_pass() {
        let mut check = DeadDependency::default();
        let mut out = Vec::new();
        check.verdict(10_000, Some(12_000), 8_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(check.evaluated(), 1);
    }

    #[test]
    fn calls_past_the_bound_are_caught() {
        let mut check = DeadDependency::default();
        let mut out = Vec::new();
        check.verdict(10_000, Some(18_001), 8_000, &mut out);
        assert_eq!(
            out,
            vec![Violation::DeadDependency {
                died_at_ms: 10_000,
                last_call_ms: 18_001,
                bound_ms: 8_000
            }]
        );
    }
}
