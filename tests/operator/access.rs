//! Who may call which HTTP route (DESIGN §8): every `/api/v1/` route refused without a token
//! and with a wrong one, reads allowed with the viewer token and writes refused to it,
//! everything allowed with the admin token; health and metrics open unless asked.

use crate::http::{self, Reply};
use crate::ready_cluster;

const ADMIN: &str = "adm-Xq81Lw0Pz";
const VIEWER: &str = "vie-Hn52Ko9Tb";
const CLIENT: &str = "cli-Rt40Ms7Ya";

/// One request, with `token` as a bearer token when given.
fn call(addr: &str, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    http::request(method, addr, path, &headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Every `/api/v1/` route: (method, path, body, is a read the viewer may make).
const ROUTES: &[(&str, &str, Option<&str>, bool)] = &[
    ("GET", "/api/v1/status", None, true),
    ("GET", "/api/v1/breakers", None, true),
    ("GET", "/api/v1/breakers/payments/db/history", None, true),
    ("GET", "/api/v1/tiers", None, true),
    ("GET", "/api/v1/sla?window=24h", None, true),
    ("GET", "/api/v1/audit", None, false),
    (
        "POST",
        "/api/v1/breakers/payments/db/override",
        Some(r#"{"mode": "forced_closed", "reason": "access test"}"#),
        false,
    ),
    (
        "DELETE",
        "/api/v1/breakers/payments/db/override",
        Some(r#"{"reason": "access test"}"#),
        false,
    ),
    (
        "POST",
        "/api/v1/breakers/payments/db/reset",
        Some(r#"{"reason": "access test"}"#),
        false,
    ),
    (
        "POST",
        "/api/v1/tiers/payments",
        Some(r#"{"tier": 2, "reason": "access test"}"#),
        false,
    ),
    (
        "DELETE",
        "/api/v1/tiers/payments",
        Some(r#"{"reason": "access test"}"#),
        false,
    ),
];

/// Asserts a refusal: its status, that it names the token it needs, and no token's value.
fn assert_refused(r: &Reply, status: u16, needs: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    let json = r.json();
    assert_eq!(json["field"], "authorization", "{what}");
    let message = json["error"].as_str().unwrap_or_default();
    assert!(message.contains(needs), "{what}: {message}");
    for secret in [ADMIN, VIEWER, CLIENT, "guess-123"] {
        assert!(!r.body.contains(secret), "{what} shows a token: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_needs_a_token_and_the_viewer_token_only_reads() {
    // Goal: with admin, viewer and client tokens set, each route × {no token, wrong token,
    // viewer, client, admin} gets exactly the answer DESIGN §8 gives it.
    let env = [
        ("SWITCHYARD_ADMIN_TOKEN", ADMIN),
        ("SWITCHYARD_VIEWER_TOKEN", VIEWER),
        ("SWITCHYARD_CLIENT_TOKEN", CLIENT),
    ];
    let cluster = ready_cluster(1, &env).await;
    let addr = cluster.nodes[&1].http.clone();
    // A breaker to read the history of.
    let r = call(&addr, "POST", ROUTES[6].1, ROUTES[6].2, Some(ADMIN));
    assert_eq!(r.status, 200, "{}", r.body);

    for &(method, path, body, viewer_may) in ROUTES {
        let what = format!("{method} {path}");
        let needs = if viewer_may {
            "the viewer or the admin token"
        } else {
            "the admin token"
        };
        // phase: refused without a token (401) and with a wrong one (403)
        let r = call(&addr, method, path, body, None);
        assert_refused(&r, 401, needs, &format!("{what} without a token"));
        assert!(r.json()["error"].as_str().unwrap().contains("missing"));
        let r = call(&addr, method, path, body, Some("guess-123"));
        assert_refused(&r, 403, needs, &format!("{what} with a wrong token"));
        // phase: the client (SDK) token opens no HTTP route
        let r = call(&addr, method, path, body, Some(CLIENT));
        assert_refused(
            &r,
            403,
            "client token",
            &format!("{what} with the client token"),
        );
        // phase: the viewer token reads, and is refused for writes and the audit trail
        let r = call(&addr, method, path, body, Some(VIEWER));
        if viewer_may {
            assert_eq!(r.status, 200, "{what} with the viewer token: {}", r.body);
        } else {
            assert_refused(
                &r,
                403,
                "viewer token is read-only",
                &format!("{what} (viewer)"),
            );
        }
        // phase: the admin token opens every route
        let r = call(&addr, method, path, body, Some(ADMIN));
        assert_eq!(r.status, 200, "{what} with the admin token: {}", r.body);
    }

    // phase: health, readiness, metrics and the dashboard page stay open
    for path in ["/healthz", "/readyz", "/metrics", "/"] {
        assert_eq!(http::get(&addr, path).status, 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_viewer_token_when_asked() {
    // Goal: --metrics-require-token (here its variable) closes /metrics to callers without the
    // viewer or admin token, while /healthz and /readyz stay open for probes.
    let env = [
        ("SWITCHYARD_ADMIN_TOKEN", ADMIN),
        ("SWITCHYARD_VIEWER_TOKEN", VIEWER),
        ("SWITCHYARD_METRICS_REQUIRE_TOKEN", "true"),
    ];
    let cluster = ready_cluster(1, &env).await;
    let addr = cluster.nodes[&1].http.clone();
    let r = call(&addr, "GET", "/metrics", None, None);
    assert_refused(
        &r,
        401,
        "the viewer or the admin token",
        "/metrics without a token",
    );
    let r = call(&addr, "GET", "/metrics", None, Some("guess-123"));
    assert_refused(
        &r,
        403,
        "the viewer or the admin token",
        "/metrics, wrong token",
    );
    for token in [VIEWER, ADMIN] {
        let r = call(&addr, "GET", "/metrics", None, Some(token));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("switchyard_"), "{}", r.body);
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(http::get(&addr, path).status, 200, "{path}");
    }
}
