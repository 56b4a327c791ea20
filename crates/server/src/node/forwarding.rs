//! One hop to the leader: what a follower sends on (see [`crate::forward`]) and how the
//! leader serves it.

use openraft::async_runtime::WatchReceiver;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::Instrument;

use openraft::ReadPolicy;
use switchyard_proto::raft::{RaftMessage, raft_client::RaftClient};
use switchyard_store::codec;

use super::{FORWARD_TIMEOUT, Node, raft_err};
use crate::error::{NoLeaderHint, NodeError};
use crate::forward::{ForwardReply, ForwardRequest};
use crate::ingest::Batch;

impl Node {
    /// Serves a request forwarded by a follower. Never forwards again. A write whose caller's
    /// deadline (`deadline_unix_ms`, on this node's clock) has passed is refused unproposed.
    pub async fn serve_forwarded(
        &self,
        request: ForwardRequest,
        deadline_unix_ms: Option<u64>,
    ) -> ForwardReply {
        self.inner
            .counters
            .forwarded
            .fetch_add(1, Ordering::Relaxed);
        let not_leader = || ForwardReply::NotLeader {
            leader: self.current_leader(),
        };
        let failed = |e: NodeError| {
            let status = tonic::Status::from(e);
            ForwardReply::Failed {
                code: status.code() as i32,
                message: status.message().to_string(),
            }
        };
        match request {
            ForwardRequest::Write(_) | ForwardRequest::Report { .. }
                if deadline_unix_ms.is_some_and(|d| self.inner.clock.now_ms() >= d) =>
            {
                // A forwarded report that arrives after its sender gave up on it is refused
                // too: the sender keeps it and sends it again, and it must not count twice.
                let late_ms = self
                    .inner
                    .clock
                    .now_ms()
                    .saturating_sub(deadline_unix_ms.unwrap_or(0));
                tracing::info!(
                    late_ms,
                    "refused a forwarded request that arrived after its deadline"
                );
                failed(NodeError::DeadlinePassed(format!(
                    "{late_ms} ms before the request reached the leader"
                )))
            }
            ForwardRequest::Write(envelope) => match self.propose_local(envelope).await {
                Ok(Ok(response)) => ForwardReply::Written(response),
                Ok(Err(_)) => not_leader(),
                Err(e) => failed(e),
            },
            ForwardRequest::ReadIndex => {
                match self
                    .inner
                    .raft
                    .ensure_linearizable(ReadPolicy::ReadIndex)
                    .await
                {
                    Ok(read) => ForwardReply::ReadIndex(read.index()),
                    Err(e) if e.forward_to_leader().is_some() => not_leader(),
                    Err(e) => failed(raft_err(e)),
                }
            }
            ForwardRequest::Report { calls, deltas } => {
                if !self.is_leader() {
                    return not_leader();
                }
                match self.accept_forwarded_report(Batch { calls, deltas }) {
                    Ok(accepted) => ForwardReply::Reported {
                        accepted,
                        report_interval_ms: self.leader_advice_ms(),
                    },
                    Err(refused) => failed(refused.error),
                }
            }
            request @ (ForwardRequest::AddLearner { .. }
            | ForwardRequest::Promote { .. }
            | ForwardRequest::Remove { .. }) => {
                if !self.is_leader() {
                    return not_leader();
                }
                match self.membership_on_leader(request).await {
                    Ok(index) => ForwardReply::Membership(index),
                    Err(e) => failed(e),
                }
            }
        }
    }

    /// `leader`, or, when this node knows none (it has just restarted and not yet heard from
    /// the leader, or an election is under way), the first leader it learns of within two
    /// maximum election timeouts. Refusing at once turned those few hundred milliseconds into
    /// failed writes on a node that was about to know where to send them.
    async fn leader_or_wait(&self, leader: Option<u64>) -> Result<u64, NodeError> {
        if let Some(leader) = leader {
            return Ok(leader);
        }
        let wait = Duration::from_millis(2 * self.inner.config.election_timeout_max_ms);
        self.inner
            .raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader.is_some(), "a known leader")
            .await
            .ok()
            .and_then(|m| m.current_leader)
            .ok_or_else(|| NodeError::NoLeader {
                hint: NoLeaderHint::NoneWithin {
                    wait_ms: wait.as_millis() as u64,
                },
            })
    }

    /// Sends `request` to the leader and returns its reply, mapping refusals to errors.
    pub(super) async fn forward(
        &self,
        leader: Option<u64>,
        request: &ForwardRequest,
    ) -> Result<ForwardReply, NodeError> {
        let span = if crate::trace_context::operator_request() {
            tracing::info_span!("forward", leader = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        self.forward_in_span(leader, request).instrument(span).await
    }

    async fn forward_in_span(
        &self,
        leader: Option<u64>,
        request: &ForwardRequest,
    ) -> Result<ForwardReply, NodeError> {
        let leader = self.leader_or_wait(leader).await?;
        tracing::Span::current().record("leader", leader);
        if leader == self.inner.id {
            return Err(NodeError::NoLeader {
                hint: NoLeaderHint::Changing,
            });
        }
        let addr = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow_watched();
            m.membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.addr.clone())
                .ok_or_else(|| NodeError::NoLeader {
                    hint: NoLeaderHint::NoAddress { leader },
                })?
        };
        // The caller's deadline bounds the hop, and travels with it (see `crate::deadline`).
        let remaining = crate::deadline::remaining();
        let timeout = remaining.map_or(FORWARD_TIMEOUT, |r| r.min(FORWARD_TIMEOUT));
        if timeout.is_zero() {
            return Err(NodeError::DeadlinePassed(
                "before the request was forwarded to the leader".into(),
            ));
        }
        let pooled = self
            .inner
            .pool
            .get_pooled(&addr)
            .map_err(|e| NodeError::Hop {
                from: self.inner.id,
                to: leader,
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
        let limit = self.inner.config.limits.message_bytes_max as usize;
        let mut client = RaftClient::new(pooled.channel)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        let mut call = tonic::Request::new(RaftMessage {
            payload: codec::encode(request),
        });
        call.set_timeout(timeout);
        if remaining.is_some() {
            let deadline_unix_ms = self.inner.clock.now_ms() + timeout.as_millis() as u64;
            call.metadata_mut().insert(
                crate::deadline::DEADLINE_HEADER,
                tonic::metadata::MetadataValue::from(deadline_unix_ms),
            );
        }
        self.inner.credentials.attach(&mut call);
        // The leader's spans join this one; its log lines carry the caller's request id.
        crate::trace_context::inject(call.metadata_mut());
        let reply = client.forward(call).await.map_err(|status| {
            let error = NodeError::from_hop_status(self.inner.id, leader, &addr, status);
            if matches!(error, NodeError::Hop { .. }) {
                // A hop that stopped answering gets a fresh connection (see `crate::transport`).
                self.inner.pool.replace(&addr, pooled.generation);
            }
            error
        })?;
        let reply: ForwardReply = codec::decode("forward reply", &reply.into_inner().payload)
            .map_err(|e| {
                NodeError::Unexpected(format!("a forward reply that does not decode: {e}"))
            })?;
        match reply {
            ForwardReply::NotLeader { leader } => Err(NodeError::NoLeader {
                hint: NoLeaderHint::Moved { leader },
            }),
            ForwardReply::Failed { code, message } => Err(NodeError::Remote(tonic::Status::new(
                tonic::Code::from(code),
                message,
            ))),
            ok => Ok(ok),
        }
    }
}
