//! The changelog of closed windows: every final (or corrected) state of a
//! group in a window, produced to `{group}.windows.{event type}` in the
//! partition of the event topic it came from, before the source offsets it
//! covers are committed (Kafka Streams' changelog topics).
//!
//! The topic has the source topic's partition count, is compacted and
//! deleted after the retention, so it holds about one record per group and
//! window still inside the retention. A processor that takes over a
//! partition restores that partition's closed windows from it into its
//! [`ClosedStore`](crate::closed_store::ClosedStore) before handling the
//! partition's first record.
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
};
use tokio_util::sync::CancellationToken;
use tributary_common::{config::KafkaArgs, kafka, retry};

use crate::{closed_store::PartitionStore, window::Closing};

/// How long a restore (its retries included) may take before the processor
/// gives up (and exits, to be restarted) rather than count on a partial state.
/// Well inside the consumer's `max.poll.interval.ms` (5 minutes): the main
/// consumer is not polled while a partition is restored.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);

/// Records applied to the store per transaction during a restore.
const RESTORE_BATCH: usize = 10_000;

/// The largest changelog record: a group's state holds every idempotency
/// key and distinct address of its window, about 40 bytes per event, so
/// 16 MiB keeps a window of some 400,000 events of one group (librdkafka's
/// and Kafka's default limit of 1 MB would stop at about 25,000).
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// The changelog topics of one processor group.
pub struct Changelog {
    kafka: KafkaArgs,
    group: String,
    /// How long a changelog record is kept (the retention plus a margin).
    retention: Duration,
    /// Reads changelog partitions (one at a time, by assignment). Replaced
    /// by a new client after a failed attempt (see [`Changelog::restore`]).
    reader: Mutex<Arc<BaseConsumer>>,
    /// Changelog topics known to exist: a restore then costs one offsets
    /// request when there is nothing to read.
    ensured: Mutex<HashSet<String>>,
}

/// One changelog record's key: the group and its window.
#[derive(serde::Serialize, serde::Deserialize)]
struct Key(String, i64, i64);

impl Changelog {
    /// The changelog of consumer group `group`; records are kept for
    /// `retention`.
    pub fn new(kafka: KafkaArgs, group: &str, retention: Duration) -> anyhow::Result<Self> {
        let reader = Self::new_reader(&kafka, group)?;
        Ok(Self {
            kafka,
            group: group.to_string(),
            retention,
            reader: Mutex::new(reader),
            ensured: Mutex::default(),
        })
    }

    fn new_reader(kafka: &KafkaArgs, group: &str) -> anyhow::Result<Arc<BaseConsumer>> {
        let reader: BaseConsumer = kafka::client_config(kafka)
            .set("group.id", format!("{group}.restore"))
            .set("enable.auto.commit", "false")
            // Retention may delete the first records mid-restore.
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true")
            .set("fetch.message.max.bytes", MAX_RECORD_BYTES.to_string())
            .create()
            .context("cannot create the changelog reader")?;
        Ok(Arc::new(reader))
    }

    fn reader(&self) -> Arc<BaseConsumer> {
        self.reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Starts over with a new reader, whose metadata cache is empty.
    ///
    /// librdkafka keeps what a metadata response said about a topic until
    /// `metadata.max.age.ms` (15 minutes) passes, including that it has no
    /// such partition, and answers offset requests from that cache. On
    /// Apache Kafka a changelog created by the other processor a moment
    /// earlier can be missing from the broker's first metadata answer (the
    /// scale-out test on Kafka saw every retry of a restore fail with
    /// `UnknownPartition` for over a minute, while the other processor had
    /// restored the same topic's other partitions); a new client asks again.
    fn renew_reader(&self) {
        match Self::new_reader(&self.kafka, &self.group) {
            Ok(reader) => {
                *self
                    .reader
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = reader;
            }
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "cannot renew the changelog reader"
            ),
        }
    }

    /// The changelog producer: the services' producer settings, with
    /// records up to [`MAX_RECORD_BYTES`].
    pub fn producer_config(kafka: &KafkaArgs) -> rdkafka::ClientConfig {
        let mut config = kafka::producer_config(kafka);
        config.set("message.max.bytes", MAX_RECORD_BYTES.to_string());
        config
    }

    /// The changelog topic of `event_type`.
    pub fn topic(&self, event_type: &str) -> String {
        format!("{}.windows.{event_type}", self.group)
    }

    /// The key and value of `closing`'s record.
    pub fn record(closing: &Closing) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let key = Key(
            closing.group_key.clone(),
            closing.window_start_ms,
            closing.window_end_ms,
        );
        Ok((
            serde_json::to_vec(&key)?,
            serde_json::to_vec(&closing.state)?,
        ))
    }

    /// Creates the changelog topic of `event_type` (with as many partitions
    /// as `source_topic`) unless it exists, and replaces `store`'s rows with
    /// `partition`'s records. Returns how many records were read, or `None`
    /// when `stop` is cancelled first. A broker that is not ready (a topic
    /// just created has no leader yet, a broker restarting) is retried with
    /// the services' backoff, with a new reader each time, for up to
    /// [`RESTORE_TIMEOUT`].
    pub async fn restore(
        &self,
        source_topic: &str,
        event_type: &str,
        partition: i32,
        store: &PartitionStore,
        stop: &CancellationToken,
    ) -> anyhow::Result<Option<usize>> {
        let started = Instant::now();
        let deadline = started + RESTORE_TIMEOUT;
        let restored = retry::until_stopped(
            "cannot restore closed windows yet",
            stop,
            |_| Instant::now() < deadline,
            || async {
                let attempt = self
                    .try_restore(source_topic, event_type, partition, store, deadline)
                    .await;
                if attempt.is_err() && Instant::now() < deadline {
                    self.renew_reader(); // for the next attempt
                }
                attempt
            },
        )
        .await;
        if let Some(Ok(records)) = &restored {
            tracing::info!(
                changelog = %self.topic(event_type),
                partition,
                records,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "closed windows restored"
            );
        }
        restored.transpose()
    }

    /// One attempt of [`Changelog::restore`], to be done by `deadline`.
    async fn try_restore(
        &self,
        source_topic: &str,
        event_type: &str,
        partition: i32,
        store: &PartitionStore,
        deadline: Instant,
    ) -> anyhow::Result<usize> {
        let topic = self.topic(event_type);
        let known = self
            .ensured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&topic);
        if !known {
            self.ensure_topic(source_topic, &topic).await?;
        }
        let store = store.clone();
        let reader = self.reader();
        tokio::task::spawn_blocking(move || {
            let read = read_partition(&reader, &topic, partition, &store, deadline);
            // Stop fetching it, whatever happened.
            let _ = reader.unassign();
            read
        })
        .await?
    }

    /// Creates `topic`, the changelog of `source_topic`, with as many
    /// partitions, unless it exists.
    async fn ensure_topic(&self, source_topic: &str, topic: &str) -> anyhow::Result<()> {
        let reader = self.reader();
        let source = source_topic.to_string();
        let partitions = tokio::task::spawn_blocking(move || {
            let metadata = reader.fetch_metadata(Some(&source), Duration::from_secs(10))?;
            Ok::<_, rdkafka::error::KafkaError>(
                metadata
                    .topics()
                    .first()
                    .map_or(0, |t| t.partitions().len()),
            )
        })
        .await?
        .with_context(|| format!("cannot read the partitions of {source_topic}"))?;
        let partitions = i32::try_from(partitions.max(1))?;
        let retention_ms = self.retention.as_millis().to_string();
        let max_bytes = MAX_RECORD_BYTES.to_string();
        kafka::ensure_topics_configured(
            &self.kafka,
            &[topic.to_string()],
            partitions,
            &[
                ("cleanup.policy", "compact,delete"),
                ("retention.ms", &retention_ms),
                ("max.message.bytes", &max_bytes),
            ],
        )
        .await
        .with_context(|| format!("cannot create the changelog topic {topic}"))?;
        self.ensured
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(topic.to_string());
        Ok(())
    }
}

/// Reads `topic`/`partition` from its first to its last record into
/// `store`, by `deadline`.
fn read_partition(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    store: &PartitionStore,
    deadline: Instant,
) -> anyhow::Result<usize> {
    store.clear()?;
    let (low, high) = match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
        Ok(offsets) => offsets,
        Err(e) => {
            // What the broker says now, for the log: a stale cache or a
            // topic with fewer partitions than its source.
            let partitions = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len()));
            return Err(anyhow::Error::new(e).context(format!(
                "cannot read the offsets of {topic}/{partition} (the broker lists {} partitions of it)",
                partitions.map_or_else(|| "no".to_string(), |n| n.to_string())
            )));
        }
    };
    if high <= low {
        return Ok(0);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
    consumer.assign(&assignment)?;
    let (mut next, mut read) = (low, 0);
    let mut batch = Vec::with_capacity(RESTORE_BATCH);
    while next < high {
        anyhow::ensure!(
            Instant::now() < deadline,
            "restoring {topic}/{partition} took longer than {RESTORE_TIMEOUT:?} (at offset {next} of {high})"
        );
        let message = match consumer.poll(Duration::from_millis(500)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(message) => message.with_context(|| format!("cannot read {topic}/{partition}"))?,
        };
        if message.topic() != topic || message.partition() != partition {
            continue; // left over from an earlier assignment of the reader
        }
        next = message.offset() + 1;
        read += 1;
        // Only the processor writes here; a record it cannot read is not
        // one of its states, so it is skipped rather than stopping the
        // partition for good.
        let Some(key) = message
            .key()
            .and_then(|k| serde_json::from_slice::<Key>(k).ok())
        else {
            tracing::warn!(
                topic,
                partition,
                offset = message.offset(),
                "skipping a changelog record whose key is not a group and window"
            );
            continue;
        };
        batch.push((key.0, key.1, key.2, message.payload().map(<[u8]>::to_vec)));
        if batch.len() >= RESTORE_BATCH {
            store.apply(batch.drain(..))?;
        }
    }
    store.apply(batch)?;
    Ok(read)
}
