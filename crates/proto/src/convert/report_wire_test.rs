//! [`ReportWire`] against the generated code: prost's decode, then `Report::try_from`.

use proptest::prelude::*;
use prost::Message;
use switchyard_core::ValidationError;

use super::*;
use crate::client as pb;
use crate::convert::report_keys::KEY_CACHE_MAX;

/// What a decoder made of some bytes: the report, or the validation error (`Some`), or a
/// refusal of malformed bytes (`None`).
type Outcome = Result<Report, Option<ValidationError>>;

fn reference(bytes: &[u8]) -> Outcome {
    let request = pb::ReportRequest::decode(bytes).map_err(|_| None)?;
    Report::try_from(request).map_err(Some)
}

fn ours(bytes: &[u8]) -> Outcome {
    ReportWire::parse(bytes)
        .and_then(|wire| wire.decode())
        .map_err(|e| match e {
            ReportWireError::Malformed(_) => None,
            ReportWireError::Invalid(e) => Some(e),
        })
}

/// Both decoders agree on `bytes`, and the top level agrees with prost's wherever prost
/// decodes the bytes at all.
fn agree(bytes: &[u8]) {
    assert_eq!(ours(bytes), reference(bytes), "bytes {bytes:02x?}");
    if let Ok(request) = pb::ReportRequest::decode(bytes) {
        let wire = ReportWire::parse(bytes).expect("prost decodes it");
        assert_eq!(wire.instance, request.instance);
        assert_eq!(wire.deltas, request.deltas.len());
    }
}

fn delta(key: &str, calls: u64, failures: u64, latency: &[(u32, u64)]) -> pb::BreakerDelta {
    pb::BreakerDelta {
        key: key.to_owned(),
        calls,
        failures,
        latency: latency
            .iter()
            .map(|&(index, count)| pb::LatencyBucket { index, count })
            .collect(),
        ..Default::default()
    }
}

fn request(instance: &str, deltas: Vec<pb::BreakerDelta>) -> Vec<u8> {
    pb::ReportRequest {
        instance: instance.to_owned(),
        deltas,
    }
    .encode_to_vec()
}

#[test]
fn a_valid_report_decodes_to_what_the_generated_code_gives() {
    let bytes = request(
        "pod-1",
        vec![
            delta("pay/charge", 10, 2, &[(3, 1), (40, 9)]),
            delta("pay/refund", 1, 0, &[]),
        ],
    );
    let report = ours(&bytes).expect("valid");
    assert_eq!(report.instance.as_str(), "pod-1");
    assert_eq!(report.deltas.len(), 2);
    assert_eq!(report.deltas[0].latency.buckets(), &[(3, 1), (40, 9)]);
    agree(&bytes);
}

#[test]
fn more_deltas_than_are_allocated_ahead_are_all_read() {
    let n = PREALLOCATED_MAX + 3;
    let deltas = (0..n)
        .map(|i| delta(&format!("many/k{i}"), 1, 0, &[]))
        .collect();
    let bytes = request("pod-1", deltas);
    let wire = ReportWire::parse(&bytes).expect("well-formed");
    assert_eq!(wire.deltas, n);
    let report = wire.decode().expect("valid");
    assert_eq!(report.deltas.len(), n);
    assert_eq!(
        report.deltas[n - 1].key.as_str(),
        format!("many/k{}", n - 1)
    );
}

#[test]
fn a_long_latency_list_keeps_every_bucket_in_order() {
    let buckets: Vec<(u32, u64)> = (1..=9).map(|i| (i * 3, u64::from(i))).collect();
    let bytes = request("pod-1", vec![delta("pay/charge", 45, 0, &buckets)]);
    let report = ours(&bytes).expect("valid");
    let expected: Vec<(u16, u64)> = buckets.iter().map(|&(i, n)| (i as u16, n)).collect();
    assert_eq!(report.deltas[0].latency.buckets(), expected.as_slice());
    agree(&bytes);
}

#[test]
fn each_rule_is_refused_with_the_generated_codes_error() {
    let too_many = DELTA_COUNT_MAX_PLUS_ONE;
    let cases = [
        request("", vec![delta("pay/charge", 1, 0, &[])]),
        request("pod 1", vec![delta("Pay/charge", 1, 0, &[])]),
        request("pod-1", vec![delta("pay", 1, 0, &[])]),
        request("pod-1", vec![delta("pay/charge", 1, 2, &[])]),
        request("pod-1", vec![delta("pay/charge", too_many, 0, &[])]),
        request("pod-1", vec![delta("pay/charge", 2, 0, &[(5, 1), (5, 1)])]),
        request("pod-1", vec![delta("pay/charge", 2, 0, &[(5, 0)])]),
        request("pod-1", vec![delta("pay/charge", 2, 0, &[(70_000, 1)])]),
        // A key repeated before an invalid delta is the first error.
        request(
            "pod-1",
            vec![
                delta("pay/charge", 1, 0, &[]),
                delta("pay/charge", 1, 0, &[]),
                delta("pay/x", 1, 9, &[]),
            ],
        ),
        request(
            "pod-1",
            vec![delta("pay/a", 1, 0, &[]), delta("pay/a", 1, 0, &[])],
        ),
    ];
    for bytes in cases {
        let Err(Some(error)) = ours(&bytes) else {
            panic!("{bytes:02x?} must be refused as invalid");
        };
        assert!(!error.field.is_empty(), "{error} names a field");
        agree(&bytes);
    }
}

const DELTA_COUNT_MAX_PLUS_ONE: u64 = switchyard_core::DELTA_COUNT_MAX + 1;

#[test]
fn malformed_bytes_are_refused_as_malformed_even_after_an_invalid_field() {
    // An invalid instance first, then a delta cut short: malformed wins, as with prost.
    let mut bytes = request("", vec![delta("pay/charge", 1, 0, &[(3, 1)])]);
    bytes.pop();
    assert!(matches!(
        ReportWire::parse(&bytes).and_then(|w| w.decode()),
        Err(ReportWireError::Malformed(_))
    ));
    agree(&bytes);
    for bytes in [
        vec![0x0a, 0x02, 0xff, 0xfe],                  // instance not UTF-8
        vec![0x08, 0x01],                              // instance as a varint
        vec![0x00],                                    // field 0
        vec![0x0f],                                    // wire type 7
        vec![0x0c],                                    // a group ends that never started
        vec![0xff; 11],                                // a varint of more than 10 bytes
        [vec![0x18], vec![0xff; 9], vec![2]].concat(), // an unknown varint whose tenth byte is above 1
        vec![0x12, 0x05, 0x0a],                        // a delta longer than the message
        // A key given twice, the first not UTF-8: prost checks every occurrence.
        [
            request("pod-1", vec![]),
            vec![0x12, 0x0b, 0x0a, 0x02, 0xff, 0xfe, 0x0a, 0x05],
            b"pay/a".to_vec(),
        ]
        .concat(),
    ] {
        assert_eq!(ours(&bytes), Err(None), "{bytes:02x?}");
        agree(&bytes);
    }
}

#[test]
fn prost_leniencies_are_kept() {
    let mut bytes = request("pod-1", vec![delta("pay/charge", 1, 0, &[(3, 1)])]);
    // Unknown fields of every wire type at the top level, a group holding a nested group.
    bytes.extend([0x18, 0x07]); // field 3, varint
    bytes.extend([0x21, 1, 2, 3, 4, 5, 6, 7, 8]); // field 4, fixed64
    bytes.extend([0x2d, 1, 2, 3, 4]); // field 5, fixed32
    bytes.extend([0x32, 0x01, 0x00]); // field 6, bytes
    bytes.extend([0x3b, 0x43, 0x08, 0x01, 0x44, 0x3c]); // group 7 { group 8 { 1: 1 } }
    // The instance again: the last occurrence is kept.
    bytes.extend([0x0a, 0x05]);
    bytes.extend(b"pod-2");
    let report = ours(&bytes).expect("lenient");
    assert_eq!(report.instance.as_str(), "pod-2");
    agree(&bytes);
    // A bucket index beyond u32 keeps its low 32 bits: 2^32 + 3 reads as 3.
    let bucket = [0x08, 0x83, 0x80, 0x80, 0x80, 0x10, 0x10, 0x01];
    let mut body = vec![0x0a, 0x0a];
    body.extend(b"pay/charge");
    body.extend([0x10, 0x01, 0x32, bucket.len() as u8]);
    body.extend(bucket);
    let mut bytes = request("pod-1", vec![]);
    bytes.extend([0x12, body.len() as u8]);
    bytes.extend(body);
    let report = ours(&bytes).expect("truncated like prost");
    assert_eq!(report.deltas[0].latency.buckets(), &[(3, 1)]);
    agree(&bytes);
}

/// `depth` groups nested inside one another as an unknown field 9 of a latency bucket.
fn bucket_with_nested_groups(depth: usize) -> Vec<u8> {
    // Field 9: `depth` group starts, then as many ends.
    let mut group = vec![0x4b; depth];
    group.extend(std::iter::repeat_n(0x4c, depth));
    let mut bucket = vec![0x08, 0x03, 0x10, 0x01];
    bucket.extend(group);
    let mut body = vec![0x0a, 0x0a];
    body.extend(b"pay/charge");
    body.extend([0x10, 0x01, 0x32]);
    body.extend(varint(bucket.len()));
    body.extend(bucket);
    let mut bytes = request("pod-1", vec![]);
    bytes.push(0x12);
    bytes.extend(varint(body.len()));
    bytes.extend(body);
    bytes
}

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

#[test]
fn groups_nest_as_deep_as_prost_allows_and_no_deeper() {
    // prost allows 98 levels of fields below a top-level delta's bucket.
    let allowed = bucket_with_nested_groups(98);
    assert!(ours(&allowed).is_ok());
    agree(&allowed);
    let too_deep = bucket_with_nested_groups(99);
    assert_eq!(ours(&too_deep), Err(None));
    agree(&too_deep);
}

fn with_cache(cache: &mut KeyCache, bytes: &[u8]) -> Outcome {
    ReportWire::parse(bytes)
        .and_then(|wire| wire.decode_with(cache))
        .map_err(|e| match e {
            ReportWireError::Malformed(_) => None,
            ReportWireError::Invalid(e) => Some(e),
        })
}

#[test]
fn the_key_cache_is_bounded_and_loses_no_key() {
    let mut cache = KeyCache::default();
    let bytes = request(
        "pod-1",
        vec![
            delta("pay/charge", 1, 0, &[]),
            delta("pay/refund", 1, 0, &[]),
        ],
    );
    let first = with_cache(&mut cache, &bytes).expect("valid");
    assert_eq!(with_cache(&mut cache, &bytes), Ok(first.clone()));
    assert_eq!(cache.len(), 2);
    // Invalid keys are not kept.
    let bad = request("pod-1", vec![delta("Bad/key", 1, 0, &[])]);
    assert_eq!(with_cache(&mut cache, &bad), reference(&bad));
    assert_eq!(cache.len(), 2);
    // Past the limit the cache starts over, and keys still decode.
    for n in 0..=KEY_CACHE_MAX {
        let key = format!("fill/k{n}");
        let report = with_cache(&mut cache, &request("pod-1", vec![delta(&key, 1, 0, &[])]));
        assert_eq!(report.expect("valid").deltas[0].key.as_str(), key);
        assert!(cache.len() <= KEY_CACHE_MAX);
    }
    assert!(cache.len() < KEY_CACHE_MAX, "it started over");
    assert_eq!(with_cache(&mut cache, &bytes), Ok(first));
}

#[test]
fn keys_repeated_from_the_last_report_are_still_checked_for_duplicates() {
    let mut cache = KeyCache::default();
    let keys = ["pay/a", "pay/b", "pay/c", "pay/d"];
    let report =
        |keys: &[&str]| request("pod-1", keys.iter().map(|k| delta(k, 1, 0, &[])).collect());
    with_cache(&mut cache, &report(&keys)).expect("valid");
    // In order, with gaps: found in the last report's keys.
    for sent in [&keys[..], &["pay/a", "pay/c"], &["pay/b", "pay/d"], &[]] {
        let bytes = report(sent);
        assert_eq!(
            with_cache(&mut cache, &bytes),
            reference(&bytes),
            "{sent:?}"
        );
    }
    // Every key known, but repeated or out of order: the duplicate is still refused.
    for sent in [
        &["pay/a", "pay/a"][..],
        &["pay/b", "pay/a", "pay/b"],
        &["pay/d", "pay/d"],
    ] {
        let bytes = report(sent);
        let refused = with_cache(&mut cache, &bytes);
        assert!(
            matches!(&refused, Err(Some(e)) if e.rule.contains("duplicate")),
            "{sent:?}"
        );
        assert_eq!(refused, reference(&bytes), "{sent:?}");
    }
}

fn wire_delta() -> impl Strategy<Value = pb::BreakerDelta> {
    let key = prop_oneof![
        Just("pay/charge".to_owned()),
        Just("pay/refund".to_owned()),
        Just("ml/score".to_owned()),
        Just("Bad/key".to_owned()),
        "[a-z/]{0,12}",
    ];
    let count = prop_oneof![
        0..20u64,
        Just(10_000_000u64),
        Just(10_000_001u64),
        any::<u64>()
    ];
    let bucket = (
        prop_oneof![0..60u32, Just(449u32), Just(450u32), any::<u32>()],
        prop_oneof![1..5u64, Just(0u64)],
    )
        .prop_map(|(index, count)| pb::LatencyBucket { index, count });
    (
        key,
        (count.clone(), count.clone(), count.clone(), count.clone()),
        (count.clone(), count),
        proptest::collection::vec(bucket, 0..7),
    )
        .prop_map(
            |(key, (calls, failures, slow, rejected), (first_attempts, retries), latency)| {
                pb::BreakerDelta {
                    key,
                    calls,
                    failures,
                    slow,
                    rejected,
                    latency,
                    first_attempts,
                    retries,
                }
            },
        )
}

fn wire_report() -> impl Strategy<Value = Vec<u8>> {
    let instance = prop_oneof![
        Just("pod-1".to_owned()),
        Just(String::new()),
        "[a-z -]{1,8}"
    ];
    (instance, proptest::collection::vec(wire_delta(), 0..6))
        .prop_map(|(instance, deltas)| pb::ReportRequest { instance, deltas }.encode_to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn encoded_reports_decode_as_the_generated_code_decodes_them(bytes in wire_report()) {
        agree(&bytes);
    }

    #[test]
    fn damaged_reports_are_refused_or_accepted_as_the_generated_code_does(
        bytes in wire_report(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
    ) {
        let mut bytes = bytes;
        for (at, byte, how) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let at = at.index(bytes.len());
            match how {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        agree(&bytes);
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_accepted_as_the_generated_code_does(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        agree(&bytes);
    }
}
