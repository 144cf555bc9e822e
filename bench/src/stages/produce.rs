//! Producing: a plain rdkafka producer with ingest's producer settings and
//! pre-encoded records (the baseline), against the SDK's streaming sender
//! through ingest, in closed loop (throughput) and open loop at one offered
//! rate (latency).
use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tributary_client::{Client, Outcome, Sender, SenderOptions, proto};
use tributary_common::{config::KafkaArgs, kafka};

use crate::{
    cpu::Meter,
    drive::{self, RunResult},
    workload::{self, RawRecord},
};

/// ingest's producer: the shared settings and its delivery timeout.
pub fn raw_producer(kafka_args: &KafkaArgs) -> anyhow::Result<FutureProducer> {
    let mut config = kafka::producer_config(kafka_args);
    config.set("message.timeout.ms", "10000");
    config
        .create()
        .context("cannot create the baseline producer")
}

/// Pre-encoded records, built before a run.
pub fn raw_records(count: usize, schema_id: u32) -> anyhow::Result<Arc<Vec<RawRecord>>> {
    (0..count)
        .map(|i| workload::raw_ad_click(i, schema_id))
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Arc::new)
}

/// Produces `record` and awaits its delivery: the raw producer's one operation.
pub(crate) async fn send_raw(
    producer: &FutureProducer,
    topic: &str,
    record: &RawRecord,
) -> anyhow::Result<()> {
    let headers = record
        .headers
        .iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            })
        });
    producer
        .send(
            FutureRecord::to(topic)
                .key(&record.key)
                .payload(&record.payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map(drop)
        .map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))
}

/// The baseline, closed loop: `records` with at most `window` in flight.
pub async fn raw_closed(
    producer: &FutureProducer,
    topic: &str,
    records: &[RawRecord],
    window: usize,
) -> RunResult {
    drive::closed_loop(records.len(), window, |i| {
        send_raw(producer, topic, &records[i])
    })
    .await
}

/// The baseline, closed loop for throughput: `records` over and over with
/// at most `window` in flight, timed for `duration` after `warm_up`.
pub async fn raw_closed_for(
    producer: &FutureProducer,
    topic: &str,
    records: &[RawRecord],
    window: usize,
    (warm_up, duration): (Duration, Duration),
    meter: &Meter,
) -> RunResult {
    drive::closed_loop_for(warm_up, duration, window, meter, |i| {
        send_raw(producer, topic, &records[i % records.len()])
    })
    .await
}

/// The baseline, open loop at `rate` records/s for `duration`.
pub async fn raw_open(
    producer: &FutureProducer,
    topic: &str,
    records: Arc<Vec<RawRecord>>,
    rate: u64,
    duration: Duration,
) -> RunResult {
    let producer = producer.clone();
    let topic = topic.to_string();
    drive::open_loop(rate, duration, move |i| {
        let (producer, topic, records) = (producer.clone(), topic.clone(), records.clone());
        async move { send_raw(&producer, &topic, &records[i % records.len()]).await }
    })
    .await
}

/// A streaming sender whose window is `window` events.
pub fn sender(client: &Client, window: usize) -> Arc<Sender> {
    Arc::new(client.sender(SenderOptions {
        window,
        ..SenderOptions::default()
    }))
}

async fn send_event(sender: &Sender, event: proto::Event) -> anyhow::Result<()> {
    match sender.send(event).await?.await? {
        Outcome::Acked(_) => Ok(()),
        Outcome::Rejected(error) => anyhow::bail!("rejected: {}", error.message),
    }
}

/// Streaming ingest, closed loop: `events` (a fixed number) through the SDK senders (one
/// stream each, events dealt round-robin), at most `window` unanswered in all.
pub async fn stream_closed(
    senders: &[Arc<Sender>],
    events: Vec<proto::Event>,
    window: usize,
) -> RunResult {
    let mut events: Vec<Option<proto::Event>> = events.into_iter().map(Some).collect();
    let count = events.len();
    drive::closed_loop(count, window, |i| {
        let event = events[i].take().expect("each event is sent once");
        send_event(&senders[i % senders.len()], event)
    })
    .await
}

/// Streaming ingest, closed loop: ad clicks through the SDK senders (one
/// stream each, dealt round-robin), at most `window` unanswered in all, timed
/// for `duration` after `warm_up`.
pub async fn stream_closed_for(
    senders: &[Arc<Sender>],
    window: usize,
    (warm_up, duration): (Duration, Duration),
    meter: &Meter,
) -> RunResult {
    drive::closed_loop_for(warm_up, duration, window, meter, |i| {
        send_event(&senders[i % senders.len()], workload::ad_click(i))
    })
    .await
}

/// Streaming ingest, open loop at `rate` events/s for `duration`.
pub async fn stream_open(sender: Arc<Sender>, rate: u64, duration: Duration) -> RunResult {
    drive::open_loop(rate, duration, move |i| {
        let sender = sender.clone();
        let event = workload::ad_click(i);
        async move { send_event(&sender, event).await }
    })
    .await
}
