//! The decision rule: from the cluster's state, the local breaker's state and the mode
//! to one [`Admission`] code that the hot path reads with a single atomic load.
//!
//! Why precompute: `allow()` must cost a few nanoseconds, so it cannot look at maps,
//! policies or clocks. The agent evaluates the rule whenever an input changes (a watch
//! event, a local transition, a mode switch) and stores the result in an `AtomicU8` per
//! breaker.
//!
//! | mode            | cluster state              | admission                              |
//! |-----------------|----------------------------|----------------------------------------|
//! | Cluster / Stale | OPEN                       | reject (`ClusterOpen`)                 |
//! | Cluster / Stale | FORCED_OPEN                | reject (`ForcedOpen`)                  |
//! | Cluster / Stale | HALF_OPEN                  | only calls holding a cluster probe permit |
//! | Cluster / Stale | CLOSED                     | the local breaker decides (below)      |
//! | Cluster / Stale | FORCED_CLOSED, DISABLED, METRICS_ONLY | allow                       |
//! | any             | unknown key                | the local breaker decides              |
//! | LocalOnly       | (ignored)                  | the local breaker decides              |
//!
//! The local breaker: CLOSED allows, OPEN rejects (`LocalOpen`), HALF_OPEN admits only
//! calls holding a local probe permit.

use std::fmt;

use switchyard_core::BreakerState;

use crate::Mode;

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectReason {
    /// The cluster's breaker is OPEN.
    ClusterOpen = 0,
    /// An operator forced the breaker open.
    ForcedOpen = 1,
    /// This instance's own local breaker is open.
    LocalOpen = 2,
    /// The breaker is HALF_OPEN and no probe permit is free for this call.
    HalfOpenNoPermit = 3,
    /// The concurrency bulkhead is full.
    Bulkhead = 4,
}

impl RejectReason {
    /// Number of reasons (size of per-reason counter arrays).
    pub const COUNT: usize = 5;

    /// Every reason, in `repr` order.
    pub const ALL: [RejectReason; Self::COUNT] = [
        RejectReason::ClusterOpen,
        RejectReason::ForcedOpen,
        RejectReason::LocalOpen,
        RejectReason::HalfOpenNoPermit,
        RejectReason::Bulkhead,
    ];

    /// The snake_case name used in metrics and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::ClusterOpen => "cluster_open",
            RejectReason::ForcedOpen => "forced_open",
            RejectReason::LocalOpen => "local_open",
            RejectReason::HalfOpenNoPermit => "half_open_no_permit",
            RejectReason::Bulkhead => "bulkhead",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `allow()` does for a breaker, as published by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Admission {
    /// Admit every call.
    Allow = 0,
    /// Reject: the cluster's breaker is OPEN.
    RejectClusterOpen = 1,
    /// Reject: an operator forced the breaker open.
    RejectForcedOpen = 2,
    /// Reject: the local breaker is OPEN.
    RejectLocalOpen = 3,
    /// Admit only calls that take a cluster probe permit (cluster HALF_OPEN).
    ClusterProbe = 4,
    /// Admit only calls that take a local probe permit (local HALF_OPEN).
    LocalProbe = 5,
}

impl Admission {
    pub(crate) fn from_u8(v: u8) -> Admission {
        match v {
            0 => Admission::Allow,
            1 => Admission::RejectClusterOpen,
            2 => Admission::RejectForcedOpen,
            3 => Admission::RejectLocalOpen,
            4 => Admission::ClusterProbe,
            _ => Admission::LocalProbe,
        }
    }

    /// The rejection reason of a rejecting admission.
    pub fn reject_reason(self) -> Option<RejectReason> {
        match self {
            Admission::RejectClusterOpen => Some(RejectReason::ClusterOpen),
            Admission::RejectForcedOpen => Some(RejectReason::ForcedOpen),
            Admission::RejectLocalOpen => Some(RejectReason::LocalOpen),
            _ => None,
        }
    }
}

/// The decision rule (see the module table).
pub fn decide(mode: Mode, cluster: Option<BreakerState>, local: BreakerState) -> Admission {
    let from_local = match local {
        BreakerState::Open | BreakerState::ForcedOpen => Admission::RejectLocalOpen,
        BreakerState::HalfOpen => Admission::LocalProbe,
        BreakerState::Closed
        | BreakerState::ForcedClosed
        | BreakerState::Disabled
        | BreakerState::MetricsOnly => Admission::Allow,
    };
    if mode == Mode::LocalOnly {
        return from_local;
    }
    match cluster {
        None | Some(BreakerState::Closed) => from_local,
        Some(BreakerState::Open) => Admission::RejectClusterOpen,
        Some(BreakerState::ForcedOpen) => Admission::RejectForcedOpen,
        Some(BreakerState::HalfOpen) => Admission::ClusterProbe,
        Some(BreakerState::ForcedClosed | BreakerState::Disabled | BreakerState::MetricsOnly) => {
            Admission::Allow
        }
    }
}

/// The state shown for a breaker (`Breaker::state`): the cluster's while it is in force and
/// has judged the key to be other than CLOSED, else the local breaker's.
pub(crate) fn shown_state(
    mode: Mode,
    cluster: Option<BreakerState>,
    local: BreakerState,
) -> BreakerState {
    match cluster {
        Some(state) if mode != Mode::LocalOnly && state != BreakerState::Closed => state,
        _ => local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState as S;

    const ALL_STATES: [BreakerState; 7] = [
        S::Closed,
        S::Open,
        S::HalfOpen,
        S::ForcedOpen,
        S::ForcedClosed,
        S::Disabled,
        S::MetricsOnly,
    ];

    #[test]
    fn shown_state_is_the_clusters_unless_closed_or_local_only() {
        assert_eq!(
            shown_state(Mode::Cluster, Some(S::ForcedOpen), S::Closed),
            S::ForcedOpen
        );
        assert_eq!(
            shown_state(Mode::Stale, Some(S::MetricsOnly), S::Open),
            S::MetricsOnly
        );
        assert_eq!(
            shown_state(Mode::Cluster, Some(S::Closed), S::Open),
            S::Open
        );
        assert_eq!(shown_state(Mode::Cluster, None, S::HalfOpen), S::HalfOpen);
        assert_eq!(
            shown_state(Mode::LocalOnly, Some(S::Open), S::Closed),
            S::Closed
        );
    }

    #[test]
    fn cluster_decision_comes_first_for_every_state() {
        for mode in [Mode::Cluster, Mode::Stale] {
            let local = S::Closed;
            assert_eq!(decide(mode, Some(S::Closed), local), Admission::Allow);
            assert_eq!(
                decide(mode, Some(S::Open), local),
                Admission::RejectClusterOpen
            );
            assert_eq!(
                decide(mode, Some(S::HalfOpen), local),
                Admission::ClusterProbe
            );
            assert_eq!(
                decide(mode, Some(S::ForcedOpen), local),
                Admission::RejectForcedOpen
            );
            assert_eq!(decide(mode, Some(S::ForcedClosed), local), Admission::Allow);
            assert_eq!(decide(mode, Some(S::Disabled), local), Admission::Allow);
            assert_eq!(decide(mode, Some(S::MetricsOnly), local), Admission::Allow);
        }
    }

    #[test]
    fn closed_cluster_defers_to_an_open_local_breaker() {
        for mode in [Mode::Cluster, Mode::Stale] {
            assert_eq!(
                decide(mode, Some(S::Closed), S::Open),
                Admission::RejectLocalOpen
            );
            assert_eq!(
                decide(mode, Some(S::Closed), S::HalfOpen),
                Admission::LocalProbe
            );
            // operator overrides beat the local breaker
            assert_eq!(
                decide(mode, Some(S::ForcedClosed), S::Open),
                Admission::Allow
            );
            assert_eq!(decide(mode, Some(S::Disabled), S::Open), Admission::Allow);
            assert_eq!(
                decide(mode, Some(S::MetricsOnly), S::Open),
                Admission::Allow
            );
            // the cluster's rejection wins over a closed local breaker and its own reason shows
            assert_eq!(
                decide(mode, Some(S::Open), S::Open),
                Admission::RejectClusterOpen
            );
        }
    }

    #[test]
    fn unknown_keys_and_local_only_follow_the_local_breaker() {
        for cluster in ALL_STATES.map(Some).into_iter().chain([None]) {
            assert_eq!(
                decide(Mode::LocalOnly, cluster, S::Closed),
                Admission::Allow
            );
            assert_eq!(
                decide(Mode::LocalOnly, cluster, S::Open),
                Admission::RejectLocalOpen
            );
            assert_eq!(
                decide(Mode::LocalOnly, cluster, S::HalfOpen),
                Admission::LocalProbe
            );
        }
        assert_eq!(
            decide(Mode::Cluster, None, S::Open),
            Admission::RejectLocalOpen
        );
        assert_eq!(decide(Mode::Cluster, None, S::Closed), Admission::Allow);
    }

    #[test]
    fn admission_round_trips_through_u8() {
        for a in [
            Admission::Allow,
            Admission::RejectClusterOpen,
            Admission::RejectForcedOpen,
            Admission::RejectLocalOpen,
            Admission::ClusterProbe,
            Admission::LocalProbe,
        ] {
            assert_eq!(Admission::from_u8(a as u8), a);
        }
    }
}
