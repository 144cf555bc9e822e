//! The JSON event envelope — the proto `Event` in JSON, as `POST
//! /v1/events`, `trib send` and the SDK read it: `event_time` as an RFC 3339
//! string or integer epoch milliseconds, exactly one of `ad_click`,
//! `price_tick` or `generic`, and `extra_fields`. A key of a typed payload
//! that its message does not have (a field a newer registered version of the
//! schema added, e.g. `ad_click.country`) is carried as an extra field, so
//! ingest checks it against the registered versions and refuses it when no
//! version has it: nothing is silently dropped. Unknown envelope fields are
//! refused here. Values (an IP address, a URL) are checked by ingest.
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
    "extra_fields",
];
const PAYLOADS: &[&str] = &["ad_click", "price_tick", "generic"];
/// The names of the `AdClick` message's fields.
pub const AD_CLICK_FIELDS: &[&str] = &[
    "ip_address",
    "user_agent",
    "referring_url",
    "advertiser_id",
    "metadata",
    "campaign_id",
];
/// The names of the `PriceTick` message's fields.
pub const PRICE_TICK_FIELDS: &[&str] = &["pair", "source", "price", "volume"];

/// Reads the JSON envelope of `POST /v1/events` —
/// `{event_type, key, event_time (RFC 3339 or epoch ms), idempotency_key,
/// ad_click | price_tick | generic, extra_fields}` — into an event. Unknown
/// envelope fields are refused so a misspelt field is not silently dropped;
/// keys of a typed payload its message does not have become extra fields
/// (see [`read`]); an absent `event_type` is inferred from the payload;
/// values (an IP address, a URL) are checked by ingest, not here. The
/// idempotency key is left as given.
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
    read(value.clone()).map(JsonEvent::into_event)
}

/// An envelope read from JSON, with the parts whose numbers a protobuf
/// `Struct` would turn into doubles kept as written instead: a reader that
/// takes them as JSON (ingest's gateway) pays for no `Struct`, and
/// [`JsonEvent::into_event`] makes them `Struct`s for the others.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonEvent {
    /// The event, but for a `generic` payload's fields (an empty `Struct`)
    /// and the extra fields (`None`): they are in `generic` and
    /// `extra_fields`.
    pub event: proto::Event,
    /// The `generic` payload as written, when the payload is `generic`.
    pub generic: Option<Map<String, Value>>,
    /// The extra fields as written: the envelope's `extra_fields` and the
    /// keys of a typed payload its message does not have.
    pub extra_fields: Map<String, Value>,
}

impl JsonEvent {
    /// The whole event, its `generic` payload and extra fields as `Struct`s.
    pub fn into_event(self) -> proto::Event {
        let mut event = self.event;
        if let Some(generic) = self.generic {
            event.payload = Some(Payload::Generic(object_to_struct(generic)));
        }
        if !self.extra_fields.is_empty() {
            event.extra_fields = Some(object_to_struct(self.extra_fields));
        }
        event
    }
}

/// [`parse`], keeping the JSON of `generic` and of the extra fields as
/// written, so an integer of a `long` field beyond 2^53 stays exact.
pub fn read(value: Value) -> Result<JsonEvent, EnvelopeError> {
    let Value::Object(mut envelope) = value else {
        return Err(EnvelopeError::new(
            "event",
            format!("must be a JSON object, got {}", kind(&value)),
        ));
    };
    only(&envelope, ENVELOPE_FIELDS, "")?;
    let mut extra_fields = match envelope.remove("extra_fields") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(extra)) => extra,
        Some(other) => {
            return Err(EnvelopeError::new(
                "extra_fields",
                format!("must be a JSON object, got {}", kind(&other)),
            ));
        }
    };
    let mut generic = None;
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
        ["ad_click"] => {
            let fields = object(&envelope["ad_click"], "ad_click")?;
            let (click, extra) = ad_click(fields, "ad_click.")?;
            merge_extra(&mut extra_fields, extra, "ad_click")?;
            Payload::AdClick(click)
        }
        ["price_tick"] => {
            let fields = object(&envelope["price_tick"], "price_tick")?;
            let (tick, extra) = price_tick(fields, "price_tick.")?;
            merge_extra(&mut extra_fields, extra, "price_tick")?;
            Payload::PriceTick(tick)
        }
        ["generic"] => {
            let fields = match envelope.remove("generic") {
                Some(Value::Object(fields)) => fields,
                other => {
                    return Err(EnvelopeError::new(
                        "generic",
                        format!(
                            "must be a JSON object, got {}",
                            kind(&other.unwrap_or_default())
                        ),
                    ));
                }
            };
            generic = Some(fields);
            Payload::Generic(Struct::default())
        }
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
    let event = proto::Event {
        event_type: string(&envelope, "event_type", "")?.unwrap_or_else(|| inferred.into()),
        key: string(&envelope, "key", "")?.unwrap_or_default(),
        event_time: envelope.get("event_time").map(event_time).transpose()?,
        idempotency_key: string(&envelope, "idempotency_key", "")?.unwrap_or_default(),
        payload: Some(payload),
        extra_fields: None,
    };
    Ok(JsonEvent {
        event,
        generic,
        extra_fields,
    })
}

/// Adds the keys a typed payload's message does not have to the envelope's
/// `extra_fields`; a key in both is ambiguous.
fn merge_extra(
    extra_fields: &mut Map<String, Value>,
    from_payload: Map<String, Value>,
    payload: &str,
) -> Result<(), EnvelopeError> {
    for (name, value) in from_payload {
        if extra_fields.contains_key(&name) {
            return Err(EnvelopeError::new(
                format!("extra_fields.{name}"),
                format!("is also set in {payload}; set it once"),
            ));
        }
        extra_fields.insert(name, value);
    }
    Ok(())
}

/// Reads the fields of an `AdClick` message from a JSON object; the keys the
/// message does not have are returned as they are (extra fields). `prefix`
/// names the object in errors, e.g. `ad_click.`.
pub fn ad_click(
    fields: &Map<String, Value>,
    prefix: &str,
) -> Result<(proto::AdClick, Map<String, Value>), EnvelopeError> {
    let required = |name: &str| {
        string(fields, name, prefix)?
            .ok_or_else(|| EnvelopeError::new(format!("{prefix}{name}"), "is required"))
    };
    let metadata = match fields.get("metadata") {
        None | Some(Value::Null) => None,
        Some(value) => Some(object_to_struct(
            object(value, &format!("{prefix}metadata"))?.clone(),
        )),
    };
    let click = proto::AdClick {
        ip_address: required("ip_address")?,
        user_agent: required("user_agent")?,
        referring_url: required("referring_url")?,
        advertiser_id: required("advertiser_id")?,
        metadata,
        campaign_id: string(fields, "campaign_id", prefix)?,
    };
    Ok((click, others(fields, AD_CLICK_FIELDS)))
}

/// Reads the fields of a `PriceTick` message from a JSON object, as
/// [`ad_click`] does.
pub fn price_tick(
    fields: &Map<String, Value>,
    prefix: &str,
) -> Result<(proto::PriceTick, Map<String, Value>), EnvelopeError> {
    let required = |name: &str| {
        string(fields, name, prefix)?
            .ok_or_else(|| EnvelopeError::new(format!("{prefix}{name}"), "is required"))
    };
    let tick = proto::PriceTick {
        pair: required("pair")?,
        source: required("source")?,
        price: number(fields, "price", prefix)?
            .ok_or_else(|| EnvelopeError::new(format!("{prefix}price"), "is required"))?,
        volume: number(fields, "volume", prefix)?,
    };
    Ok((tick, others(fields, PRICE_TICK_FIELDS)))
}

/// The entries of `fields` whose keys are not in `known`.
fn others(fields: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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
            describe(json!({"price_tick": {"pair": "p", "source": "s", "price": 1}, "extra": 2})),
            "extra: is not a known field"
        );
        assert_eq!(
            describe(
                json!({"price_tick": {"pair": "p", "source": "s", "price": 1, "venue": 2}, "extra_fields": {"venue": 3}})
            ),
            "extra_fields.venue: is also set in price_tick; set it once"
        );
        assert_eq!(
            describe(json!({"event_time": true, "generic": {}})),
            "event_time: must be an RFC 3339 string or integer epoch milliseconds, got a boolean"
        );
        assert_eq!(
            describe(json!({"event_type": "x", "generic": 3})),
            "generic: must be a JSON object, got a number"
        );
        assert_eq!(
            describe(json!([1])),
            "event: must be a JSON object, got an array"
        );
    }

    #[test]
    fn keys_a_typed_message_lacks_become_extra_fields_kept_exact() {
        let read = read(json!({
            "event_time": 5,
            "ad_click": {"ip_address": "10.0.0.1", "user_agent": "u", "referring_url": "https://x/", "advertiser_id": "a", "country": "DE"},
            "extra_fields": {"visits": 9_007_199_254_740_993_u64}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(read.extra_fields.clone()),
            json!({"country": "DE", "visits": 9_007_199_254_740_993_u64})
        );
        assert_eq!(read.event.event_type, "ad_click");
        assert_eq!(read.generic, None);
        assert_eq!(read.event.extra_fields, None, "kept as JSON only");
        let extra = read.into_event().extra_fields.expect("extra fields");
        assert_eq!(extra.fields.len(), 2);
    }

    #[test]
    fn a_generic_payload_is_kept_as_written() {
        let read =
            read(json!({"event_type": "signup", "generic": {"n": 9_007_199_254_740_993_u64}}))
                .unwrap();
        assert_eq!(
            read.generic.clone().map(Value::Object),
            Some(json!({"n": 9_007_199_254_740_993_u64}))
        );
        assert_eq!(
            read.event.payload,
            Some(Payload::Generic(Struct::default()))
        );
        assert_eq!(read.event.extra_fields, None);
        let Some(Payload::Generic(generic)) = read.into_event().payload else {
            panic!("a generic payload");
        };
        assert!(generic.fields.contains_key("n"));
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
