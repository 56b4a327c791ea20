//! The open duration: doubled per consecutive open, capped, then jittered deterministically.

use crate::{BreakerKey, Policy};

/// FNV-1a 64 of bytes.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The open duration for the `consecutive_opens`-th open since the last close (1-based),
/// opened at `opened_at_ms`: doubled per re-open, capped, then jittered deterministically.
pub fn open_duration_ms(
    policy: &Policy,
    key: &BreakerKey,
    opened_at_ms: u64,
    consecutive_opens: u32,
) -> u64 {
    let exponent = consecutive_opens.saturating_sub(1);
    let base = if exponent >= 63 {
        u64::MAX
    } else {
        policy.open_duration_ms.saturating_mul(1u64 << exponent)
    };
    let capped = base.min(policy.open_duration_max_ms);
    let span = capped / 100 * u64::from(policy.open_jitter_percent)
        + capped % 100 * u64::from(policy.open_jitter_percent) / 100;
    if span == 0 {
        return capped.max(1);
    }
    let h = splitmix64(
        fnv1a64(key.as_str().as_bytes())
            ^ opened_at_ms
            ^ u64::from(consecutive_opens).rotate_left(32),
    );
    let offset = h % (2 * span + 1);
    (capped - span + offset).max(1)
}
