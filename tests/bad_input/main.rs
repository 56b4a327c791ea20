//! Bad input, for every RPC and every CLI command: each invalid request gets
//! `InvalidArgument` (or `ResourceExhausted` at a limit, `NotFound` for a missing subject)
//! with a message naming the field, and changes nothing: the cluster's state read back after
//! every refused request equals the state before it.

#[path = "../support/mod.rs"]
mod support;

mod malformed_report;

use std::process::Command;
use std::time::Duration;

use support::{Cluster, admin, binary, client, eventually};
use switchyard_core::{BreakerKey, ClusterSettings, Policy, PolicyTarget, Scope};
use switchyard_proto::admin::{self as apb, admin_client::AdminClient};
use switchyard_proto::client::{self as pb, client_client::ClientClient};
use tonic::Code;
use tonic::transport::Channel;

const ELECTION: Duration = Duration::from_secs(15);

/// A change that makes a valid policy invalid.
type PolicyMutation = Box<dyn Fn(&mut pb::Policy)>;

/// Everything an operator can read back, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Observed {
    breakers: Vec<apb::BreakerInfo>,
    policies: Vec<apb::PolicyEntry>,
    tiers: Vec<apb::ScopeInfo>,
    settings: Option<apb::ClusterSettings>,
    audit: Vec<apb::AuditEvent>,
    members: Vec<apb::Member>,
}

async fn observe(admin: &mut AdminClient<Channel>) -> Observed {
    let mut breakers = admin
        .list_breakers(apb::ListBreakersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .breakers;
    // Window counters move with time on their own; compare what a request could change.
    for b in &mut breakers {
        b.window_calls = 0;
        b.window_failures = 0;
        b.window_slow = 0;
        b.window_instances = 0;
    }
    Observed {
        breakers,
        policies: admin
            .list_policies(apb::ListPoliciesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .policies,
        tiers: admin
            .list_tiers(apb::ListTiersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .scopes,
        settings: admin
            .get_settings(apb::GetSettingsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .settings,
        audit: admin
            .query_audit(apb::QueryAuditRequest {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events,
        members: admin
            .list_members(apb::ListMembersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .members,
    }
}

/// Asserts a refused call: the code, a message naming `field`, and no state change.
async fn refused<T: std::fmt::Debug>(
    admin: &mut AdminClient<Channel>,
    before: &Observed,
    what: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    field: &str,
) {
    let status = match result {
        Ok(ok) => panic!("{what}: expected {code:?}, got success {ok:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{what}: {}", status.message());
    assert!(
        status.message().contains(field),
        "{what}: the message {:?} does not name `{field}`",
        status.message()
    );
    let after = observe(admin).await;
    assert_eq!(
        before, &after,
        "{what}: state changed after a refused request"
    );
}

fn policy_entry(target: apb::PolicyTarget, policy: Option<pb::Policy>) -> apb::PolicyEntry {
    apb::PolicyEntry {
        target: Some(target),
        policy,
    }
}

fn key_target(key: &str) -> apb::PolicyTarget {
    apb::PolicyTarget {
        target: Some(apb::policy_target::Target::Key(key.into())),
    }
}

fn good_policy() -> pb::Policy {
    pb::Policy::from(&Policy::default())
}

fn delta(key: &str, calls: u64, failures: u64) -> pb::BreakerDelta {
    pb::BreakerDelta {
        key: key.into(),
        calls,
        failures,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_rpc_refuses_bad_input_and_changes_nothing() {
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(ELECTION).await;
    let addr = cluster.nodes[&1].grpc.clone();
    let mut admin = admin(&addr).await;
    // phase: some state to protect
    admin
        .set_override(apb::SetOverrideRequest {
            key: "payments/db".into(),
            mode: apb::OverrideMode::ForcedOpen as i32,
            reason: "setup".into(),
            for_ms: None,
        })
        .await
        .unwrap();
    let before = observe(&mut admin).await;
    let mut a = admin.clone();

    // phase: breaker overrides
    let bad_keys = [
        ("", "empty key"),
        ("Payments/DB", "uppercase"),
        ("payments", "no slash"),
        ("payments/db/x", "two slashes"),
        ("payments/d b", "a space"),
    ];
    for (key, why) in bad_keys {
        let r = a
            .set_override(apb::SetOverrideRequest {
                key: key.into(),
                mode: apb::OverrideMode::ForcedOpen as i32,
                reason: "x".into(),
                for_ms: None,
            })
            .await;
        refused(
            &mut admin,
            &before,
            &format!("set_override key {why}"),
            r,
            Code::InvalidArgument,
            "key",
        )
        .await;
    }
    let long_key = format!("payments/{}", "a".repeat(200));
    let r = a
        .set_override(apb::SetOverrideRequest {
            key: long_key,
            mode: 1,
            reason: "x".into(),
            for_ms: None,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "set_override key too long",
        r,
        Code::InvalidArgument,
        "key",
    )
    .await;
    for mode in [0, 99, -1] {
        let r = a
            .set_override(apb::SetOverrideRequest {
                key: "payments/x".into(),
                mode,
                reason: "x".into(),
                for_ms: None,
            })
            .await;
        refused(
            &mut admin,
            &before,
            &format!("set_override mode {mode}"),
            r,
            Code::InvalidArgument,
            "mode",
        )
        .await;
    }
    let r = a
        .set_override(apb::SetOverrideRequest {
            key: "payments/x".into(),
            mode: 1,
            reason: "r".repeat(5000),
            for_ms: None,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "set_override reason too long",
        r,
        Code::InvalidArgument,
        "reason",
    )
    .await;
    let r = a
        .set_override(apb::SetOverrideRequest {
            key: "payments/x".into(),
            mode: 1,
            reason: "a\u{7}b".into(),
            for_ms: None,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "set_override reason control char",
        r,
        Code::InvalidArgument,
        "reason",
    )
    .await;
    let r = a
        .set_override(apb::SetOverrideRequest {
            key: "payments/x".into(),
            mode: 1,
            reason: "x".into(),
            for_ms: Some(0),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "set_override for_ms 0",
        r,
        Code::InvalidArgument,
        "for_ms",
    )
    .await;
    let r = a
        .reset_breaker(apb::ResetBreakerRequest {
            key: "payments/unknown".into(),
            reason: "x".into(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "reset unknown breaker",
        r,
        Code::NotFound,
        "payments/unknown",
    )
    .await;
    let r = a
        .clear_override(apb::ClearOverrideRequest {
            key: "BAD".into(),
            reason: "x".into(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "clear_override bad key",
        r,
        Code::InvalidArgument,
        "key",
    )
    .await;
    let r = a
        .get_breaker(apb::GetBreakerRequest {
            key: "payments/nope".into(),
            local: false,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "get unknown breaker",
        r,
        Code::NotFound,
        "payments/nope",
    )
    .await;

    // phase: policies
    let r = a
        .put_policies(apb::PutPoliciesRequest {
            policies: vec![],
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "put_policies empty",
        r,
        Code::InvalidArgument,
        "policies",
    )
    .await;
    let r = a
        .put_policies(apb::PutPoliciesRequest {
            policies: vec![policy_entry(key_target("payments/x"), None)],
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "put_policies missing policy",
        r,
        Code::InvalidArgument,
        "policy",
    )
    .await;
    let cases: Vec<(&str, PolicyMutation)> = vec![
        (
            "failure_rate_threshold",
            Box::new(|p| p.failure_rate_threshold = 0),
        ),
        (
            "failure_rate_threshold",
            Box::new(|p| p.failure_rate_threshold = 150),
        ),
        (
            "slow_call_rate_threshold",
            Box::new(|p| p.slow_call_rate_threshold = 101),
        ),
        ("min_calls", Box::new(|p| p.min_calls = 0)),
        ("min_instances", Box::new(|p| p.min_instances = 0)),
        ("probe_permits", Box::new(|p| p.probe_permits = 0)),
        ("probe_lease_ms", Box::new(|p| p.probe_lease_ms = 0)),
        (
            "open_duration_ms",
            Box::new(|p| p.open_duration_ms = u64::MAX),
        ),
        ("window", Box::new(|p| p.window = None)),
        (
            "buckets",
            Box::new(|p| {
                p.window = Some(pb::policy::Window::Time(pb::TimeWindow {
                    duration_ms: 10_000,
                    buckets: 0,
                }))
            }),
        ),
        (
            "calls",
            Box::new(|p| {
                p.window = Some(pb::policy::Window::Count(pb::CountWindow {
                    calls: 0,
                    max_age_ms: None,
                }))
            }),
        ),
        (
            "max_age_ms",
            Box::new(|p| {
                p.window = Some(pb::policy::Window::Count(pb::CountWindow {
                    calls: 10,
                    max_age_ms: Some(5),
                }))
            }),
        ),
        (
            "fresh_span_confidence",
            Box::new(|p| p.fresh_span_confidence = Some(97.0)),
        ),
    ];
    for (field, mutate) in cases {
        let mut policy = good_policy();
        mutate(&mut policy);
        // A valid entry first: the batch is all-or-nothing, so it must not be stored either.
        let r = a
            .put_policies(apb::PutPoliciesRequest {
                policies: vec![
                    policy_entry(key_target("payments/fine"), Some(good_policy())),
                    policy_entry(key_target("payments/x"), Some(policy)),
                ],
                reason: String::new(),
            })
            .await;
        refused(
            &mut admin,
            &before,
            &format!("put_policies bad {field}"),
            r,
            Code::InvalidArgument,
            field,
        )
        .await;
    }
    let r = a
        .put_policies(apb::PutPoliciesRequest {
            policies: vec![
                policy_entry(key_target("payments/x"), Some(good_policy())),
                policy_entry(key_target("payments/x"), Some(good_policy())),
            ],
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "put_policies duplicate target",
        r,
        Code::InvalidArgument,
        "policies[1]",
    )
    .await;
    let r = a
        .get_policy(apb::GetPolicyRequest {
            target: None,
            local: false,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "get_policy missing target",
        r,
        Code::InvalidArgument,
        "target",
    )
    .await;
    let r = a
        .delete_policy(apb::DeletePolicyRequest {
            target: Some(key_target("payments/none")),
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "delete missing policy",
        r,
        Code::NotFound,
        "payments/none",
    )
    .await;

    // phase: tiers
    for tier in [0, 6, 1000] {
        let r = a
            .set_tier_override(apb::SetTierOverrideRequest {
                scope: "payments".into(),
                tier,
                reason: "x".into(),
                for_ms: None,
            })
            .await;
        refused(
            &mut admin,
            &before,
            &format!("set tier {tier}"),
            r,
            Code::InvalidArgument,
            "tier",
        )
        .await;
    }
    let r = a
        .set_tier_override(apb::SetTierOverrideRequest {
            scope: "Pay/ments".into(),
            tier: 2,
            reason: "x".into(),
            for_ms: None,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "set tier bad scope",
        r,
        Code::InvalidArgument,
        "scope",
    )
    .await;
    let r = a
        .put_tier_rules(apb::PutTierRulesRequest {
            rules: None,
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "put_tier_rules missing",
        r,
        Code::InvalidArgument,
        "rules",
    )
    .await;
    let mut features = std::collections::BTreeMap::new();
    features.insert("Bad Feature!".to_string(), 2u32);
    let r = a
        .put_tier_rules(apb::PutTierRulesRequest {
            rules: Some(apb::TierRules {
                scope: "payments".into(),
                recover_after_ms: 1000,
                rules: vec![],
                features,
            }),
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "put_tier_rules bad feature",
        r,
        Code::InvalidArgument,
        "features",
    )
    .await;
    let r = a
        .get_tier(apb::GetTierRequest {
            scope: "nothing".into(),
            local: false,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "get tier of unknown scope",
        r,
        Code::NotFound,
        "nothing",
    )
    .await;

    // phase: audit, SLA, settings, members
    let r = a
        .query_audit(apb::QueryAuditRequest {
            limit: 1_000_000,
            ..Default::default()
        })
        .await;
    refused(
        &mut admin,
        &before,
        "audit page too large",
        r,
        Code::ResourceExhausted,
        "limit",
    )
    .await;
    let r = a
        .query_audit(apb::QueryAuditRequest {
            key: Some("NOPE".into()),
            ..Default::default()
        })
        .await;
    refused(
        &mut admin,
        &before,
        "audit bad key",
        r,
        Code::InvalidArgument,
        "key",
    )
    .await;
    let r = a
        .sla_report(apb::SlaReportRequest {
            key: String::new(),
            window: "2h".into(),
            local: false,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "sla bad window",
        r,
        Code::InvalidArgument,
        "window",
    )
    .await;
    let mut settings = apb::ClusterSettings::from(&ClusterSettings::default());
    if let Some(slo) = settings.slo.as_mut() {
        slo.availability_percent = f64::NAN;
    }
    let r = a
        .put_settings(apb::PutSettingsRequest {
            settings: Some(settings),
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "settings NaN",
        r,
        Code::InvalidArgument,
        "availability_percent",
    )
    .await;
    let r = a
        .add_learner(apb::AddLearnerRequest {
            node_id: 0,
            addr: "127.0.0.1:1".into(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "add learner id 0",
        r,
        Code::InvalidArgument,
        "node_id",
    )
    .await;
    let r = a
        .add_learner(apb::AddLearnerRequest {
            node_id: 9,
            addr: "nope".into(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "add learner bad addr",
        r,
        Code::InvalidArgument,
        "addr",
    )
    .await;
    let r = a
        .remove_member(apb::RemoveMemberRequest { node_id: 42 })
        .await;
    refused(
        &mut admin,
        &before,
        "remove unknown member",
        r,
        Code::NotFound,
        "42",
    )
    .await;
    let r = a
        .promote_member(apb::PromoteMemberRequest { node_id: 0 })
        .await;
    refused(
        &mut admin,
        &before,
        "promote id 0",
        r,
        Code::InvalidArgument,
        "node_id",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_rpc_refuses_bad_input_and_reports_respect_the_limits() {
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(ELECTION).await;
    let addr = cluster.nodes[&1].grpc.clone();
    let mut admin = admin(&addr).await;
    let mut sdk: ClientClient<Channel> = client(&addr).await;
    // A scope default policy: breakers created by reports must get it.
    let scope_policy = Policy {
        min_calls: 33,
        ..Policy::default()
    };
    let target = PolicyTarget::Scope(Scope::parse("fleet").unwrap());
    admin
        .put_policies(apb::PutPoliciesRequest {
            policies: vec![apb::PolicyEntry::from((&target, &scope_policy))],
            reason: String::new(),
        })
        .await
        .unwrap();
    let before = observe(&mut admin).await;

    // phase: malformed reports
    let report = |instance: &str, deltas: Vec<pb::BreakerDelta>| pb::ReportRequest {
        instance: instance.into(),
        deltas,
    };
    let r = sdk.report(report("", vec![delta("fleet/a", 1, 0)])).await;
    refused(
        &mut admin,
        &before,
        "report empty instance",
        r,
        Code::InvalidArgument,
        "instance",
    )
    .await;
    let r = sdk
        .report(report("i-1", vec![delta("fleet/a", 1, 2)]))
        .await;
    refused(
        &mut admin,
        &before,
        "report failures > calls",
        r,
        Code::InvalidArgument,
        "deltas[0]",
    )
    .await;
    let r = sdk
        .report(report(
            "i-1",
            vec![delta("fleet/a", 1, 0), delta("BAD", 1, 0)],
        ))
        .await;
    refused(
        &mut admin,
        &before,
        "report bad key",
        r,
        Code::InvalidArgument,
        "deltas[1].key",
    )
    .await;
    let r = sdk
        .report(report(
            "i-1",
            vec![delta("fleet/a", 1, 0), delta("fleet/a", 1, 0)],
        ))
        .await;
    refused(
        &mut admin,
        &before,
        "report duplicate key",
        r,
        Code::InvalidArgument,
        "deltas[1].key",
    )
    .await;
    let mut bad_latency = delta("fleet/a", 2, 0);
    bad_latency.latency = vec![
        pb::LatencyBucket { index: 5, count: 1 },
        pb::LatencyBucket { index: 3, count: 1 },
    ];
    let r = sdk.report(report("i-1", vec![bad_latency])).await;
    refused(
        &mut admin,
        &before,
        "report unsorted latency",
        r,
        Code::InvalidArgument,
        "latency",
    )
    .await;
    // At the limit: 10 001 deltas in one report (the default limit is 10 000).
    let many: Vec<_> = (0..10_001)
        .map(|i| delta(&format!("fleet/k{i}"), 1, 0))
        .collect();
    let r = sdk.report(report("i-1", many)).await;
    refused(
        &mut admin,
        &before,
        "report over the delta limit",
        r,
        Code::ResourceExhausted,
        "deltas",
    )
    .await;

    // phase: watch, probes
    let r = sdk
        .watch(pb::WatchRequest {
            scopes: vec!["NOT A SCOPE".into()],
            known_index: 0,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "watch bad scope",
        r.map(|r| r.map(|_| ())),
        Code::InvalidArgument,
        "scopes[0]",
    )
    .await;
    let r = sdk
        .acquire_probe(pb::AcquireProbeRequest {
            key: "fleet/none".into(),
            instance: "i-1".into(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "probe unknown breaker",
        r,
        Code::NotFound,
        "fleet/none",
    )
    .await;
    let r = sdk
        .acquire_probe(pb::AcquireProbeRequest {
            key: "fleet/a".into(),
            instance: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "probe empty instance",
        r,
        Code::InvalidArgument,
        "instance",
    )
    .await;
    let r = sdk
        .release_probe(pb::ReleaseProbeRequest {
            key: "fleet/a".into(),
            permit_id: 1,
            outcome: 0,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "release outcome unspecified",
        r,
        Code::InvalidArgument,
        "outcome",
    )
    .await;

    // phase: a report for an unknown breaker creates it with its scope's default policy
    sdk.report(report("i-1", vec![delta("fleet/new", 3, 0)]))
        .await
        .unwrap();
    let info = eventually(ELECTION, "the reported breaker to exist", || {
        let mut admin = admin.clone();
        async move {
            admin
                .get_breaker(apb::GetBreakerRequest {
                    key: "fleet/new".into(),
                    local: false,
                })
                .await
                .ok()
                .map(|r| r.into_inner())
        }
    })
    .await;
    let policy = info.breaker.unwrap().decision.unwrap().policy.unwrap();
    assert_eq!(
        policy.min_calls, 33,
        "created with the scope's default policy"
    );

    // phase: ... up to the breakers-per-cluster limit
    let count = observe(&mut admin).await.breakers.len() as u32;
    let settings = ClusterSettings {
        max_breakers: count + 2,
        ..ClusterSettings::default()
    };
    admin
        .put_settings(apb::PutSettingsRequest {
            settings: Some((&settings).into()),
            reason: String::new(),
        })
        .await
        .unwrap();
    let keys: Vec<_> = (0..5)
        .map(|i| delta(&format!("fleet/over-{i}"), 1, 0))
        .collect();
    sdk.report(report("i-2", keys)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let breakers = observe(&mut admin).await.breakers;
    assert_eq!(
        breakers.len() as u32,
        count + 2,
        "creation stops at max_breakers"
    );
}

fn cli(endpoints: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary())
        .arg("--endpoints")
        .arg(endpoints)
        .args(args)
        .env_remove("SWITCHYARD_ADMIN_TOKEN")
        .output()
        .expect("run the CLI");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cli_command_refuses_bad_input_and_changes_nothing() {
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(ELECTION).await;
    let addr = cluster.nodes[&1].grpc.clone();
    let mut admin = admin(&addr).await;
    let before = observe(&mut admin).await;
    let dir = tempfile::tempdir().unwrap();
    let wrong_type = dir.path().join("wrong-type.toml");
    std::fs::write(
        &wrong_type,
        "key = \"payments/x\"\nfailure_rate_threshold = \"high\"\n",
    )
    .unwrap();
    let out_of_range = dir.path().join("range.toml");
    std::fs::write(&out_of_range, "key = \"payments/x\"\nprobe_permits = 0\n").unwrap();
    let unknown_field = dir.path().join("unknown.toml");
    std::fs::write(&unknown_field, "key = \"payments/x\"\nfailure_rate = 50\n").unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{\"key\": \"payments/x\", \"min_calls\": -5}").unwrap();
    let bad_rules = dir.path().join("rules.toml");
    std::fs::write(&bad_rules, "scope = \"payments\"\n[[rule]]\nwhen = { breaker = \"payments/db\", state = \"sideways\" }\ntier = 3\n").unwrap();
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["breaker".into(), "open".into(), "Payments/X".into()],
            "key",
        ),
        (
            vec![
                "breaker".into(),
                "open".into(),
                "payments/x".into(),
                "--for".into(),
                "5 parsecs".into(),
            ],
            "--for",
        ),
        (
            vec![
                "breaker".into(),
                "open".into(),
                "payments/x".into(),
                "--for=-5m".into(),
            ],
            "--for",
        ),
        (
            vec!["breaker".into(), "reset".into(), "payments/unknown".into()],
            "payments/unknown",
        ),
        (
            vec!["policy".into(), "put".into(), p(&wrong_type)],
            "failure_rate_threshold",
        ),
        (
            vec!["policy".into(), "put".into(), p(&out_of_range)],
            "probe_permits",
        ),
        (
            vec!["policy".into(), "put".into(), p(&unknown_field)],
            "failure_rate",
        ),
        (
            vec!["policy".into(), "put".into(), p(&bad_json)],
            "min_calls",
        ),
        (
            vec![
                "policy".into(),
                "put".into(),
                "/nonexistent/policy.toml".into(),
            ],
            "policy.toml",
        ),
        (
            vec!["tier".into(), "set".into(), "payments".into(), "9".into()],
            "tier",
        ),
        (
            vec![
                "tier".into(),
                "set".into(),
                "payments".into(),
                "SIDEWAYS".into(),
            ],
            "tier",
        ),
        (
            vec!["tier".into(), "rules".into(), "put".into(), p(&bad_rules)],
            "state",
        ),
        (
            vec!["audit".into(), "--since".into(), "yesterday".into()],
            "--since",
        ),
        (vec!["sla".into(), "--window".into(), "2h".into()], "window"),
        (
            vec![
                "members".into(),
                "add-learner".into(),
                "0".into(),
                "127.0.0.1:1".into(),
            ],
            "node_id",
        ),
        (vec!["members".into(), "remove".into(), "42".into()], "42"),
    ];
    for (args, names) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stderr) = cli(&addr, &argv);
        assert!(!ok, "`switchyard {}` succeeded", args.join(" "));
        assert!(
            stderr.contains(names),
            "`switchyard {}`: stderr does not name `{names}`:\n{stderr}",
            args.join(" ")
        );
        let after = observe(&mut admin).await;
        assert_eq!(
            before,
            after,
            "`switchyard {}` changed state",
            args.join(" ")
        );
    }
    let _ = BreakerKey::parse("payments/x").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier_rule_and_raft_rpcs_refuse_bad_input_and_change_nothing() {
    // Goal: the RPCs the suites above do not reach (ClearTierOverride, GetTierRules,
    // DeleteTierRules, and every Raft RPC with a corrupt payload) refuse bad input by name.
    use switchyard_proto::raft::{RaftMessage, SnapshotChunk, raft_client::RaftClient};
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(ELECTION).await;
    let addr = cluster.nodes[&1].grpc.clone();
    let mut admin = admin(&addr).await;
    let before = observe(&mut admin).await;
    let mut a = admin.clone();

    // phase: tier RPCs with a malformed scope
    let r = a
        .clear_tier_override(apb::ClearTierOverrideRequest {
            scope: "Not A Scope".into(),
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "clear tier bad scope",
        r,
        Code::InvalidArgument,
        "scope",
    )
    .await;
    let r = a
        .get_tier_rules(apb::GetTierRulesRequest {
            scope: String::new(),
            local: false,
        })
        .await;
    refused(
        &mut admin,
        &before,
        "get tier rules empty scope",
        r,
        Code::InvalidArgument,
        "scope",
    )
    .await;
    let r = a
        .delete_tier_rules(apb::DeleteTierRulesRequest {
            scope: "payments/db".into(),
            reason: String::new(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "delete tier rules key as scope",
        r,
        Code::InvalidArgument,
        "scope",
    )
    .await;
    let r = a
        .delete_tier_rules(apb::DeleteTierRulesRequest {
            scope: "payments".into(),
            reason: "bell\u{7}".into(),
        })
        .await;
    refused(
        &mut admin,
        &before,
        "delete tier rules control char",
        r,
        Code::InvalidArgument,
        "reason",
    )
    .await;

    // phase: Raft RPCs with empty, unknown-version and truncated payloads
    let mut raft = RaftClient::new(support::channel(&addr).await.unwrap());
    for (what, payload) in [
        ("empty", vec![]),
        ("unknown version", vec![9, 1, 2, 3]),
        ("truncated", vec![1, 0xff]),
    ] {
        let r = raft
            .vote(RaftMessage {
                payload: payload.clone(),
            })
            .await;
        refused(
            &mut admin,
            &before,
            &format!("vote {what}"),
            r,
            Code::InvalidArgument,
            "vote request",
        )
        .await;
        let r = raft
            .append_entries(RaftMessage {
                payload: payload.clone(),
            })
            .await;
        refused(
            &mut admin,
            &before,
            &format!("append {what}"),
            r,
            Code::InvalidArgument,
            "append entries",
        )
        .await;
        let r = raft.forward(RaftMessage { payload }).await;
        refused(
            &mut admin,
            &before,
            &format!("forward {what}"),
            r,
            Code::InvalidArgument,
            "forward request",
        )
        .await;
    }
    let r = raft
        .install_snapshot(tokio_stream::iter(Vec::<SnapshotChunk>::new()))
        .await;
    refused(
        &mut admin,
        &before,
        "empty snapshot stream",
        r,
        Code::InvalidArgument,
        "snapshot",
    )
    .await;
    let chunk = SnapshotChunk {
        vote: vec![1, 0xff],
        ..Default::default()
    };
    let r = raft.install_snapshot(tokio_stream::iter(vec![chunk])).await;
    refused(
        &mut admin,
        &before,
        "corrupt snapshot vote",
        r,
        Code::InvalidArgument,
        "snapshot vote",
    )
    .await;
}
