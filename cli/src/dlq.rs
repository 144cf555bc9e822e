//! `trib dlq`: the dead-letter topic, seen and acted on.
//!
//! - `list`: counts by reason and source topic, newest first, and the newest
//!   dead letters, with readable times.
//! - `show P/O`: one dead letter: reason, detail, origin, headers, key, and
//!   the payload decoded through the registry when it is framed Avro.
//! - `replay`: re-produces dead letters (filtered by `--reason`, `--since`)
//!   to their source topics, unchanged but for the `tributary.dlq.*`
//!   headers, after the cause was fixed. Each dead letter is replayed at most
//!   once: a replay is recorded in `<dead-letter topic>.replayed` (keyed by
//!   the dead letter's partition/offset) and later replays skip it. A replayed
//!   record that still cannot be processed is dead-lettered again, with its
//!   new reason and a `tributary.replayed_from` header; it is never
//!   replayed automatically, so nothing loops.
//!
//! The topic is read from its start to its end as it was when the command
//! began, without a consumer group: listing commits nothing.
use std::{collections::BTreeMap, process::ExitCode, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use comfy_table::Table;
use rdkafka::{
    Message as _, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer as _},
    message::{Header, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tributary_common::{
    avro_reader::ReaderCache,
    config::{KafkaArgs, RegistryArgs},
    dead_letter::headers as dlq_headers,
    kafka, registry_client, wire,
};

/// How long the broker gets to answer a metadata or fetch request.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args)]
pub struct DlqArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The registry, to decode payloads (`show`).
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Counts dead letters by reason and source topic (newest first) and
    /// lists the newest ones.
    List {
        #[command(flatten)]
        filter: Filter,
        /// How many of the newest dead letters to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Shows one dead letter: reason, detail, origin, headers, key, and the
    /// payload decoded when it is framed Avro.
    Show {
        /// `PARTITION/OFFSET` in the dead-letter topic, as `list` prints it.
        at: String,
    },
    /// Re-produces dead letters to their source topics, each at most once.
    /// Exit 1 when a dead letter could not be replayed.
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Lists what would be replayed, replays nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which dead letters a command takes.
#[derive(Args)]
struct Filter {
    /// Only dead letters with this reason (repeatable), e.g. `expired`,
    /// `undecodable`, `not_framed`, `unknown_schema`, `invalid`.
    #[arg(long)]
    reason: Vec<String>,
    /// Only dead letters written within this long (`1h`, `2d`) or since
    /// this time (RFC 3339).
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
}

impl Filter {
    fn takes(&self, letter: &DeadLetter) -> bool {
        (self.reason.is_empty() || self.reason.iter().any(|r| *r == letter.reason()))
            && self
                .since
                .is_none_or(|since| letter.time().is_some_and(|t| t >= since))
    }
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    let ago = humantime::parse_duration(text)
        .map_err(|e| format!("neither a duration (`1h`) nor an RFC 3339 time: {e}"))?;
    Ok(Utc::now() - chrono::Duration::from_std(ago).map_err(|e| e.to_string())?)
}

/// One record of a topic, owned.
struct DeadLetter {
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
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

    /// `PARTITION/OFFSET` in the dead-letter topic.
    fn at(&self) -> String {
        format!("{}/{}", self.partition, self.offset)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn reason(&self) -> String {
        self.header(dlq_headers::REASON)
            .unwrap_or_else(|| "?".into())
    }

    /// `topic/partition/offset` the record came from.
    fn source(&self) -> Option<String> {
        self.header(dlq_headers::SOURCE)
    }

    /// The topic the record came from.
    fn source_topic(&self) -> Option<String> {
        let source = self.source()?;
        let mut parts = source.rsplitn(3, '/');
        let (_offset, _partition, topic) = (parts.next()?, parts.next()?, parts.next()?);
        Some(topic.to_string())
    }

    fn time(&self) -> Option<DateTime<Utc>> {
        self.timestamp_ms.and_then(DateTime::from_timestamp_millis)
    }
}

fn readable(time: Option<DateTime<Utc>>) -> String {
    time.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| "-".into())
}

/// Every record of `topic` (all partitions, from their start to their end
/// when called), or only the one at `only` (`(partition, offset)`); none
/// when the topic does not exist.
fn read_topic(
    kafka_args: &KafkaArgs,
    topic: &str,
    only: Option<(i32, i64)>,
) -> anyhow::Result<Vec<DeadLetter>> {
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
        return Ok(Vec::new());
    };
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in partitions {
        if only.is_some_and(|(p, _)| p != partition) {
            continue;
        }
        let (mut low, mut high) = consumer.fetch_watermarks(topic, partition, BROKER_TIMEOUT)?;
        if let Some((_, offset)) = only {
            (low, high) = (low.max(offset), high.min(offset + 1));
        }
        if high > low {
            assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
            ends.insert(partition, high);
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{topic} could not be read to its end within 60 s"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.with_context(|| format!("cannot read {topic}"))?;
        let partition = message.partition();
        if message.offset() + 1 >= ends.get(&partition).copied().unwrap_or(0) {
            ends.remove(&partition);
        }
        records.push(DeadLetter::of(&message));
    }
    Ok(records)
}

async fn read(
    kafka_args: &KafkaArgs,
    topic: &str,
    only: Option<(i32, i64)>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let (kafka_args, topic) = (kafka_args.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&kafka_args, &topic, only)).await?
}

/// The topic recording which dead letters were replayed.
fn replayed_topic(kafka_args: &KafkaArgs) -> String {
    format!("{}.replayed", kafka_args.dead_letter_topic)
}

pub async fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DlqCommand::List { filter, limit } => list(&args.kafka, &filter, limit).await,
        DlqCommand::Show { at } => show(&args.kafka, &args.registry, &at).await,
        DlqCommand::Replay { filter, dry_run } => replay(&args.kafka, &filter, dry_run).await,
    }
}

async fn list(kafka_args: &KafkaArgs, filter: &Filter, limit: usize) -> anyhow::Result<ExitCode> {
    let topic = &kafka_args.dead_letter_topic;
    let mut letters: Vec<DeadLetter> = read(kafka_args, topic, None)
        .await?
        .into_iter()
        .filter(|l| filter.takes(l))
        .collect();
    letters.sort_by_key(|l| std::cmp::Reverse((l.timestamp_ms, l.partition, l.offset)));
    println!("{topic}: {} dead letters", letters.len());
    if letters.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // Letters are newest first, so each group's first is its newest.
    struct Group {
        reason: String,
        source: String,
        count: usize,
        newest: Option<DateTime<Utc>>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for letter in &letters {
        let (reason, source) = (letter.reason(), letter.source_topic().unwrap_or_default());
        match groups
            .iter_mut()
            .find(|g| g.reason == reason && g.source == source)
        {
            Some(group) => group.count += 1,
            None => groups.push(Group {
                reason,
                source,
                count: 1,
                newest: letter.time(),
            }),
        }
    }
    let mut table = Table::new();
    table.set_header(["reason", "source topic", "count", "newest"]);
    for group in &groups {
        table.add_row([
            group.reason.clone(),
            group.source.clone(),
            group.count.to_string(),
            readable(group.newest),
        ]);
    }
    println!("{table}");
    let mut newest = Table::new();
    newest.set_header(["at", "time", "reason", "source", "detail"]);
    for letter in letters.iter().take(limit) {
        let mut detail = letter.header(dlq_headers::DETAIL).unwrap_or_default();
        if detail.chars().count() > 100 {
            detail = detail.chars().take(99).chain(['…']).collect();
        }
        newest.add_row([
            letter.at(),
            readable(letter.time()),
            letter.reason(),
            letter.source().unwrap_or_default(),
            detail,
        ]);
    }
    println!("newest {} (trib dlq show AT):", limit.min(letters.len()));
    println!("{newest}");
    Ok(ExitCode::SUCCESS)
}

fn parse_at(at: &str) -> anyhow::Result<(i32, i64)> {
    let (partition, offset) = at
        .split_once('/')
        .context("a dead letter is named PARTITION/OFFSET, e.g. 0/12")?;
    Ok((
        partition.parse().context("PARTITION is not a number")?,
        offset.parse().context("OFFSET is not a number")?,
    ))
}

async fn show(
    kafka_args: &KafkaArgs,
    registry: &RegistryArgs,
    at: &str,
) -> anyhow::Result<ExitCode> {
    let (partition, offset) = parse_at(at)?;
    let topic = &kafka_args.dead_letter_topic;
    let letter = read(kafka_args, topic, Some((partition, offset)))
        .await?
        .into_iter()
        .next()
        .with_context(|| format!("{topic} has no record at {at}"))?;
    println!("dead letter {topic} {at}");
    println!("  time:    {}", readable(letter.time()));
    println!("  reason:  {}", letter.reason());
    println!(
        "  detail:  {}",
        letter.header(dlq_headers::DETAIL).unwrap_or_default()
    );
    println!("  source:  {}", letter.source().unwrap_or_default());
    if let Some(from) = letter.header(dlq_headers::REPLAYED_FROM) {
        println!("  replayed from: {from}");
    }
    println!(
        "  key:     {}",
        letter
            .key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_else(|| "(none)".into())
    );
    println!("  headers:");
    for (name, value) in &letter.headers {
        let value = value
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| "(null)".into());
        println!("    {name}: {value}");
    }
    match &letter.payload {
        None => println!("  payload: (none)"),
        Some(payload) => match decode(registry, payload).await {
            Ok((id, json)) => println!(
                "  payload (Avro, schema id {id}):\n{}",
                serde_json::to_string_pretty(&json)?
            ),
            Err(why) => println!(
                "  payload ({} bytes, not decoded: {why:#}): {}",
                payload.len(),
                hex::encode(&payload[..payload.len().min(256)])
            ),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// The payload as JSON, through its writer schema from the registry (the
/// services' reader: the same framing and decoding rules).
async fn decode(
    registry: &RegistryArgs,
    payload: &[u8],
) -> anyhow::Result<(u32, serde_json::Value)> {
    let (id, _) = wire::unframe(payload).context("not in the Confluent wire format")?;
    let readers = ReaderCache::new(registry_client::settings(registry)?);
    let value = readers
        .read(payload, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((id, serde_json::Value::try_from(value)?))
}

async fn replay(
    kafka_args: &KafkaArgs,
    filter: &Filter,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let topic = &kafka_args.dead_letter_topic;
    let replayed_topic = replayed_topic(kafka_args);
    let (letters, done) = tokio::try_join!(
        read(kafka_args, topic, None),
        read(kafka_args, &replayed_topic, None)
    )?;
    let done: std::collections::HashSet<String> = done
        .iter()
        .filter_map(|r| {
            r.key
                .as_deref()
                .map(|k| String::from_utf8_lossy(k).into_owned())
        })
        .collect();
    let (mut replayed, mut skipped, mut failed) = (0usize, 0usize, 0usize);
    let chosen: Vec<&DeadLetter> = letters.iter().filter(|l| filter.takes(l)).collect();
    let producer: Option<FutureProducer> = if dry_run {
        None
    } else {
        kafka::ensure_topics(kafka_args, std::slice::from_ref(&replayed_topic), 1).await?;
        Some(kafka::producer_config(kafka_args).create()?)
    };
    for letter in chosen {
        if done.contains(&letter.at()) {
            skipped += 1;
            continue;
        }
        let Some(source_topic) = letter.source_topic() else {
            eprintln!(
                "{}: no {} header; not replayed",
                letter.at(),
                dlq_headers::SOURCE
            );
            failed += 1;
            continue;
        };
        let Some(producer) = &producer else {
            println!(
                "would replay {} ({}) to {source_topic}",
                letter.at(),
                letter.reason()
            );
            replayed += 1;
            continue;
        };
        let from = format!("{topic}/{}", letter.at());
        let mut headers = OwnedHeaders::new();
        for (name, value) in &letter.headers {
            if name.starts_with("tributary.dlq.") || name == dlq_headers::REPLAYED_FROM {
                continue;
            }
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let headers = headers.insert(Header {
            key: dlq_headers::REPLAYED_FROM,
            value: Some(&from),
        });
        let mut record = FutureRecord::<[u8], [u8]>::to(&source_topic).headers(headers);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        if let Some(payload) = &letter.payload {
            record = record.payload(payload);
        }
        let (partition, offset) = match producer.send(record, Duration::from_secs(30)).await {
            Ok(delivered) => (delivered.partition, delivered.offset),
            Err((e, _)) => {
                eprintln!("{}: cannot replay to {source_topic}: {e}", letter.at());
                failed += 1;
                continue;
            }
        };
        // Recorded after the replay: a crash in between may replay it again,
        // which the processor counts once (same idempotency key) while its
        // window is open.
        let marker = format!("{source_topic}/{partition}/{offset}");
        producer
            .send(
                FutureRecord::to(&replayed_topic)
                    .key(&letter.at())
                    .payload(&marker),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| {
                anyhow::anyhow!("cannot record the replay of {}: {e}", letter.at())
            })?;
        replayed += 1;
    }
    let verb = if dry_run { "would replay" } else { "replayed" };
    println!("{verb} {replayed}, skipped {skipped} already replayed, failed {failed}");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
