//! `switchyard bench fleet` end to end on one small row, so the headline command cannot rot:
//! a real cluster, a real fleet of SDKs, an outage and a recovery, both ways, as JSON.

use std::process::Command;

use serde_json::Value;

use crate::support;

#[test]
fn bench_fleet_runs_one_row_both_ways_and_prints_the_design_fields() {
    // goal: one short row (4 instances x 50 calls/s, 2 s outage, 0.5 s open duration) runs
    // coordinated and local-only and reports every DESIGN §6 field
    let out = Command::new(support::binary())
        .args(["bench", "fleet", "--instances", "4", "--calls-per-s", "50"])
        .args(["--warmup-s", "1", "--outage-s", "2", "--onset-s", "2"])
        .args(["--recovery-s", "15", "--open-duration-ms", "500", "--json"])
        .output()
        .expect("run switchyard bench fleet");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("row 1/1: 4 instances x 50 calls/s, coordinated"),
        "progress on stderr: {stderr}"
    );
    let rows: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let rows = rows.as_array().expect("an array of rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row["instances"].as_u64(), row["calls_per_s"].as_u64()),
        (Some(4), Some(50))
    );
    for side in ["coordinated", "local_only"] {
        let s = &row[side];
        // The outage was seen, the fleet opened, and it closed again after the recovery.
        assert!(s["failed_at_onset"].as_u64().unwrap() > 0, "{side}: {s}");
        assert!(
            s["time_to_open_ms"].as_u64().is_some(),
            "{side} never opened: {s}"
        );
        assert!(
            s["time_to_close_ms"].as_u64().is_some(),
            "{side} never closed: {s}"
        );
    }
    // Closing takes probe_success_threshold (3) successful trial calls per breaker: the
    // fleet's one breaker in the cluster, or each of the 4 instances' own.
    let probes = |side: &str| row[side]["probe_calls_in_recovery"].as_u64().unwrap();
    assert!(probes("coordinated") >= 3, "{row}");
    assert!(probes("local_only") >= 4 * 3, "{row}");
}

#[test]
fn bench_fleet_refuses_half_a_row() {
    // goal: --instances without --calls-per-s is an error that names the missing flag
    let out = Command::new(support::binary())
        .args(["bench", "fleet", "--instances", "4"])
        .output()
        .expect("run switchyard bench fleet");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--calls-per-s"), "{stderr}");
}
