//! Postgres: a batch of aggregate rows and the offsets that cover them are
//! written in one transaction, so after any crash the stored offsets say
//! exactly which records are in the table.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::aggregate::AggregateRow;

/// Where the sink resumes: the next offset of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// The first offset not yet in the table.
    pub next_offset: i64,
}

/// The sink's tables.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    group: String,
}

/// Keeps, per key, the row that ranks highest; one statement cannot update a
/// row twice, and the lower-ranked rows would be refused anyway.
fn newest_per_key(rows: &[AggregateRow]) -> Vec<&AggregateRow> {
    let mut newest: HashMap<(&str, &str, DateTime<Utc>), &AggregateRow> = HashMap::new();
    for row in rows {
        newest
            .entry(row.key())
            .and_modify(|kept| {
                if row.rank() >= kept.rank() {
                    *kept = row;
                }
            })
            .or_insert(row);
    }
    newest.into_values().collect()
}

impl Store {
    /// The tables of consumer group `group` in `pool`.
    pub fn new(pool: PgPool, group: impl Into<String>) -> Self {
        Self {
            pool,
            group: group.into(),
        }
    }

    /// The stored next offset of a partition, if any batch was written.
    pub async fn next_offset(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT next_offset FROM sink_offsets WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
        )
        .bind(&self.group)
        .bind(topic)
        .bind(partition)
        .fetch_optional(&self.pool)
        .await
    }

    /// Upserts `rows` and advances `positions`, atomically. A row replaces the
    /// stored one only if it ranks at least as high (more events, then final,
    /// then later emission), so replays and out-of-order updates never
    /// regress a row; its revision (how many times late events corrected the
    /// final) only grows. Offsets never move backward.
    pub async fn write(
        &self,
        rows: &[AggregateRow],
        positions: &[Position],
    ) -> Result<(), sqlx::Error> {
        let rows = newest_per_key(rows);
        let mut tx = self.pool.begin().await?;
        if !rows.is_empty() {
            sqlx::query(
                "INSERT INTO aggregates (event_type, group_key, window_start, window_end, count, distinct_count,
                                         min, max, sum, last, last_event_time, is_final, emitted_at, revision)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int8[],
                                      $6::int8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[],
                                      $11::timestamptz[], $12::bool[], $13::timestamptz[], $14::int4[])
                 ON CONFLICT (event_type, group_key, window_start) DO UPDATE SET
                     window_end = EXCLUDED.window_end, count = EXCLUDED.count,
                     distinct_count = EXCLUDED.distinct_count, min = EXCLUDED.min, max = EXCLUDED.max,
                     sum = EXCLUDED.sum, last = EXCLUDED.last, last_event_time = EXCLUDED.last_event_time,
                     is_final = EXCLUDED.is_final, emitted_at = EXCLUDED.emitted_at, updated_at = now(),
                     revision = GREATEST(aggregates.revision, EXCLUDED.revision)
                 WHERE (EXCLUDED.count, EXCLUDED.is_final, EXCLUDED.emitted_at)
                       >= (aggregates.count, aggregates.is_final, aggregates.emitted_at)",
            )
            .bind(rows.iter().map(|r| r.event_type.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.group_key.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.window_start).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.window_end).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.count).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.distinct_count).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.min).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.max).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.sum).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.last).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.last_event_time).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.is_final).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.emitted_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.revision).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !positions.is_empty() {
            sqlx::query(
                "INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset)
                 SELECT $1, * FROM UNNEST($2::text[], $3::int4[], $4::int8[])
                 ON CONFLICT (consumer_group, topic, partition) DO UPDATE
                 SET next_offset = EXCLUDED.next_offset, updated_at = now()
                 WHERE sink_offsets.next_offset < EXCLUDED.next_offset",
            )
            .bind(&self.group)
            .bind(
                positions
                    .iter()
                    .map(|p| p.topic.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(positions.iter().map(|p| p.partition).collect::<Vec<_>>())
            .bind(positions.iter().map(|p| p.next_offset).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}
