//! Consuming a backlog: the processor (decode, aggregate, emit) against a
//! plain rdkafka consumer reading the same records, each as a fresh
//! consumer group from the earliest offset.
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::{
    Message as _,
    consumer::{BaseConsumer, Consumer as _, StreamConsumer},
};
use tributary_common::{config::KafkaArgs, kafka};

use crate::cpu::{self, Meter};
use crate::{
    drive::RunResult,
    env::{Env, counter},
    stages::time_progress,
    stats::{Latency, rate},
};

/// How long a consumer may make no progress before the stage fails.
const STALL: Duration = Duration::from_secs(60);

/// Records in `topics` now (high watermark minus low, over all partitions).
pub async fn backlog(kafka_args: &KafkaArgs, topics: &[String]) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = kafka::client_config(kafka_args).create()?;
    let topics = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut total = 0;
        for topic in &topics {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    let (low, high) =
                        consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                    total += (high - low).max(0) as u64;
                }
            }
        }
        Ok(total)
    })
    .await?
}

fn finished(count: u64, elapsed: Duration) -> RunResult {
    RunResult {
        ok: count,
        errors: 0,
        per_second: rate(count, elapsed),
        latency: Latency::default(),
        first_error: None,
        cpu_us_per_op: Default::default(),
    }
}

/// The baseline: a plain consumer with the services' consumer settings
/// reads `target` records of `topics`, touching every payload.
pub async fn raw_consumer(
    kafka_args: &KafkaArgs,
    topics: &[String],
    target: u64,
    run: usize,
) -> anyhow::Result<RunResult> {
    let group = format!("bench-raw-consumer-{run}-{}", uuid::Uuid::new_v4().simple());
    let consumer: StreamConsumer = kafka::consumer_config(kafka_args, &group).create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    let mut count = 0u64;
    let mut bytes = 0usize;
    let mut first = None;
    while count < target {
        let message = tokio::time::timeout(STALL, consumer.recv())
            .await
            .with_context(|| format!("raw consumer: stuck at {count} of {target}"))??;
        first.get_or_insert_with(std::time::Instant::now);
        bytes += message.payload().map_or(0, <[u8]>::len);
        count += 1;
    }
    let elapsed = first.map(|t| t.elapsed()).unwrap_or_default();
    tracing::debug!(count, bytes, ?elapsed, "raw consumer done");
    Ok(finished(count, elapsed))
}

/// The processor as a process of its own (a fresh group), until its
/// records counter reaches `target`; then stopped with SIGTERM.
pub async fn processor(env: &mut Env, target: u64, run: usize) -> anyhow::Result<RunResult> {
    let group = format!("bench-processor-{run}-{}", uuid::Uuid::new_v4().simple());
    let service = env
        .processor(
            &format!("processor-backlog-{run}"),
            &[
                ("TRIBUTARY_PROCESSOR_GROUP", &group),
                ("TRIBUTARY_AGGREGATES_TOPIC", "bench.processor-aggregates"),
            ],
        )
        .await?;
    let broker = Meter::new().with("broker", env.broker.pid()).start();
    let elapsed = time_progress("processor", target, STALL, || {
        counter(&service, "tributary_processor_records_total")
    })
    .await;
    // Its whole life (start-up included) is charged to the backlog.
    let processor = service.process.id().and_then(cpu::cpu_seconds);
    env.stop(service).await?;
    let mut result = finished(target, elapsed?);
    result.cpu_us_per_op = broker.per_operation(target);
    if let Some(seconds) = processor {
        result
            .cpu_us_per_op
            .insert("processor".into(), seconds * 1e6 / target.max(1) as f64);
    }
    Ok(result)
}
