//! [`Params`]: query-string parsing that names the parameter at fault.
//!
//! Unknown and repeated parameters are refused (a typo such as `?windw=7d` must not silently
//! give the default report), numbers must be plain decimal integers, and an empty value counts
//! as absent so a form can leave a field blank.

use std::collections::BTreeMap;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;

use super::api_error::ApiError;

/// Longest value accepted for any query parameter, bytes.
pub const PARAM_VALUE_MAX_BYTES: usize = 512;

/// The extractor handlers take: raw pairs, or axum's rejection (mapped by [`Params::parse`]).
pub type RawParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Validated query parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Checks that every parameter is one of `allowed`, given once and not too long.
    pub fn parse(raw: RawParams, allowed: &[&str]) -> Result<Self, ApiError> {
        let Query(pairs) = raw.map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::invalid(
                    &name,
                    format!("unknown parameter; expected one of {}", allowed.join(", ")),
                ));
            }
            if value.len() > PARAM_VALUE_MAX_BYTES {
                return Err(ApiError::invalid(
                    &name,
                    format!("at most {PARAM_VALUE_MAX_BYTES} bytes"),
                ));
            }
            if values.contains_key(&name) {
                return Err(ApiError::invalid(&name, "given more than once"));
            }
            if !value.is_empty() {
                values.insert(name, value);
            }
        }
        Ok(Self { values })
    }

    /// The value of `name`, if given and not empty.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A non-negative integer parameter.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.str(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::invalid(name, format!("must be a non-negative integer, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A `true`/`false` parameter; absent is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.str(name) {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(v) => Err(ApiError::invalid(
                name,
                format!("must be true or false, got {v:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)], allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Params::parse(Ok(Query(pairs)), allowed)
    }

    #[test]
    fn unknown_repeated_and_malformed_parameters_are_named() {
        let e = parse(&[("windw", "7d")], &["window"]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("windw"));
        let e = parse(&[("key", "a/b"), ("key", "c/d")], &["key"]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("key"));
        let p = parse(&[("limit", "x"), ("local", "maybe")], &["limit", "local"]).unwrap();
        assert_eq!(p.u64("limit").unwrap_err().field.as_deref(), Some("limit"));
        assert_eq!(p.flag("local").unwrap_err().field.as_deref(), Some("local"));
        let p = parse(&[("limit", ""), ("local", "true")], &["limit", "local"]).unwrap();
        assert_eq!(p.u64("limit").unwrap(), None);
        assert!(p.flag("local").unwrap());
        let long = "x".repeat(PARAM_VALUE_MAX_BYTES + 1);
        assert!(parse(&[("key", &long)], &["key"]).is_err());
    }
}
