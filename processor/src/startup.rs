//! Builds the processor (registry lookups, aggregate schema, consumer and
//! producer) and runs it until shutdown.
use std::sync::Arc;

use anyhow::Context as _;
use rdkafka::{
    consumer::{Consumer as _, StreamConsumer},
    producer::FutureProducer,
};
use tributary_common::{
    kafka,
    registry_client::{self, ReaderProtection},
    retry, schemas,
};

use tributary_common::{dead_letter::DeadLetters, rebalance::RevocationLog};

use crate::{
    aggregate_record::AggregateEncoder,
    changelog::Changelog,
    closed_store::ClosedStore,
    config::ProcessorConfig,
    decode::{Decoder, ReaderVersion},
    pipeline::Pipeline,
};

/// The largest allocation a decoded record may ask for.
const MAX_AVRO_ALLOCATION: usize = 16 * 1024 * 1024;

/// How much longer than the retention changelog records are kept: a
/// window's state is needed until the retention has passed since its end,
/// plus the record-time disorder the windows allow for.
const CHANGELOG_MARGIN: std::time::Duration = std::time::Duration::from_secs(3600);

/// Connects to the registry and Kafka and subscribes to every event topic.
pub async fn build(config: &ProcessorConfig) -> anyhow::Result<Pipeline> {
    // A corrupt length prefix in a poison record must not make apache-avro
    // allocate its 512 MiB default before failing; no record is this large.
    apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION);
    let settings = registry_client::settings(&config.registry)?;
    let aggregate = schemas::latest(schemas::AGGREGATE).expect("built-in aggregate schema");
    let subject = schemas::value_subject(&config.kafka.aggregates_topic);
    // The processor reads the built-in event types, and the sink the
    // aggregates, with built-in reader schemas: no version either cannot
    // read may be registered.
    // A processor started while the registry is away (restarting, not yet
    // up) waits for it, as it does while running; a refusal stops it.
    let protection = ReaderProtection::new(&config.registry)?;
    for protected in [
        config.kafka.event_topic(schemas::AD_CLICK),
        config.kafka.event_topic(schemas::PRICE_TICK),
        config.kafka.aggregates_topic.clone(),
    ]
    .map(|topic| schemas::value_subject(&topic))
    {
        retry::while_transient(
            "schema registry unavailable at start-up",
            registry_client::is_unavailable,
            || protection.protect(&protected),
        )
        .await
        .with_context(|| format!("cannot declare the compatibility level of {protected}"))?;
    }
    let schema_id = retry::while_transient(
        "schema registry unavailable at start-up",
        registry_client::is_unavailable,
        || async {
            registry_client::register_avro(&settings, &subject, aggregate.json)
                .await
                .map_err(anyhow::Error::new)
        },
    )
    .await
    .with_context(|| format!("cannot register the aggregate schema under {subject}"))?;
    let encoder = AggregateEncoder::new(schema_id)?;
    let outputs = [
        config.kafka.aggregates_topic.clone(),
        config.kafka.dead_letter_topic.clone(),
    ];
    kafka::ensure_topics(&config.kafka, &outputs, config.partitions)
        .await
        .context("cannot create the aggregates and dead-letter topics")?;

    let mut consumer_config =
        kafka::member_config(&config.kafka, &config.group, &config.membership);
    // New event types (schema-driven) get topics at runtime; find them soon.
    consumer_config.set("topic.metadata.refresh.interval.ms", "5000");
    let consumer: StreamConsumer<RevocationLog> = consumer_config
        .create_with_context(RevocationLog::default())
        .context("cannot create the Kafka consumer")?;
    let pattern = format!("^{}.*", regex_escape(&config.kafka.topic_prefix));
    consumer
        .subscribe(&[&pattern])
        .context("cannot subscribe to the event topics")?;
    let producer: FutureProducer = kafka::producer_config(&config.kafka).create()?;
    let dead_letters = Arc::new(DeadLetters::new(
        producer.clone(),
        config.kafka.dead_letter_topic.clone(),
    ));
    Ok(Pipeline {
        consumer,
        decoder: Decoder::new(settings, ReaderVersion::Latest),
        producer,
        encoder,
        dead_letters,
        topic_prefix: config.kafka.topic_prefix.clone(),
        aggregates_topic: config.kafka.aggregates_topic.clone(),
        spec: config.window_spec(),
        emit_interval: config.emit_interval,
        closed_store: ClosedStore::create(config.state_dir.as_deref())?,
        changelog_producer: Changelog::producer_config(&config.kafka)
            .create()
            .context("cannot create the changelog producer")?,
        changelog: Changelog::new(
            config.kafka.clone(),
            &config.group,
            config.event_time.max_event_time_skew + CHANGELOG_MARGIN,
        )?,
    })
}

/// Runs the processor until `shutdown` completes.
pub async fn run(
    config: ProcessorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = tributary_common::shutdown::cancel_on(shutdown);
    let Some(pipeline) = tributary_common::shutdown::unless_stopped(&stop, build(&config)).await?
    else {
        return Ok(());
    };
    tracing::info!(group = %config.group, pattern = %config.kafka.topic_prefix, "processor running");
    pipeline.run(stop).await
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}
