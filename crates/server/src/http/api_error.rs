//! [`ApiError`]: how the JSON API says no, and its one conversion from [`NodeError`].
//!
//! Every error body is `{"error": "...", "field": "..."}`; `field` names the query parameter,
//! body field or header at fault when there is one, so a caller knows what to fix.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_core::{CommandError, ValidationError};

use crate::error::NodeError;

/// An HTTP API error: a status and a JSON body naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The parameter, field or header at fault, if any.
    pub field: Option<String>,
    /// What went wrong and what to do.
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// 400: `field` broke `rule`.
    pub fn invalid(field: &str, rule: impl Into<String>) -> Self {
        let rule = rule.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            field: Some(field.to_owned()),
            message: format!("invalid `{field}`: {rule}"),
        }
    }

    /// 400 from a validation error, keeping its field.
    pub fn validation(e: &ValidationError) -> Self {
        Self::invalid(&e.field, e.rule.clone())
    }

    /// 404: `what` does not exist.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            field: None,
            message: format!("{} not found", what.into()),
        }
    }

    /// 401/403 from the token check (`field` is the `authorization` header).
    pub fn from_auth(status: &tonic::Status) -> Self {
        let code = match status.code() {
            tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        };
        Self {
            status: code,
            field: Some("authorization".into()),
            message: status.message().to_owned(),
        }
    }
}

fn from_grpc_code(code: tonic::Code) -> StatusCode {
    use tonic::Code;
    match code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::Invalid(v) | NodeError::Command(CommandError::Invalid(v)) => {
                Self::validation(&v)
            }
            NodeError::Remote(status) => Self {
                status: from_grpc_code(status.code()),
                field: None,
                message: status.message().to_owned(),
            },
            other => {
                let message = other.to_string();
                let status = from_grpc_code(tonic::Status::from(other).code());
                Self {
                    status,
                    field: None,
                    message,
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: &self.message,
            field: self.field.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_map_to_http_statuses() {
        let e = ApiError::from(NodeError::Invalid(ValidationError::new(
            "reason", "too long",
        )));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.field.as_deref(), Some("reason"));
        let e = ApiError::from(NodeError::NoLeader {
            hint: crate::error::NoLeaderHint::None,
        });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        let e = ApiError::from(NodeError::NotFound("breaker `a/b`".into()));
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = ApiError::from(NodeError::Remote(tonic::Status::invalid_argument("x")));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
