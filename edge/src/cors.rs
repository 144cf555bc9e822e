//! CORS for browser callers of the gateway, restricted to the origins of
//! `--cors-allowed-origin`. Without any configured origin no CORS header is
//! sent and browsers refuse cross-origin calls; with some, a preflight from
//! an allowed origin is answered (methods GET and POST; the headers the
//! routes read) and responses carry `Access-Control-Allow-Origin` for it, and
//! a request from any other origin gets no CORS header at all.
use std::time::Duration;

use axum::{
    Router,
    http::{HeaderName, HeaderValue, Method, header},
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::REQUEST_ID;

/// How long a browser may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `origins` (`*` allows any), or `None` for none.
pub fn layer(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o)
                    .map_err(|_| anyhow::anyhow!("`{o}` is not a valid CORS origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([header::RETRY_AFTER, HeaderName::from_static(REQUEST_ID)])
            .max_age(PREFLIGHT_MAX_AGE),
    ))
}

/// `router` answering CORS for `origins` (unchanged when there are none).
/// The layer is outermost, so preflights are answered before routing and
/// error responses (401, 429, ...) carry the headers a browser needs to read them.
pub fn apply(router: Router, origins: &[String]) -> anyhow::Result<Router> {
    Ok(match layer(origins)? {
        Some(cors) => router.layer(cors),
        None => router,
    })
}
