//! Calendar dates from Unix time, UTC, without a date crate: Howard Hinnant's
//! `civil_from_days` (proleptic Gregorian, pure integer arithmetic). The one home of the
//! conversion for SLA month windows, the HTTP audit CSV and the CLI's tables.

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;

/// Days since 1970-01-01 to (year, month 1-12, day 1-31).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `2024-05-01T12:00:00.000Z` for ms since the Unix epoch.
pub fn utc_rfc3339_ms(ms: u64) -> String {
    let (year, month, day) = civil_from_days(ms / DAY_MS);
    let in_day = ms % DAY_MS;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_across_leap_days_and_centuries() {
        assert_eq!(utc_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            utc_rfc3339_ms(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(
            civil_from_days(47_541),
            (2100, 3, 1),
            "2100 is not a leap year"
        );
    }
}
