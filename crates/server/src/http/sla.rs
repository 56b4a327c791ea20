//! `GET /api/v1/sla`: SLA reports as JSON.
//!
//! ```text
//! GET /api/v1/sla?window=24h|7d|30d|mtd&key=KEY&after_key=KEY&limit=N&local=true
//! ```
//!
//! Reports are computed from the replicated hourly aggregates at the state's own time
//! (`now_ms`, the largest time stamped on an applied entry), never at this node's wall clock,
//! so two nodes that have applied the same index return the same JSON byte for byte. The read
//! is linearizable (the node first catches up with the leader's commit index) unless `local`.
//! Without `key`, one page of at most [`SLA_PAGE_MAX`] breakers is returned in key order;
//! `next_after_key` continues it.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use switchyard_core::{BreakerKey, SlaReport, SlaWindow, Slo};

use super::AppState;
use super::api_error::ApiError;
use super::params::{Params, RawParams};

/// Most reports one request returns.
pub const SLA_PAGE_MAX: u64 = 1_000;
/// Reports returned when `limit` is not given.
pub const SLA_PAGE_DEFAULT: u64 = 100;

/// The response body.
#[derive(Debug, Serialize)]
pub struct SlaResponse {
    /// The applied log index the reports were computed at.
    pub applied_index: u64,
    /// The window.
    pub window: SlaWindow,
    /// The state's time the reports end at, ms since the Unix epoch.
    pub now_ms: u64,
    /// The objectives the reports were checked against (cluster settings).
    pub slo: Slo,
    /// One report per breaker, in key order.
    pub reports: Vec<SlaReport>,
    /// Pass as `after_key` for the next page; absent on the last page.
    pub next_after_key: Option<String>,
}

fn key_param(params: &Params, name: &str) -> Result<Option<BreakerKey>, ApiError> {
    params
        .str(name)
        .map(|k| BreakerKey::parse(k).map_err(|e| ApiError::invalid(name, e.rule)))
        .transpose()
}

/// `GET /api/v1/sla`.
pub async fn sla(
    State(app): State<AppState>,
    raw: RawParams,
) -> Result<Json<SlaResponse>, ApiError> {
    let params = Params::parse(raw, &["window", "key", "after_key", "limit", "local"])?;
    let window = match params.str("window") {
        None => SlaWindow::Day,
        Some(w) => SlaWindow::parse(w).map_err(|e| ApiError::validation(&e))?,
    };
    let key = key_param(&params, "key")?;
    let after_key = key_param(&params, "after_key")?;
    let limit = params.u64("limit")?.unwrap_or(SLA_PAGE_DEFAULT);
    if !(1..=SLA_PAGE_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {SLA_PAGE_MAX}, got {limit}"),
        ));
    }
    app.node.read_barrier(params.flag("local")?).await?;

    let read = app.node.state_machine().read();
    let core = read.core();
    let now_ms = core.now_ms();
    let (reports, next_after_key) = match key {
        Some(key) => {
            let report = core
                .sla_report(&key, window, now_ms)
                .ok_or_else(|| ApiError::not_found(format!("breaker `{key}`")))?;
            (vec![report], None)
        }
        None => {
            let keys: Vec<BreakerKey> = core
                .breakers()
                .into_iter()
                .map(|b| b.key)
                .filter(|k| after_key.as_ref().is_none_or(|after| k > after))
                .take(limit as usize + 1)
                .collect();
            let more = keys.len() > limit as usize;
            let reports: Vec<SlaReport> = keys
                .iter()
                .take(limit as usize)
                .filter_map(|k| core.sla_report(k, window, now_ms))
                .collect();
            let next = more
                .then(|| reports.last().map(|r| r.key.to_string()))
                .flatten();
            (reports, next)
        }
    };
    Ok(Json(SlaResponse {
        applied_index: read.applied_index(),
        window,
        now_ms,
        slo: core.settings().slo.clone(),
        reports,
        next_after_key,
    }))
}
