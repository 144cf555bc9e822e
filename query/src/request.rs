//! Query parameters parsed at the boundary: a [`AggregatesQuery`] or
//! [`AccuracyQuery`] is valid by construction, so the SQL layers never check
//! again. Every refusal names the parameter as the protobuf field.
use std::time::Duration;

use chrono::{DateTime, Datelike as _, SecondsFormat, Utc};
use tributary_common::schemas::{AD_CLICK, PRICE_TICK};
use tributary_proto::v1::{AggregateOrder, GetAggregatesRequest, GetPriceAccuracyRequest};

use super::{
    error::QueryError,
    page_token::{PageToken, fingerprint},
};

/// Page size when the request gives none.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// Most keys (or pairs) one request may filter on.
pub const MAX_KEYS: usize = 1_000;
/// Longest event type, as ingest accepts it.
pub const MAX_EVENT_TYPE_LEN: usize = 100;
/// Largest granularity (about ten years): beyond it Postgres intervals
/// overflow, and no time range needs more than one bucket of it.
pub const MAX_GRANULARITY: Duration = Duration::from_secs(3660 * 86_400);
/// The types that are known without any stored row.
pub const BUILT_IN_TYPES: [&str; 2] = [AD_CLICK, PRICE_TICK];

/// `[start, end)` on window start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive.
    pub start: DateTime<Utc>,
    /// Exclusive, after `start`.
    pub end: DateTime<Utc>,
}

/// A bucket size: a positive multiple of the processor's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granularity(Duration);

/// The order of `GetAggregates` results; keys ascend within a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Oldest bucket first.
    WindowAsc,
    /// Newest bucket first.
    WindowDesc,
}

/// Where a page starts: strictly after this (bucket, key) in the query order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Start of the last bucket of the previous page.
    pub bucket: DateTime<Utc>,
    /// Key of the last aggregate of the previous page.
    pub key: String,
}

/// A valid `GetAggregates` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatesQuery {
    /// The event type: built in, or well formed (existence is checked
    /// against the table when a page comes back empty).
    pub event_type: String,
    /// Only these keys, sorted and without duplicates; all keys when empty.
    pub keys: Vec<String>,
    /// The range of window starts.
    pub range: TimeRange,
    /// The bucket size.
    pub granularity: Granularity,
    /// The order.
    pub order: Order,
    /// Aggregates per page, 1..=[`MAX_PAGE_SIZE`].
    pub page_size: usize,
    /// Continue after this position (from the page token).
    pub after: Option<Cursor>,
}

/// A valid `GetPriceAccuracy` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccuracyQuery {
    /// Only these pairs, sorted and without duplicates; all when empty.
    pub pairs: Vec<String>,
    /// The range of window starts.
    pub range: TimeRange,
    /// The bucket size.
    pub granularity: Granularity,
}

impl Granularity {
    /// The requested bucket size, or `window` when none is given; it must be a
    /// positive multiple of `window`, because a window's totals cannot be split
    /// across buckets.
    pub fn parse(
        requested: Option<prost_types::Duration>,
        window: Duration,
    ) -> Result<Self, QueryError> {
        const FIELD: &str = "granularity";
        let Some(requested) = requested else {
            return Ok(Self(window));
        };
        let size = Duration::try_from(requested)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| QueryError::invalid(FIELD, "must be positive"))?;
        if size > MAX_GRANULARITY {
            return Err(QueryError::invalid(
                FIELD,
                format!("must be at most {}", describe(MAX_GRANULARITY)),
            ));
        }
        if !size.as_nanos().is_multiple_of(window.as_nanos()) {
            return Err(QueryError::invalid(
                FIELD,
                format!(
                    "{} is not a multiple of the processor's window ({}); use a multiple such as {}",
                    describe(size),
                    describe(window),
                    describe(window * 60),
                ),
            ));
        }
        Ok(Self(size))
    }

    /// The size.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// The size in microseconds, Postgres' interval resolution.
    pub fn micros(self) -> i64 {
        i64::try_from(self.0.as_micros()).unwrap_or(i64::MAX)
    }
}

/// A duration as the largest unit that divides it, e.g. `1h`, `90s`.
pub fn describe(d: Duration) -> String {
    let ms = d.as_millis();
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    for (size, unit) in units {
        if ms >= size && ms.is_multiple_of(size) && d.subsec_nanos().is_multiple_of(1_000_000) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

impl TimeRange {
    /// Both ends are required and `start < end`.
    pub fn parse(
        start: Option<prost_types::Timestamp>,
        end: Option<prost_types::Timestamp>,
    ) -> Result<Self, QueryError> {
        let start = timestamp("start_time", start)?;
        let end = timestamp("end_time", end)?;
        if end <= start {
            return Err(QueryError::invalid(
                "end_time",
                format!(
                    "must be after start_time ({} is not before {})",
                    rfc3339(start),
                    rfc3339(end)
                ),
            ));
        }
        Ok(Self { start, end })
    }
}

/// A time as RFC 3339 in UTC, e.g. `2026-01-01T00:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn timestamp(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<DateTime<Utc>, QueryError> {
    let value = value.ok_or_else(|| QueryError::invalid(field, "is required"))?;
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        // Postgres and RFC 3339 both cover these years; beyond them the
        // database would refuse the statement instead of the parameter.
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| QueryError::invalid(field, "is not a timestamp between years 1 and 9999"))
}

impl Order {
    /// Unspecified means ascending.
    pub fn parse(order: i32) -> Result<Self, QueryError> {
        match AggregateOrder::try_from(order) {
            Ok(AggregateOrder::Unspecified | AggregateOrder::WindowAsc) => Ok(Self::WindowAsc),
            Ok(AggregateOrder::WindowDesc) => Ok(Self::WindowDesc),
            Err(_) => Err(QueryError::invalid(
                "order",
                format!("{order} is not an AggregateOrder"),
            )),
        }
    }
}

fn event_type(event_type: &str) -> Result<String, QueryError> {
    const FIELD: &str = "event_type";
    if event_type.is_empty() {
        return Err(QueryError::invalid(FIELD, "is required"));
    }
    let legal = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if event_type.len() > MAX_EVENT_TYPE_LEN
        || !event_type.starts_with(|c: char| c.is_ascii_lowercase())
        || !event_type.chars().all(legal)
    {
        return Err(QueryError::invalid(
            FIELD,
            format!(
                "`{event_type}` is not an event type (a lowercase letter, then a-z, 0-9 and _, at most {MAX_EVENT_TYPE_LEN} characters)"
            ),
        ));
    }
    Ok(event_type.to_string())
}

/// Sorted, deduplicated, non-empty values of a repeated filter.
fn filter_values(field: &'static str, mut values: Vec<String>) -> Result<Vec<String>, QueryError> {
    if values.iter().any(String::is_empty) {
        return Err(QueryError::invalid(
            field,
            "must not contain an empty value",
        ));
    }
    values.sort();
    values.dedup();
    if values.len() > MAX_KEYS {
        return Err(QueryError::invalid(
            field,
            format!("at most {MAX_KEYS} values, got {}", values.len()),
        ));
    }
    Ok(values)
}

fn page_size(page_size: i32) -> Result<usize, QueryError> {
    match usize::try_from(page_size) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) if n <= MAX_PAGE_SIZE => Ok(n),
        Ok(n) => Err(QueryError::invalid(
            "page_size",
            format!("{n} is larger than the maximum, {MAX_PAGE_SIZE}"),
        )),
        Err(_) => Err(QueryError::invalid(
            "page_size",
            format!("{page_size} is negative"),
        )),
    }
}

impl AggregatesQuery {
    /// Validates `request`; `window` is the processor's window size.
    pub fn parse(request: GetAggregatesRequest, window: Duration) -> Result<Self, QueryError> {
        let mut query = Self {
            event_type: event_type(&request.event_type)?,
            keys: filter_values("keys", request.keys)?,
            range: TimeRange::parse(request.start_time, request.end_time)?,
            granularity: Granularity::parse(request.granularity, window)?,
            order: Order::parse(request.order)?,
            page_size: page_size(request.page_size)?,
            after: None,
        };
        if !request.page_token.is_empty() {
            const FIELD: &str = "page_token";
            let token = PageToken::decode(&request.page_token)
                .map_err(|e| QueryError::invalid(FIELD, e.to_string()))?;
            if token.fingerprint != query.fingerprint() {
                return Err(QueryError::invalid(
                    FIELD,
                    "was issued for other parameters; repeat every parameter of the first page except page_size",
                ));
            }
            query.after = Some(Cursor {
                bucket: token.bucket,
                key: token.key,
            });
        }
        Ok(query)
    }

    /// The fingerprint of every parameter that shapes the result set (not the
    /// page size, which may change from page to page).
    pub fn fingerprint(&self) -> u64 {
        let start = self.range.start.timestamp_micros().to_le_bytes();
        let end = self.range.end.timestamp_micros().to_le_bytes();
        let granularity = self.granularity.micros().to_le_bytes();
        let order = [self.order as u8];
        let head = [
            self.event_type.as_bytes(),
            &start,
            &end,
            &granularity,
            &order,
        ];
        fingerprint(
            head.into_iter()
                .chain(self.keys.iter().map(String::as_bytes)),
        )
    }

    /// Whether the type is known without looking at the table.
    pub fn is_built_in(&self) -> bool {
        BUILT_IN_TYPES.contains(&self.event_type.as_str())
    }
}

impl AccuracyQuery {
    /// Validates `request`; `window` is the processor's window size.
    pub fn parse(request: GetPriceAccuracyRequest, window: Duration) -> Result<Self, QueryError> {
        Ok(Self {
            pairs: filter_values("pairs", request.pairs)?,
            range: TimeRange::parse(request.start_time, request.end_time)?,
            granularity: Granularity::parse(request.granularity, window)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn granularity_defaults_to_the_window_and_takes_its_multiples() {
        assert_eq!(Granularity::parse(None, MINUTE).unwrap().duration(), MINUTE);
        let hour = prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        };
        assert_eq!(
            Granularity::parse(Some(hour), MINUTE).unwrap().micros(),
            3_600_000_000
        );
        let odd = prost_types::Duration {
            seconds: 90,
            nanos: 0,
        };
        assert_eq!(
            Granularity::parse(Some(odd), MINUTE)
                .unwrap_err()
                .to_string(),
            "granularity: 90s is not a multiple of the processor's window (1m); use a multiple such as 1h"
        );
    }

    #[test]
    fn durations_as_text_take_days() {}

    #[test]
    fn page_size_zero_means_the_default() {
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(10_000).unwrap(), 10_000);
        assert_eq!(page_size(10_001).unwrap_err().field(), Some("page_size"));
        assert_eq!(page_size(-1).unwrap_err().field(), Some("page_size"));
    }
}
