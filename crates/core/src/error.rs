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

/// Checks a free-text reason: at most 512 bytes, no control characters.
pub(crate) fn check_reason(field: &str, reason: &str) -> Result<(), ValidationError> {
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
