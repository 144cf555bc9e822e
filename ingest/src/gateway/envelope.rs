//! The JSON event envelope of `POST /v1/events`: the proto `Event` in JSON,
//! with `event_time` as an RFC 3339 string or integer epoch milliseconds and
//! exactly one of `ad_click`, `price_tick` or `generic`. Unknown fields are
//! refused so a misspelt optional field is not silently dropped.
use serde_json::Value;
use tributary_common::proto::v1::{self as proto, event::Payload};

use super::json::{Fields, kind};
use crate::rejection::Rejection;

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

/// Reads one envelope into an event for the event path.
pub fn parse(value: &Value) -> Result<proto::Event, Rejection> {
    let fields = Fields::of(value, "event", "")?;
    fields.only(ENVELOPE_FIELDS)?;
    let present: Vec<&str> = PAYLOADS.iter().copied().filter(|p| fields.has(p)).collect();
    let payload = match present.as_slice() {
        [] => None, // the event path names the missing payload
        ["ad_click"] => Some(Payload::AdClick(ad_click(
            fields.get("ad_click").unwrap_or(&Value::Null),
        )?)),
        ["price_tick"] => Some(Payload::PriceTick(price_tick(
            fields.get("price_tick").unwrap_or(&Value::Null),
        )?)),
        ["generic"] => Some(Payload::Generic(
            fields.object("generic")?.unwrap_or_default(),
        )),
        several => {
            return Err(Rejection::invalid(
                "payload",
                format!("has {}; set exactly one", several.join(" and ")),
            ));
        }
    };
    Ok(proto::Event {
        event_type: fields.string("event_type")?.unwrap_or_default(),
        key: fields.string("key")?.unwrap_or_default(),
        event_time: fields.get("event_time").map(event_time).transpose()?,
        idempotency_key: fields.string("idempotency_key")?.unwrap_or_default(),
        payload,
    })
}

fn ad_click(value: &Value) -> Result<proto::AdClick, Rejection> {
    let fields = Fields::of(value, "ad_click", "ad_click.")?;
    fields.only(AD_CLICK_FIELDS)?;
    Ok(proto::AdClick {
        ip_address: fields.required_string("ip_address")?,
        user_agent: fields.required_string("user_agent")?,
        referring_url: fields.required_string("referring_url")?,
        advertiser_id: fields.required_string("advertiser_id")?,
        metadata: fields.object("metadata")?,
        campaign_id: fields.string("campaign_id")?,
    })
}

fn price_tick(value: &Value) -> Result<proto::PriceTick, Rejection> {
    let fields = Fields::of(value, "price_tick", "price_tick.")?;
    fields.only(PRICE_TICK_FIELDS)?;
    Ok(proto::PriceTick {
        pair: fields.required_string("pair")?,
        source: fields.required_string("source")?,
        price: fields
            .number("price")?
            .ok_or_else(|| Rejection::invalid("price_tick.price", "is required"))?,
        volume: fields.number("volume")?,
    })
}

/// An RFC 3339 string or integer milliseconds since the Unix epoch.
fn event_time(value: &Value) -> Result<prost_types::Timestamp, Rejection> {
    let ms = match value {
        Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                Rejection::invalid(
                    "event_time",
                    format!("`{text}` is not an RFC 3339 timestamp: {e}"),
                )
            })?
            .timestamp_millis(),
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            Rejection::invalid(
                "event_time",
                format!("{n} is not an integer number of milliseconds since the Unix epoch"),
            )
        })?,
        other => {
            return Err(Rejection::invalid(
                "event_time",
                format!(
                    "must be an RFC 3339 string or integer epoch milliseconds, got {}",
                    kind(other)
                ),
            ));
        }
    };
    Ok(prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn event_time_takes_rfc3339_or_epoch_millis() {
        let expected = prost_types::Timestamp {
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
            Some(prost_types::Timestamp {
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
    fn two_payloads_are_refused() {
        let rejection = parse(&json!({"ad_click": {}, "generic": {}})).unwrap_err();
        assert_eq!(
            rejection.describe(),
            "payload: has ad_click and generic; set exactly one"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let rejection =
            parse(&json!({"price_tick": {"pair": "p", "source": "s", "price": 1, "volme": 2}}))
                .unwrap_err();
        assert_eq!(rejection.field, "price_tick.volme");
    }
}
