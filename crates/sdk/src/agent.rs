//! The background agent: the async loops around [`AgentState`].
//!
//! Three tasks run on the application's tokio runtime (so the same code runs on turmoil
//! hosts in simulation):
//!
//! - **tick**: every `report_interval`, advances the coarse clock, runs
//!   [`AgentState::tick`], wakes the report sender, and fires the probe RPCs it asks for;
//! - **report**: sends queued reports oldest first, one RPC at a time, each bounded by
//!   `rpc_timeout`, starting on the endpoint the instance id picks; a failure leaves the
//!   report queued (the queue is bounded) and moves to the next endpoint. An answer from the
//!   leader moves the reports to another endpoint too, at most once per cooldown (see
//!   [`crate::report_route`]);
//! - **probes** (one short task per request): `AcquireProbe` and `ReleaseProbe` go to the
//!   reports' endpoint, and a node that is gone (`UNAVAILABLE`, a deadline, a transport error)
//!   moves that shared endpoint on and the call is tried on the next one, at most once per
//!   endpoint: a half-open breaker must not wait for a report to find a live node;
//! - **watch**: follows `Watch` on one endpoint; when the stream fails, ends, or stays
//!   silent for `watch_idle_timeout`, it moves to the next endpoint after a backoff with
//!   full jitter (bounded by `watch_backoff.max`).
//!
//! All three stop when the last [`crate::Client`] clone is dropped. No application call
//! ever waits for any of them: they only publish into atomics.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_core::{InstanceId, ProbeOutcome};
use switchyard_proto::client as pb;
use switchyard_proto::client::client_client::ClientClient;
use tokio::sync::{Notify, watch};
use tokio::time::{MissedTickBehavior, timeout};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::agent_state::{AgentState, Published};
use crate::clock::{Clock, CoarseClock};
use crate::credentials::BearerToken;
use crate::metrics::SdkMetrics;
use crate::report_route::ReportRoute;
use crate::{ClientOptions, SmallRng};
use switchyard_proto::convert;

/// Everything the agent tasks and the client share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<AgentState>,
    pub(crate) published: Arc<Published>,
    pub(crate) metrics: SdkMetrics,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) coarse: CoarseClock,
    pub(crate) options: ClientOptions,
    pub(crate) instance: InstanceId,
    /// `(endpoint, channel)`; empty for a local-only client.
    pub(crate) channels: Vec<(String, Channel)>,
    pub(crate) report_ready: Notify,
    pub(crate) report_endpoint: AtomicUsize,
    /// When reports last moved off the leader (clock ms; [`NEVER`]: not yet).
    pub(crate) leader_left_at_ms: AtomicU64,
    pub(crate) rng: SmallRng,
    /// Attached to every call; `Debug` redacts it.
    pub(crate) token: BearerToken,
}

/// [`Shared::leader_left_at_ms`] before reports ever left the leader.
pub(crate) const NEVER: u64 = u64::MAX;

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, AgentState> {
        // A panic while holding the lock leaves consistent-enough state for a best-effort
        // agent; never propagate the poison to the application.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self, index: usize) -> ClientClient<InterceptedService<Channel, BearerToken>> {
        let (_, channel) = &self.channels[index % self.channels.len()];
        ClientClient::with_interceptor(channel.clone(), self.token.clone())
    }

    /// Moves the fleet calls' shared endpoint past `endpoint`, unless a concurrent failure
    /// already moved it (so two calls failing on one node skip one endpoint, not two).
    fn rotate_past(&self, endpoint: usize) {
        self.move_from(endpoint, endpoint.wrapping_add(1));
    }

    /// Moves the fleet calls' shared endpoint from `endpoint` to `next`, unless something
    /// else moved it first.
    fn move_from(&self, endpoint: usize, next: usize) {
        let _ = self
            .report_endpoint
            .compare_exchange(endpoint, next, Relaxed, Relaxed);
    }
}

/// Whether a failed probe call means the endpoint is gone (try the next one) rather than an
/// answer from a live cluster. `None`: the call timed out.
fn endpoint_gone(code: Option<tonic::Code>) -> bool {
    matches!(
        code,
        None | Some(
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unknown
                | tonic::Code::Cancelled
        )
    )
}

/// Starts the agent tasks on `handle`.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    handle: &tokio::runtime::Handle,
    shutdown: &watch::Sender<()>,
) {
    handle.spawn(tick_loop(Arc::clone(shared), shutdown.subscribe()));
    if !shared.channels.is_empty() {
        handle.spawn(report_loop(Arc::clone(shared), shutdown.subscribe()));
        handle.spawn(watch_loop(Arc::clone(shared), shutdown.subscribe()));
    }
}

async fn tick_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<()>) {
    let mut interval = tokio::time::interval(shared.options.report_interval);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now_ms = shared.clock.now_ms();
        shared.coarse.advance_to(now_ms);
        let (work, reports_waiting) = {
            let mut state = shared.lock();
            let work = state.tick(now_ms);
            (work, state.report_due())
        };
        if shared.channels.is_empty() {
            continue;
        }
        if reports_waiting {
            shared.report_ready.notify_one();
        }
        // Bounded: at most one acquire in flight per breaker (the `acquiring` flag), and
        // releases are bounded by the permits held.
        for key in work.acquire {
            tokio::spawn(acquire_probe(Arc::clone(&shared), key));
        }
        if !work.release.is_empty() {
            tokio::spawn(release_probes(Arc::clone(&shared), work.release));
        }
    }
}

async fn report_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<()>) {
    loop {
        tokio::select! {
            _ = shared.report_ready.notified() => {}
            _ = shutdown.changed() => return,
        }
        loop {
            let Some((seq, report)) = shared.lock().reports.take_front() else {
                break;
            };
            let endpoint = shared.report_endpoint.load(Relaxed);
            let mut client = shared.client(endpoint);
            match timeout(shared.options.rpc_timeout, client.report(report)).await {
                Ok(Ok(answer)) => {
                    let mut state = shared.lock();
                    state.reports.remove_sent(seq);
                    state.on_report_accepted(answer.get_ref().report_interval_ms);
                    drop(state);
                    shared.metrics.reports_sent.inc();
                    let now_ms = shared.clock.now_ms();
                    let left_at_ms = match shared.leader_left_at_ms.load(Relaxed) {
                        NEVER => None,
                        at => Some(at),
                    };
                    let answer = answer.get_ref();
                    let route = ReportRoute {
                        node_id: answer.node_id,
                        leader_id: answer.leader_id,
                        endpoints: shared.channels.len(),
                    };
                    if route.leave_leader(left_at_ms, now_ms) {
                        shared.leader_left_at_ms.store(now_ms, Relaxed);
                        let next = route.next_endpoint(endpoint, shared.rng.next_u64());
                        shared.move_from(endpoint, next);
                    }
                }
                Ok(Err(status)) => {
                    tracing::debug!(code = ?status.code(), message = status.message(), "report failed");
                    shared.metrics.report_failures.inc();
                    let mut state = shared.lock();
                    state.reports.unsent(seq);
                    match status.code() {
                        // The cluster will never accept this report: drop it, keep the rest.
                        tonic::Code::InvalidArgument => {
                            state.reports.remove_sent(seq);
                        }
                        // At a limit: keep it (it takes merges) and report less often.
                        tonic::Code::ResourceExhausted => state.on_report_refused(),
                        _ => {}
                    }
                    drop(state);
                    shared.rotate_past(endpoint);
                    break;
                }
                Err(_) => {
                    shared.metrics.report_failures.inc();
                    shared.lock().reports.unsent(seq);
                    shared.rotate_past(endpoint);
                    break;
                }
            }
        }
    }
}

async fn acquire_probe(shared: Arc<Shared>, key: String) {
    let request = pb::AcquireProbeRequest {
        key: key.clone(),
        instance: shared.instance.to_string(),
    };
    // `Some(release)`: granted (and maybe to be returned at once).
    let mut granted = None;
    for _ in 0..shared.channels.len() {
        let endpoint = shared.report_endpoint.load(Relaxed);
        let mut client = shared.client(endpoint);
        // The cluster granted the permit after this moment, so its lease ends no earlier than
        // `sent_ms + probe_lease_ms`: timing the local lease from here can never outlive the
        // cluster's, which would let a re-granted permit and this one run trial calls at once.
        let sent_ms = shared.clock.now_ms();
        let answer = timeout(
            shared.options.rpc_timeout,
            client.acquire_probe(request.clone()),
        )
        .await;
        let code = match answer {
            Ok(Ok(resp)) if resp.get_ref().granted => {
                granted = Some(shared.lock().on_probe_granted(
                    &key,
                    resp.get_ref().permit_id,
                    sent_ms,
                ));
                break;
            }
            Ok(Ok(resp)) => {
                tracing::debug!(key, reason = %resp.get_ref().reason, "probe permit refused");
                shared.lock().on_probe_refused(&key);
                return;
            }
            Ok(Err(status)) => Some(status.code()),
            Err(_) => None,
        };
        tracing::debug!(key, ?code, "probe permit request failed");
        if !endpoint_gone(code) {
            break;
        }
        shared.rotate_past(endpoint);
    }
    match granted {
        Some(Some(release)) => release_probes(shared, vec![release]).await,
        Some(None) => {}
        // Failed everywhere (or refused with an error): the next call asks again.
        None => shared.lock().on_probe_refused(&key),
    }
}

async fn release_probes(shared: Arc<Shared>, releases: Vec<(String, u64, ProbeOutcome)>) {
    for (key, permit_id, outcome) in releases {
        let request = pb::ReleaseProbeRequest {
            key,
            permit_id,
            outcome: convert::probe_outcome_to_wire(outcome),
        };
        // Best effort: an unreturned permit expires on the cluster after its lease.
        for _ in 0..shared.channels.len() {
            let endpoint = shared.report_endpoint.load(Relaxed);
            let mut client = shared.client(endpoint);
            let code = match timeout(
                shared.options.rpc_timeout,
                client.release_probe(request.clone()),
            )
            .await
            {
                Ok(Ok(_)) => break,
                Ok(Err(status)) => Some(status.code()),
                Err(_) => None,
            };
            tracing::debug!(key = request.key, ?code, "probe release failed");
            if !endpoint_gone(code) {
                break;
            }
            shared.rotate_past(endpoint);
        }
    }
}

async fn watch_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<()>) {
    let endpoints = shared.channels.len();
    let mut endpoint = (shared.rng.next_u64() as usize) % endpoints;
    let mut failures: u32 = 0;
    let mut first = true;
    loop {
        if !first {
            shared.metrics.watch_reconnects.inc();
        }
        first = false;
        let request = pb::WatchRequest {
            scopes: shared.options.watch_scopes.clone(),
            known_index: shared.lock().applied_index(),
        };
        let mut client = shared.client(endpoint);
        let stream = tokio::select! {
            r = timeout(shared.options.rpc_timeout, client.watch(request)) => r,
            _ = shutdown.changed() => return,
        };
        if let Ok(Ok(response)) = stream {
            let mut stream = response.into_inner();
            loop {
                let next = tokio::select! {
                    n = timeout(shared.options.watch_idle_timeout, stream.message()) => n,
                    _ = shutdown.changed() => return,
                };
                match next {
                    Ok(Ok(Some(event))) => {
                        failures = 0;
                        let now_ms = shared.clock.now_ms();
                        shared.lock().apply_event(event, now_ms);
                    }
                    Ok(Ok(None)) => break,
                    Ok(Err(status)) => {
                        tracing::debug!(code = ?status.code(), message = status.message(), "watch failed");
                        break;
                    }
                    Err(_) => {
                        tracing::debug!(endpoint = %shared.channels[endpoint].0, "watch idle, reconnecting");
                        break;
                    }
                }
            }
        }
        endpoint = (endpoint + 1) % endpoints;
        let delay = shared.options.watch_backoff.delay(failures, &shared.rng);
        failures = failures.saturating_add(1).min(16);
        tokio::select! {
            _ = tokio::time::sleep(delay.max(Duration::from_millis(1))) => {}
            _ = shutdown.changed() => return,
        }
    }
}
