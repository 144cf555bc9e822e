//! Decoding: Confluent framing → writer schema (cached by id) → the
//! processor's reader schema → a typed, validated event.
//!
//! Old and new schema versions coexist because every `ad_click` and
//! `price_tick` record is resolved against one built-in reader schema
//! ([`ReaderVersion`]); other event types are read with their writer schema
//! alone. A record that can never be processed is [`Poison`] for the
//! dead-letter topic; a registry that cannot be reached is
//! [`DecodeError::Unavailable`], which the caller retries instead.
mod event;
mod plan;
#[cfg(test)]
mod plan_tests;
mod poison;
mod record;

use std::{
    collections::HashMap,
    sync::{LazyLock, RwLock},
};

use apache_avro::Schema;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use thiserror::Error;
use tributary_common::{
    avro_reader::{ReadError, ReaderCache},
    schemas, wire,
};

use self::plan::TypedPlan;

pub use self::{
    event::{AdClickEvent, Decoded, GenericEvent, PriceTickEvent},
    poison::{Poison, PoisonReason},
};

/// Which built-in reader schema version the processor reads `ad_click` and
/// `price_tick` with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReaderVersion {
    /// `schemas/*/v1.avsc`: fields added in v2 are dropped.
    V1,
    /// `schemas/*/v2.avsc`: fields added in v2 are `None` for v1 writers.
    V2,
    /// The newest version shipped in `schemas/`.
    #[default]
    Latest,
}

/// Why a record was not decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The record can never be processed: dead-letter it.
    #[error(transparent)]
    Poison(#[from] Poison),
    /// The schema registry is unreachable or failing: retry the same record
    /// later; it must not be dead-lettered.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}

/// What a record is read as, chosen by its event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `ad_click`, read with the built-in reader schema.
    AdClick,
    /// `price_tick`, read with the built-in reader schema.
    PriceTick,
    /// Any other type, read with its writer schema alone.
    Generic,
}

impl Kind {
    fn of(event_type: &str) -> Self {
        match event_type {
            schemas::AD_CLICK => Self::AdClick,
            schemas::PRICE_TICK => Self::PriceTick,
            _ => Self::Generic,
        }
    }
}

/// Decodes event records; cheap to share across tasks (`Arc<Decoder>`).
///
/// `ad_click` and `price_tick` records are read straight from their bytes
/// by a [`TypedPlan`] of their writer schema where there is one; the first
/// record of each writer, any record a plan does not read whole, and every
/// other type take the general path (apache-avro `Value`, resolved against
/// the reader schema), which decides every rejection.
pub struct Decoder {
    readers: ReaderCache,
    /// By (writer schema id, kind): the plan, or `None` when the writer has
    /// none (or could not be fetched for one); absent until the general path
    /// has read a record of that writer.
    plans: RwLock<HashMap<(u32, Kind), Option<TypedPlan>>>,
    ad_click: &'static Schema,
    price_tick: &'static Schema,
}

impl Decoder {
    /// A decoder fetching writer schemas from the registry in `settings` and
    /// reading the built-in types with `reader_version`.
    pub fn new(settings: SrSettings, reader_version: ReaderVersion) -> Self {
        Self {
            readers: ReaderCache::new(settings),
            plans: RwLock::default(),
            ad_click: builtin_reader(schemas::AD_CLICK, reader_version),
            price_tick: builtin_reader(schemas::PRICE_TICK, reader_version),
        }
    }

    /// Decodes one record's value. `event_type` comes from the topic name
    /// (prefix stripped by the caller); `record_timestamp_ms` is the Kafka
    /// timestamp, the event time of types whose schema has no `event_time`.
    pub async fn decode(
        &self,
        event_type: &str,
        payload: Option<&[u8]>,
        record_timestamp_ms: Option<i64>,
    ) -> Result<Decoded, DecodeError> {
        let payload = payload
            .ok_or_else(|| Poison::new(PoisonReason::NotFramed, "the record has no value"))?;
        let kind = Kind::of(event_type);
        let framed = (kind != Kind::Generic)
            .then(|| wire::unframe(payload).ok())
            .flatten();
        if let Some((id, body)) = framed {
            let planned = {
                let plans = self.plans.read().expect("plan cache lock");
                match plans.get(&(id, kind)) {
                    Some(Some(plan)) => match plan.read(body) {
                        Some(read) => return Ok(read?),
                        None => true,
                    },
                    Some(None) => true,
                    None => false,
                }
            };
            if !planned {
                let decoded = self
                    .decode_general(kind, payload, record_timestamp_ms)
                    .await;
                if decoded.is_ok() {
                    let plan = self.plan(id, kind).await;
                    self.plans
                        .write()
                        .expect("plan cache lock")
                        .insert((id, kind), plan);
                }
                return decoded;
            }
        }
        self.decode_general(kind, payload, record_timestamp_ms)
            .await
    }

    /// The typed plan for writer `id` read as `kind`: its schema comes from
    /// the reader cache (the general path has just read a record of it);
    /// `None` when it is not there or the writer has no plan.
    async fn plan(&self, id: u32, kind: Kind) -> Option<TypedPlan> {
        let reader = match kind {
            Kind::AdClick => self.ad_click,
            Kind::PriceTick => self.price_tick,
            Kind::Generic => return None,
        };
        let writer = match self.readers.writer(id).await {
            Ok(writer) => writer,
            Err(e) => {
                tracing::info!(id, error = %e, "no typed reading for this writer schema");
                return None;
            }
        };
        let plan = TypedPlan::new(kind, writer, reader);
        tracing::debug!(id, ?kind, typed = plan.is_some(), "writer schema planned");
        plan
    }

    /// Decodes with apache-avro: the writer schema (cached by id), resolved
    /// against `kind`'s reader schema, into a `Value` and then the event.
    async fn decode_general(
        &self,
        kind: Kind,
        payload: &[u8],
        record_timestamp_ms: Option<i64>,
    ) -> Result<Decoded, DecodeError> {
        let reader = match kind {
            Kind::AdClick => Some(self.ad_click),
            Kind::PriceTick => Some(self.price_tick),
            Kind::Generic => None,
        };
        let value = self
            .readers
            .read(payload, reader)
            .await
            .map_err(|e| match e {
                ReadError::NotFramed(detail) => Poison::new(PoisonReason::NotFramed, detail).into(),
                ReadError::UnknownSchema(detail) => {
                    Poison::new(PoisonReason::UnknownSchema, detail).into()
                }
                ReadError::Undecodable(detail) => {
                    Poison::new(PoisonReason::Undecodable, detail).into()
                }
                ReadError::Unavailable(detail) => DecodeError::Unavailable(detail),
            })?;
        let decoded = match kind {
            Kind::AdClick => AdClickEvent::from_value(value).map(Decoded::AdClick),
            Kind::PriceTick => PriceTickEvent::from_value(value).map(Decoded::PriceTick),
            Kind::Generic => {
                GenericEvent::from_value(&value, record_timestamp_ms).map(Decoded::Generic)
            }
        };
        Ok(decoded?)
    }

    /// How many times the registry has been asked for a schema: once per new
    /// schema id, plus once per record of an id the registry does not know.
    pub fn registry_lookups(&self) -> u64 {
        self.readers.registry_lookups()
    }
}

/// The built-in reader schema of `name` in `version`, parsed once per process.
fn builtin_reader(name: &str, version: ReaderVersion) -> &'static Schema {
    static PARSED: LazyLock<Vec<(&'static schemas::BuiltinSchema, Schema)>> =
        LazyLock::new(|| schemas::BUILTIN.iter().map(|s| (s, s.parse())).collect());
    let version = match version {
        ReaderVersion::V1 => 1,
        ReaderVersion::V2 => 2,
        ReaderVersion::Latest => {
            schemas::latest(name)
                .unwrap_or_else(|| panic!("{name} is not a built-in schema"))
                .version
        }
    };
    PARSED
        .iter()
        .find(|(s, _)| s.name == name && s.version == version)
        .map(|(_, schema)| schema)
        .unwrap_or_else(|| panic!("schemas/{name}/v{version}.avsc is not built in"))
}

#[cfg(test)]
mod tests {
    use apache_avro::{Schema, types::Value, writer::datum::GenericDatumWriter};
    use schema_registry_converter::async_impl::schema_registry::SrSettings;
    use tributary_common::{schemas, wire};

    use super::*;

    /// Nothing listens on port 1: any registry lookup fails to connect.
    fn unreachable_registry() -> SrSettings {
        SrSettings::new("http://127.0.0.1:1".to_string())
    }

    fn decoder(version: ReaderVersion) -> Decoder {
        Decoder::new(unreachable_registry(), version)
    }

    fn builtin(name: &str, version: u32) -> &'static str {
        schemas::versions(name)
            .find(|s| s.version == version)
            .unwrap()
            .json
    }

    fn framed(id: u32, schema_json: &str, value: Value) -> Vec<u8> {
        let schema = Schema::parse_str(schema_json).unwrap();
        let body = GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap();
        let mut out = Vec::new();
        wire::frame_into(id, &body, &mut out);
        out
    }

    fn price_tick_v1(price: f64) -> Value {
        Value::Record(vec![
            ("pair".into(), Value::String("ETH-USD".into())),
            ("source".into(), Value::String("coinbase".into())),
            ("price".into(), Value::Double(price)),
            (
                "event_time".into(),
                Value::TimestampMillis(1_700_000_000_123),
            ),
        ])
    }

    fn poison(result: Result<Decoded, DecodeError>) -> Poison {
        match result {
            Err(DecodeError::Poison(poison)) => poison,
            other => panic!("expected poison, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn record_without_value_is_not_framed() {
        let decoded = decoder(ReaderVersion::Latest)
            .decode("ad_click", None, Some(1))
            .await;
        assert_eq!(
            poison(decoded),
            Poison::new(PoisonReason::NotFramed, "the record has no value")
        );
    }

    #[tokio::test]
    async fn record_shorter_than_the_header_is_not_framed() {
        let decoded = decoder(ReaderVersion::Latest)
            .decode("ad_click", Some(&[0, 0, 0, 1]), Some(1))
            .await;
        assert_eq!(
            poison(decoded),
            Poison::new(
                PoisonReason::NotFramed,
                "record of 4 bytes is too short for the Confluent wire format (5-byte header)"
            )
        );
    }

    #[tokio::test]
    async fn record_without_magic_byte_is_not_framed() {
        let decoded = decoder(ReaderVersion::Latest)
            .decode("price_tick", Some(b"{\"pair\":1}"), Some(1))
            .await;
        assert_eq!(
            poison(decoded),
            Poison::new(
                PoisonReason::NotFramed,
                "record starts with byte 0x7b, not the Confluent magic byte 0x00"
            )
        );
    }

    #[tokio::test]
    async fn unreachable_registry_is_unavailable_not_poison() {
        let decoder = decoder(ReaderVersion::Latest);
        let record = framed(7, builtin("price_tick", 1), price_tick_v1(1.0));
        let decoded = decoder.decode("price_tick", Some(&record), Some(1)).await;
        let Err(DecodeError::Unavailable(detail)) = decoded else {
            panic!("expected Unavailable, got {decoded:?}");
        };
        assert!(
            detail.starts_with("schema registry lookup of schema id 7: "),
            "{detail}"
        );
        assert_eq!(decoder.registry_lookups(), 1);
    }

    #[tokio::test]
    async fn cached_writer_schema_decodes_without_the_registry() {
        let decoder = decoder(ReaderVersion::V2);
        decoder.readers.insert_writer(7, builtin("price_tick", 1));
        let record = framed(7, builtin("price_tick", 1), price_tick_v1(3012.5));
        for _ in 0..3 {
            assert_eq!(
                decoder.decode("price_tick", Some(&record), None).await,
                Ok(Decoded::PriceTick(PriceTickEvent {
                    pair: "ETH-USD".into(),
                    source: "coinbase".into(),
                    price: 3012.5,
                    event_time_ms: 1_700_000_000_123,
                    volume: None,
                }))
            );
        }
        assert_eq!(decoder.registry_lookups(), 0);
    }

    #[tokio::test]
    async fn invalid_value_is_poison_naming_the_field() {
        let decoder = decoder(ReaderVersion::V1);
        decoder.readers.insert_writer(7, builtin("price_tick", 1));
        let record = framed(7, builtin("price_tick", 1), price_tick_v1(f64::NAN));
        assert_eq!(
            poison(decoder.decode("price_tick", Some(&record), None).await),
            Poison::invalid("price", "must be finite and positive, got NaN")
        );
    }

    #[tokio::test]
    async fn writer_of_another_record_type_is_undecodable_against_the_reader() {
        let decoder = decoder(ReaderVersion::V1);
        decoder.readers.insert_writer(7, builtin("price_tick", 1));
        let record = framed(7, builtin("price_tick", 1), price_tick_v1(1.0));
        let poison = poison(decoder.decode("ad_click", Some(&record), None).await);
        assert_eq!(poison.reason, PoisonReason::Undecodable);
        assert!(
            poison
                .detail
                .starts_with("writer schema 7 cannot be read as AdClick: "),
            "{}",
            poison.detail
        );
    }

    #[tokio::test]
    async fn trailing_bytes_after_the_record_are_undecodable() {
        let decoder = decoder(ReaderVersion::V1);
        decoder.readers.insert_writer(7, builtin("price_tick", 1));
        let mut record = framed(7, builtin("price_tick", 1), price_tick_v1(1.0));
        record.extend_from_slice(b"xyz");
        assert_eq!(
            poison(decoder.decode("price_tick", Some(&record), None).await),
            Poison::new(
                PoisonReason::Undecodable,
                "3 bytes left over after decoding a record with schema id 7"
            )
        );
    }

    #[tokio::test]
    async fn truncated_body_is_undecodable() {
        let decoder = decoder(ReaderVersion::V1);
        decoder.readers.insert_writer(7, builtin("price_tick", 1));
        let record = framed(7, builtin("price_tick", 1), price_tick_v1(1.0));
        let poison = poison(
            decoder
                .decode("price_tick", Some(&record[..record.len() - 2]), None)
                .await,
        );
        assert_eq!(poison.reason, PoisonReason::Undecodable);
        assert!(
            poison
                .detail
                .starts_with("the body does not decode with schema id 7: "),
            "{}",
            poison.detail
        );
    }

    #[tokio::test]
    async fn writer_schema_that_is_not_avro_is_undecodable() {
        let decoder = decoder(ReaderVersion::V1);
        decoder.readers.insert_writer(7, "{\"type\": \"nonsense\"}");
        let poison = poison(
            decoder
                .decode("page_view", Some(&[0, 0, 0, 0, 7, 2]), Some(1))
                .await,
        );
        assert_eq!(poison.reason, PoisonReason::Undecodable);
        assert!(
            poison.detail.starts_with("schema id 7 is not valid Avro: "),
            "{}",
            poison.detail
        );
    }

    #[tokio::test]
    async fn generic_record_that_is_not_a_record_uses_the_record_timestamp() {
        let decoder = decoder(ReaderVersion::V1);
        decoder.readers.insert_writer(7, "\"string\"");
        let record = framed(7, "\"string\"", Value::String("hello".into()));
        assert_eq!(
            decoder.decode("greeting", Some(&record), Some(42)).await,
            Ok(Decoded::Generic(GenericEvent { event_time_ms: 42 }))
        );
    }

    #[test]
    fn decoder_futures_can_run_on_any_worker() {
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        fn assert_send<T: Send>(_: T) {}
        let decoder = decoder(ReaderVersion::Latest);
        assert_send_sync(&decoder);
        assert_send(decoder.decode("ad_click", None, None));
    }
}
