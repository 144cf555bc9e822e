//! The writer's choice of what a batch writes (`Gathered::select`), its
//! shortcut (the rows taken as gathered when nothing is skipped) included,
//! against the record-by-record rule it replaces: the same rows, traces,
//! dead letters and offsets for batches with and without records below the
//! stored offsets, partitions read again within a batch, refused records and
//! more traces than a span links to.
use std::{collections::HashMap, sync::Arc};

use chrono::DateTime;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use rdkafka::{Message as _, Timestamp, message::OwnedMessage};
use tributary_testkit::avro_records::Rng;

use super::{Gathered, Partition, Refused, trace_context};
use crate::aggregate::AggregateRow;

/// A record as the writer used to receive it.
struct Record {
    partition: Partition,
    offset: i64,
    decoded: Result<(AggregateRow, Option<SpanContext>), Refused>,
}

fn row(n: i64) -> AggregateRow {
    AggregateRow {
        event_type: "ad_click".into(),
        group_key: format!("adv-{n}"),
        window_start: DateTime::from_timestamp_millis(n * 60_000).unwrap(),
        window_end: DateTime::from_timestamp_millis((n + 1) * 60_000).unwrap(),
        count: n,
        distinct_count: None,
        min: None,
        max: None,
        sum: None,
        last: None,
        last_event_time: None,
        is_final: true,
        emitted_at: DateTime::from_timestamp_millis(n).unwrap(),
        revision: 0,
    }
}

fn trace(n: u64) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(u128::from(n + 1).to_be_bytes()),
        SpanId::from_bytes((n + 1).to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    )
}

fn refused(partition: &Partition, offset: i64) -> Refused {
    let message = OwnedMessage::new(
        Some(vec![0xff]),
        None,
        partition.0.to_string(),
        Timestamp::NotAvailable,
        partition.1,
        offset,
        None,
    );
    (message, "not_framed", format!("record {offset}"))
}

/// What a batch writes, comparable: rows, trace ids, dead letters (as
/// partition/offset) and positions.
type Outcome = (
    Vec<AggregateRow>,
    Vec<SpanContext>,
    Vec<(i32, i64)>,
    Vec<(Partition, i64)>,
);

/// The rule as the writer applied it record by record.
fn by_record(records: Vec<Record>, stored: &HashMap<Partition, i64>) -> Outcome {
    let (mut rows, mut traces, mut dead) = (Vec::new(), Vec::new(), Vec::new());
    let mut positions: Vec<(Partition, i64)> = Vec::new();
    for record in records {
        let stored = stored.get(&record.partition).copied().unwrap_or(0);
        let position = match positions.iter_mut().find(|(p, _)| *p == record.partition) {
            Some((_, position)) => position,
            None => {
                positions.push((record.partition, 0));
                &mut positions.last_mut().unwrap().1
            }
        };
        if record.offset < stored || record.offset < *position {
            continue;
        }
        *position = record.offset + 1;
        match record.decoded {
            Ok((row, trace)) => {
                rows.push(row);
                if let Some(trace) = trace
                    && traces.len() <= trace_context::MAX_LINKS
                {
                    traces.push(trace);
                }
            }
            Err((message, _, _)) => dead.push((message.partition(), message.offset())),
        }
    }
    (rows, traces, dead, positions)
}

fn selected(records: &[Record], stored: &HashMap<Partition, i64>) -> Outcome {
    let mut batch = Gathered::new(records.len());
    for record in records {
        let decoded = match &record.decoded {
            Ok((row, trace)) => Ok((row.clone(), trace.clone())),
            Err((message, reason, detail)) => Err((message.clone(), *reason, detail.clone())),
        };
        // A fresh copy of the name now and then, as after a topic change.
        let topic: Arc<str> = if record.offset % 7 == 0 {
            Arc::from(&*record.partition.0)
        } else {
            record.partition.0.clone()
        };
        batch.push(&topic, record.partition.1, record.offset, decoded);
    }
    let stored: Vec<i64> = batch
        .partitions
        .iter()
        .map(|run| stored.get(&run.partition).copied().unwrap_or(0))
        .collect();
    let selected = batch.select(&stored);
    let dead = selected
        .dead
        .iter()
        .map(|(message, _, _)| (message.partition(), message.offset()))
        .collect();
    (selected.rows, selected.traces, dead, selected.positions)
}

/// The records of the gathering's copies (`select` consumes its batch).
fn copy(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .map(|r| Record {
            partition: r.partition.clone(),
            offset: r.offset,
            decoded: match &r.decoded {
                Ok((row, trace)) => Ok((row.clone(), trace.clone())),
                Err((message, reason, detail)) => Err((message.clone(), *reason, detail.clone())),
            },
        })
        .collect()
}

#[test]
fn a_batch_writes_what_the_record_by_record_rule_writes() {
    let topics: [Arc<str>; 2] = [Arc::from("tributary.aggregates"), Arc::from("other")];
    let mut random = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut shortcuts, mut skipping) = (0, 0);
    for case in 0..2_000 {
        let partitions = 1 + random.below(4) as i32;
        let two_topics = case % 5 == 0;
        let mut next_offset: HashMap<Partition, i64> = HashMap::new();
        let mut stored: HashMap<Partition, i64> = HashMap::new();
        let mut records = Vec::new();
        let len = 1 + random.below(if case % 10 == 0 { 400 } else { 40 });
        let with_traces = random.below(3);
        let mut traced = 0;
        for n in 0..len {
            let topic = topics[usize::from(two_topics && random.below(2) == 0)].clone();
            let partition: Partition = (topic, random.below(partitions as usize) as i32);
            let offset = next_offset
                .entry(partition.clone())
                .or_insert_with(|| random.below(1_000) as i64);
            match random.below(20) {
                // Read again after a rebalance: back a few records.
                0 if case % 3 == 0 => *offset = (*offset - random.below(5) as i64).max(0),
                // A gap (compacted or transactional markers).
                1 => *offset += random.below(3) as i64,
                _ => {}
            }
            let at = *offset;
            *offset += 1;
            if !stored.contains_key(&partition) && case % 4 != 0 {
                // Stored at, below or above the batch's first record.
                let shift = random.below(7) as i64 - 4;
                stored.insert(partition.clone(), (at + shift).max(0));
            }
            let decoded = if random.below(10) == 0 {
                Err(refused(&partition, at))
            } else {
                // As the gathering reads them: while the batch has at most
                // MAX_LINKS records with one, written or not.
                let trace = (with_traces > 0
                    && random.below(with_traces + 1) > 0
                    && traced <= trace_context::MAX_LINKS)
                    .then(|| trace(n as u64));
                traced += usize::from(trace.is_some());
                Ok((row(n as i64), trace))
            };
            records.push(Record {
                partition,
                offset: at,
                decoded,
            });
        }
        let expected = by_record(copy(&records), &stored);
        let got = selected(&records, &stored);
        assert_eq!(got.0, expected.0, "rows, case {case}");
        assert_eq!(got.1, expected.1, "traces, case {case}");
        assert_eq!(got.2, expected.2, "dead letters, case {case}");
        assert_eq!(got.3, expected.3, "positions, case {case}");
        if expected.0.len() + expected.2.len() == records.len() {
            shortcuts += 1;
        } else {
            skipping += 1;
        }
    }
    // Both ways were taken, many times.
    assert!(shortcuts > 300 && skipping > 300, "{shortcuts} {skipping}");
}

#[test]
fn the_first_write_of_a_partition_read_again_skips_the_records_read_twice() {
    let partition: Partition = (Arc::from("tributary.aggregates"), 0);
    let records: Vec<Record> = [5, 6, 7, 5, 6, 7, 8]
        .into_iter()
        .map(|offset| Record {
            partition: partition.clone(),
            offset,
            decoded: Ok((row(offset), None)),
        })
        .collect();
    let stored = HashMap::from([(partition.clone(), 6)]);
    let got = selected(&records, &stored);
    assert_eq!(got.0, vec![row(6), row(7), row(8)]);
    assert_eq!(got.3, vec![(partition, 9)]);
}
