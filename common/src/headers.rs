//! The Kafka header names on every event record: written by ingest, read by
//! the processor, the dead-letter topic and the tests. Defined once here.

/// The event type.
pub const EVENT_TYPE: &str = "tributary.event_type";
/// The writer schema id (also in the Confluent header of the value).
pub const SCHEMA_ID: &str = "tributary.schema_id";
/// The client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "tributary.idempotency_key";
/// When ingest accepted the event (milliseconds since the Unix epoch): the
/// time its event time's skew was measured from. The record timestamp is
/// the event time, so the processor takes its retention from this.
pub const ACCEPTED_AT: &str = "tributary.accepted_at";
/// W3C trace context.
pub const TRACEPARENT: &str = crate::trace_context::TRACEPARENT;
