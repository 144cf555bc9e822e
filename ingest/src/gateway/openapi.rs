//! The OpenAPI document of the event routes (`POST /submit`,
//! `POST /v1/events`), merged into the edge's `GET /openapi.json`, so legacy
//! clients can generate code and see every error body.
//!
//! The operations are declared on the handlers, the responses are the
//! handlers' own types ([`EventResults`] and the edge's error body). The
//! request bodies are read field by field (so an error names the field the
//! way the gRPC API does), by `super::submit::parse` and the envelope reader
//! `tributary_proto::envelope`; the types below describe what those readers
//! accept. The tests here tie the limits they state to the validator's
//! constants, and `stack/tests/openapi_conformance.rs` checks with
//! Schemathesis that the routes accept and answer what the document says.
#![allow(dead_code)] // the request types describe bodies; they are not built

use std::collections::HashMap;

use serde_json::Value;
use utoipa::{
    OpenApi, ToSchema,
    openapi::{ObjectBuilder, OneOfBuilder, RefOr, Schema, schema::Type},
};

use super::{
    events::{self, Ack, EventError, EventResult, EventResults, Outcome},
    submit,
};

/// The old Go ad-click API's body. Unknown fields are ignored.
#[derive(ToSchema)]
pub struct SubmitRequest {
    /// IPv4 or IPv6 address.
    #[schema(schema_with = ip_address, example = "203.0.113.7")]
    ip_address: String,
    /// Not blank.
    #[schema(pattern = r"\S", max_length = 2048)]
    user_agent: String,
    /// Absolute http(s) URL with a host.
    #[schema(
        format = "uri",
        pattern = "^https?://[A-Za-z0-9.-]+",
        max_length = 4096
    )]
    referring_url: String,
    /// The Kafka key and aggregation key; not blank.
    #[schema(pattern = r"\S", max_length = 256)]
    advertiser_id: String,
    /// Free-form metadata; null is the same as absent.
    #[schema(required = false)]
    metadata: Option<HashMap<String, Value>>,
    /// The campaign, when known; null is the same as absent.
    #[schema(required = false, max_length = 256)]
    campaign_id: Option<String>,
}

/// An ad click in an envelope. Other keys are extra fields: fields of a newer
/// registered version of `ad_click` (refused when no registered version has
/// them).
#[derive(ToSchema)]
pub struct AdClick {
    ip_address: String,
    user_agent: String,
    #[schema(format = "uri")]
    referring_url: String,
    advertiser_id: String,
    #[schema(required = false, nullable = false)]
    metadata: Option<HashMap<String, Value>>,
    #[schema(required = false, nullable = false)]
    campaign_id: Option<String>,
}

/// A price tick in an envelope. Other keys are extra fields: fields of a
/// newer registered version of `price_tick` (refused when no registered
/// version has them).
#[derive(ToSchema)]
pub struct PriceTick {
    #[schema(example = "ETH-USD")]
    pair: String,
    source: String,
    #[schema(exclusive_minimum = 0)]
    price: f64,
    #[schema(required = false, nullable = false, minimum = 0)]
    volume: Option<f64>,
}

/// One event: exactly one of `ad_click`, `price_tick` or `generic`. Unknown
/// fields are refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Defaults to the typed payload's type; required with `generic`.
    #[schema(required = false, nullable = false)]
    event_type: Option<String>,
    /// Defaults to the natural key (advertiser_id, pair), the only key a
    /// typed event accepts; required with `generic`.
    #[schema(required = false, nullable = false)]
    key: Option<String>,
    /// An RFC 3339 time, or milliseconds since the Unix epoch.
    #[schema(schema_with = event_time)]
    event_time: String,
    /// Makes a retry count once; generated when absent.
    #[schema(required = false, nullable = false)]
    idempotency_key: Option<String>,
    #[schema(required = false, nullable = false)]
    ad_click: Option<AdClick>,
    #[schema(required = false, nullable = false)]
    price_tick: Option<PriceTick>,
    /// An event of any type as a JSON object, checked against its registered
    /// Avro schema versions (for `ad_click` and `price_tick`: the typed
    /// payload's fields plus fields of newer versions).
    #[schema(required = false, nullable = false)]
    generic: Option<HashMap<String, Value>>,
    /// With `ad_click` or `price_tick`: fields of a newer registered version
    /// that the payload lacks.
    #[schema(required = false, nullable = false)]
    extra_fields: Option<HashMap<String, Value>>,
}

fn ip_address() -> RefOr<Schema> {
    let string = |format: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom(format.into())))
    };
    OneOfBuilder::new()
        .item(string("ipv4"))
        .item(string("ipv6"))
        .description(Some("IPv4 or IPv6 address."))
        .into()
}

fn event_time() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).format(Some(
            utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime),
        )))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .description(Some("Milliseconds since the Unix epoch.")),
        )
        .into()
}

/// The event routes' document.
#[derive(OpenApi)]
#[openapi(
    paths(submit::submit, events::submit_events),
    components(schemas(
        SubmitRequest,
        Envelope,
        AdClick,
        PriceTick,
        EventResults,
        EventResult,
        Outcome,
        Ack,
        EventError
    ))
)]
pub struct EventRoutes;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MAX_ID_LEN, MAX_URL_LEN, MAX_USER_AGENT_LEN};

    fn document() -> Value {
        serde_json::to_value(EventRoutes::openapi()).unwrap()
    }

    #[test]
    fn the_documented_limits_are_the_validators() {
        let document = document();
        let submit = &document["components"]["schemas"]["SubmitRequest"]["properties"];
        assert_eq!(submit["user_agent"]["maxLength"], MAX_USER_AGENT_LEN);
        assert_eq!(submit["referring_url"]["maxLength"], MAX_URL_LEN);
        assert_eq!(submit["advertiser_id"]["maxLength"], MAX_ID_LEN);
        assert_eq!(submit["campaign_id"]["maxLength"], MAX_ID_LEN);
        let description = document["paths"]["/v1/events"]["post"]["description"]
            .as_str()
            .unwrap();
        assert!(
            description.contains(&format!(
                "at most {} events",
                events::MAX_EVENTS_PER_REQUEST
            )),
            "{description}"
        );
    }

    #[test]
    fn every_event_error_code_is_documented() {
        let document = document();
        let codes = &document["components"]["schemas"]["EventError"]["properties"]["code"]["enum"];
        for code in [
            "INVALID_ARGUMENT",
            "UNKNOWN_EVENT_TYPE",
            "SCHEMA_MISMATCH",
            "TOO_LARGE",
            "UNAVAILABLE",
            "INTERNAL",
        ] {
            assert!(
                codes.as_array().unwrap().iter().any(|c| c == code),
                "{code} in {codes}"
            );
        }
    }
}
