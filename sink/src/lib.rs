//! Tributary sink: persists aggregates into Postgres effectively once, and
//! serves them back.
//!
//! - [`schema`]: the database schema (sqlx migrations).
//! - [`aggregate`]: aggregate records as rows.
//! - [`store`]: rows and offsets written in one transaction.
//! - [`pipeline`]: the batching loop.
//! - [`config`], [`startup`].
//! - [`query`]: `GetAggregates` and `GetPriceAccuracy` over the stored rows.
pub mod aggregate;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod query;
pub mod schema;
pub mod startup;
pub mod store;
