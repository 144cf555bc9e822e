//! `POST /v1/events`: many envelopes in one request, as a JSON array or as
//! NDJSON, answered with one result per event in request order. The events of
//! a request are submitted concurrently, so a batch costs about one broker
//! round trip; a bad envelope fails alone and the rest are still produced.
use axum::{Json, extract::State, http::HeaderMap};
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument as _;
use tributary_common::trace_context;
use tributary_proto::v1 as proto;

use tributary_edge::{
    authorized::AuthorizedBatch,
    error::{ApiError, ErrorBody},
    openapi,
};

use super::{
    GatewayState,
    body::{self, Body, MediaType},
    envelope,
    error::code_name,
    json::kind,
    traceparent,
};
use crate::{event::ExactJson, rejection::Rejection};

/// Most events one request may carry; a larger batch is refused whole (413)
/// so one client cannot hold the producer for long.
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;

/// Events of one request waiting for the broker at once: enough to fill the
/// producer's batches, few enough to leave room for other requests.
pub const MAX_IN_FLIGHT_PER_REQUEST: usize = 1024;

/// The response: one result per event, in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventResults {
    /// The results, `results[i].index == i`.
    pub results: Vec<EventResult>,
}

/// The outcome of one event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventResult {
    /// The event's position in the request (envelopes only; blank NDJSON
    /// lines are not events).
    pub index: usize,
    /// Stored or refused.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Stored or refused, as `"ack"` or `"error"`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Where the broker stored the event.
    Ack(Ack),
    /// Why the event was refused; nothing of it was stored.
    Error(EventError),
}

/// Where the broker stored an event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ack {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The writer schema's registry id.
    pub schema_id: i32,
}

/// Why an event was refused.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventError {
    /// The class, e.g. `INVALID_ARGUMENT`.
    #[schema(schema_with = event_error_code)]
    pub code: &'static str,
    /// The offending field's path, empty when not about one field.
    pub field: String,
    /// What was wrong.
    pub message: String,
}

/// `EventError::code`'s schema: the name of every `EventErrorCode` but
/// UNSPECIFIED.
fn event_error_code() -> utoipa::openapi::Object {
    let codes = (1..i32::from(u8::MAX))
        .map_while(|n| proto::EventErrorCode::try_from(n).ok())
        .map(code_name);
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(codes))
        .build()
}

impl EventResult {
    fn new(index: usize, outcome: Result<proto::EventAck, Rejection>) -> Self {
        let outcome = match outcome {
            Ok(ack) => Outcome::Ack(Ack {
                topic: ack.topic,
                partition: ack.partition,
                offset: ack.offset,
                schema_id: ack.schema_id,
            }),
            Err(rejection) => {
                if !rejection.is_client_error() {
                    tracing::warn!(index, error = %rejection, "event of a /v1/events batch not stored");
                }
                Outcome::Error(EventError {
                    code: code_name(rejection.code),
                    field: rejection.field,
                    message: rejection.message,
                })
            }
        };
        Self { index, outcome }
    }
}

/// Handles `POST /v1/events`.
#[utoipa::path(
    post,
    tag = "events",
    path = "/v1/events",
    summary = "Submit a batch of events.",
    description = "A JSON array of envelopes, or NDJSON with one envelope per line; at most 10000 events. Each event succeeds or fails alone.",
    security(("apiKey" = [])),
    params(("traceparent" = Option<String>, Header, description = "W3C trace context, continued by the produced events.")),
    request_body(
        description = "The events.",
        content(
            (Vec<super::openapi::Envelope> = "application/json"),
            (super::openapi::Envelope = "application/x-ndjson"),
        )
    ),
    responses(
        (status = 200, description = "One result per event, in request order: where it was stored, or why it was refused.", body = EventResults),
        (status = 400, description = "The body is not a JSON array (NDJSON lines that are not JSON are per-event errors instead).", body = ErrorBody),
        (status = 401, description = openapi::UNAUTHORIZED, body = ErrorBody),
        (status = 413, description = super::TOO_LARGE, body = ErrorBody),
        (status = 415, description = super::UNSUPPORTED, body = ErrorBody),
        (status = 500, description = super::SERVER_FAILED, body = ErrorBody),
        (status = 503, description = super::UNAVAILABLE, body = ErrorBody),
    )
)]
pub async fn submit_events(
    caller: AuthorizedBatch,
    State(state): State<GatewayState>,
    headers: HeaderMap,
    Body(bytes): Body,
) -> Result<Json<EventResults>, ApiError> {
    let envelopes = match MediaType::of(&headers) {
        Some(MediaType::Json) => json_array(&bytes)?,
        Some(MediaType::NdJson) => ndjson(&bytes)?,
        None => {
            return Err(ApiError::unsupported_media_type(
                body::content_type(&headers),
                "application/json (an array of events) or application/x-ndjson (one event per line)",
            ));
        }
    };
    caller.charge(envelopes.len().max(1))?; // rate limit: one token per event
    let trace = traceparent(&headers);
    let span = tracing::info_span!(
        "ingest.http",
        otel.name = "POST /v1/events",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/v1/events",
        events = envelopes.len(),
    );
    trace_context::set_parent(&span, trace_context::from_traceparent(trace.as_deref()));
    let ingestor = &state.ingestor;
    let results = futures::stream::iter(envelopes.into_iter().enumerate())
        .map(|(index, envelope)| {
            let trace = trace.as_deref();
            async move {
                let outcome = match envelope.and_then(envelope::read) {
                    Ok(read) => {
                        let exact = ExactJson {
                            generic: read.generic,
                            extra_fields: Some(read.extra_fields),
                        };
                        ingestor.submit_exact(read.event, exact, trace).await
                    }
                    Err(rejection) => Err(rejection),
                };
                EventResult::new(index, outcome)
            }
        })
        .buffered(MAX_IN_FLIGHT_PER_REQUEST)
        .collect()
        .instrument(span)
        .await;
    Ok(Json(EventResults { results }))
}

/// The envelopes of a JSON array body; a body that is not an array is
/// refused whole, since there is no event to report on.
fn json_array(bytes: &[u8]) -> Result<Vec<Result<Value, Rejection>>, ApiError> {
    match body::parse_json(bytes)? {
        Value::Array(items) => {
            at_most_max(items.len())?;
            Ok(items.into_iter().map(Ok).collect())
        }
        other => Err(ApiError::invalid(
            "body",
            format!("must be a JSON array of events, got {}", kind(&other)),
        )),
    }
}

/// The envelopes of an NDJSON body, one per non-blank line; a line that is not
/// JSON becomes that event's error.
fn ndjson(bytes: &[u8]) -> Result<Vec<Result<Value, Rejection>>, ApiError> {
    let lines: Vec<(usize, &[u8])> = bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(number, line)| (number + 1, line.trim_ascii()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    at_most_max(lines.len())?;
    Ok(lines
        .into_iter()
        .map(|(number, line)| {
            serde_json::from_slice(line)
                .map_err(|e| Rejection::invalid("event", format!("line {number} is not JSON: {e}")))
        })
        .collect())
}

fn at_most_max(events: usize) -> Result<(), ApiError> {
    if events > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::too_large(format!(
            "a request carries at most {MAX_EVENTS_PER_REQUEST} events, got {events}; split the batch"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_skips_blank_lines_and_keeps_bad_lines_as_errors() {
        let envelopes = ndjson(b"{\"a\":1}\r\n\n not json\n").unwrap();
        assert_eq!(envelopes.len(), 2);
        assert_eq!(envelopes[0].as_ref().unwrap(), &serde_json::json!({"a": 1}));
        let rejection = envelopes[1].as_ref().unwrap_err();
        assert_eq!(rejection.field, "event");
        assert!(
            rejection.message.starts_with("line 3 is not JSON: "),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn results_serialise_as_ack_or_error() {
        let ack = proto::EventAck {
            topic: "t".into(),
            partition: 1,
            offset: 7,
            schema_id: 3,
        };
        let results = EventResults {
            results: vec![
                EventResult::new(0, Ok(ack)),
                EventResult::new(1, Err(Rejection::invalid("key", "bad"))),
            ],
        };
        assert_eq!(
            serde_json::to_value(&results).unwrap(),
            serde_json::json!({"results": [
                {"index": 0, "ack": {"topic": "t", "partition": 1, "offset": 7, "schema_id": 3}},
                {"index": 1, "error": {"code": "INVALID_ARGUMENT", "field": "key", "message": "bad"}},
            ]})
        );
    }

    #[test]
    fn more_than_the_maximum_is_refused_whole() {
        let body = format!("[{}]", vec!["1"; MAX_EVENTS_PER_REQUEST + 1].join(","));
        let error = json_array(body.as_bytes()).unwrap_err();
        assert_eq!(error.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
