//! Tributary sink: persists aggregates into Postgres effectively once (the
//! tables are `tributary-store`'s; the query API reads them back).
//!
//! - [`aggregate`]: aggregate records as rows.
//! - [`plan`]: aggregate records read straight from their bytes.
//! - [`store`]: rows and offsets written in one transaction.
//! - [`pipeline`]: the batching loop.
//! - [`config`], [`startup`].
pub mod aggregate;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod startup;
pub mod store;
