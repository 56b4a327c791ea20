//! The node's HTTP surface: `/healthz`, `/readyz`, `/metrics` and the JSON API under `/api/v1/`.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::metrics;
use crate::node::Node;

/// The HTTP routes of one node.
pub fn router(node: Node) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/status", get(status))
        .route("/api/v1/breakers", get(breakers))
        .route("/api/v1/tiers", get(tiers))
        .with_state(node)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the node knows a leader and has applied what it has committed recently enough to
/// serve watches.
async fn readyz(State(node): State<Node>) -> Response {
    let status = node.raft_status();
    match status.leader {
        Some(leader) => (StatusCode::OK, format!("ready (leader {leader})\n")).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader known\n",
        )
            .into_response(),
    }
}

async fn metrics_text(State(node): State<Node>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&node),
    )
        .into_response()
}

#[derive(Debug, Serialize)]
struct StatusJson {
    node_id: u64,
    state: String,
    leader_id: Option<u64>,
    term: u64,
    last_log_index: u64,
    commit_index: u64,
    applied_index: u64,
    snapshot_index: Option<u64>,
    members: Vec<MemberJson>,
}

#[derive(Debug, Serialize)]
struct MemberJson {
    node_id: u64,
    addr: String,
    role: &'static str,
}

async fn status(State(node): State<Node>) -> Json<StatusJson> {
    let s = node.raft_status();
    Json(StatusJson {
        node_id: s.node_id,
        state: format!("{:?}", s.state),
        leader_id: s.leader,
        term: s.term,
        last_log_index: s.last_log_index,
        commit_index: s.commit_index,
        applied_index: s.applied_index,
        snapshot_index: s.snapshot_index,
        members: s
            .members
            .into_iter()
            .map(|(id, addr, voter)| MemberJson {
                node_id: id,
                addr,
                role: if voter { "voter" } else { "learner" },
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize)]
struct ScopeQuery {
    scope: Option<String>,
}

async fn breakers(State(node): State<Node>, Query(q): Query<ScopeQuery>) -> Response {
    let read = node.state_machine().read();
    let index = read.applied_index();
    let list: Vec<_> = read
        .core()
        .breakers()
        .into_iter()
        .filter(|b| q.scope.as_deref().is_none_or(|s| b.key.scope() == s))
        .collect();
    Json(serde_json::json!({ "applied_index": index, "breakers": list })).into_response()
}

async fn tiers(State(node): State<Node>) -> Response {
    let read = node.state_machine().read();
    Json(serde_json::json!({ "applied_index": read.applied_index(), "scopes": read.core().scopes() }))
        .into_response()
}
