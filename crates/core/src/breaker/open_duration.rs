//! The open duration: doubled per consecutive open, capped, then jittered deterministically.

use crate::hash::{fnv1a64, splitmix64};
use crate::{BreakerKey, Policy};

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
