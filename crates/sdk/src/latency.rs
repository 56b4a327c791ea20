//! Latency bucketing for the hot path: the shared sketch's bucket index, without a logarithm.
//!
//! Why a lookup table: `LatencySketch::bucket_index` computes `ln(us) / ln(γ)` in floating
//! point, about 20 ns, more than the whole hot-path budget. The buckets are fixed, so we
//! build two small tables once (from `bucket_index` itself, so the result is identical):
//! the upper bound of every bucket, and for each octave `2^e` split into 16 sub-ranges the
//! bucket of the sub-range's low end. A sub-range is at most 1/16 of an octave wide, which is
//! narrower than one bucket (γ ≈ 1.105), so it straddles at most one bucket boundary: one
//! table read and one comparison finish the job.
//!
//! Recorded latencies are capped at [`LATENCY_RECORDED_MAX_US`] (one hour), which bounds the
//! per-stripe bucket array at [`LATENCY_SLOTS`] entries; a slower call is counted in the
//! last bucket.

use std::sync::OnceLock;
use std::time::Duration;

use switchyard_core::LatencySketch;

/// The largest latency kept exactly; slower calls land in the last bucket. One hour.
pub const LATENCY_RECORDED_MAX_US: u64 = 3_600_000_000;

/// Bucket slots per stripe: enough for every index up to [`LATENCY_RECORDED_MAX_US`].
/// Checked against the sketch when the tables are built.
pub const LATENCY_SLOTS: usize = 240;

/// Latencies below this are looked up directly.
const SMALL_US: u64 = 32;
const SUBRANGE_BITS: u32 = 4;
const SUBRANGES: usize = 1 << SUBRANGE_BITS;

/// Buckets of the whole `u64` range fit in this many entries (checked when building).
const BUCKETS_MAX: usize = 512;
const OCTAVE_ENTRIES: usize = 64 * SUBRANGES;

/// The lookup tables; fixed-size arrays so that masked indexes need no bounds check.
#[derive(Debug)]
pub(crate) struct Tables {
    /// Bucket of each latency below `SMALL_US`.
    small: [u16; SMALL_US as usize],
    /// `octave[e * SUBRANGES + s]`: bucket of the low end of sub-range `s` of octave `e`.
    octave: [u16; OCTAVE_ENTRIES],
    /// Largest latency (µs) of each bucket.
    upper_us: [u64; BUCKETS_MAX],
}

/// The shared tables, built on first use. Breakers keep the returned reference so the
/// hot path skips even the `OnceLock` check.
pub(crate) fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(build_tables)
}

fn build_tables() -> Tables {
    let max_index = LatencySketch::max_bucket_index();
    assert!(
        usize::from(LatencySketch::bucket_index(LATENCY_RECORDED_MAX_US)) < LATENCY_SLOTS,
        "LATENCY_SLOTS must cover the bucket of LATENCY_RECORDED_MAX_US"
    );
    assert!(
        usize::from(max_index) < BUCKETS_MAX - 1,
        "BUCKETS_MAX must cover every bucket"
    );
    let mut upper_us = [u64::MAX; BUCKETS_MAX];
    for k in 0..=max_index {
        // Largest `us` with bucket_index(us) <= k (bucket_index is monotone).
        let (mut lo, mut hi) = (0u64, u64::MAX);
        if LatencySketch::bucket_index(hi) <= k {
            upper_us[usize::from(k)] = hi;
            continue;
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if LatencySketch::bucket_index(mid) <= k {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        upper_us[usize::from(k)] = lo;
    }
    let mut small = [0u16; SMALL_US as usize];
    for (us, slot) in small.iter_mut().enumerate() {
        *slot = LatencySketch::bucket_index(us as u64);
    }
    let mut octave = [0u16; OCTAVE_ENTRIES];
    for e in 5..64u32 {
        for s in 0..SUBRANGES as u64 {
            let low = (SUBRANGES as u64 + s) << (e - SUBRANGE_BITS);
            octave[e as usize * SUBRANGES + s as usize] = LatencySketch::bucket_index(low);
        }
    }
    Tables {
        small,
        octave,
        upper_us,
    }
}

/// The sketch bucket of `latency_us`, identical to `LatencySketch::bucket_index`.
#[inline]
pub fn bucket_index(latency_us: u64) -> u16 {
    bucket_index_in(tables(), latency_us)
}

#[inline]
fn bucket_index_in(t: &Tables, latency_us: u64) -> u16 {
    if latency_us < SMALL_US {
        return t.small[latency_us as usize];
    }
    let e = 63 - latency_us.leading_zeros();
    let s = (latency_us >> (e - SUBRANGE_BITS)) as usize & (SUBRANGES - 1);
    let k = t.octave[(e as usize * SUBRANGES + s) & (OCTAVE_ENTRIES - 1)];
    if latency_us > t.upper_us[usize::from(k) & (BUCKETS_MAX - 1)] {
        k + 1
    } else {
        k
    }
}

/// The per-stripe slot of a latency: its bucket, capped at the last slot.
#[inline]
pub(crate) fn slot_in(t: &Tables, latency_us: u64) -> usize {
    usize::from(bucket_index_in(t, latency_us.min(LATENCY_RECORDED_MAX_US))).min(LATENCY_SLOTS - 1)
}

/// The per-stripe slot of a latency: its bucket, capped at the last slot.
#[cfg(test)]
pub(crate) fn slot(latency_us: u64) -> usize {
    slot_in(tables(), latency_us)
}

/// Whole microseconds of `d`, saturating. Cheaper than `as_micros` (no 128-bit math).
#[inline]
pub fn duration_us(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(d.subsec_micros()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lookup_matches_the_sketch_exactly() {
        for us in 0..200_000u64 {
            assert_eq!(
                bucket_index(us),
                LatencySketch::bucket_index(us),
                "at {us} µs"
            );
        }
        // every bucket edge, and a spread of large values
        let max = usize::from(LatencySketch::max_bucket_index());
        for &upper in &tables().upper_us[..=max] {
            for us in [upper.saturating_sub(1), upper, upper.saturating_add(1)] {
                assert_eq!(
                    bucket_index(us),
                    LatencySketch::bucket_index(us),
                    "at {us} µs"
                );
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let us = x >> (x % 60);
            assert_eq!(
                bucket_index(us),
                LatencySketch::bucket_index(us),
                "at {us} µs"
            );
        }
    }

    #[test]
    fn slots_are_capped() {
        assert_eq!(slot(u64::MAX), slot(LATENCY_RECORDED_MAX_US));
        assert!(slot(u64::MAX) < LATENCY_SLOTS);
        assert_eq!(duration_us(Duration::from_millis(1500)), 1_500_000);
        assert_eq!(duration_us(Duration::MAX), u64::MAX);
    }
}
