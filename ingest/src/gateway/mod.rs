//! The legacy JSON gateway (axum): the old Go ad-click API (`POST /submit`)
//! and the JSON events endpoint (`POST /v1/events`), with their OpenAPI
//! fragment. Every event goes through the same [`Ingestor`] as gRPC; every
//! refusal leaves as the edge's one JSON error shape
//! ([`tributary_edge::error::ErrorBody`]).
//!
//! Request bodies are bounded by `--max-message-bytes` (axum's
//! `DefaultBodyLimit`, enforced while the body is read: 413). The routes
//! check the API key and the caller's rate limit
//! ([`tributary_edge::authorized`]); the edge adds CORS, TLS, the probes and
//! the answer to unknown routes.
pub mod body;
pub mod envelope;
pub mod error;
pub mod events;
pub mod json;
pub mod openapi;
pub mod submit;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef},
    http::HeaderMap,
    routing::post,
};
use tributary_edge::Access;

use crate::ingestor::Ingestor;

/// What the gateway's handlers share.
#[derive(Clone)]
pub struct GatewayState {
    /// The event path.
    pub ingestor: Arc<Ingestor>,
    /// API keys and rate limits.
    pub access: Access,
    /// Largest accepted request body; larger ones get a JSON 413.
    pub max_body_bytes: usize,
}

impl FromRef<GatewayState> for Access {
    fn from_ref(state: &GatewayState) -> Self {
        state.access.clone()
    }
}

/// Every route of the gateway.
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/submit", post(submit::submit))
        .route("/v1/events", post(events::submit_events))
        // Replaces axum's own 2 MiB default with `--max-message-bytes`.
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

/// The 413 of the event routes, as documented.
const TOO_LARGE: &str =
    "The body is larger than `--max-message-bytes`, or carries too many events.";
/// The 415 of the event routes, as documented.
const UNSUPPORTED: &str = "The content type is not one the route reads.";
/// The 500 of the event routes, as documented.
const SERVER_FAILED: &str = "The pipeline failed unexpectedly; nothing was stored. The body and `x-request-id` carry the id it was logged under.";
/// The 503 of the event routes, as documented.
const UNAVAILABLE: &str = "The broker or the registry is unreachable; nothing was stored and the request may be retried (with the same `Idempotency-Key`).";

/// The caller's W3C trace context, continued by the produced events.
fn traceparent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(tributary_common::headers::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}
