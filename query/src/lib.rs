//! Tributary's read side: `GetAggregates` and `GetPriceAccuracy` over the
//! rows the sink stores, over gRPC ([`grpc`]) and HTTP ([`http`]), mounted
//! on an edge by [`service`] (alone in `tributary-query`, or beside ingest in
//! `tributary-server`). Nothing here depends on the write path.
//!
//! A request is parsed once at the boundary into a typed query
//! ([`request`], with its [`page_token`]); [`rollup`] and [`accuracy`] turn
//! that query into one SQL statement each, rolling windows up to the
//! requested granularity inside Postgres; [`api`] ties them to a pool and the
//! processor's window size; every failure is a [`error::QueryError`], mapped
//! to a gRPC status in one place (and to an HTTP response in [`http`]).
pub mod accuracy;
pub mod api;
pub mod config;
pub mod error;
pub mod grpc;
pub mod http;
pub mod page_token;
pub mod request;
pub mod rollup;
pub mod service;

pub use self::{
    accuracy::{AccuracyReport, PriceAccuracy},
    api::QueryApi,
    error::QueryError,
    grpc::QueryGrpc,
    rollup::{AggregatesPage, BucketAggregate},
};
