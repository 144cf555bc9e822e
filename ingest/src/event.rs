//! Events parsed at the boundary: a [`ValidEvent`] has passed every check, so
//! nothing downstream validates again. Its fields (and those of its typed
//! payloads) are private to the crate and [`ValidEvent::parse`] is its only
//! constructor, so no unvalidated event can reach the encoder.
use std::{borrow::Cow, net::IpAddr, time::Duration};

use tributary_common::schemas::{AD_CLICK, PRICE_TICK};
use tributary_proto::{
    envelope,
    v1::{self as proto, event::Payload},
};

use crate::rejection::Rejection;

/// Longest event type; it becomes part of a topic name (Kafka allows 249).
pub const MAX_EVENT_TYPE_LEN: usize = 100;
/// Longest key, idempotency key and identifier fields.
pub const MAX_ID_LEN: usize = 256;
/// Longest user agent.
pub const MAX_USER_AGENT_LEN: usize = 2048;
/// Longest referring URL.
pub const MAX_URL_LEN: usize = 4096;

/// An event that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    /// The fields of a typed payload its message does not have (fields of a
    /// newer registered version); empty for a `generic` one, which holds all
    /// its fields. Checked against the registered versions when encoded.
    pub(crate) extra_fields: serde_json::Map<String, serde_json::Value>,
    /// The payload's path in errors: `ad_click`, `price_tick` or `generic`.
    pub(crate) path: &'static str,
    /// The event type, e.g. `ad_click`.
    pub(crate) event_type: Cow<'static, str>,
    /// The partitioning key (defaulted to the payload's natural key).
    pub(crate) key: String,
    /// Event time in milliseconds since the Unix epoch.
    pub(crate) event_time_ms: i64,
    /// The client's idempotency key, or a fresh one when the client sent none.
    pub(crate) idempotency_key: String,
    /// The payload.
    pub(crate) payload: ValidPayload,
}

/// The validated payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ValidPayload {
    /// An ad click.
    AdClick(AdClick),
    /// A price tick.
    PriceTick(PriceTick),
    /// A schema-driven event: a JSON object, checked against the registered
    /// schema when it is encoded.
    Generic(serde_json::Map<String, serde_json::Value>),
}

/// A validated ad click.
#[derive(Debug, Clone, PartialEq)]
pub struct AdClick {
    /// The client's address.
    pub(crate) ip_address: IpAddr,
    /// The client's User-Agent.
    pub(crate) user_agent: String,
    /// An absolute http(s) URL.
    pub(crate) referring_url: String,
    /// The advertiser.
    pub(crate) advertiser_id: String,
    /// Metadata as a JSON object, serialised.
    pub(crate) metadata_json: Cow<'static, str>,
    /// The campaign, when known.
    pub(crate) campaign_id: Option<String>,
}

impl AdClick {
    /// The client's address.
    pub fn ip_address(&self) -> IpAddr {
        self.ip_address
    }

    /// The client's User-Agent.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// An absolute http(s) URL.
    pub fn referring_url(&self) -> &str {
        &self.referring_url
    }

    /// The advertiser.
    pub fn advertiser_id(&self) -> &str {
        &self.advertiser_id
    }

    /// Metadata as a serialised JSON object.
    pub fn metadata_json(&self) -> &str {
        &self.metadata_json
    }
}

/// A validated price tick.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTick {
    /// The pair, e.g. `ETH-USD`.
    pub(crate) pair: String,
    /// The source of the price.
    pub(crate) source: String,
    /// Finite and positive.
    pub(crate) price: f64,
    /// Finite and non-negative, when known.
    pub(crate) volume: Option<f64>,
}

/// The checks that depend on configuration and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Validation {
    /// How far event_time may be from `now_ms`.
    pub max_skew: Duration,
    /// The current time in milliseconds since the Unix epoch.
    pub now_ms: i64,
}

impl ValidEvent {
    /// The event type, e.g. `ad_click`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The partitioning key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Event time in milliseconds since the Unix epoch.
    pub fn event_time_ms(&self) -> i64 {
        self.event_time_ms
    }

    /// The idempotency key.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// The validated payload.
    pub fn payload(&self) -> &ValidPayload {
        &self.payload
    }

    /// Validates a submitted event.
    pub fn parse(event: proto::Event, rules: Validation) -> Result<Self, Rejection> {
        Self::parse_exact(event, ExactJson::default(), rules)
    }

    /// Validates an event read from JSON, taking its `generic` payload and
    /// extra fields as written instead of their `Struct`s (whose numbers are
    /// doubles), so an integer of a `long` field beyond 2^53 arrives exact.
    pub fn parse_exact(
        mut event: proto::Event,
        exact: ExactJson,
        rules: Validation,
    ) -> Result<Self, Rejection> {
        let payload = event.payload.take().ok_or_else(|| {
            Rejection::invalid("payload", "is missing: set ad_click, price_tick or generic")
        })?;
        let mut extra_fields = match (exact.extra_fields, event.extra_fields.take()) {
            (Some(exact), _) => exact,
            (None, Some(object)) => struct_to_json(object, "extra_fields")?,
            (None, None) => serde_json::Map::new(),
        };
        let (path, payload) = match payload {
            Payload::AdClick(click) => ("ad_click", Typed::AdClick(click)),
            Payload::PriceTick(tick) => ("price_tick", Typed::PriceTick(tick)),
            Payload::Generic(object) => {
                if !extra_fields.is_empty() {
                    return Err(Rejection::invalid(
                        "extra_fields",
                        "go with a typed payload (ad_click or price_tick); a `generic` payload holds all its fields itself",
                    ));
                }
                let object = match exact.generic {
                    Some(generic) => generic,
                    None => struct_to_json(object, "generic")?,
                };
                // A built-in type sent as `generic`: its message's fields,
                // checked as they are in the typed payload, plus extra fields.
                let read = match event.event_type.as_str() {
                    AD_CLICK => envelope::ad_click(&object, "generic.")
                        .map(|(click, extra)| (Typed::AdClick(click), extra)),
                    PRICE_TICK => envelope::price_tick(&object, "generic.")
                        .map(|(tick, extra)| (Typed::PriceTick(tick), extra)),
                    _ => Ok((Typed::Generic(object), serde_json::Map::new())),
                };
                let (typed, extra) = read.map_err(|e| Rejection::invalid(e.field, e.message))?;
                extra_fields = extra;
                ("generic", typed)
            }
        };
        let (event_type, natural_key, payload) = match payload {
            Typed::AdClick(click) => {
                let click = parse_ad_click(click, path)?;
                (
                    typed_event_type(&event.event_type, AD_CLICK)?,
                    click.advertiser_id.clone(),
                    ValidPayload::AdClick(click),
                )
            }
            Typed::PriceTick(tick) => {
                let tick = parse_price_tick(tick, path)?;
                (
                    typed_event_type(&event.event_type, PRICE_TICK)?,
                    tick.pair.clone(),
                    ValidPayload::PriceTick(tick),
                )
            }
            Typed::Generic(object) => (
                Cow::Owned(parse_event_type(&event.event_type)?),
                String::new(),
                ValidPayload::Generic(object),
            ),
        };
        check_extra_fields(&extra_fields, &event_type, path)?;
        let key = if event.key.is_empty() {
            natural_key
        } else {
            let key = bounded("key", event.key, MAX_ID_LEN)?;
            // The processor aggregates a typed event by its natural key and
            // each partition on its own: another key would spread one
            // aggregate over partitions, whose partial totals the sink
            // cannot add up.
            if !natural_key.is_empty() && key != natural_key {
                let field = if event_type == AD_CLICK {
                    "advertiser_id"
                } else {
                    "pair"
                };
                return Err(Rejection::invalid(
                    "key",
                    format!(
                        "a `{event_type}` event is keyed by its {field} (`{natural_key}`), so that one aggregate is computed in one partition; leave `key` empty or set it to that"
                    ),
                ));
            }
            key
        };
        if key.is_empty() {
            return Err(Rejection::invalid(
                "key",
                "is required for schema-driven event types",
            ));
        }
        let event_time_ms = parse_event_time(event.event_time, rules)?;
        let idempotency_key = if event.idempotency_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            bounded("idempotency_key", event.idempotency_key, MAX_ID_LEN)?
        };
        Ok(Self {
            extra_fields,
            path,
            event_type,
            key,
            event_time_ms,
            idempotency_key,
            payload,
        })
    }
}

/// The parts of an event read from JSON as the client wrote them.
#[derive(Debug, Default)]
pub struct ExactJson {
    /// The `generic` payload.
    pub generic: Option<serde_json::Map<String, serde_json::Value>>,
    /// The extra fields.
    pub extra_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A payload before its values are checked.
enum Typed {
    AdClick(proto::AdClick),
    PriceTick(proto::PriceTick),
    Generic(serde_json::Map<String, serde_json::Value>),
}

/// Extra fields add to a typed message; they do not replace its fields or
/// the envelope's event time.
fn check_extra_fields(
    extra_fields: &serde_json::Map<String, serde_json::Value>,
    event_type: &str,
    path: &str,
) -> Result<(), Rejection> {
    let prefix = if path == "generic" {
        "generic"
    } else {
        "extra_fields"
    };
    let message_fields = match event_type {
        AD_CLICK => envelope::AD_CLICK_FIELDS,
        PRICE_TICK => envelope::PRICE_TICK_FIELDS,
        _ => &[],
    };
    for name in extra_fields.keys() {
        if message_fields.contains(&name.as_str()) {
            return Err(Rejection::invalid(
                format!("{prefix}.{name}"),
                format!("is a field of the `{event_type}` message; set it there"),
            ));
        }
        if name == "event_time" {
            return Err(Rejection::invalid(
                format!("{prefix}.{name}"),
                "is the envelope's `event_time`; set that instead",
            ));
        }
    }
    Ok(())
}

fn parse_event_type(event_type: &str) -> Result<String, Rejection> {
    if event_type.is_empty() {
        return Err(Rejection::invalid("event_type", "is required"));
    }
    if event_type.len() > MAX_EVENT_TYPE_LEN {
        return Err(Rejection::invalid(
            "event_type",
            format!("is longer than {MAX_EVENT_TYPE_LEN} characters"),
        ));
    }
    let legal = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if !event_type.chars().all(legal) || !event_type.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(Rejection::invalid(
            "event_type",
            format!(
                "`{event_type}` must start with a lowercase letter and contain only a-z, 0-9 and _"
            ),
        ));
    }
    Ok(event_type.to_string())
}

fn typed_event_type(given: &str, expected: &'static str) -> Result<Cow<'static, str>, Rejection> {
    if given.is_empty() || given == expected {
        Ok(Cow::Borrowed(expected))
    } else {
        Err(Rejection::invalid(
            "event_type",
            format!("is `{given}` but the payload is `{expected}`"),
        ))
    }
}

/// A field path in errors, e.g. `ad_click.user_agent`, formatted only when
/// a rejection names it.
struct Field<'a>(&'a str, &'a str);

impl std::fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn bounded(field: impl std::fmt::Display, value: String, max: usize) -> Result<String, Rejection> {
    if value.len() > max {
        return Err(Rejection::invalid(
            field.to_string(),
            format!("is longer than {max} bytes"),
        ));
    }
    // Keys and ids become Postgres text, which cannot hold U+0000: one such
    // value would stop the sink for good.
    if let Some(at) = value.find('\0') {
        return Err(Rejection::invalid(
            field.to_string(),
            format!("contains a NUL character (at byte {at}), which is not allowed in text"),
        ));
    }
    Ok(value)
}

fn required(field: impl std::fmt::Display, value: String, max: usize) -> Result<String, Rejection> {
    if value.trim().is_empty() {
        return Err(Rejection::invalid(field.to_string(), "is required"));
    }
    bounded(field, value, max)
}

fn parse_ad_click(click: proto::AdClick, path: &str) -> Result<AdClick, Rejection> {
    let field = |name: &str| format!("{path}.{name}");
    let ip_address = click.ip_address.trim().parse::<IpAddr>().map_err(|_| {
        Rejection::invalid(
            field("ip_address"),
            format!("`{}` is not an IPv4 or IPv6 address", click.ip_address),
        )
    })?;
    let user_agent = required(
        Field(path, "user_agent"),
        click.user_agent,
        MAX_USER_AGENT_LEN,
    )?;
    let referring_url = required(
        Field(path, "referring_url"),
        click.referring_url,
        MAX_URL_LEN,
    )?;
    match url::Url::parse(&referring_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
        Ok(url) => {
            return Err(Rejection::invalid(
                field("referring_url"),
                format!(
                    "`{referring_url}` is not an http(s) URL with a host (scheme `{}`)",
                    url.scheme()
                ),
            ));
        }
        Err(e) => {
            return Err(Rejection::invalid(
                field("referring_url"),
                format!("`{referring_url}` is not an absolute URL: {e}"),
            ));
        }
    }
    let advertiser_id = required(
        Field(path, "advertiser_id"),
        click.advertiser_id,
        MAX_ID_LEN,
    )?;
    let metadata_json = match &click.metadata {
        Some(metadata) => Cow::Owned(struct_json_text(metadata, &|| field("metadata"))?),
        None => Cow::Borrowed("{}"),
    };
    let campaign_id = click
        .campaign_id
        .map(|c| bounded(Field(path, "campaign_id"), c, MAX_ID_LEN))
        .transpose()?;
    Ok(AdClick {
        ip_address,
        user_agent,
        referring_url,
        advertiser_id,
        metadata_json,
        campaign_id,
    })
}

fn parse_price_tick(tick: proto::PriceTick, path: &str) -> Result<PriceTick, Rejection> {
    let field = |name: &str| format!("{path}.{name}");
    let pair = required(Field(path, "pair"), tick.pair, MAX_ID_LEN)?;
    let source = required(Field(path, "source"), tick.source, MAX_ID_LEN)?;
    if !tick.price.is_finite() || tick.price <= 0.0 {
        return Err(Rejection::invalid(
            field("price"),
            format!("must be finite and positive, got {}", tick.price),
        ));
    }
    if let Some(volume) = tick.volume
        && (!volume.is_finite() || volume < 0.0)
    {
        return Err(Rejection::invalid(
            field("volume"),
            format!("must be finite and not negative, got {volume}"),
        ));
    }
    Ok(PriceTick {
        pair,
        source,
        price: tick.price,
        volume: tick.volume,
    })
}

fn parse_event_time(
    time: Option<prost_types::Timestamp>,
    rules: Validation,
) -> Result<i64, Rejection> {
    let time = time.ok_or_else(|| Rejection::invalid("event_time", "is required"))?;
    if !(0..1_000_000_000).contains(&time.nanos) {
        return Err(Rejection::invalid(
            "event_time",
            format!("has invalid nanos {}", time.nanos),
        ));
    }
    let ms = time
        .seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(time.nanos / 1_000_000)))
        .ok_or_else(|| Rejection::invalid("event_time", "is out of range"))?;
    let skew = i64::try_from(rules.max_skew.as_millis()).unwrap_or(i64::MAX);
    if (ms - rules.now_ms).abs() > skew {
        return Err(Rejection::invalid(
            "event_time",
            format!(
                "{} is outside the accepted range {} to {} (now ± {}, --max-event-time-skew)",
                format_ms(ms),
                format_ms(rules.now_ms.saturating_sub(skew)),
                format_ms(rules.now_ms.saturating_add(skew)),
                humantime::format_duration(rules.max_skew),
            ),
        ));
    }
    Ok(ms)
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// A protobuf `Struct` as a JSON object; `path` names it in errors. A
/// number JSON cannot hold (NaN, ±infinity) is refused rather than turned
/// into null, which would drop it.
pub fn struct_to_json(
    object: prost_types::Struct,
    path: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, Rejection> {
    struct_at(object, &|| path.to_string())
}

/// [`struct_to_json`] with the path formatted only when a rejection names it.
fn struct_at(
    object: prost_types::Struct,
    path: &dyn Fn() -> String,
) -> Result<serde_json::Map<String, serde_json::Value>, Rejection> {
    object
        .fields
        .into_iter()
        .map(|(k, v)| {
            let value = value_to_json(v, &|| format!("{}.{k}", path()))?;
            Ok((k, value))
        })
        .collect()
}

/// A protobuf `Struct` as the JSON text its [`struct_to_json`] object
/// displays as (keys in order, integral numbers as integers, the same
/// refusals), written straight from the `Struct` without building the object.
fn struct_json_text(
    object: &prost_types::Struct,
    path: &dyn Fn() -> String,
) -> Result<String, Rejection> {
    let mut text = Vec::with_capacity(64);
    write_struct(&mut text, object, path)?;
    Ok(String::from_utf8(text).expect("JSON text is UTF-8"))
}

fn write_struct(
    out: &mut Vec<u8>,
    object: &prost_types::Struct,
    path: &dyn Fn() -> String,
) -> Result<(), Rejection> {
    out.push(b'{');
    for (i, (k, v)) in object.fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(out, k.as_str());
        out.push(b':');
        write_value(out, v, &|| format!("{}.{k}", path()))?;
    }
    out.push(b'}');
    Ok(())
}

fn write_value(
    out: &mut Vec<u8>,
    value: &prost_types::Value,
    path: &dyn Fn() -> String,
) -> Result<(), Rejection> {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => out.extend_from_slice(b"null"),
        Some(Kind::BoolValue(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(Kind::NumberValue(n)) => {
            // As in `value_to_json`.
            let n = *n;
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                write_json(out, &(n as i64));
            } else {
                let number = serde_json::Number::from_f64(n).ok_or_else(|| {
                    Rejection::invalid(path(), format!("{n} is not a finite number"))
                })?;
                write_json(out, &number);
            }
        }
        Some(Kind::StringValue(s)) => write_json(out, s.as_str()),
        Some(Kind::ListValue(list)) => {
            out.push(b'[');
            for (i, v) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, v, &|| format!("{}[{i}]", path()))?;
            }
            out.push(b']');
        }
        Some(Kind::StructValue(object)) => write_struct(out, object, path)?,
    }
    Ok(())
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(out, value).expect("a string or number writes to a Vec");
}

fn value_to_json(
    value: prost_types::Value,
    path: &dyn Fn() -> String,
) -> Result<serde_json::Value, Rejection> {
    use prost_types::value::Kind;
    Ok(match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::NumberValue(n)) => {
            // Struct numbers are doubles; integral ones stay integers in JSON so
            // they convert to Avro int/long.
            if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                serde_json::Value::from(n as i64)
            } else {
                serde_json::Number::from_f64(n)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| {
                        Rejection::invalid(path(), format!("{n} is not a finite number"))
                    })?
            }
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(
            list.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| value_to_json(v, &|| format!("{}[{i}]", path())))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::StructValue(object)) => serde_json::Value::Object(struct_at(object, path)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn rules() -> Validation {
        Validation {
            max_skew: Duration::from_secs(3600),
            now_ms: NOW,
        }
    }

    fn at(ms: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: ms / 1000,
            nanos: ((ms % 1000) * 1_000_000) as i32,
        })
    }

    fn click() -> proto::AdClick {
        proto::AdClick {
            ip_address: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0".into(),
            referring_url: "https://example.com/page?q=1".into(),
            advertiser_id: "adv-1".into(),
            metadata: None,
            campaign_id: None,
        }
    }

    fn event(payload: Payload) -> proto::Event {
        proto::Event {
            event_time: at(NOW - 5),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn rejected_field(event: proto::Event) -> String {
        ValidEvent::parse(event, rules()).unwrap_err().field
    }

    #[test]
    fn ad_click_takes_its_type_and_advertiser_key_by_default() {
        let valid = ValidEvent::parse(event(Payload::AdClick(click())), rules()).unwrap();
        assert_eq!(valid.event_type, "ad_click");
        assert_eq!(valid.key, "adv-1");
        assert_eq!(valid.event_time_ms, NOW - 5);
        assert!(!valid.idempotency_key.is_empty());
        let ValidPayload::AdClick(click) = valid.payload else {
            panic!("not an ad click")
        };
        assert_eq!(click.metadata_json, "{}");
    }

    #[test]
    fn a_typed_event_takes_only_its_natural_key() {
        let keyed = |key: &str| {
            let mut e = event(Payload::AdClick(click()));
            e.key = key.into();
            ValidEvent::parse(e, rules())
        };
        assert_eq!(keyed("adv-1").unwrap().key, "adv-1");
        let refused = keyed("user-7").unwrap_err();
        assert_eq!(refused.field, "key");
        assert!(
            refused
                .message
                .contains("keyed by its advertiser_id (`adv-1`)"),
            "{}",
            refused.message
        );
        let mut tick = event(Payload::PriceTick(proto::PriceTick {
            pair: "ETH-USD".into(),
            source: "s".into(),
            price: 1.0,
            volume: None,
        }));
        tick.key = "s".into();
        assert_eq!(rejected_field(tick), "key");
    }

    #[test]
    fn text_with_a_nul_character_is_refused() {
        let mut c = click();
        c.advertiser_id = "adv\0-1".into();
        assert_eq!(
            rejected_field(event(Payload::AdClick(c))),
            "ad_click.advertiser_id"
        );
        let mut e = event(Payload::Generic(Default::default()));
        e.event_type = "signup".into();
        e.key = "user\0".into();
        assert_eq!(rejected_field(e), "key");
    }

    #[test]
    fn ipv6_addresses_are_accepted() {
        let mut c = click();
        c.ip_address = "2001:db8::1".into();
        assert!(ValidEvent::parse(event(Payload::AdClick(c)), rules()).is_ok());
    }

    #[test]
    fn each_invalid_ad_click_field_is_named() {
        type Breakage = fn(&mut proto::AdClick);
        let cases: [(Breakage, &str); 5] = [
            (|c| c.ip_address = "999.1.1.1".into(), "ad_click.ip_address"),
            (
                |c| c.referring_url = "not a url".into(),
                "ad_click.referring_url",
            ),
            (
                |c| c.referring_url = "ftp://example.com/x".into(),
                "ad_click.referring_url",
            ),
            (
                |c| c.advertiser_id = String::new(),
                "ad_click.advertiser_id",
            ),
            (
                |c| c.user_agent = "x".repeat(MAX_USER_AGENT_LEN + 1),
                "ad_click.user_agent",
            ),
        ];
        for (break_it, field) in cases {
            let mut c = click();
            break_it(&mut c);
            assert_eq!(rejected_field(event(Payload::AdClick(c))), field);
        }
    }

    #[test]
    fn price_must_be_finite_and_positive() {
        for price in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let tick = proto::PriceTick {
                pair: "ETH-USD".into(),
                source: "a".into(),
                price,
                volume: None,
            };
            let rejection =
                ValidEvent::parse(event(Payload::PriceTick(tick)), rules()).unwrap_err();
            assert_eq!(rejection.field, "price_tick.price", "{price}");
        }
    }

    #[test]
    fn event_time_is_required_and_within_the_skew() {
        let mut e = event(Payload::AdClick(click()));
        e.event_time = None;
        assert_eq!(rejected_field(e.clone()), "event_time");
        e.event_time = at(NOW + 3_600_001);
        assert_eq!(rejected_field(e.clone()), "event_time");
        e.event_time = at(NOW - 3_600_001);
        let rejection = ValidEvent::parse(e.clone(), rules()).unwrap_err();
        let (start, end) = (format_ms(NOW - 3_600_000), format_ms(NOW + 3_600_000));
        assert!(
            rejection.describe().starts_with("event_time: ")
                && rejection.describe().contains(&format!(
                    "is outside the accepted range {start} to {end} (now ± 1h, --max-event-time-skew)"
                )),
            "{}",
            rejection.describe()
        );
        e.event_time = at(NOW - 3_600_000);
        assert!(ValidEvent::parse(e, rules()).is_ok());
    }

    #[test]
    fn typed_payload_under_another_type_is_refused() {
        let mut e = event(Payload::AdClick(click()));
        e.event_type = "price_tick".into();
        let rejection = ValidEvent::parse(e, rules()).unwrap_err();
        assert_eq!(
            rejection.describe(),
            "event_type: is `price_tick` but the payload is `ad_click`"
        );
    }

    #[test]
    fn generic_events_need_a_legal_type_and_a_key() {
        let mut e = event(Payload::Generic(prost_types::Struct::default()));
        e.event_type = "Page-View".into();
        assert_eq!(rejected_field(e.clone()), "event_type");
        e.event_type = "page_view".into();
        assert_eq!(rejected_field(e.clone()), "key");
        e.key = "user-1".into();
        assert_eq!(
            ValidEvent::parse(e, rules()).unwrap().event_type,
            "page_view"
        );
    }

    fn struct_of(json: serde_json::Value) -> prost_types::Struct {
        envelope::object_to_struct(json.as_object().unwrap().clone())
    }

    #[test]
    fn a_built_in_type_sent_as_generic_is_checked_as_its_typed_payload() {
        let fields = serde_json::json!({
            "ip_address": "203.0.113.7", "user_agent": "u", "referring_url": "https://example.com/",
            "advertiser_id": "adv-1", "metadata": {"slot": "top"}, "country": "DE"
        });
        let mut e = event(Payload::Generic(struct_of(fields.clone())));
        e.event_type = "ad_click".into();
        let valid = ValidEvent::parse(e.clone(), rules()).unwrap();
        assert_eq!((valid.key.as_str(), valid.path), ("adv-1", "generic"));
        assert_eq!(
            serde_json::Value::Object(valid.extra_fields),
            serde_json::json!({"country": "DE"})
        );
        let ValidPayload::AdClick(click) = valid.payload else {
            panic!("not an ad click")
        };
        assert_eq!(click.metadata_json, r#"{"slot":"top"}"#);

        let mut bad = fields.clone();
        bad["ip_address"] = "nope".into();
        e.payload = Some(Payload::Generic(struct_of(bad)));
        assert_eq!(rejected_field(e.clone()), "generic.ip_address");
        let mut missing = fields;
        missing.as_object_mut().unwrap().remove("referring_url");
        e.payload = Some(Payload::Generic(struct_of(missing)));
        assert_eq!(
            ValidEvent::parse(e, rules()).unwrap_err().describe(),
            "generic.referring_url: is required"
        );
    }

    #[test]
    fn extra_fields_add_to_a_typed_message_and_replace_none_of_it() {
        let with_extra = |extra: serde_json::Value| {
            let mut e = event(Payload::AdClick(click()));
            e.extra_fields = Some(struct_of(extra));
            ValidEvent::parse(e, rules())
        };
        let valid = with_extra(serde_json::json!({"country": "DE"})).unwrap();
        assert_eq!((valid.extra_fields.len(), valid.path), (1, "ad_click"));
        assert_eq!(
            with_extra(serde_json::json!({"advertiser_id": "adv-2"}))
                .unwrap_err()
                .describe(),
            "extra_fields.advertiser_id: is a field of the `ad_click` message; set it there"
        );
        assert_eq!(
            with_extra(serde_json::json!({"event_time": 1}))
                .unwrap_err()
                .field,
            "extra_fields.event_time"
        );
        let mut e = event(Payload::Generic(Default::default()));
        e.event_type = "signup".into();
        e.key = "user-1".into();
        e.extra_fields = Some(struct_of(serde_json::json!({"plan": "pro"})));
        assert_eq!(rejected_field(e), "extra_fields");
    }

    #[test]
    fn a_number_json_cannot_hold_is_refused_not_dropped() {
        let nan = prost_types::Value {
            kind: Some(prost_types::value::Kind::NumberValue(f64::NAN)),
        };
        let mut e = event(Payload::AdClick(click()));
        e.extra_fields = Some(prost_types::Struct {
            fields: [("score".to_string(), nan)].into(),
        });
        assert_eq!(
            ValidEvent::parse(e, rules()).unwrap_err().describe(),
            "extra_fields.score: NaN is not a finite number"
        );
    }

    #[test]
    fn metadata_text_is_what_its_json_object_displays_as() {
        use prost_types::{ListValue, Value, value::Kind};
        let number = |n: f64| Value {
            kind: Some(Kind::NumberValue(n)),
        };
        let rich = struct_of(serde_json::json!({
            "z": null, "a": true, "b": false, "s": "quote \" back \\ tab \t nl \n ctl \u{1} é 🦀 </script>",
            "nested": {"list": [1, -2.5, "x", [], {}, {"deep": [null, false]}], "empty": {}},
            "": "empty key", "ünï": "code"
        }));
        let mut rich = rich;
        for (key, n) in [
            ("int", 42.0),
            ("neg", -7.0),
            ("zero", -0.0),
            ("frac", 0.1),
            ("big", 9.007_199_254_740_993e15),
            ("edge", 9.007_199_254_740_991e15),
            ("tiny", 5e-324),
            ("huge", 1.7e308),
        ] {
            rich.fields.insert(key.into(), number(n));
        }
        rich.fields.insert(
            "numbers".into(),
            Value {
                kind: Some(Kind::ListValue(ListValue {
                    values: vec![number(1e21), number(-1e-7), number(3.0)],
                })),
            },
        );
        let path = || "ad_click.metadata".to_string();
        let displayed =
            serde_json::Value::Object(struct_at(rich.clone(), &path).unwrap()).to_string();
        assert_eq!(struct_json_text(&rich, &path).unwrap(), displayed);
        assert_eq!(
            struct_json_text(&prost_types::Struct::default(), &path).unwrap(),
            "{}"
        );

        let mut bad = rich;
        let inner = prost_types::Struct {
            fields: [("score".to_string(), number(f64::INFINITY))].into(),
        };
        bad.fields.insert(
            "nested".into(),
            Value {
                kind: Some(Kind::ListValue(ListValue {
                    values: vec![
                        number(1.0),
                        Value {
                            kind: Some(Kind::StructValue(inner)),
                        },
                    ],
                })),
            },
        );
        let refused = |r: Rejection| r.describe();
        assert_eq!(
            refused(struct_json_text(&bad, &path).unwrap_err()),
            refused(struct_at(bad, &path).unwrap_err())
        );
    }

    #[test]
    fn metadata_with_a_number_json_cannot_hold_is_refused() {
        let mut c = click();
        c.metadata = Some(prost_types::Struct {
            fields: [(
                "score".to_string(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::NumberValue(f64::NEG_INFINITY)),
                },
            )]
            .into(),
        });
        assert_eq!(
            ValidEvent::parse(event(Payload::AdClick(c)), rules())
                .unwrap_err()
                .describe(),
            "ad_click.metadata.score: -inf is not a finite number"
        );
    }

    #[test]
    fn missing_payload_is_refused() {
        let e = proto::Event {
            event_time: at(NOW),
            ..Default::default()
        };
        assert_eq!(rejected_field(e), "payload");
    }
}
