//! A state written while the derived indexes were still stored (record format 3) loads into
//! exactly the state it was taken from, indexes included: they are rebuilt on load.
//!
//! `fixtures/state_v3.bin` was written by the build before the change from the state that
//! [`indexed_state`] builds: a version byte 3, then bincode with variable-length integers of
//! the state with its deadline index and tier-scope set. The state has something in both
//! indexes: an OPEN breaker, an override and a probe lease with deadlines, a scope with tier
//! rules and a pinned scope with an expiry.

use bincode::Options;
use std::collections::BTreeMap;
use switchyard_core::*;

use crate::helpers::*;

const V3: &[u8] = include_bytes!("fixtures/state_v3.bin");

/// The state the fixture was taken from, built again by applying the same commands.
fn indexed_state() -> Harness {
    let mut h = Harness::with_scope_policy(exact_policy());
    h.ok(
        T0,
        Command::PutTierRules {
            rules: TierRules {
                scope: scope("payments"),
                recover_after_ms: 30_000,
                rules: vec![TierRule {
                    when: TierCondition::BreakerState {
                        breaker: key("payments/ml-fraud"),
                        state: ConditionState::Open,
                    },
                    tier: Tier::Essential,
                }],
                features: BTreeMap::new(),
            },
        },
    );
    h.trip("payments/ml-fraud", T0 + 1);
    let half_open_at = h.half_open("payments/fraud", T0 + 2);
    h.granted(half_open_at, "payments/fraud", "i-1");
    h.ok(
        half_open_at,
        Command::SetOverride {
            key: key("payments/db"),
            mode: OverrideMode::ForcedOpen,
            reason: "incident 42".into(),
            expires_at_ms: Some(half_open_at + 600_000),
        },
    );
    h.ok(
        half_open_at,
        Command::SetTierOverride {
            scope: scope("orders"),
            tier: Tier::ReadOnly,
            reason: "db migration".into(),
            expires_at_ms: Some(half_open_at + 900_000),
        },
    );
    h
}

fn load_v3() -> CoordinatorState {
    assert_eq!(V3[0], 3, "a version-3 record");
    stored_layout::decoding(stored_layout::Layout::BeforeRequestIds, || {
        bincode::DefaultOptions::new().deserialize::<StateWithStoredIndexes>(&V3[1..])
    })
    .expect("the version-3 state decodes in its layout")
    .into()
}

#[test]
fn a_state_with_stored_indexes_loads_equal_to_the_state_it_was_taken_from() {
    let original = indexed_state().state;
    // Both indexes hold something: a pending deadline, and scopes tier evaluation visits.
    let deadline = original.next_deadline_ms().expect("a deadline is pending");
    let loaded = load_v3();
    // Equality covers every field, the rebuilt indexes included.
    assert_eq!(loaded, original);
    assert_eq!(loaded.next_deadline_ms(), Some(deadline));
}

#[test]
fn the_indexes_are_left_out_of_todays_layout_and_rebuilt_on_load() {
    let original = indexed_state().state;
    let bytes = bincode::DefaultOptions::new().serialize(&original).unwrap();
    assert!(
        bytes.len() < V3.len() - 1,
        "today's layout ({} bytes) is smaller than the one with stored indexes ({} bytes)",
        bytes.len(),
        V3.len() - 1
    );
    let back: CoordinatorState = bincode::DefaultOptions::new().deserialize(&bytes).unwrap();
    assert_eq!(back, original);
}

#[test]
fn a_loaded_state_fires_its_deadlines_and_keeps_its_tiers() {
    // Applying the same commands to the loaded state and to the original gives the same
    // results: the rebuilt indexes drive the same timed transitions and tier evaluations.
    let mut original = indexed_state();
    let mut loaded = Harness {
        index: original.index,
        state: load_v3(),
    };
    let later = original.state.now_ms() + 3_600_000;
    for h in [&mut original, &mut loaded] {
        let fx = h.tick(later, vec![]);
        assert!(!fx.is_empty(), "the override, the lease and the pin expire");
        assert_eq!(h.state_of("payments/ml-fraud"), BreakerState::HalfOpen);
    }
    assert_eq!(loaded.state, original.state);
}
