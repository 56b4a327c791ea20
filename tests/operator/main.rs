//! The operator surface of real `switchyard serve` processes: Prometheus metrics checked by
//! `promtool`, alert rules and the Grafana dashboard checked against what a node exports, the
//! SLA and audit JSON APIs, the admin token on HTTP actions, and the dashboard in a real
//! headless Chromium driven over WebDriver.
//!
//! External tools: `promtool` (Debian package `prometheus`) and `chromium` + `chromedriver`
//! (Debian packages `chromium`, `chromium-driver`). A test that needs one SKIPS, printing why,
//! when it is not installed, unless `SWITCHYARD_REQUIRE_PROMTOOL` / `SWITCHYARD_REQUIRE_BROWSER`
//! is set, in which case it fails (CI sets both).

#[path = "../support/mod.rs"]
mod support;

mod access;
mod http;
mod webdriver;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Cluster, admin, client, eventually};
use switchyard_core::{BreakerKey, Delta, InstanceId, LatencySketch};
use switchyard_proto::admin as apb;
use switchyard_proto::client as pb;

const STARTUP: Duration = Duration::from_secs(20);
const SETTLE: Duration = Duration::from_secs(15);
const ADMIN_TOKEN: &str = "s3cret-operator-token";

/// The repository root (tests/operator/../..).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether an external tool may be used: `true` when installed; when it is not, `false` after
/// printing a SKIP line, or a panic when `require_env` is set.
fn tool_available(installed: bool, what: &str, require_env: &str) -> bool {
    if installed {
        return true;
    }
    if std::env::var_os(require_env).is_some() {
        panic!("{what} is not installed and {require_env} is set");
    }
    println!("SKIP: {what} is not installed (set {require_env} to make this a failure)");
    false
}

fn promtool() -> Option<PathBuf> {
    let found = webdriver::which("promtool");
    tool_available(
        found.is_some(),
        "promtool (apt-get install prometheus)",
        "SWITCHYARD_REQUIRE_PROMTOOL",
    )
    .then_some(found)
    .flatten()
}

/// Runs `promtool` with `args`, feeding `stdin`; panics with its output on failure.
fn run_promtool(promtool: &Path, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `n` nodes and waits until every node's `/readyz` says it knows a leader.
async fn ready_cluster(n: u64, env: &[(&str, &str)]) -> Cluster {
    let cluster = Cluster::start_with_env(n, &[], env);
    for node in cluster.nodes.values() {
        let addr = node.http.clone();
        eventually(STARTUP, &format!("node {} ready", node.id), || {
            let addr = addr.clone();
            async move {
                let ready = http::request("GET", &addr, "/readyz", &[], None).ok()?;
                (ready.status == 200).then_some(())
            }
        })
        .await;
    }
    cluster
}

/// Reports `calls` outcomes (`failures` of them failed) of `key` from `instance`, each taking
/// `latency_ms`, through the node at `grpc`.
async fn report(grpc: &str, instance: &str, key: &str, calls: u64, failures: u64, latency_ms: u64) {
    let mut latency = LatencySketch::default();
    latency.record_n(latency_ms * 1000, calls);
    let delta = Delta {
        key: BreakerKey::parse(key).expect("key"),
        instance: InstanceId::parse(instance).expect("instance"),
        calls,
        failures,
        slow: 0,
        rejected: 0,
        latency,
        first_attempts: 0,
        retries: 0,
    };
    client(grpc)
        .await
        .report(pb::ReportRequest {
            instance: instance.into(),
            deltas: vec![pb::BreakerDelta::from(&delta)],
        })
        .await
        .expect("report");
}

async fn force_open(grpc: &str, key: &str, reason: &str) {
    admin(grpc)
        .await
        .set_override(apb::SetOverrideRequest {
            key: key.into(),
            mode: apb::OverrideMode::ForcedOpen as i32,
            reason: reason.into(),
            for_ms: None,
        })
        .await
        .expect("force open");
}

async fn pin_tier(grpc: &str, scope: &str, tier: u32) {
    admin(grpc)
        .await
        .set_tier_override(apb::SetTierOverrideRequest {
            scope: scope.into(),
            tier,
            reason: "test pin".into(),
            for_ms: None,
        })
        .await
        .expect("pin tier");
}

/// Metric names (`switchyard_...`) of the samples in a text exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Every `switchyard_[a-z_]+` in `text`.
fn referenced_metrics(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(found) = text[at..].find("switchyard_") {
        let start = at + found;
        let mut end = start + "switchyard_".len();
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
            end += 1;
        }
        let name = text[start..end].trim_end_matches('_');
        if name.len() > "switchyard_".len() {
            names.insert(name.to_owned());
        }
        at = end;
    }
    names
}

/// Whether `name` (as written in a rule or panel) is exported: as a sample, or as the family of
/// histogram and counter samples (`_bucket`, `_sum`, `_count`, `_total`).
fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .any(|suffix| exported.contains(&format!("{name}{suffix}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_cover_the_alert_rules_and_the_grafana_dashboard() {
    // Goal: /metrics of a live node is valid Prometheus text with every family the operator
    // surface promises, and every metric the rules and the dashboard use is exported.
    let started = Instant::now();
    let cluster = ready_cluster(1, &[]).await;
    let node = &cluster.nodes[&1];

    // phase: give every family something to show
    report(&node.grpc, "web-1", "payments/db", 60, 6, 12).await;
    report(&node.grpc, "web-2", "payments/db", 40, 4, 30).await;
    force_open(&node.grpc, "payments/ml-fraud", "metrics test").await;
    pin_tier(&node.grpc, "payments", 3).await;
    let text = eventually(SETTLE, "the reports to be applied", || {
        let addr = node.http.clone();
        async move {
            let text = http::get(&addr, "/metrics").body;
            text.contains("switchyard_breaker_sla_calls{key=\"payments/db\",window=\"24h\"} 100")
                .then_some(text)
        }
    })
    .await;

    // phase: the promised families are there, all prefixed
    let names = sample_names(&text);
    for family in [
        "switchyard_breaker_state",
        "switchyard_breaker_open",
        "switchyard_breaker_window_calls",
        "switchyard_breaker_window_failures",
        "switchyard_breaker_window_slow",
        "switchyard_breaker_sla_calls",
        "switchyard_breaker_sla_failures",
        "switchyard_breaker_sla_slow",
        "switchyard_breaker_sla_rejected",
        "switchyard_breaker_sla_latency_seconds",
        "switchyard_breaker_probe_permits_in_use",
        "switchyard_scope_tier",
        "switchyard_raft_term",
        "switchyard_raft_leader_id",
        "switchyard_raft_commit_index",
        "switchyard_raft_applied_index",
        "switchyard_raft_last_log_index",
        "switchyard_snapshot_size_bytes",
        "switchyard_store_size_bytes",
        "switchyard_log_entries",
        "switchyard_report_deltas_accepted_total",
        "switchyard_report_deltas_refused_total",
        "switchyard_report_deltas_handed_over_total",
        "switchyard_report_deltas_lost_in_tick_total",
        "switchyard_watch_subscribers",
        "switchyard_runtime_lag_seconds",
        "switchyard_cpu_pressure_ratio",
        "switchyard_sla_breach",
        "switchyard_rpc_duration_seconds_bucket",
    ] {
        assert!(names.contains(family), "{family} missing from:\n{text}");
    }
    assert!(
        names.iter().all(|n| n.starts_with("switchyard_")),
        "unprefixed metric in {names:?}"
    );
    assert!(
        text.contains(
            "switchyard_breaker_state{key=\"payments/ml-fraud\",state=\"FORCED_OPEN\"} 1"
        )
    );
    assert!(text.contains("switchyard_scope_tier{scope=\"payments\"} 3"));
    assert!(text.contains("rpc=\"switchyard.client.v1.Client/Report\""));
    // 10 % errors breaks the default 1 % error-rate objective.
    assert!(text.contains(
        "switchyard_sla_breach{key=\"payments/db\",window=\"24h\",objective=\"error_rate\"} 1"
    ));

    // phase: promtool accepts the exposition
    if let Some(promtool) = promtool() {
        run_promtool(&promtool, &["check", "metrics"], &text);
    }

    // phase: every metric the alert rules and the Grafana dashboard use is exported
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/switchyard.json",
    ] {
        let content = std::fs::read_to_string(repo_root().join(file)).expect(file);
        let used = referenced_metrics(&content);
        assert!(!used.is_empty(), "{file} names no switchyard_ metric");
        let missing: Vec<_> = used.iter().filter(|m| !is_exported(m, &names)).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics no node exports: {missing:?}"
        );
    }
    println!("metrics test took {:?}", started.elapsed());
}

#[test]
fn alert_rules_pass_promtool() {
    // Goal: deploy/prometheus/alerts.yml is a valid rule file with the promised alerts.
    let path = repo_root().join("deploy/prometheus/alerts.yml");
    let rules = std::fs::read_to_string(&path).expect("alerts.yml");
    for alert in [
        "SwitchyardNoLeader",
        "SwitchyardBreakerOpen",
        "SwitchyardScopeDegraded",
        "SwitchyardSlaBreach",
    ] {
        assert!(
            rules.contains(&format!("alert: {alert}")),
            "{alert} missing"
        );
    }
    let grafana: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/switchyard.json"))
            .expect("switchyard.json"),
    )
    .expect("the Grafana dashboard is JSON");
    assert!(grafana["panels"].as_array().is_some_and(|p| p.len() >= 10));
    if let Some(promtool) = promtool() {
        let path = path.to_str().expect("utf-8 path");
        run_promtool(&promtool, &["check", "rules", path], "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_reports_are_identical_on_every_node() {
    // Goal: GET /api/v1/sla gives byte-identical JSON from all three nodes for each window,
    // because reports are computed at the replicated state's time; bad input names the field.
    let cluster = ready_cluster(3, &[]).await;
    let nodes: Vec<_> = cluster.nodes.values().collect();

    // phase: outcomes through two different nodes, an override through the third
    report(&nodes[1].grpc, "web-1", "payments/db", 200, 2, 15).await;
    report(&nodes[2].grpc, "web-2", "payments/db", 100, 1, 40).await;
    report(&nodes[1].grpc, "web-1", "search/idx", 50, 0, 5).await;
    force_open(&nodes[0].grpc, "payments/ml-fraud", "sla test").await;

    // phase: once every node has applied the same index, the JSON is the same everywhere
    for window in ["24h", "7d", "30d", "mtd"] {
        let path = format!("/api/v1/sla?window={window}&local=true");
        let body = eventually(SETTLE, &format!("equal {window} reports"), || {
            let bodies: Vec<String> = nodes
                .iter()
                .map(|n| http::get(&n.http, &path).body)
                .collect();
            async move {
                let first = serde_json::from_str::<Value>(&bodies[0]).ok()?;
                let calls = first["reports"]
                    .as_array()?
                    .iter()
                    .find(|r| r["key"] == "payments/db")?["calls"]
                    .as_u64()?;
                (calls == 300 && bodies.iter().all(|b| *b == bodies[0])).then(|| bodies[0].clone())
            }
        })
        .await;
        let json: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json["window"], window);
        let db = json["reports"]
            .as_array()
            .expect("reports")
            .iter()
            .find(|r| r["key"] == "payments/db")
            .expect("payments/db");
        assert_eq!(db["failures"], 3);
        assert!(db["p95_ms"].as_f64().is_some_and(|p| p > 10.0), "{db}");
        assert!(db["time_since_last_success_ms"].is_u64(), "{db}");
        let ml = json["reports"]
            .as_array()
            .expect("reports")
            .iter()
            .find(|r| r["key"] == "payments/ml-fraud")
            .expect("payments/ml-fraud");
        assert_eq!(
            ml["open_episodes"].as_array().map(Vec::len),
            Some(1),
            "{ml}"
        );
    }

    // phase: a linearizable read on a follower agrees with the leader's local state
    let linearizable = http::get(&nodes[2].http, "/api/v1/sla?key=payments/db").json();
    assert_eq!(linearizable["reports"][0]["calls"], 300);

    // phase: paging walks every breaker once
    let mut seen = Vec::new();
    let mut path = "/api/v1/sla?limit=1".to_owned();
    loop {
        let page = http::get(&nodes[0].http, &path).json();
        seen.extend(
            page["reports"]
                .as_array()
                .expect("reports")
                .iter()
                .map(|r| r["key"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_after_key"].as_str() {
            Some(next) => path = format!("/api/v1/sla?limit=1&after_key={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["payments/db", "payments/ml-fraud", "search/idx"]);

    // phase: bad input is a 400 naming the parameter
    for (query, field) in [
        ("window=1y", "window"),
        ("key=Payments", "key"),
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("windw=7d", "windw"),
        ("local=maybe", "local"),
    ] {
        let reply = http::get(&nodes[0].http, &format!("/api/v1/sla?{query}"));
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(reply.json()["field"], field, "{query}");
    }
    let reply = http::get(&nodes[0].http, "/api/v1/sla?key=payments/nope");
    assert_eq!(reply.status, 404, "{}", reply.body);
}

fn post(addr: &str, path: &str, token: Option<&str>, actor: &str, body: &str) -> http::Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("x-switchyard-actor", actor),
    ];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    http::request("POST", addr, path, &headers, Some(body)).expect("POST")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_api_filters_pages_and_exports_csv() {
    // Goal: GET /api/v1/audit filters by key, scope, actor and time, pages with after_index,
    // exports RFC 4180 CSV, and names the parameter of any bad query.
    let cluster = ready_cluster(1, &[]).await;
    let addr = cluster.nodes[&1].http.clone();

    // phase: decisions by two operators through the HTTP actions
    let before_ms = http::get(&addr, "/api/v1/breakers").json()["now_ms"]
        .as_u64()
        .unwrap_or(0);
    let tricky = "db \"maintenance\", part 1";
    let body = serde_json::json!({ "mode": "forced_open", "reason": tricky }).to_string();
    let r = post(
        &addr,
        "/api/v1/breakers/payments/db/override",
        None,
        "alice",
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &addr,
        "/api/v1/tiers/payments",
        None,
        "bob",
        r#"{"tier": 2}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &addr,
        "/api/v1/breakers/search/idx/override",
        None,
        "bob",
        r#"{"mode": "forced_closed", "for_ms": 600000, "reason": "index rebuild"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &addr,
        "/api/v1/breakers/payments/db/reset",
        None,
        "alice",
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // phase: filters
    let events = |query: &str| -> Vec<Value> {
        let reply = http::get(&addr, &format!("/api/v1/audit?{query}"));
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        reply.json()["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let all = events("");
    assert!(all.len() >= 4, "{all:?}");
    let by_key = events("key=payments/db");
    assert!(by_key.len() >= 2 && by_key.iter().all(|e| e["subject"] == "payments/db"));
    let by_scope = events("scope=payments");
    assert!(by_scope.iter().any(|e| e["subject"] == "payments"));
    assert!(by_scope.iter().all(|e| {
        e["subject"]
            .as_str()
            .is_some_and(|s| s == "payments" || s.starts_with("payments/"))
    }));
    assert!(!by_scope.iter().any(|e| e["subject"] == "search/idx"));
    let by_alice = events("actor=operator:alice");
    assert!(by_alice.len() >= 2 && by_alice.iter().all(|e| e["actor"] == "operator:alice"));
    assert!(by_alice.iter().any(|e| e["reason"] == tricky));
    let last_ms = all.last().and_then(|e| e["at_ms"].as_u64()).expect("at_ms");
    assert!(events(&format!("since_ms={}", last_ms + 1)).is_empty());
    assert!(events(&format!("until_ms={}", before_ms.saturating_sub(1))).is_empty());
    assert_eq!(
        events(&format!("since_ms={before_ms}&until_ms={last_ms}")).len(),
        all.len()
    );

    // phase: paging with after_index
    let mut paged = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = http::get(&addr, &format!("/api/v1/audit?{query}")).json();
        let batch = page["events"].as_array().cloned().unwrap_or_default();
        assert!(batch.len() <= 1);
        paged.extend(batch);
        match page["next_after_index"].as_u64() {
            Some(next) => query = format!("limit=1&after_index={next}"),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // phase: CSV export
    let csv = http::get(&addr, "/api/v1/audit?format=csv&key=payments/db");
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-type")
            .is_some_and(|t| t.starts_with("text/csv"))
    );
    let lines: Vec<&str> = csv.body.trim_end().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "index,at_ms,at_utc,actor,kind,subject,from,to,reason,request_id,trace_id"
    );
    assert_eq!(lines.len(), by_key.len() + 1, "{}", csv.body);
    assert!(
        // The CLI sent a request id with the write and no trace context.
        lines[1].contains(",operator:alice,override,payments/db,CLOSED,FORCED_OPEN,\"db \"\"maintenance\"\", part 1\",")
            && !lines[1].ends_with(",,"),
        "{}",
        lines[1]
    );
    let page = http::get(&addr, "/api/v1/audit?format=csv&limit=1");
    assert!(page.header("x-switchyard-next-after-index").is_some());

    // phase: bad queries name the parameter
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1000000", "limit"),
        ("since_ms=yesterday", "since_ms"),
        ("since_ms=10&until_ms=5", "until_ms"),
        ("format=xml", "format"),
        ("scope=Pay/ments", "scope"),
        ("actor=alice", "actor"),
        ("colour=red", "colour"),
    ] {
        let reply = http::get(&addr, &format!("/api/v1/audit?{query}"));
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(reply.json()["field"], field, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_actions_need_the_admin_token_when_one_is_set() {
    // Goal: with SWITCHYARD_ADMIN_TOKEN set, POST/DELETE actions and the audit trail refuse
    // callers without the token (401) or with a wrong one (403), and so do reads.
    let cluster = ready_cluster(1, &[("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let addr = cluster.nodes[&1].http.clone();
    let open = r#"{"mode": "forced_open", "reason": "auth test"}"#;
    let path = "/api/v1/breakers/payments/db/override";

    // phase: refused without or with a wrong token, and nothing changes
    let r = post(&addr, path, None, "mallory", open);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["field"], "authorization");
    let r = post(&addr, path, Some("guess"), "mallory", open);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        &addr,
        "/api/v1/tiers/payments",
        None,
        "mallory",
        r#"{"tier": 5}"#,
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = http::request(
        "DELETE",
        &addr,
        "/api/v1/tiers/payments",
        &[("Content-Type", "application/json")],
        None,
    )
    .expect("DELETE");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(http::get(&addr, "/api/v1/audit").status, 401);
    assert_eq!(
        http::get(&addr, "/api/v1/breakers").status,
        401,
        "reads need the token too"
    );
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let breakers = http::request(
        "GET",
        &addr,
        "/api/v1/breakers",
        &[("Authorization", &auth)],
        None,
    )
    .expect("GET");
    assert_eq!(
        breakers.json()["breakers"].as_array().map(Vec::len),
        Some(0),
        "nothing changed"
    );

    // phase: accepted with the token, and validated
    let r = post(&addr, path, Some(ADMIN_TOKEN), "alice", open);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["index"].as_u64().is_some());
    let breakers = http::request(
        "GET",
        &addr,
        "/api/v1/breakers",
        &[("Authorization", &auth)],
        None,
    )
    .expect("GET");
    assert_eq!(breakers.json()["breakers"][0]["state"], "FORCED_OPEN");
    let r = post(
        &addr,
        path,
        Some(ADMIN_TOKEN),
        "alice",
        r#"{"mode": "ajar"}"#,
    );
    assert_eq!((r.status, r.json()["field"].clone()), (400, "mode".into()));
    // an override needs a reason, over HTTP as over gRPC and the CLI
    let r = post(
        &addr,
        path,
        Some(ADMIN_TOKEN),
        "alice",
        r#"{"mode": "forced_open", "reason": "  "}"#,
    );
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (400, "reason".into())
    );
    let r = post(
        &addr,
        "/api/v1/tiers/payments",
        Some(ADMIN_TOKEN),
        "alice",
        r#"{"tier": 9}"#,
    );
    assert_eq!((r.status, r.json()["field"].clone()), (400, "tier".into()));
    let r =
        http::request("POST", &addr, path, &[("Authorization", &auth)], Some(open)).expect("POST");
    assert_eq!(
        r.status, 415,
        "a write without a JSON content type: {}",
        r.body
    );
    let audit = http::request(
        "GET",
        &addr,
        "/api/v1/audit",
        &[("Authorization", &auth)],
        None,
    )
    .expect("GET");
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert_eq!(audit.json()["events"][0]["actor"], "operator:alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_a_forced_open_breaker_in_a_real_browser() {
    // Goal: the dashboard at / renders in headless Chromium with no external assets, asks for
    // a token and logs in with the viewer token, follows the cluster live (a breaker forced
    // open by the CLI shows FORCED_OPEN within seconds), shows the degraded indicator, fits
    // its cards at 1400 px, and its buttons change state through the HTTP API once the
    // operator gives the admin token.
    let Some((chromium, driver)) = webdriver::browser_tools() else {
        tool_available(
            false,
            "chromium and chromedriver (apt-get install chromium chromium-driver)",
            "SWITCHYARD_REQUIRE_BROWSER",
        );
        return;
    };
    const VIEWER_TOKEN: &str = "dashboard-viewer-token";
    let env = [
        ("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN),
        ("SWITCHYARD_VIEWER_TOKEN", VIEWER_TOKEN),
    ];
    let cluster = ready_cluster(1, &env).await;
    let node = &cluster.nodes[&1];

    // phase: a cluster with traffic, a degraded scope and a healthy one
    for round in 0..3 {
        report(&node.grpc, "web-1", "payments/db", 80, 1, 20 + round * 10).await;
        report(&node.grpc, "web-2", "payments/db", 70, 0, 35).await;
        report(&node.grpc, "web-1", "payments/ml-fraud", 40, 0, 120).await;
        report(&node.grpc, "web-2", "search/idx", 90, 0, 4).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let pinned = post(
        &node.http,
        "/api/v1/tiers/payments",
        Some(ADMIN_TOKEN),
        "setup",
        r#"{"tier": 3, "reason": "a long reason that must not push the pin controls out of their card"}"#,
    );
    assert_eq!(pinned.status, 200, "{}", pinned.body);

    // phase: load the page: it asks for a token, and the viewer token opens it
    let browser = webdriver::Browser::start(&chromium, &driver, support::free_port(), 1400, 1100);
    browser.goto(&format!("http://{}/", node.http));
    assert!(
        browser.wait_for(
            Duration::from_secs(10),
            "return !document.getElementById('login').hidden",
        ),
        "the page did not ask for a token on 401"
    );
    browser.eval(&format!(
        "document.getElementById('login-token').value = '{VIEWER_TOKEN}'; \
         document.getElementById('login-submit').click(); return true;"
    ));
    let stored = browser.eval(
        "return [sessionStorage.getItem('switchyard.token') !== null, \
                 localStorage.length, document.cookie];",
    );
    assert_eq!(
        stored,
        serde_json::json!([true, 0, ""]),
        "the token is kept in session storage only"
    );
    assert!(
        browser.wait_for(
            Duration::from_secs(10),
            "return document.querySelector('tr[data-key=\"payments/ml-fraud\"]') !== null",
        ),
        "the breaker table never rendered"
    );

    // phase: force a breaker open with the CLI; the page shows it within a few seconds
    let forced_at = Instant::now();
    let out = Command::new(support::binary())
        .env("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .args([
            "--endpoints",
            &node.grpc,
            "breaker",
            "open",
            "payments/ml-fraud",
        ])
        .args(["--reason", "dashboard test"])
        .output()
        .expect("run switchyard breaker open");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state_is = |key: &str, state: &str| {
        format!(
            "const s = document.querySelector('tr[data-key=\"{key}\"] .state'); \
             return s !== null && s.textContent === '{state}';"
        )
    };
    assert!(
        browser.wait_for(
            Duration::from_secs(5),
            &state_is("payments/ml-fraud", "FORCED_OPEN")
        ),
        "FORCED_OPEN did not appear within 5 s"
    );
    println!(
        "FORCED_OPEN shown {:?} after the CLI call",
        forced_at.elapsed()
    );
    let degraded = browser.eval(
        "const d = document.getElementById('degraded'); return [d.className, d.textContent];",
    );
    assert_eq!(degraded[0], "bad", "{degraded}");
    assert!(
        degraded[1]
            .as_str()
            .is_some_and(|t| t.contains("payments ESSENTIAL"))
    );

    // phase: the tier table fits its card: no horizontal scrollbar, the pin controls inside
    let layout = browser.eval(
        "const row = document.querySelector('#scopes tr[data-scope=\"payments\"]'); \
         const card = row.closest('section').getBoundingClientRect(); \
         const last = row.querySelector('.actions button:last-of-type').getBoundingClientRect(); \
         return [document.documentElement.scrollWidth <= window.innerWidth, \
                 last.right <= card.right, Math.round(last.right), Math.round(card.right)];",
    );
    assert_eq!(
        layout[0], true,
        "a horizontal scrollbar at 1400 px: {layout}"
    );
    assert_eq!(
        layout[1], true,
        "the pin controls overflow their card: {layout}"
    );

    // phase: the page's own button, with the viewer token, is refused; the page asks for a
    // token, the operator gives the admin token, and the action goes through
    browser.eval(&format!(
        "window.prompt = () => '{ADMIN_TOKEN}'; return true;"
    ));
    browser.click("tr[data-key=\"search/idx\"] button:nth-of-type(2)");
    assert!(
        browser.wait_for(
            Duration::from_secs(5),
            &state_is("search/idx", "FORCED_CLOSED")
        ),
        "the force close button did not take effect"
    );
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let audit = http::request(
        "GET",
        &node.http,
        "/api/v1/audit?key=search/idx",
        &[("Authorization", &auth)],
        None,
    )
    .expect("GET audit")
    .json();
    assert!(
        audit["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["actor"] == "operator:dashboard")),
        "{audit}"
    );

    // phase: charts drawn, then a screenshot for a human to look at
    assert!(
        browser.wait_for(
            Duration::from_secs(10),
            "return document.querySelectorAll('#charts svg polyline').length >= 3",
        ),
        "no chart lines drawn"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let png = browser.screenshot_png();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG"
    );
    let in_temp = cluster.dir.path().join("dashboard.png");
    std::fs::write(&in_temp, &png).expect("write screenshot");
    let in_target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../dashboard.png");
    std::fs::write(&in_target, &png).expect("write target/dashboard.png");
    println!(
        "dashboard screenshot: {} ({} bytes)",
        in_target.display(),
        png.len()
    );
}
