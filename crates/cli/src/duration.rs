//! Human durations on the command line: `500ms`, `30s`, `10m`, `2h`, `7d`, and their display.
//!
//! A duration is one non-negative integer followed by one unit; compound forms (`1h30m`) are
//! refused rather than guessed at, so `--for` always means exactly what was typed.

/// Largest duration accepted: 10 years, far beyond any override or audit window, and small
/// enough that `now - duration` never underflows a millisecond timestamp.
pub const DURATION_MAX_MS: u64 = 10 * 365 * 86_400_000;

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses `<integer><unit>` with unit `ms`, `s`, `m`, `h` or `d` into milliseconds.
///
/// The error says what was wrong and shows the accepted forms.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let hint = "use a number and a unit: 500ms, 30s, 10m, 2h or 7d";
    if number.is_empty() {
        return Err(format!("invalid duration {text:?}: {hint}"));
    }
    if unit.is_empty() {
        return Err(format!("invalid duration {text:?}: missing unit; {hint}"));
    }
    let factor = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, factor)| *factor)
        .ok_or_else(|| format!("invalid duration {text:?}: unknown unit {unit:?}; {hint}"))?;
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
    let ms = value
        .checked_mul(factor)
        .filter(|ms| *ms <= DURATION_MAX_MS)
        .ok_or_else(|| format!("invalid duration {text:?}: at most 3650d"))?;
    Ok(ms)
}

/// Formats milliseconds compactly with the two most significant units: `450ms`, `12s`,
/// `1m30s`, `2h5m`, `3d4h`.
pub fn format_duration_ms(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let (d, h, m, s) = (
        ms / 86_400_000,
        ms / 3_600_000 % 24,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
    );
    let parts = [(d, "d"), (h, "h"), (m, "m"), (s, "s")];
    let first = parts.iter().position(|(v, _)| *v > 0).unwrap_or(3);
    let mut out = format!("{}{}", parts[first].0, parts[first].1);
    if let Some((v, unit)) = parts.get(first + 1)
        && *v > 0
    {
        out.push_str(&format!("{v}{unit}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("10m"), Ok(600_000));
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms(" 0s "), Ok(0));
    }

    #[test]
    fn bad_durations_say_what_to_type() {
        for bad in ["", "10", "m", "1.5h", "10x", "1h30m", "-5s", "10 m"] {
            let e = parse_duration_ms(bad).unwrap_err();
            assert!(e.contains("30s"), "{bad:?}: {e}");
        }
        assert!(
            parse_duration_ms("99999999999999999999d")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_duration_ms("4000d").unwrap_err().contains("3650d"));
    }

    #[test]
    fn formatting_keeps_two_units() {
        assert_eq!(format_duration_ms(450), "450ms");
        assert_eq!(format_duration_ms(12_000), "12s");
        assert_eq!(format_duration_ms(90_000), "1m30s");
        assert_eq!(format_duration_ms(7_500_000), "2h5m");
        assert_eq!(
            format_duration_ms(3 * 86_400_000 + 4 * 3_600_000 + 5_000),
            "3d4h"
        );
        assert_eq!(format_duration_ms(86_400_000), "1d");
    }
}
