//! The typed events the windowing aggregates. Each is built from a record
//! already resolved against the processor's reader schema and validated here,
//! at the boundary, so the aggregation never re-checks a field.
use std::net::IpAddr;

use apache_avro::types::Value;

use super::{
    poison::Poison,
    record::{Record, epoch_millis},
};

/// A decoded event, ready to aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// An `ad_click` event.
    AdClick(AdClickEvent),
    /// A `price_tick` event.
    PriceTick(PriceTickEvent),
    /// An event of a schema-driven type, aggregated by count per key.
    Generic(GenericEvent),
}

impl Decoded {
    /// The event time in epoch milliseconds, which places the event in its window.
    pub fn event_time_ms(&self) -> i64 {
        match self {
            Self::AdClick(e) => e.event_time_ms,
            Self::PriceTick(e) => e.event_time_ms,
            Self::Generic(e) => e.event_time_ms,
        }
    }
}

/// One click on an advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdClickEvent {
    /// The aggregation key; never empty.
    pub advertiser_id: String,
    /// The client's address, a valid IPv4 or IPv6 address (counted distinct).
    pub ip_address: String,
    /// Event time, epoch milliseconds.
    pub event_time_ms: i64,
    /// The campaign (v2); `None` from v1 writers or when read with the v1 reader.
    pub campaign_id: Option<String>,
}

impl AdClickEvent {
    /// Builds and validates an ad click from a record read with an `ad_click` reader schema.
    pub(crate) fn from_value(value: Value) -> Result<Self, Poison> {
        let mut record = Record::new(value)?;
        Self {
            advertiser_id: record.string("advertiser_id")?,
            ip_address: record.string("ip_address")?,
            event_time_ms: record.timestamp_millis("event_time")?,
            campaign_id: record.optional_string("campaign_id")?,
        }
        .validated()
    }

    /// The event, or why it is invalid (for every way it was read).
    pub(crate) fn validated(self) -> Result<Self, Poison> {
        if self.advertiser_id.is_empty() {
            return Err(Poison::invalid("advertiser_id", "is empty"));
        }
        if self.ip_address.parse::<IpAddr>().is_err() {
            return Err(Poison::invalid(
                "ip_address",
                format_args!("`{}` is not an IPv4 or IPv6 address", self.ip_address),
            ));
        }
        Ok(self)
    }
}

/// One price observation of a pair from one source.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTickEvent {
    /// The pair, e.g. `ETH-USD`; never empty.
    pub pair: String,
    /// Where the price comes from (an exchange API or a contract); never empty.
    pub source: String,
    /// The price; finite and positive.
    pub price: f64,
    /// Event time, epoch milliseconds.
    pub event_time_ms: i64,
    /// Traded volume (v2); `None` from v1 writers or when read with the v1 reader.
    pub volume: Option<f64>,
}

impl PriceTickEvent {
    /// Builds and validates a price tick from a record read with a `price_tick` reader schema.
    pub(crate) fn from_value(value: Value) -> Result<Self, Poison> {
        let mut record = Record::new(value)?;
        Self {
            pair: record.string("pair")?,
            source: record.string("source")?,
            price: record.double("price")?,
            event_time_ms: record.timestamp_millis("event_time")?,
            volume: record.optional_double("volume")?,
        }
        .validated()
    }

    /// The event, or why it is invalid (for every way it was read).
    pub(crate) fn validated(self) -> Result<Self, Poison> {
        if self.pair.is_empty() {
            return Err(Poison::invalid("pair", "is empty"));
        }
        if self.source.is_empty() {
            return Err(Poison::invalid("source", "is empty"));
        }
        if !self.price.is_finite() || self.price <= 0.0 {
            return Err(Poison::invalid(
                "price",
                format_args!("must be finite and positive, got {}", self.price),
            ));
        }
        Ok(self)
    }
}

/// An event of a schema-driven type: only its time matters to the count per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenericEvent {
    /// Event time, epoch milliseconds.
    pub event_time_ms: i64,
}

impl GenericEvent {
    /// The event time of a record read with its writer schema alone: its
    /// `event_time` field when that holds a timestamp (any precision) or a long,
    /// else the Kafka record timestamp, which ingest sets to the event time.
    pub(crate) fn from_value(
        value: &Value,
        record_timestamp_ms: Option<i64>,
    ) -> Result<Self, Poison> {
        let field = match value {
            Value::Record(fields) => fields
                .iter()
                .find(|(name, _)| name == "event_time")
                .and_then(|(_, v)| epoch_millis(v)),
            _ => None,
        };
        let event_time_ms = field.or(record_timestamp_ms).ok_or_else(|| {
            Poison::invalid(
                "event_time",
                "the record has no timestamp event_time field and the Kafka record has no timestamp",
            )
        })?;
        Ok(Self { event_time_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::poison::PoisonReason;

    fn ad_click(advertiser_id: &str, ip_address: &str) -> Value {
        Value::Record(vec![
            ("ip_address".into(), Value::String(ip_address.into())),
            ("user_agent".into(), Value::String("curl/8".into())),
            (
                "referring_url".into(),
                Value::String("https://example.com/".into()),
            ),
            ("advertiser_id".into(), Value::String(advertiser_id.into())),
            ("metadata".into(), Value::String("{}".into())),
            ("event_time".into(), Value::TimestampMillis(1_000)),
        ])
    }

    fn price_tick(pair: &str, source: &str, price: f64) -> Value {
        Value::Record(vec![
            ("pair".into(), Value::String(pair.into())),
            ("source".into(), Value::String(source.into())),
            ("price".into(), Value::Double(price)),
            ("event_time".into(), Value::Long(2_000)),
        ])
    }

    fn invalid(value: Result<impl std::fmt::Debug, Poison>) -> String {
        let poison = value.unwrap_err();
        assert_eq!(poison.reason, PoisonReason::Invalid);
        poison.detail
    }

    #[test]
    fn ad_click_with_ipv4_or_ipv6_is_accepted() {
        assert_eq!(
            AdClickEvent::from_value(ad_click("adv-1", "2001:db8::1")),
            Ok(AdClickEvent {
                advertiser_id: "adv-1".into(),
                ip_address: "2001:db8::1".into(),
                event_time_ms: 1_000,
                campaign_id: None,
            })
        );
        assert!(AdClickEvent::from_value(ad_click("adv-1", "10.0.0.1")).is_ok());
    }

    #[test]
    fn ad_click_with_empty_advertiser_is_invalid() {
        assert_eq!(
            invalid(AdClickEvent::from_value(ad_click("", "10.0.0.1"))),
            "advertiser_id: is empty"
        );
    }

    #[test]
    fn ad_click_with_unparseable_ip_is_invalid() {
        assert_eq!(
            invalid(AdClickEvent::from_value(ad_click("adv-1", "10.0.0.256"))),
            "ip_address: `10.0.0.256` is not an IPv4 or IPv6 address"
        );
        assert_eq!(
            invalid(AdClickEvent::from_value(ad_click("adv-1", ""))),
            "ip_address: `` is not an IPv4 or IPv6 address"
        );
    }

    #[test]
    fn price_tick_with_long_event_time_is_accepted() {
        assert_eq!(
            PriceTickEvent::from_value(price_tick("ETH-USD", "coinbase", 3012.5)),
            Ok(PriceTickEvent {
                pair: "ETH-USD".into(),
                source: "coinbase".into(),
                price: 3012.5,
                event_time_ms: 2_000,
                volume: None,
            })
        );
    }

    #[test]
    fn price_tick_with_empty_pair_or_source_is_invalid() {
        assert_eq!(
            invalid(PriceTickEvent::from_value(price_tick("", "coinbase", 1.0))),
            "pair: is empty"
        );
        assert_eq!(
            invalid(PriceTickEvent::from_value(price_tick("ETH-USD", "", 1.0))),
            "source: is empty"
        );
    }

    #[test]
    fn price_tick_with_non_positive_or_non_finite_price_is_invalid() {
        for (price, shown) in [
            (0.0, "0"),
            (-1.0, "-1"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(
                invalid(PriceTickEvent::from_value(price_tick(
                    "ETH-USD", "x", price
                ))),
                format!("price: must be finite and positive, got {shown}")
            );
        }
    }

    #[test]
    fn generic_event_time_prefers_the_event_time_field() {
        let value = Value::Record(vec![("event_time".into(), Value::TimestampMillis(5))]);
        assert_eq!(
            GenericEvent::from_value(&value, Some(9)),
            Ok(GenericEvent { event_time_ms: 5 })
        );
    }

    #[test]
    fn generic_event_time_falls_back_to_the_record_timestamp() {
        let null = Value::Union(0, Box::new(Value::Null));
        for value in [
            Value::Record(vec![("url".into(), Value::String("/".into()))]),
            Value::Record(vec![("event_time".into(), null)]),
            Value::Record(vec![("event_time".into(), Value::String("soon".into()))]),
            Value::String("not a record".into()),
        ] {
            assert_eq!(
                GenericEvent::from_value(&value, Some(9)),
                Ok(GenericEvent { event_time_ms: 9 }),
                "{value:?}"
            );
        }
    }

    #[test]
    fn generic_event_without_any_time_is_invalid() {
        let value = Value::Record(vec![("url".into(), Value::String("/".into()))]);
        assert_eq!(
            invalid(GenericEvent::from_value(&value, None)),
            "event_time: the record has no timestamp event_time field and the Kafka record has no timestamp"
        );
    }
}
