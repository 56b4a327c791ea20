//! Liveness: once a dependency dies for good, the fleet stops calling it within a bound.
//!
//! "Stops calling" means no more ordinary calls: after the breaker opens, only trial calls
//! under probe permits may reach the dependency, a handful per open period.

use super::Violation;

/// The verdict at the end of the run.
#[derive(Debug, Default)]
pub struct DeadDependency;

impl DeadDependency {
    /// Judges the last ordinary call against the death of the dependency.
    pub fn verdict(
        &self,
        died_at_ms: u64,
        last_call_ms: Option<u64>,
        bound_ms: u64,
        out: &mut Vec<Violation>,
    ) {
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
