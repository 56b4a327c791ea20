//! The dashboard at `/`: one self-contained HTML page (inline CSS and JavaScript, no external
//! assets, no build step) embedded in the binary.
//!
//! The page polls this node's JSON API every second (`/api/v1/status`, `/breakers`, `/tiers`),
//! and every two seconds the history of the charted breakers and their 24 h SLA reports; it
//! draws the charts as inline SVG. Operator actions call the POST/DELETE endpoints of
//! [`super::actions`]; when one answers 401 the page asks for the admin token once and keeps it
//! in `sessionStorage` (gone when the tab closes). Text from the cluster (keys, reasons) is
//! only ever inserted as text nodes, never as HTML.
//!
//! The response forbids framing (operator buttons must not be clickjacked) and, through its
//! content security policy, any script, style or connection that is not inline or this node.

use axum::http::header;
use axum::response::IntoResponse;

/// The page.
pub const INDEX_HTML: &str = include_str!("dashboard.html");

/// `GET /`.
pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 img-src data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                 form-action 'none'",
            ),
        ],
        INDEX_HTML,
    )
}
