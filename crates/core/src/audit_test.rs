//! Tests of the audit log: stored forms, queries, retention, chunking.

use super::*;
use crate::stored_layout::{self, Layout};

fn event(index: u64, at_ms: u64) -> AuditEvent {
    let alice = Actor::Operator("alice".into());
    AuditEvent::new(
        index,
        at_ms,
        AuditKind::Override,
        alice,
        format!("svc/dep-{}", index % 3),
    )
    .before("closed")
    .after("forced_open")
    .reason(format!("change {index}"))
}

/// The event as it was stored before `kind` and `actor` were typed: plain strings.
#[derive(Serialize)]
struct StringlyEvent<'a> {
    index: u64,
    at_ms: u64,
    actor: &'a str,
    subject: &'a str,
    kind: &'a str,
    from: &'a str,
    to: &'a str,
    reason: &'a str,
}

#[test]
fn events_stored_before_typed_kinds_decode_unchanged() {
    // Goal: a snapshot written when `kind` and `actor` were strings decodes into the typed
    // event, and the typed event encodes to the very same bytes.
    let old = StringlyEvent {
        index: 9,
        at_ms: 1_000,
        actor: "instance:app-1",
        subject: "payments/db",
        kind: "probe",
        from: "",
        to: "permit 3",
        reason: "lease until 11000 ms",
    };
    let old_layout = |bytes: &[u8]| {
        let bytes = bytes.to_vec();
        stored_layout::decoding(Layout::BeforeRequestIds, move || {
            bincode::deserialize::<AuditEvent>(&bytes)
        })
    };
    let bytes = bincode::serialize(&old).expect("encode");
    let event = old_layout(&bytes).expect("the old form decodes");
    let instance = crate::InstanceId::parse("app-1").expect("instance");
    assert_eq!(event.actor, Actor::Instance(instance));
    assert_eq!(event.kind, AuditKind::Probe);
    assert_eq!(
        (event.request_id.clone(), event.trace_id.clone()),
        (None, None)
    );
    // Today's form is the old one followed by the request id and trace id.
    let mut with_ids = bytes.clone();
    with_ids.extend([0, 0]);
    assert_eq!(bincode::serialize(&event).expect("encode"), with_ids);
    // phase: a stored kind this build does not know is refused by name, not misread
    let unknown = StringlyEvent {
        kind: "renamed",
        ..old
    };
    let bytes = bincode::serialize(&unknown).expect("encode");
    let err = old_layout(&bytes).expect_err("unknown kind");
    assert!(err.to_string().contains("kind"), "{err}");
}

#[test]
fn events_keep_their_request_and_trace_ids_in_todays_layout() {
    let trace = crate::RequestTrace {
        request_id: "req-1".into(),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    };
    let event = event(3, 30).request(Some(&trace));
    assert_eq!(
        event.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let bytes = bincode::serialize(&event).expect("encode");
    assert_eq!(
        bincode::deserialize::<AuditEvent>(&bytes).expect("decode"),
        event
    );
    // JSON written before the fields existed reads with none.
    let json = serde_json::to_value(event.clone().request(None)).expect("json");
    let mut old = json.as_object().expect("object").clone();
    old.remove("request_id");
    old.remove("trace_id");
    let back: AuditEvent = serde_json::from_value(old.into()).expect("old JSON");
    assert_eq!(back, event.request(None));
}

#[test]
fn every_kind_round_trips_through_its_name() {
    for kind in AuditKind::ALL {
        assert_eq!(kind.as_str().parse::<AuditKind>().expect("parses"), kind);
    }
    let err = "overide".parse::<AuditKind>().expect_err("misspelt");
    assert_eq!(err.field, "kind");
}

fn log_of(n: u64) -> AuditLog {
    let mut log = AuditLog::default();
    for i in 1..=n {
        log.push(event(i, i * 10));
    }
    log
}

fn indexes(log: &AuditLog) -> Vec<u64> {
    log.events().map(|e| e.index).collect()
}

/// The layout before chunking: events in order, then the dropped count.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Unchunked {
    events: VecDeque<AuditEvent>,
    dropped: u64,
}

#[test]
fn events_come_back_in_order_across_chunk_boundaries() {
    let n = (AUDIT_CHUNK_EVENTS * 2 + 5) as u64;
    let log = log_of(n);
    assert_eq!(log.len(), n as usize);
    assert_eq!(indexes(&log), (1..=n).collect::<Vec<_>>());
    assert_eq!(log.events().next_back().map(|e| e.index), Some(n));
}

#[test]
fn retention_by_count_drops_the_oldest_across_chunks_and_counts_them() {
    let n = (AUDIT_CHUNK_EVENTS * 3) as u64;
    let mut log = log_of(n);
    let keep = AUDIT_CHUNK_EVENTS as u32 + 7;
    log.enforce_retention(n * 10, u64::MAX, keep);
    assert_eq!(log.len(), keep as usize);
    assert_eq!(log.dropped(), n - u64::from(keep));
    assert_eq!(
        indexes(&log),
        (n - u64::from(keep) + 1..=n).collect::<Vec<_>>()
    );
    // Down to nothing, then growing again.
    log.enforce_retention(n * 10, u64::MAX, 0);
    assert!(log.is_empty());
    assert_eq!(log.dropped(), n);
    log.push(event(n + 1, n * 10 + 10));
    assert_eq!(indexes(&log), vec![n + 1]);
}

#[test]
fn retention_by_age_stops_at_the_first_event_young_enough() {
    let mut log = log_of(3_000);
    // Events are at 10 ms steps: keep those at or after 25 000 ms (index 2 500 on).
    log.enforce_retention(30_000, 5_000, u32::MAX);
    assert_eq!(log.events().next().map(|e| e.index), Some(2_500));
    assert_eq!(log.len(), 501);
    assert_eq!(log.dropped(), 2_499);
}

#[test]
fn a_copy_shares_sealed_chunks_and_is_unaffected_by_later_changes() {
    let mut log = log_of((AUDIT_CHUNK_EVENTS * 2 + 1) as u64);
    let copy = log.clone();
    assert!(Arc::ptr_eq(&log.sealed[0], &copy.sealed[0]));
    log.push(event(9_999, 99_990));
    log.enforce_retention(99_990, u64::MAX, 10);
    assert_eq!(copy.len(), AUDIT_CHUNK_EVENTS * 2 + 1);
    assert_eq!(copy.events().next().map(|e| e.index), Some(1));
    assert_ne!(log, copy);
}

#[test]
fn the_stored_form_is_the_unchunked_layout_and_round_trips() {
    let mut log = log_of((AUDIT_CHUNK_EVENTS + 300) as u64);
    log.enforce_retention(0, u64::MAX, 1_200);
    let json = serde_json::to_string(&log).unwrap();
    let unchunked: Unchunked = serde_json::from_str(&json).unwrap();
    assert_eq!(unchunked.dropped, log.dropped());
    assert_eq!(
        unchunked.events.iter().map(|e| e.index).collect::<Vec<_>>(),
        indexes(&log)
    );
    let bin = bincode::serialize(&log).unwrap();
    assert_eq!(bin, bincode::serialize(&unchunked).unwrap());
    let back: AuditLog = bincode::deserialize(&bin).unwrap();
    assert_eq!(back, log);
    assert_eq!(back.dropped(), log.dropped());
}
