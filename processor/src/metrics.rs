//! The processor's Prometheus metrics.
use std::sync::LazyLock;

use prometheus::{IntCounter, IntGauge, register_int_counter, register_int_gauge};

/// Records read from the event topics.
pub static RECORDS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "tributary_processor_records_total",
        "Records read from the event topics."
    )
    .expect("metric registers once")
});

/// Aggregate updates produced (and acknowledged).
pub static EMITTED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "tributary_processor_aggregates_emitted_total",
        "Aggregate updates acknowledged by the broker."
    )
    .expect("metric registers once")
});

/// Windows open across this processor's partitions.
pub static OPEN_WINDOWS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "tributary_processor_open_windows",
        "Windows open across the assigned partitions."
    )
    .expect("metric registers once")
});

/// Approximate bytes held by the open windows.
pub static STATE_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "tributary_processor_state_bytes",
        "Approximate bytes of window state."
    )
    .expect("metric registers once")
});

/// Events added to windows that had closed (their final aggregate corrected).
pub static CORRECTIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "tributary_processor_corrections_total",
        "Events added to windows whose final aggregate had been emitted (corrected)."
    )
    .expect("metric registers once")
});
