//! The sink's Prometheus metrics.
use std::sync::LazyLock;

use prometheus::{
    Gauge, Histogram, IntCounter, register_gauge, register_histogram, register_int_counter,
};

/// Rows per written batch.
pub static BATCH_ROWS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "tributary_sink_batch_rows",
        "Rows per transaction.",
        vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 5000.0]
    )
    .expect("metric registers once")
});

/// Time to write a batch (rows and offsets, one transaction), retries included.
pub static BATCH_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "tributary_sink_batch_seconds",
        "Time to write one batch, retries included.",
        vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0
        ]
    )
    .expect("metric registers once")
});

/// Rows written.
pub static ROWS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("tributary_sink_rows_total", "Aggregate rows written.")
        .expect("metric registers once")
});

/// The event time of the newest event whose aggregate is in Postgres, Unix
/// seconds: the largest [`AggregateRow::newest_event_time`] of the rows
/// written so far (`last_event_time` for price ticks; for aggregates without
/// one, such as ad clicks, the window's end or the aggregate's emission,
/// whichever is earlier), event times after the write taken as the write's
/// time.
///
/// [`AggregateRow::newest_event_time`]: crate::aggregate::AggregateRow::newest_event_time Now minus this is
/// the pipeline's end-to-end freshness: how old the newest event a query can
/// see is. 0 until the first row is written.
pub static NEWEST_EVENT_TIME: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(
        "tributary_sink_newest_event_timestamp_seconds",
        "Event time (Unix seconds) of the newest event whose aggregate is stored."
    )
    .expect("metric registers once")
});

/// When the last batch was committed, Unix seconds.
pub static LAST_COMMIT: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(
        "tributary_sink_last_commit_timestamp_seconds",
        "When the sink last committed a batch (Unix seconds)."
    )
    .expect("metric registers once")
});

/// Records a committed batch of `rows`.
pub fn committed_rows(rows: &[crate::aggregate::AggregateRow]) {
    committed(
        rows.iter()
            .map(crate::aggregate::AggregateRow::newest_event_time)
            .max(),
    );
}

/// Records a committed batch whose newest event time is `newest` (if any).
pub fn committed(newest: Option<chrono::DateTime<chrono::Utc>>) {
    let now = chrono::Utc::now();
    let seconds = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as f64 / 1000.0;
    LAST_COMMIT.set(seconds(now));
    if let Some(newest) = newest {
        let newest = seconds(newest.min(now));
        if newest > NEWEST_EVENT_TIME.get() {
            NEWEST_EVENT_TIME.set(newest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_the_newest_stored_event_and_never_the_future() {
        let now = chrono::Utc::now();
        committed(Some(now - chrono::Duration::seconds(10)));
        let newest = NEWEST_EVENT_TIME.get();
        assert!(newest >= (now.timestamp() - 11) as f64, "{newest}");
        // An event time ahead of the clock counts as the commit's time.
        committed(Some(now + chrono::Duration::hours(1)));
        let capped = NEWEST_EVENT_TIME.get();
        assert!(
            capped <= (chrono::Utc::now().timestamp() + 1) as f64,
            "{capped}"
        );
        // An older batch (a late event) does not move it back.
        committed(Some(now - chrono::Duration::hours(1)));
        assert_eq!(NEWEST_EVENT_TIME.get(), capped);
        committed(None);
        assert!(LAST_COMMIT.get() >= now.timestamp() as f64);
    }

    #[test]
    fn a_batch_of_click_aggregates_sets_freshness() {
        use apache_avro::types::Value;
        // What the processor writes for ad_click: no last_event_time.
        let now = chrono::Utc::now().timestamp_millis();
        let start = now - 120_000;
        let click = Value::Record(vec![
            ("event_type".into(), Value::String("ad_click".into())),
            ("group_key".into(), Value::String("adv-1".into())),
            ("window_start".into(), Value::TimestampMillis(start)),
            ("window_end".into(), Value::TimestampMillis(start + 60_000)),
            ("count".into(), Value::Long(4)),
            (
                "distinct_count".into(),
                Value::Union(1, Box::new(Value::Long(2))),
            ),
            (
                "last_event_time".into(),
                Value::Union(0, Box::new(Value::Null)),
            ),
            ("final".into(), Value::Boolean(true)),
            (
                "emitted_at".into(),
                Value::Union(1, Box::new(Value::TimestampMillis(start + 61_000))),
            ),
        ]);
        let row = crate::aggregate::AggregateRow::from_value(click).unwrap();
        assert_eq!(NEWEST_EVENT_TIME.get(), 0.0);
        committed_rows(&[row]);
        assert_eq!(NEWEST_EVENT_TIME.get(), (start + 60_000) as f64 / 1000.0);
    }
}
