//! The OpenAPI fragment of the query routes (`GET /v1/aggregates`,
//! `GET /v1/price-accuracy`), merged into the edge's document.
use serde_json::{Value, json};
use tributary_edge::openapi::{error_response, unauthorized};

/// The query routes' paths and schemas.
pub fn document() -> Value {
    let unauthorized = unauthorized();
    let query_unavailable =
        error_response("The database is unreachable; the request may be retried.");
    let query_failed = error_response(
        "The query failed unexpectedly. The body and `x-request-id` carry the id it was logged under.",
    );
    let time_param = |name: &str, description: &str| json!({"name": name, "in": "query", "required": true, "schema": {"type": "string", "format": "date-time"}, "description": description});
    let granularity_param = json!({"name": "granularity", "in": "query", "required": false, "schema": {"type": "string", "example": "1h"},
        "description": "Bucket size as a number and a unit (ms, s, m, h, d), a positive multiple of the processor's window (`--window`, default 1m); defaults to the window. Buckets are aligned to the Unix epoch (`1d` is a UTC day)."});

    json!({
        "components": {
            "schemas": {
                "Aggregate": {
                    "type": "object",
                    "description": "One key over one bucket. Optional fields are present only for the event types that have them.",
                    "required": ["event_type", "key", "window_start", "window_end", "count", "revisions"],
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
                        "last": {"type": "number", "description": "The value of the latest event by event time."},
                        "revisions": {"type": "integer", "format": "int64", "description": "How many times late events corrected the figures of the bucket's windows after their final was first stored (summed over the windows); 0 when never corrected."}
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
                }
            }
        },
        "paths": {
            "/v1/aggregates": {
                "get": {
                    "summary": "List aggregates of one event type, rolled up to a granularity, one page at a time.",
                    "description": "The same request and rules as gRPC `QueryService.GetAggregates`.",
                    "security": [{"apiKey": []}],
                    "parameters": [
                        {"name": "event_type", "in": "query", "required": true, "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,99}$"}, "description": "ad_click, price_tick, or a schema-driven type with stored aggregates."},
                        {"name": "key", "in": "query", "required": false, "schema": {"type": "array", "items": {"type": "string", "minLength": 1}}, "style": "form", "explode": true, "description": "Only these keys (repeat the parameter); all keys when absent."},
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
                        {"name": "pair", "in": "query", "required": false, "schema": {"type": "array", "items": {"type": "string", "minLength": 1}}, "style": "form", "explode": true, "description": "Only these pairs (repeat the parameter); all when absent."},
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
            }
        }
    })
}
