//! The harnesses behind Switchyard's fuzz targets, one function per target.
//!
//! Each function takes raw fuzzer bytes and drives one input boundary exactly as the node does:
//! decode, then validate. None may panic, whatever the bytes: bad input is a `Result` (DESIGN
//! §8). The Report harness also holds the node's own Report reader to the generated codec and
//! panics where they differ: that difference is a bug too. The first byte of an input selects which message or format the rest is read as, so one
//! target covers a whole service and its corpus can be seeded from real encodings of every
//! message (see `examples/seeds.rs`).
//!
//! Why a few grouped targets and not one per RPC: the request messages share most of their
//! validation code (keys, scopes, policies, tier rules), so grouping lets coverage found through
//! one message help the others, and CI runs five targets instead of thirty.

#![forbid(unsafe_code)]

use std::ops::Bound;
use std::sync::Arc;

use futures::executor::block_on;
use openraft::RaftLogReader;
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, VoteOf};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use prost::Message;
use switchyard_core::AuditQuery;
use switchyard_proto::admin as apb;
use switchyard_proto::client as pb;
use switchyard_proto::convert;
use switchyard_store::codec;
use switchyard_store::disk::{Disk, Op, TreeId};
use switchyard_store::{MemDisk, TypeConfig};

/// Splits an input into its selector byte and body.
fn split(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, body)| (*s, body))
}

/// Decodes a protobuf message, then runs `validate` on it if it decoded.
fn decode_then<M: Message + Default, R, E>(body: &[u8], validate: impl FnOnce(M) -> Result<R, E>) {
    if let Ok(message) = M::decode(body) {
        let _ = validate(message);
    }
}

/// Number of client request kinds (selector modulus of [`client_request`]).
pub const CLIENT_KINDS: u8 = 4;

/// `switchyard.client.v1` requests: Report, Watch, AcquireProbe, ReleaseProbe.
pub fn client_request(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    match selector % CLIENT_KINDS {
        0 => report(body),
        1 => decode_then(body, |r: pb::WatchRequest| convert::watch_scopes(&r)),
        2 => decode_then(body, |r: pb::AcquireProbeRequest| {
            convert::AcquireProbe::try_from(r)
        }),
        _ => decode_then(body, |r: pb::ReleaseProbeRequest| {
            convert::ReleaseProbe::try_from(r)
        }),
    }
}

/// A Report body as the node reads it ([`convert::ReportWire`]), held to the generated codec's
/// reading: the same report, or the same validation error, and malformed exactly where prost's
/// decode fails. A difference panics, so the fuzzer reports it.
fn report(body: &[u8]) {
    let ours = convert::ReportWire::parse(body).and_then(|wire| wire.decode());
    let reference = pb::ReportRequest::decode(body).map(convert::Report::try_from);
    match (ours, reference) {
        (Ok(a), Ok(Ok(b))) => assert_eq!(a, b, "the same report"),
        (Err(convert::ReportWireError::Invalid(a)), Ok(Err(b))) => {
            assert_eq!(a, b, "the same validation error")
        }
        (Err(convert::ReportWireError::Malformed(_)), Err(_)) => {}
        (ours, reference) => panic!("ReportWire read {ours:?} where prost read {reference:?}"),
    }
}

/// Number of admin request kinds (selector modulus of [`admin_request`]).
pub const ADMIN_KINDS: u8 = 25;

/// `switchyard.admin.v1` requests, every RPC of the Admin service in proto order.
pub fn admin_request(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    match selector % ADMIN_KINDS {
        0 => decode_then(body, |_: apb::StatusRequest| Ok::<(), ()>(())),
        1 => decode_then(body, |r: apb::ListBreakersRequest| {
            convert::list_breakers_filter(&r)
        }),
        2 => decode_then(body, |r: apb::GetBreakerRequest| {
            convert::get_breaker_key(&r)
        }),
        3 => decode_then(body, |r: apb::SetOverrideRequest| {
            convert::SetOverride::try_from(r)
        }),
        4 => decode_then(body, |r: apb::ClearOverrideRequest| {
            convert::KeyAction::try_from(r)
        }),
        5 => decode_then(body, |r: apb::ResetBreakerRequest| {
            convert::KeyAction::try_from(r)
        }),
        6 => decode_then(body, |r: apb::PutPoliciesRequest| {
            convert::PutPolicies::try_from(r)
        }),
        7 => decode_then(body, |r: apb::GetPolicyRequest| {
            convert::get_policy_target(r)
        }),
        8 => decode_then(body, |_: apb::ListPoliciesRequest| Ok::<(), ()>(())),
        9 => decode_then(body, |r: apb::DeletePolicyRequest| {
            convert::DeletePolicy::try_from(r)
        }),
        10 => decode_then(body, |r: apb::GetTierRequest| convert::get_tier_scope(&r)),
        11 => decode_then(body, |_: apb::ListTiersRequest| Ok::<(), ()>(())),
        12 => decode_then(body, |r: apb::SetTierOverrideRequest| {
            convert::SetTierOverride::try_from(r)
        }),
        13 => decode_then(body, |r: apb::ClearTierOverrideRequest| {
            convert::ScopeAction::try_from(r)
        }),
        14 => decode_then(body, |r: apb::PutTierRulesRequest| {
            convert::PutTierRules::try_from(r)
        }),
        15 => decode_then(body, |r: apb::GetTierRulesRequest| {
            convert::get_tier_rules_scope(&r)
        }),
        16 => decode_then(body, |r: apb::DeleteTierRulesRequest| {
            convert::ScopeAction::try_from(r)
        }),
        17 => decode_then(body, |r: apb::QueryAuditRequest| AuditQuery::try_from(r)),
        18 => decode_then(body, |r: apb::SlaReportRequest| {
            convert::SlaReportQuery::try_from(r)
        }),
        19 => decode_then(body, |_: apb::ListMembersRequest| Ok::<(), ()>(())),
        20 => decode_then(body, |r: apb::AddLearnerRequest| {
            convert::AddLearner::try_from(r)
        }),
        21 => decode_then(body, |r: apb::PromoteMemberRequest| {
            convert::MemberAction::try_from(r)
        }),
        22 => decode_then(body, |r: apb::RemoveMemberRequest| {
            convert::MemberAction::try_from(r)
        }),
        23 => decode_then(body, |_: apb::GetSettingsRequest| Ok::<(), ()>(())),
        _ => decode_then(body, |r: apb::PutSettingsRequest| {
            convert::PutSettings::try_from(r)
        }),
    }
}

/// Number of file kinds (selector modulus of [`file`]).
pub const FILE_KINDS: u8 = 4;

/// Operator files: policy files and tier rule files, each as TOML and as JSON.
pub fn file(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    // The CLI reads files as UTF-8 and reports anything else before parsing.
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    match selector % FILE_KINDS {
        0 => {
            let _ = switchyard_core::parse_policy_toml(text);
        }
        1 => {
            let _ = switchyard_core::parse_policy_json(text);
        }
        2 => {
            let _ = switchyard_core::parse_tier_rules_toml(text);
        }
        _ => {
            let _ = switchyard_core::parse_tier_rules_json(text);
        }
    }
}

/// Number of record kinds (selector modulus of [`store_record`]).
pub const RECORD_KINDS: u8 = 9;

/// Versioned bincode records: what the store reads back from disk, and the opaque payloads
/// of the Raft service (decoded with the same codec before openraft sees them).
pub fn store_record(data: &[u8]) {
    let Some((selector, body)) = split(data) else {
        return;
    };
    match selector % RECORD_KINDS {
        0 => {
            let _ = codec::decode::<EntryOf<TypeConfig>>("log entry", body);
        }
        1 => {
            let _ = codec::decode::<VoteOf<TypeConfig>>("vote", body);
        }
        2 => {
            let _ = codec::decode::<Option<LogIdOf<TypeConfig>>>("committed log id", body);
        }
        3 => {
            let _ = codec::decode::<LogIdOf<TypeConfig>>("last purged log id", body);
        }
        4 => {
            let _ = codec::decode::<SnapshotMetaOf<TypeConfig>>("snapshot meta", body);
        }
        5 => {
            let _ = codec::decode::<VoteRequest<TypeConfig>>("vote request", body);
        }
        6 => {
            let _ = codec::decode::<AppendEntriesRequest<TypeConfig>>("append entries", body);
        }
        7 => {
            let _ = codec::decode::<switchyard_server::forward::ForwardRequest>("forward", body);
        }
        _ => {
            let _ = codec::decode::<switchyard_server::forward::ForwardReply>("reply", body);
        }
    }
}

/// One record of a [`store_open`] input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRecord {
    /// Which tree.
    pub tree: TreeId,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
}

fn tree_of(byte: u8) -> TreeId {
    match byte % 3 {
        0 => TreeId::Log,
        1 => TreeId::Meta,
        _ => TreeId::Snapshot,
    }
}

fn tree_byte(tree: TreeId) -> u8 {
    match tree {
        TreeId::Log => 0,
        TreeId::Meta => 1,
        TreeId::Snapshot => 2,
    }
}

/// Frames records as a [`store_open`] input:
/// `[tree u8][key len u8][key][value len u32 LE][value]`, repeated.
pub fn frame_records(records: &[SeedRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.push(tree_byte(r.tree));
        let key = &r.key[..r.key.len().min(255)];
        out.push(key.len() as u8);
        out.extend_from_slice(key);
        out.extend_from_slice(&(r.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.value);
    }
    out
}

/// Parses framed records; a truncated tail becomes a record holding what is left (truncation
/// is one of the corruptions worth fuzzing).
pub fn parse_records(mut data: &[u8]) -> Vec<SeedRecord> {
    let mut records = Vec::new();
    while data.len() >= 2 {
        let tree = tree_of(data[0]);
        let key_len = usize::from(data[1]);
        data = &data[2..];
        let key = data[..key_len.min(data.len())].to_vec();
        data = &data[key.len()..];
        let mut len_bytes = [0u8; 4];
        let n = data.len().min(4);
        len_bytes[..n].copy_from_slice(&data[..n]);
        data = &data[n..];
        let value_len = (u32::from_le_bytes(len_bytes) as usize).min(data.len());
        let value = data[..value_len].to_vec();
        data = &data[value_len..];
        records.push(SeedRecord { tree, key, value });
    }
    records
}

/// Opens a store on a disk seeded with arbitrary records and reads everything a starting node
/// reads: log state, vote, committed index, every log entry, the current snapshot, the applied
/// state. Each must succeed or return an error; none may panic. Then the last snapshot-tree
/// value is offered to `install_snapshot`, as a peer's snapshot would be.
pub fn store_open(data: &[u8]) {
    let records = parse_records(data);
    let disk = MemDisk::new();
    for r in &records {
        // MemDisk writes cannot fail; an error here would be a harness bug worth a crash.
        disk.apply(r.tree, vec![Op::Put(r.key.clone(), r.value.clone())])
            .expect("MemDisk apply");
    }
    let disk: Arc<dyn Disk> = Arc::new(disk);
    let Ok((mut log, mut sm)) = switchyard_store::open_on(disk.clone()) else {
        return;
    };
    block_on(async {
        let _ = log.get_log_state().await;
        let _ = log.read_vote().await;
        let _ = log.read_committed().await;
        let _ = log.try_get_log_entries(0..u64::MAX).await;
        let _ = log.try_get_log_entries(3..=7).await;
        let _ = sm.get_current_snapshot().await;
        let _ = sm.applied_state().await;
        let snapshot = disk
            .range(TreeId::Snapshot, Bound::Unbounded, Bound::Unbounded)
            .ok()
            .and_then(|pairs| pairs.last().map(|(_, v)| v.clone()));
        if let Some(bytes) = snapshot {
            let meta = SnapshotMetaOf::<TypeConfig>::default();
            let _ = sm.install_snapshot(&meta, bytes).await;
        }
    });
}
