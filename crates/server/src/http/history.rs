//! [`BreakerHistory`]: recent per-breaker samples for the dashboard's charts, and
//! `GET /api/v1/breakers/{scope}/{name}/history`.
//!
//! The replicated SLA aggregates have one-hour resolution, too coarse to watch an incident
//! unfold, so each node samples its own applied state every [`HISTORY_INTERVAL_MS`]: per
//! breaker, the state, the calls and failures in the breaker's sliding window, the window's
//! availability and its p50/p95/p99 latency. The samples live only in this node's memory
//! (they are a view, not state: they start empty after a restart and differ slightly between
//! nodes), bounded to [`HISTORY_SAMPLES_MAX`] per breaker and [`HISTORY_BREAKERS_MAX`]
//! breakers (the first in key order).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use switchyard_core::{BreakerKey, BreakerState};

use super::AppState;
use super::api_error::ApiError;
use crate::node::Node;

/// How often the sampler reads the applied state, ms.
pub const HISTORY_INTERVAL_MS: u64 = 1_000;
/// Samples kept per breaker (five minutes at one per second).
pub const HISTORY_SAMPLES_MAX: usize = 300;
/// Breakers sampled at most.
pub const HISTORY_BREAKERS_MAX: usize = 500;

/// One sample of one breaker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// When it was taken, ms since the Unix epoch (this node's clock).
    pub at_ms: u64,
    /// The breaker's state.
    pub state: BreakerState,
    /// Completed calls in the window.
    pub window_calls: u64,
    /// Failed calls in the window.
    pub window_failures: u64,
    /// `(calls - failures) / calls`; absent with no calls.
    pub availability_ratio: Option<f64>,
    /// Window latency quantiles, ms; absent with no latencies.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
}

/// Per-breaker rings of samples. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct BreakerHistory {
    rings: Arc<Mutex<BTreeMap<BreakerKey, VecDeque<Sample>>>>,
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct HistoryResponse {
    /// The breaker.
    pub key: BreakerKey,
    /// Sampling interval, ms.
    pub interval_ms: u64,
    /// Samples, oldest first.
    pub samples: Vec<Sample>,
}

impl BreakerHistory {
    /// Samples `node` every [`HISTORY_INTERVAL_MS`] until it shuts down.
    pub fn spawn_sampler(&self, node: Node) {
        let history = self.clone();
        tokio::spawn(async move {
            let mut shutdown = node.shutdown_signal();
            let mut interval = tokio::time::interval(Duration::from_millis(HISTORY_INTERVAL_MS));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = interval.tick() => history.sample(&node),
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// Takes one sample of every breaker (up to the limit).
    pub fn sample(&self, node: &Node) {
        let wall_ms = node.clock().now_ms();
        let samples: Vec<(BreakerKey, Sample)> = {
            let read = node.state_machine().read();
            let core = read.core();
            // Windows age with the wall clock between ticks, but never before the state's time.
            let now_ms = wall_ms.max(core.now_ms());
            core.breakers()
                .into_iter()
                .take(HISTORY_BREAKERS_MAX)
                .filter_map(|view| {
                    let machine = core.breaker_machine(&view.key)?;
                    let totals = machine.window_totals(now_ms);
                    let latency = machine.window_latency(now_ms);
                    let q = |q: f64| latency.quantile_us(q).map(|us| us as f64 / 1000.0);
                    let availability_ratio = (totals.calls > 0).then(|| {
                        totals.calls.saturating_sub(totals.failures) as f64 / totals.calls as f64
                    });
                    Some((
                        view.key,
                        Sample {
                            at_ms: wall_ms,
                            state: view.state,
                            window_calls: totals.calls,
                            window_failures: totals.failures,
                            availability_ratio,
                            p50_ms: q(0.50),
                            p95_ms: q(0.95),
                            p99_ms: q(0.99),
                        },
                    ))
                })
                .collect()
        };
        let live: BTreeSet<&BreakerKey> = samples.iter().map(|(k, _)| k).collect();
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.retain(|key, _| live.contains(key));
        drop(live);
        for (key, sample) in samples {
            let ring = rings.entry(key).or_default();
            if ring.len() >= HISTORY_SAMPLES_MAX {
                ring.pop_front();
            }
            ring.push_back(sample);
        }
    }

    /// The samples of `key`, oldest first.
    pub fn samples(&self, key: &BreakerKey) -> Vec<Sample> {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings
            .get(key)
            .map(|ring| ring.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// `GET /api/v1/breakers/{scope}/{name}/history`.
pub async fn history(
    State(app): State<AppState>,
    Path((scope, name)): Path<(String, String)>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let key = BreakerKey::parse(&format!("{scope}/{name}"))
        .map_err(|e| ApiError::invalid("key", e.rule))?;
    if app
        .node
        .state_machine()
        .read()
        .core()
        .breaker(&key)
        .is_none()
    {
        return Err(ApiError::not_found(format!("breaker `{key}`")));
    }
    let samples = app.history.samples(&key);
    Ok(Json(HistoryResponse {
        key,
        interval_ms: HISTORY_INTERVAL_MS,
        samples,
    }))
}
