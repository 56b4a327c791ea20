//! [`SlaWindow`]: the period of an SLA report, ending now.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;
use crate::sla::DAY_MS;

/// The period of an SLA report, ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SlaWindow {
    /// The last 24 hours (`24h`).
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days (`7d`).
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days (`30d`).
    #[serde(rename = "30d")]
    Days30,
    /// Since the start of the current UTC month (`mtd`).
    #[serde(rename = "mtd")]
    MonthToDate,
}

impl SlaWindow {
    /// Parses `24h`, `7d`, `30d` or `mtd`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "24h" | "1d" | "day" => Ok(SlaWindow::Day),
            "7d" | "week" => Ok(SlaWindow::Week),
            "30d" => Ok(SlaWindow::Days30),
            "mtd" => Ok(SlaWindow::MonthToDate),
            _ => Err(ValidationError::new(
                "window",
                format!("must be 24h, 7d, 30d or mtd, got {s:?}"),
            )),
        }
    }

    /// `24h`, `7d`, `30d` or `mtd`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaWindow::Day => "24h",
            SlaWindow::Week => "7d",
            SlaWindow::Days30 => "30d",
            SlaWindow::MonthToDate => "mtd",
        }
    }

    /// The start of the window ending at `now_ms`.
    pub fn start_ms(self, now_ms: u64) -> u64 {
        match self {
            SlaWindow::Day => now_ms.saturating_sub(DAY_MS),
            SlaWindow::Week => now_ms.saturating_sub(7 * DAY_MS),
            SlaWindow::Days30 => now_ms.saturating_sub(30 * DAY_MS),
            SlaWindow::MonthToDate => month_start_ms(now_ms),
        }
    }
}

impl fmt::Display for SlaWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SlaWindow {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Day of month (1-based) of a day count since 1970-01-01.
fn day_of_month(days: u64) -> u64 {
    crate::civil_from_days(days).2
}

/// The first millisecond of the UTC month containing `now_ms`.
pub fn month_start_ms(now_ms: u64) -> u64 {
    let days = now_ms / DAY_MS;
    (days + 1 - day_of_month(days)) * DAY_MS
}
