//! The node's Prometheus metrics, built from its live state at scrape time.
//!
//! Gauges are read from Raft's metrics and the applied state when `/metrics` is scraped rather
//! than updated on the apply path: the apply path stays free of metric bookkeeping, and every
//! node reports the breaker states it has applied.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use switchyard_core::BreakerState;

use crate::node::Node;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    key: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabels {
    scope: String,
}

const STATES: [BreakerState; 7] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
    BreakerState::ForcedOpen,
    BreakerState::ForcedClosed,
    BreakerState::Disabled,
    BreakerState::MetricsOnly,
];

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: &AtomicU64) {
    registry.register(name, help, ConstCounter::new(value.load(Ordering::Relaxed)));
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Renders the node's metrics in the Prometheus text format.
pub fn render(node: &Node) -> String {
    let mut registry = Registry::with_prefix("switchyard");
    let status = node.raft_status();
    gauge(
        &mut registry,
        "node_id",
        "This node's id.",
        as_i64(status.node_id),
    );
    gauge(
        &mut registry,
        "raft_term",
        "Current Raft term.",
        as_i64(status.term),
    );
    gauge(
        &mut registry,
        "raft_leader_id",
        "Id of the leader this node knows of (0 if none).",
        as_i64(status.leader.unwrap_or(0)),
    );
    gauge(
        &mut registry,
        "raft_is_leader",
        "1 if this node is the leader.",
        i64::from(status.leader == Some(status.node_id)),
    );
    gauge(
        &mut registry,
        "raft_last_log_index",
        "Last index in the log.",
        as_i64(status.last_log_index),
    );
    gauge(
        &mut registry,
        "raft_commit_index",
        "Committed index.",
        as_i64(status.commit_index),
    );
    gauge(
        &mut registry,
        "raft_applied_index",
        "Applied index.",
        as_i64(status.applied_index),
    );
    gauge(
        &mut registry,
        "raft_members",
        "Members (voters and learners) in the current membership.",
        as_i64(status.members.len() as u64),
    );
    gauge(
        &mut registry,
        "log_entries",
        "Entries held in the log (after purges).",
        as_i64(node.log_store().len() as u64),
    );
    gauge(
        &mut registry,
        "store_size_bytes",
        "On-disk size of the node's store.",
        as_i64(node.log_store().size_on_disk()),
    );
    gauge(
        &mut registry,
        "snapshot_size_bytes",
        "Size of the latest snapshot.",
        as_i64(node.state_machine().snapshot_size()),
    );
    let c = node.counters();
    counter(
        &mut registry,
        "reports_accepted",
        "Report calls accepted.",
        &c.reports_accepted,
    );
    counter(
        &mut registry,
        "report_deltas_accepted",
        "Deltas accepted into a tick.",
        &c.deltas_accepted,
    );
    counter(
        &mut registry,
        "report_deltas_refused",
        "Deltas refused at a limit.",
        &c.deltas_refused,
    );
    counter(
        &mut registry,
        "report_deltas_dropped_on_step_down",
        "Deltas dropped because the node stopped leading before its tick.",
        &c.deltas_dropped_on_step_down,
    );
    counter(
        &mut registry,
        "ticks_written",
        "Tick entries written as leader.",
        &c.ticks_written,
    );
    counter(
        &mut registry,
        "forwarded_requests",
        "Requests served for followers.",
        &c.forwarded,
    );
    gauge(
        &mut registry,
        "watch_subscribers",
        "Watch streams open on this node.",
        as_i64(c.watch_streams.load(Ordering::Relaxed)),
    );

    let breaker_state: Family<BreakerLabels, Gauge> = Family::default();
    let window_calls: Family<KeyLabels, Gauge> = Family::default();
    let window_failures: Family<KeyLabels, Gauge> = Family::default();
    let scope_tier: Family<ScopeLabels, Gauge> = Family::default();
    let (breakers, scopes) = {
        let read = node.state_machine().read();
        (read.core().breakers(), read.core().scopes())
    };
    for b in &breakers {
        for state in STATES {
            breaker_state
                .get_or_create(&BreakerLabels {
                    key: b.key.to_string(),
                    state: state.as_str().into(),
                })
                .set(i64::from(b.state == state));
        }
        let key = KeyLabels {
            key: b.key.to_string(),
        };
        window_calls.get_or_create(&key).set(as_i64(b.window_calls));
        window_failures
            .get_or_create(&key)
            .set(as_i64(b.window_failures));
    }
    for s in &scopes {
        scope_tier
            .get_or_create(&ScopeLabels {
                scope: s.scope.to_string(),
            })
            .set(i64::from(s.tier.number()));
    }
    registry.register(
        "breaker_state",
        "1 for the breaker's current state.",
        breaker_state,
    );
    registry.register(
        "breaker_window_calls",
        "Calls in the breaker's current window.",
        window_calls,
    );
    registry.register(
        "breaker_window_failures",
        "Failures in the breaker's current window.",
        window_failures,
    );
    registry.register(
        "scope_tier",
        "Degradation tier per scope (1 FULL .. 5 MAINTENANCE).",
        scope_tier,
    );
    gauge(
        &mut registry,
        "breakers",
        "Breakers known to the cluster.",
        as_i64(breakers.len() as u64),
    );

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}
