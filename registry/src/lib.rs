//! Tributary's Confluent-compatible Schema Registry.
//!
//! Ingest and processor talk to a registry only through Confluent's REST API,
//! so this service must behave like Confluent Schema Registry for every client
//! built against it. State lives in Postgres, so several instances can share
//! one database.
pub mod access;
pub mod api;
pub mod canonical;
pub mod compatibility;
pub mod config;
pub mod content_type;
pub mod error;
pub mod mode;
pub mod schema;
pub mod startup;
pub mod store;
pub mod version;
