//! The node's Prometheus metrics, built from its live state at scrape time.
//!
//! Gauges are read from Raft's metrics and the applied state when `/metrics` is scraped rather
//! than updated on the apply path: the apply path stays free of metric bookkeeping, and every
//! node reports the breaker states it has applied. Counters come from the node's own
//! [`Counters`](crate::node::Counters) (they restart at zero with the process, as Prometheus
//! counters may), latency histograms from [`RpcMetrics`](crate::rpc_metrics::RpcMetrics).
//!
//! Every name starts with `switchyard_`. Per-breaker SLA gauges (`switchyard_breaker_sla_*`,
//! `switchyard_sla_breach`) cover the last 24 hours and are computed from the replicated
//! aggregates at the state's own time, so every node exports the same values; they are
//! computed for at most [`SLA_METRICS_BREAKERS_MAX`] breakers per scrape (in key order), and
//! `switchyard_sla_breakers_unreported` says how many were left out.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `node_id`, `raft_term`, `raft_leader_id`, `raft_has_leader`, `raft_is_leader` | gauge | |
//! | `raft_last_log_index`, `raft_commit_index`, `raft_applied_index`, `raft_snapshot_index` | gauge | |
//! | `raft_members`, `raft_voters`, `log_entries`, `store_size_bytes`, `snapshot_size_bytes` | gauge | |
//! | `reports_accepted_total`, `report_deltas_{accepted,handed_over,forward_retried,dropped_forwarding,lost_in_tick}_total` | counter | |
//! | `report_deltas_refused_total` | counter | `limit` (`report_rate_per_instance_max`, `report_deltas_max`, `pending_deltas_max`) |
//! | `state_deltas_dropped_total`, `ticks_written_total`, `forwarded_requests_total` | counter | |
//! | `watch_subscribers`, `watch_subscribers_max`, `report_interval_advised_seconds`, `runtime_lag_seconds`, `cpu_pressure_ratio` | gauge | |
//! | `breakers`, `breaker_state`, `breaker_open`, `breaker_state_since_timestamp_seconds` | gauge | `key`, `state` |
//! | `breaker_window_{calls,failures,slow,instances}`, `breaker_consecutive_opens` | gauge | `key` |
//! | `breaker_probe_permits_in_use`, `breaker_probe_permits_max` | gauge | `key` |
//! | `breaker_sla_{calls,failures,slow,rejected}`, `breaker_sla_{availability,error}_ratio` | gauge | `key`, `window` |
//! | `breaker_sla_latency_seconds` | gauge | `key`, `window`, `percentile` (`50`, `95`, `99`) |
//! | `breaker_last_success_timestamp_seconds` | gauge | `key` |
//! | `sla_breach`, `sla_breakers_unreported` | gauge | `key`, `window`, `objective` |
//! | `scopes`, `scope_tier`, `scope_degraded`, `scope_tier_pinned`, `scopes_degraded` | gauge | `scope` |
//! | `audit_events`, `audit_events_dropped_total`, `state_time_seconds` | gauge/counter | |
//! | `rpc_duration_seconds` | histogram | `rpc` |

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::error::LimitName;
use crate::node::Node;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

mod state;
use state::register_state;

/// Breakers whose 24 h SLA gauges one scrape computes (in key order).
pub const SLA_METRICS_BREAKERS_MAX: usize = 1_000;

/// The text of help strings never ends with a period: the encoder adds one.
fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    registry.register(name, help, ConstCounter::new(value));
}

fn load(value: &AtomicU64) -> u64 {
    value.load(Ordering::Relaxed)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The content type of [`render`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of [`render_openmetrics`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders the node's metrics in the Prometheus text format (0.0.4), which every scraper and
/// `promtool check metrics` read.
pub fn render(node: &Node) -> String {
    openmetrics_to_text(&render_openmetrics(node))
}

/// Converts prometheus-client's OpenMetrics output to the Prometheus text format: a counter's
/// `HELP` and `TYPE` lines name its `_total` samples, and `UNIT` and `EOF` lines go.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for (i, line) in lines.iter().enumerate() {
        if *line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let family = |prefix: &str, l: &str| -> Option<String> {
            l.strip_prefix(prefix)
                .and_then(|rest| rest.split(' ').next())
                .map(str::to_owned)
        };
        let counter_name = |name: &str| {
            lines[i..]
                .iter()
                .take(3)
                .any(|l| *l == format!("# TYPE {name} counter"))
        };
        match (family("# HELP ", line), family("# TYPE ", line)) {
            (Some(name), _) | (None, Some(name)) if counter_name(&name) => {
                let rest = &line[line.find(&name).map_or(0, |at| at + name.len())..];
                let head = if line.starts_with("# HELP ") {
                    "# HELP "
                } else {
                    "# TYPE "
                };
                out.push_str(head);
                out.push_str(&name);
                out.push_str("_total");
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Renders the node's metrics in the OpenMetrics format (what prometheus-client writes).
pub fn render_openmetrics(node: &Node) -> String {
    let mut registry = Registry::with_prefix("switchyard");
    register_raft(&mut registry, node);
    register_ingest(&mut registry, node);
    register_state(&mut registry, node);
    registry.register(
        "rpc_duration_seconds",
        "gRPC call latency until the response headers, by rpc",
        node.rpc_metrics().durations(),
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

fn register_raft(registry: &mut Registry, node: &Node) {
    let status = node.raft_status();
    let voters = status.members.iter().filter(|(_, _, voter)| *voter).count();
    for (name, help, value) in [
        ("node_id", "This node's id", status.node_id),
        ("raft_term", "Current Raft term", status.term),
        (
            "raft_leader_id",
            "Id of the leader this node knows of (0 if none)",
            status.leader.unwrap_or(0),
        ),
        (
            "raft_has_leader",
            "1 if this node knows a leader",
            u64::from(status.leader.is_some()),
        ),
        (
            "raft_is_leader",
            "1 if this node is the leader",
            u64::from(status.leader == Some(status.node_id)),
        ),
        (
            "raft_last_log_index",
            "Last index in the log",
            status.last_log_index,
        ),
        ("raft_commit_index", "Committed index", status.commit_index),
        ("raft_applied_index", "Applied index", status.applied_index),
        (
            "raft_snapshot_index",
            "Last index in the latest snapshot (0 if none)",
            status.snapshot_index.unwrap_or(0),
        ),
        (
            "raft_members",
            "Members (voters and learners) in the current membership",
            status.members.len() as u64,
        ),
        (
            "raft_voters",
            "Voters in the current membership",
            voters as u64,
        ),
        (
            "log_entries",
            "Entries held in the log (after purges)",
            node.log_store().len() as u64,
        ),
        (
            "store_size_bytes",
            "On-disk size of the node's store",
            node.log_store().size_on_disk(),
        ),
        (
            "snapshot_size_bytes",
            "Size of the latest snapshot",
            node.state_machine().snapshot_size(),
        ),
    ] {
        gauge(registry, name, help, as_i64(value));
    }
}

fn register_ingest(registry: &mut Registry, node: &Node) {
    let c = node.counters();
    for (name, help, value) in [
        (
            "reports_accepted",
            "Report calls accepted by this node",
            &c.reports_accepted,
        ),
        (
            "report_deltas_accepted",
            "Report deltas accepted into a tick (rate() is the ingest rate)",
            &c.deltas_accepted,
        ),
        (
            "report_deltas_handed_over",
            "Report deltas this node held as leader and forwarded to the next leader",
            &c.deltas_handed_over,
        ),
        (
            "report_deltas_forward_retried",
            "Report deltas a leader did not take from this node, kept and forwarded again",
            &c.deltas_forward_retried,
        ),
        (
            "report_deltas_dropped_forwarding",
            "Report deltas the leader rejected as such when this node forwarded them",
            &c.deltas_dropped_forwarding,
        ),
        (
            "report_deltas_lost_in_tick",
            "Report deltas in a tick discarded on a leader change (it may have committed)",
            &c.deltas_lost_in_tick,
        ),
        (
            "ticks_written",
            "Tick entries written as leader",
            &c.ticks_written,
        ),
        (
            "forwarded_requests",
            "Requests served for followers",
            &c.forwarded,
        ),
    ] {
        counter(registry, name, help, load(value));
    }
    // Every refusal, wherever it happened, labelled by the `[limits]` field that refused it;
    // each limit is exported from the start so a rate() over it has a zero to begin from.
    let refused = Family::<LimitLabels, Counter>::default();
    for limit in LimitName::REPORT {
        refused
            .get_or_create(&LimitLabels {
                limit: limit.field().to_owned(),
            })
            .inc_by(c.deltas_refused.get(limit));
    }
    registry.register(
        "report_deltas_refused",
        "Report deltas refused at a limit, by the limits field that refused them",
        refused,
    );
    let lag: Gauge<f64, AtomicU64> = Gauge::default();
    lag.set(node.runtime_lag_ms() / 1000.0);
    registry.register(
        "runtime_lag_seconds",
        "How late this node's runtime wakes a task that is due, smoothed over about a second \
         (CPU saturation; see report_interval_advised_seconds)",
        lag,
    );
    let pressure: Gauge<f64, AtomicU64> = Gauge::default();
    pressure.set(node.cpu_pressure());
    registry.register(
        "cpu_pressure_ratio",
        "Share of time this node's tasks waited for a CPU (Linux PSI `some`), smoothed over \
         about half a second; over limits.cpu_pressure_max_percent reports are paced",
        pressure,
    );
    let advised: Gauge<f64, AtomicU64> = Gauge::default();
    advised.set(node.report_interval_advice_ms() as f64 / 1000.0);
    registry.register(
        "report_interval_advised_seconds",
        "Report interval this node asks SDKs for, in seconds (back-pressure; 0: their own)",
        advised,
    );
    gauge(
        registry,
        "watch_subscribers",
        "Watch streams open on this node",
        as_i64(load(&c.watch_streams)),
    );
    gauge(
        registry,
        "watch_subscribers_max",
        "Watch streams this node serves at most (limits.watch_streams_max)",
        i64::from(node.config().limits.watch_streams_max),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_total_samples_in_text_format() {
        let om = "# HELP switchyard_ticks_written Ticks.\n\
                  # TYPE switchyard_ticks_written counter\n\
                  switchyard_ticks_written_total 3\n\
                  # HELP switchyard_raft_term Term.\n\
                  # TYPE switchyard_raft_term gauge\n\
                  switchyard_raft_term 2\n\
                  # EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP switchyard_ticks_written_total Ticks.\n\
             # TYPE switchyard_ticks_written_total counter\n\
             switchyard_ticks_written_total 3\n\
             # HELP switchyard_raft_term Term.\n\
             # TYPE switchyard_raft_term gauge\n\
             switchyard_raft_term 2\n"
        );
    }
}
