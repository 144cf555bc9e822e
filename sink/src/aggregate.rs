//! Aggregate records as rows: decoded from the processor's Avro records
//! (resolved against the built-in `aggregate` reader schema, so v1 and v2
//! writers both read) and checked before they reach the database.
use std::sync::LazyLock;

use apache_avro::{Schema, types::Value};
use chrono::{DateTime, Utc};
use tributary_common::schemas;

/// The reader schema: the latest built-in `aggregate`.
pub static READER: LazyLock<&'static Schema> = LazyLock::new(|| {
    Box::leak(Box::new(
        schemas::latest(schemas::AGGREGATE)
            .expect("built-in aggregate schema")
            .parse(),
    ))
});

/// One row of the `aggregates` table.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    /// Event type.
    pub event_type: String,
    /// Group key.
    pub group_key: String,
    /// Window start.
    pub window_start: DateTime<Utc>,
    /// Window end (exclusive).
    pub window_end: DateTime<Utc>,
    /// Events.
    pub count: i64,
    /// Distinct client addresses (ad_click).
    pub distinct_count: Option<i64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Sum of values.
    pub sum: Option<f64>,
    /// Value of the latest event.
    pub last: Option<f64>,
    /// Time of the latest event.
    pub last_event_time: Option<DateTime<Utc>>,
    /// The window has closed.
    pub is_final: bool,
    /// When the processor emitted it.
    pub emitted_at: DateTime<Utc>,
    /// How many times late events corrected the final (0 before v3).
    pub revision: i32,
}

impl AggregateRow {
    /// The row's identity.
    pub fn key(&self) -> (&str, &str, DateTime<Utc>) {
        (&self.event_type, &self.group_key, self.window_start)
    }

    /// The latest the newest event in this aggregate can have happened,
    /// for the freshness gauge: its `last_event_time` when the processor
    /// wrote one (price ticks); otherwise (ad clicks carry none) the window's
    /// end, or when the processor emitted the aggregate if that is earlier
    /// (an open window's newest event came before its emission). Never
    /// before the window's start. The metric caps it at the commit's time.
    pub fn newest_event_time(&self) -> DateTime<Utc> {
        if let Some(t) = self.last_event_time {
            return t;
        }
        let emitted = Some(self.emitted_at).filter(|t| *t != DateTime::<Utc>::UNIX_EPOCH);
        let bound = emitted.map_or(self.window_end, |t| t.min(self.window_end));
        bound.max(self.window_start)
    }

    /// Rows of one key are ordered by this: more events, then final over
    /// open, then later emission. A row never moves backward in it.
    pub fn rank(&self) -> (i64, bool, DateTime<Utc>) {
        (self.count, self.is_final, self.emitted_at)
    }

    /// Reads a decoded aggregate record; the error names the bad field.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Record(fields) = value else {
            return Err("not a record".into());
        };
        let mut row = Partial::default();
        for (name, value) in fields {
            let value = match value {
                Value::Union(_, inner) => *inner,
                other => other,
            };
            match (name.as_str(), value) {
                ("event_type", Value::String(s)) => row.event_type = Some(s),
                ("group_key", Value::String(s)) => row.group_key = Some(s),
                ("window_start", v) => row.window_start = time(&v),
                ("window_end", v) => row.window_end = time(&v),
                ("count", Value::Long(n)) => row.count = Some(n),
                ("distinct_count", Value::Long(n)) => row.distinct_count = Some(n),
                ("min", Value::Double(n)) => row.min = Some(n),
                ("max", Value::Double(n)) => row.max = Some(n),
                ("sum", Value::Double(n)) => row.sum = Some(n),
                ("last", Value::Double(n)) => row.last = Some(n),
                ("last_event_time", v) => row.last_event_time = time(&v),
                ("final", Value::Boolean(b)) => row.is_final = Some(b),
                ("emitted_at", v) => row.emitted_at = time(&v),
                ("revision", Value::Int(n)) => row.revision = Some(n),
                _ => {}
            }
        }
        row.into_row()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(group_key: &str, start: i64, end: i64, count: i64) -> Value {
        Value::Record(vec![
            ("event_type".into(), Value::String("ad_click".into())),
            ("group_key".into(), Value::String(group_key.into())),
            ("window_start".into(), Value::TimestampMillis(start)),
            ("window_end".into(), Value::TimestampMillis(end)),
            ("count".into(), Value::Long(count)),
            ("final".into(), Value::Boolean(true)),
        ])
    }

    #[test]
    fn a_click_aggregate_has_a_newest_event_time_from_its_window() {
        // ad_click aggregates carry no last_event_time.
        let closed = AggregateRow::from_value(record("adv-1", 60_000, 120_000, 3)).unwrap();
        assert_eq!(closed.last_event_time, None);
        assert_eq!(closed.newest_event_time().timestamp_millis(), 120_000);
        // An open window emitted before its end: the emission bounds it.
        let mut open = closed.clone();
        open.emitted_at = DateTime::from_timestamp_millis(90_000).unwrap();
        assert_eq!(open.newest_event_time().timestamp_millis(), 90_000);
        // Emitted after the end (the final): the end bounds it.
        open.emitted_at = DateTime::from_timestamp_millis(125_000).unwrap();
        assert_eq!(open.newest_event_time().timestamp_millis(), 120_000);
        // A price tick's own last_event_time wins.
        open.last_event_time = DateTime::from_timestamp_millis(70_000);
        assert_eq!(open.newest_event_time().timestamp_millis(), 70_000);
    }

    #[test]
    fn rows_postgres_would_refuse_are_invalid_not_retried() {
        assert!(AggregateRow::from_value(record("adv-1", 0, 60_000, 3)).is_ok());
        for (bad, why) in [
            (record("adv\0", 0, 60_000, 3), "NUL"),
            (record("adv-1", 60_000, 0, 3), "is not after"),
            (record("adv-1", 0, 60_000, -1), "negative"),
        ] {
            let refused = AggregateRow::from_value(bad).unwrap_err();
            assert!(refused.contains(why), "{refused}");
        }
    }
}

/// An aggregate's fields as read, before they are checked into a row.
#[derive(Default)]
pub(crate) struct Partial {
    pub(crate) event_type: Option<String>,
    pub(crate) group_key: Option<String>,
    pub(crate) window_start: Option<DateTime<Utc>>,
    pub(crate) window_end: Option<DateTime<Utc>>,
    pub(crate) count: Option<i64>,
    pub(crate) distinct_count: Option<i64>,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) sum: Option<f64>,
    pub(crate) last: Option<f64>,
    pub(crate) last_event_time: Option<DateTime<Utc>>,
    pub(crate) is_final: Option<bool>,
    pub(crate) emitted_at: Option<DateTime<Utc>>,
    pub(crate) revision: Option<i32>,
}

impl Partial {
    /// The row, checked as every row is; the error names the bad field.
    pub(crate) fn into_row(self) -> Result<AggregateRow, String> {
        let required = |field: &str| format!("`{field}` is missing or has the wrong type");
        let row = AggregateRow {
            event_type: self
                .event_type
                .filter(|s| !s.is_empty())
                .ok_or_else(|| required("event_type"))?,
            group_key: self.group_key.ok_or_else(|| required("group_key"))?,
            window_start: self.window_start.ok_or_else(|| required("window_start"))?,
            window_end: self.window_end.ok_or_else(|| required("window_end"))?,
            count: self.count.ok_or_else(|| required("count"))?,
            distinct_count: self.distinct_count,
            min: self.min,
            max: self.max,
            sum: self.sum,
            last: self.last,
            last_event_time: self.last_event_time,
            is_final: self.is_final.ok_or_else(|| required("final"))?,
            // v1 writers have no emitted_at: they rank before any v2 update.
            emitted_at: self.emitted_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            // v1 and v2 writers had no corrections.
            revision: self.revision.unwrap_or(0),
        };
        if row.window_end <= row.window_start {
            return Err(format!(
                "window_end {} is not after window_start {}",
                row.window_end, row.window_start
            ));
        }
        if row.count < 0 {
            return Err(format!("count {} is negative", row.count));
        }
        // Postgres text cannot hold U+0000: such a row could never be
        // written, and retrying it would stop the sink for good.
        for (field, text) in [
            ("event_type", &row.event_type),
            ("group_key", &row.group_key),
        ] {
            if text.contains('\0') {
                return Err(format!("`{field}` contains a NUL character"));
            }
        }
        Ok(row)
    }
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::TimestampMillis(ms) | Value::Long(ms) => DateTime::from_timestamp_millis(*ms),
        _ => None,
    }
}
