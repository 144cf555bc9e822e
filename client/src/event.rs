//! Building events: typed builders for the built-in types
//! ([`ad_click`], [`price_tick`]), [`generic`] JSON events for schema-driven
//! types, and [`from_json`] for the JSON envelope of `POST /v1/events` (the
//! format of `trib send`). Every builder stamps an idempotency key (a random
//! UUID unless one is given) so the sender's resends are counted once.
use chrono::{DateTime, Utc};
use prost_types::{Struct, Timestamp};
use serde_json::{Map, Value};
pub(crate) use tributary_proto::envelope::millis;
use tributary_proto::envelope::{self, object_to_struct};

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
    extra_fields: Map<String, Value>,
}

impl Envelope {
    fn new(event_type: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            key: String::new(),
            event_time: None,
            idempotency_key: None,
            extra_fields: Map::new(),
        }
    }

    fn build(self, payload: Payload) -> proto::Event {
        proto::Event {
            event_type: self.event_type,
            key: self.key,
            event_time: Some(self.event_time.unwrap_or_else(|| timestamp(Utc::now()))),
            idempotency_key: self.idempotency_key.unwrap_or_else(idempotency_key),
            payload: Some(payload),
            extra_fields: (!self.extra_fields.is_empty())
                .then(|| object_to_struct(self.extra_fields)),
        }
    }
}

macro_rules! extra_field_setter {
    ($example:literal) => {
        /// Sets a field the message does not have: one that a newer version
        /// of the event type's registered schema added (e.g. `country` of a
        /// registered ad_click v3). Ingest writes the event with the newest
        /// registered version that has every field set, and refuses a field
        /// no registered version has.
        ///
        /// ```
        #[doc = $example]
        /// assert_eq!(event.extra_fields.unwrap().fields.len(), 1);
        /// ```
        pub fn field(mut self, name: impl Into<String>, value: Value) -> Self {
            self.envelope.extra_fields.insert(name.into(), value);
            self
        }
    };
}

macro_rules! envelope_setters {
    () => {
        /// Sets the partitioning and aggregation key (default: the type's natural
        /// key, `advertiser_id` or `pair`, the only key ingest accepts for a
        /// typed event).
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
    extra_field_setter!(
        r#"let event = tributary_client::event::ad_click("adv-1", "203.0.113.7", "curl/8", "https://example.com/").field("country", serde_json::json!("DE")).build();"#
    );

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
    extra_field_setter!(
        r#"let event = tributary_client::event::price_tick("ETH-USD", "coinbase", 3012.5).field("venue", serde_json::json!("spot")).build();"#
    );

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

/// Reads the JSON envelope of `POST /v1/events` —
/// `{event_type, key, event_time (RFC 3339 or epoch ms), idempotency_key,
/// ad_click | price_tick | generic, extra_fields}` — into an event; see
/// [`tributary_proto::envelope`]. The idempotency key is left as given.
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
    envelope::parse(value).map_err(|e| Error::invalid(e.field, e.message))
}

/// A random idempotency key: a version 4 UUID, hyphenated, in lower case.
/// Its bits come from the thread's cryptographically secure generator
/// (`rand`'s, seeded from the operating system) rather than from a
/// `getrandom` system call per key, which cost about as much as encoding the
/// event.
pub(crate) fn idempotency_key() -> String {
    let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    uuid.hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned()
}

/// A protobuf timestamp of `at`.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn idempotency_keys_are_distinct_random_version_4_uuids() {
        let keys: HashSet<String> = (0..1000).map(|_| super::idempotency_key()).collect();
        assert_eq!(keys.len(), 1000);
        for key in &keys {
            let uuid = uuid::Uuid::parse_str(key).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 4, "{key}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{key}");
            assert_eq!(*key, uuid.to_string(), "hyphenated, lower case");
        }
    }
}
