//! Postgres: a batch of aggregate rows and the offsets that cover them are
//! written in one transaction, so after any crash the stored offsets say
//! exactly which records are in the table.
use sqlx::{Arguments as _, PgPool, postgres::PgArguments};

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

/// The upsert of rows: each replaces the stored row of its key only if it
/// ranks at least as high (see [`Store::write`]).
const UPSERT: &str = "INSERT INTO aggregates (event_type, group_key, window_start, window_end, count, distinct_count,
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
                       >= (aggregates.count, aggregates.is_final, aggregates.emitted_at)";

/// Rows encoded for [`Store::write_encoded`]: the highest-ranked row of each
/// key, as the upsert's parameters. [`Store::write`] encodes its rows and
/// writes them at once; the sink encodes a batch's rows while the batch
/// before is written, so the writer, whose work is the critical path, only
/// sends them.
pub struct EncodedRows(Option<PgArguments>);

impl EncodedRows {
    /// Encodes `rows` (the upsert's parameters; none when there are none).
    pub fn new(rows: &[AggregateRow]) -> Result<Self, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Self(None));
        }
        let rows = newest_per_key(rows);
        let mut arguments = PgArguments::default();
        let add = |added: Result<(), sqlx::error::BoxDynError>| added.map_err(sqlx::Error::Encode);
        add(arguments.add(
            rows.iter()
                .map(|r| r.event_type.as_str())
                .collect::<Vec<_>>(),
        ))?;
        add(arguments.add(
            rows.iter()
                .map(|r| r.group_key.as_str())
                .collect::<Vec<_>>(),
        ))?;
        add(arguments.add(rows.iter().map(|r| r.window_start).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.window_end).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.count).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.distinct_count).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.min).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.max).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.sum).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.last).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.last_event_time).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.is_final).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.emitted_at).collect::<Vec<_>>()))?;
        add(arguments.add(rows.iter().map(|r| r.revision).collect::<Vec<_>>()))?;
        Ok(Self(Some(arguments)))
    }
}

/// The sink's tables.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    group: String,
}

/// Keeps, per key, the row that ranks highest (of equals, the last); one
/// statement cannot update a row twice, and the lower-ranked rows would be
/// refused anyway. The rows come in key order, so Postgres inserts them into
/// the primary key's B-tree one page after another instead of all over it,
/// and sorting costs less than the hash map that kept them before
/// (`tributary-bench --stage sink --runs 3`, three pairs: the sink 101k ->
/// 116k rows/s, whose batches, read partition by partition, span more
/// windows; the raw upsert loop 116k -> 127k, its CPU 0.78 -> 0.53 us per
/// row).
fn newest_per_key(rows: &[AggregateRow]) -> Vec<&AggregateRow> {
    let mut sorted: Vec<&AggregateRow> = rows.iter().collect();
    // Stable: of rows of one key and rank, the last one read stays last.
    sorted.sort_by(|a, b| a.key().cmp(&b.key()).then_with(|| a.rank().cmp(&b.rank())));
    let mut newest: Vec<&AggregateRow> = Vec::with_capacity(sorted.len());
    for row in sorted {
        match newest.last_mut() {
            Some(kept) if kept.key() == row.key() => *kept = row,
            _ => newest.push(row),
        }
    }
    newest
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
        self.write_encoded(EncodedRows::new(rows)?, positions).await
    }

    /// [`Store::write`] with the rows encoded already.
    pub async fn write_encoded(
        &self,
        rows: EncodedRows,
        positions: &[Position],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if let EncodedRows(Some(arguments)) = rows {
            sqlx::query_with(UPSERT, arguments)
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::DateTime;

    use tributary_testkit::avro_records::Rng;

    use super::newest_per_key;
    use crate::aggregate::AggregateRow;

    /// The rule as a map: per key, a row replaces the kept one if it ranks
    /// at least as high.
    fn by_map(rows: &[AggregateRow]) -> HashMap<(&str, &str, i64), &AggregateRow> {
        let mut newest: HashMap<(&str, &str, i64), &AggregateRow> = HashMap::new();
        for row in rows {
            let (event_type, group_key, start) = row.key();
            newest
                .entry((event_type, group_key, start.timestamp_millis()))
                .and_modify(|kept| {
                    if row.rank() >= kept.rank() {
                        *kept = row;
                    }
                })
                .or_insert(row);
        }
        newest
    }

    #[test]
    fn the_highest_ranked_row_of_each_key_is_kept_in_key_order() {
        let mut random = Rng(0x2545_f491_4f6c_dd1d);
        let mut below = |n: usize| random.below(n);
        for case in 0..500 {
            let rows: Vec<AggregateRow> = (0..below(300) + 1)
                .map(|n| {
                    let start = below(4) as i64 * 60_000;
                    AggregateRow {
                        event_type: ["ad_click", "price_tick"][below(2)].into(),
                        group_key: format!("k{}", below(5)),
                        window_start: DateTime::from_timestamp_millis(start).unwrap(),
                        window_end: DateTime::from_timestamp_millis(start + 60_000).unwrap(),
                        count: below(3) as i64,
                        distinct_count: None,
                        min: None,
                        max: None,
                        sum: None,
                        // Tells rows of one key and rank apart.
                        last: Some(n as f64),
                        last_event_time: None,
                        is_final: below(2) == 0,
                        emitted_at: DateTime::from_timestamp_millis(below(2) as i64).unwrap(),
                        revision: 0,
                    }
                })
                .collect();
            let kept = newest_per_key(&rows);
            let expected = by_map(&rows);
            assert_eq!(kept.len(), expected.len(), "case {case}");
            for row in &kept {
                let (event_type, group_key, start) = row.key();
                let want = expected[&(event_type, group_key, start.timestamp_millis())];
                assert!(
                    std::ptr::eq(*row, want),
                    "case {case}: {row:?} for {want:?}"
                );
            }
            assert!(
                kept.windows(2).all(|w| w[0].key() < w[1].key()),
                "case {case}: not in key order"
            );
        }
    }
}
