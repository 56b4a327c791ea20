//! The interning reader against the derived one, on the store's codec (the Forward RPC's).

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use switchyard_store::codec;

use super::*;

/// Deltas as the derived code writes them, with any strings as ids: the same bytes as
/// `Vec<Delta>` for valid ids, and invalid ones too.
#[derive(Debug, Clone, Serialize)]
struct RawDelta {
    key: String,
    instance: String,
    calls: u64,
    failures: u64,
    slow: u64,
    rejected: u64,
    latency: Vec<(u16, u64)>,
    first_attempts: u32,
    retries: u32,
}

#[derive(Debug, Deserialize)]
struct Interned(#[serde(deserialize_with = "deserialize")] Vec<Delta>);

/// Both readers on the same bytes: the deltas, or the error's text.
fn both(bytes: &[u8]) -> (Result<Vec<Delta>, String>, Result<Vec<Delta>, String>) {
    let derived = codec::decode::<Vec<Delta>>("deltas", bytes).map_err(|e| e.to_string());
    let interned = codec::decode::<Interned>("deltas", bytes)
        .map(|i| i.0)
        .map_err(|e| e.to_string());
    (interned, derived)
}

fn raw(key: &str, instance: &str, calls: u64) -> RawDelta {
    RawDelta {
        key: key.into(),
        instance: instance.into(),
        calls,
        failures: calls / 2,
        slow: 0,
        rejected: 1,
        latency: vec![(3, calls.max(1))],
        first_attempts: 2,
        retries: 1,
    }
}

#[test]
fn a_merged_batch_reads_as_the_derived_code_reads_it() {
    // As a follower sends it: per breaker, every instance in order.
    let mut batch = Vec::new();
    for key in ["pay/a", "pay/b", "ml/score"] {
        for instance in ["pod-1", "pod-2", "pod-3"] {
            batch.push(raw(key, instance, 4));
        }
    }
    // And unmerged: keys and instances interleaved, the same key again after another.
    batch.push(raw("pay/a", "pod-9", 1));
    batch.push(raw("pay/b", "pod-1", 1));
    batch.push(raw("pay/a", "pod-1", 1));
    let bytes = codec::encode(&batch);
    let (interned, derived) = both(&bytes);
    let deltas = derived.expect("valid");
    assert_eq!(deltas.len(), batch.len());
    assert_eq!(interned, Ok(deltas));
}

#[test]
fn an_invalid_id_is_refused_with_the_derived_codes_error() {
    for batch in [
        vec![raw("pay/a", "pod-1", 1), raw("Pay/a", "pod-1", 1)],
        vec![raw("pay/a", "pod-1", 1), raw("pay/a", "pod 1", 1)],
        vec![raw("pay/a", "", 1)],
        vec![raw("", "pod-1", 1)],
    ] {
        let (interned, derived) = both(&codec::encode(&batch));
        assert!(derived.is_err(), "{batch:?}");
        assert_eq!(interned, derived, "{batch:?}");
    }
    // Cut short inside the last delta.
    let mut bytes = codec::encode(&vec![raw("pay/a", "pod-1", 1); 3]);
    bytes.truncate(bytes.len() - 3);
    let (interned, derived) = both(&bytes);
    assert!(derived.is_err());
    assert_eq!(interned.is_err(), derived.is_err());
}

fn raw_delta() -> impl Strategy<Value = RawDelta> {
    let key = prop_oneof![
        Just("pay/a".to_owned()),
        Just("pay/b".to_owned()),
        Just("ml/score".to_owned()),
        Just("Bad/key".to_owned()),
    ];
    let instance = prop_oneof![
        Just("pod-1".to_owned()),
        Just("pod-2".to_owned()),
        Just("10.0.0.7:8080".to_owned()),
        Just("bad id".to_owned()),
    ];
    let latency = prop_oneof![
        Just(vec![]),
        Just(vec![(3u16, 1u64), (7, 2)]),
        Just(vec![(7u16, 1u64), (3, 2)]),
    ];
    (key, instance, 0..5u64, latency).prop_map(|(key, instance, calls, latency)| RawDelta {
        latency,
        ..raw(&key, &instance, calls)
    })
}

proptest! {
    #[test]
    fn any_batch_reads_as_the_derived_code_reads_it(
        batch in proptest::collection::vec(raw_delta(), 0..24),
    ) {
        let (interned, derived) = both(&codec::encode(&batch));
        prop_assert_eq!(interned, derived);
    }
}
