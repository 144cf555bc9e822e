//! Consuming a backlog: the processor (decode, aggregate, emit) against a
//! plain rdkafka consumer reading the same records, each as a fresh
//! consumer group from the earliest offset.
//!
//! Both are measured over the same kind of interval: from [`WARM_UP`] after
//! their first record (group join, first fetches and, for the processor,
//! start-up and its caches are behind them) until they have read the whole
//! backlog. Rate and CPU per record are of that interval only: records read
//! in it, and the CPU time of each metered process at its start and end.
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::{
    Message as _,
    consumer::{BaseConsumer, Consumer as _, StreamConsumer},
    producer::FutureProducer,
};
use tributary_common::{config::KafkaArgs, kafka};

use crate::cpu::{Meter, Reading};
use crate::{
    drive::RunResult,
    env::{Env, counter},
    stages::{POLL_MIN, next_poll, produce},
    stats::{Latency, rate},
    workload,
};

/// How long a consumer may make no progress before the stage fails.
const STALL: Duration = Duration::from_secs(60);

/// How long after its first record a consumer's measured interval starts.
pub const WARM_UP: Duration = Duration::from_secs(1);

/// The shortest measured interval worth quoting; a shorter one is reported
/// with a warning that the backlog is too small for this consumer.
pub const MIN_MEASURED: Duration = Duration::from_secs(5);

/// Records built and produced at a time while filling the backlog (built
/// before they are sent, so memory stays bounded).
const FILL_CHUNK: usize = 50_000;

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

/// Produces fresh ad clicks (each with an idempotency key of its own, as
/// ingest would write them) to `topic`, [`FILL_CHUNK`] records at a time
/// with at most `window` in flight, until `topics` hold at least `target`
/// records. Returns the backlog then.
pub async fn fill_backlog(
    kafka_args: &KafkaArgs,
    producer: &FutureProducer,
    topic: &str,
    topics: &[String],
    schema_id: u32,
    target: u64,
    window: usize,
) -> anyhow::Result<u64> {
    let mut next = 0;
    loop {
        let now = backlog(kafka_args, topics).await?;
        if now >= target {
            return Ok(now);
        }
        let count = FILL_CHUNK.min((target - now) as usize).max(1);
        let records = (next..next + count)
            .map(|i| workload::raw_ad_click(i, schema_id))
            .collect::<anyhow::Result<Vec<_>>>()?;
        next += count;
        let sent = produce::raw_closed(producer, topic, &records, window).await;
        if let Some(error) = sent.first_error {
            anyhow::bail!("filling the consume backlog: {error}");
        }
    }
}

/// The measured interval of one consumer: opened [`WARM_UP`] after its
/// first record, closed when it has read the backlog.
struct Interval {
    meter: Meter,
    /// When the first record was seen, with a CPU reading from then.
    first: Option<(Instant, Reading)>,
    opened: Option<(Instant, u64, Reading)>,
}

impl Interval {
    fn new(meter: Meter) -> Self {
        Self {
            meter,
            first: None,
            opened: None,
        }
    }

    /// Notes that `count` records have been read by now.
    fn progress(&mut self, count: u64) {
        if count == 0 || self.opened.is_some() {
            return;
        }
        let meter = &self.meter;
        let (first, _) = self
            .first
            .get_or_insert_with(|| (Instant::now(), meter.start()));
        if first.elapsed() >= WARM_UP {
            self.opened = Some((Instant::now(), count, self.meter.start()));
        }
    }

    /// The result once `count` records (the whole backlog) are read. A
    /// consumer that finished within its warm-up, or whose interval opened
    /// only as it finished (nothing left to time), is measured from its
    /// first record (with a warning: the backlog is too small).
    fn finish(self, what: &str, count: u64) -> RunResult {
        let opened = self.opened.filter(|(_, at_start, _)| *at_start < count);
        let (since, at_start, reading) = match (opened, self.first) {
            (Some(opened), _) => opened,
            (None, Some((first, reading))) => (first, 0, reading),
            (None, None) => (Instant::now(), 0, self.meter.start()),
        };
        let elapsed = since.elapsed();
        let measured = count.saturating_sub(at_start);
        if elapsed < MIN_MEASURED {
            tracing::warn!(
                what,
                ?elapsed,
                measured,
                "measured interval shorter than {MIN_MEASURED:?}: the backlog is too small for a steady-state rate"
            );
        }
        RunResult {
            ok: measured,
            errors: 0,
            per_second: rate(measured, elapsed),
            latency: Latency::default(),
            first_error: None,
            cpu_us_per_op: reading.per_operation(measured),
            waited_us_per_op: reading.waited_per_operation(measured),
        }
    }
}

/// The baseline: a plain consumer with the services' consumer settings
/// reads `target` records of `topics`, touching every payload; the CPU of
/// `meter`'s processes (this one and the broker) is charged to the records
/// of the measured interval.
pub async fn raw_consumer(
    kafka_args: &KafkaArgs,
    topics: &[String],
    target: u64,
    run: usize,
    meter: Meter,
) -> anyhow::Result<RunResult> {
    let group = format!("bench-raw-consumer-{run}-{}", uuid::Uuid::new_v4().simple());
    let consumer: StreamConsumer = kafka::consumer_config(kafka_args, &group).create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    let mut interval = Interval::new(meter);
    let mut count = 0u64;
    let mut bytes = 0usize;
    while count < target {
        let message = tokio::time::timeout(STALL, consumer.recv())
            .await
            .with_context(|| format!("raw consumer: stuck at {count} of {target}"))??;
        bytes += message.payload().map_or(0, <[u8]>::len);
        count += 1;
        interval.progress(count);
    }
    tracing::debug!(count, bytes, "raw consumer done");
    Ok(interval.finish("raw consumer", count))
}

/// The processor as a process of its own (a fresh group), until its
/// records counter reaches `target`; then stopped with SIGTERM. The CPU of
/// the processor and the broker is charged to the records of the measured
/// interval.
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
    let meter = Meter::new()
        .with("processor", service.process.id())
        .with("broker", env.broker.pid());
    let mut interval = Interval::new(meter);
    let (mut last, mut last_change) = (0, Instant::now());
    let mut first_moved: Option<(Instant, u64)> = None;
    let count = loop {
        let now = counter(&service, "tributary_processor_records_total").await?;
        interval.progress(now);
        if now > 0 && first_moved.is_none() {
            first_moved = Some((Instant::now(), now));
        }
        if now >= target {
            break now;
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        } else if last_change.elapsed() > STALL {
            anyhow::bail!("processor: stuck at {now} of {target} for {STALL:?}");
        }
        let wait = first_moved.map_or(POLL_MIN, |(t, from)| {
            next_poll(from, now, target, t.elapsed())
        });
        tokio::time::sleep(wait).await;
    };
    let result = interval.finish("processor", count);
    env.stop(service).await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_interval_that_opens_only_as_the_consumer_finishes_is_timed_from_its_first_record() {
        // The backlog is read before the warm-up ends but first seen after
        // it: nothing is left to time from the warm-up's end.
        let mut interval = Interval::new(Meter::new());
        interval.progress(10);
        tokio::time::sleep(WARM_UP).await;
        interval.progress(4_000);
        let result = interval.finish("test", 4_000);
        assert_eq!(result.ok, 4_000, "{result:?}");
        assert!(result.per_second > 0.0, "{result:?}");
    }

    #[tokio::test]
    async fn an_interval_opened_mid_backlog_times_only_what_follows() {
        let mut interval = Interval::new(Meter::new());
        interval.progress(10);
        tokio::time::sleep(WARM_UP).await;
        interval.progress(1_000);
        let result = interval.finish("test", 4_000);
        assert_eq!(result.ok, 3_000, "{result:?}");
    }
}
