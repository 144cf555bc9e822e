//! `GetAggregates` in SQL: the stored windows of one event type rolled up to
//! the requested granularity, one page per statement.
//!
//! A bucket is `date_bin(granularity, window_start, epoch)`, so buckets are
//! aligned to the Unix epoch (a `1d` bucket is a UTC day). Within a bucket
//! counts and sums add, `min` is the smallest min, `max` the largest max,
//! `avg` is `sum / count`, `last` is the `last` of the window with the latest
//! `last_event_time`. `distinct_count` is exact for a bucket of one window;
//! for a bucket of several windows it is the largest of their distinct counts,
//! a lower bound of the true value, because the processor keeps the distinct
//! set of a window only while the window is open. `revisions` adds up the
//! windows' revisions: how often late events corrected a stored final.
//!
//! Pages are keyset pages over (bucket, key): the statement fetches one row
//! more than the page size to learn whether another page follows.
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::{
    error::QueryError,
    page_token::PageToken,
    request::{AggregatesQuery, Order},
};

/// One key over one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = Aggregate)]
pub struct BucketAggregate {
    /// The event type.
    pub event_type: String,
    /// The group key.
    pub key: String,
    /// Inclusive start of the bucket.
    pub window_start: DateTime<Utc>,
    /// Exclusive end of the bucket.
    pub window_end: DateTime<Utc>,
    /// Events in the bucket.
    pub count: i64,
    /// Distinct values: exact for one window, else a lower bound (see the
    /// module documentation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_count: Option<i64>,
    /// Smallest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Sum of the values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    /// `sum / count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg: Option<f64>,
    /// Value of the latest event by event time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<f64>,
    /// Corrections by late events after a window's final was first stored,
    /// summed over the bucket's windows.
    pub revisions: i64,
}

/// One page of aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AggregatesPage {
    /// The aggregates, in the query's order.
    pub aggregates: Vec<BucketAggregate>,
    /// Token of the next page; empty on the last page.
    pub next_page_token: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    bucket: DateTime<Utc>,
    group_key: String,
    count: i64,
    distinct_count: Option<i64>,
    min: Option<f64>,
    max: Option<f64>,
    sum: Option<f64>,
    last: Option<f64>,
    revisions: i64,
}

/// The statement for `order`. Binds: $1 event type, $2 start, $3 end,
/// $4 granularity in µs, $5 keys (empty: all), $6/$7 cursor bucket and key
/// (NULL on the first page), $8 limit.
fn statement(order: Order) -> String {
    // The cursor narrows the scan on window_start before grouping (a bucket
    // holds window starts in [bucket, bucket + granularity)), then the exact
    // (bucket, key) comparison applies to the grouped rows.
    let (direction, scan_after, after) = match order {
        Order::WindowAsc => (
            "ASC",
            "window_start >= $6",
            "(bucket, group_key) > ($6, $7)",
        ),
        Order::WindowDesc => (
            "DESC",
            "window_start < $6 + $4 * INTERVAL '1 microsecond'",
            "(bucket < $6 OR (bucket = $6 AND group_key > $7))",
        ),
    };
    format!(
        "WITH windows AS (
            SELECT date_bin($4 * INTERVAL '1 microsecond', window_start, TIMESTAMPTZ 'epoch') AS bucket,
                   group_key, window_start, count, distinct_count, min, max, sum, last, last_event_time,
                   revision
            FROM aggregates
            WHERE event_type = $1
              AND window_start >= $2 AND window_start < $3
              AND (cardinality($5::text[]) = 0 OR group_key = ANY($5))
              AND ($6::timestamptz IS NULL OR {scan_after})
        ), buckets AS (
            SELECT bucket, group_key,
                   SUM(count)::bigint AS count,
                   MAX(distinct_count) AS distinct_count,
                   MIN(min) AS min,
                   MAX(max) AS max,
                   SUM(sum) AS sum,
                   (array_agg(last ORDER BY last_event_time DESC NULLS LAST, window_start DESC)
                        FILTER (WHERE last IS NOT NULL))[1] AS last,
                   SUM(revision)::bigint AS revisions
            FROM windows
            GROUP BY bucket, group_key
        )
        SELECT bucket, group_key, count, distinct_count, min, max, sum, last, revisions
        FROM buckets
        WHERE $6::timestamptz IS NULL OR {after}
        ORDER BY bucket {direction}, group_key ASC
        LIMIT $8"
    )
}

/// Fetches one page of `query`.
pub async fn fetch_page(
    pool: &PgPool,
    query: &AggregatesQuery,
) -> Result<AggregatesPage, QueryError> {
    let granularity = query.granularity.micros();
    let (cursor_bucket, cursor_key) = match &query.after {
        Some(cursor) => (Some(cursor.bucket), Some(cursor.key.as_str())),
        None => (None, None),
    };
    let mut rows: Vec<Row> = sqlx::query_as(&statement(query.order))
        .bind(&query.event_type)
        .bind(query.range.start)
        .bind(query.range.end)
        .bind(granularity)
        .bind(&query.keys)
        .bind(cursor_bucket)
        .bind(cursor_key)
        .bind(i64::try_from(query.page_size + 1).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;

    let next_page_token = if rows.len() > query.page_size {
        rows.truncate(query.page_size);
        let last = rows.last().expect("page_size is at least 1");
        PageToken {
            bucket: last.bucket,
            key: last.group_key.clone(),
            fingerprint: query.fingerprint(),
        }
        .encode()
    } else {
        String::new()
    };
    let step = chrono::Duration::microseconds(granularity);
    let aggregates = rows
        .into_iter()
        .map(|row| BucketAggregate {
            event_type: query.event_type.clone(),
            key: row.group_key,
            window_start: row.bucket,
            window_end: row.bucket + step,
            count: row.count,
            distinct_count: row.distinct_count,
            min: row.min,
            max: row.max,
            sum: row.sum,
            avg: row
                .sum
                .filter(|_| row.count > 0)
                .map(|s| s / row.count as f64),
            last: row.last,
            revisions: row.revisions,
        })
        .collect();
    Ok(AggregatesPage {
        aggregates,
        next_page_token,
    })
}

/// Whether any row of `event_type` is stored: what makes a type that is not
/// built in known.
pub async fn type_has_rows(pool: &PgPool, event_type: &str) -> Result<bool, QueryError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM aggregates WHERE event_type = $1)")
            .bind(event_type)
            .fetch_one(pool)
            .await?,
    )
}
