//! Membership changes (add a learner, promote, remove) and handing leadership over on a
//! graceful stop.

use openraft::async_runtime::WatchReceiver;
use std::collections::BTreeSet;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers};

use super::{Node, invalid, unexpected};
use crate::error::{NoLeaderHint, NodeError};
use crate::forward::{ForwardReply, ForwardRequest};

impl Node {
    /// Adds a learner that will catch up from the leader (through a snapshot if it is far
    /// behind). Returns the index of the membership entry.
    pub async fn add_learner(&self, node_id: u64, addr: String) -> Result<u64, NodeError> {
        self.membership(ForwardRequest::AddLearner { node_id, addr })
            .await
    }

    /// Promotes a learner to voter.
    pub async fn promote(&self, node_id: u64) -> Result<u64, NodeError> {
        self.membership(ForwardRequest::Promote { node_id }).await
    }

    /// Removes a voter or learner from the cluster.
    pub async fn remove(&self, node_id: u64) -> Result<u64, NodeError> {
        self.membership(ForwardRequest::Remove { node_id }).await
    }

    async fn membership(&self, request: ForwardRequest) -> Result<u64, NodeError> {
        if !self.is_leader() {
            return match self.forward(self.current_leader(), &request).await? {
                ForwardReply::Membership(index) => Ok(index),
                other => Err(unexpected(other)),
            };
        }
        self.membership_on_leader(request).await
    }

    pub(super) async fn membership_on_leader(
        &self,
        request: ForwardRequest,
    ) -> Result<u64, NodeError> {
        let raft = &self.inner.raft;
        let result = match request {
            ForwardRequest::AddLearner { node_id, addr } => {
                if node_id == 0 {
                    return Err(invalid("node_id", "must be >= 1"));
                }
                if addr
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(invalid("addr", format!("must be HOST:PORT, got {addr:?}")));
                }
                raft.add_learner(node_id, BasicNode { addr }, false).await
            }
            ForwardRequest::Promote { node_id } => {
                self.require_member(node_id)?;
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true)
                    .await
            }
            ForwardRequest::Remove { node_id } => {
                self.require_member(node_id)?;
                let voters: BTreeSet<u64> = raft.voter_ids().collect();
                if voters.contains(&node_id) {
                    if voters.len() == 1 {
                        return Err(invalid("node_id", "cannot remove the last voter"));
                    }
                    raft.change_membership(
                        ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
                        false,
                    )
                    .await
                } else {
                    raft.change_membership(
                        ChangeMembers::RemoveNodes(BTreeSet::from([node_id])),
                        false,
                    )
                    .await
                }
            }
            other => return Err(unexpected_request(&other)),
        };
        match result {
            Ok(written) => Ok(written.log_id.index()),
            Err(e) => match e.forward_to_leader() {
                Some(f) => Err(NodeError::NoLeader {
                    hint: NoLeaderHint::Moved {
                        leader: f.leader_id,
                    },
                }),
                None => Err(NodeError::Invalid(switchyard_core::ValidationError {
                    field: "membership".into(),
                    rule: e.to_string(),
                })),
            },
        }
    }

    fn require_member(&self, node_id: u64) -> Result<(), NodeError> {
        let metrics = self.inner.raft.metrics();
        let known = metrics
            .borrow_watched()
            .membership_config
            .membership()
            .nodes()
            .any(|(id, _)| *id == node_id);
        if known {
            Ok(())
        } else {
            Err(NodeError::NotFound(format!("member {node_id}")))
        }
    }

    /// On a graceful stop of the leader: hands leadership to the most up-to-date voter and
    /// waits (at most one `election_timeout_max_ms`) until it has moved. Returns the new
    /// leader, or `None` when this node was not the leader or no voter could take over.
    ///
    /// Why: a leader that just exits leaves the followers honouring its lease and then
    /// running an election, a window of about two election timeouts with no writes. A
    /// transfer lets the target start its election at once (openraft marks the vote request as
    /// a leadership transfer, which the other voters grant inside the old lease), so a rolling
    /// restart costs about one round trip per leader.
    pub async fn hand_over_leadership(&self) -> Option<u64> {
        if !self.is_leader() {
            return None;
        }
        let target = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow_watched();
            let matched = m.replication.clone().unwrap_or_default();
            m.membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != self.inner.id)
                .max_by_key(|id| (matched.get(id).cloned().flatten().map(|l| l.index()), *id))
        }?;
        if let Err(e) = self.inner.raft.trigger().transfer_leader(target).await {
            tracing::warn!(error = %e, to = target, "could not hand leadership over");
            return None;
        }
        let me = self.inner.id;
        let wait = Duration::from_millis(self.inner.config.election_timeout_max_ms);
        match self
            .inner
            .raft
            .wait(Some(wait))
            .metrics(
                move |m| m.current_leader.is_some_and(|l| l != me),
                "leadership handed over",
            )
            .await
        {
            Ok(m) => {
                tracing::info!(to = ?m.current_leader, "handed leadership over before stopping");
                m.current_leader
            }
            Err(e) => {
                tracing::warn!(error = %e, to = target, "leadership did not move before stopping");
                None
            }
        }
    }
}

fn unexpected_request(request: &ForwardRequest) -> NodeError {
    NodeError::Unexpected(format!("not a membership request: {request:?}"))
}
