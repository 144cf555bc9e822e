//! Building events: typed builders for the built-in types
//! ([`ad_click`], [`price_tick`]), [`generic`] JSON events for schema-driven
//! types, and [`from_json`] for the JSON envelope of `POST /v1/events` (the
//! format of `trib send`). Every builder stamps an idempotency key (a random
//! UUID unless one is given) so the sender's resends are counted once.
use chrono::{DateTime, Utc};
use prost_types::{ListValue, Struct, Timestamp, Value as ProtoValue, value::Kind};
use serde_json::{Map, Value};

use crate::{
    error::{Error, Result},
    proto::{self, event::Payload},
};

/// Starts an `ad_click` event.
///
/// ```
/// let event = tributary_client::event::ad_click("adv-1", "203.0.113.7", "curl/8", "https://example.com/")
///     .campaign_id("spring")
///     .metadata(serde_json::json!({"slot": "top"}))
///     .build();
/// assert_eq!(event.event_type, "ad_click");
/// assert!(!event.idempotency_key.is_empty());
/// ```
pub fn ad_click(
    advertiser_id: impl Into<String>,
    ip_address: impl Into<String>,
    user_agent: impl Into<String>,
    referring_url: impl Into<String>,
) -> AdClickBuilder {
    AdClickBuilder {
        envelope: Envelope::new("ad_click"),
        click: proto::AdClick {
            ip_address: ip_address.into(),
            user_agent: user_agent.into(),
            referring_url: referring_url.into(),
            advertiser_id: advertiser_id.into(),
            metadata: None,
            campaign_id: None,
        },
    }
}

/// Starts a `price_tick` event.
///
/// ```
/// let event = tributary_client::event::price_tick("ETH-USD", "coinbase", 3012.5)
///     .volume(1.25)
///     .idempotency_key("coinbase-ETH-USD-1700000000")
///     .build();
/// assert_eq!(event.idempotency_key, "coinbase-ETH-USD-1700000000");
/// ```
pub fn price_tick(
    pair: impl Into<String>,
    source: impl Into<String>,
    price: f64,
) -> PriceTickBuilder {
    PriceTickBuilder {
        envelope: Envelope::new("price_tick"),
        tick: proto::PriceTick {
            pair: pair.into(),
            source: source.into(),
            price,
            volume: None,
        },
    }
}

/// Starts an event of a schema-driven type from a JSON object, which ingest
/// checks against the Avro schema registered for `event_type`.
///
/// ```
/// let event = tributary_client::event::generic("signup", serde_json::json!({"plan": "pro"}))?
///     .key("user-7")
///     .build();
/// assert_eq!(event.key, "user-7");
/// # Ok::<(), tributary_client::Error>(())
/// ```
pub fn generic(event_type: impl Into<String>, fields: Value) -> Result<GenericBuilder> {
    let Value::Object(fields) = fields else {
        return Err(Error::invalid("generic", "must be a JSON object"));
    };
    Ok(GenericBuilder {
        envelope: Envelope::new(event_type),
        fields: object_to_struct(fields),
    })
}

/// The envelope fields every builder shares.
#[derive(Clone, Debug)]
struct Envelope {
    event_type: String,
    key: String,
    event_time: Option<Timestamp>,
    idempotency_key: Option<String>,
}

impl Envelope {
    fn new(event_type: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            key: String::new(),
            event_time: None,
            idempotency_key: None,
        }
    }

    fn build(self, payload: Payload) -> proto::Event {
        proto::Event {
            event_type: self.event_type,
            key: self.key,
            event_time: Some(self.event_time.unwrap_or_else(|| timestamp(Utc::now()))),
            idempotency_key: self
                .idempotency_key
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            payload: Some(payload),
        }
    }
}

macro_rules! envelope_setters {
    () => {
        /// Sets the partitioning and aggregation key (default: the type's natural key).
        pub fn key(mut self, key: impl Into<String>) -> Self {
            self.envelope.key = key.into();
            self
        }

        /// Sets when the event happened (default: now).
        pub fn event_time(mut self, at: DateTime<Utc>) -> Self {
            self.envelope.event_time = Some(timestamp(at));
            self
        }

        /// Sets when the event happened, in milliseconds since the Unix epoch.
        pub fn event_time_millis(mut self, ms: i64) -> Self {
            self.envelope.event_time = Some(millis(ms));
            self
        }

        /// Sets the idempotency key (default: a random UUID).
        pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
            self.envelope.idempotency_key = Some(key.into());
            self
        }
    };
}

/// Builds an `ad_click` event; see [`ad_click`].
#[derive(Clone, Debug)]
pub struct AdClickBuilder {
    envelope: Envelope,
    click: proto::AdClick,
}

impl AdClickBuilder {
    envelope_setters!();

    /// Sets the free-form metadata (a JSON object; other values are ignored).
    pub fn metadata(mut self, metadata: Value) -> Self {
        if let Value::Object(map) = metadata {
            self.click.metadata = Some(object_to_struct(map));
        }
        self
    }

    /// Sets the campaign (schema v2).
    pub fn campaign_id(mut self, campaign: impl Into<String>) -> Self {
        self.click.campaign_id = Some(campaign.into());
        self
    }

    /// The event.
    pub fn build(self) -> proto::Event {
        self.envelope.build(Payload::AdClick(self.click))
    }
}

/// Builds a `price_tick` event; see [`price_tick`].
#[derive(Clone, Debug)]
pub struct PriceTickBuilder {
    envelope: Envelope,
    tick: proto::PriceTick,
}

impl PriceTickBuilder {
    envelope_setters!();

    /// Sets the traded volume (schema v2).
    pub fn volume(mut self, volume: f64) -> Self {
        self.tick.volume = Some(volume);
        self
    }

    /// The event.
    pub fn build(self) -> proto::Event {
        self.envelope.build(Payload::PriceTick(self.tick))
    }
}

/// Builds an event of a schema-driven type; see [`generic`].
#[derive(Clone, Debug)]
pub struct GenericBuilder {
    envelope: Envelope,
    fields: Struct,
}

impl GenericBuilder {
    envelope_setters!();

    /// The event.
    pub fn build(self) -> proto::Event {
        self.envelope.build(Payload::Generic(self.fields))
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
/// let event = tributary_client::event::from_json(&serde_json::json!({
///     "event_time": "2026-01-01T00:00:00Z",
///     "price_tick": {"pair": "ETH-USD", "source": "coinbase", "price": 3012.5}
/// }))?;
/// assert_eq!(event.event_type, "price_tick");
///
/// let error = tributary_client::event::from_json(&serde_json::json!({"price_tick": {"pair": "ETH-USD"}}))
///     .unwrap_err();
/// assert_eq!(error.to_string(), "price_tick.source: is required");
/// # Ok::<(), tributary_client::Error>(())
/// ```
pub fn from_json(value: &Value) -> Result<proto::Event> {
    let envelope = object(value, "event")?;
    only(envelope, ENVELOPE_FIELDS, "")?;
    let present: Vec<&str> = PAYLOADS
        .iter()
        .copied()
        .filter(|p| envelope.contains_key(*p))
        .collect();
    let payload = match present.as_slice() {
        [] => {
            return Err(Error::invalid(
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
            return Err(Error::invalid(
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

fn ad_click_json(value: &Value) -> Result<proto::AdClick> {
    let fields = object(value, "ad_click")?;
    only(fields, AD_CLICK_FIELDS, "ad_click.")?;
    let required = |name: &str| {
        string(fields, name, "ad_click.")?
            .ok_or_else(|| Error::invalid(format!("ad_click.{name}"), "is required"))
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

fn price_tick_json(value: &Value) -> Result<proto::PriceTick> {
    let fields = object(value, "price_tick")?;
    only(fields, PRICE_TICK_FIELDS, "price_tick.")?;
    let required = |name: &str| {
        string(fields, name, "price_tick.")?
            .ok_or_else(|| Error::invalid(format!("price_tick.{name}"), "is required"))
    };
    Ok(proto::PriceTick {
        pair: required("pair")?,
        source: required("source")?,
        price: number(fields, "price", "price_tick.")?
            .ok_or_else(|| Error::invalid("price_tick.price", "is required"))?,
        volume: number(fields, "volume", "price_tick.")?,
    })
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    value
        .as_object()
        .ok_or_else(|| Error::invalid(path, format!("must be a JSON object, got {}", kind(value))))
}

fn only(fields: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<()> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Error::invalid(
            format!("{prefix}{unknown}"),
            "is not a known field",
        )),
        None => Ok(()),
    }
}

fn string(fields: &Map<String, Value>, name: &str, prefix: &str) -> Result<Option<String>> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::invalid(
            format!("{prefix}{name}"),
            format!("must be a string, got {}", kind(other)),
        )),
    }
}

fn number(fields: &Map<String, Value>, name: &str, prefix: &str) -> Result<Option<f64>> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(Error::invalid(
            format!("{prefix}{name}"),
            format!("must be a number, got {}", kind(other)),
        )),
    }
}

/// An RFC 3339 string or integer milliseconds since the Unix epoch.
fn event_time(value: &Value) -> Result<Timestamp> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| millis(t.timestamp_millis()))
            .map_err(|e| {
                Error::invalid(
                    "event_time",
                    format!("`{text}` is not an RFC 3339 timestamp: {e}"),
                )
            }),
        Value::Number(n) => n.as_i64().map(millis).ok_or_else(|| {
            Error::invalid(
                "event_time",
                format!("{n} is not an integer number of milliseconds since the Unix epoch"),
            )
        }),
        other => Err(Error::invalid(
            "event_time",
            format!(
                "must be an RFC 3339 string or integer epoch milliseconds, got {}",
                kind(other)
            ),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A protobuf timestamp of `ms` milliseconds since the Unix epoch.
pub(crate) fn millis(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A protobuf timestamp of `at`.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn object_to_struct(map: Map<String, Value>) -> Struct {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_envelope_with_epoch_millis_becomes_an_event() {
        let event = from_json(&json!({
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
        let describe = |v: Value| from_json(&v).unwrap_err().to_string();
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
}
