//! Ingest's Prometheus metrics.
use std::sync::LazyLock;

use prometheus::{
    Histogram, IntCounter, IntCounterVec, register_histogram, register_int_counter,
    register_int_counter_vec,
};

/// Events received on any edge.
pub static RECEIVED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("tributary_ingest_events_received_total", "Events received.")
        .expect("metric registers once")
});

/// Events acknowledged (stored in Kafka), by event type.
pub static ACKED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "tributary_ingest_events_acked_total",
        "Events stored and acknowledged, by event type.",
        &["event_type"]
    )
    .expect("metric registers once")
});

/// Events refused, by reason (the `EventErrorCode`).
pub static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "tributary_ingest_events_rejected_total",
        "Events refused, by reason.",
        &["reason"]
    )
    .expect("metric registers once")
});

/// Time from handing a record to the producer to the broker's acknowledgement.
pub static PRODUCE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "tributary_ingest_produce_seconds",
        "Time until the broker acknowledged a record.",
        vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
        ]
    )
    .expect("metric registers once")
});
