//! `GET /openapi.json`: the gateway described as OpenAPI 3.0, written by hand
//! (a derive crate would cost more compile time than this one document), so
//! legacy clients can generate code and see every error body.
use std::sync::LazyLock;

use axum::Json;
use serde_json::{Value, json};

use super::events::MAX_EVENTS_PER_REQUEST;

/// Handles `GET /openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(DOCUMENT.clone())
}

/// The document, built once.
pub static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn server_errors(responses: &mut Value) {
    responses["500"] = error_response(
        "The pipeline failed unexpectedly; nothing was stored. The body and `x-request-id` carry the id it was logged under.",
    );
    responses["503"] = error_response(
        "The broker or the registry is unreachable; nothing was stored and the request may be retried (with the same `Idempotency-Key`).",
    );
}

fn document() -> Value {
    let unauthorized = error_response(
        "API keys are configured and `Authorization: Bearer <key>` is missing or not accepted; nothing was produced.",
    );
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
    let query_unavailable = error_response(
        "Ingest was started without `--database-url`, or the database is unreachable; the request may be retried.",
    );
    let query_failed = error_response(
        "The query failed unexpectedly. The body and `x-request-id` carry the id it was logged under.",
    );
    let time_param = |name: &str, description: &str| json!({"name": name, "in": "query", "required": true, "schema": {"type": "string", "format": "date-time"}, "description": description});
    let granularity_param = json!({"name": "granularity", "in": "query", "required": false, "schema": {"type": "string", "example": "1h"},
        "description": "Bucket size as a number and a unit (ms, s, m, h, d), a positive multiple of the processor's window (`--window`, default 1m); defaults to the window. Buckets are aligned to the Unix epoch (`1d` is a UTC day)."});

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tributary ingest JSON gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The legacy JSON API of Tributary ingest. Events take the same path as over gRPC: validated, encoded as Avro with a registered schema and produced to Kafka; a success is only answered once the broker has stored the event."
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "Required when ingest is started with API keys."}},
            "schemas": {
                "SubmitRequest": {
                    "type": "object",
                    "description": "The old Go ad-click API's body. Unknown fields are ignored.",
                    "required": ["ip_address", "user_agent", "referring_url", "advertiser_id"],
                    "properties": {
                        "ip_address": {"type": "string", "description": "IPv4 or IPv6 address.", "example": "203.0.113.7"},
                        "user_agent": {"type": "string", "maxLength": 2048},
                        "referring_url": {"type": "string", "format": "uri", "description": "Absolute http(s) URL with a host."},
                        "advertiser_id": {"type": "string", "maxLength": 256, "description": "The Kafka key and aggregation key."},
                        "metadata": {"type": "object", "additionalProperties": true, "description": "Free-form metadata."},
                        "campaign_id": {"type": "string", "maxLength": 256, "description": "The campaign, when known."}
                    }
                },
                "AdClick": {
                    "type": "object",
                    "additionalProperties": false,
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
                    "additionalProperties": false,
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
                        "key": {"type": "string", "description": "Defaults to the natural key (advertiser_id, pair); required with `generic`."},
                        "event_time": {
                            "oneOf": [
                                {"type": "string", "format": "date-time"},
                                {"type": "integer", "format": "int64", "description": "Milliseconds since the Unix epoch."}
                            ]
                        },
                        "idempotency_key": {"type": "string", "description": "Makes a retry count once; generated when absent."},
                        "ad_click": {"$ref": "#/components/schemas/AdClick"},
                        "price_tick": {"$ref": "#/components/schemas/PriceTick"},
                        "generic": {"type": "object", "additionalProperties": true, "description": "An event of a schema-driven type, checked against its registered Avro schema."}
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
                },
                "Aggregate": {
                    "type": "object",
                    "description": "One key over one bucket. Optional fields are present only for the event types that have them.",
                    "required": ["event_type", "key", "window_start", "window_end", "count"],
                    "properties": {
                        "event_type": {"type": "string"},
                        "key": {"type": "string", "description": "Advertiser id (ad_click), `pair/source` (price_tick) or the event key."},
                        "window_start": {"type": "string", "format": "date-time", "description": "Inclusive start of the bucket."},
                        "window_end": {"type": "string", "format": "date-time", "description": "Exclusive end of the bucket."},
                        "count": {"type": "integer", "format": "int64"},
                        "distinct_count": {"type": "integer", "format": "int64", "description": "ad_click: distinct client IPs. Exact for a one-window bucket; for a larger bucket the largest window's count, a lower bound."},
                        "min": {"type": "number"},
                        "max": {"type": "number"},
                        "sum": {"type": "number"},
                        "avg": {"type": "number", "description": "sum / count."},
                        "last": {"type": "number", "description": "The value of the latest event by event time."}
                    }
                },
                "AggregatesPage": {
                    "type": "object",
                    "required": ["aggregates", "next_page_token"],
                    "properties": {
                        "aggregates": {"type": "array", "items": {"$ref": "#/components/schemas/Aggregate"}},
                        "next_page_token": {"type": "string", "description": "Pass as `page_token` with the same other parameters for the next page; empty on the last page."}
                    }
                },
                "PriceAccuracy": {
                    "type": "object",
                    "required": ["pair", "source", "window_start", "source_avg", "others_mean", "percent_difference"],
                    "properties": {
                        "pair": {"type": "string"},
                        "source": {"type": "string"},
                        "window_start": {"type": "string", "format": "date-time"},
                        "source_avg": {"type": "number"},
                        "others_mean": {"type": "number", "description": "The mean of the other sources' averages in the bucket."},
                        "percent_difference": {"type": "number", "description": "100 * (source_avg - others_mean) / others_mean."}
                    }
                },
                "AccuracyReport": {
                    "type": "object",
                    "required": ["accuracy"],
                    "properties": {"accuracy": {"type": "array", "items": {"$ref": "#/components/schemas/PriceAccuracy"}}}
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "The class of the error.", "enum": [
                            "invalid_argument", "schema_mismatch", "unknown_event_type", "too_large", "unsupported_media_type",
                            "unauthenticated", "not_found", "method_not_allowed", "unavailable", "internal"
                        ]},
                        "field": {"type": "string", "description": "The offending field, when the error is about one."},
                        "message": {"type": "string"},
                        "request_id": {"type": "string", "description": "On 5xx: the id the failure was logged under (also the `x-request-id` header)."}
                    }
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
            },
            "/v1/aggregates": {
                "get": {
                    "summary": "List aggregates of one event type, rolled up to a granularity, one page at a time.",
                    "description": "The same request and rules as gRPC `QueryService.GetAggregates`.",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {"name": "event_type", "in": "query", "required": true, "schema": {"type": "string"}, "description": "ad_click, price_tick, or a schema-driven type with stored aggregates."},
                        {"name": "key", "in": "query", "required": false, "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "Only these keys (repeat the parameter); all keys when absent."},
                        time_param("start_time", "Inclusive start of the range of window starts (RFC 3339)."),
                        time_param("end_time", "Exclusive end of the range (RFC 3339); after start_time."),
                        granularity_param,
                        {"name": "order", "in": "query", "required": false, "schema": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}, "description": "Bucket order; keys ascend within a bucket."},
                        {"name": "page_size", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "maximum": 10000, "default": 100}},
                        {"name": "page_token", "in": "query", "required": false, "schema": {"type": "string"}, "description": "`next_page_token` of the previous page."}
                    ],
                    "responses": {
                        "200": {"description": "One page.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AggregatesPage"}}}},
                        "400": error_response("A missing or invalid parameter, an unknown event type or a page token issued for other parameters; `field` names the parameter."),
                        "401": unauthorized,
                        "500": query_failed,
                        "503": query_unavailable
                    }
                }
            },
            "/v1/price-accuracy": {
                "get": {
                    "summary": "How far each price source is from the mean of the other sources, per pair and bucket.",
                    "description": "The same request and rules as gRPC `QueryService.GetPriceAccuracy`.",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {"name": "pair", "in": "query", "required": false, "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true, "description": "Only these pairs (repeat the parameter); all when absent."},
                        time_param("start_time", "Inclusive start of the range of window starts (RFC 3339)."),
                        time_param("end_time", "Exclusive end of the range (RFC 3339); after start_time."),
                        granularity_param
                    ],
                    "responses": {
                        "200": {"description": "Every source that has another source to compare with.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AccuracyReport"}}}},
                        "400": error_response("A missing or invalid parameter; `field` names it."),
                        "401": unauthorized,
                        "500": query_failed,
                        "503": query_unavailable
                    }
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "responses": {"200": {"description": "OpenAPI 3.0.", "content": {"application/json": {"schema": {"type": "object"}}}}}
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness.", "responses": {"204": {"description": "The process is running."}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness.",
                    "responses": {
                        "204": {"description": "The broker and the registry are reachable."},
                        "503": {"description": "The broker or the registry is unreachable."}
                    }
                }
            }
        }
    })
}
