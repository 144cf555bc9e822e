//! Tributary's Rust SDK: the generated gRPC clients, re-exported as [`proto`],
//! and an ergonomic layer over them. Its only internal dependency is
//! `tributary-proto`: no Kafka, database or Avro library is built with it.
//!
//! - [`connect`]: [`ClientBuilder`] / [`Client`] — URL, API key, timeouts.
//! - [`event`]: typed builders for `ad_click` and `price_tick`, generic JSON
//!   events, and the JSON envelope of `POST /v1/events`.
//! - [`sender`]: the streaming [`Sender`] — a bounded window of unacknowledged
//!   events, per-event outcomes in order, reconnect and resend with the
//!   original idempotency keys.
//! - [`query`]: [`AggregatePages`], following page tokens.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! use tributary_client::{ClientBuilder, Outcome, SenderOptions, event};
//!
//! let client = ClientBuilder::new("http://127.0.0.1:50051").api_key("secret").build()?;
//! let sender = client.sender(SenderOptions::default());
//! let pending = sender
//!     .send(event::ad_click("adv-1", "203.0.113.7", "curl/8", "https://example.com/").build())
//!     .await?;
//! sender.close().await?;
//! assert!(matches!(pending.await?, Outcome::Acked(_)));
//! # Ok(()) }
//! ```
pub mod connect;
pub mod error;
pub mod event;
pub mod query;
pub mod sender;

pub use connect::{Client, ClientBuilder, DEFAULT_URL};
pub use error::{Error, Result};
pub use query::AggregatePages;
pub use sender::{Outcome, Pending, Sender, SenderOptions};
pub use tributary_proto::v1::{
    self as proto, ingest_service_client::IngestServiceClient,
    query_service_client::QueryServiceClient,
};
