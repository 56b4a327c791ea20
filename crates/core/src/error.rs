//! Validation errors: every rejected input names the field and the rule it broke.

use serde::{Deserialize, Serialize};

/// An input that broke a rule. `field` is the dotted path of the offending field
/// (`failure_rate_threshold`, `window.buckets`, `rule[2].tier`), `rule` says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("invalid `{field}`: {rule}")]
pub struct ValidationError {
    /// The field that is invalid.
    pub field: String,
    /// The rule it broke, phrased so the caller knows what to fix.
    pub rule: String,
}

impl ValidationError {
    /// Builds an error for `field` breaking `rule`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// Prefixes the field path, e.g. `window` + `buckets` = `window.buckets`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Checks `value` is in `min..=max`, naming `field` and `unit` in the error.
pub(crate) fn check_range<T>(
    field: &str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) -> Result<(), ValidationError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" ({unit})")
        };
        return Err(ValidationError::new(
            field,
            format!("must be between {min} and {max}{unit}, got {value}"),
        ));
    }
    Ok(())
}

/// Checks a free-text reason: at most [`crate::REASON_MAX_BYTES`] bytes, no control
/// characters. May be empty. The one home of the rule: the gRPC and HTTP surfaces and the
/// CLI call it (or [`check_required_reason`]) with their own field name.
pub fn check_reason(field: &str, reason: &str) -> Result<(), ValidationError> {
    if reason.len() > crate::REASON_MAX_BYTES {
        return Err(ValidationError::new(
            field,
            format!(
                "must be at most {} bytes, got {}",
                crate::REASON_MAX_BYTES,
                reason.len()
            ),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a reason that must be given (an operator override's, for the audit log): not
/// empty or blank, and [`check_reason`].
pub fn check_required_reason(field: &str, reason: &str) -> Result<(), ValidationError> {
    if reason.trim().is_empty() {
        return Err(ValidationError::new(
            field,
            "is required: say why, for the audit log",
        ));
    }
    check_reason(field, reason)
}

/// Longest override or tier pin, ms (400 days): beyond that an operator means "until
/// cleared" and should say so by giving no duration. The one limit of the gRPC and HTTP
/// surfaces and the CLI.
pub const OVERRIDE_FOR_MS_MAX: u64 = 400 * 86_400_000;

/// Checks the duration of an override or a tier pin: 1 ms to [`OVERRIDE_FOR_MS_MAX`].
pub fn check_override_for_ms(field: &str, for_ms: u64) -> Result<(), ValidationError> {
    if !(1..=OVERRIDE_FOR_MS_MAX).contains(&for_ms) {
        return Err(ValidationError::new(
            field,
            format!(
                "must be between 1 and {OVERRIDE_FOR_MS_MAX} ms (400 days; omit it for no expiry), got {for_ms}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_override_durations_have_one_rule() {
        assert!(
            check_reason("reason", "").is_ok(),
            "a plain reason may be empty"
        );
        for missing in ["", " \t "] {
            let err = check_required_reason("reason", missing).expect_err("required");
            assert_eq!(err.field, "reason");
        }
        assert!(check_required_reason("reason", "incident 4711").is_ok());
        let err = check_required_reason("reason", "a\u{7}b").expect_err("control character");
        assert_eq!(err.field, "reason");
        let long = "x".repeat(crate::REASON_MAX_BYTES + 1);
        assert_eq!(
            check_reason("reason", &long).expect_err("long").field,
            "reason"
        );

        assert!(check_override_for_ms("for_ms", 1).is_ok());
        assert!(
            check_override_for_ms("for_ms", OVERRIDE_FOR_MS_MAX).is_ok(),
            "at the limit"
        );
        for bad in [0, OVERRIDE_FOR_MS_MAX + 1] {
            assert_eq!(
                check_override_for_ms("for_ms", bad).expect_err("out").field,
                "for_ms"
            );
        }
    }
}
