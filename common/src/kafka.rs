//! Kafka client settings, written once for every service: the durable
//! producer (idempotent, acks=all, batched, compressed), the consumer that
//! commits only what it has finished, and topic creation.
use std::time::Duration;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::RDKafkaErrorCode,
};
use thiserror::Error;

use crate::config::KafkaArgs;

/// A Kafka administrative operation that failed.
#[derive(Debug, Error)]
pub enum KafkaSetupError {
    /// The admin client could not be created or the request failed as a whole.
    #[error("kafka admin request failed: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The broker refused to create a topic.
    #[error("cannot create topic `{topic}`: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// Bootstrap servers plus the pass-through properties (SASL, TLS, ...).
pub fn client_config(args: &KafkaArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &args.brokers);
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    config
}

/// The producer every service uses: an acknowledged record is durable and
/// written once per send (idempotence, acks=all), records are batched
/// (linger) and compressed. Pass-through properties win over these defaults.
pub fn producer_config(args: &KafkaArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "30000");
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    config
}

/// A consumer in `group` that starts from the earliest offset when the group
/// has none and never commits by itself: services commit (or store) offsets
/// only after the work covering them is durable. The short session timeout
/// makes group joins take seconds instead of tens of seconds.
pub fn consumer_config(args: &KafkaArgs, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("isolation.level", "read_uncommitted");
    for (key, value) in &args.properties {
        config.set(key, value);
    }
    config
}

/// Creates each topic with `partitions` partitions unless it already exists.
pub async fn ensure_topics(
    args: &KafkaArgs,
    topics: &[String],
    partitions: i32,
) -> Result<(), KafkaSetupError> {
    let admin: AdminClient<DefaultClientContext> = client_config(args).create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new_topics, &options).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaSetupError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}
