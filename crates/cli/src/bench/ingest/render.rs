//! `bench ingest` for people: one point as `name: value` lines, a curve as one table.

use super::point::IngestResult;
use crate::output::{Fields, Table};

/// `bytes` for people: B, KiB, MiB or GiB (1 024-based).
fn human_bytes(bytes: f64) -> String {
    const KIB: f64 = 1024.0;
    if bytes < KIB {
        format!("{bytes:.0} B")
    } else if bytes < KIB * KIB {
        format!("{:.1} KiB", bytes / KIB)
    } else if bytes < KIB * KIB * KIB {
        format!("{:.1} MiB", bytes / (KIB * KIB))
    } else {
        format!("{:.2} GiB", bytes / (KIB * KIB * KIB))
    }
}

/// Whether the end leader had built a snapshot.
fn has_snapshot(r: &IngestResult) -> bool {
    r.state.snapshot_index > 0 && r.state.snapshot_bytes > 0
}

/// The state size column: the leader's latest snapshot, or `-` when it has none yet.
fn state_size(r: &IngestResult) -> String {
    if has_snapshot(r) {
        human_bytes(r.state.snapshot_bytes as f64)
    } else {
        "-".to_string()
    }
}

/// The state size per 1 000 instances, or `-`.
fn state_per_1k(r: &IngestResult) -> String {
    if has_snapshot(r) {
        human_bytes(r.state_bytes_per_1k_instances())
    } else {
        "-".to_string()
    }
}

/// The log index the state size is at, and the leader's applied index after the drain.
fn snapshot_at(r: &IngestResult) -> String {
    if has_snapshot(r) {
        format!("{}/{}", r.state.snapshot_index, r.state.applied_index)
    } else {
        format!("-/{}", r.state.applied_index)
    }
}

/// Calls applied, percent of offered, and the share held unsent at the end if any.
fn calls_applied(r: &IngestResult) -> String {
    if r.calls_unsent == 0 {
        format!("{:.2}", r.calls_applied_percent())
    } else {
        format!(
            "{:.2} ({:.2} unsent)",
            r.calls_applied_percent(),
            r.calls_unsent_percent()
        )
    }
}

/// One point.
pub fn fields(r: &IngestResult) -> Fields {
    let mut kv = Fields::new();
    kv.add(
        "instances x breakers",
        format!("{} x {}", r.instances, r.breakers),
    )
    .add("configured interval", format!("{} ms", r.interval_ms))
    .add(
        "leader",
        if r.leader_start == r.leader_end {
            format!("node {}", r.leader_start)
        } else {
            format!("node {}, node {} at the end", r.leader_start, r.leader_end)
        },
    )
    .add(
        "offered reports/s",
        format!("{:.0}", r.offered_reports_per_s),
    )
    .add("sustained reports/s", format!("{:.0}", r.reports_per_s))
    .add(
        "effective interval",
        format!(
            "mean {:.0} ms, max {} ms",
            r.effective_interval_mean_ms, r.effective_interval_max_ms
        ),
    )
    .add(
        "reports/s per instance",
        format!("{:.2}", r.reports_sent_per_instance_per_s),
    )
    .add(
        "answered by the leader",
        format!("{:.1} % of accepted reports", r.answered_by_leader_percent),
    )
    .add("deltas/s", format!("{:.0}", r.deltas_per_s))
    .add(
        "calls/s offered / reported",
        format!("{:.0} / {:.0}", r.offered_calls_per_s, r.calls_per_s),
    )
    .add("report latency p50", format!("{:.2} ms", r.latency.p50_ms))
    .add("report latency p99", format!("{:.2} ms", r.latency.p99_ms))
    .add("errors", r.errors.to_string());
    for (code, n) in &r.errors_by_code {
        kv.add(&format!("  errors {code}"), n.to_string());
    }
    let sent = r.calls_offered - r.calls_unsent;
    kv.add(
        "calls offered / applied",
        format!(
            "{} / {} ({:.2} %)",
            r.calls_offered,
            r.calls_applied,
            r.calls_applied_percent()
        ),
    )
    .add(
        "  held unsent at the end",
        format!("{} ({:.2} %)", r.calls_unsent, r.calls_unsent_percent()),
    )
    .add(
        "  accepted, not applied",
        format!("{}", sent as i64 - r.calls_applied as i64),
    )
    .add("drained in", format!("{:.1} s", r.drain_s));
    let whole_run: Vec<String> = r
        .errors_by_code_whole_run
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect();
    let losses = r.node_losses;
    kv.add(
        "errors, whole run",
        if whole_run.is_empty() {
            "0".to_string()
        } else {
            whole_run.join(", ")
        },
    )
    .add(
        "deltas lost on nodes",
        format!(
            "refused {}, rejected forwarding {}, lost in a discarded tick {} \
             (handed over on step-down {}, forwarded again {})",
            losses.refused,
            losses.dropped_forwarding,
            losses.lost_in_tick,
            losses.handed_over,
            losses.forward_retried
        ),
    );
    for c in &r.node_cpu {
        let role = if c.leader { "leader" } else { "follower" };
        kv.add(
            &format!("node {} CPU ({role})", c.node),
            format!(
                "{:.0} % of one core, runtime lag {:.1} ms",
                c.cpu_percent, c.runtime_lag_ms
            ),
        );
    }
    kv.add(
        "generator runtime lag",
        format!(
            "mean {:.1} ms, p99 {:.1} ms (its CPU: {:.0} % of one core)",
            r.generator_lag.mean_ms, r.generator_lag.p99_ms, r.generator_cpu_percent
        ),
    );
    let tick = r.tick_bytes_per_delta;
    kv.add(
        "tick entry bytes/delta",
        format!(
            "{:.1} packed ({:.1} unpacked, {:.1}x)",
            tick.packed,
            tick.unpacked,
            tick.unpacked / tick.packed
        ),
    )
    .add(
        "state size (latest snapshot)",
        if has_snapshot(r) {
            format!(
                "{} at log index {} (applied {}), {} per 1k instances",
                state_size(r),
                r.state.snapshot_index,
                r.state.applied_index,
                state_per_1k(r)
            )
        } else {
            format!(
                "- (no snapshot by applied index {}; one every {} entries)",
                r.state.applied_index, r.snapshot_every_entries
            )
        },
    )
    .add(
        "  snapshots",
        format!(
            "every {} log entries on every node, built during the run",
            r.snapshot_every_entries
        ),
    )
    .add(
        "leader RSS",
        format!(
            "{:.1} MiB ({:.1} MiB when elected; {:.2} MiB per 1k instances)",
            r.leader_rss_mib, r.leader_rss_baseline_mib, r.memory_mib_per_1k_instances
        ),
    );
    kv
}

/// What the state columns of [`curve_table`] are, printed under it.
pub fn curve_note(snapshot_every_entries: u64) -> String {
    format!(
        "STATE SIZE: the encoded state in the end leader's latest snapshot, built during the \
         run (every node snapshots every {snapshot_every_entries} log entries, \
         --snapshot-every-entries); SNAPSHOT AT: the log index it covers / the leader's \
         applied index after the drain; `-`: no snapshot yet.\n"
    )
}

/// A curve, one row per point.
pub fn curve_table(points: &[IngestResult]) -> Table {
    let mut table = Table::new(&[
        "INSTANCES",
        "INTERVAL MS",
        "OFFERED REPORTS/S",
        "SUSTAINED REPORTS/S",
        "EFFECTIVE INTERVAL MS",
        "P99 MS",
        "ERRORS",
        "CALLS APPLIED %",
        "LEADER CPU %",
        "STATE SIZE",
        "STATE PER 1K INSTANCES",
        "SNAPSHOT AT",
        "LEADER RSS MIB",
        "MIB PER 1K INSTANCES",
    ]);
    for r in points {
        table.row(vec![
            r.instances.to_string(),
            r.interval_ms.to_string(),
            format!("{:.0}", r.offered_reports_per_s),
            format!("{:.0}", r.reports_per_s),
            format!("{:.0}", r.effective_interval_mean_ms),
            format!("{:.2}", r.latency.p99_ms),
            r.errors.to_string(),
            calls_applied(r),
            format!("{:.0}", r.leader_cpu_percent),
            state_size(r),
            state_per_1k(r),
            snapshot_at(r),
            format!("{:.1}", r.leader_rss_mib),
            format!("{:.2}", r.memory_mib_per_1k_instances),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_are_shown_in_the_largest_unit_below_them() {
        assert_eq!(human_bytes(0.0), "0 B");
        assert_eq!(human_bytes(1023.0), "1023 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(3.5 * 1024.0 * 1024.0), "3.5 MiB");
        assert_eq!(human_bytes(2.0 * 1024.0 * 1024.0 * 1024.0), "2.00 GiB");
    }
}
