//! `POST /submit`: the old Go ad-click API. One JSON ad click in, `204 No
//! Content` once it is durable in Kafka. The event time is the server's clock
//! and the key the advertiser, as the old service did; errors name the old
//! API's fields (`ip_address`, not `ad_click.ip_address`).
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use tracing::Instrument as _;
use tributary_common::{schemas::AD_CLICK, telemetry, trace_context};
use tributary_proto::v1::{self as proto, event::Payload};

use tributary_edge::{
    authorized::Authorized,
    error::{ApiError, ErrorBody},
    openapi,
};

use super::{
    GatewayState,
    body::{self, Body, MediaType},
    error::from_rejection,
    json::Fields,
    traceparent,
};
use crate::rejection::Rejection;

/// The header that makes a retried submission count once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Handles `POST /submit`.
#[utoipa::path(
    post,
    tag = "events",
    path = "/submit",
    summary = "Submit one ad click (the old Go API).",
    description = "The event time is the server's clock and the key is `advertiser_id`.",
    security(("apiKey" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, max_length = 256, description = "Makes a retry count once; generated when absent."),
        ("traceparent" = Option<String>, Header, description = "W3C trace context, continued by the produced event."),
    ),
    request_body(content = super::openapi::SubmitRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "The ad click is durable in Kafka (topic `tributary.events.ad_click`)."),
        (status = 400, description = "Malformed JSON, a wrong type, a missing or invalid field; `field` names it (`ip_address`, `referring_url`, ...).", body = ErrorBody),
        (status = 401, description = openapi::UNAUTHORIZED, body = ErrorBody),
        (status = 413, description = super::TOO_LARGE, body = ErrorBody),
        (status = 415, description = super::UNSUPPORTED, body = ErrorBody),
        (status = 500, description = super::SERVER_FAILED, body = ErrorBody),
        (status = 503, description = super::UNAVAILABLE, body = ErrorBody),
    )
)]
pub async fn submit(
    _: Authorized,
    State(state): State<GatewayState>,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<StatusCode, ApiError> {
    if MediaType::of(&headers) != Some(MediaType::Json) {
        return Err(ApiError::unsupported_media_type(
            body::content_type(&headers),
            "application/json",
        ));
    }
    let event = parse(&body::parse_json(&bytes)?, &headers)
        .map_err(|r| from_rejection(r, old_field_name))?;
    let trace = traceparent(&headers);
    // One request is one event here, so its span would cost every event the
    // log layer's formatted copy of its fields, read by nothing unless spans
    // are exported (as the event path's `ingest.produce`). Without export
    // the produced record still continues the caller's trace.
    let span = if telemetry::exporting() {
        let span = tracing::info_span!(
            "ingest.http",
            otel.name = "POST /submit",
            otel.kind = "server",
            http.request.method = "POST",
            http.route = "/submit",
        );
        trace_context::set_parent(&span, trace_context::from_traceparent(trace.as_deref()));
        span
    } else {
        tracing::Span::none()
    };
    state
        .ingestor
        .submit(event, trace.as_deref())
        .instrument(span)
        .await
        .map_err(|r| from_rejection(r, old_field_name))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The ad click of a `/submit` body; validation proper is the event path's.
fn parse(value: &serde_json::Value, headers: &HeaderMap) -> Result<proto::Event, Rejection> {
    let fields = Fields::of(value, "body", "ad_click.")?;
    let click = proto::AdClick {
        ip_address: fields.required_string("ip_address")?,
        user_agent: fields.required_string("user_agent")?,
        referring_url: fields.required_string("referring_url")?,
        advertiser_id: fields.required_string("advertiser_id")?,
        metadata: fields.object("metadata")?,
        campaign_id: fields.string("campaign_id")?,
    };
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
        Some(value) => value
            .to_str()
            .map_err(|_| Rejection::invalid("idempotency_key", "must be visible ASCII"))?
            .to_string(),
        None => String::new(),
    };
    let now = std::time::SystemTime::now();
    Ok(proto::Event {
        event_type: AD_CLICK.into(),
        key: String::new(), // the event path defaults it to advertiser_id
        event_time: Some(prost_types::Timestamp::from(now)),
        idempotency_key,
        payload: Some(Payload::AdClick(click)),
        extra_fields: None,
    })
}

/// The old API's name of an event path field: its body fields without the
/// `ad_click.` prefix, and the header for the idempotency key.
fn old_field_name(field: &str) -> String {
    match field {
        "idempotency_key" => "Idempotency-Key".into(),
        other => other.strip_prefix("ad_click.").unwrap_or(other).into(),
    }
}
