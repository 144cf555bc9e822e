//! Tributary sink: persists aggregates into Postgres effectively once (the
//! tables are `tributary-store`'s; the query API reads them back).
//!
//! - [`aggregate`]: aggregate records as rows.
//! - [`store`]: rows and offsets written in one transaction.
//! - [`pipeline`]: the batching loop.
//! - [`config`], [`startup`].
pub mod aggregate;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod startup;
pub mod store;
