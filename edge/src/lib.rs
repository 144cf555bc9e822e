//! Tributary's edge: what every client-facing listener shares, written once
//! for ingest and the query API.
//!
//! - [`config`]: the listener flags (addresses, TLS, API keys, rate limits,
//!   CORS, request limits).
//! - [`access`]: API keys ([`auth`]) and per-caller rate limits
//!   ([`rate_limit`]), as a gRPC guard and as HTTP extractors
//!   ([`authorized`]).
//! - [`error`]: the one JSON error shape of every HTTP route.
//! - [`tls`], [`cors`].
//! - [`readiness`]: gRPC health and `GET /readyz` from every service's check.
//! - [`openapi`]: `GET /openapi.json`, merged from every service's routes.
//! - [`server`]: binds both listeners and serves what the services add.
pub mod access;
pub mod auth;
pub mod authorized;
pub mod config;
pub mod cors;
pub mod error;
pub mod openapi;
pub mod rate_limit;
pub mod readiness;
pub mod server;
pub mod tls;

pub use access::Access;
pub use server::{Edge, EdgeService};
