//! [`Confidence`]: how sure the freshest span must be that its rate is above the threshold.
//!
//! **The statistic.** The freshest span trips when the lower bound of the Wilson score
//! interval of its rate, at a one-sided confidence `c`, is at least the threshold `t`. The
//! Wilson interval is the inversion of the score test, so with `n` calls, `k` bad ones and
//! `z` the standard normal quantile of `c`:
//!
//! ```text
//!   lower_bound(k, n) ≥ t   ⇔   k/n ≥ t  and  (k/n − t)² ≥ z² · t(1 − t) / n
//!                           ⇔   D ≥ 0    and  D² · 10¹² ≥ Z² · T(100 − T) · n
//!   with D = 100·k − T·n, T = t in percent, Z = z in millionths
//! ```
//!
//! The decision is that last line, in `u128` integers: exact, and identical on every replica
//! and in every SDK. `z` comes from a fixed table (the quantiles need `ln`, whose result is not
//! pinned by IEEE 754, so they are not computed at run time), which is why only the levels of
//! [`Confidence::LEVELS`] are accepted. The lower bound printed in transition reasons is
//! computed in `f64` with `+ − × ÷ √` only, which IEEE 754 rounds correctly, so it too is the
//! same everywhere.
//!
//! **Why Wilson, and why 99.99 % by default.** A fleet of 50 instances at 5 calls/s fills a
//! 20-call span every 100 ms: 36 000 looks an hour. At a 35 % failure baseline and a 50 %
//! threshold a 99 % bound would trip about once an hour; 99.99 % about once in 400 hours
//! (docs/benchmarks.md has the measured trade-off), while 20 failed calls out of 20 still clear
//! it (lower bound 59 %), so the span trips on the first 20 failures of an outage.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ValidationError;

/// One-sided confidence of the freshest-span test, in thousandths of a percent (99 990 =
/// 99.99 %); 0 turns the freshest-span rule off (the whole window alone is judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Confidence(u32);

/// Accepted levels: (thousandths of a percent, z in millionths).
const TABLE: [(u32, u64); 11] = [
    (0, 0),
    (50_000, 0),
    (80_000, 841_621),
    (90_000, 1_281_552),
    (95_000, 1_644_854),
    (99_000, 2_326_348),
    (99_500, 2_575_829),
    (99_900, 3_090_232),
    (99_950, 3_290_527),
    (99_990, 3_719_016),
    (99_999, 4_264_891),
];

impl Default for Confidence {
    fn default() -> Self {
        Confidence(99_990)
    }
}

impl Confidence {
    /// The accepted levels, percent (0 = off).
    pub const LEVELS: [&'static str; 11] = [
        "0", "50", "80", "90", "95", "99", "99.5", "99.9", "99.95", "99.99", "99.999",
    ];

    /// The rule switched off.
    pub const OFF: Confidence = Confidence(0);

    fn error(got: impl fmt::Display) -> ValidationError {
        ValidationError::new(
            "fresh_span_confidence",
            format!(
                "must be one of {} (percent; 0 turns the freshest-span rule off), got {got}",
                Self::LEVELS.join(", ")
            ),
        )
    }

    /// From thousandths of a percent; must be one of the table's levels.
    pub fn from_millipercent(value: u32) -> Result<Self, ValidationError> {
        TABLE
            .iter()
            .any(|&(level, _)| level == value)
            .then_some(Confidence(value))
            .ok_or_else(|| Self::error(format_args!("{}", Confidence(value))))
    }

    /// From a percent such as `99.99`; must be one of [`Confidence::LEVELS`].
    pub fn from_percent(percent: f64) -> Result<Self, ValidationError> {
        let milli = (percent * 1_000.0).round();
        if !(0.0..=100_000.0).contains(&milli) {
            return Err(Self::error(percent));
        }
        Self::from_millipercent(milli as u32).map_err(|_| Self::error(percent))
    }

    /// The level as a percent (`99.99`).
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 1_000.0
    }

    /// Whether the freshest-span rule is on.
    pub fn is_on(self) -> bool {
        self.0 != 0
    }

    /// The normal quantile, millionths.
    fn z_millionths(self) -> u64 {
        TABLE
            .iter()
            .find(|&&(level, _)| level == self.0)
            .map_or(0, |&(_, z)| z)
    }

    /// Whether `bad` of `calls` clears `threshold_percent` with this confidence: the Wilson
    /// lower bound is at least the threshold (exact integer test, see the module doc).
    pub fn clears(self, bad: u64, calls: u64, threshold_percent: u32) -> bool {
        if !self.is_on() || calls == 0 {
            return false;
        }
        let t = i128::from(threshold_percent.min(100));
        let d = 100 * i128::from(bad.min(calls)) - t * i128::from(calls);
        if d < 0 {
            return false;
        }
        let z = u128::from(self.z_millionths());
        if t == 100 {
            // The bound reaches 100 % only without any margin (z = 0).
            return z == 0;
        }
        let rhs = z * z * (t * (100 - t)) as u128 * u128::from(calls);
        let d = d as u128;
        match d
            .checked_mul(d)
            .and_then(|dd| dd.checked_mul(1_000_000_000_000))
        {
            Some(lhs) => lhs >= rhs,
            None => true,
        }
    }

    /// The Wilson lower bound of `bad / calls` at this confidence, as a fraction (for
    /// reasons; the decision is [`Confidence::clears`]).
    pub fn lower_bound(self, bad: u64, calls: u64) -> f64 {
        if calls == 0 {
            return 0.0;
        }
        let n = calls as f64;
        let p = bad.min(calls) as f64 / n;
        let z = self.z_millionths() as f64 / 1_000_000.0;
        let z2 = z * z;
        let centre = p + z2 / (2.0 * n);
        let margin = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        ((centre - margin) / (1.0 + z2 / n)).max(0.0)
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1_000, self.0 % 1_000);
        if frac == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{frac:03}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

/// Human-readable formats carry the percent (`99.99`), binary ones the integer.
impl Serialize for Confidence {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_f64(self.percent())
        } else {
            serializer.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Confidence {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parsed = if deserializer.is_human_readable() {
            Confidence::from_percent(f64::deserialize(deserializer)?)
        } else {
            Confidence::from_millipercent(u32::deserialize(deserializer)?)
        };
        parsed.map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_print_and_others_are_refused() {
        for level in Confidence::LEVELS {
            let c = Confidence::from_percent(level.parse().unwrap()).unwrap();
            assert_eq!(c.to_string(), format!("{level}%"));
        }
        assert_eq!(Confidence::default().to_string(), "99.99%");
        let err = Confidence::from_percent(97.0).unwrap_err().to_string();
        assert!(err.contains("fresh_span_confidence"), "{err}");
        assert!(err.contains("got 97"), "{err}");
        assert!(Confidence::from_percent(-1.0).is_err());
        assert!(Confidence::from_percent(f64::NAN).is_err());
        assert!(Confidence::from_millipercent(99_991).is_err());
    }

    #[test]
    fn integer_test_agrees_with_the_wilson_bound() {
        for level in &Confidence::LEVELS[1..] {
            let c = Confidence::from_percent(level.parse().unwrap()).unwrap();
            for calls in 1..=60u64 {
                for bad in 0..=calls {
                    for t in [1u32, 20, 50, 63, 99] {
                        let bound = c.lower_bound(bad, calls);
                        let exact = c.clears(bad, calls, t);
                        let approx = bound >= f64::from(t) / 100.0;
                        // Equal except where the bound sits on the threshold to f64 precision.
                        if exact != approx {
                            assert!(
                                (bound - f64::from(t) / 100.0).abs() < 1e-9,
                                "{c} {bad}/{calls} t={t}: bound {bound}, exact {exact}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn outage_clears_and_noise_does_not() {
        let c = Confidence::default();
        // Twenty failures of twenty clear 50 % (bound 59 %); it takes n ≥ z² = 13.8 of n.
        assert!(c.clears(20, 20, 50));
        assert!((c.lower_bound(20, 20) - 0.5912).abs() < 1e-3);
        assert!(c.clears(14, 14, 50));
        assert!(!c.clears(13, 13, 50));
        // 19 of 25 (76 %) is not enough at 99.99 %, but is at 95 %.
        assert!(!c.clears(19, 25, 50));
        assert!(Confidence::from_percent(95.0).unwrap().clears(19, 25, 50));
        // A 100 % threshold is never cleared with a margin; at 50 % confidence it is the rate.
        assert!(!c.clears(1_000, 1_000, 100));
        assert!(Confidence::from_percent(50.0).unwrap().clears(5, 5, 100));
        assert!(!Confidence::OFF.clears(20, 20, 50));
        // Huge counts do not overflow.
        assert!(c.clears(u64::MAX, u64::MAX, 50));
        assert!(!c.clears(0, u64::MAX, 50));
    }
}
