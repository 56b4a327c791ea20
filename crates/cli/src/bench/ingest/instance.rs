//! One simulated SDK instance of `bench ingest`: a task that sends the reports its
//! [`ReportPacer`] makes due and tells it the answers.

use std::time::{Duration, Instant};

use switchyard_proto::client::{BreakerDelta, LatencyBucket, ReportRequest};
use switchyard_sdk::report_route::ReportRoute;
use tonic::transport::Channel;

use super::pacer::{Evidence, LATENCY_BUCKET, ReportPacer};
use super::wire::{self, ReportTemplate};
use crate::bench::accounting::{self, ErrorsByCode};

/// The Report of `instance` carrying `evidence` for each of its `breakers`.
pub fn report(instance: u32, breakers: u32, evidence: Evidence) -> ReportRequest {
    ReportRequest {
        instance: format!("bench-{instance}"),
        deltas: (0..breakers)
            .map(|b| BreakerDelta {
                key: format!("fleet/b{b}"),
                calls: evidence.calls,
                failures: evidence.failures,
                slow: 0,
                rejected: 0,
                latency: vec![LatencyBucket {
                    index: LATENCY_BUCKET,
                    count: evidence.latency_count,
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// The run's timeline, shared by every instance.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// Time 0 of every pacer.
    pub start: Instant,
    /// The measured seconds start here (after the warm-up).
    pub measure_from: Instant,
    /// Calls stop accruing and no report is started from here.
    pub end: Instant,
}

impl Timeline {
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_millis() as u64
    }
}

/// What one instance did over the run.
#[derive(Debug, Default)]
pub struct InstanceRun {
    /// Latency of the reports accepted in the measured seconds, µs.
    pub samples_us: Vec<u64>,
    /// Calls per breaker those reports carried.
    pub calls_accepted_measured: u64,
    /// Reports started in the measured seconds (accepted or not).
    pub reports_sent_measured: u64,
    /// Reports the leader itself answered in the measured seconds.
    pub answered_by_leader_measured: u64,
    /// Failed reports in the measured seconds, by code.
    pub errors: ErrorsByCode,
    /// Failed reports over the whole run, by code.
    pub errors_whole_run: ErrorsByCode,
    /// Calls per breaker accrued over the whole run.
    pub offered: Evidence,
    /// Calls per breaker accrued and never accepted (still held at the end).
    pub held: Evidence,
    /// The interval in force at the end, ms.
    pub interval_ms: u64,
}

/// Runs instance `instance` (of `breakers` breakers) until `timeline.end`: its reports go to
/// `channels[start]` (one channel per node), moving to another node as the SDK does when the
/// leader answers (see `switchyard_sdk::report_route`).
pub async fn run(
    channels: Vec<Channel>,
    start: usize,
    instance: u32,
    breakers: u32,
    mut pacer: ReportPacer,
    timeline: Timeline,
) -> InstanceRun {
    let mut template = ReportTemplate::new(instance, breakers);
    let mut node = start % channels.len();
    let mut left_leader_at_ms = None;
    let mut run = InstanceRun::default();
    while let Some(due_ms) = pacer.due_ms() {
        tokio::time::sleep_until((timeline.start + Duration::from_millis(due_ms)).into()).await;
        let sent = Instant::now();
        let Some(evidence) = pacer.take(timeline.ms(sent)) else {
            continue;
        };
        let result = wire::send(&channels[node], template.encode(evidence)).await;
        let done = Instant::now();
        let measured = sent >= timeline.measure_from && sent < timeline.end;
        run.reports_sent_measured += u64::from(measured);
        match result {
            Ok(answer) => {
                let answer = answer.get_ref();
                pacer.accepted(answer.report_interval_ms);
                let by_leader = answer.node_id != 0 && answer.node_id == answer.leader_id;
                let counted = measured && done <= timeline.end;
                run.answered_by_leader_measured += u64::from(counted && by_leader);
                let route = ReportRoute {
                    node_id: answer.node_id,
                    leader_id: answer.leader_id,
                    endpoints: channels.len(),
                };
                let now_ms = timeline.ms(done);
                if route.leave_leader(left_leader_at_ms, now_ms) {
                    left_leader_at_ms = Some(now_ms);
                    node = route.next_endpoint(node, u64::from(instance));
                }
                if measured && done <= timeline.end {
                    run.samples_us.push((done - sent).as_micros() as u64);
                    run.calls_accepted_measured += evidence.calls;
                }
            }
            Err(status) => {
                if status.code() == tonic::Code::ResourceExhausted {
                    pacer.refused();
                } else {
                    pacer.failed();
                }
                accounting::count_error(&mut run.errors_whole_run, &status);
                if measured && done <= timeline.end {
                    accounting::count_error(&mut run.errors, &status);
                }
            }
        }
    }
    // The calls of the intervals after the last report started, up to the end.
    pacer.accrue(timeline.ms(timeline.end));
    run.offered = pacer.offered();
    run.held = pacer.held();
    run.interval_ms = pacer.interval_ms();
    run
}
