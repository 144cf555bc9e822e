//! A test stack starts every real component and the bootstrap prepares it the
//! way the local stack does: topics with the requested partitions, built-in
//! schemas registered with v2 as the latest version. On Tansu and on Apache
//! Kafka (their topic creation differs; README, "Kafka and Tansu differ").
use rstest::rstest;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use tributary_common::{kafka, schemas};
use tributary_stack::{TestStack, bootstrap, broker::BrokerKind};

#[rstest]
#[case::on_tansu(BrokerKind::Tansu)]
#[case::on_kafka(BrokerKind::Kafka)]
#[tokio::test]
async fn bootstrap_creates_every_topic_and_registers_every_schema_version(
    #[case] broker: BrokerKind,
) -> anyhow::Result<()> {
    let stack = TestStack::start_on(broker).await?;
    let kafka_args = stack.kafka();

    let topics = bootstrap::create_topics(&kafka_args, 4).await?;
    assert_eq!(
        topics,
        [
            "tributary.events.ad_click",
            "tributary.events.price_tick",
            "tributary.aggregates",
            "tributary.dead-letter"
        ]
    );
    let consumer: BaseConsumer = kafka::client_config(&kafka_args).create()?;
    for topic in &topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        assert_eq!(metadata.topics()[0].partitions().len(), 4, "{topic}");
    }

    let registered = bootstrap::register_schemas(&kafka_args, &stack.registry_args()).await?;
    let subjects: Vec<(&str, u32)> = registered
        .iter()
        .map(|r| (r.subject.as_str(), r.version))
        .collect();
    assert_eq!(
        subjects,
        [
            ("tributary.events.ad_click-value", 1),
            ("tributary.events.ad_click-value", 2),
            ("tributary.events.price_tick-value", 1),
            ("tributary.events.price_tick-value", 2),
            ("tributary.aggregates-value", 1),
            ("tributary.aggregates-value", 2),
            ("tributary.aggregates-value", 3),
        ]
    );
    // Every schema version has its own id (a set: dedup would only catch neighbours).
    let ids: std::collections::BTreeSet<u32> = registered.iter().map(|r| r.id).collect();
    assert_eq!(
        ids.len(),
        schemas::BUILTIN.len(),
        "every schema version has its own id"
    );

    let again = bootstrap::register_schemas(&kafka_args, &stack.registry_args()).await?;
    assert_eq!(again, registered, "registering again returns the same ids");

    let latest: serde_json::Value = reqwest::get(format!(
        "{}/subjects/tributary.events.price_tick-value/versions/latest",
        stack.registry.url()
    ))
    .await?
    .json()
    .await?;
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"], registered[3].id);
    Ok(())
}
