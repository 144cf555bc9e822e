//! Tributary processor: reads the event topics, decodes each record with the
//! processor's reader schema (so v1 and v2 writers coexist), aggregates in
//! event-time windows and produces full-total aggregates.
//!
//! - [`decode`]: Confluent framing → writer schema (cached) → reader schema →
//!   typed events; poison records are classified, never fatal.
//! - [`window`]: tumbling windows, watermark, lateness, idempotency and
//!   corrections of closed windows per partition.
//! - [`closed_store`]: closed windows' state on local disk (SQLite), off the
//!   heap.
//! - [`changelog`]: the compacted topic closed windows are kept in, and the
//!   restore of a partition's closed windows from it.
//! - [`aggregate_record`]: aggregates as Avro records.
//! - [`pipeline`]: the loop; offsets are committed only after the aggregates
//!   covering them are acknowledged.
//! - [`config`], [`startup`].
pub mod aggregate_record;
pub mod changelog;
pub mod closed_store;
pub mod config;
pub mod decode;
pub mod metrics;
pub mod pipeline;
pub mod startup;
pub mod window;
