//! Producing: a plain rdkafka producer with ingest's producer settings and
//! pre-encoded records (the baseline), against the SDK's streaming sender
//! through ingest, in closed loop (throughput) and open loop at an offered
//! rate (latency), and streaming ingest's maximum sustained rate (the open
//! loop's second rate is half of it).
use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tributary_client::{Client, Outcome, Sender, SenderOptions, proto};
use tributary_common::{config::KafkaArgs, kafka};

use crate::{
    config::Sizes,
    cpu::Meter,
    drive::{self, OpenLoop, RunResult},
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
) -> OpenLoop {
    let producer = producer.clone();
    let topic = topic.to_string();
    drive::open_loop_run(rate, duration, move |i| {
        let (producer, topic, records) = (producer.clone(), topic.clone(), records.clone());
        async move { send_raw(&producer, &topic, &records[i % records.len()]).await }
    })
    .await
}

/// A streaming sender with the window and linger of `sizes`.
pub fn sender(client: &Client, sizes: &Sizes) -> Arc<Sender> {
    Arc::new(client.sender(SenderOptions {
        window: sizes.window,
        linger: sizes.linger,
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

/// Streaming ingest, open loop at `rate` events/s for `duration`, the
/// events dealt round robin over `senders` (one stream each).
pub async fn stream_open(senders: &[Arc<Sender>], rate: u64, duration: Duration) -> OpenLoop {
    let senders = senders.to_vec();
    drive::open_loop_run(rate, duration, move |i| {
        // Round robin: each stream takes its share of the offered rate.
        let sender = senders[i % senders.len()].clone();
        let event = workload::ad_click(i);
        async move { send_event(&sender, event).await }
    })
    .await
}

/// Streaming ingest's maximum sustained rate: the highest offered rate, at
/// most `ceiling` (the closed loop's events/s), at which an open loop of
/// `probe` keeps up ([`OpenLoop::kept_up`] within `bound`: nothing failed,
/// the driver started nothing more than `bound` late, and neither the p99
/// ack latency nor the last event's exceeds `bound`, so no backlog built
/// up; a rate beyond what the stack sustains builds one that grows for the
/// whole probe, the window full and the rest waiting for room), found by
/// [`search_sustained`]. Returns the rate, `None` when no probe kept up, and
/// every probe, each with the CPU `meter` read over it.
pub async fn max_sustained_rate(
    senders: &[Arc<Sender>],
    ceiling: u64,
    probe: Duration,
    bound: Duration,
    meter: &Meter,
) -> (Option<u64>, Vec<(OpenLoop, bool)>) {
    search_sustained(ceiling, |rate| async move {
        let reading = meter.start();
        let mut run = stream_open(senders, rate, probe).await;
        run.result.cpu_us_per_op = reading.per_operation(run.result.ok);
        run.result.waited_us_per_op = reading.waited_per_operation(run.result.ok);
        let kept_up = run.kept_up(bound);
        eprintln!(
            "[bench]   probe {}: {}; CPU {}",
            if kept_up { "kept up" } else { "fell behind" },
            run.summary(),
            cores(&run)
        );
        (run, kept_up)
    })
    .await
}

/// Most probes [`search_sustained`] makes.
pub const MAX_PROBES: usize = 8;

/// The search of [`max_sustained_rate`]: `probe` at `ceiling`, then 15 %
/// less each time until one keeps up, then once halfway back up to the
/// lowest rate that fell behind; at most [`MAX_PROBES`] probes. Returns the
/// highest rate that kept up (`None` when none did) and every probe's
/// outcome, in order.
pub async fn search_sustained<T, F, Fut>(
    ceiling: u64,
    mut probe: F,
) -> (Option<u64>, Vec<(T, bool)>)
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = (T, bool)>,
{
    const STEP: f64 = 0.85;
    let mut probes = Vec::new();
    let mut rate = ceiling.max(1);
    let mut failed: Option<u64> = None;
    let mut sustained = None;
    while probes.len() < MAX_PROBES {
        let (outcome, kept_up) = probe(rate).await;
        probes.push((outcome, kept_up));
        if kept_up {
            sustained = Some(rate);
            break;
        }
        failed = Some(rate);
        rate = ((rate as f64 * STEP) as u64).max(1);
    }
    if let (Some(kept), Some(failed)) = (sustained, failed)
        && probes.len() < MAX_PROBES
    {
        let between = (kept + failed) / 2;
        let (outcome, kept_up) = probe(between).await;
        probes.push((outcome, kept_up));
        if kept_up {
            sustained = Some(between);
        }
    }
    (sustained, probes)
}

/// The CPU of each metered process over `run`, in cores (CPU seconds per
/// second of the schedule), then the time its threads waited for a CPU, in
/// the same unit, for the progress log.
pub fn cores(run: &OpenLoop) -> String {
    let in_cores = |per_op: &std::collections::BTreeMap<String, f64>| {
        let mut parts: Vec<String> = per_op
            .iter()
            .map(|(process, us)| format!("{process} {:.2}", us * run.rate as f64 / 1e6))
            .collect();
        let total: f64 = per_op
            .iter()
            .filter(|(process, _)| *process != crate::cpu::STEAL)
            .map(|(_, us)| us)
            .sum::<f64>()
            * run.rate as f64
            / 1e6;
        parts.push(format!("total of the processes {total:.2} cores"));
        parts.join(", ")
    };
    format!(
        "{}; waited for a CPU: {}",
        in_cores(&run.result.cpu_us_per_op),
        in_cores(&run.result.waited_us_per_op)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search against a stack that keeps up with at most `capacity`:
    /// the rate found and the rates probed.
    async fn search(ceiling: u64, capacity: u64) -> (Option<u64>, Vec<u64>) {
        let (found, probes) =
            search_sustained(ceiling, |rate| async move { (rate, rate <= capacity) }).await;
        (found, probes.into_iter().map(|(rate, _)| rate).collect())
    }

    #[tokio::test]
    async fn a_ceiling_that_keeps_up_is_the_maximum() {
        assert_eq!(search(1000, 1000).await, (Some(1000), vec![1000]));
    }

    #[tokio::test]
    async fn the_search_steps_down_then_tries_halfway_back_up() {
        // 1000 and 850 fall behind, 722 keeps up, then (722 + 850) / 2.
        assert_eq!(
            search(1000, 800).await,
            (Some(786), vec![1000, 850, 722, 786])
        );
        assert_eq!(
            search(1000, 750).await,
            (Some(722), vec![1000, 850, 722, 786])
        );
    }

    #[tokio::test]
    async fn no_probe_keeping_up_is_no_maximum() {
        let (found, probes) = search(1000, 10).await;
        assert_eq!(found, None);
        assert_eq!(probes.len(), MAX_PROBES);
        assert!(probes.windows(2).all(|w| w[1] < w[0]), "{probes:?}");
    }

    #[tokio::test]
    async fn keeping_up_at_the_last_probe_leaves_no_room_to_go_back_up() {
        // 1000 × 0.85^7 rounded down step by step: the eighth probe, 318.
        let (found, probes) = search(1000, 320).await;
        assert_eq!(probes.len(), MAX_PROBES);
        assert_eq!(found, probes.last().copied());
        assert!(found.is_some_and(|rate| rate <= 320));
    }
}
