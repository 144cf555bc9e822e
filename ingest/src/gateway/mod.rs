//! The legacy JSON gateway (axum): the old Go ad-click API (`POST /submit`),
//! the JSON events endpoint (`POST /v1/events`), the query API
//! (`GET /v1/aggregates`, `GET /v1/price-accuracy`), its OpenAPI document and
//! the liveness and readiness probes. Every event goes through the same
//! [`Ingestor`] as gRPC; every refusal leaves as one JSON error shape
//! ([`error::ErrorBody`]).
//!
//! Request bodies are bounded by `--max-message-bytes` (axum's
//! `DefaultBodyLimit`, enforced while the body is read: 413). The protected
//! routes check the API key and the caller's rate limit ([`auth`]); `startup.rs`
//! adds CORS ([`cors`]) and serves over TLS ([`tls`]) when configured.
pub mod aggregates;
pub mod auth;
pub mod body;
pub mod cors;
pub mod envelope;
pub mod error;
pub mod events;
pub mod json;
pub mod openapi;
pub mod probes;
pub mod submit;
pub mod tls;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};

use self::error::ApiError;
use tributary_sink::query::QueryApi;

use crate::{auth::ApiKeys, health::Readiness, ingestor::Ingestor, rate_limit::RateLimiter};

/// What the gateway's handlers share.
#[derive(Clone)]
pub struct GatewayState {
    /// The event path.
    pub ingestor: Arc<Ingestor>,
    /// Broker and registry reachability.
    pub readiness: Readiness,
    /// API keys (none: open).
    pub api_keys: ApiKeys,
    /// The query API (answers 503 without a database).
    pub queries: QueryApi,
    /// Largest accepted request body; larger ones get a JSON 413.
    pub max_body_bytes: usize,
    /// Per-caller rate limits (none: unlimited).
    pub rate_limiter: Option<RateLimiter>,
}

/// Every route of the gateway.
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/submit", post(submit::submit))
        .route("/v1/events", post(events::submit_events))
        .route("/v1/aggregates", get(aggregates::get_aggregates))
        .route("/v1/price-accuracy", get(aggregates::get_price_accuracy))
        .route("/openapi.json", get(openapi::serve))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Replaces axum's own 2 MiB default with `--max-message-bytes`.
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

/// The caller's W3C trace context, continued by the produced events.
fn traceparent(headers: &HeaderMap) -> Option<String> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no route {} {}; see GET /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; see GET /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}
