//! The node's HTTP surface: health, Prometheus metrics, the JSON API under `/api/v1/` and the
//! dashboard at `/`.
//!
//! | method and path | what | auth ([`access`]) |
//! |---|---|---|
//! | `GET /healthz`, `GET /readyz` | liveness; readiness (a leader is known) | none |
//! | `GET /metrics` | Prometheus text format ([`crate::metrics`]) | none, or viewer with `metrics_require_token` |
//! | `GET /` | the dashboard ([`dashboard`]) | none (it asks for a token on 401) |
//! | `GET /api/v1/status` | this node's Raft view: members, leader, term, indexes | viewer |
//! | `GET /api/v1/breakers[?scope=S]` | breakers with state and reason | viewer |
//! | `GET /api/v1/breakers/{scope}/{name}/history` | recent samples for charts ([`history`]) | viewer |
//! | `GET /api/v1/tiers` | scopes with tier and reason | viewer |
//! | `GET /api/v1/sla?window=&key=` | SLA reports ([`sla`]) | viewer |
//! | `GET /api/v1/audit?...&format=json\|csv` | the audit trail ([`audit`]) | admin |
//! | `POST/DELETE /api/v1/breakers/{scope}/{name}/override`, `POST .../reset` | operator actions ([`actions`]) | admin |
//! | `POST/DELETE /api/v1/tiers/{scope}` | pin or unpin a scope's tier ([`actions`]) | admin |
//!
//! The same rule as gRPC: when the node has tokens, every `/api/v1/` route needs one, reads
//! included ("viewer" means the viewer or the admin token). Errors are JSON
//! `{"error", "field"}` ([`api_error`]).

mod access;
mod actions;
mod api_error;
mod audit;
mod dashboard;
mod history;
mod params;
mod sla;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use actions::{ACTION_BODY_MAX_BYTES, ActionResponse};
pub use api_error::ApiError;
pub use audit::{AuditResponse, CSV_HEADER, NEXT_AFTER_INDEX_HEADER};
pub use history::{BreakerHistory, HISTORY_BREAKERS_MAX, HISTORY_SAMPLES_MAX, Sample};
pub use sla::{SLA_PAGE_DEFAULT, SLA_PAGE_MAX, SlaResponse};

use crate::metrics;
use crate::node::Node;
use params::{Params, RawParams};

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The node.
    pub node: Node,
    /// Recent samples for the dashboard's charts.
    pub history: BreakerHistory,
}

/// The HTTP routes of one node. Starts the history sampler, so call it inside the runtime.
pub fn router(node: Node) -> Router {
    let history = BreakerHistory::default();
    history.spawn_sampler(node.clone());
    router_with(AppState { node, history })
}

/// The routes over an existing state (no sampler started).
pub fn router_with(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/status", get(status))
        .route("/api/v1/breakers", get(breakers))
        .route(
            "/api/v1/breakers/{scope}/{name}/history",
            get(history::history),
        )
        .route(
            "/api/v1/breakers/{scope}/{name}/override",
            post(actions::set_override).delete(actions::clear_override),
        )
        .route(
            "/api/v1/breakers/{scope}/{name}/reset",
            post(actions::reset),
        )
        .route("/api/v1/tiers", get(tiers))
        .route(
            "/api/v1/tiers/{scope}",
            post(actions::set_tier).delete(actions::clear_tier),
        )
        .route("/api/v1/sla", get(sla::sla))
        .route("/api/v1/audit", get(audit::audit))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::require_token,
        ))
        .layer(DefaultBodyLimit::max(ACTION_BODY_MAX_BYTES))
        .layer(crate::trace_context::TraceContextLayer::new(
            state.node.id(),
            std::sync::Arc::clone(state.node.request_ids()),
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("this path")
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the node knows a leader and has applied what it has committed recently enough to
/// serve watches.
async fn readyz(State(app): State<AppState>) -> Response {
    let status = app.node.raft_status();
    match status.leader {
        Some(leader) => (StatusCode::OK, format!("ready (leader {leader})\n")).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader known\n",
        )
            .into_response(),
    }
}

/// The Prometheus text format, or OpenMetrics when the scraper asks for it.
async fn metrics_text(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(header::CONTENT_TYPE, metrics::OPENMETRICS_CONTENT_TYPE)],
            metrics::render_openmetrics(&app.node),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, metrics::TEXT_CONTENT_TYPE)],
            metrics::render(&app.node),
        )
            .into_response()
    }
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

async fn status(State(app): State<AppState>) -> Json<StatusJson> {
    let s = app.node.raft_status();
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

async fn breakers(State(app): State<AppState>, raw: RawParams) -> Result<Response, ApiError> {
    let params = Params::parse(raw, &["scope"])?;
    let read = app.node.state_machine().read();
    let core = read.core();
    let list: Vec<_> = core
        .breakers()
        .into_iter()
        .filter(|b| params.str("scope").is_none_or(|s| b.key.scope() == s))
        .collect();
    Ok(Json(serde_json::json!({
        "applied_index": read.applied_index(),
        "now_ms": core.now_ms(),
        "breakers": list,
    }))
    .into_response())
}

async fn tiers(State(app): State<AppState>) -> Response {
    let read = app.node.state_machine().read();
    let core = read.core();
    Json(serde_json::json!({
        "applied_index": read.applied_index(),
        "now_ms": core.now_ms(),
        "scopes": core.scopes(),
    }))
    .into_response()
}
