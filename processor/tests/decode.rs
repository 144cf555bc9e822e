//! Decoding against the real registry: v1 and v2 writers read by v1 and v2
//! readers, poison classification, and the writer-schema cache. Every test
//! runs its own registry over its own database.
use apache_avro::{Schema, types::Value, writer::datum::GenericDatumWriter};
use tributary_common::{config::RegistryArgs, registry_client, schemas, wire};
use tributary_processor::decode::{
    AdClickEvent, DecodeError, Decoded, Decoder, GenericEvent, Poison, PoisonReason,
    PriceTickEvent, ReaderVersion,
};
use tributary_stack::{postgres::TestDatabase, registry::RunningRegistry};

const EVENT_TIME_MS: i64 = 1_700_000_000_123;

/// A registry over a fresh database; the database outlives the registry.
struct TestRegistry {
    registry: RunningRegistry,
    _db: TestDatabase,
}

impl TestRegistry {
    async fn start() -> anyhow::Result<Self> {
        let db = TestDatabase::create().await?;
        let registry = RunningRegistry::start(db.url()).await?;
        Ok(Self { registry, _db: db })
    }

    /// Registers `schema_json` under the value subject of `event_type`'s topic.
    async fn register(&self, event_type: &str, schema_json: &str) -> anyhow::Result<u32> {
        let subject = schemas::value_subject(&format!("tributary.events.{event_type}"));
        let response = reqwest::Client::new()
            .post(format!(
                "{}/subjects/{subject}/versions",
                self.registry.url()
            ))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "schema": schema_json }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "registering under {subject}: {} {}",
            response.status(),
            response.text().await?
        );
        let body: serde_json::Value = response.json().await?;
        Ok(u32::try_from(body["id"].as_u64().expect("an id"))?)
    }

    fn decoder(&self, version: ReaderVersion) -> Decoder {
        let args = RegistryArgs::at(self.registry.url());
        Decoder::new(registry_client::settings(&args).unwrap(), version)
    }
}

fn builtin(name: &str, version: u32) -> &'static str {
    schemas::versions(name)
        .find(|s| s.version == version)
        .unwrap()
        .json
}

/// The Confluent-framed encoding of `value` with `schema_json`, registered as `id`.
fn framed(id: u32, schema_json: &str, value: Value) -> anyhow::Result<Vec<u8>> {
    let schema = Schema::parse_str(schema_json)?;
    let body = GenericDatumWriter::builder(&schema)
        .build()?
        .write_value_to_vec(value)?;
    let mut out = Vec::new();
    wire::frame_into(id, &body, &mut out);
    Ok(out)
}

fn ad_click(version: u32) -> Value {
    let mut fields = vec![
        ("ip_address".into(), Value::String("203.0.113.7".into())),
        ("user_agent".into(), Value::String("Mozilla/5.0".into())),
        (
            "referring_url".into(),
            Value::String("https://news.example/".into()),
        ),
        ("advertiser_id".into(), Value::String("adv-42".into())),
        ("metadata".into(), Value::String("{\"slot\":3}".into())),
        ("event_time".into(), Value::TimestampMillis(EVENT_TIME_MS)),
    ];
    if version == 2 {
        fields.push((
            "campaign_id".into(),
            Value::Union(1, Box::new(Value::String("spring".into()))),
        ));
    }
    Value::Record(fields)
}

fn price_tick(version: u32, price: f64) -> Value {
    let mut fields = vec![
        ("pair".into(), Value::String("ETH-USD".into())),
        ("source".into(), Value::String("coinbase".into())),
        ("price".into(), Value::Double(price)),
        ("event_time".into(), Value::TimestampMillis(EVENT_TIME_MS)),
    ];
    if version == 2 {
        fields.push((
            "volume".into(),
            Value::Union(1, Box::new(Value::Double(12.5))),
        ));
    }
    Value::Record(fields)
}

fn poison(result: Result<Decoded, DecodeError>) -> Poison {
    match result {
        Err(DecodeError::Poison(poison)) => poison,
        other => panic!("expected poison, got {other:?}"),
    }
}

#[tokio::test]
async fn ad_click_v1_and_v2_writers_decode_with_v1_and_v2_readers() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let v1 = registry
        .register("ad_click", builtin("ad_click", 1))
        .await?;
    let v2 = registry
        .register("ad_click", builtin("ad_click", 2))
        .await?;
    let v1_record = framed(v1, builtin("ad_click", 1), ad_click(1))?;
    let v2_record = framed(v2, builtin("ad_click", 2), ad_click(2))?;
    let expected = |campaign_id: Option<&str>| {
        Decoded::AdClick(AdClickEvent {
            advertiser_id: "adv-42".into(),
            ip_address: "203.0.113.7".into(),
            event_time_ms: EVENT_TIME_MS,
            campaign_id: campaign_id.map(String::from),
        })
    };
    for (reader, record, want) in [
        (ReaderVersion::V1, &v1_record, expected(None)),
        (ReaderVersion::V1, &v2_record, expected(None)),
        (ReaderVersion::V2, &v1_record, expected(None)),
        (ReaderVersion::V2, &v2_record, expected(Some("spring"))),
    ] {
        let decoded = registry
            .decoder(reader)
            .decode("ad_click", Some(record), Some(1))
            .await;
        assert_eq!(decoded, Ok(want), "{reader:?} reader");
    }
    Ok(())
}

#[tokio::test]
async fn price_tick_v1_and_v2_writers_decode_with_v1_and_v2_readers() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let v1 = registry
        .register("price_tick", builtin("price_tick", 1))
        .await?;
    let v2 = registry
        .register("price_tick", builtin("price_tick", 2))
        .await?;
    let v1_record = framed(v1, builtin("price_tick", 1), price_tick(1, 3012.5))?;
    let v2_record = framed(v2, builtin("price_tick", 2), price_tick(2, 3012.5))?;
    let expected = |volume: Option<f64>| {
        Decoded::PriceTick(PriceTickEvent {
            pair: "ETH-USD".into(),
            source: "coinbase".into(),
            price: 3012.5,
            event_time_ms: EVENT_TIME_MS,
            volume,
        })
    };
    for (reader, record, want) in [
        (ReaderVersion::V1, &v1_record, expected(None)),
        (ReaderVersion::V1, &v2_record, expected(None)),
        (ReaderVersion::V2, &v1_record, expected(None)),
        (ReaderVersion::V2, &v2_record, expected(Some(12.5))),
    ] {
        let decoded = registry
            .decoder(reader)
            .decode("price_tick", Some(record), Some(1))
            .await;
        assert_eq!(decoded, Ok(want), "{reader:?} reader");
    }
    Ok(())
}

#[tokio::test]
async fn unregistered_schema_id_is_unknown_schema() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let record = framed(424_242, builtin("price_tick", 1), price_tick(1, 1.0))?;
    let decoded = registry
        .decoder(ReaderVersion::Latest)
        .decode("price_tick", Some(&record), Some(1))
        .await;
    assert_eq!(
        poison(decoded),
        Poison::new(
            PoisonReason::UnknownSchema,
            "schema id 424242 is not in the registry"
        )
    );
    Ok(())
}

#[tokio::test]
async fn schema_registered_after_an_unknown_lookup_is_found() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let decoder = registry.decoder(ReaderVersion::V2);
    let v1 = registry
        .register("price_tick", builtin("price_tick", 1))
        .await?;
    let next_id = v1 + 1;
    let record = framed(next_id, builtin("price_tick", 2), price_tick(2, 3012.5))?;
    assert_eq!(
        poison(decoder.decode("price_tick", Some(&record), Some(1)).await).reason,
        PoisonReason::UnknownSchema
    );

    let v2 = registry
        .register("price_tick", builtin("price_tick", 2))
        .await?;
    assert_eq!(v2, next_id, "the registry allocates ids in sequence");
    let decoded = decoder.decode("price_tick", Some(&record), Some(1)).await;
    assert_eq!(
        decoded,
        Ok(Decoded::PriceTick(PriceTickEvent {
            pair: "ETH-USD".into(),
            source: "coinbase".into(),
            price: 3012.5,
            event_time_ms: EVENT_TIME_MS,
            volume: Some(12.5),
        }))
    );
    assert_eq!(decoder.registry_lookups(), 2);
    Ok(())
}

#[tokio::test]
async fn garbage_body_with_a_registered_id_is_undecodable() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let id = registry
        .register("price_tick", builtin("price_tick", 1))
        .await?;
    let mut record = Vec::new();
    wire::frame_into(id, &[0xff; 12], &mut record);
    let poison = poison(
        registry
            .decoder(ReaderVersion::Latest)
            .decode("price_tick", Some(&record), Some(1))
            .await,
    );
    assert_eq!(poison.reason, PoisonReason::Undecodable);
    let prefix = format!("the body does not decode with schema id {id}: ");
    assert!(poison.detail.starts_with(&prefix), "{}", poison.detail);
    assert!(
        poison.detail.len() > prefix.len(),
        "carries apache-avro's reason"
    );
    Ok(())
}

#[tokio::test]
async fn wrong_record_type_registered_for_an_event_type_is_undecodable() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let id = registry
        .register("ad_click", builtin("price_tick", 1))
        .await?;
    let record = framed(id, builtin("price_tick", 1), price_tick(1, 1.0))?;
    let poison = poison(
        registry
            .decoder(ReaderVersion::V1)
            .decode("ad_click", Some(&record), Some(1))
            .await,
    );
    assert_eq!(poison.reason, PoisonReason::Undecodable);
    assert!(
        poison
            .detail
            .starts_with(&format!("writer schema {id} cannot be read as AdClick: ")),
        "{}",
        poison.detail
    );
    Ok(())
}

#[tokio::test]
async fn negative_price_is_invalid_naming_price() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let id = registry
        .register("price_tick", builtin("price_tick", 2))
        .await?;
    let record = framed(id, builtin("price_tick", 2), price_tick(2, -1.0))?;
    let decoded = registry
        .decoder(ReaderVersion::Latest)
        .decode("price_tick", Some(&record), Some(1))
        .await;
    assert_eq!(
        poison(decoded),
        Poison::new(
            PoisonReason::Invalid,
            "price: must be finite and positive, got -1"
        )
    );
    Ok(())
}

const PAGE_VIEW: &str = r#"{"type": "record", "name": "PageView", "fields": [
    {"name": "url", "type": "string"},
    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}}
]}"#;

const SIGNUP: &str = r#"{"type": "record", "name": "Signup", "fields": [
    {"name": "plan", "type": "string"}
]}"#;

#[tokio::test]
async fn generic_event_time_is_its_event_time_field() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let id = registry.register("page_view", PAGE_VIEW).await?;
    let record = framed(
        id,
        PAGE_VIEW,
        Value::Record(vec![
            ("url".into(), Value::String("/pricing".into())),
            ("event_time".into(), Value::TimestampMillis(EVENT_TIME_MS)),
        ]),
    )?;
    let decoded = registry
        .decoder(ReaderVersion::Latest)
        .decode("page_view", Some(&record), Some(5))
        .await;
    assert_eq!(
        decoded,
        Ok(Decoded::Generic(GenericEvent {
            event_time_ms: EVENT_TIME_MS
        }))
    );
    Ok(())
}

#[tokio::test]
async fn generic_event_without_event_time_field_takes_the_record_timestamp() -> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let decoder = registry.decoder(ReaderVersion::Latest);
    let id = registry.register("signup", SIGNUP).await?;
    let record = framed(
        id,
        SIGNUP,
        Value::Record(vec![("plan".into(), Value::String("team".into()))]),
    )?;
    assert_eq!(
        decoder.decode("signup", Some(&record), Some(5)).await,
        Ok(Decoded::Generic(GenericEvent { event_time_ms: 5 }))
    );
    assert_eq!(
        poison(decoder.decode("signup", Some(&record), None).await),
        Poison::invalid(
            "event_time",
            "the record has no timestamp event_time field and the Kafka record has no timestamp"
        )
    );
    Ok(())
}

#[tokio::test]
async fn registry_is_asked_once_per_schema_id_and_cached_ids_decode_without_it()
-> anyhow::Result<()> {
    let registry = TestRegistry::start().await?;
    let decoder = registry.decoder(ReaderVersion::V2);
    let id = registry
        .register("ad_click", builtin("ad_click", 2))
        .await?;
    let record = framed(id, builtin("ad_click", 2), ad_click(2))?;
    let expected = Decoded::AdClick(AdClickEvent {
        advertiser_id: "adv-42".into(),
        ip_address: "203.0.113.7".into(),
        event_time_ms: EVENT_TIME_MS,
        campaign_id: Some("spring".into()),
    });
    for _ in 0..100 {
        assert_eq!(
            decoder.decode("ad_click", Some(&record), Some(1)).await,
            Ok(expected.clone())
        );
    }
    assert_eq!(decoder.registry_lookups(), 1);

    let TestRegistry { registry, _db } = registry;
    let address = registry.addr();
    // Dropping alone left the server task serving for a moment under load,
    // and the lookup below got an answer (404) instead of no registry.
    registry.stop().await;
    // Hold the freed port, so that no other test's server can take it and
    // answer the lookup below: a connection to it is closed unanswered.
    let gone = tokio::net::TcpListener::bind(address).await?;
    let _closing = tokio::spawn(async move {
        while let Ok((connection, _)) = gone.accept().await {
            drop(connection);
        }
    });
    assert_eq!(
        decoder.decode("ad_click", Some(&record), Some(1)).await,
        Ok(expected)
    );
    assert_eq!(decoder.registry_lookups(), 1);
    // A new id needs the registry, which is gone: retry later, not poison.
    let unseen = framed(id + 1, builtin("ad_click", 2), ad_click(2))?;
    let decoded = decoder.decode("ad_click", Some(&unseen), Some(1)).await;
    assert!(
        matches!(decoded, Err(DecodeError::Unavailable(_))),
        "{decoded:?}"
    );
    assert_eq!(decoder.registry_lookups(), 2);
    Ok(())
}
