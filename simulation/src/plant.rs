//! [`PlantedBug`]: the test-only bugs behind `--plant NAME`, one (at least) per invariant.
//!
//! A checker that has never failed proves nothing. Each bug here breaks exactly the property
//! one invariant guards, and the simulation must catch it within a few seeds
//! (`tests/seeds` runs every one). Bugs in the real code are switched on through
//! `switchyard_core::plant` for the run's thread only; the others live in the simulation's
//! own fleet, cluster harness or disk. None of them changes anything when not planted.

use std::fmt;

use switchyard_core::plant::Plant;

use crate::invariants::Invariant;

/// A planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlantedBug {
    /// Store: reports an append durable without flushing it.
    AckBeforeFlush,
    /// Store recovery: a restarting node loses the committed tail of its log.
    DropCommittedOnRestart,
    /// Store: the vote lives in memory only; a restart forgets it.
    VoteNotPersisted,
    /// Disk: one stored entry's bytes change on one node (its id does not).
    CorruptEntry,
    /// State machine: the proposing node applies at a time of its own.
    NondeterministicApply,
    /// SDK: accepts a watch event older than the decisions it has.
    AcceptOlderIndex,
    /// Fleet: calls during HALF_OPEN without a probe permit.
    GreedyProbes,
    /// SDK: drops every watch event after the first.
    IgnoreWatch,
    /// Fleet: calls even when its breaker rejects the call.
    IgnoreOpen,
    /// Node: a restart hangs in recovery; the node never rejoins.
    HungRestart,
    /// Fleet: asks the cluster before each call and waits for the answer.
    BlockingCall,
    /// SDK: never falls back to its local breaker.
    NoFallback,
    /// SDK: once in local-only mode, stays there.
    StickyLocalOnly,
    /// Trip rule: one instance's failures are enough to trip the fleet.
    TripIgnoresMinInstances,
    /// Trip rule: the freshest span trips on its raw rate, without the confidence bound.
    TripWithoutConfidence,
}

impl PlantedBug {
    /// Every planted bug.
    pub const ALL: [PlantedBug; 15] = [
        PlantedBug::AckBeforeFlush,
        PlantedBug::DropCommittedOnRestart,
        PlantedBug::VoteNotPersisted,
        PlantedBug::CorruptEntry,
        PlantedBug::NondeterministicApply,
        PlantedBug::AcceptOlderIndex,
        PlantedBug::GreedyProbes,
        PlantedBug::IgnoreWatch,
        PlantedBug::IgnoreOpen,
        PlantedBug::HungRestart,
        PlantedBug::BlockingCall,
        PlantedBug::NoFallback,
        PlantedBug::StickyLocalOnly,
        PlantedBug::TripIgnoresMinInstances,
        PlantedBug::TripWithoutConfidence,
    ];

    /// The name `--plant` takes.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::AckBeforeFlush => "ack-before-flush",
            PlantedBug::DropCommittedOnRestart => "drop-committed-on-restart",
            PlantedBug::VoteNotPersisted => "vote-not-persisted",
            PlantedBug::CorruptEntry => "corrupt-entry",
            PlantedBug::NondeterministicApply => "nondeterministic-apply",
            PlantedBug::AcceptOlderIndex => "accept-older-index",
            PlantedBug::GreedyProbes => "greedy-probes",
            PlantedBug::IgnoreWatch => "ignore-watch",
            PlantedBug::IgnoreOpen => "ignore-open",
            PlantedBug::HungRestart => "hung-restart",
            PlantedBug::BlockingCall => "blocking-call",
            PlantedBug::NoFallback => "no-fallback",
            PlantedBug::StickyLocalOnly => "sticky-local-only",
            PlantedBug::TripIgnoresMinInstances => "trip-ignores-min-instances",
            PlantedBug::TripWithoutConfidence => "trip-without-confidence",
        }
    }

    /// What the bug does, in one line.
    pub fn description(self) -> &'static str {
        match self {
            PlantedBug::AckBeforeFlush => {
                "the log store acknowledges an append without flushing it"
            }
            PlantedBug::DropCommittedOnRestart => {
                "a restarting node's recovery drops the committed tail of its log"
            }
            PlantedBug::VoteNotPersisted => {
                "the vote is kept in memory only, so a restart forgets it"
            }
            PlantedBug::CorruptEntry => {
                "one node's disk changes the bytes of a stored entry, not its id"
            }
            PlantedBug::NondeterministicApply => {
                "the proposing node applies entries at a time of its own"
            }
            PlantedBug::AcceptOlderIndex => {
                "the SDK accepts a watch event older than its decisions"
            }
            PlantedBug::GreedyProbes => "instances call during HALF_OPEN without a probe permit",
            PlantedBug::IgnoreWatch => "the SDK drops every watch event after the first",
            PlantedBug::IgnoreOpen => "instances call the dependency even when the breaker rejects",
            PlantedBug::HungRestart => "a restarting node hangs in recovery and never rejoins",
            PlantedBug::BlockingCall => "each call first waits for an answer from the cluster",
            PlantedBug::NoFallback => "the SDK never falls back to its local breaker",
            PlantedBug::StickyLocalOnly => "the SDK never leaves local-only mode once in it",
            PlantedBug::TripIgnoresMinInstances => {
                "the trip rule ignores min_instances: one instance's failures trip the fleet"
            }
            PlantedBug::TripWithoutConfidence => {
                "the freshest span trips on its raw rate, without the confidence bound"
            }
        }
    }

    /// The invariant that must catch it.
    pub fn caught_by(self) -> Invariant {
        match self {
            PlantedBug::AckBeforeFlush | PlantedBug::DropCommittedOnRestart => {
                Invariant::CommittedDurable
            }
            PlantedBug::VoteNotPersisted => Invariant::ElectionSafety,
            PlantedBug::CorruptEntry => Invariant::LogMatching,
            PlantedBug::NondeterministicApply => Invariant::StateDigest,
            PlantedBug::AcceptOlderIndex => Invariant::DecisionIndex,
            PlantedBug::GreedyProbes => Invariant::ProbeLimit,
            PlantedBug::IgnoreWatch => Invariant::SdkConvergence,
            PlantedBug::IgnoreOpen => Invariant::DeadDependency,
            PlantedBug::HungRestart => Invariant::LeaderLiveness,
            PlantedBug::BlockingCall => Invariant::CallLatency,
            PlantedBug::NoFallback => Invariant::FailStaticModes,
            PlantedBug::StickyLocalOnly => Invariant::ClusterReturn,
            PlantedBug::TripIgnoresMinInstances => Invariant::OneInstanceTrip,
            PlantedBug::TripWithoutConfidence => Invariant::NoisyBaselineTrip,
        }
    }

    /// The switch in the real code, for bugs that live there.
    pub fn in_code(self) -> Option<Plant> {
        match self {
            PlantedBug::AckBeforeFlush => Some(Plant::AckBeforeFlush),
            PlantedBug::VoteNotPersisted => Some(Plant::VoteNotPersisted),
            PlantedBug::NondeterministicApply => Some(Plant::NondeterministicApply),
            PlantedBug::AcceptOlderIndex => Some(Plant::AcceptOlderIndex),
            PlantedBug::IgnoreWatch => Some(Plant::IgnoreWatch),
            PlantedBug::NoFallback => Some(Plant::NoFallback),
            PlantedBug::StickyLocalOnly => Some(Plant::StickyLocalOnly),
            PlantedBug::TripIgnoresMinInstances => Some(Plant::TripIgnoresMinInstances),
            PlantedBug::TripWithoutConfidence => Some(Plant::TripWithoutConfidence),
            PlantedBug::DropCommittedOnRestart
            | PlantedBug::CorruptEntry
            | PlantedBug::GreedyProbes
            | PlantedBug::IgnoreOpen
            | PlantedBug::HungRestart
            | PlantedBug::BlockingCall => None,
        }
    }

    /// The bug named `name`, or an error listing the names.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|b| b.name()).collect();
                format!(
                    "--plant: unknown bug `{name}`; one of: {} (or `list`)",
                    names.join(", ")
                )
            })
    }

    /// The `--plant list` table.
    pub fn table() -> String {
        let mut out = format!("{:<26}  {:<19}  {}\n", "bug", "caught by", "what it does");
        for b in Self::ALL {
            out.push_str(&format!(
                "{:<26}  {:<19}  {}\n",
                b.name(),
                b.caught_by().name(),
                b.description()
            ));
        }
        out
    }
}

impl fmt::Display for PlantedBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Plants a run's bug (and its SDK observer) on the current thread, and takes both away again
/// when dropped, panics included.
#[derive(Debug)]
pub struct PlantGuard;

impl PlantGuard {
    /// Plants `bug` (none: a clean run) for the code running on this thread.
    pub fn new(bug: Option<PlantedBug>) -> Self {
        let in_code: Vec<Plant> = bug.and_then(PlantedBug::in_code).into_iter().collect();
        switchyard_core::plant::set_planted(&in_code);
        Self
    }
}

impl Drop for PlantGuard {
    fn drop(&mut self) {
        switchyard_core::plant::set_planted(&[]);
        switchyard_core::plant::set_decision_observer(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_parses_back_from_its_name_and_unknown_names_are_refused() {
        for b in PlantedBug::ALL {
            assert_eq!(PlantedBug::parse(b.name()), Ok(b));
        }
        let err = PlantedBug::parse("nope").unwrap_err();
        assert!(
            err.contains("--plant") && err.contains("ack-before-flush"),
            "{err}"
        );
    }
}
