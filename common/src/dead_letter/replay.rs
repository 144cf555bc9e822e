//! Replaying dead letters after their cause was fixed: each is re-produced
//! to its source topic unchanged (same key, payload and headers) but for the
//! `tributary.dlq.*` headers, plus `tributary.replayed_from`. Each dead
//! letter is replayed at most once: a replay is recorded in
//! `<dead-letter topic>.replayed` (keyed by the dead letter's
//! `PARTITION/OFFSET`, valued with where the replay went) and later replays
//! skip it. A replayed record that still cannot be processed is
//! dead-lettered again with its new reason (and the `replayed_from` header);
//! it is never replayed automatically, so nothing loops.
//!
//! The record of a replay is written after the replay: a crash in between may
//! replay it again, which the processor counts once (same idempotency key).
//! Two replays running at once (two `trib` processes, or `trib` and the
//! console) may both replay the same dead letter; the console runs its own
//! replays one at a time.
use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use serde::Serialize;

use super::{
    headers,
    read::{self, DeadLetter, Filter},
};
use crate::{config::KafkaArgs, kafka};

/// How long the broker gets to acknowledge a replayed record.
pub const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// The topic recording which dead letters were replayed.
pub fn replayed_topic(kafka_args: &KafkaArgs) -> String {
    format!("{}.replayed", kafka_args.dead_letter_topic)
}

/// Which dead letters to replay.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Those a filter takes.
    Filter(Filter),
    /// These, by `(partition, offset)`.
    Ids(Vec<(i32, i64)>),
}

/// What happened to one dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Re-produced to its source topic.
    Replayed,
    /// A dry run: it would be replayed.
    WouldReplay,
    /// Replayed before; skipped.
    Skipped,
    /// Not replayed: see the item's detail.
    Failed,
}

/// One dead letter of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// `PARTITION/OFFSET` in the dead-letter topic.
    pub id: String,
    /// Its reason (empty when the dead letter was not found).
    pub reason: String,
    /// The topic it was (or would be) replayed to.
    pub source_topic: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Where the replay went (`topic/partition/offset`), or why it failed.
    pub detail: Option<String>,
}

/// What a replay did: counts, and each dead letter's outcome in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Replayed now (or, in a dry run, that would be).
    pub replayed: usize,
    /// Replayed before, skipped.
    pub skipped: usize,
    /// Not replayed: no source header, not found, or the broker refused.
    pub failed: usize,
    /// Whether nothing was produced.
    pub dry_run: bool,
    /// Every selected dead letter, in order.
    pub items: Vec<Item>,
}

/// Replays the dead letters `selection` names (oldest first, so a source
/// topic gets them in their original order), each at most once; with
/// `dry_run` produces nothing and says what would be replayed. An error
/// means the replay could not run (or stopped: the broker refused to record
/// a replay); what was replayed up to then stays recorded.
pub async fn replay(
    kafka_args: &KafkaArgs,
    selection: &Selection,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let topic = &kafka_args.dead_letter_topic;
    let replayed_topic = replayed_topic(kafka_args);
    let (mut letters, done) = tokio::try_join!(
        read::read(kafka_args, topic, None),
        read::read(kafka_args, &replayed_topic, None)
    )?;
    letters.sort_by_key(order);
    let done: HashSet<String> = done.iter().filter_map(DeadLetter::key_text).collect();
    let (chosen, mut items) = choose(topic, &letters, selection);
    let producer: Option<FutureProducer> = if dry_run || chosen.is_empty() {
        None
    } else {
        kafka::ensure_topics(kafka_args, std::slice::from_ref(&replayed_topic), 1).await?;
        Some(kafka::producer_config(kafka_args).create()?)
    };
    for letter in chosen {
        let mut item = Item {
            id: letter.at(),
            reason: letter.reason(),
            source_topic: letter.source_topic(),
            outcome: Outcome::Failed,
            detail: None,
        };
        if done.contains(&letter.at()) {
            item.outcome = Outcome::Skipped;
            items.push(item);
            continue;
        }
        let Some(source_topic) = item.source_topic.clone() else {
            item.detail = Some(format!("no {} header; not replayed", headers::SOURCE));
            items.push(item);
            continue;
        };
        let Some(producer) = &producer else {
            item.outcome = Outcome::WouldReplay;
            items.push(item);
            continue;
        };
        match replay_one(producer, topic, &replayed_topic, letter, &source_topic).await? {
            Ok(marker) => {
                item.outcome = Outcome::Replayed;
                item.detail = Some(marker);
            }
            Err(why) => item.detail = Some(why),
        }
        items.push(item);
    }
    let count = |outcome: &[Outcome]| {
        items
            .iter()
            .filter(|i| outcome.contains(&i.outcome))
            .count()
    };
    Ok(Report {
        replayed: count(&[Outcome::Replayed, Outcome::WouldReplay]),
        skipped: count(&[Outcome::Skipped]),
        failed: count(&[Outcome::Failed]),
        dry_run,
        items,
    })
}

/// The dead letters `selection` names, oldest first (`letters` sorted so),
/// and a failed item for each id `topic` has no record at.
fn choose<'a>(
    topic: &str,
    letters: &'a [DeadLetter],
    selection: &Selection,
) -> (Vec<&'a DeadLetter>, Vec<Item>) {
    let mut items = Vec::new();
    let chosen: Vec<&DeadLetter> = match selection {
        Selection::Filter(filter) => letters.iter().filter(|l| filter.takes(l)).collect(),
        Selection::Ids(ids) => {
            let by_id: HashMap<(i32, i64), &DeadLetter> = letters
                .iter()
                .map(|l| ((l.partition, l.offset), l))
                .collect();
            let mut chosen = Vec::new();
            let mut seen = HashSet::new();
            for &(partition, offset) in ids {
                if !seen.insert((partition, offset)) {
                    continue;
                }
                match by_id.get(&(partition, offset)) {
                    Some(letter) => chosen.push(*letter),
                    None => items.push(Item {
                        id: format!("{partition}/{offset}"),
                        reason: String::new(),
                        source_topic: None,
                        outcome: Outcome::Failed,
                        detail: Some(format!("{topic} has no record at {partition}/{offset}")),
                    }),
                }
            }
            // Oldest first, whatever order the ids came in.
            chosen.sort_by_key(|l| order(l));
            chosen
        }
    };
    (chosen, items)
}

/// The replay order: oldest first (timestamp, then partition and offset).
fn order(letter: &DeadLetter) -> (Option<i64>, i32, i64) {
    (letter.timestamp_ms, letter.partition, letter.offset)
}

/// Re-produces `letter` to `source_topic` and records it: `Ok(Ok(where))`,
/// `Ok(Err(why))` when the replay was refused, `Err` when it went out but
/// could not be recorded.
async fn replay_one(
    producer: &FutureProducer,
    topic: &str,
    replayed_topic: &str,
    letter: &DeadLetter,
    source_topic: &str,
) -> anyhow::Result<Result<String, String>> {
    let from = format!("{topic}/{}", letter.at());
    let mut record_headers = OwnedHeaders::new();
    for (name, value) in &letter.headers {
        if name.starts_with("tributary.dlq.") || name == headers::REPLAYED_FROM {
            continue;
        }
        record_headers = record_headers.insert(Header {
            key: name,
            value: value.as_deref(),
        });
    }
    let record_headers = record_headers.insert(Header {
        key: headers::REPLAYED_FROM,
        value: Some(&from),
    });
    let mut record = FutureRecord::<[u8], [u8]>::to(source_topic).headers(record_headers);
    if let Some(key) = &letter.key {
        record = record.key(key);
    }
    if let Some(payload) = &letter.payload {
        record = record.payload(payload);
    }
    let (partition, offset) = match producer.send(record, PRODUCE_TIMEOUT).await {
        Ok(delivered) => (delivered.partition, delivered.offset),
        Err((e, _)) => return Ok(Err(format!("cannot replay to {source_topic}: {e}"))),
    };
    let marker = format!("{source_topic}/{partition}/{offset}");
    producer
        .send(
            FutureRecord::to(replayed_topic)
                .key(&letter.at())
                .payload(&marker),
            PRODUCE_TIMEOUT,
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("cannot record the replay of {}: {e}", letter.at()))?;
    Ok(Ok(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(partition: i32, offset: i64, ms: i64) -> DeadLetter {
        DeadLetter {
            partition,
            offset,
            timestamp_ms: Some(ms),
            key: None,
            payload: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn ids_are_replayed_oldest_first_whatever_their_order() {
        let mut letters = vec![
            letter(0, 5, 3_000),
            letter(1, 2, 1_000),
            letter(0, 4, 2_000),
            letter(1, 3, 2_000),
        ];
        letters.sort_by_key(order);
        let ids = Selection::Ids(vec![(0, 5), (1, 3), (9, 9), (0, 4), (1, 2), (0, 5)]);
        let (chosen, missing) = choose("dlq", &letters, &ids);
        assert_eq!(
            chosen.iter().map(|l| l.at()).collect::<Vec<_>>(),
            ["1/2", "0/4", "1/3", "0/5"]
        );
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].id, "9/9");
        assert_eq!(missing[0].outcome, Outcome::Failed);
    }
}
