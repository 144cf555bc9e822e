//! Tributary's shared plumbing: what every service needs and nothing more.
//!
//! - [`avro_reader`]: reading framed Avro records by writer schema id.
//! - [`avro_resolution`]: the one judge of whether a reader schema reads a writer's data.
//! - [`dead_letter`]: the dead-letter topic: producing, reading and replaying.
//! - [`headers`]: the Kafka header names of event records.
//! - [`rebalance`]: partition revocations seen by a consumer.
//! - [`config`]: the command-line flags and environment variables every
//!   service shares (Kafka, registry, telemetry).
//! - [`telemetry`]: logging and tracing setup (OTLP export of spans).
//! - [`trace_context`]: the W3C `traceparent` header on Kafka records.
//! - [`shutdown`]: the signal that starts a graceful shutdown.
//! - [`metrics`]: the Prometheus endpoint.
//! - [`kafka`]: producer, consumer and admin settings, written once.
//! - [`retry`]: the services' one retry policy (exponential backoff).
//! - [`registry_client`]: Schema Registry access over the Confluent REST API.
//! - [`registry_rest`]: the registry's REST answers as JSON, for `trib schema` and the console.
//! - [`schemas`]: the Avro schemas of `schemas/`, compiled in.
//! - [`wire`]: the Confluent wire format (magic byte + schema id).
pub mod avro_bytes;
pub mod avro_reader;
pub mod avro_resolution;
pub mod config;
pub mod dead_letter;
pub mod headers;
pub mod kafka;
pub mod metrics;
pub mod rebalance;
pub mod registry_client;
pub mod registry_rest;
pub mod retry;
pub mod schemas;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;
pub mod wire;
