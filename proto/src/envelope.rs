//! The JSON event envelope — the proto `Event` in JSON, as `POST
//! /v1/events`, `trib send` and the SDK read it: `event_time` as an RFC 3339
//! string or integer epoch milliseconds, exactly one of `ad_click`,
//! `price_tick` or `generic`. Unknown fields are refused so a misspelt
//! optional field is not silently dropped. Values (an IP address, a URL) are
//! checked by ingest, not here.
use chrono::DateTime;
use prost_types::{ListValue, Struct, Timestamp, Value as ProtoValue, value::Kind};
use serde_json::{Map, Value};

use crate::v1::{self as proto, event::Payload};

/// What is wrong with an envelope, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EnvelopeError {
    /// The path of the offending field, e.g. `price_tick.source`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl EnvelopeError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

const ENVELOPE_FIELDS: &[&str] = &[
    "event_type",
    "key",
    "event_time",
    "idempotency_key",
    "ad_click",
    "price_tick",
    "generic",
];
const PAYLOADS: &[&str] = &["ad_click", "price_tick", "generic"];
const AD_CLICK_FIELDS: &[&str] = &[
    "ip_address",
    "user_agent",
    "referring_url",
    "advertiser_id",
    "metadata",
    "campaign_id",
];
const PRICE_TICK_FIELDS: &[&str] = &["pair", "source", "price", "volume"];

/// Reads the JSON envelope of `POST /v1/events` —
/// `{event_type, key, event_time (RFC 3339 or epoch ms), idempotency_key,
/// ad_click | price_tick | generic}` — into an event. Unknown fields are
/// refused so a misspelt optional field is not silently dropped; an absent
/// `event_type` is inferred from the payload; values (an IP address, a URL)
/// are checked by ingest, not here. The idempotency key is left as given.
///
/// ```
/// let event = tributary_proto::envelope::parse(&serde_json::json!({
///     "event_time": "2026-01-01T00:00:00Z",
///     "price_tick": {"pair": "ETH-USD", "source": "coinbase", "price": 3012.5}
/// }))?;
/// assert_eq!(event.event_type, "price_tick");
///
/// let error = tributary_proto::envelope::parse(&serde_json::json!({"price_tick": {"pair": "ETH-USD"}}))
///     .unwrap_err();
/// assert_eq!(error.to_string(), "price_tick.source: is required");
/// # Ok::<(), tributary_proto::envelope::EnvelopeError>(())
/// ```
pub fn parse(value: &Value) -> Result<proto::Event, EnvelopeError> {
    let envelope = object(value, "event")?;
    only(envelope, ENVELOPE_FIELDS, "")?;
    let present: Vec<&str> = PAYLOADS
        .iter()
        .copied()
        .filter(|p| envelope.contains_key(*p))
        .collect();
    let payload = match present.as_slice() {
        [] => {
            return Err(EnvelopeError::new(
                "payload",
                "is required: set one of ad_click, price_tick or generic",
            ));
        }
        ["ad_click"] => Payload::AdClick(ad_click_json(&envelope["ad_click"])?),
        ["price_tick"] => Payload::PriceTick(price_tick_json(&envelope["price_tick"])?),
        ["generic"] => Payload::Generic(object_to_struct(
            object(&envelope["generic"], "generic")?.clone(),
        )),
        several => {
            return Err(EnvelopeError::new(
                "payload",
                format!("has {}; set exactly one", several.join(" and ")),
            ));
        }
    };
    let inferred = match &payload {
        Payload::AdClick(_) => "ad_click",
        Payload::PriceTick(_) => "price_tick",
        Payload::Generic(_) => "",
    };
    Ok(proto::Event {
        event_type: string(envelope, "event_type", "")?.unwrap_or_else(|| inferred.into()),
        key: string(envelope, "key", "")?.unwrap_or_default(),
        event_time: envelope.get("event_time").map(event_time).transpose()?,
        idempotency_key: string(envelope, "idempotency_key", "")?.unwrap_or_default(),
        payload: Some(payload),
    })
}

fn ad_click_json(value: &Value) -> Result<proto::AdClick, EnvelopeError> {
    let fields = object(value, "ad_click")?;
    only(fields, AD_CLICK_FIELDS, "ad_click.")?;
    let required = |name: &str| {
        string(fields, name, "ad_click.")?
            .ok_or_else(|| EnvelopeError::new(format!("ad_click.{name}"), "is required"))
    };
    let metadata = match fields.get("metadata") {
        None | Some(Value::Null) => None,
        Some(value) => Some(object_to_struct(
            object(value, "ad_click.metadata")?.clone(),
        )),
    };
    Ok(proto::AdClick {
        ip_address: required("ip_address")?,
        user_agent: required("user_agent")?,
        referring_url: required("referring_url")?,
        advertiser_id: required("advertiser_id")?,
        metadata,
        campaign_id: string(fields, "campaign_id", "ad_click.")?,
    })
}

fn price_tick_json(value: &Value) -> Result<proto::PriceTick, EnvelopeError> {
    let fields = object(value, "price_tick")?;
    only(fields, PRICE_TICK_FIELDS, "price_tick.")?;
    let required = |name: &str| {
        string(fields, name, "price_tick.")?
            .ok_or_else(|| EnvelopeError::new(format!("price_tick.{name}"), "is required"))
    };
    Ok(proto::PriceTick {
        pair: required("pair")?,
        source: required("source")?,
        price: number(fields, "price", "price_tick.")?
            .ok_or_else(|| EnvelopeError::new("price_tick.price", "is required"))?,
        volume: number(fields, "volume", "price_tick.")?,
    })
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, EnvelopeError> {
    value.as_object().ok_or_else(|| {
        EnvelopeError::new(path, format!("must be a JSON object, got {}", kind(value)))
    })
}

fn only(fields: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), EnvelopeError> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(EnvelopeError::new(
            format!("{prefix}{unknown}"),
            "is not a known field",
        )),
        None => Ok(()),
    }
}

fn string(
    fields: &Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<String>, EnvelopeError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(EnvelopeError::new(
            format!("{prefix}{name}"),
            format!("must be a string, got {}", kind(other)),
        )),
    }
}

fn number(
    fields: &Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<f64>, EnvelopeError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(EnvelopeError::new(
            format!("{prefix}{name}"),
            format!("must be a number, got {}", kind(other)),
        )),
    }
}

/// An RFC 3339 string or integer milliseconds since the Unix epoch.
fn event_time(value: &Value) -> Result<Timestamp, EnvelopeError> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| millis(t.timestamp_millis()))
            .map_err(|e| {
                EnvelopeError::new(
                    "event_time",
                    format!("`{text}` is not an RFC 3339 timestamp: {e}"),
                )
            }),
        Value::Number(n) => n.as_i64().map(millis).ok_or_else(|| {
            EnvelopeError::new(
                "event_time",
                format!("{n} is not an integer number of milliseconds since the Unix epoch"),
            )
        }),
        other => Err(EnvelopeError::new(
            "event_time",
            format!(
                "must be an RFC 3339 string or integer epoch milliseconds, got {}",
                kind(other)
            ),
        )),
    }
}

/// What a JSON value is, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object as a protobuf `Struct` (numbers become doubles).
pub fn object_to_struct(map: Map<String, Value>) -> Struct {
    Struct {
        fields: map.into_iter().map(|(k, v)| (k, to_proto(v))).collect(),
    }
}

fn to_proto(value: Value) -> ProtoValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(to_proto).collect(),
        }),
        Value::Object(map) => Kind::StructValue(object_to_struct(map)),
    };
    ProtoValue { kind: Some(kind) }
}

/// A protobuf timestamp of `ms` milliseconds since the Unix epoch.
pub fn millis(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_envelope_with_epoch_millis_becomes_an_event() {
        let event = parse(&json!({
            "event_type": "ad_click", "key": "k", "event_time": 1_700_000_000_123_i64, "idempotency_key": "i",
            "ad_click": {"ip_address": "10.0.0.1", "user_agent": "u", "referring_url": "https://x/", "advertiser_id": "a", "metadata": {"n": [1, null]}}
        }))
        .unwrap();
        assert_eq!(
            event.event_time,
            Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_000_000
            })
        );
        assert_eq!(
            (event.key.as_str(), event.idempotency_key.as_str()),
            ("k", "i")
        );
        let Some(Payload::AdClick(click)) = event.payload else {
            panic!("not a click")
        };
        assert_eq!(click.advertiser_id, "a");
        assert_eq!(click.metadata.unwrap().fields.len(), 1);
    }

    #[test]
    fn two_payloads_unknown_fields_and_bad_times_are_refused_with_their_path() {
        let describe = |v: Value| parse(&v).unwrap_err().to_string();
        assert_eq!(
            describe(json!({"ad_click": {}, "generic": {}})),
            "payload: has ad_click and generic; set exactly one"
        );
        assert_eq!(
            describe(json!({"price_tick": {"pair": "p", "source": "s", "price": 1, "volme": 2}})),
            "price_tick.volme: is not a known field"
        );
        assert_eq!(
            describe(json!({"event_time": true, "generic": {}})),
            "event_time: must be an RFC 3339 string or integer epoch milliseconds, got a boolean"
        );
        assert_eq!(
            describe(json!([1])),
            "event: must be a JSON object, got an array"
        );
    }

    #[test]
    fn event_time_takes_rfc3339_or_epoch_millis() {
        let expected = Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_000_000,
        };
        assert_eq!(
            event_time(&json!("2023-11-14T22:13:20.123Z")).unwrap(),
            expected
        );
        assert_eq!(event_time(&json!(1_700_000_000_123_i64)).unwrap(), expected);
        assert_eq!(event_time(&json!(1.5)).unwrap_err().field, "event_time");
        assert_eq!(event_time(&json!(true)).unwrap_err().field, "event_time");
    }

    #[test]
    fn a_price_tick_envelope_becomes_an_event() {
        let event = parse(&json!({
            "event_type": "price_tick", "key": "k", "event_time": 5, "idempotency_key": "i",
            "price_tick": {"pair": "ETH-USD", "source": "a", "price": 2.5}
        }))
        .unwrap();
        assert_eq!(
            event.event_time,
            Some(Timestamp {
                seconds: 0,
                nanos: 5_000_000
            })
        );
        let Some(Payload::PriceTick(tick)) = event.payload else {
            panic!("not a price tick")
        };
        assert_eq!(
            (tick.pair.as_str(), tick.price, tick.volume),
            ("ETH-USD", 2.5, None)
        );
    }

    #[test]
    fn a_missing_payload_and_a_missing_required_field_are_named() {
        assert_eq!(
            parse(&json!({"event_type": "x"})).unwrap_err().field,
            "payload"
        );
        assert_eq!(
            parse(&json!({"price_tick": {"pair": "p", "price": 1}}))
                .unwrap_err()
                .to_string(),
            "price_tick.source: is required"
        );
    }
}
