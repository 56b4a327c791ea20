//! Operator actions over HTTP: what the dashboard's buttons call.
//!
//! ```text
//! POST   /api/v1/breakers/{scope}/{name}/override  {"mode": "forced_open", "reason": "...", "for_ms": 600000}
//! DELETE /api/v1/breakers/{scope}/{name}/override  {"reason": "..."}          (body optional)
//! POST   /api/v1/breakers/{scope}/{name}/reset     {"reason": "..."}          (body optional)
//! POST   /api/v1/tiers/{scope}                     {"tier": 3, "reason": "...", "for_ms": 600000}
//! DELETE /api/v1/tiers/{scope}                     {"reason": "..."}          (body optional)
//! ```
//!
//! Each one needs `Authorization: Bearer <admin token>` when the node has an admin token
//! (checked in front of every route, see [`super::access`]), is validated here (a 400 names the field), and goes
//! through [`Node::write`](crate::Node::write): forwarded to the leader, answered after commit
//! with `{"index": N}`, the log index it was committed at. The audited actor is
//! `operator:<x-switchyard-actor header>` (default `operator:http`).
//!
//! Why every write must say `Content-Type: application/json`, even with no body: a web page on
//! another origin can make a browser send a "simple" cross-origin POST (form or text/plain)
//! to a node on loopback, which in development has no token. A JSON content type forces a CORS
//! preflight, which this server never approves, so such a request is never sent.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};
use switchyard_core::{
    Actor, BreakerKey, Command, OverrideMode, Scope, Tier, ValidationError, check_override_for_ms,
    check_reason, check_required_reason,
};
use switchyard_proto::ACTOR_METADATA_KEY;

use super::AppState;
use super::api_error::ApiError;

/// Largest request body accepted by the action endpoints, bytes.
pub const ACTION_BODY_MAX_BYTES: usize = 16 * 1024;
/// The operator name recorded when the request does not send `x-switchyard-actor`.
pub const DEFAULT_HTTP_ACTOR: &str = "http";

/// What a successful action returns.
#[derive(Debug, Serialize)]
pub struct ActionResponse {
    /// The log index the change was committed at.
    pub index: u64,
}

/// The audited operator: the `x-switchyard-actor` header if printable and short, else `http`.
fn actor(headers: &HeaderMap) -> Actor {
    let claimed = headers
        .get(ACTOR_METADATA_KEY)
        .and_then(|v| v.to_str().ok());
    crate::auth::operator_actor(claimed, DEFAULT_HTTP_ACTOR)
}

/// A JSON object body with only `allowed` fields; an empty body is `{}`.
#[derive(Debug)]
struct Body {
    fields: Map<String, Value>,
}

impl Body {
    fn parse(headers: &HeaderMap, bytes: &Bytes, allowed: &[&str]) -> Result<Self, ApiError> {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                field: Some("content-type".into()),
                message: "write requests must send `Content-Type: application/json` \
                          (even with an empty body)"
                    .into(),
            });
        }
        if bytes.len() > ACTION_BODY_MAX_BYTES {
            return Err(ApiError::invalid(
                "body",
                format!("at most {ACTION_BODY_MAX_BYTES} bytes"),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self { fields: Map::new() });
        }
        let fields = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err(ApiError::invalid("body", "must be a JSON object")),
            Err(e) => return Err(ApiError::invalid("body", format!("not valid JSON: {e}"))),
        };
        if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::invalid(
                unknown,
                format!("unknown field; expected one of {}", allowed.join(", ")),
            ));
        }
        Ok(Self { fields })
    }

    fn str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ApiError::invalid(
                name,
                format!("must be a string, got {other}"),
            )),
        }
    }

    /// The audited reason; empty when not given.
    fn reason(&self) -> Result<String, ApiError> {
        let reason = self.str("reason")?.unwrap_or("").trim().to_owned();
        check_reason("reason", &reason).map_err(|e| ApiError::validation(&e))?;
        Ok(reason)
    }

    /// The audited reason of an override: required.
    fn required_reason(&self) -> Result<String, ApiError> {
        let reason = self.str("reason")?.unwrap_or("").trim().to_owned();
        check_required_reason("reason", &reason).map_err(|e| ApiError::validation(&e))?;
        Ok(reason)
    }

    /// `for_ms` as an absolute expiry on this node's clock.
    fn expires_at_ms(&self, app: &AppState) -> Result<Option<u64>, ApiError> {
        let for_ms = match self.fields.get("for_ms") {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v.as_u64().ok_or_else(|| {
                ApiError::invalid(
                    "for_ms",
                    format!("must be a positive integer of milliseconds, got {v}"),
                )
            })?,
        };
        check_override_for_ms("for_ms", for_ms).map_err(|e| ApiError::validation(&e))?;
        Ok(Some(app.node.clock().now_ms().saturating_add(for_ms)))
    }
}

fn breaker_key(scope: &str, name: &str) -> Result<BreakerKey, ApiError> {
    BreakerKey::parse(&format!("{scope}/{name}")).map_err(|e| ApiError::invalid("key", e.rule))
}

fn scope(scope: &str) -> Result<Scope, ApiError> {
    Scope::parse(scope).map_err(|e| ApiError::invalid("scope", e.rule))
}

fn override_mode(value: Option<&str>) -> Result<OverrideMode, ApiError> {
    let value = value.ok_or_else(|| {
        ApiError::invalid(
            "mode",
            "required: forced_open, forced_closed, disabled or metrics_only",
        )
    })?;
    match value.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "forced_open" | "open" => Ok(OverrideMode::ForcedOpen),
        "forced_closed" | "closed" | "close" => Ok(OverrideMode::ForcedClosed),
        "disabled" | "disable" => Ok(OverrideMode::Disabled),
        "metrics_only" => Ok(OverrideMode::MetricsOnly),
        _ => Err(ApiError::invalid(
            "mode",
            format!("must be forced_open, forced_closed, disabled or metrics_only, got {value:?}"),
        )),
    }
}

fn tier(value: Option<&Value>) -> Result<Tier, ApiError> {
    let parsed = match value {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "tier",
                "required: 1-5 or FULL, DEGRADED, ESSENTIAL, READ_ONLY, MAINTENANCE",
            ));
        }
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map(Tier::from_number)
            .unwrap_or_else(|| {
                Err(ValidationError::new(
                    "tier",
                    format!("must be 1-5, got {n}"),
                ))
            }),
        Some(Value::String(s)) => Tier::parse(s),
        Some(other) => Err(ValidationError::new(
            "tier",
            format!("must be a number 1-5 or a tier name, got {other}"),
        )),
    };
    parsed.map_err(|e| ApiError::validation(&e))
}

fn or_default(reason: String, default: &str) -> String {
    if reason.is_empty() {
        default.to_owned()
    } else {
        reason
    }
}

async fn write(
    app: &AppState,
    headers: &HeaderMap,
    command: Command,
) -> Result<Json<ActionResponse>, ApiError> {
    let response = app.node.write(actor(headers), command).await?;
    Ok(Json(ActionResponse {
        index: response.index,
    }))
}

/// `POST /api/v1/breakers/{scope}/{name}/override`.
pub async fn set_override(
    State(app): State<AppState>,
    Path((scope, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ActionResponse>, ApiError> {
    let key = breaker_key(&scope, &name)?;
    let body = Body::parse(&headers, &body, &["mode", "reason", "for_ms"])?;
    let mode = override_mode(body.str("mode")?)?;
    let command = Command::SetOverride {
        key,
        mode,
        reason: body.required_reason()?,
        expires_at_ms: body.expires_at_ms(&app)?,
    };
    write(&app, &headers, command).await
}

/// `DELETE /api/v1/breakers/{scope}/{name}/override`.
pub async fn clear_override(
    State(app): State<AppState>,
    Path((scope, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ActionResponse>, ApiError> {
    let key = breaker_key(&scope, &name)?;
    let body = Body::parse(&headers, &body, &["reason"])?;
    let command = Command::ClearOverride {
        key,
        reason: or_default(body.reason()?, "override cleared via HTTP"),
    };
    write(&app, &headers, command).await
}

/// `POST /api/v1/breakers/{scope}/{name}/reset`.
pub async fn reset(
    State(app): State<AppState>,
    Path((scope, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ActionResponse>, ApiError> {
    let key = breaker_key(&scope, &name)?;
    let body = Body::parse(&headers, &body, &["reason"])?;
    let command = Command::ResetBreaker {
        key,
        reason: or_default(body.reason()?, "reset via HTTP"),
    };
    write(&app, &headers, command).await
}

/// `POST /api/v1/tiers/{scope}`.
pub async fn set_tier(
    State(app): State<AppState>,
    Path(scope_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ActionResponse>, ApiError> {
    let scope = scope(&scope_name)?;
    let body = Body::parse(&headers, &body, &["tier", "reason", "for_ms"])?;
    let tier = tier(body.fields.get("tier"))?;
    let command = Command::SetTierOverride {
        scope,
        tier,
        reason: or_default(body.reason()?, &format!("tier pinned to {tier} via HTTP")),
        expires_at_ms: body.expires_at_ms(&app)?,
    };
    write(&app, &headers, command).await
}

/// `DELETE /api/v1/tiers/{scope}`.
pub async fn clear_tier(
    State(app): State<AppState>,
    Path(scope_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ActionResponse>, ApiError> {
    let scope = scope(&scope_name)?;
    let body = Body::parse(&headers, &body, &["reason"])?;
    let command = Command::ClearTierOverride {
        scope,
        reason: or_default(body.reason()?, "tier pin cleared via HTTP"),
    };
    write(&app, &headers, command).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        h
    }

    #[test]
    fn bodies_are_json_objects_with_known_fields() {
        let h = json_headers();
        let body = Body::parse(&h, &Bytes::from_static(b""), &["reason"]).unwrap();
        assert_eq!(body.reason().unwrap(), "");
        let e = Body::parse(&h, &Bytes::from_static(b"{\"mood\":1}"), &["mode"]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mood"));
        let e = Body::parse(&h, &Bytes::from_static(b"[1]"), &["mode"]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
        let e = Body::parse(&HeaderMap::new(), &Bytes::from_static(b"{}"), &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body = Body::parse(
            &h,
            &Bytes::from_static(b"{\"reason\":\"a\\u0007\"}"),
            &["reason"],
        )
        .unwrap();
        assert_eq!(body.reason().unwrap_err().field.as_deref(), Some("reason"));
    }

    #[test]
    fn modes_and_tiers_parse_or_name_the_field() {
        assert_eq!(
            override_mode(Some("forced_open")).unwrap(),
            OverrideMode::ForcedOpen
        );
        assert_eq!(
            override_mode(Some("close")).unwrap(),
            OverrideMode::ForcedClosed
        );
        assert_eq!(
            override_mode(Some("x")).unwrap_err().field.as_deref(),
            Some("mode")
        );
        assert_eq!(
            override_mode(None).unwrap_err().field.as_deref(),
            Some("mode")
        );
        assert_eq!(tier(Some(&Value::from(3))).unwrap(), Tier::Essential);
        assert_eq!(
            tier(Some(&Value::from("read_only"))).unwrap(),
            Tier::ReadOnly
        );
        assert_eq!(
            tier(Some(&Value::from(9))).unwrap_err().field.as_deref(),
            Some("tier")
        );
        assert_eq!(tier(None).unwrap_err().field.as_deref(), Some("tier"));
        assert!(breaker_key("Pay ments", "x").is_err());
    }
}
