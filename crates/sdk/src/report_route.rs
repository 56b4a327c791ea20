//! Where an SDK sends its reports: off the leader when it can.
//!
//! Any node accepts a report. A follower buffers what it receives and hands the leader all of
//! it as one forwarded batch a tick, so a report sent to a follower costs the leader a share
//! of one call per tick instead of a call of its own. The leader is the one node that also
//! proposes, replicates and applies every tick: a fleet reporting to followers leaves its
//! CPU to that. A Report answer names the node that gave it and the leader; when they are the
//! same and the client has another endpoint, its reports move to one of the others, picked at
//! random ([`ReportRoute::next_endpoint`]): a fleet whose replicas list the endpoints in one
//! order spreads over every follower rather than piling onto the one listed after the leader.
//!
//! Reports start on an endpoint picked by the instance id ([`first_endpoint`]), not on the
//! first one listed: a fleet whose replicas list the same endpoints starts spread over all of
//! them. Starting on the first would put every report on that node, and when it is a follower
//! no answer would ever move them off it.
//!
//! They move at most once per [`LEADER_LEAVE_COOLDOWN_MS`]. With a follower down, reports
//! that left the leader fail there and rotate back to it (the usual move past a failed
//! endpoint); they then stay on the leader for the cooldown rather than failing one report in
//! two. A node that predates the answer's `node_id` sends 0, and nothing moves.

/// Reports move off the leader at most once per this long.
pub const LEADER_LEAVE_COOLDOWN_MS: u64 = 30_000;

/// The endpoint, of `endpoints`, where reports of `instance` start: the same for an id every
/// time, spread evenly over a fleet's ids (0 without endpoints).
pub fn first_endpoint(instance: &str, endpoints: usize) -> usize {
    if endpoints == 0 {
        return 0;
    }
    let mixed =
        switchyard_core::hash::splitmix64_mix(switchyard_core::hash::fnv1a64(instance.as_bytes()));
    (mixed % endpoints as u64) as usize
}

/// What an accepted report's answer says about where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRoute {
    /// The node that answered (`ReportResponse.node_id`; 0 from older nodes).
    pub node_id: u64,
    /// The leader it knows (`ReportResponse.leader_id`; 0 when unknown).
    pub leader_id: u64,
    /// The client's endpoints.
    pub endpoints: usize,
}

impl ReportRoute {
    /// Whether the client should move its reports to another endpoint, given when they last
    /// left the leader (`None`: never) and the time now, in the same clock's ms.
    pub fn leave_leader(&self, left_at_ms: Option<u64>, now_ms: u64) -> bool {
        self.endpoints > 1
            && self.node_id != 0
            && self.node_id == self.leader_id
            && left_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= LEADER_LEAVE_COOLDOWN_MS)
    }

    /// The endpoint to move reports to from `current`: any other one, chosen by `pick` (a
    /// random number, or anything spread over the fleet). Never `current` itself when there
    /// are others.
    pub fn next_endpoint(&self, current: usize, pick: u64) -> usize {
        let endpoints = self.endpoints.max(1);
        let others = (endpoints - 1).max(1);
        let step = 1 + (pick % others as u64) as usize;
        (current % endpoints + step) % endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_starts_spread_over_its_endpoints_each_instance_on_its_own() {
        let mut starts = [0usize; 3];
        for i in 0..3_000 {
            let id = format!("checkout-7d9f8-{i}");
            let first = first_endpoint(&id, 3);
            assert_eq!(first, first_endpoint(&id, 3), "the same every time");
            starts[first] += 1;
        }
        for n in starts {
            assert!((850..=1_150).contains(&n), "{starts:?}");
        }
        assert_eq!(first_endpoint("pod-1", 1), 0);
        assert_eq!(first_endpoint("pod-1", 0), 0);
    }

    fn route(node_id: u64, leader_id: u64, endpoints: usize) -> ReportRoute {
        ReportRoute {
            node_id,
            leader_id,
            endpoints,
        }
    }

    #[test]
    fn only_an_answer_from_the_leader_with_somewhere_else_to_go_moves_reports() {
        assert!(route(2, 2, 3).leave_leader(None, 0));
        assert!(!route(1, 2, 3).leave_leader(None, 0), "a follower answered");
        assert!(!route(2, 2, 1).leave_leader(None, 0), "one endpoint only");
        assert!(
            !route(0, 0, 3).leave_leader(None, 0),
            "an older node, no leader known"
        );
        assert!(!route(0, 2, 3).leave_leader(None, 0), "an older node");
    }

    #[test]
    fn the_next_endpoint_is_any_other_one_and_every_other_one_is_picked() {
        for endpoints in 2..6 {
            let r = route(1, 1, endpoints);
            for current in 0..endpoints {
                let mut seen = vec![0; endpoints];
                for pick in 0..((endpoints as u64 - 1) * 10) {
                    seen[r.next_endpoint(current, pick)] += 1;
                }
                assert_eq!(seen[current], 0, "never back to {current} of {endpoints}");
                assert!(
                    (0..endpoints).all(|e| e == current || seen[e] == 10),
                    "{seen:?}: evenly over the others"
                );
            }
        }
        // One endpoint: it stays there.
        assert_eq!(route(1, 1, 1).next_endpoint(0, 7), 0);
    }

    #[test]
    fn reports_leave_the_leader_at_most_once_per_cooldown() {
        let r = route(1, 1, 3);
        assert!(!r.leave_leader(Some(10_000), 10_000));
        assert!(!r.leave_leader(Some(10_000), 10_000 + LEADER_LEAVE_COOLDOWN_MS - 1));
        assert!(r.leave_leader(Some(10_000), 10_000 + LEADER_LEAVE_COOLDOWN_MS));
        // A clock that went backwards does not move them either.
        assert!(!r.leave_leader(Some(10_000), 9_000));
    }
}
