//! The client service the SDKs call: Report, Watch, AcquireProbe, ReleaseProbe.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::Stream;
use switchyard_core::{Actor, Command, Effect};
use switchyard_proto::client::{self as pb, client_server};
use switchyard_proto::convert::{self, AcquireProbe, ReleaseProbe, Report};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::error::LimitName;
use crate::ingest::ReportRateGate;
use crate::node::Node;
use crate::report_pacing;
use crate::watch::{STREAM_BUFFER, ScopeFilter, run_stream};

/// Serves SDK calls on one node.
#[derive(Debug, Clone)]
pub struct ClientService {
    node: Node,
    /// Per-instance report rate, checked before any other work on a report.
    rate: Arc<ReportRateGate>,
}

impl ClientService {
    /// The service for `node`.
    pub fn new(node: Node) -> Self {
        let rate = Arc::new(ReportRateGate::new(
            node.config().limits.report_rate_per_instance_max,
        ));
        Self { node, rate }
    }

    pub(super) fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.node.tokens().check(Role::Client, request.metadata())
    }

    /// An authorized Report call from `instance` with `deltas` deltas, whatever decoded its top
    /// level; `decode` validates the whole report. Cheapest refusals first: a flooding instance
    /// costs one hash lookup (see `ReportRateGate`), an oversized batch one comparison, and
    /// neither decodes a delta.
    pub(super) async fn accept_report(
        &self,
        instance: &str,
        deltas: usize,
        decode: impl FnOnce() -> Result<Report, Status>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let now_ms = self.node.clock().now_ms();
        let refused = &self.node.counters().deltas_refused;
        let calls_this_second = match self.rate.admit(instance, now_ms) {
            Ok(calls) => calls,
            Err(e) => {
                refused.add_error(&e, deltas as u64);
                return Err(e.into());
            }
        };
        let limit = self.node.config().limits.report_deltas_max as usize;
        if deltas > limit {
            refused.add(LimitName::ReportDeltasMax, deltas as u64);
            return Err(Status::resource_exhausted(format!(
                "`deltas`: {deltas} deltas in one report, over the limit of {limit} \
                 (`limits.report_deltas_max`)"
            )));
        }
        let report = decode()?;
        let accepted = self
            .node
            .report(report.instance.as_str(), report.deltas)
            .await?;
        let rate_max = self.node.config().limits.report_rate_per_instance_max;
        Ok(Response::new(pb::ReportResponse {
            accepted_deltas: accepted,
            leader_id: self.node.current_leader().unwrap_or(0),
            report_interval_ms: self
                .node
                .report_interval_advice_ms()
                .max(report_pacing::rate_advice_ms(calls_this_second, rate_max)),
            node_id: self.node.id(),
        }))
    }
}

fn invalid(e: &switchyard_core::ValidationError) -> Status {
    convert::status_from_validation(e)
}

/// Decrements the open-stream gauge when a Watch stream ends.
struct StreamSlot(Node);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0
            .counters()
            .watch_streams
            .fetch_sub(1, Ordering::Relaxed);
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl client_server::Client for ClientService {
    /// Report through the generated codec: what serves it in a node is `ClientRoutes`, which
    /// reads the same message with `ReportWire` and answers it the same way.
    async fn report(
        &self,
        request: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let (instance, deltas) = (request.instance.clone(), request.deltas.len());
        self.accept_report(&instance, deltas, move || {
            Report::try_from(request).map_err(|e| invalid(&e))
        })
        .await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.authorize(&request)?;
        let scopes = convert::watch_scopes(request.get_ref()).map_err(|e| invalid(&e))?;
        let max = u64::from(self.node.config().limits.watch_streams_max);
        let open = self
            .node
            .counters()
            .watch_streams
            .fetch_add(1, Ordering::Relaxed);
        let slot = StreamSlot(self.node.clone());
        if open >= max {
            return Err(Status::resource_exhausted(format!(
                "watch streams on this node over the limit of {max}; connect to another node"
            )));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let node = self.node.clone();
        tokio::spawn(async move {
            let _slot = slot;
            run_stream(node, ScopeFilter::new(scopes), tx).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn acquire_probe(
        &self,
        request: Request<pb::AcquireProbeRequest>,
    ) -> Result<Response<pb::AcquireProbeResponse>, Status> {
        self.authorize(&request)?;
        let probe = AcquireProbe::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let actor = Actor::Instance(probe.instance.clone());
        let command = Command::AcquireProbe {
            key: probe.key.clone(),
            instance: probe.instance,
        };
        let response = self.node.write(actor, command).await?;
        let effects = response
            .outcome
            .as_ref()
            .map(|a| a.effects.as_slice())
            .unwrap_or(&[]);
        let mut answer = pb::AcquireProbeResponse {
            granted: false,
            permit_id: 0,
            expires_at_ms: 0,
            reason: "no probe decision was recorded".into(),
            applied_index: response.index,
        };
        for effect in effects {
            match effect {
                Effect::ProbeGranted {
                    key,
                    permit_id,
                    expires_at_ms,
                    ..
                } if *key == probe.key => {
                    answer.granted = true;
                    answer.permit_id = *permit_id;
                    answer.expires_at_ms = *expires_at_ms;
                    answer.reason = "granted".into();
                }
                Effect::ProbeDenied { key, reason, .. } if *key == probe.key => {
                    answer.reason.clone_from(reason);
                }
                _ => {}
            }
        }
        Ok(Response::new(answer))
    }

    async fn release_probe(
        &self,
        request: Request<pb::ReleaseProbeRequest>,
    ) -> Result<Response<pb::ReleaseProbeResponse>, Status> {
        self.authorize(&request)?;
        let release = ReleaseProbe::try_from(request.into_inner()).map_err(|e| invalid(&e))?;
        let command = Command::ReleaseProbe {
            key: release.key,
            permit_id: release.permit_id,
            outcome: release.outcome,
        };
        let response = self.node.write(Actor::Policy, command).await?;
        Ok(Response::new(pb::ReleaseProbeResponse {
            applied_index: response.index,
        }))
    }
}
