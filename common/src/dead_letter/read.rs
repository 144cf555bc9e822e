//! Reading the dead-letter topic: every record from the start of each
//! partition to its end as it was when the read began, without a consumer
//! group (nothing is committed), filtered and newest first; one record by
//! `PARTITION/OFFSET`; its payload decoded through the registry.
//!
//! What is read comes back as data ([`DeadLetter`], and the serializable
//! [`Summary`], [`Detail`], [`ReasonCount`]): `trib dlq` formats it for a
//! terminal, the console serves it as JSON.
use std::{collections::BTreeMap, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    message::Headers as _,
};
use serde::Serialize;

use super::headers;
use crate::{avro_reader::ReaderCache, config::KafkaArgs, kafka, registry_client, wire};

/// How long the broker gets to answer a metadata or fetch request.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long reading a topic to its end may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Payload bytes shown (as hex and text) when a payload cannot be decoded.
pub const RAW_SHOWN: usize = 4096;

/// One record of a topic, owned.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Partition in the dead-letter topic.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// The record's timestamp (when it was dead-lettered), Unix milliseconds.
    pub timestamp_ms: Option<i64>,
    /// The record key, as produced.
    pub key: Option<Vec<u8>>,
    /// The record value, as produced (the original event's bytes).
    pub payload: Option<Vec<u8>>,
    /// Every header, in order (the original record's, then `tributary.dlq.*`).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetter {
    fn of(message: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// `PARTITION/OFFSET` in the dead-letter topic: the dead letter's id.
    pub fn at(&self) -> String {
        format!("{}/{}", self.partition, self.offset)
    }

    /// The last value of header `name`, as text (lossy UTF-8).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Why it was dead-lettered (`?` when the header is missing).
    pub fn reason(&self) -> String {
        self.header(headers::REASON).unwrap_or_else(|| "?".into())
    }

    /// The details of the reason.
    pub fn detail(&self) -> String {
        self.header(headers::DETAIL).unwrap_or_default()
    }

    /// `topic/partition/offset` the record came from.
    pub fn source(&self) -> Option<String> {
        self.header(headers::SOURCE)
    }

    /// The topic the record came from.
    pub fn source_topic(&self) -> Option<String> {
        let source = self.source()?;
        let mut parts = source.rsplitn(3, '/');
        let (_offset, _partition, topic) = (parts.next()?, parts.next()?, parts.next()?);
        Some(topic.to_string())
    }

    /// When it was dead-lettered.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.timestamp_ms.and_then(DateTime::from_timestamp_millis)
    }

    /// The key as text (lossy UTF-8).
    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }

    /// The list entry of this dead letter.
    pub fn summary(&self) -> Summary {
        Summary {
            id: self.at(),
            partition: self.partition,
            offset: self.offset,
            time: self.time().map(readable),
            timestamp_ms: self.timestamp_ms,
            reason: self.reason(),
            detail: self.detail(),
            source: self.source(),
            source_topic: self.source_topic(),
            replayed_from: self.header(headers::REPLAYED_FROM),
        }
    }

    /// Every header as text.
    pub fn header_views(&self) -> Vec<HeaderView> {
        self.headers
            .iter()
            .map(|(name, value)| HeaderView {
                name: name.clone(),
                value: value
                    .as_deref()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            })
            .collect()
    }
}

/// An RFC 3339 time with milliseconds, in UTC.
pub fn readable(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One dead letter in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `PARTITION/OFFSET` in the dead-letter topic.
    pub id: String,
    /// Partition in the dead-letter topic.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// When it was dead-lettered (RFC 3339).
    pub time: Option<String>,
    /// The same, Unix milliseconds.
    pub timestamp_ms: Option<i64>,
    /// Why (`expired`, `undecodable`, `not_framed`, `unknown_schema`, `invalid`).
    pub reason: String,
    /// The details of the reason.
    pub detail: String,
    /// `topic/partition/offset` it came from.
    pub source: Option<String>,
    /// The topic it came from.
    pub source_topic: Option<String>,
    /// When it is a replay that failed again: the dead letter it was replayed from.
    pub replayed_from: Option<String>,
}

/// A header of a dead letter, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderView {
    /// The header's name.
    pub name: String,
    /// Its value (lossy UTF-8), `None` for a null value.
    pub value: Option<String>,
}

/// One dead letter in full: its list entry, key, headers and payload.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    /// What the list shows.
    #[serde(flatten)]
    pub summary: Summary,
    /// The record key as text.
    pub key: Option<String>,
    /// Every header, in order.
    pub headers: Vec<HeaderView>,
    /// The payload, decoded when it can be.
    pub payload: Payload,
}

/// A dead letter's payload.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "encoding", rename_all = "snake_case")]
pub enum Payload {
    /// The record has no value.
    None,
    /// Framed Avro, decoded with its writer schema from the registry.
    Avro {
        /// The writer schema's registry id.
        schema_id: u32,
        /// The record as JSON.
        value: serde_json::Value,
    },
    /// Bytes that could not be decoded.
    Raw {
        /// Why they were not decoded.
        why: String,
        /// The payload's length.
        bytes: usize,
        /// The first [`RAW_SHOWN`] bytes in hex.
        hex: String,
        /// The first [`RAW_SHOWN`] bytes as text (lossy UTF-8).
        text: String,
    },
}

/// Dead letters counted by reason and source topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    /// The reason.
    pub reason: String,
    /// The source topic (empty when unknown).
    pub source_topic: String,
    /// How many.
    pub count: usize,
    /// When the newest was dead-lettered (RFC 3339).
    pub newest: Option<String>,
}

/// Which dead letters a command takes.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these reasons (all when empty).
    pub reasons: Vec<String>,
    /// Only from these source topics, or sources (`topic/partition/offset`)
    /// starting with one (all when empty).
    pub sources: Vec<String>,
    /// Only dead-lettered at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    /// Whether `letter` passes.
    pub fn takes(&self, letter: &DeadLetter) -> bool {
        (self.reasons.is_empty() || self.reasons.iter().any(|r| *r == letter.reason()))
            && (self.sources.is_empty() || {
                let (topic, source) = (letter.source_topic(), letter.source());
                self.sources.iter().any(|s| {
                    topic.as_deref() == Some(s.as_str())
                        || source
                            .as_deref()
                            .is_some_and(|full| full.starts_with(s.as_str()))
                })
            })
            && self
                .since
                .is_none_or(|since| letter.time().is_some_and(|t| t >= since))
    }
}

/// A time given as a duration back from now (`1h`, `2d`) or as an RFC 3339 time.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(text)
        .map_err(|e| format!("neither a duration (`1h`) nor an RFC 3339 time: {e}"))?;
    Ok(Utc::now() - chrono::Duration::from_std(ago).map_err(|e| e.to_string())?)
}

/// `PARTITION/OFFSET` as numbers.
pub fn parse_at(at: &str) -> anyhow::Result<(i32, i64)> {
    let (partition, offset) = at
        .split_once('/')
        .context("a dead letter is named PARTITION/OFFSET, e.g. 0/12")?;
    Ok((
        partition
            .trim()
            .parse()
            .context("PARTITION is not a number")?,
        offset.trim().parse().context("OFFSET is not a number")?,
    ))
}

/// Every record of `topic` (all partitions, from their start to their end
/// when called), or only the one at `only` (`(partition, offset)`); none
/// when the topic does not exist. Blocking: see [`read`].
pub fn read_topic(
    kafka_args: &KafkaArgs,
    topic: &str,
    only: Option<(i32, i64)>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let (records, _) = read_ranges(kafka_args, topic, &|partition, low, high| match only {
        None => Some((low, high)),
        Some((p, offset)) if p == partition => Some((low.max(offset), high.min(offset + 1))),
        Some(_) => None,
    })?;
    Ok(records)
}

/// Each partition's offsets when a read began: `(low, high)` watermarks.
pub type Watermarks = BTreeMap<i32, (i64, i64)>;

/// Reads, in each partition of `topic`, the offsets `range(partition, low,
/// high)` gives (`[start, end)`, or `None` to skip it), up to the end as it
/// was when called. Also returns every partition's watermarks.
fn read_ranges(
    kafka_args: &KafkaArgs,
    topic: &str,
    range: &dyn Fn(i32, i64, i64) -> Option<(i64, i64)>,
) -> anyhow::Result<(Vec<DeadLetter>, Watermarks)> {
    let consumer: BaseConsumer = kafka::consumer_config(kafka_args, "trib-dlq")
        .create()
        .context("cannot create a Kafka consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .with_context(|| format!("cannot read the metadata of {topic} from the broker"))?;
    let Some(partitions) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
    else {
        return Ok((Vec::new(), Watermarks::new()));
    };
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    let mut watermarks = Watermarks::new();
    for partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, BROKER_TIMEOUT)?;
        watermarks.insert(partition, (low, high));
        let Some((start, end)) = range(partition, low, high) else {
            continue;
        };
        if end > start {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start))?;
            ends.insert(partition, end);
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok((records, watermarks));
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    while !ends.is_empty() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{topic} could not be read to its end within {} s",
            READ_TIMEOUT.as_secs()
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.with_context(|| format!("cannot read {topic}"))?;
        let partition = message.partition();
        let Some(end) = ends.get(&partition).copied() else {
            continue;
        };
        if message.offset() + 1 >= end {
            ends.remove(&partition);
        }
        if message.offset() < end {
            records.push(DeadLetter::of(&message));
        }
    }
    Ok((records, watermarks))
}

/// The dead letters of a topic kept in memory and brought up to date
/// incrementally: each [`Cache::refresh`] reads only the records written
/// since the last one (the first reads the whole topic). Records the broker
/// deleted (retention) are dropped; a topic that was recreated (a partition
/// now ends before where the cache had read to) is read again from its start.
#[derive(Debug, Default)]
pub struct Cache {
    /// Newest first.
    letters: Vec<DeadLetter>,
    /// Where the next read starts, by partition.
    next: BTreeMap<i32, i64>,
}

impl Cache {
    /// An empty cache: the first refresh reads the whole topic.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every dead letter read so far, newest first.
    pub fn letters(&self) -> &[DeadLetter] {
        &self.letters
    }

    /// Reads what was written to `topic` since the last refresh.
    pub async fn refresh(&mut self, kafka_args: &KafkaArgs, topic: &str) -> anyhow::Result<()> {
        let (kafka, name, next) = (kafka_args.clone(), topic.to_string(), self.next.clone());
        let (records, watermarks) = tokio::task::spawn_blocking(move || {
            read_ranges(&kafka, &name, &|partition, low, high| {
                Some((next.get(&partition).copied().unwrap_or(low).max(low), high))
            })
        })
        .await??;
        let recreated = self.next.iter().any(|(partition, next)| {
            watermarks
                .get(partition)
                .is_none_or(|(_, high)| high < next)
        });
        if recreated {
            *self = Self::new();
            return Box::pin(self.refresh(kafka_args, topic)).await;
        }
        self.letters.extend(records);
        self.letters.retain(|l| {
            watermarks
                .get(&l.partition)
                .is_some_and(|(low, _)| l.offset >= *low)
        });
        newest_first(&mut self.letters);
        self.next = watermarks
            .into_iter()
            .map(|(partition, (_, high))| (partition, high))
            .collect();
        Ok(())
    }
}

/// [`read_topic`] off the async workers.
pub async fn read(
    kafka_args: &KafkaArgs,
    topic: &str,
    only: Option<(i32, i64)>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let (kafka_args, topic) = (kafka_args.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&kafka_args, &topic, only)).await?
}

/// The dead letters of `--dead-letter-topic` that `filter` takes, newest first.
pub async fn list(kafka_args: &KafkaArgs, filter: &Filter) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters: Vec<DeadLetter> = read(kafka_args, &kafka_args.dead_letter_topic, None)
        .await?
        .into_iter()
        .filter(|l| filter.takes(l))
        .collect();
    newest_first(&mut letters);
    Ok(letters)
}

/// Sorts newest first (by timestamp, then partition and offset).
pub fn newest_first(letters: &mut [DeadLetter]) {
    letters.sort_by_key(|l| std::cmp::Reverse((l.timestamp_ms, l.partition, l.offset)));
}

/// The dead letter at `(partition, offset)` of `--dead-letter-topic`, if any.
pub async fn find(
    kafka_args: &KafkaArgs,
    (partition, offset): (i32, i64),
) -> anyhow::Result<Option<DeadLetter>> {
    Ok(read(
        kafka_args,
        &kafka_args.dead_letter_topic,
        Some((partition, offset)),
    )
    .await?
    .into_iter()
    .find(|l| l.partition == partition && l.offset == offset))
}

/// Counts by reason and source topic, in the order of each group's newest
/// (`letters` newest first, as [`list`] gives them).
pub fn count_by_reason<'a>(letters: impl IntoIterator<Item = &'a DeadLetter>) -> Vec<ReasonCount> {
    let mut groups: Vec<ReasonCount> = Vec::new();
    for letter in letters {
        let (reason, source_topic) = (letter.reason(), letter.source_topic().unwrap_or_default());
        match groups
            .iter_mut()
            .find(|g| g.reason == reason && g.source_topic == source_topic)
        {
            Some(group) => group.count += 1,
            None => groups.push(ReasonCount {
                reason,
                source_topic,
                count: 1,
                newest: letter.time().map(readable),
            }),
        }
    }
    groups
}

/// Decodes payloads through the registry (the services' reader: the same
/// framing and decoding rules), caching writer schemas.
pub struct Decoder {
    readers: ReaderCache,
}

impl Decoder {
    /// A decoder over the registry of `registry`.
    pub fn new(registry: &crate::config::RegistryArgs) -> anyhow::Result<Self> {
        Ok(Self {
            readers: ReaderCache::new(registry_client::settings(registry)?),
        })
    }

    /// The payload as JSON through its writer schema, with the schema id.
    pub async fn decode(&self, payload: &[u8]) -> anyhow::Result<(u32, serde_json::Value)> {
        let (id, _) = wire::unframe(payload).context("not in the Confluent wire format")?;
        let value = self
            .readers
            .read(payload, None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((id, serde_json::Value::try_from(value)?))
    }

    /// The payload decoded, or its bytes and why it was not.
    pub async fn payload(&self, payload: Option<&[u8]>) -> Payload {
        let Some(payload) = payload else {
            return Payload::None;
        };
        match self.decode(payload).await {
            Ok((schema_id, value)) => Payload::Avro { schema_id, value },
            Err(why) => {
                let shown = &payload[..payload.len().min(RAW_SHOWN)];
                Payload::Raw {
                    why: format!("{why:#}"),
                    bytes: payload.len(),
                    hex: hex::encode(shown),
                    text: String::from_utf8_lossy(shown).into_owned(),
                }
            }
        }
    }

    /// `letter` in full, its payload decoded.
    pub async fn detail(&self, letter: &DeadLetter) -> Detail {
        Detail {
            summary: letter.summary(),
            key: letter.key_text(),
            headers: letter.header_views(),
            payload: self.payload(letter.payload.as_deref()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(reason: &str, source: &str, ms: i64) -> DeadLetter {
        DeadLetter {
            partition: 0,
            offset: ms,
            timestamp_ms: Some(ms),
            key: None,
            payload: None,
            headers: vec![
                (headers::REASON.into(), Some(reason.as_bytes().to_vec())),
                (headers::SOURCE.into(), Some(source.as_bytes().to_vec())),
            ],
        }
    }

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let an_hour_ago = parse_since("1h").unwrap();
        let age = Utc::now() - an_hour_ago;
        assert!((age.num_seconds() - 3600).abs() < 5, "{age}");
        assert_eq!(
            parse_since("2026-01-02T03:04:05Z").unwrap(),
            DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap()
        );
        assert!(parse_since("yesterday-ish").is_err());
    }

    #[test]
    fn a_dead_letter_is_named_partition_slash_offset() {
        assert_eq!(parse_at("3/1200").unwrap(), (3, 1200));
        assert!(parse_at("3").is_err());
        assert!(parse_at("a/1").is_err());
    }

    #[test]
    fn filters_take_reasons_sources_and_times() {
        let a = letter("expired", "tributary.events.ad_click/1/7", 2_000);
        let b = letter("undecodable", "tributary.events.price_tick/0/3", 1_000);
        let by_reason = Filter {
            reasons: vec!["expired".into()],
            ..Filter::default()
        };
        assert!(by_reason.takes(&a) && !by_reason.takes(&b));
        let by_source = Filter {
            sources: vec!["tributary.events.price_tick".into()],
            ..Filter::default()
        };
        assert!(!by_source.takes(&a) && by_source.takes(&b));
        let since = Filter {
            since: DateTime::from_timestamp_millis(1_500),
            ..Filter::default()
        };
        assert!(since.takes(&a) && !since.takes(&b));
        assert_eq!(
            a.source_topic().as_deref(),
            Some("tributary.events.ad_click")
        );
        let mut letters = vec![b.clone(), a.clone(), letter("expired", "x/0/1", 500)];
        newest_first(&mut letters);
        assert_eq!(letters[0].offset, 2_000);
        let counts = count_by_reason(&letters);
        assert_eq!(
            counts
                .iter()
                .map(|c| (c.reason.as_str(), c.count))
                .collect::<Vec<_>>(),
            [("expired", 1), ("undecodable", 1), ("expired", 1)]
        );
    }
}
