//! `switchyard bench ingest --curve` end to end on a tiny grid, so the capacity curve cannot
//! rot: a fresh real cluster per point, a paced fleet, the accounting in calls and the state
//! size from a snapshot built during the run, as JSON; and its flags refused before any
//! cluster starts.

use std::process::Command;

use serde_json::Value;

use crate::support;

#[test]
fn bench_ingest_curve_prints_one_point_per_grid_entry_and_accounts_for_every_call() {
    // goal: a 1 x 2 grid (50 instances at 100 ms and at 1 000 ms, 1 s warm-up and 1 s measured
    // each) prints one JSON point per entry, and every call the fleet made was either applied
    // by the state machine or is still held unsent by its instance; with the nodes told to
    // snapshot every 5 entries (a 2 s point writes about 20 ticks), every point's state size
    // is a real snapshot's
    let out = Command::new(support::binary())
        .args(["bench", "ingest", "--curve", "--curve-instances", "50"])
        .args(["--duration-s", "1", "--warmup-s", "1", "--json"])
        .args(["--snapshot-every-entries", "5"])
        .output()
        .expect("run switchyard bench ingest --curve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("point 2/2: 50 instances every 1000 ms"),
        "progress on stderr: {stderr}"
    );
    let points: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let points = points.as_array().expect("an array of points");
    assert_eq!(points.len(), 2, "{points:?}");
    for (point, interval_ms) in points.iter().zip([100u64, 1_000]) {
        let field = |name: &str| {
            point[name]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: {point}"))
        };
        assert_eq!(
            (field("instances"), field("interval_ms")),
            (50, interval_ms)
        );
        // 2 s of calls: 10 per breaker per configured interval, 20 breakers, 50 instances.
        let intervals = 2_000 / interval_ms;
        assert_eq!(field("calls_offered"), 50 * 20 * 10 * intervals, "{point}");
        let sent = field("calls_offered") - field("calls_unsent");
        // A leader change may discard a tick (the nodes count it): only then may calls the
        // cluster acknowledged be missing.
        if point["node_losses"]["lost_in_tick"].as_u64() == Some(0) {
            assert_eq!(field("calls_applied"), sent, "{point}");
        } else {
            assert!(field("calls_applied") <= sent, "{point}");
        }
        assert!(point["effective_interval_mean_ms"].as_f64().unwrap() >= interval_ms as f64);
        assert!(field("effective_interval_max_ms") >= interval_ms);
        assert!(point["leader_rss_mib"].as_f64().unwrap() > 0.0, "{point}");
        assert_eq!(field("snapshot_every_entries"), 5, "{point}");
        let state = |name: &str| {
            point["state"][name]
                .as_u64()
                .unwrap_or_else(|| panic!("state.{name}: {point}"))
        };
        // The nodes' default (5 000 entries) would leave no snapshot: 0 bytes at index 0.
        assert!(state("snapshot_bytes") > 0, "no snapshot built: {point}");
        assert!(
            (5..=state("applied_index")).contains(&state("snapshot_index")),
            "{point}"
        );
    }
}

#[test]
fn bench_ingest_refuses_a_zero_snapshot_interval_before_starting_a_cluster() {
    // goal: `--snapshot-every-entries 0` is refused by name and rule, before any node starts
    let out = Command::new(support::binary())
        .args(["bench", "ingest", "--snapshot-every-entries", "0"])
        .output()
        .expect("run switchyard bench ingest");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--snapshot-every-entries: at least 1"),
        "names the flag and its rule: {stderr}"
    );
    assert!(
        !stderr.contains("starting a"),
        "refused before a cluster started: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing measured");
}
