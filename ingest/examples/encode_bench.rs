//! Measures ingest's Avro hot path against `schema_registry_converter`'s
//! `AvroEncoder` on the same events, in one run:
//!
//! ```sh
//! cargo run --release -p tributary-ingest --example encode_bench -- [EVENTS] [ROUNDS]
//! ```
//!
//! Both sides convert the same validated ad clicks to Avro values with the
//! same code; only the encoding differs (ingest: a prepared writer over the
//! cached schema; converter: `AvroEncoder::encode`, which looks its schema up
//! in its own cache per call). Needs Postgres (for the registry's state).
use std::{sync::Arc, time::Instant};

use apache_avro::{Schema, types::Value};
use schema_registry_converter::{
    async_impl::{avro::AvroEncoder, schema_registry::SrSettings},
    schema_registry_common::SubjectNameStrategy,
};
use tributary_common::{
    config::{KafkaArgs, RegistryArgs},
    schemas,
};
use tributary_ingest::{
    avro_json,
    config::{SchemaArgs, SchemaPolicy},
    encode::EventRecord,
    event::{ValidEvent, Validation},
    writer_schema::WriterSchemas,
};
use tributary_proto::v1::{AdClick, Event, event::Payload};
use tributary_stack::{postgres::TestDatabase, registry::RunningRegistry};

fn events(n: usize, now_ms: i64) -> Vec<ValidEvent> {
    (0..n)
        .map(|i| {
            let event = Event {
                event_time: Some(prost_types::Timestamp {
                    seconds: now_ms / 1000,
                    nanos: 0,
                }),
                payload: Some(Payload::AdClick(AdClick {
                    ip_address: format!("10.0.{}.{}", i / 250 % 250, i % 250),
                    user_agent: "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
                    referring_url: format!("https://example.com/landing/{i}"),
                    advertiser_id: format!("adv-{}", i % 100),
                    ..Default::default()
                })),
                ..Default::default()
            };
            ValidEvent::parse(
                event,
                Validation {
                    max_skew: std::time::Duration::from_secs(3600),
                    now_ms,
                },
            )
            .unwrap()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);

    let database = TestDatabase::create().await?;
    let registry = RunningRegistry::start(database.url()).await?;
    let kafka = KafkaArgs::for_brokers("unused:9092");
    let registry_args = RegistryArgs::at(registry.url());
    let cache = WriterSchemas::new(
        &registry_args,
        kafka.clone(),
        SchemaArgs {
            policy: SchemaPolicy::AutoRegister,
            pinned: Vec::new(),
            refresh: std::time::Duration::from_secs(30),
        },
    )?;
    let candidates = cache
        .get(schemas::AD_CLICK)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let writer = candidates.newest().clone();
    let converter = Arc::new(AvroEncoder::new(SrSettings::new(registry.url())));
    let strategy =
        || SubjectNameStrategy::TopicNameStrategy(kafka.event_topic(schemas::AD_CLICK), false);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let events = events(n, now_ms);
    let Schema::Record(record) = writer.schema else {
        unreachable!()
    };

    // The shared part: validated event → Avro value (as ingest's encode does).
    let to_value = |e: &ValidEvent| -> Value {
        let tributary_ingest::event::ValidPayload::AdClick(c) = e.payload() else {
            unreachable!()
        };
        let object = serde_json::json!({
            "ip_address": c.ip_address().to_string(), "user_agent": c.user_agent(), "referring_url": c.referring_url(),
            "advertiser_id": c.advertiser_id(), "metadata": c.metadata_json(), "event_time": e.event_time_ms(),
        });
        avro_json::record_value(
            record,
            &writer.names,
            object.as_object().unwrap(),
            "ad_click",
        )
        .unwrap()
    };

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Ingest consumes each validated event; the copies are made untimed.
        let copies = events.clone();
        let started = Instant::now();
        let mut bytes = 0usize;
        let mut buf = Vec::with_capacity(256);
        for e in copies {
            buf.clear();
            EventRecord::new(e)
                .encode(&candidates, &mut buf)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            bytes += buf.len();
        }
        let ours_rate = n as f64 / started.elapsed().as_secs_f64();

        let started = Instant::now();
        let mut their_bytes = 0usize;
        for e in &events {
            let Value::Record(fields) = to_value(e) else {
                unreachable!()
            };
            let fields: Vec<(&str, Value)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            their_bytes += converter.encode(fields, strategy()).await?.len();
        }
        let their_rate = n as f64 / started.elapsed().as_secs_f64();
        assert_eq!(bytes, their_bytes, "both sides must produce the same bytes");
        println!(
            "round {round}: ingest {ours_rate:>10.0} events/s   schema_registry_converter {their_rate:>10.0} events/s"
        );
        ours.push(ours_rate);
        theirs.push(their_rate);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "median of {rounds}: ingest {ours:.0} events/s, schema_registry_converter {theirs:.0} events/s, ratio {:.2}",
        ours / theirs
    );
    Ok(())
}
