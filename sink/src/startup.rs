//! Builds the sink (database pool and migrations, registry reader, consumer,
//! dead-letter producer) and runs it until shutdown.
use std::sync::Arc;

use anyhow::Context as _;
use rdkafka::{
    consumer::{Consumer as _, StreamConsumer},
    producer::FutureProducer,
};
use sqlx::postgres::PgPoolOptions;
use tributary_common::{
    avro_reader::ReaderCache, dead_letter::DeadLetters, kafka, rebalance::RevocationLog,
    registry_client,
};

use crate::{config::SinkConfig, pipeline::Pipeline, store::Store};

/// Connects to Postgres (migrating when asked), the registry and Kafka.
pub async fn build(config: &SinkConfig) -> anyhow::Result<Pipeline> {
    // The pool connects lazily, so the sink starts (and waits, retrying)
    // while Postgres is down; only migrations need it at once.
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_lazy(&config.database_url)
        .with_context(|| {
            format!(
                "invalid database URL {}",
                tributary_common::config::redact_url(&config.database_url)
            )
        })?;
    if config.migrate {
        tributary_store::migrate(&pool)
            .await
            .context("cannot apply the sink's migrations")?;
    }
    let settings = registry_client::settings(&config.registry)?;
    let consumer: StreamConsumer<RevocationLog> =
        kafka::member_config(&config.kafka, &config.group, &config.membership)
            .create_with_context(RevocationLog::default())
            .context("cannot create the Kafka consumer")?;
    consumer
        .subscribe(&[&config.kafka.aggregates_topic])
        .context("cannot subscribe to the aggregates topic")?;
    let producer: FutureProducer = kafka::producer_config(&config.kafka).create()?;
    Ok(Pipeline {
        consumer,
        readers: ReaderCache::new(settings),
        plans: Default::default(),
        store: Store::new(pool, config.group.clone()),
        dead_letters: Arc::new(DeadLetters::new(
            producer,
            config.kafka.dead_letter_topic.clone(),
        )),
        batch_size: config.batch_size.max(1),
        batch_linger: config.batch_linger,
    })
}

/// Runs the sink until `shutdown` completes.
pub async fn run(
    config: SinkConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = tributary_common::shutdown::cancel_on(shutdown);
    let Some(pipeline) = tributary_common::shutdown::unless_stopped(&stop, build(&config)).await?
    else {
        return Ok(());
    };
    tracing::info!(group = %config.group, topic = %config.kafka.aggregates_topic, "sink running");
    pipeline.run(stop).await
}
