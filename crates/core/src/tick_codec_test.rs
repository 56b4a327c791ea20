use super::*;

fn delta(key: &str, instance: &str, calls: u64, failures: u64) -> Delta {
    let mut latency = LatencySketch::default();
    latency.record_n(1_000, calls);
    Delta {
        key: BreakerKey::parse(key).unwrap(),
        instance: InstanceId::parse(instance).unwrap(),
        calls,
        failures,
        slow: 0,
        rejected: 0,
        latency,
        first_attempts: 0,
        retries: 0,
    }
}

/// A fleet tick: `instances` × `breakers`, merged order (breaker, then instance).
fn fleet(instances: u32, breakers: u32) -> Vec<Delta> {
    let mut out = Vec::new();
    for b in 0..breakers {
        for i in 0..instances {
            out.push(delta(
                &format!("fleet/b{b}"),
                &format!("bench-{i}"),
                10,
                u64::from(i % 10 == 0),
            ));
        }
    }
    out.sort_by(|a, b| (&a.key, &a.instance).cmp(&(&b.key, &b.instance)));
    out
}

#[test]
fn round_trips_every_field_in_order() {
    let mut odd = delta("s/x", "b", 7, 2);
    odd.slow = 3;
    odd.rejected = 4;
    odd.first_attempts = 5;
    odd.retries = 6;
    odd.latency.record_n(9_000_000, 1);
    odd.latency.record_n(0, 1);
    let mut empty_latency = delta("s/x", "a", 0, 0);
    empty_latency.rejected = 1;
    let mut partial_latency = delta("s/y", "a", 9, 0);
    partial_latency.latency = LatencySketch::default();
    partial_latency.latency.record_n(50, 4);
    // Out of order instances, a key revisited, a repeated (breaker, instance).
    let deltas = vec![
        odd,
        empty_latency,
        partial_latency,
        delta("s/x", "c", u64::MAX, 1),
        delta("s/x", "c", 1, 1),
    ];
    let bytes = encode(&deltas);
    assert_eq!(bytes[0], TICK_CODEC_VERSION);
    assert_eq!(decode(&bytes).unwrap(), deltas);
    assert_eq!(decode(&encode(&[])).unwrap(), Vec::<Delta>::new());
}

#[test]
fn is_deterministic_and_small() {
    let deltas = fleet(1000, 20);
    let bytes = encode(&deltas);
    assert_eq!(bytes, encode(&deltas.clone()));
    assert_eq!(decode(&bytes).unwrap(), deltas);
    let per_delta = bytes.len() as f64 / deltas.len() as f64;
    // flags, calls and one latency index per delta, a failure count for one in ten, and
    // each instance id once.
    assert!(per_delta < 5.0, "{per_delta} bytes per delta");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let mut deltas = fleet(3, 2);
    deltas[1].slow = 1;
    deltas[2].latency.record_n(30, 1);
    let bytes = encode(&deltas);
    for len in 0..bytes.len() {
        let err = decode(&bytes[..len]).unwrap_err();
        assert!(err.offset <= len, "{err}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(decode(&trailing).unwrap_err().reason, "1 trailing bytes");
}

#[test]
fn garbled_bytes_are_errors_not_panics() {
    let bytes = encode(&fleet(4, 3));
    // Every single-byte corruption either decodes to something (a legal tick) or errors.
    for at in 0..bytes.len() {
        for value in [0x00, 0x01, 0x7f, 0x80, 0xc3, 0xff] {
            let mut garbled = bytes.clone();
            garbled[at] = value;
            let _ = decode(&garbled);
        }
    }
    let mut wrong_version = bytes.clone();
    wrong_version[0] = 2;
    assert_eq!(
        decode(&wrong_version).unwrap_err().to_string(),
        "packed tick, byte 1: version 2, this build reads version 1"
    );
}

#[test]
fn oversized_counts_and_bad_fields_are_refused_before_allocating() {
    // 2^62 instances claimed in a 12-byte record.
    let mut huge = vec![TICK_CODEC_VERSION];
    put_varint(&mut huge, 1 << 62);
    let err = decode(&huge).unwrap_err();
    assert!(
        err.reason
            .starts_with("instances: 4611686018427387904 do not fit"),
        "{err}"
    );

    let overlong = [
        TICK_CODEC_VERSION,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0xff,
        0x7f,
    ];
    assert_eq!(
        decode(&overlong).unwrap_err().reason,
        "varint overflows 64 bits"
    );

    // An instance id that breaks its rules.
    let mut bad_id = vec![TICK_CODEC_VERSION, 1];
    put_str(&mut bad_id, "no spaces");
    put_varint(&mut bad_id, 0);
    assert!(decode(&bad_id).is_err());

    // An instance index beyond the table.
    let mut bytes = vec![TICK_CODEC_VERSION, 1];
    put_str(&mut bytes, "a");
    put_varint(&mut bytes, 1);
    put_str(&mut bytes, "s/x");
    put_varint(&mut bytes, 1);
    bytes.push(0); // flags: explicit step
    put_varint(&mut bytes, zigzag(5));
    put_varint(&mut bytes, 1);
    assert_eq!(
        decode(&bytes).unwrap_err().reason,
        "instance index 4 out of 1"
    );

    // Both latency forms at once.
    let mut both = vec![TICK_CODEC_VERSION, 1];
    put_str(&mut both, "a");
    put_varint(&mut both, 1);
    put_str(&mut both, "s/x");
    put_varint(&mut both, 1);
    both.push(NEXT_INSTANCE | LATENCY_ONE_BUCKET | LATENCY_BUCKETS);
    put_varint(&mut both, 1);
    put_varint(&mut both, 1);
    assert_eq!(
        decode(&both).unwrap_err().reason,
        "both latency forms flagged"
    );
}

/// The instance index as first written: an ordered map searched per delta.
fn places_by_ordered_map(deltas: &[Delta]) -> (Vec<String>, Vec<u32>) {
    let mut index = std::collections::BTreeMap::new();
    for d in deltas {
        index.entry(d.instance.as_str()).or_insert(0u32);
    }
    for (i, slot) in index.values_mut().enumerate() {
        *slot = i as u32;
    }
    let places = deltas.iter().map(|d| index[d.instance.as_str()]).collect();
    (index.keys().map(|k| k.to_string()).collect(), places)
}

#[test]
fn instance_places_match_an_ordered_map_search() {
    // Interleaved, repeated and out-of-order instances, runs of one instance, names that are
    // prefixes of each other, and the fleet order.
    let mut mixed = Vec::new();
    for (i, name) in ["b", "a", "ab", "a", "a", "c", "b", "abc", "b"]
        .into_iter()
        .enumerate()
    {
        mixed.push(delta(&format!("s/k{}", i % 3), name, 1, 0));
    }
    for deltas in [mixed, fleet(37, 3), fleet(1, 1), Vec::new()] {
        let (names, places) = instance_places(&deltas);
        let (want_names, want_places) = places_by_ordered_map(&deltas);
        assert_eq!(names, want_names);
        assert_eq!(places, want_places);
    }
}
