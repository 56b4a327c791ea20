//! Degradation tiers: 1 FULL (best) to 5 MAINTENANCE (worst).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ValidationError;

/// A scope's degradation tier. Ordered so that a greater tier is a worse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Tier {
    /// 1: everything on.
    #[default]
    Full = 1,
    /// 2: optional features off.
    Degraded = 2,
    /// 3: only essential features.
    Essential = 3,
    /// 4: no writes.
    ReadOnly = 4,
    /// 5: down for maintenance.
    Maintenance = 5,
}

impl Tier {
    /// Every tier, best first.
    pub const ALL: [Tier; 5] = [
        Tier::Full,
        Tier::Degraded,
        Tier::Essential,
        Tier::ReadOnly,
        Tier::Maintenance,
    ];

    /// The tier with number 1–5.
    pub fn from_number(n: u8) -> Result<Self, ValidationError> {
        match n {
            1 => Ok(Tier::Full),
            2 => Ok(Tier::Degraded),
            3 => Ok(Tier::Essential),
            4 => Ok(Tier::ReadOnly),
            5 => Ok(Tier::Maintenance),
            _ => Err(ValidationError::new(
                "tier",
                format!("must be between 1 and 5, got {n}"),
            )),
        }
    }

    /// The tier's number, 1–5.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The tier's name: `FULL`, `DEGRADED`, `ESSENTIAL`, `READ_ONLY`, `MAINTENANCE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Full => "FULL",
            Tier::Degraded => "DEGRADED",
            Tier::Essential => "ESSENTIAL",
            Tier::ReadOnly => "READ_ONLY",
            Tier::Maintenance => "MAINTENANCE",
        }
    }

    /// Parses a number (`3`) or a name in any case (`essential`, `READ_ONLY`, `read-only`).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u8>() {
            return Self::from_number(n);
        }
        let upper = t.to_ascii_uppercase().replace('-', "_");
        Tier::ALL
            .into_iter()
            .find(|tier| tier.as_str() == upper)
            .ok_or_else(|| {
                ValidationError::new("tier", format!("must be 1-5 or a tier name, got {s:?}"))
            })
    }

    /// Index 0–4, for per-tier arrays.
    pub(crate) fn index(self) -> usize {
        self as usize - 1
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Tier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for Tier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(deserializer)?;
        Tier::from_number(n).map_err(serde::de::Error::custom)
    }
}
