//! Clients built against Confluent Schema Registry work unchanged: the Rust
//! `schema_registry_converter` and the Python `confluent-kafka` client.
use std::process::Command;

use apache_avro::types::Value;
use schema_registry_converter::{
    async_impl::{
        avro::{AvroDecoder, AvroEncoder},
        schema_registry::SrSettings,
    },
    schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema},
};
use serde_json::json;

use crate::client::TestRegistry;

const HEARTBEAT: &str = r#"{"type":"record","name":"Heartbeat","namespace":"tributary.test","fields":[{"name":"beat","type":"long"},{"name":"source","type":"string"}]}"#;

#[tokio::test]
async fn schema_registry_converter_registers_encodes_and_decodes() {
    let registry = TestRegistry::start().await;
    let settings = SrSettings::new(registry.url());
    let encoder = AvroEncoder::new(settings.clone());
    let decoder = AvroDecoder::new(settings);
    let supplied = SuppliedSchema::new(
        Some("tributary.test.Heartbeat".into()),
        SchemaType::Avro,
        HEARTBEAT.into(),
    );
    let strategy =
        SubjectNameStrategy::TopicNameStrategyWithSchema("heartbeat".into(), false, supplied);
    let bytes = encoder
        .encode(
            vec![
                ("beat", Value::Long(7)),
                ("source", Value::String("rust".into())),
            ],
            strategy,
        )
        .await
        .expect("encode through the registry");
    // Confluent wire format: magic byte 0, then the 4-byte id 1, then Avro.
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
    let decoded = decoder
        .decode(Some(&bytes))
        .await
        .expect("decode through the registry");
    assert_eq!(
        decoded.value,
        Value::Record(vec![
            ("beat".into(), Value::Long(7)),
            ("source".into(), Value::String("rust".into()))
        ])
    );
    assert_eq!(
        registry.get("/subjects").await.body,
        json!(["heartbeat-value"])
    );

    // A second encoder finds the registered schema by the latest version.
    let by_latest = AvroEncoder::new(SrSettings::new(registry.url()));
    let bytes = by_latest
        .encode(
            vec![
                ("beat", Value::Long(8)),
                ("source", Value::String("again".into())),
            ],
            SubjectNameStrategy::TopicNameStrategy("heartbeat".into(), false),
        )
        .await
        .expect("encode with the latest registered schema");
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
}

#[tokio::test]
async fn confluent_kafka_python_client_registers_fetches_and_round_trips() {
    let registry = TestRegistry::start().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/confluent_client.py"
    );
    let requirements = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/requirements.txt"
    );
    let url = registry.url();
    // The client is blocking; run it off the runtime that serves the registry.
    let output =
        tokio::task::spawn_blocking(move || Command::new("python3").arg(script).arg(url).output())
            .await
            .unwrap()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run python3 ({e}); install Python 3 and `pip install -r {requirements}`"
                )
            });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "confluent_client.py failed (if a module is missing: `pip install -r {requirements}`)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("round trip ok"), "stdout:\n{stdout}");
    assert_eq!(
        registry.get("/subjects").await.body,
        json!(["clicks-value"])
    );
}
