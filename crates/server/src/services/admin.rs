//! The admin service the CLI calls: breakers, overrides, policies, tiers, audit, SLA,
//! membership, settings and status.
//!
//! Reads are linearizable unless the request sets `local`: the node first confirms a read
//! index with the leader and waits until it has applied that far (see
//! [`Node::read_barrier`]). Writes are validated here, proposed through the leader and
//! acknowledged after commit with the log index they were committed at. The actor recorded in
//! the audit log comes from the `x-switchyard-actor` metadata, never from the message.

use switchyard_core::{
    Actor, AuditQuery, BreakerKey, Command, PolicyTarget, Scope, ValidationError,
};
use switchyard_proto::ACTOR_METADATA_KEY;
use switchyard_proto::admin::{self as apb, admin_server};
use switchyard_proto::client as pb;
use switchyard_proto::convert::{
    self, AddLearner, DeletePolicy, KeyAction, MemberAction, PutPolicies, PutSettings,
    PutTierRules, ScopeAction, SetOverride, SetTierOverride, SlaReportQuery,
};
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::error::NodeError;
use crate::node::Node;

/// Largest page of breakers one `ListBreakers` call returns.
pub const LIST_BREAKERS_PAGE_MAX: usize = 1_000;

/// Serves operator calls on one node.
#[derive(Debug, Clone)]
pub struct AdminService {
    node: Node,
}

impl AdminService {
    /// The service for `node`.
    pub fn new(node: Node) -> Self {
        Self { node }
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        self.node.tokens().check(Role::Admin, request.metadata())?;
        Ok(actor_from(request.metadata()))
    }

    async fn write(&self, actor: Actor, command: Command) -> Result<u64, Status> {
        Ok(self.node.write(actor, command).await?.index)
    }

    async fn barrier(&self, local: bool) -> Result<u64, Status> {
        Ok(self.node.read_barrier(local).await?)
    }

    fn expires_at(&self, for_ms: Option<u64>) -> Option<u64> {
        for_ms.map(|ms| self.node.clock().now_ms().saturating_add(ms))
    }
}

/// The operator identity from request metadata: printable, at most 64 bytes, else `anonymous`.
fn actor_from(metadata: &tonic::metadata::MetadataMap) -> Actor {
    let claimed = metadata
        .get(ACTOR_METADATA_KEY)
        .and_then(|v| v.to_str().ok());
    crate::auth::operator_actor(claimed, "anonymous")
}

fn invalid(e: &ValidationError) -> Status {
    convert::status_from_validation(e)
}

fn not_found(what: String) -> Status {
    Status::from(NodeError::NotFound(what))
}

fn node_state(state: openraft::ServerState) -> apb::NodeState {
    match state {
        openraft::ServerState::Leader => apb::NodeState::Leader,
        openraft::ServerState::Follower => apb::NodeState::Follower,
        openraft::ServerState::Candidate => apb::NodeState::Candidate,
        openraft::ServerState::Learner => apb::NodeState::Learner,
        openraft::ServerState::Shutdown => apb::NodeState::Shutdown,
    }
}

fn members(status: &crate::node::RaftStatus) -> Vec<apb::Member> {
    status
        .members
        .iter()
        .map(|(id, addr, voter)| apb::Member {
            node_id: *id,
            addr: addr.clone(),
            role: if *voter {
                apb::MemberRole::Voter
            } else {
                apb::MemberRole::Learner
            } as i32,
        })
        .collect()
}

#[tonic::async_trait]
impl admin_server::Admin for AdminService {
    async fn status(
        &self,
        request: Request<apb::StatusRequest>,
    ) -> Result<Response<apb::StatusResponse>, Status> {
        self.authorize(&request)?;
        let s = self.node.raft_status();
        Ok(Response::new(apb::StatusResponse {
            node_id: s.node_id,
            leader_id: s.leader,
            term: s.term,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            last_log_index: s.last_log_index,
            snapshot_index: s.snapshot_index,
            members: members(&s),
            state: node_state(s.state) as i32,
        }))
    }

    async fn list_breakers(
        &self,
        request: Request<apb::ListBreakersRequest>,
    ) -> Result<Response<apb::ListBreakersResponse>, Status> {
        self.authorize(&request)?;
        let r = request.into_inner();
        let (scope, after) = convert::list_breakers_filter(&r).map_err(|e| invalid(&e))?;
        let limit = match r.limit {
            0 => LIST_BREAKERS_PAGE_MAX,
            n => (n as usize).min(LIST_BREAKERS_PAGE_MAX),
        };
        let index = self.barrier(r.local).await?;
        let read = self.node.state_machine().read();
        let mut breakers: Vec<apb::BreakerInfo> = read
            .core()
            .breakers()
            .iter()
            .filter(|b| scope.as_ref().is_none_or(|s| b.key.scope() == s.as_str()))
            .filter(|b| after.as_ref().is_none_or(|a| b.key > *a))
            .take(limit + 1)
            .map(apb::BreakerInfo::from)
            .collect();
        let next_after_key = if breakers.len() > limit {
            breakers.truncate(limit);
            breakers
                .last()
                .and_then(|b| b.decision.as_ref())
                .map(|d| d.key.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(apb::ListBreakersResponse {
            breakers,
            next_after_key,
            applied_index: index.max(read.applied_index()),
        }))
    }

    async fn get_breaker(
        &self,
        request: Request<apb::GetBreakerRequest>,
    ) -> Result<Response<apb::GetBreakerResponse>, Status> {
        self.authorize(&request)?;
        let key = convert::get_breaker_key(request.get_ref()).map_err(|e| invalid(&e))?;
        self.barrier(request.get_ref().local).await?;
        let read = self.node.state_machine().read();
        let view = read
            .core()
            .breaker(&key)
            .ok_or_else(|| not_found(format!("breaker `{key}`")))?;
        Ok(Response::new(apb::GetBreakerResponse {
            breaker: Some(apb::BreakerInfo::from(&view)),
            applied_index: read.applied_index(),
        }))
    }

    async fn set_override(
        &self,
        request: Request<apb::SetOverrideRequest>,
    ) -> Result<Response<apb::SetOverrideResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = SetOverride::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let command = Command::SetOverride {
            key: r.key,
            mode: r.mode,
            reason: r.reason,
            expires_at_ms: self.expires_at(r.for_ms),
        };
        let index = self.write(actor, command).await?;
        Ok(Response::new(apb::SetOverrideResponse { index }))
    }

    async fn clear_override(
        &self,
        request: Request<apb::ClearOverrideRequest>,
    ) -> Result<Response<apb::ClearOverrideResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = KeyAction::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self
            .write(
                actor,
                Command::ClearOverride {
                    key: r.key,
                    reason: r.reason,
                },
            )
            .await?;
        Ok(Response::new(apb::ClearOverrideResponse { index }))
    }

    async fn reset_breaker(
        &self,
        request: Request<apb::ResetBreakerRequest>,
    ) -> Result<Response<apb::ResetBreakerResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = KeyAction::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self
            .write(
                actor,
                Command::ResetBreaker {
                    key: r.key,
                    reason: r.reason,
                },
            )
            .await?;
        Ok(Response::new(apb::ResetBreakerResponse { index }))
    }

    async fn put_policies(
        &self,
        request: Request<apb::PutPoliciesRequest>,
    ) -> Result<Response<apb::PutPoliciesResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = PutPolicies::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self
            .write(
                actor,
                Command::PutPolicies {
                    policies: r.policies,
                },
            )
            .await?;
        Ok(Response::new(apb::PutPoliciesResponse { index }))
    }

    async fn get_policy(
        &self,
        request: Request<apb::GetPolicyRequest>,
    ) -> Result<Response<apb::GetPolicyResponse>, Status> {
        self.authorize(&request)?;
        let local = request.get_ref().local;
        let target = convert::get_policy_target(request.into_inner()).map_err(|e| invalid(&e))?;
        self.barrier(local).await?;
        let read = self.node.state_machine().read();
        let core = read.core();
        let (policy, source) = match (&target, core.policy(&target)) {
            (_, Some(p)) => (
                p.clone(),
                match target {
                    PolicyTarget::Key(_) => apb::PolicySource::Key,
                    PolicyTarget::Scope(_) => apb::PolicySource::Scope,
                },
            ),
            (PolicyTarget::Key(key), None) => {
                let scope_target = PolicyTarget::Scope(key.scope_id());
                let source = if core.policy(&scope_target).is_some() {
                    apb::PolicySource::Scope
                } else {
                    apb::PolicySource::Default
                };
                (core.effective_policy(key), source)
            }
            (PolicyTarget::Scope(_), None) => (
                switchyard_core::Policy::default(),
                apb::PolicySource::Default,
            ),
        };
        Ok(Response::new(apb::GetPolicyResponse {
            policy: Some(pb::Policy::from(&policy)),
            source: source as i32,
            applied_index: read.applied_index(),
        }))
    }

    async fn list_policies(
        &self,
        request: Request<apb::ListPoliciesRequest>,
    ) -> Result<Response<apb::ListPoliciesResponse>, Status> {
        self.authorize(&request)?;
        self.barrier(request.get_ref().local).await?;
        let read = self.node.state_machine().read();
        let policies = read
            .core()
            .policies()
            .iter()
            .map(|(t, p)| apb::PolicyEntry::from((t, p)))
            .collect();
        Ok(Response::new(apb::ListPoliciesResponse {
            policies,
            applied_index: read.applied_index(),
        }))
    }

    async fn delete_policy(
        &self,
        request: Request<apb::DeletePolicyRequest>,
    ) -> Result<Response<apb::DeletePolicyResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = DeletePolicy::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self
            .write(actor, Command::DeletePolicy { target: r.target })
            .await?;
        Ok(Response::new(apb::DeletePolicyResponse { index }))
    }

    async fn get_tier(
        &self,
        request: Request<apb::GetTierRequest>,
    ) -> Result<Response<apb::GetTierResponse>, Status> {
        self.authorize(&request)?;
        let scope = convert::get_tier_scope(request.get_ref()).map_err(|e| invalid(&e))?;
        self.barrier(request.get_ref().local).await?;
        let read = self.node.state_machine().read();
        let view = read.core().scope(&scope).ok_or_else(|| {
            not_found(format!(
                "scope `{scope}` (it has no tier rules or override)"
            ))
        })?;
        Ok(Response::new(apb::GetTierResponse {
            scope: Some(apb::ScopeInfo::from(&view)),
            applied_index: read.applied_index(),
        }))
    }

    async fn list_tiers(
        &self,
        request: Request<apb::ListTiersRequest>,
    ) -> Result<Response<apb::ListTiersResponse>, Status> {
        self.authorize(&request)?;
        self.barrier(request.get_ref().local).await?;
        let read = self.node.state_machine().read();
        let scopes = read
            .core()
            .scopes()
            .iter()
            .map(apb::ScopeInfo::from)
            .collect();
        Ok(Response::new(apb::ListTiersResponse {
            scopes,
            applied_index: read.applied_index(),
        }))
    }

    async fn set_tier_override(
        &self,
        request: Request<apb::SetTierOverrideRequest>,
    ) -> Result<Response<apb::SetTierOverrideResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = SetTierOverride::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let command = Command::SetTierOverride {
            scope: r.scope,
            tier: r.tier,
            reason: r.reason,
            expires_at_ms: self.expires_at(r.for_ms),
        };
        let index = self.write(actor, command).await?;
        Ok(Response::new(apb::SetTierOverrideResponse { index }))
    }

    async fn clear_tier_override(
        &self,
        request: Request<apb::ClearTierOverrideRequest>,
    ) -> Result<Response<apb::ClearTierOverrideResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = ScopeAction::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let command = Command::ClearTierOverride {
            scope: r.scope,
            reason: r.reason,
        };
        let index = self.write(actor, command).await?;
        Ok(Response::new(apb::ClearTierOverrideResponse { index }))
    }

    async fn put_tier_rules(
        &self,
        request: Request<apb::PutTierRulesRequest>,
    ) -> Result<Response<apb::PutTierRulesResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = PutTierRules::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self
            .write(actor, Command::PutTierRules { rules: r.rules })
            .await?;
        Ok(Response::new(apb::PutTierRulesResponse { index }))
    }

    async fn get_tier_rules(
        &self,
        request: Request<apb::GetTierRulesRequest>,
    ) -> Result<Response<apb::GetTierRulesResponse>, Status> {
        self.authorize(&request)?;
        let scope = convert::get_tier_rules_scope(request.get_ref()).map_err(|e| invalid(&e))?;
        self.barrier(request.get_ref().local).await?;
        let read = self.node.state_machine().read();
        let rules = read
            .core()
            .tier_rules(&scope)
            .ok_or_else(|| not_found(format!("tier rules for scope `{scope}`")))?;
        Ok(Response::new(apb::GetTierRulesResponse {
            rules: Some(apb::TierRules::from(rules)),
            applied_index: read.applied_index(),
        }))
    }

    async fn delete_tier_rules(
        &self,
        request: Request<apb::DeleteTierRulesRequest>,
    ) -> Result<Response<apb::DeleteTierRulesResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = ScopeAction::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self
            .write(actor, Command::DeleteTierRules { scope: r.scope })
            .await?;
        Ok(Response::new(apb::DeleteTierRulesResponse { index }))
    }

    async fn query_audit(
        &self,
        request: Request<apb::QueryAuditRequest>,
    ) -> Result<Response<apb::QueryAuditResponse>, Status> {
        self.authorize(&request)?;
        let r = request.into_inner();
        let page_max = self.node.config().limits.audit_page_max;
        if r.limit > page_max {
            return Err(Status::resource_exhausted(format!(
                "`limit`: {} is over the audit page limit of {page_max}",
                r.limit
            )));
        }
        let parse_err = |e: ValidationError| invalid(&e);
        let query = AuditQuery {
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            key: r
                .key
                .as_deref()
                .map(BreakerKey::parse)
                .transpose()
                .map_err(|e| {
                    parse_err(ValidationError {
                        field: "key".into(),
                        rule: e.rule,
                    })
                })?,
            scope: r
                .scope
                .as_deref()
                .map(Scope::parse)
                .transpose()
                .map_err(|e| {
                    parse_err(ValidationError {
                        field: "scope".into(),
                        rule: e.rule,
                    })
                })?,
            actor: r.actor,
            after_index: r.after_index,
            limit: if r.limit == 0 { page_max } else { r.limit },
        };
        self.barrier(r.local).await?;
        let read = self.node.state_machine().read();
        let events = read.core().audit().query(&query);
        let next_after_index = (events.len() as u32 >= query.limit)
            .then(|| events.last().map(|e| e.index))
            .flatten();
        Ok(Response::new(apb::QueryAuditResponse {
            events: events.iter().map(apb::AuditEvent::from).collect(),
            next_after_index,
            applied_index: read.applied_index(),
        }))
    }

    async fn sla_report(
        &self,
        request: Request<apb::SlaReportRequest>,
    ) -> Result<Response<apb::SlaReportResponse>, Status> {
        self.authorize(&request)?;
        let q = SlaReportQuery::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        self.barrier(q.local).await?;
        let read = self.node.state_machine().read();
        let core = read.core();
        // Reports are computed at the state's own time, so every node gives the same answer.
        let now_ms = core.now_ms();
        let keys: Vec<BreakerKey> = match q.key {
            Some(key) => {
                if core.breaker(&key).is_none() {
                    return Err(not_found(format!("breaker `{key}`")));
                }
                vec![key]
            }
            None => core.breakers().into_iter().map(|b| b.key).collect(),
        };
        let reports = keys
            .iter()
            .filter_map(|k| core.sla_report(k, q.window, now_ms))
            .map(|r| apb::SlaReport::from(&r))
            .collect();
        Ok(Response::new(apb::SlaReportResponse {
            reports,
            applied_index: read.applied_index(),
        }))
    }

    async fn list_members(
        &self,
        request: Request<apb::ListMembersRequest>,
    ) -> Result<Response<apb::ListMembersResponse>, Status> {
        self.authorize(&request)?;
        let index = self.barrier(request.get_ref().local).await?;
        let s = self.node.raft_status();
        Ok(Response::new(apb::ListMembersResponse {
            members: members(&s),
            leader_id: s.leader,
            applied_index: index,
        }))
    }

    async fn add_learner(
        &self,
        request: Request<apb::AddLearnerRequest>,
    ) -> Result<Response<apb::AddLearnerResponse>, Status> {
        self.authorize(&request)?;
        let r = AddLearner::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self.node.add_learner(r.node_id, r.addr).await?;
        Ok(Response::new(apb::AddLearnerResponse { index }))
    }

    async fn promote_member(
        &self,
        request: Request<apb::PromoteMemberRequest>,
    ) -> Result<Response<apb::PromoteMemberResponse>, Status> {
        self.authorize(&request)?;
        let r = MemberAction::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self.node.promote(r.node_id).await?;
        Ok(Response::new(apb::PromoteMemberResponse { index }))
    }

    async fn remove_member(
        &self,
        request: Request<apb::RemoveMemberRequest>,
    ) -> Result<Response<apb::RemoveMemberResponse>, Status> {
        self.authorize(&request)?;
        let r = MemberAction::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self.node.remove(r.node_id).await?;
        Ok(Response::new(apb::RemoveMemberResponse { index }))
    }

    async fn get_settings(
        &self,
        request: Request<apb::GetSettingsRequest>,
    ) -> Result<Response<apb::GetSettingsResponse>, Status> {
        self.authorize(&request)?;
        self.barrier(request.get_ref().local).await?;
        let read = self.node.state_machine().read();
        Ok(Response::new(apb::GetSettingsResponse {
            settings: Some(apb::ClusterSettings::from(read.core().settings())),
            applied_index: read.applied_index(),
        }))
    }

    async fn put_settings(
        &self,
        request: Request<apb::PutSettingsRequest>,
    ) -> Result<Response<apb::PutSettingsResponse>, Status> {
        let actor = self.authorize(&request)?;
        let r = PutSettings::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let index = self
            .write(
                actor,
                Command::PutSettings {
                    settings: r.settings,
                },
            )
            .await?;
        Ok(Response::new(apb::PutSettingsResponse { index }))
    }
}
