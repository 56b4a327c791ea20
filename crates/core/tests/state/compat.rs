//! A state written before the freshest-span rule (fine window positions, `max_age_ms`,
//! `fresh_span_confidence`) still loads, reads the same, and keeps working.
//!
//! `fixtures/state_v2.bin` was written by the build before the change: record format version 2
//! (a version byte, then bincode with variable-length integers), holding a time-window breaker
//! with three reporting instances, a count-window breaker, an OPEN one and a FORCED_OPEN one.
//! `fixtures/state_v2_views.json` is what that build showed for it.

use bincode::Options;
use serde_json::Value;
use switchyard_core::*;

use crate::helpers::*;

const V2: &[u8] = include_bytes!("fixtures/state_v2.bin");
const V2_VIEWS: &str = include_str!("fixtures/state_v2_views.json");

fn load(bytes: &[u8]) -> CoordinatorState {
    assert_eq!(bytes[0], 2, "a version-2 record");
    stored_layout::decoding(stored_layout::Layout::BeforeRequestIds, || {
        bincode::DefaultOptions::new().deserialize::<StateWithStoredIndexes>(&bytes[1..])
    })
    .expect("the version-2 state decodes")
    .into()
}

fn encode(state: &CoordinatorState) -> Vec<u8> {
    bincode::DefaultOptions::new().serialize(state).unwrap()
}

#[test]
fn a_state_from_before_the_fresh_span_rule_loads_and_reads_the_same() {
    let state = load(V2);
    let before: Value = serde_json::from_str(V2_VIEWS).unwrap();
    let views = state.breakers();
    assert_eq!(views.len(), 4);
    for (old, new) in before[0].as_array().unwrap().iter().zip(&views) {
        let new = serde_json::to_value(new).unwrap();
        for field in [
            "key",
            "state",
            "reason",
            "since_ms",
            "open_until_ms",
            "window_calls",
            "window_failures",
            "window_slow",
            "window_instances",
            "consecutive_opens",
        ] {
            assert_eq!(old[field], new[field], "{} {field}", old["key"]);
        }
    }
    // Old policies gain the new fields' defaults.
    let ledger = state
        .policy(&PolicyTarget::Key(key("payments/ledger")))
        .unwrap();
    assert_eq!(ledger.window, WindowSpec::count(100));
    assert_eq!(ledger.min_calls, 10);
    assert_eq!(ledger.fresh_span_confidence, Confidence::default());
    let scope_default = state
        .policy(&PolicyTarget::Scope(scope("payments")))
        .unwrap();
    assert_eq!(scope_default.open_jitter_percent, 0);
    // Written again, it is today's format and reads back identically.
    let again: CoordinatorState = bincode::DefaultOptions::new()
        .deserialize(&encode(&state))
        .unwrap();
    assert_eq!(again.digest(), state.digest());
    assert_eq!(again.breakers(), views);
}

#[test]
fn a_loaded_breaker_keeps_its_instances_and_trips_on_fresh_evidence() {
    let mut h = Harness {
        index: 13,
        state: load(V2),
    };
    let now = h.state.now_ms();
    // The three instances of payments/db are still inside its window (their marks were
    // rescaled to fine positions with the window).
    assert_eq!(h.view("payments/db").window_instances, 3);
    // 150 calls at 30 % in the window; 24 fresh failures from two instances 300 ms later
    // clear the freshest span, not the whole window (69 of 174).
    let fx = h.tick(
        now + 300,
        vec![
            delta("payments/db", "i-1", 12, 12, 0),
            delta("payments/db", "i-2", 12, 12, 0),
        ],
    );
    let changes = changed(&fx);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].1, BreakerState::Open);
    assert!(
        changes[0].2.contains("over the newest 24 calls")
            && changes[0].2.contains("from 2 instances"),
        "{}",
        changes[0].2
    );
    // The OPEN breaker still half-opens when its time comes.
    let until = h.view("payments/fraud").open_until_ms.unwrap();
    h.tick(until, vec![]);
    assert_eq!(h.state_of("payments/fraud"), BreakerState::HalfOpen);
}
