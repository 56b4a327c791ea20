//! Who may call which HTTP route: one check in front of the whole `/api/v1/` tree, the same
//! rule as gRPC ([`crate::auth`]).
//!
//! | request | needs |
//! |---|---|
//! | `GET /api/v1/audit` | the admin token (the trail names operators and their reasons) |
//! | any other `GET` under `/api/v1/` | the viewer or the admin token |
//! | `POST` / `DELETE` under `/api/v1/` | the admin token |
//! | `GET /metrics` with `metrics_require_token` | the viewer or the admin token |
//! | `/`, `/healthz`, `/readyz`, `/metrics` otherwise | nothing |
//!
//! A role none of whose tokens is set is open (development on loopback). A refusal is 401
//! (no token) or 403 (a token this route does not accept) with a JSON body naming which token
//! the route needs; never a token's value.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::api_error::ApiError;
use crate::auth::Role;

/// The role a request needs, or `None` for an open route.
pub fn role_for(method: &Method, path: &str, metrics_require_token: bool) -> Option<Role> {
    if path == "/metrics" {
        return metrics_require_token.then_some(Role::Read);
    }
    if path != "/api/v1" && !path.starts_with("/api/v1/") {
        return None;
    }
    let read = method == Method::GET || method == Method::HEAD;
    if read && path != "/api/v1/audit" {
        Some(Role::Read)
    } else {
        Some(Role::Admin)
    }
}

/// The middleware: checks the `authorization` header against the role the route needs.
pub async fn require_token(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let role = role_for(
        request.method(),
        request.uri().path(),
        app.node.config().metrics_require_token,
    );
    if let Some(role) = role {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if let Err(e) = app.node.tokens().check_header(role, header) {
            return ApiError::from_auth(&tonic::Status::from(e)).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_has_a_role_and_health_stays_open() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(role_for(&get, "/api/v1/status", false), Some(Role::Read));
        assert_eq!(role_for(&get, "/api/v1/breakers", false), Some(Role::Read));
        assert_eq!(role_for(&get, "/api/v1/unknown", false), Some(Role::Read));
        assert_eq!(role_for(&get, "/api/v1/audit", false), Some(Role::Admin));
        assert_eq!(role_for(&post, "/api/v1/tiers/x", false), Some(Role::Admin));
        assert_eq!(
            role_for(&Method::DELETE, "/api/v1/tiers/x", false),
            Some(Role::Admin)
        );
        assert_eq!(role_for(&get, "/api/v10", false), None);
        for open in ["/", "/healthz", "/readyz", "/metrics"] {
            assert_eq!(role_for(&get, open, false), None, "{open}");
        }
        assert_eq!(role_for(&get, "/metrics", true), Some(Role::Read));
    }
}
