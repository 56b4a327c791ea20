//! The applied state's metrics: breakers, their 24 h SLA figures, scopes and tiers, the audit
//! trail. Computed from the replicated state at the state's own time, so every node exports
//! the same values (see the parent module's table).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use switchyard_core::{BreakerState, SlaReport, SlaWindow, Tier};

use super::{SLA_METRICS_BREAKERS_MAX, as_i64, counter, gauge, seconds};
use crate::node::Node;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerStateLabels {
    key: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyWindowLabels {
    key: String,
    window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PercentileLabels {
    key: String,
    window: String,
    percentile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreachLabels {
    key: String,
    window: String,
    objective: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Per-breaker gauges.
#[derive(Default)]
struct BreakerFamilies {
    state: Family<BreakerStateLabels, Gauge>,
    open: Family<KeyLabels, Gauge>,
    since: Family<KeyLabels, FloatGauge>,
    window_calls: Family<KeyLabels, Gauge>,
    window_failures: Family<KeyLabels, Gauge>,
    window_slow: Family<KeyLabels, Gauge>,
    window_instances: Family<KeyLabels, Gauge>,
    consecutive_opens: Family<KeyLabels, Gauge>,
    probes_in_use: Family<KeyLabels, Gauge>,
    probes_max: Family<KeyLabels, Gauge>,
}

/// Per-breaker SLA gauges over one window.
#[derive(Default)]
struct SlaFamilies {
    calls: Family<KeyWindowLabels, Gauge>,
    failures: Family<KeyWindowLabels, Gauge>,
    slow: Family<KeyWindowLabels, Gauge>,
    rejected: Family<KeyWindowLabels, Gauge>,
    availability: Family<KeyWindowLabels, FloatGauge>,
    error: Family<KeyWindowLabels, FloatGauge>,
    latency: Family<PercentileLabels, FloatGauge>,
    last_success: Family<KeyLabels, FloatGauge>,
    breach: Family<BreachLabels, Gauge>,
}

impl SlaFamilies {
    fn record(&self, report: &SlaReport) {
        let key = report.key.to_string();
        let window = report.window.as_str().to_owned();
        let kw = KeyWindowLabels {
            key: key.clone(),
            window: window.clone(),
        };
        self.calls.get_or_create(&kw).set(as_i64(report.calls));
        self.failures
            .get_or_create(&kw)
            .set(as_i64(report.failures));
        self.slow.get_or_create(&kw).set(as_i64(report.slow));
        self.rejected
            .get_or_create(&kw)
            .set(as_i64(report.rejected));
        self.availability
            .get_or_create(&kw)
            .set(report.availability_percent / 100.0);
        self.error
            .get_or_create(&kw)
            .set(report.error_rate_percent / 100.0);
        for (percentile, value_ms) in [
            ("50", report.p50_ms),
            ("95", report.p95_ms),
            ("99", report.p99_ms),
        ] {
            if let Some(ms) = value_ms {
                self.latency
                    .get_or_create(&PercentileLabels {
                        key: key.clone(),
                        window: window.clone(),
                        percentile: percentile.into(),
                    })
                    .set(ms / 1000.0);
            }
        }
        if let Some(at_ms) = report.last_success_ms {
            self.last_success
                .get_or_create(&KeyLabels { key: key.clone() })
                .set(seconds(at_ms));
        }
        for objective in switchyard_core::SLA_OBJECTIVES {
            let breached = report.breaches.iter().any(|b| b.objective == objective);
            self.breach
                .get_or_create(&BreachLabels {
                    key: key.clone(),
                    window: window.clone(),
                    objective: objective.into(),
                })
                .set(i64::from(breached));
        }
    }
}

pub(super) fn register_state(registry: &mut Registry, node: &Node) {
    let breaker = BreakerFamilies::default();
    let sla = SlaFamilies::default();
    let scope_tier: Family<ScopeLabels, Gauge> = Family::default();
    let scope_degraded: Family<ScopeLabels, Gauge> = Family::default();
    let scope_pinned: Family<ScopeLabels, Gauge> = Family::default();
    // One short read of the applied state; the families are filled from owned views after it.
    let (views, scopes, now_ms, audit_events, audit_dropped, state_dropped) = {
        let read = node.state_machine().read();
        let core = read.core();
        let now_ms = core.now_ms();
        let breakers = core.breakers();
        for b in breakers.iter().take(SLA_METRICS_BREAKERS_MAX) {
            if let Some(report) = core.sla_report(&b.key, SlaWindow::Day, now_ms) {
                sla.record(&report);
            }
        }
        (
            breakers,
            core.scopes(),
            now_ms,
            core.audit().len(),
            core.audit().dropped(),
            core.dropped_deltas(),
        )
    };
    let unreported = views.len().saturating_sub(SLA_METRICS_BREAKERS_MAX);
    for b in &views {
        for state in BreakerState::ALL {
            breaker
                .state
                .get_or_create(&BreakerStateLabels {
                    key: b.key.to_string(),
                    state: state.as_str().into(),
                })
                .set(i64::from(b.state == state));
        }
        let key = KeyLabels {
            key: b.key.to_string(),
        };
        breaker
            .open
            .get_or_create(&key)
            .set(i64::from(b.state.is_open_like()));
        breaker.since.get_or_create(&key).set(seconds(b.since_ms));
        breaker
            .window_calls
            .get_or_create(&key)
            .set(as_i64(b.window_calls));
        breaker
            .window_failures
            .get_or_create(&key)
            .set(as_i64(b.window_failures));
        breaker
            .window_slow
            .get_or_create(&key)
            .set(as_i64(b.window_slow));
        breaker
            .window_instances
            .get_or_create(&key)
            .set(i64::from(b.window_instances));
        breaker
            .consecutive_opens
            .get_or_create(&key)
            .set(i64::from(b.consecutive_opens));
        breaker
            .probes_in_use
            .get_or_create(&key)
            .set(i64::from(b.probe_permits_in_use));
        breaker
            .probes_max
            .get_or_create(&key)
            .set(i64::from(b.policy.probe_permits));
    }
    let mut degraded = 0_i64;
    for s in &scopes {
        let labels = ScopeLabels {
            scope: s.scope.to_string(),
        };
        scope_tier
            .get_or_create(&labels)
            .set(i64::from(s.tier.number()));
        scope_degraded
            .get_or_create(&labels)
            .set(i64::from(s.tier > Tier::Full));
        scope_pinned
            .get_or_create(&labels)
            .set(i64::from(s.override_tier.is_some()));
        degraded += i64::from(s.tier > Tier::Full);
    }

    gauge(
        registry,
        "breakers",
        "Breakers known to the cluster",
        as_i64(views.len() as u64),
    );
    registry.register(
        "breaker_state",
        "1 for the breaker's current state, 0 for the others",
        breaker.state,
    );
    registry.register(
        "breaker_open",
        "1 while the breaker rejects calls (OPEN, HALF_OPEN or FORCED_OPEN)",
        breaker.open,
    );
    registry.register(
        "breaker_state_since_timestamp_seconds",
        "When the breaker entered its current state, seconds since the Unix epoch",
        breaker.since,
    );
    registry.register(
        "breaker_window_calls",
        "Calls in the breaker's current window",
        breaker.window_calls,
    );
    registry.register(
        "breaker_window_failures",
        "Failed calls in the breaker's current window",
        breaker.window_failures,
    );
    registry.register(
        "breaker_window_slow",
        "Slow calls in the breaker's current window",
        breaker.window_slow,
    );
    registry.register(
        "breaker_window_instances",
        "Instances that reported in the breaker's current window",
        breaker.window_instances,
    );
    registry.register(
        "breaker_consecutive_opens",
        "Opens since the breaker last closed",
        breaker.consecutive_opens,
    );
    registry.register(
        "breaker_probe_permits_in_use",
        "Half-open probe permits granted and not yet returned or expired",
        breaker.probes_in_use,
    );
    registry.register(
        "breaker_probe_permits_max",
        "Probe permits the breaker's policy allows at once",
        breaker.probes_max,
    );
    registry.register(
        "breaker_sla_calls",
        "Completed calls over the SLA window",
        sla.calls,
    );
    registry.register(
        "breaker_sla_failures",
        "Failed calls over the SLA window",
        sla.failures,
    );
    registry.register(
        "breaker_sla_slow",
        "Slow calls over the SLA window",
        sla.slow,
    );
    registry.register(
        "breaker_sla_rejected",
        "Calls rejected by the open breaker over the SLA window",
        sla.rejected,
    );
    registry.register(
        "breaker_sla_availability_ratio",
        "Successful calls / calls over the SLA window (1 with no calls)",
        sla.availability,
    );
    registry.register(
        "breaker_sla_error_ratio",
        "Failed calls / calls over the SLA window (0 with no calls)",
        sla.error,
    );
    registry.register(
        "breaker_sla_latency_seconds",
        "Call latency percentiles (50, 95, 99) over the SLA window",
        sla.latency,
    );
    registry.register(
        "breaker_last_success_timestamp_seconds",
        "Last time a successful call was reported, seconds since the Unix epoch",
        sla.last_success,
    );
    registry.register(
        "sla_breach",
        "1 while the breaker misses the cluster's SLO for this objective over the window",
        sla.breach,
    );
    gauge(
        registry,
        "sla_breakers_unreported",
        "Breakers left out of the per-breaker SLA gauges by the per-scrape limit",
        as_i64(unreported as u64),
    );
    gauge(
        registry,
        "scopes",
        "Scopes known to the cluster",
        as_i64(scopes.len() as u64),
    );
    registry.register(
        "scope_tier",
        "Degradation tier per scope (1 FULL .. 5 MAINTENANCE)",
        scope_tier,
    );
    registry.register(
        "scope_degraded",
        "1 while the scope's tier is worse than FULL",
        scope_degraded,
    );
    registry.register(
        "scope_tier_pinned",
        "1 while an operator pins the scope's tier",
        scope_pinned,
    );
    gauge(
        registry,
        "scopes_degraded",
        "Scopes whose tier is worse than FULL",
        degraded,
    );
    gauge(
        registry,
        "audit_events",
        "Audit events retained",
        as_i64(audit_events as u64),
    );
    counter(
        registry,
        "audit_events_dropped",
        "Audit events dropped by retention",
        audit_dropped,
    );
    counter(
        registry,
        "state_deltas_dropped",
        "Report deltas the state machine dropped at the cluster's breaker limit",
        state_dropped,
    );
    let state_time: FloatGauge = Gauge::default();
    state_time.set(seconds(now_ms));
    registry.register(
        "state_time_seconds",
        "The replicated state's clock, seconds since the Unix epoch",
        state_time,
    );
}
