//! A mergeable latency distribution (DDSketch-style logarithmic buckets over microseconds).
//!
//! Bucket `0` holds zero latencies; bucket `k >= 1` holds latencies in
//! `(γ^(k-2), γ^(k-1)]` µs with `γ = (1 + α) / (1 - α)` and `α = 5 %`, so any quantile is
//! reported within ~5 % of a true value. Buckets are a sparse vector of `(index, count)`
//! sorted by index: merging two sketches is a sorted merge, sketches from different
//! instances merge exactly, and an empty sketch allocates nothing. All of `u64` µs fits in
//! fewer than 500 buckets, so the index is a `u16`.
//!
//! One bucket is held inline, in the space a vector's pointer and length take: a breaker
//! called a few times between two reports of an instance often has all its calls in one
//! bucket, and every delta of every report carries a sketch. Such a delta is read, merged,
//! logged and dropped without an allocation.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use smallvec::SmallVec;

use crate::ValidationError;

/// Relative accuracy of the sketch.
pub const SKETCH_RELATIVE_ACCURACY: f64 = 0.05;

/// The bucket of `u64::MAX` µs at [`SKETCH_RELATIVE_ACCURACY`]: 1 + ⌈ln(2^64 - 1) / ln(γ)⌉.
/// A constant because a logarithm is not: every decoded sketch checks its indexes against it
/// (a test holds it to [`LatencySketch::bucket_index`]).
const MAX_BUCKET_INDEX: u16 = 445;

fn gamma() -> f64 {
    (1.0 + SKETCH_RELATIVE_ACCURACY) / (1.0 - SKETCH_RELATIVE_ACCURACY)
}

/// A mergeable latency histogram over microseconds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LatencySketch {
    buckets: SketchBuckets,
}

/// A sketch's `(index, count)` buckets: the first inline, more on the heap. Serialized as a
/// sequence, exactly as a `Vec` is.
pub type SketchBuckets = SmallVec<[(u16, u64); 1]>;

impl<'de> Deserialize<'de> for LatencySketch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Straight into the small vector: a one-bucket sketch read off a forwarded batch or a
        // snapshot allocates nothing.
        let buckets = deserializer.deserialize_seq(BucketsVisitor)?;
        Self::from_buckets(buckets).map_err(serde::de::Error::custom)
    }
}

/// Reads a sketch's buckets. A sketch never has more buckets than there are indexes, so a
/// declared length past that is refused before anything is reserved for it (bincode hands
/// the length prefix over as the size hint).
struct BucketsVisitor;

impl<'de> Visitor<'de> for BucketsVisitor {
    type Value = SketchBuckets;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at most {} latency buckets",
            usize::from(LatencySketch::max_bucket_index()) + 1
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SketchBuckets, A::Error> {
        let max = usize::from(LatencySketch::max_bucket_index()) + 1;
        let declared = seq.size_hint().unwrap_or(0);
        if declared > max {
            return Err(de::Error::invalid_length(declared, &self));
        }
        let mut buckets = SketchBuckets::with_capacity(declared);
        while let Some(bucket) = seq.next_element()? {
            if buckets.len() == max {
                return Err(de::Error::invalid_length(max + 1, &self));
            }
            buckets.push(bucket);
        }
        Ok(buckets)
    }
}

impl LatencySketch {
    /// The largest bucket index (that of `u64::MAX` µs).
    pub const fn max_bucket_index() -> u16 {
        MAX_BUCKET_INDEX
    }

    /// The bucket a latency falls into.
    pub fn bucket_index(latency_us: u64) -> u16 {
        if latency_us == 0 {
            return 0;
        }
        let index = ((latency_us as f64).ln() / gamma().ln()).ceil();
        // ln(u64::MAX) / ln(γ) < 450, so the cast cannot truncate.
        1 + index.max(0.0) as u16
    }

    /// The representative latency of a bucket (the midpoint that bounds the relative error).
    pub fn bucket_value_us(index: u16) -> u64 {
        if index == 0 {
            return 0;
        }
        let g = gamma();
        let upper = g.powi(i32::from(index) - 1);
        let value = 2.0 * upper / (g + 1.0);
        value.round().max(1.0) as u64
    }

    /// Records one latency.
    pub fn record_us(&mut self, latency_us: u64) {
        self.record_n(latency_us, 1);
    }

    /// Records `n` calls with the same latency.
    pub fn record_n(&mut self, latency_us: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.add_to_bucket(Self::bucket_index(latency_us), n);
    }

    fn add_to_bucket(&mut self, index: u16, n: u64) {
        match self.buckets.binary_search_by_key(&index, |&(i, _)| i) {
            Ok(pos) => self.buckets[pos].1 = self.buckets[pos].1.saturating_add(n),
            Err(pos) => self.buckets.insert(pos, (index, n)),
        }
    }

    /// Adds every count of `other` into this sketch. Allocates only when `other` has a bucket
    /// this sketch lacks.
    pub fn merge(&mut self, other: &LatencySketch) {
        if other.buckets.is_empty() {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets.extend_from_slice(&other.buckets);
            return;
        }
        // A single bucket (most reports' deltas): add it where it belongs.
        if let [(index, n)] = other.buckets[..] {
            self.add_to_bucket(index, n);
            return;
        }
        // Fast path: every bucket of `other` already exists here, update in place. Worked on
        // slices: indexing the small vector itself checks where its buckets live every time.
        let theirs = &other.buckets[..];
        let mine = &mut self.buckets[..];
        let mut i = 0;
        let mut all_present = true;
        for &(index, _) in theirs {
            while i < mine.len() && mine[i].0 < index {
                i += 1;
            }
            if i == mine.len() || mine[i].0 != index {
                all_present = false;
                break;
            }
        }
        if all_present {
            let mut i = 0;
            for &(index, n) in theirs {
                while mine[i].0 < index {
                    i += 1;
                }
                mine[i].1 = mine[i].1.saturating_add(n);
            }
            return;
        }
        let mine = &self.buckets[..];
        let mut merged = SketchBuckets::with_capacity(mine.len() + theirs.len());
        let (mut a, mut b) = (0, 0);
        while a < mine.len() && b < theirs.len() {
            let (ia, na) = mine[a];
            let (ib, nb) = theirs[b];
            match ia.cmp(&ib) {
                std::cmp::Ordering::Less => {
                    merged.push((ia, na));
                    a += 1;
                }
                std::cmp::Ordering::Greater => {
                    merged.push((ib, nb));
                    b += 1;
                }
                std::cmp::Ordering::Equal => {
                    merged.push((ia, na.saturating_add(nb)));
                    a += 1;
                    b += 1;
                }
            }
        }
        merged.extend_from_slice(&mine[a..]);
        merged.extend_from_slice(&theirs[b..]);
        self.buckets = merged;
    }

    /// Total recorded calls.
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |acc, &(_, n)| acc.saturating_add(n))
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The latency at quantile `q` (0.0–1.0, clamped) in µs, or `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        let rank = (q * (count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        for &(index, n) in &self.buckets {
            seen = seen.saturating_add(n);
            if seen > rank {
                return Some(Self::bucket_value_us(index));
            }
        }
        self.buckets
            .last()
            .map(|&(index, _)| Self::bucket_value_us(index))
    }

    /// The sparse buckets, sorted by index, counts non-zero.
    pub fn buckets(&self) -> &[(u16, u64)] {
        &self.buckets
    }

    /// Builds a sketch from buckets (e.g. off the wire): sorted, unique, counts non-zero,
    /// indexes in range. A `Vec` of one bucket is moved inline.
    pub fn from_buckets(buckets: impl Into<SketchBuckets>) -> Result<Self, ValidationError> {
        let buckets = buckets.into();
        let max = Self::max_bucket_index();
        for (pos, &(index, n)) in buckets.iter().enumerate() {
            if index > max {
                return Err(ValidationError::new(
                    "latency",
                    format!("bucket index must be at most {max}, got {index}"),
                ));
            }
            if n == 0 {
                return Err(ValidationError::new(
                    "latency",
                    format!("bucket {index} has a zero count"),
                ));
            }
            if pos > 0 && buckets[pos - 1].0 >= index {
                return Err(ValidationError::new(
                    "latency",
                    "buckets must be sorted by index without duplicates",
                ));
            }
        }
        Ok(Self { buckets })
    }

    /// Empties the sketch, keeping its allocation.
    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_relative_accuracy() {
        let mut s = LatencySketch::default();
        for us in 1..=10_000u64 {
            s.record_us(us * 100);
        }
        assert_eq!(s.count(), 10_000);
        for (q, exact) in [(0.5, 500_000.0), (0.95, 950_000.0), (0.99, 990_000.0)] {
            let got = s.quantile_us(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact <= 0.06,
                "q{q}: got {got}, exact {exact}"
            );
        }
        assert_eq!(LatencySketch::default().quantile_us(0.5), None);
    }

    #[test]
    fn merge_equals_recording_into_one() {
        let (mut a, mut b, mut all) = (
            LatencySketch::default(),
            LatencySketch::default(),
            LatencySketch::default(),
        );
        for us in [0u64, 1, 5, 900, 12_000, 5_000_000] {
            a.record_us(us);
            all.record_us(us);
        }
        for us in [3u64, 900, 77_000] {
            b.record_n(us, 2);
            all.record_n(us, 2);
        }
        a.merge(&b);
        assert_eq!(a, all);
        let before = a.clone();
        a.merge(&LatencySketch::default());
        assert_eq!(a, before, "merging an empty sketch changes nothing");
        assert!(LatencySketch::default().buckets().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn merge_sums_bucket_by_bucket(
            a in proptest::collection::btree_map(0u16..60, 1u64..5, 0..6),
            b in proptest::collection::btree_map(0u16..60, 1u64..5, 0..6),
        ) {
            // Empty, one-bucket (inline) and spilled sketches on either side.
            let sketch = |m: &std::collections::BTreeMap<u16, u64>| {
                LatencySketch::from_buckets(m.iter().map(|(&i, &n)| (i, n)).collect::<Vec<_>>())
                    .unwrap()
            };
            let mut want = a.clone();
            for (i, n) in &b {
                *want.entry(*i).or_insert(0) += n;
            }
            let mut merged = sketch(&a);
            merged.merge(&sketch(&b));
            proptest::prop_assert_eq!(merged, sketch(&want));
        }
    }

    #[test]
    fn a_sketch_is_as_small_as_a_vector_and_holds_one_bucket_inline() {
        assert_eq!(
            std::mem::size_of::<LatencySketch>(),
            std::mem::size_of::<Vec<(u16, u64)>>()
        );
        let one = LatencySketch::from_buckets(vec![(7, 3)]).unwrap();
        assert!(!one.buckets.spilled());
        // The same bytes as the vector the sketch used to be.
        assert_eq!(
            bincode::serialize(&one).unwrap(),
            bincode::serialize(&vec![(7u16, 3u64)]).unwrap()
        );
    }

    #[test]
    fn reading_a_sketch_refuses_a_length_past_every_index_and_keeps_one_bucket_inline() {
        let one: LatencySketch =
            bincode::deserialize(&bincode::serialize(&vec![(7u16, 3u64)]).unwrap()).unwrap();
        assert!(!one.buckets.spilled());
        let many: Vec<(u16, u64)> = (1..40).map(|i| (i, 1)).collect();
        let read: LatencySketch =
            bincode::deserialize(&bincode::serialize(&many).unwrap()).unwrap();
        assert_eq!(read.buckets(), &many[..]);
        // A length prefix of 2^40 buckets and nothing behind it: refused by its length.
        let mut huge = (1u64 << 40).to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 10]);
        let err = bincode::deserialize::<LatencySketch>(&huge)
            .unwrap_err()
            .to_string();
        assert!(err.contains("latency buckets"), "{err}");
        // One bucket more than there are indexes, each valid on its own: refused too.
        let max = usize::from(LatencySketch::max_bucket_index()) + 1;
        let too_many: Vec<(u16, u64)> = (0..=max as u16).map(|i| (i, 1)).collect();
        let err = bincode::deserialize::<LatencySketch>(&bincode::serialize(&too_many).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("latency buckets"), "{err}");
    }

    #[test]
    fn from_buckets_validates() {
        assert!(LatencySketch::from_buckets(vec![(1, 2), (5, 1)]).is_ok());
        assert!(
            LatencySketch::from_buckets(vec![(5, 1), (1, 2)]).is_err(),
            "unsorted"
        );
        assert!(
            LatencySketch::from_buckets(vec![(1, 1), (1, 2)]).is_err(),
            "duplicate"
        );
        assert!(
            LatencySketch::from_buckets(vec![(1, 0)]).is_err(),
            "zero count"
        );
        let too_big = LatencySketch::max_bucket_index() + 1;
        assert!(
            LatencySketch::from_buckets(vec![(too_big, 1)]).is_err(),
            "index out of range"
        );
    }

    #[test]
    fn bucket_index_is_monotonic_and_bounded() {
        let mut last = 0;
        for us in [0u64, 1, 2, 10, 1_000, 1_000_000, u64::MAX / 2, u64::MAX] {
            let i = LatencySketch::bucket_index(us);
            assert!(i >= last);
            last = i;
        }
        assert!(LatencySketch::max_bucket_index() < 500);
        assert_eq!(
            LatencySketch::max_bucket_index(),
            LatencySketch::bucket_index(u64::MAX),
            "MAX_BUCKET_INDEX must follow SKETCH_RELATIVE_ACCURACY"
        );
    }
}
