//! What a fresh broker and registry need before the services start: the
//! topics, and the built-in schemas registered under their subjects.
use tributary_common::{
    config::{KafkaArgs, RegistryArgs},
    kafka, registry_client,
    schemas::{self, AD_CLICK, AGGREGATE, PRICE_TICK},
};

/// Every topic the pipeline uses: one per built-in event type, the
/// aggregates topic and the dead-letter topic.
pub fn topics(kafka: &KafkaArgs) -> Vec<String> {
    vec![
        kafka.event_topic(AD_CLICK),
        kafka.event_topic(PRICE_TICK),
        kafka.aggregates_topic.clone(),
        kafka.dead_letter_topic.clone(),
    ]
}

/// Creates the pipeline's topics with `partitions` partitions each.
pub async fn create_topics(kafka: &KafkaArgs, partitions: i32) -> anyhow::Result<Vec<String>> {
    let topics = topics(kafka);
    kafka::ensure_topics(kafka, &topics, partitions).await?;
    Ok(topics)
}

/// Waits (up to `limit`) until `topic` exists on the broker, e.g. until a
/// service started as a child process has created its output topics: a
/// consumer subscribed to a topic that does not exist yet gets
/// `UnknownTopicOrPartition` instead of waiting for it.
pub async fn wait_for_topic(
    kafka: &KafkaArgs,
    topic: &str,
    limit: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if kafka::topic_names(kafka).await?.iter().any(|t| t == topic) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "topic `{topic}` does not exist after {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// One registered schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The subject, e.g. `tributary.events.ad_click-value`.
    pub subject: String,
    /// The version in `schemas/`.
    pub version: u32,
    /// The registry's global id.
    pub id: u32,
}

/// Registers every version of every built-in schema, oldest first, under the
/// TopicNameStrategy subject of its topic, so the newest is the subject's
/// latest version. Registering again is harmless (same ids).
pub async fn register_schemas(
    kafka: &KafkaArgs,
    registry: &RegistryArgs,
) -> anyhow::Result<Vec<Registered>> {
    let settings = registry_client::settings(registry)?;
    let protection = registry_client::ReaderProtection::new(registry)?;
    let mut registered = Vec::new();
    for schema in schemas::BUILTIN {
        let topic = if schema.name == AGGREGATE {
            kafka.aggregates_topic.clone()
        } else {
            kafka.event_topic(schema.name)
        };
        let subject = schemas::value_subject(&topic);
        protection.protect(&subject).await?;
        let id = registry_client::register_avro(&settings, &subject, schema.json)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot register schemas/{}/v{}.avsc as {subject}: {e}",
                    schema.name,
                    schema.version
                )
            })?;
        registered.push(Registered {
            subject,
            version: schema.version,
            id,
        });
    }
    Ok(registered)
}
