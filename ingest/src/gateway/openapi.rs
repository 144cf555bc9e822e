//! The OpenAPI fragment of the event routes (`POST /submit`,
//! `POST /v1/events`), merged into the edge's `GET /openapi.json`, so legacy
//! clients can generate code and see every error body.
use serde_json::{Value, json};
use tributary_edge::openapi::{error_response, unauthorized};

use super::events::MAX_EVENTS_PER_REQUEST;

fn server_errors(responses: &mut Value) {
    responses["500"] = error_response(
        "The pipeline failed unexpectedly; nothing was stored. The body and `x-request-id` carry the id it was logged under.",
    );
    responses["503"] = error_response(
        "The broker or the registry is unreachable; nothing was stored and the request may be retried (with the same `Idempotency-Key`).",
    );
}

/// The event routes' paths and schemas.
pub fn document() -> Value {
    let unauthorized = unauthorized();
    let too_large = error_response(
        "The body is larger than `--max-message-bytes`, or carries too many events.",
    );
    let unsupported = error_response("The content type is not one the route reads.");

    let mut submit_responses = json!({
        "204": {"description": "The ad click is durable in Kafka (topic `tributary.events.ad_click`)."},
        "400": error_response("Malformed JSON, a wrong type, a missing or invalid field; `field` names it (`ip_address`, `referring_url`, ...)."),
        "401": unauthorized,
        "413": too_large,
        "415": unsupported,
    });
    server_errors(&mut submit_responses);
    let mut events_responses = json!({
        "200": {
            "description": "One result per event, in request order: where it was stored, or why it was refused.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventResults"}}}
        },
        "400": error_response("The body is not a JSON array (NDJSON lines that are not JSON are per-event errors instead)."),
        "401": unauthorized,
        "413": too_large,
        "415": unsupported,
    });
    server_errors(&mut events_responses);
    json!({
        "components": {
            "schemas": {
                "SubmitRequest": {
                    "type": "object",
                    "description": "The old Go ad-click API's body. Unknown fields are ignored.",
                    "required": ["ip_address", "user_agent", "referring_url", "advertiser_id"],
                    "properties": {
                        "ip_address": {"anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}], "description": "IPv4 or IPv6 address.", "example": "203.0.113.7"},
                        "user_agent": {"type": "string", "pattern": "\\S", "maxLength": 2048, "description": "Not blank."},
                        "referring_url": {"type": "string", "format": "uri", "pattern": "^https?://[A-Za-z0-9.-]+", "maxLength": 4096, "description": "Absolute http(s) URL with a host."},
                        "advertiser_id": {"type": "string", "pattern": "\\S", "maxLength": 256, "description": "The Kafka key and aggregation key; not blank."},
                        "metadata": {"type": "object", "nullable": true, "additionalProperties": true, "description": "Free-form metadata; null is the same as absent."},
                        "campaign_id": {"type": "string", "nullable": true, "maxLength": 256, "description": "The campaign, when known; null is the same as absent."}
                    }
                },
                "AdClick": {
                    "type": "object",
                    "description": "Other keys are extra fields: fields of a newer registered version of `ad_click` (refused when no registered version has them).",
                    "additionalProperties": true,
                    "required": ["ip_address", "user_agent", "referring_url", "advertiser_id"],
                    "properties": {
                        "ip_address": {"type": "string"},
                        "user_agent": {"type": "string"},
                        "referring_url": {"type": "string", "format": "uri"},
                        "advertiser_id": {"type": "string"},
                        "metadata": {"type": "object", "additionalProperties": true},
                        "campaign_id": {"type": "string"}
                    }
                },
                "PriceTick": {
                    "type": "object",
                    "description": "Other keys are extra fields: fields of a newer registered version of `price_tick` (refused when no registered version has them).",
                    "additionalProperties": true,
                    "required": ["pair", "source", "price"],
                    "properties": {
                        "pair": {"type": "string", "example": "ETH-USD"},
                        "source": {"type": "string"},
                        "price": {"type": "number", "exclusiveMinimum": true, "minimum": 0},
                        "volume": {"type": "number", "minimum": 0}
                    }
                },
                "Envelope": {
                    "type": "object",
                    "description": "One event: exactly one of `ad_click`, `price_tick` or `generic`. Unknown fields are refused.",
                    "additionalProperties": false,
                    "required": ["event_time"],
                    "properties": {
                        "event_type": {"type": "string", "description": "Defaults to the typed payload's type; required with `generic`."},
                        "key": {"type": "string", "description": "Defaults to the natural key (advertiser_id, pair), the only key a typed event accepts; required with `generic`."},
                        "event_time": {
                            "oneOf": [
                                {"type": "string", "format": "date-time"},
                                {"type": "integer", "format": "int64", "description": "Milliseconds since the Unix epoch."}
                            ]
                        },
                        "idempotency_key": {"type": "string", "description": "Makes a retry count once; generated when absent."},
                        "ad_click": {"$ref": "#/components/schemas/AdClick"},
                        "price_tick": {"$ref": "#/components/schemas/PriceTick"},
                        "generic": {"type": "object", "additionalProperties": true, "description": "An event of any type as a JSON object, checked against its registered Avro schema versions (for `ad_click` and `price_tick`: the typed payload's fields plus fields of newer versions)."},
                        "extra_fields": {"type": "object", "additionalProperties": true, "description": "With `ad_click` or `price_tick`: fields of a newer registered version that the payload lacks."}
                    }
                },
                "EventAck": {
                    "type": "object",
                    "required": ["topic", "partition", "offset", "schema_id"],
                    "properties": {
                        "topic": {"type": "string"},
                        "partition": {"type": "integer", "format": "int32"},
                        "offset": {"type": "integer", "format": "int64"},
                        "schema_id": {"type": "integer", "format": "int32"}
                    }
                },
                "EventError": {
                    "type": "object",
                    "required": ["code", "field", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": ["INVALID_ARGUMENT", "UNKNOWN_EVENT_TYPE", "SCHEMA_MISMATCH", "TOO_LARGE", "UNAVAILABLE", "INTERNAL"]},
                        "field": {"type": "string", "description": "The offending field's path, e.g. `ad_click.ip_address`; empty when not about one field."},
                        "message": {"type": "string"}
                    }
                },
                "EventResult": {
                    "type": "object",
                    "description": "Either `ack` or `error`.",
                    "required": ["index"],
                    "properties": {
                        "index": {"type": "integer", "description": "The event's position in the request."},
                        "ack": {"$ref": "#/components/schemas/EventAck"},
                        "error": {"$ref": "#/components/schemas/EventError"}
                    }
                },
                "EventResults": {
                    "type": "object",
                    "required": ["results"],
                    "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/EventResult"}}}
                }
            }
        },
        "paths": {
            "/submit": {
                "post": {
                    "summary": "Submit one ad click (the old Go API).",
                    "description": "The event time is the server's clock and the key is `advertiser_id`.",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 256}, "description": "Makes a retry count once; generated when absent."},
                        {"name": "traceparent", "in": "header", "required": false, "schema": {"type": "string"}, "description": "W3C trace context, continued by the produced event."}
                    ],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitRequest"}}}},
                    "responses": submit_responses
                }
            },
            "/v1/events": {
                "post": {
                    "summary": "Submit a batch of events.",
                    "description": format!("A JSON array of envelopes, or NDJSON with one envelope per line; at most {MAX_EVENTS_PER_REQUEST} events. Each event succeeds or fails alone."),
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {"name": "traceparent", "in": "header", "required": false, "schema": {"type": "string"}, "description": "W3C trace context, continued by the produced events."}
                    ],
                    "requestBody": {"required": true, "content": {
                        "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Envelope"}}},
                        "application/x-ndjson": {"schema": {"$ref": "#/components/schemas/Envelope"}}
                    }},
                    "responses": events_responses
                }
            }
        }
    })
}
