//! `GetPriceAccuracy`: how far each price source is from the others.
//!
//! Per pair, bucket and source, `source_avg` is the source's `sum / count`
//! over the bucket's `price_tick` windows (key `pair/source`); `others_mean`
//! is the plain mean of the other sources' `source_avg` in the same pair and
//! bucket; `percent_difference = 100 * (source_avg - others_mean) /
//! others_mean`. A source alone in its bucket has nothing to compare with and
//! is left out. One statement computes every source average; the comparison
//! is a pass over those rows in Rust.
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tributary_common::schemas::PRICE_TICK;

use super::{error::QueryError, request::AccuracyQuery};

/// Most (pair, source, bucket) averages one request may cover; the RPC has no
/// pages, so a larger range must be narrowed or coarsened instead.
pub const MAX_SOURCE_BUCKETS: usize = 100_000;

/// One source compared with the others for one pair and bucket.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PriceAccuracy {
    /// The pair, e.g. `ETH-USD`.
    pub pair: String,
    /// The source being compared.
    pub source: String,
    /// Inclusive start of the bucket.
    pub window_start: DateTime<Utc>,
    /// The source's average price in the bucket.
    pub source_avg: f64,
    /// The mean of the other sources' averages in the bucket.
    pub others_mean: f64,
    /// `100 * (source_avg - others_mean) / others_mean`.
    pub percent_difference: f64,
}

/// Every comparison of a request, ordered by bucket, pair and source.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccuracyReport {
    /// The comparisons.
    pub accuracy: Vec<PriceAccuracy>,
}

#[derive(sqlx::FromRow)]
struct SourceAverage {
    pair: String,
    source: String,
    bucket: DateTime<Utc>,
    source_avg: f64,
}

/// Binds: $1 event type, $2 start, $3 end, $4 granularity in µs, $5 pairs
/// (empty: all), $6 limit. Keys without a `/` are not `pair/source` and are
/// skipped; the pair is what precedes the first `/`.
const STATEMENT: &str = "
    SELECT split_part(group_key, '/', 1) AS pair,
           substr(group_key, strpos(group_key, '/') + 1) AS source,
           date_bin($4 * INTERVAL '1 microsecond', window_start, TIMESTAMPTZ 'epoch') AS bucket,
           SUM(sum) / SUM(count) AS source_avg
    FROM aggregates
    WHERE event_type = $1
      AND window_start >= $2 AND window_start < $3
      AND strpos(group_key, '/') > 1
      AND (cardinality($5::text[]) = 0 OR split_part(group_key, '/', 1) = ANY($5))
    GROUP BY 1, 2, 3
    HAVING SUM(count) > 0 AND SUM(sum) IS NOT NULL
    ORDER BY bucket, pair, source
    LIMIT $6";

/// Computes the report of `query`.
pub async fn report(pool: &PgPool, query: &AccuracyQuery) -> Result<AccuracyReport, QueryError> {
    let averages: Vec<SourceAverage> = sqlx::query_as(STATEMENT)
        .bind(PRICE_TICK)
        .bind(query.range.start)
        .bind(query.range.end)
        .bind(query.granularity.micros())
        .bind(&query.pairs)
        .bind((MAX_SOURCE_BUCKETS + 1) as i64)
        .fetch_all(pool)
        .await?;
    if averages.len() > MAX_SOURCE_BUCKETS {
        return Err(QueryError::invalid(
            "end_time",
            format!(
                "the range holds more than {MAX_SOURCE_BUCKETS} source averages; narrow start_time..end_time, filter pairs or use a coarser granularity"
            ),
        ));
    }
    Ok(AccuracyReport {
        accuracy: compare(&averages),
    })
}

/// Compares every source with the others of its (bucket, pair) group;
/// `averages` is ordered by bucket and pair, so each group is contiguous.
fn compare(averages: &[SourceAverage]) -> Vec<PriceAccuracy> {
    let mut out = Vec::new();
    for group in averages.chunk_by(|a, b| a.bucket == b.bucket && a.pair == b.pair) {
        if group.len() < 2 {
            continue;
        }
        for (i, this) in group.iter().enumerate() {
            let others: f64 = group
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, other)| other.source_avg)
                .sum();
            let others_mean = others / (group.len() - 1) as f64;
            // Prices are positive, so a zero mean only comes from bad data;
            // a percentage of it would be infinite.
            if others_mean == 0.0 {
                continue;
            }
            out.push(PriceAccuracy {
                pair: this.pair.clone(),
                source: this.source.clone(),
                window_start: this.bucket,
                source_avg: this.source_avg,
                others_mean,
                percent_difference: 100.0 * (this.source_avg - others_mean) / others_mean,
            });
        }
    }
    out
}
