//! Writes the seed corpora of every fuzz target from real encodings: protobuf requests the SDK
//! and CLI send, the policy and tier files of DESIGN §6, and store records written by the real
//! store (log entries, vote, snapshot). Run from `fuzz/`: `cargo run --example seeds`.
//!
//! Seeds matter because the inputs are deeply structured (protobuf inside a selector byte,
//! bincode inside a version byte): starting from valid encodings puts the fuzzer past the
//! first decode error on the first execution instead of after millions.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use futures::executor::block_on;
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::storage::{IOFlushed, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log_id;
use openraft::{Membership, Vote};
use prost::Message;
use switchyard_core::{
    Actor, BreakerKey, ClusterSettings, Command, Delta, Envelope, InstanceId, LatencySketch,
    OverrideMode, parse_policy_toml, parse_tier_rules_toml,
};
use switchyard_fuzz::{SeedRecord, frame_records};
use switchyard_proto::admin as apb;
use switchyard_proto::client as pb;
use switchyard_proto::convert::Report;
use switchyard_server::forward::ForwardRequest;
use switchyard_store::codec::encode;
use switchyard_store::disk::{Disk, TreeId};
use switchyard_store::{MemDisk, Request, TypeConfig};

const POLICY_TOML: &str = r#"
key = "payments/ml-fraud"
failure_rate_threshold = 50
min_calls = 20
min_instances = 2
open_duration_ms = 30000
probe_permits = 3
window = { kind = "time", duration_ms = 10000, buckets = 10 }
"#;

const POLICY_ARRAY_TOML: &str = r#"
[[policy]]
scope = "payments"
min_calls = 5
[[policy]]
key = "payments/db"
window = { kind = "count", calls = 100 }
"#;

const POLICY_JSON: &str = r#"{"policy":[{"scope":"payments","min_calls":5},{"key":"payments/db","window":{"kind":"count","calls":100}}]}"#;

const TIERS_TOML: &str = r#"
scope = "payments"
recover_after_ms = 30000
[[rule]]
when = { breaker = "payments/ml-fraud", state = "open" }
tier = 3
[[rule]]
when = { breaker = "payments/db", p95_latency_ms_above = 5000 }
tier = 4
[features]
ml_fraud = 2
"#;

const TIERS_JSON: &str = r#"{"scope":"payments","recover_after_ms":30000,"rule":[{"when":{"breaker":"payments/ml-fraud","state":"open"},"tier":3},{"when":{"breaker":"payments/db","failure_rate_above":40},"tier":2}],"features":{"ml_fraud":2}}"#;

fn write(target: &str, name: &str, selector: u8, body: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    let mut bytes = vec![selector];
    bytes.extend_from_slice(body);
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn key(s: &str) -> BreakerKey {
    BreakerKey::parse(s).expect("seed key")
}

fn delta(k: &str, instance: &str) -> Delta {
    let mut latency = LatencySketch::default();
    latency.record_n(12_000, 40);
    latency.record_n(250_000, 2);
    Delta {
        key: key(k),
        instance: InstanceId::parse(instance).expect("seed instance"),
        calls: 42,
        failures: 3,
        slow: 2,
        rejected: 1,
        latency,
        first_attempts: 30,
        retries: 4,
    }
}

fn client_seeds() {
    let report = Report {
        instance: InstanceId::parse("checkout-7f9c").expect("seed instance"),
        deltas: vec![
            delta("payments/db", "checkout-7f9c"),
            delta("payments/ml-fraud", "checkout-7f9c"),
        ],
    };
    let t = "client_requests";
    write(
        t,
        "report",
        0,
        &pb::ReportRequest::from(&report).encode_to_vec(),
    );
    let watch = pb::WatchRequest {
        scopes: vec!["payments".into(), "search".into()],
        known_index: 17,
    };
    write(t, "watch", 1, &watch.encode_to_vec());
    let acquire = pb::AcquireProbeRequest {
        key: "payments/db".into(),
        instance: "checkout-7f9c".into(),
    };
    write(t, "acquire", 2, &acquire.encode_to_vec());
    let release = pb::ReleaseProbeRequest {
        key: "payments/db".into(),
        permit_id: 9,
        outcome: pb::ProbeOutcome::Success as i32,
    };
    write(t, "release", 3, &release.encode_to_vec());
}

fn admin_seeds() {
    let t = "admin_requests";
    let policies: Vec<apb::PolicyEntry> = parse_policy_toml(POLICY_ARRAY_TOML)
        .expect("seed policies")
        .iter()
        .chain(parse_policy_toml(POLICY_TOML).expect("seed policy").iter())
        .map(|(target, policy)| apb::PolicyEntry::from((target, policy)))
        .collect();
    let target = policies[0].target.clone();
    let rules = apb::TierRules::from(&parse_tier_rules_toml(TIERS_TOML).expect("seed rules"));
    let seeds: Vec<(u8, &str, Vec<u8>)> = vec![
        (0, "status", apb::StatusRequest::default().encode_to_vec()),
        (
            1,
            "list_breakers",
            apb::ListBreakersRequest {
                local: true,
                scope: "payments".into(),
                after_key: "payments/a".into(),
                limit: 50,
            }
            .encode_to_vec(),
        ),
        (
            2,
            "get_breaker",
            apb::GetBreakerRequest {
                key: "payments/db".into(),
                local: false,
            }
            .encode_to_vec(),
        ),
        (
            3,
            "set_override",
            apb::SetOverrideRequest {
                key: "payments/db".into(),
                mode: apb::OverrideMode::ForcedOpen as i32,
                reason: "maintenance window".into(),
                for_ms: Some(60_000),
            }
            .encode_to_vec(),
        ),
        (
            4,
            "clear_override",
            apb::ClearOverrideRequest {
                key: "payments/db".into(),
                reason: "done".into(),
            }
            .encode_to_vec(),
        ),
        (
            5,
            "reset",
            apb::ResetBreakerRequest {
                key: "payments/db".into(),
                reason: "fixed".into(),
            }
            .encode_to_vec(),
        ),
        (
            6,
            "put_policies",
            apb::PutPoliciesRequest {
                policies,
                reason: "rollout".into(),
            }
            .encode_to_vec(),
        ),
        (
            7,
            "get_policy",
            apb::GetPolicyRequest {
                target,
                local: false,
            }
            .encode_to_vec(),
        ),
        (
            8,
            "list_policies",
            apb::ListPoliciesRequest::default().encode_to_vec(),
        ),
        (
            9,
            "delete_policy",
            apb::DeletePolicyRequest::default().encode_to_vec(),
        ),
        (
            10,
            "get_tier",
            apb::GetTierRequest {
                scope: "payments".into(),
                local: true,
            }
            .encode_to_vec(),
        ),
        (
            11,
            "list_tiers",
            apb::ListTiersRequest::default().encode_to_vec(),
        ),
        (
            12,
            "set_tier",
            apb::SetTierOverrideRequest {
                scope: "payments".into(),
                tier: 3,
                reason: "drill".into(),
                for_ms: Some(30_000),
            }
            .encode_to_vec(),
        ),
        (
            13,
            "clear_tier",
            apb::ClearTierOverrideRequest {
                scope: "payments".into(),
                reason: "drill over".into(),
            }
            .encode_to_vec(),
        ),
        (
            14,
            "put_tier_rules",
            apb::PutTierRulesRequest {
                rules: Some(rules),
                reason: "new rules".into(),
            }
            .encode_to_vec(),
        ),
        (
            15,
            "get_tier_rules",
            apb::GetTierRulesRequest {
                scope: "payments".into(),
                local: false,
            }
            .encode_to_vec(),
        ),
        (
            16,
            "delete_tier_rules",
            apb::DeleteTierRulesRequest {
                scope: "payments".into(),
                reason: "gone".into(),
            }
            .encode_to_vec(),
        ),
        (
            17,
            "query_audit",
            apb::QueryAuditRequest {
                local: false,
                since_ms: Some(1_000),
                until_ms: Some(2_000),
                key: Some("payments/db".into()),
                scope: Some("payments".into()),
                actor: Some("alice".into()),
                after_index: Some(3),
                limit: 100,
            }
            .encode_to_vec(),
        ),
        (
            18,
            "sla",
            apb::SlaReportRequest {
                local: false,
                key: "payments/db".into(),
                window: "7d".into(),
            }
            .encode_to_vec(),
        ),
        (
            19,
            "list_members",
            apb::ListMembersRequest::default().encode_to_vec(),
        ),
        (
            20,
            "add_learner",
            apb::AddLearnerRequest {
                node_id: 4,
                addr: "10.0.0.4:7070".into(),
            }
            .encode_to_vec(),
        ),
        (
            21,
            "promote",
            apb::PromoteMemberRequest { node_id: 4 }.encode_to_vec(),
        ),
        (
            22,
            "remove",
            apb::RemoveMemberRequest { node_id: 4 }.encode_to_vec(),
        ),
        (
            23,
            "get_settings",
            apb::GetSettingsRequest::default().encode_to_vec(),
        ),
        (
            24,
            "put_settings",
            apb::PutSettingsRequest {
                settings: Some(apb::ClusterSettings::from(&ClusterSettings::default())),
                reason: "tune".into(),
            }
            .encode_to_vec(),
        ),
    ];
    for (selector, name, body) in seeds {
        write(t, name, selector, &body);
    }
}

fn file_seeds() {
    let t = "files";
    write(t, "policy_toml", 0, POLICY_TOML.as_bytes());
    write(t, "policy_array_toml", 0, POLICY_ARRAY_TOML.as_bytes());
    write(t, "policy_json", 1, POLICY_JSON.as_bytes());
    write(t, "tiers_toml", 2, TIERS_TOML.as_bytes());
    write(t, "tiers_json", 3, TIERS_JSON.as_bytes());
}

fn entry_normal(index: u64, command: Command) -> EntryOf<TypeConfig> {
    EntryOf::<TypeConfig>::new_normal(
        log_id::<TypeConfig>(2, 1, index),
        Request {
            stamped_ms: 1_700_000_000_000 + index,
            envelope: Arc::new(Envelope {
                actor: Actor::Operator("alice".into()),
                command,
                trace: None,
            }),
        },
    )
}

/// A realistic log: membership, a policy file, an override, a tick of deltas, tier rules.
fn sample_log() -> Vec<EntryOf<TypeConfig>> {
    let members: BTreeSet<u64> = [1, 2, 3].into();
    vec![
        EntryOf::<TypeConfig>::new_blank(log_id::<TypeConfig>(1, 1, 1)),
        EntryOf::<TypeConfig>::new_membership(
            log_id::<TypeConfig>(1, 1, 2),
            Membership::new_with_defaults(vec![members], []),
        ),
        entry_normal(
            3,
            Command::PutPolicies {
                policies: parse_policy_toml(POLICY_ARRAY_TOML).expect("seed policies"),
            },
        ),
        entry_normal(
            4,
            Command::SetOverride {
                key: key("payments/db"),
                mode: OverrideMode::ForcedOpen,
                reason: "drill".into(),
                expires_at_ms: Some(1_800_000_000_000),
            },
        ),
        entry_normal(
            5,
            Command::Tick {
                deltas: vec![
                    delta("payments/db", "a-1"),
                    delta("payments/ml-fraud", "b-2"),
                ]
                .into(),
            },
        ),
        entry_normal(
            6,
            Command::PutTierRules {
                rules: parse_tier_rules_toml(TIERS_TOML).expect("seed rules"),
            },
        ),
    ]
}

fn store_seeds() {
    let t = "store_records";
    let log = sample_log();
    for (i, entry) in log.iter().enumerate() {
        write(t, &format!("entry_{i}"), 0, &encode(entry));
    }
    let vote: VoteOf<TypeConfig> = Vote::new_committed(2, 1);
    write(t, "vote", 1, &encode(&vote));
    let committed: Option<LogIdOf<TypeConfig>> = Some(log_id::<TypeConfig>(2, 1, 6));
    write(t, "committed", 2, &encode(&committed));
    write(t, "purged", 3, &encode(&log_id::<TypeConfig>(1, 1, 1)));
    let meta = SnapshotMetaOf::<TypeConfig>::default();
    write(t, "snapshot_meta", 4, &encode(&meta));
    let vote_request = VoteRequest::<TypeConfig>::new(vote, Some(log_id::<TypeConfig>(2, 1, 6)));
    write(t, "vote_request", 5, &encode(&vote_request));
    let append = AppendEntriesRequest::<TypeConfig> {
        vote,
        prev_log_id: Some(log_id::<TypeConfig>(1, 1, 2)),
        entries: log[2..].to_vec(),
        leader_commit: Some(log_id::<TypeConfig>(2, 1, 4)),
    };
    write(t, "append_entries", 6, &encode(&append));
    let forward = ForwardRequest::Report {
        calls: vec![("a-1".into(), 1)],
        deltas: vec![delta("payments/db", "a-1")],
    };
    write(t, "forward_report", 7, &encode(&forward));
    write(t, "forward_read", 7, &encode(&ForwardRequest::ReadIndex));

    // A whole store, written by the real store code: the log, vote, committed index, and a
    // snapshot of the state after applying the log.
    let disk = MemDisk::new();
    let shared: Arc<dyn Disk> = Arc::new(disk.clone());
    let (mut log_store, mut sm) = switchyard_store::open_on(shared.clone()).expect("open store");
    block_on(async {
        log_store.save_vote(&vote).await.expect("save vote");
        log_store
            .append(log.clone(), IOFlushed::noop())
            .await
            .expect("append");
        log_store
            .save_committed(committed)
            .await
            .expect("save committed");
        let stream = futures::stream::iter(log.iter().cloned().map(|e| Ok((e, None))));
        sm.apply(stream).await.expect("apply");
        sm.build_snapshot().await.expect("snapshot");
    });
    let mut records = Vec::new();
    for tree in [TreeId::Log, TreeId::Meta, TreeId::Snapshot] {
        for (key, value) in shared
            .range(tree, Bound::Unbounded, Bound::Unbounded)
            .expect("range")
        {
            records.push(SeedRecord { tree, key, value });
        }
    }
    write("store_open", "whole_store", 0, &[]);
    // `write` prefixes a selector; store_open has none, so overwrite with the raw framing.
    let framed = frame_records(&records);
    std::fs::write(Path::new("corpus/store_open/whole_store"), &framed).expect("write seed");
    let snapshot_only: Vec<SeedRecord> = records
        .iter()
        .filter(|r| r.tree == TreeId::Snapshot)
        .cloned()
        .collect();
    std::fs::write(
        Path::new("corpus/store_open/snapshot_only"),
        frame_records(&snapshot_only),
    )
    .expect("write seed");
    let log_only: Vec<SeedRecord> = records
        .iter()
        .filter(|r| r.tree != TreeId::Snapshot)
        .cloned()
        .collect();
    std::fs::write(
        Path::new("corpus/store_open/log_and_meta"),
        frame_records(&log_only),
    )
    .expect("write seed");
}

fn main() {
    client_seeds();
    admin_seeds();
    file_seeds();
    store_seeds();
    println!("seed corpora written under corpus/");
}
