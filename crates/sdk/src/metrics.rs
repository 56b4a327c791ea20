//! Prometheus metrics of the SDK (`prometheus-client`), names prefixed `switchyard_sdk_`.
//!
//! The hot path never touches these: a `Family` lookup hashes labels and takes a lock.
//! Calls and rejections are counted in the breaker's striped atomics, and retry verdicts in
//! its fleet retry cell, and added to these counters by the agent once per report interval,
//! so the metrics lag by at most `report_interval`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{Mode, RejectReason, RetryBudgetSource};

/// Labels of per-breaker series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    /// The breaker key.
    pub key: String,
}

/// Labels of rejection series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// The breaker key.
    pub key: String,
    /// The [`RejectReason`] name.
    pub reason: String,
}

/// Labels of retry budget series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    /// The breaker key.
    pub key: String,
    /// The [`RetryBudgetSource`] name: `fleet` or `local`.
    pub source: String,
}

/// Labels of the mode series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    /// The [`Mode`] name.
    pub mode: String,
}

/// Every metric of one client. Clones share the same series.
#[derive(Debug, Clone, Default)]
pub struct SdkMetrics {
    /// Calls admitted and recorded, per breaker.
    pub calls_allowed: Family<KeyLabels, Counter>,
    /// Calls rejected, per breaker and reason.
    pub calls_rejected: Family<RejectLabels, Counter>,
    /// 1 for the current mode, 0 for the others.
    pub mode: Family<ModeLabels, Gauge>,
    /// Report RPCs acknowledged by the cluster.
    pub reports_sent: Counter,
    /// Report RPCs that failed (the report stays queued).
    pub report_failures: Counter,
    /// Reports dropped because the queue was full.
    pub reports_dropped: Counter,
    /// Breaker deltas inside the dropped reports.
    pub report_deltas_dropped: Counter,
    /// Watch streams (re)opened after the first.
    pub watch_reconnects: Counter,
    /// Report RPCs refused at a cluster limit (`RESOURCE_EXHAUSTED`; the report stays queued).
    pub reports_refused: Counter,
    /// The report interval in force, ms (wider than configured under back-pressure).
    pub report_interval_seconds: Gauge<f64, AtomicU64>,
    /// The applied index of the decisions in force.
    pub applied_index: Gauge<u64, AtomicU64>,
    /// Probe permits granted to this instance by the cluster.
    pub probe_permits_granted: Counter,
    /// Retries a retry budget allowed, per breaker and budget source.
    pub retries_allowed: Family<RetryLabels, Counter>,
    /// Retries a retry budget refused, per breaker and budget source.
    pub retries_denied: Family<RetryLabels, Counter>,
    /// 1 for the budget source retries through the breaker use now, 0 for the other (only for
    /// breakers whose calls used a retry budget).
    pub retry_budget_source: Family<RetryLabels, Gauge>,
}

impl SdkMetrics {
    /// Registers every series in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("switchyard_sdk");
        r.register(
            "calls_allowed",
            "Calls admitted and recorded",
            self.calls_allowed.clone(),
        );
        r.register(
            "calls_rejected",
            "Calls rejected, by reason",
            self.calls_rejected.clone(),
        );
        r.register(
            "mode",
            "1 for the SDK's current fail-static mode",
            self.mode.clone(),
        );
        r.register(
            "reports_sent",
            "Report RPCs acknowledged",
            self.reports_sent.clone(),
        );
        r.register(
            "report_failures",
            "Report RPCs that failed",
            self.report_failures.clone(),
        );
        r.register(
            "reports_dropped",
            "Reports dropped (queue full)",
            self.reports_dropped.clone(),
        );
        r.register(
            "report_deltas_dropped",
            "Breaker deltas in dropped reports",
            self.report_deltas_dropped.clone(),
        );
        r.register(
            "reports_refused",
            "Report RPCs refused at a cluster limit (RESOURCE_EXHAUSTED)",
            self.reports_refused.clone(),
        );
        r.register(
            "report_interval_seconds",
            "Report interval in force, in seconds (wider than configured under back-pressure)",
            self.report_interval_seconds.clone(),
        );
        r.register(
            "watch_reconnects",
            "Watch streams reopened",
            self.watch_reconnects.clone(),
        );
        r.register(
            "applied_index",
            "Applied index of the decisions in force",
            self.applied_index.clone(),
        );
        r.register(
            "probe_permits_granted",
            "Probe permits granted by the cluster",
            self.probe_permits_granted.clone(),
        );
        r.register(
            "retries_allowed",
            "Retries allowed by a retry budget, by budget source",
            self.retries_allowed.clone(),
        );
        r.register(
            "retries_denied",
            "Retries refused by a retry budget, by budget source",
            self.retries_denied.clone(),
        );
        r.register(
            "retry_budget_source",
            "1 for the retry budget (fleet or local) in force for the breaker",
            self.retry_budget_source.clone(),
        );
    }

    /// Adds retry verdicts (`[source][allowed]`, as the fleet retry cell counts them).
    pub(crate) fn add_retry_verdicts(&self, key: &str, verdicts: &[[u64; 2]; 2]) {
        for source in RetryBudgetSource::ALL {
            let [denied, allowed] = verdicts[source as usize];
            let labels = || RetryLabels {
                key: key.to_owned(),
                source: source.as_str().to_owned(),
            };
            if allowed > 0 {
                self.retries_allowed
                    .get_or_create(&labels())
                    .inc_by(allowed);
            }
            if denied > 0 {
                self.retries_denied.get_or_create(&labels()).inc_by(denied);
            }
        }
    }

    pub(crate) fn set_retry_budget_source(&self, key: &str, in_force: RetryBudgetSource) {
        for source in RetryBudgetSource::ALL {
            let labels = RetryLabels {
                key: key.to_owned(),
                source: source.as_str().to_owned(),
            };
            self.retry_budget_source
                .get_or_create(&labels)
                .set(i64::from(source == in_force));
        }
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        for m in Mode::ALL {
            let labels = ModeLabels {
                mode: m.as_str().to_owned(),
            };
            self.mode.get_or_create(&labels).set(i64::from(m == mode));
        }
    }

    pub(crate) fn add_calls(&self, key: &str, allowed: u64, rejected: &[u64; RejectReason::COUNT]) {
        if allowed > 0 {
            self.calls_allowed
                .get_or_create(&KeyLabels {
                    key: key.to_owned(),
                })
                .inc_by(allowed);
        }
        for (reason, &n) in RejectReason::ALL.iter().zip(rejected) {
            if n > 0 {
                let labels = RejectLabels {
                    key: key.to_owned(),
                    reason: reason.as_str().to_owned(),
                };
                self.calls_rejected.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// The metrics in the Prometheus text format (for tests and simple exporters).
    pub fn encode_text(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}
