//! Reading the dead-letter topic: every record from the start of each
//! partition to its end as it was when the read began, without a consumer
//! group (nothing is committed), filtered and newest first; one record by
//! `PARTITION/OFFSET`; its payload decoded through the registry.
//!
//! Lists ([`list`], [`Cache`]) keep each dead letter without its payload
//! and with only the `tributary.*` headers ([`DeadLetter::light`]); the
//! payload is read again, by `PARTITION/OFFSET`, when one is shown
//! ([`find`]). The [`Cache`] (the console's) keeps at most the newest
//! [`MAX_CACHED_PER_PARTITION`] dead letters of each partition.
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

/// The most dead letters a [`Cache`] keeps per partition (the newest; older
/// ones are neither read nor listed, but still replayed by a filter through
/// [`super::replay`], which reads the whole topic).
pub const MAX_CACHED_PER_PARTITION: i64 = 10_000;

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

    /// What a list keeps of it: no payload, and only the headers it shows
    /// and filters by (`tributary.*`: reason, detail, source, replayed
    /// from). The key stays.
    pub fn light(mut self) -> Self {
        self.payload = None;
        self.headers
            .retain(|(name, _)| name.starts_with("tributary."));
        self.headers.shrink_to_fit();
        self
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
    /// Only from these source topics (exact names), or exactly these
    /// sources (`topic/partition/offset`) (all when empty).
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
                    topic.as_deref() == Some(s.as_str()) || source.as_deref() == Some(s.as_str())
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

/// `PARTITION/OFFSET` as numbers: a partition from 0 to `i32::MAX`, an
/// offset from 0 to `i64::MAX - 1`; the error names the value refused.
pub fn parse_at(at: &str) -> anyhow::Result<(i32, i64)> {
    let (partition, offset) = at
        .split_once('/')
        .context("a dead letter is named PARTITION/OFFSET, e.g. 0/12")?;
    let (partition, offset) = (partition.trim(), offset.trim());
    let p: i32 = partition
        .parse()
        .ok()
        .filter(|p| *p >= 0)
        .with_context(|| {
            format!(
                "PARTITION `{partition}` is not a partition number (0 to {})",
                i32::MAX
            )
        })?;
    let o: i64 = offset
        .parse()
        .ok()
        .filter(|o| (0..i64::MAX).contains(o))
        .with_context(|| format!("OFFSET `{offset}` is not an offset (0 to {})", i64::MAX - 1))?;
    Ok((p, o))
}

/// Every record of `topic` (all partitions, from their start to their end
/// when called), or only the one at `only` (`(partition, offset)`); none
/// when the topic does not exist. Blocking: see [`read`].
pub fn read_topic(
    kafka_args: &KafkaArgs,
    topic: &str,
    only: Option<(i32, i64)>,
) -> anyhow::Result<Vec<DeadLetter>> {
    read_topic_as(kafka_args, topic, only, false)
}

/// [`read_topic`], each record [`DeadLetter::light`] when `light`.
fn read_topic_as(
    kafka_args: &KafkaArgs,
    topic: &str,
    only: Option<(i32, i64)>,
    light: bool,
) -> anyhow::Result<Vec<DeadLetter>> {
    let read = read_ranges(
        kafka_args,
        topic,
        light,
        &|partition, low, high| match only {
            None => Some((low, high)),
            Some((p, offset)) if p == partition => {
                Some((low.max(offset), high.min(offset.saturating_add(1))))
            }
            Some(_) => None,
        },
    )?;
    anyhow::ensure!(
        read.unfinished.is_empty(),
        "{topic} could not be read to its end within {} s",
        READ_TIMEOUT.as_secs()
    );
    Ok(read.records)
}

/// Each partition's offsets when a read began: `(low, high)` watermarks.
pub type Watermarks = BTreeMap<i32, (i64, i64)>;

/// What [`read_ranges`] read.
struct Ranges {
    records: Vec<DeadLetter>,
    /// Every partition's watermarks when the read began.
    watermarks: Watermarks,
    /// When [`READ_TIMEOUT`] came first: the partitions not read to their
    /// end, with the next offset to read.
    unfinished: BTreeMap<i32, i64>,
}

/// The partitions of `topic`; none when the broker says it does not exist.
/// Any other metadata error (leader not available, a broker not answering)
/// is an error, retried briefly first.
fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let metadata = consumer
            .fetch_metadata(Some(topic), BROKER_TIMEOUT)
            .with_context(|| format!("cannot read the metadata of {topic} from the broker"))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(Vec::new());
        };
        match found.error() {
            None => return Ok(found.partitions().iter().map(|p| p.id()).collect()),
            Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
                return Ok(Vec::new());
            }
            Some(error) if attempts >= 3 => {
                let error = rdkafka::types::RDKafkaErrorCode::from(error);
                anyhow::bail!("the broker answered the metadata of {topic} with: {error}");
            }
            Some(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Reads, in each partition of `topic`, the offsets `range(partition, low,
/// high)` gives (`[start, end)`, or `None` to skip it), up to the end as it
/// was when called, for at most [`READ_TIMEOUT`] (then `unfinished` says
/// where each partition not read to its end got to). Each record is
/// [`DeadLetter::light`] when `light`.
fn read_ranges(
    kafka_args: &KafkaArgs,
    topic: &str,
    light: bool,
    range: &dyn Fn(i32, i64, i64) -> Option<(i64, i64)>,
) -> anyhow::Result<Ranges> {
    let consumer: BaseConsumer = kafka::consumer_config(kafka_args, "trib-dlq")
        .create()
        .context("cannot create a Kafka consumer")?;
    let partitions = partitions(&consumer, topic)?;
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
        return Ok(Ranges {
            records,
            watermarks,
            unfinished: BTreeMap::new(),
        });
    }
    // Where each partition's read got to (its next offset).
    let mut reached: BTreeMap<i32, i64> = assignment
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(start) => Some((e.partition(), start)),
            _ => None,
        })
        .collect();
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    while !ends.is_empty() {
        if std::time::Instant::now() >= deadline {
            let unfinished = ends
                .keys()
                .map(|p| (*p, reached.get(p).copied().unwrap_or(0)))
                .collect();
            return Ok(Ranges {
                records,
                watermarks,
                unfinished,
            });
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.with_context(|| format!("cannot read {topic}"))?;
        let partition = message.partition();
        let Some(end) = ends.get(&partition).copied() else {
            continue;
        };
        let next = message.offset().saturating_add(1);
        if next >= end {
            ends.remove(&partition);
        }
        if message.offset() < end {
            reached.insert(partition, next);
            let letter = DeadLetter::of(&message);
            records.push(if light { letter.light() } else { letter });
        }
    }
    Ok(Ranges {
        records,
        watermarks,
        unfinished: BTreeMap::new(),
    })
}

/// The dead letters of a topic kept in memory ([`DeadLetter::light`]: no
/// payloads) and brought up to date incrementally: each [`Cache::refresh`]
/// reads only the records written since the last one. At most the newest
/// [`MAX_CACHED_PER_PARTITION`] of each partition are kept, and only those
/// are read (the first refresh of a large topic reads each partition's
/// tail). A refresh cut short by [`READ_TIMEOUT`] keeps what it read and
/// where each partition got to: the next refresh goes on from there.
/// Records the broker deleted (retention) are dropped; a topic that was
/// recreated (a partition now ends before where the cache had read to) is
/// read again.
#[derive(Debug, Default)]
pub struct Cache {
    /// Newest first.
    letters: Vec<DeadLetter>,
    /// Where the next read starts, by partition.
    next: BTreeMap<i32, i64>,
    /// Whether the last refresh read every partition to its end.
    complete: bool,
}

impl Cache {
    /// An empty cache: the first refresh reads each partition's newest
    /// [`MAX_CACHED_PER_PARTITION`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Every dead letter kept, newest first.
    pub fn letters(&self) -> &[DeadLetter] {
        &self.letters
    }

    /// Whether the last refresh read the topic to its end (`false` before
    /// the first, or when it was cut short by [`READ_TIMEOUT`]).
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Reads what was written to `topic` since the last refresh.
    pub async fn refresh(&mut self, kafka_args: &KafkaArgs, topic: &str) -> anyhow::Result<()> {
        // A second read when the first found the topic recreated.
        for _ in 0..2 {
            let (kafka, name, next) = (kafka_args.clone(), topic.to_string(), self.next.clone());
            let read = tokio::task::spawn_blocking(move || {
                read_ranges(&kafka, &name, true, &|partition, low, high| {
                    Some((Self::start(next.get(&partition).copied(), low, high), high))
                })
            })
            .await??;
            if self.apply(read) {
                break;
            }
        }
        if !self.complete {
            tracing::warn!(
                topic,
                partitions = self.next.len(),
                "the dead-letter topic was not read to its end within the read timeout; the next list goes on"
            );
        }
        Ok(())
    }

    /// Where a partition's read starts: where the last one got to, but
    /// never before the newest [`MAX_CACHED_PER_PARTITION`].
    fn start(next: Option<i64>, low: i64, high: i64) -> i64 {
        let tail = high.saturating_sub(MAX_CACHED_PER_PARTITION).max(low);
        next.unwrap_or(tail).max(tail)
    }

    /// Takes in what a read got; `false` (and emptied) when the topic was
    /// recreated, to be read again.
    fn apply(&mut self, read: Ranges) -> bool {
        let Ranges {
            records,
            watermarks,
            unfinished,
        } = read;
        let recreated = self.next.iter().any(|(partition, next)| {
            watermarks
                .get(partition)
                .is_none_or(|(_, high)| high < next)
        });
        if recreated {
            // What was kept belongs to the old topic, and what was just
            // read started where the old one ended: read it all again.
            *self = Self::new();
            return false;
        }
        self.letters.extend(records);
        self.letters.retain(|l| {
            watermarks.get(&l.partition).is_some_and(|(low, high)| {
                l.offset >= *low && l.offset >= high.saturating_sub(MAX_CACHED_PER_PARTITION)
            })
        });
        newest_first(&mut self.letters);
        self.complete = unfinished.is_empty();
        self.next = watermarks
            .into_iter()
            .map(|(partition, (_, high))| {
                (
                    partition,
                    unfinished.get(&partition).copied().unwrap_or(high),
                )
            })
            .collect();
        true
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

/// The dead letters of `--dead-letter-topic` that `filter` takes, newest
/// first, [`DeadLetter::light`] (no payloads: [`find`] reads one in full).
pub async fn list(kafka_args: &KafkaArgs, filter: &Filter) -> anyhow::Result<Vec<DeadLetter>> {
    let (kafka, topic) = (kafka_args.clone(), kafka_args.dead_letter_topic.clone());
    let mut letters: Vec<DeadLetter> =
        tokio::task::spawn_blocking(move || read_topic_as(&kafka, &topic, None, true))
            .await??
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
        for (bad, named) in [
            ("0/-1", "`-1`"),
            ("-1/0", "`-1`"),
            ("0/9223372036854775807", "`9223372036854775807`"),
            ("0/99999999999999999999", "`99999999999999999999`"),
            ("4294967296/0", "`4294967296`"),
        ] {
            let why = format!("{:#}", parse_at(bad).unwrap_err());
            assert!(why.contains(named), "{bad}: {why}");
        }
        assert_eq!(
            parse_at("0/9223372036854775806").unwrap(),
            (0, i64::MAX - 1)
        );
    }

    #[test]
    fn a_source_filter_takes_exact_topics_not_prefixes() {
        let a = letter("expired", "tributary.events.ad_click/1/7", 1);
        let filter = |source: &str| Filter {
            sources: vec![source.into()],
            ..Filter::default()
        };
        assert!(filter("tributary.events.ad_click").takes(&a));
        assert!(filter("tributary.events.ad_click/1/7").takes(&a));
        assert!(!filter("tributary.events").takes(&a));
        assert!(!filter("tributary.events.ad").takes(&a));
        assert!(!filter("tributary.events.ad_click/1").takes(&a));
    }

    fn at(partition: i32, offset: i64) -> DeadLetter {
        DeadLetter {
            partition,
            offset,
            timestamp_ms: Some(offset),
            key: Some(b"k".to_vec()),
            payload: Some(vec![0; 1000]),
            headers: vec![
                (headers::REASON.into(), Some(b"invalid".to_vec())),
                ("traceparent".into(), Some(b"00-x".to_vec())),
            ],
        }
        .light()
    }

    #[test]
    fn the_cache_keeps_the_newest_per_partition_without_payloads() {
        let cap = MAX_CACHED_PER_PARTITION;
        let high = cap + 500;
        // The first read starts at the tail.
        assert_eq!(Cache::start(None, 0, high), 500);
        assert_eq!(Cache::start(None, 0, 10), 0);
        assert_eq!(Cache::start(Some(700), 0, high), 700);
        assert_eq!(Cache::start(Some(100), 0, high), 500);
        let mut cache = Cache::new();
        assert!(cache.apply(Ranges {
            records: (500..high).map(|o| at(0, o)).collect(),
            watermarks: [(0, (0, high))].into(),
            unfinished: BTreeMap::new(),
        }));
        assert!(cache.complete());
        assert_eq!(cache.letters().len() as i64, cap);
        assert!(cache.letters().iter().all(|l| l.payload.is_none()
            && l.key.is_some()
            && l.headers.len() == 1
            && l.reason() == "invalid"));
        // 10 more: the 10 oldest go.
        assert!(cache.apply(Ranges {
            records: (high..high + 10).map(|o| at(0, o)).collect(),
            watermarks: [(0, (0, high + 10))].into(),
            unfinished: BTreeMap::new(),
        }));
        assert_eq!(cache.letters().len() as i64, cap);
        assert_eq!(cache.letters().last().unwrap().offset, 510);
        assert_eq!(cache.next[&0], high + 10);
    }

    #[test]
    fn a_read_cut_short_keeps_its_progress() {
        let mut cache = Cache::new();
        assert!(cache.apply(Ranges {
            records: (0..40).map(|o| at(1, o)).collect(),
            watermarks: [(0, (0, 0)), (1, (0, 100))].into(),
            unfinished: [(1, 40)].into(),
        }));
        assert!(!cache.complete());
        assert_eq!(cache.letters().len(), 40);
        assert_eq!(cache.next[&1], 40);
        assert_eq!(Cache::start(cache.next.get(&1).copied(), 0, 100), 40);
        assert!(cache.apply(Ranges {
            records: (40..100).map(|o| at(1, o)).collect(),
            watermarks: [(0, (0, 0)), (1, (0, 100))].into(),
            unfinished: BTreeMap::new(),
        }));
        assert!(cache.complete());
        assert_eq!(cache.letters().len(), 100);
        // Recreated: a partition now ends before where the cache read to.
        assert!(!cache.apply(Ranges {
            records: Vec::new(),
            watermarks: [(0, (0, 0)), (1, (0, 5))].into(),
            unfinished: BTreeMap::new(),
        }));
        assert!(cache.letters().is_empty() && cache.next.is_empty());
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
