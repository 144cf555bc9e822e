//! The sink's Prometheus metrics.
use std::sync::LazyLock;

use prometheus::{Histogram, IntCounter, register_histogram, register_int_counter};

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
